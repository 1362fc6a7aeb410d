//! What the engine's integration tests share: the seed policy, an engine
//! over a test database with a real keyring, and the usual actors.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use derbes_engine::{Actor, Engine};
use derbes_policy::LoadedPolicy;
use derbes_store::testing::TestDb;

pub fn policy() -> LoadedPolicy {
    LoadedPolicy::from_text(include_str!("../../../../policy/ibusiness.toml").to_string()).unwrap()
}

/// An engine with the keyring of `dir` (created on first use).
pub fn engine(db: &TestDb, dir: &std::path::Path) -> Engine {
    Engine::open(
        db.store.clone(),
        policy(),
        dir.to_path_buf(),
        &derbes_vault::KeyEnv::default(),
    )
    .unwrap()
}

/// [`engine`] with a clock the test moves.
pub fn clocked(db: &TestDb, dir: &std::path::Path, now: Arc<Mutex<DateTime<Utc>>>) -> Engine {
    engine(db, dir).with_clock(Arc::new(move || *now.lock().unwrap()))
}

pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub fn dpo() -> Actor {
    Actor::staff("dpo", "data_protection_officer")
}

pub fn backend() -> Actor {
    Actor::staff("backend", "backend_service")
}
