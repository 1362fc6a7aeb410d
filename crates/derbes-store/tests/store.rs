#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The storage suite: every test runs unchanged on SQLite and PostgreSQL.

use chrono::NaiveDate;
use derbes_store::{both_backends, latest_version, PublishOutcome, Store, StoreError, SubjectId};

/// Publish in a unit of work of its own.
async fn publish(
    store: &Store,
    version: &str,
    sha256: &str,
    day: NaiveDate,
    content: &str,
) -> Result<PublishOutcome, StoreError> {
    let mut w = store.write().await?;
    let outcome = w.publish_policy(version, sha256, day, content).await?;
    w.commit().await?;
    Ok(outcome)
}

async fn migrations_apply_once(store: &Store) {
    assert_eq!(store.schema_version().await.unwrap(), latest_version());
    // Already migrated by the harness: running again applies nothing.
    assert!(store.migrate().await.unwrap().is_empty());
    store.ping().await.unwrap();
}

async fn publish_is_idempotent_and_conflicts_are_refused(store: &Store) {
    let day = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
    assert_eq!(
        publish(store, "1.0.0", "aa", day, "content one")
            .await
            .unwrap(),
        PublishOutcome::Published
    );
    assert_eq!(
        publish(store, "1.0.0", "aa", day, "content one")
            .await
            .unwrap(),
        PublishOutcome::AlreadyPublished
    );
    match publish(store, "1.0.0", "bb", day, "content two").await {
        Err(StoreError::PolicyVersionConflict { version, existing }) => {
            assert_eq!(version, "1.0.0");
            assert_eq!(existing, "aa");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    publish(store, "1.1.0", "cc", day, "content «три» ✓")
        .await
        .unwrap();
    let versions = store.policy_versions().await.unwrap();
    assert_eq!(
        versions
            .iter()
            .map(|v| v.version.as_str())
            .collect::<Vec<_>>(),
        ["1.0.0", "1.1.0"]
    );
    assert_eq!(versions[0].published_on, day);
    let (v, content) = store.policy_version("1.1.0").await.unwrap().unwrap();
    assert_eq!(v.sha256, "cc");
    assert_eq!(content, "content «три» ✓", "content is kept byte for byte");
    assert!(store.policy_version("9.9.9").await.unwrap().is_none());
}

async fn concurrent_publishers_agree(store: &Store) {
    let day = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            publish(&s, "2.0.0", "hash", day, "same").await
        }));
    }
    let mut published = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            PublishOutcome::Published => published += 1,
            PublishOutcome::AlreadyPublished => {}
        }
    }
    assert_eq!(published, 1, "exactly one writer records a version");
}

/// What the database returns that does not decode is `Corrupt` — an error
/// naming the column, never a guess (an unknown status read as `destroyed`,
/// a bad time as 1970, a bad id dropped).
async fn damage_is_corrupt_never_a_guess(store: &Store) {
    fn corrupt<T: std::fmt::Debug>(r: Result<T, StoreError>, column: &str) {
        match r {
            Err(StoreError::Corrupt(m)) => assert!(m.contains(column), "{m}"),
            other => panic!("expected Corrupt naming `{column}`, got {other:?}"),
        }
    }
    let id = SubjectId::new();
    store
        .debug_execute(&format!(
            "INSERT INTO subjects (subject_id, status, created_at, policy_version) \
             VALUES ('{id}', 'gone', 0, '1.0.0')"
        ))
        .await
        .unwrap();
    corrupt(store.subject(id).await, "status");
    store
        .debug_execute(&format!(
            "UPDATE subjects SET status = 'active', created_at = {} WHERE subject_id = '{id}'",
            i64::MAX
        ))
        .await
        .unwrap();
    corrupt(store.subject(id).await, "created_at");
    store
        .debug_execute(
            "INSERT INTO requests (request_id, subject_id, kind, channel, requester, received_at, \
             due_at, state, details, updated_at) \
             VALUES ('r-1', 'not-a-subject', 'access', 'app', 'subject', 0, 0, 'received', '{}', 0)",
        )
        .await
        .unwrap();
    corrupt(store.request("r-1").await, "subject_id");
    store
        .debug_execute(&format!(
            "UPDATE requests SET subject_id = '{id}', state = 'lost' WHERE request_id = 'r-1'"
        ))
        .await
        .unwrap();
    corrupt(store.request("r-1").await, "state");
}

both_backends!(migrations, migrations_apply_once);
both_backends!(damage, damage_is_corrupt_never_a_guess);
both_backends!(publish, publish_is_idempotent_and_conflicts_are_refused);
both_backends!(concurrency, concurrent_publishers_agree);

#[tokio::test]
async fn sqlite_store_survives_reopen_and_uses_wal() {
    let dir = tempfile::tempdir().unwrap();
    let config = derbes_store::StoreConfig::sqlite_in(dir.path().join("nested"));
    {
        let store = Store::open_and_migrate(&config).await.unwrap();
        publish(
            &store,
            "1",
            "h",
            NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            "c",
        )
        .await
        .unwrap();
        store.close().await;
    }
    let store = Store::open_and_migrate(&config).await.unwrap();
    assert_eq!(store.policy_versions().await.unwrap().len(), 1);
    assert!(
        dir.path().join("nested/derbes.db-wal").exists()
            || dir.path().join("nested/derbes.db").exists()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("nested"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "the data directory is private");
    }
}

#[test]
fn config_choice_and_redaction() {
    use derbes_store::StoreConfig;
    let dir = std::path::Path::new("/data");
    assert_eq!(
        StoreConfig::choose(None, dir).unwrap(),
        StoreConfig::sqlite_in(dir)
    );
    assert_eq!(
        StoreConfig::choose(Some("  "), dir).unwrap(),
        StoreConfig::sqlite_in(dir)
    );
    let pg =
        StoreConfig::choose(Some("postgres://u:secret@db:5432/x?sslmode=require"), dir).unwrap();
    assert_eq!(pg.redacted(), "postgres db:5432/x");
    assert!(!pg.redacted().contains("secret"));
    assert!(StoreConfig::choose(Some("mysql://x"), dir).is_err());
    assert_eq!(
        StoreConfig::choose(Some("sqlite:///tmp/a.db"), dir).unwrap(),
        StoreConfig::Sqlite {
            path: "/tmp/a.db".into()
        }
    );
}

/// SQLite as ARCHITECTURE.md describes it: built without allocation
/// statistics (one process-wide mutex per `malloc` otherwise) and without
/// STAT4 (a re-prepare per new bound value once ANALYZE has run), both set by
/// `LIBSQLITE3_FLAGS` in `.cargo/config.toml`; WAL, every commit durable;
/// the pool's connections not mapping the file (a map is dropped whole at
/// each read after another connection wrote; the store's own connections,
/// which map it, are checked in `lite.rs`).
#[tokio::test]
async fn sqlite_is_built_and_opened_as_documented() {
    let db = derbes_store::testing::TestDb::sqlite().await;
    let options = db
        .store
        .debug_texts("SELECT compile_options FROM pragma_compile_options")
        .await
        .unwrap();
    assert!(
        options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
        "{options:?}"
    );
    assert!(
        !options.iter().any(|o| o.starts_with("ENABLE_STAT")),
        "{options:?}"
    );
    // Not among the compile options SQLite reports: the flag the build
    // passed it (cargo's `[env]` reaches the build script and this test).
    assert!(
        option_env!("LIBSQLITE3_FLAGS")
            .is_some_and(|f| f.split_whitespace().any(|x| x == "-DHAVE_FDATASYNC=1")),
        "SQLite is built to sync with fdatasync"
    );
    for (pragma, expected) in [
        ("PRAGMA mmap_size", "0"),
        ("PRAGMA journal_mode", "wal"),
        ("PRAGMA synchronous", "2"),
        ("PRAGMA cache_spill", "0"),
        ("PRAGMA wal_autocheckpoint", "40000"),
    ] {
        assert_eq!(
            db.store.debug_texts(pragma).await.unwrap(),
            [expected],
            "{pragma}"
        );
    }
}

/// A unit of work's commit on the pool is copied back from the WAL into the
/// database file by the file's checkpointer, not by the committing
/// connection (its own automatic checkpoint waits for 40,000 pages).
#[tokio::test]
async fn a_pool_commit_is_copied_back_by_the_checkpointer() {
    let db = derbes_store::testing::TestDb::sqlite().await;
    let derbes_store::StoreConfig::Sqlite { path } = &db.config else {
        panic!("a SQLite store");
    };
    let size = || std::fs::metadata(path).unwrap().len();
    let before = size();
    let details = "x".repeat(1_000);
    let records: Vec<_> = (0..2_000)
        .map(|i| derbes_store::NewAuditRecord {
            at: chrono::DateTime::from_timestamp_micros(1_700_000_000_000_000 + i).unwrap(),
            actor: "staff".into(),
            role: "backend_service".into(),
            action: "decision".into(),
            subject_id: None,
            purpose: None,
            categories: String::new(),
            decision: "none".into(),
            reasons: "[]".into(),
            details: format!("{{\"pad\":\"{details}\"}}"),
            group: None,
        })
        .collect();
    db.store.append_audit(records).await.unwrap();
    // ~2.5 MB committed, in the WAL: far below the connection's own
    // automatic checkpoint, so only the checkpointer copies it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while size() < before + 2_000_000 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        size() >= before + 2_000_000,
        "copied back: {} → {}",
        before,
        size()
    );
}
