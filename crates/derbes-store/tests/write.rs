#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The unit of work on SQLite and PostgreSQL: a change and its audit
//! records commit together or not at all, and units of work and the
//! engine's group commits extend one unbroken chain.

use chrono::Utc;
use derbes_store::{both_backends, NewAuditRecord, Store};

fn record(action: &str) -> NewAuditRecord {
    NewAuditRecord {
        at: Utc::now(),
        actor: "system:test".into(),
        role: "system".into(),
        action: action.into(),
        subject_id: None,
        purpose: None,
        categories: String::new(),
        decision: "none".into(),
        reasons: "[]".into(),
        details: "{}".into(),
        group: None,
    }
}

fn any_signature(_: &[u8], _: &[u8], _: &[u8]) -> bool {
    true
}

async fn all_or_nothing(store: &Store) {
    let tail = store.audit_tail().await.unwrap();
    {
        let mut w = store.write().await.unwrap();
        w.insert_token("t-dropped", "someone", "admin", "sha-dropped", Utc::now())
            .await
            .unwrap();
        w.audit(record("staff.add"));
        // Dropped without commit: a crash, an error on the way.
    }
    assert!(store.token_by_hash("sha-dropped").await.unwrap().is_none());
    assert_eq!(store.audit_tail().await.unwrap(), tail, "no record either");

    let mut w = store.write().await.unwrap();
    w.insert_token("t-kept", "someone", "admin", "sha-kept", Utc::now())
        .await
        .unwrap();
    w.audit(record("staff.add"));
    let seqs = w.commit().await.unwrap();
    assert_eq!(seqs.len(), 1);
    assert!(store.token_by_hash("sha-kept").await.unwrap().is_some());
    assert_eq!(store.audit_tail().await.unwrap().unwrap().seq, seqs[0]);

    // A piece that fails takes the rest of its unit with it.
    let mut w = store.write().await.unwrap();
    w.insert_token("t-second", "someone", "admin", "sha-second", Utc::now())
        .await
        .unwrap();
    assert!(w
        .insert_token("t-kept", "again", "admin", "sha-again", Utc::now())
        .await
        .is_err());
    drop(w);
    assert!(store.token_by_hash("sha-second").await.unwrap().is_none());
}

async fn one_chain_under_concurrency(store: &Store) {
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..4 {
        let s = store.clone();
        tasks.spawn(async move {
            for i in 0..15 {
                let mut w = s.write().await.unwrap();
                w.insert_token(
                    &format!("t-{t}-{i}"),
                    "someone",
                    "admin",
                    &format!("sha-{t}-{i}"),
                    Utc::now(),
                )
                .await
                .unwrap();
                w.audit(record("staff.add"));
                w.audit(record("second"));
                w.commit().await.unwrap();
            }
        });
        let s = store.clone();
        tasks.spawn(async move {
            for _ in 0..15 {
                s.append_audit(&[record("decision"), record("decision")])
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let v = store.verify_audit(None, &any_signature).await.unwrap();
    assert_eq!(v.first_bad, None);
    assert_eq!(v.records, 4 * 15 * 2 * 2);
}

both_backends!(atomic, all_or_nothing);
both_backends!(chain, one_chain_under_concurrency);

/// The store decides no transaction's bounds: no method of `Store` that
/// takes `&self` changes a table (but `write`, which opens a unit,
/// `append_audit`, the engine's group commit — itself a `Write` —, the
/// migrations and the test helpers). Every change is a method of `Write`.
#[test]
fn every_change_is_a_piece_of_a_write() {
    let dir = format!("{}/src", env!("CARGO_MANIFEST_DIR"));
    let mut writers = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        if file == "testing.rs" || file == "migrate.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (at, _) in text.match_indices("\nimpl Store {") {
            let block = &text[at..];
            let end = block.find("\n}\n").unwrap();
            let block = &block[..end];
            let fns: Vec<(usize, &str)> = block.match_indices("fn ").collect();
            for (i, (start, _)) in fns.iter().enumerate() {
                let stop = fns.get(i + 1).map_or(block.len(), |n| n.0);
                let body = &block[*start..stop];
                let name = &body[3..body.find(['(', '<']).unwrap()];
                let takes_self = body[..body.find(')').unwrap()].contains("&self");
                let changes = ["\"INSERT ", "\"UPDATE ", "\"DELETE "]
                    .iter()
                    .any(|k| body.contains(k));
                if takes_self && changes {
                    writers.push(format!("{file}:{name}"));
                }
            }
        }
    }
    assert_eq!(writers, Vec::<String>::new(), "changes outside a Write");
}

/// After personal data goes, SQLite's WAL is checkpointed and truncated so
/// no old page image outlives it — and on a store that stays busy it gives
/// up within its patience (250 ms): it says it could not, to be tried again.
#[tokio::test]
async fn expunge_truncates_the_wal_and_gives_up_when_busy() {
    let db = derbes_store::testing::TestDb::sqlite().await;
    let derbes_store::StoreConfig::Sqlite { path } = &db.config else {
        panic!("a SQLite store")
    };
    let wal = format!("{}-wal", path.display());
    let mut w = db.store.write().await.unwrap();
    w.insert_token("t-1", "someone", "admin", "sha-1", Utc::now())
        .await
        .unwrap();
    w.commit().await.unwrap();
    assert!(std::fs::metadata(&wal).unwrap().len() > 0);
    assert!(db.store.expunge().await.unwrap(), "done when idle");
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0, "truncated");

    let mut busy = db.store.write().await.unwrap();
    busy.insert_token("t-2", "someone", "admin", "sha-2", Utc::now())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    assert!(!db.store.expunge().await.unwrap(), "a writer is busy");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "did not wait"
    );
    busy.commit().await.unwrap();
    assert!(db.store.expunge().await.unwrap());
}
