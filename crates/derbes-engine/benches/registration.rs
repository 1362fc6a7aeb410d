#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Registrations per second end to end (validate, seal, blind-index, one
//! durable transaction) on SQLite and PostgreSQL, against a peer run in the
//! same process: plain durable one-row commits on the same database at the
//! same concurrency. The ratio says how close registration is to the
//! database's own commit rate. Also lookups by IIN per second.
//!
//! `cargo bench -p derbes-engine --bench registration` (PostgreSQL from
//! DERBES_TEST_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use derbes_core::{synthetic, RegistrationRequest};
use derbes_engine::{Engine, LookupKind};
use derbes_policy::LoadedPolicy;
use derbes_store::testing::TestDb;

const N: u64 = 2000;

async fn run(name: &str, db: TestDb, concurrency: u64) {
    let policy =
        LoadedPolicy::from_text(include_str!("../../../policy/ibusiness.toml").to_string())
            .unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::with_keyring(
        db.store.clone(),
        policy,
        derbes_vault::Keyring::ephemeral(),
        None,
    );
    let peer = db
        .store
        .bench_durable_commits(N, concurrency)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let today = derbes_core::almaty_date(engine.now());
    // Adults of the synthetic population, registrations only.
    let people: Vec<_> = (0..N * 2)
        .map(|i| synthetic::subject(9, i, today))
        .filter(|s| !s.minor)
        .take(N as usize)
        .collect();
    let requests: Arc<Vec<RegistrationRequest>> = Arc::new(
        people
            .iter()
            .map(|s| {
                serde_json::from_value(s.registration.clone()).unwrap_or_else(|e| panic!("{e}"))
            })
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (engine, requests, next) = (engine.clone(), requests.clone(), next.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(req) = requests.get(i) else { return };
                engine
                    .register(
                        &derbes_engine::Actor::system(derbes_engine::SystemJob::Cli),
                        req,
                    )
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let reg = start.elapsed();
    let start = Instant::now();
    for p in &people {
        let found = engine
            .lookup(
                &derbes_engine::Actor::system(derbes_engine::SystemJob::Cli),
                LookupKind::Iin,
                &p.iin,
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(found.is_some());
    }
    let lookups = start.elapsed();
    let peer_rate = N as f64 / peer.as_secs_f64();
    let reg_rate = N as f64 / reg.as_secs_f64();
    println!(
        "{name:<9} c={concurrency:<2} peer durable commits/s {peer_rate:>7.0} | registrations/s {reg_rate:>7.0} | ratio {:.2} | lookups by IIN/s {:>7.0}",
        reg_rate / peer_rate,
        N as f64 / lookups.as_secs_f64()
    );
}

fn main() {
    // `cargo test --benches` passes --bench-free args; only run under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    rt.block_on(async {
        for c in [1, 8] {
            run("sqlite", TestDb::sqlite().await, c).await;
            if let Some(db) = TestDb::postgres().await {
                run("postgres", db, c).await;
            }
        }
    });
}
