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
    Engine::over_store(
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

/// A second officer: verifies what `dpo()` filed (four eyes).
pub fn dpo2() -> Actor {
    Actor::staff("dpo-2", "data_protection_officer")
}

pub fn support() -> Actor {
    Actor::staff("support", "support_agent")
}

/// The IIN of a child of ten on `today` (synthetic, valid).
pub fn child_iin(today: chrono::NaiveDate) -> String {
    let born = today - chrono::Months::new(120);
    (0..100u16)
        .find_map(|serial| derbes_kz::Iin::from_parts(born, derbes_kz::Sex::Male, serial).ok())
        .unwrap()
        .to_string()
}

/// Crypto-shred a subject by the path that destroys everything: a minor's
/// report (7.7), filed by derbes and verified by an officer, then the
/// scheduler's pass.
pub async fn shred(e: &Engine, s: derbes_core::SubjectId) {
    let today = derbes_core::almaty_date(e.now());
    let r = e
        .report_minor(
            &Actor::system(derbes_engine::SystemJob::Cli),
            s,
            &derbes_engine::MinorReport {
                iin: child_iin(today),
                born_on: None,
            },
        )
        .await
        .unwrap();
    e.act_on_request(
        &dpo(),
        &r.request_id,
        derbes_engine::RequestAction::Verify,
        None,
    )
    .await
    .unwrap();
    assert_eq!(e.run_jobs().await.unwrap().destroyed, 1);
}

/// Record these policy versions as published in the store.
pub async fn publish(store: &derbes_store::Store, versions: &[&LoadedPolicy]) {
    for v in versions {
        let mut tx = store.write().await.unwrap();
        tx.publish_policy(
            &v.policy().version,
            v.sha256(),
            v.policy().published,
            v.text(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
}
