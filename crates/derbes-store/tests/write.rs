#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The unit of work on SQLite and PostgreSQL: a change and its audit
//! records commit together or not at all, and units of work and the
//! engine's group commits extend one unbroken chain.

use chrono::Utc;
use derbes_store::{
    both_backends, FieldRow, ImportBatch, ImportProgress, NewAuditRecord, NewConsent, NewSubject,
    Store, StoreError, SubjectId,
};

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
both_backends!(import_batches, import_batches_skip_taken_identifiers);

/// The store decides no transaction's bounds: no method of `Store` that
/// takes `&self` changes a table (but `write`, which opens a unit, the
/// migrations and the test helpers). Every change is a method of `Write`,
/// with two exceptions named here: `append_audit` (audit records alone,
/// itself a `Write`) and an import's batch (`write_import_batch`: the
/// subjects, their records and the checkpoint, whole — on PostgreSQL a
/// `Write`, on SQLite the same transaction on a connection of the store's
/// own, see `import_batches_skip_taken_identifiers`).
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
                let changes = [
                    "\"INSERT ",
                    "\"UPDATE ",
                    "\"DELETE ",
                    "self.write()",
                    "lite_write_",
                ]
                .iter()
                .any(|k| body.contains(k));
                if takes_self && changes {
                    writers.push(format!("{file}:{name}"));
                }
            }
        }
    }
    writers.sort();
    assert_eq!(
        writers,
        [
            "imports.rs:write_import_batch",
            "imports.rs:write_import_batch_in_unit",
            "write.rs:append_audit",
        ],
        "changes outside a Write"
    );
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

/// A synthetic subject with an IIN and a phone digest, a field and a consent.
fn subject(iin: u8, phone: u8, kek: &str) -> NewSubject {
    let now = Utc::now();
    NewSubject {
        subject_id: SubjectId::new(),
        policy_version: "1.0".into(),
        created_at: now,
        kek_id: kek.into(),
        wrapped_key: vec![7; 40],
        fields: vec![FieldRow {
            field: "full_name.surname".into(),
            sealed: vec![1, 2, 3],
            source: "subject".into(),
            collected_at: now,
            purposes: "identification".into(),
            version: 1,
        }],
        index: vec![
            ("iin".into(), vec![iin; 32]),
            ("phone".into(), vec![phone; 32]),
        ],
        consents: vec![NewConsent {
            consent_id: format!("c-{iin}-{phone}"),
            kind: "policy".into(),
            given_at: now,
            expires_at: None,
            record_json: "{}".into(),
            receipt_sha256: format!("r-{iin}-{phone}"),
            policy_sha256: "00".into(),
            terms: None,
        }],
    }
}

fn batch(subjects: Vec<NewSubject>, lines_done: i64, dry_run: bool) -> ImportBatch {
    let records = subjects
        .iter()
        .map(|s| NewAuditRecord {
            subject_id: Some(s.subject_id.to_string()),
            ..record("register")
        })
        .collect();
    ImportBatch {
        import_id: "file".into(),
        subjects,
        records,
        progress: ImportProgress {
            lines_done,
            imported: 0,
            refused: 1,
        },
        now: Utc::now(),
        dry_run,
    }
}

/// An import's batch writes the same on SQLite (a connection of the
/// store's own) as on PostgreSQL (a unit of work): a subject whose IIN
/// someone has is skipped and its phone, written first, removed again; of
/// two in the batch with one phone the second is skipped; the records are
/// those of the subjects registered, on the one chain; a dry run and a
/// changed KEK leave nothing, and the batch stays the caller's.
async fn import_batches_skip_taken_identifiers(store: &Store) {
    let mut w = store.write().await.unwrap();
    w.insert_subject(&subject(1, 1, "kek-a")).await.unwrap();
    w.audit(record("register"));
    w.commit().await.unwrap();

    // A dry run: the same answer, nothing kept.
    let subjects = vec![subject(2, 2, "kek-a"), subject(1, 3, "kek-a")];
    let mut dry = batch(subjects, 2, true);
    let tail = store.audit_tail().await.unwrap();
    let written = store.write_import_batch(&mut dry).await.unwrap();
    assert_eq!(written.skipped, vec![(1, "iin".to_string())]);
    assert_eq!(dry.subjects.len(), 2, "the batch comes back");
    assert_eq!(store.subject_count().await.unwrap().active, 1);
    assert_eq!(store.audit_tail().await.unwrap(), tail);
    assert!(store.import_progress("file").await.unwrap().is_none());

    let subjects = vec![
        subject(2, 2, "kek-a"),
        // IIN 1 is taken: skipped, and its phone (3) not kept.
        subject(1, 3, "kek-a"),
        // Phone 2 was taken earlier in the batch: skipped.
        subject(4, 2, "kek-a"),
        subject(5, 5, "kek-a"),
    ];
    let ids: Vec<SubjectId> = subjects.iter().map(|s| s.subject_id).collect();
    let mut b = batch(subjects, 4, false);
    let written = store.write_import_batch(&mut b).await.unwrap();
    assert_eq!(
        written.skipped,
        vec![(1, "iin".to_string()), (2, "phone".to_string())]
    );
    assert_eq!(
        written.progress,
        ImportProgress {
            lines_done: 4,
            imported: 2,
            refused: 3
        }
    );
    assert_eq!(
        store.import_progress("file").await.unwrap(),
        Some(written.progress)
    );
    assert_eq!(store.subject_count().await.unwrap().active, 3);
    assert_eq!(store.lookup("phone", &[3; 32]).await.unwrap(), None);
    assert_eq!(store.lookup("iin", &[4; 32]).await.unwrap(), None);
    assert_eq!(store.lookup("phone", &[2; 32]).await.unwrap(), Some(ids[0]));
    assert_eq!(store.subject_fields(ids[3]).await.unwrap().len(), 1);
    assert!(store
        .subject_key(&ids[3].to_string())
        .await
        .unwrap()
        .is_some());
    for (i, id) in ids.iter().enumerate() {
        let trail = store
            .audit_records(&derbes_store::AuditQuery {
                subject_id: Some(*id),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(trail.len(), usize::from(i == 0 || i == 3), "subject {i}");
    }
    let v = store.verify_audit(None, &any_signature).await.unwrap();
    assert!(v.first_bad.is_none() && v.records == 3, "{v:?}");
    // The appender numbers after the batch's records: one chain.
    let mut appender = store.audit_appender();
    appender.append(vec![record("decision")]).await.unwrap();
    assert!(store
        .verify_audit(None, &any_signature)
        .await
        .unwrap()
        .first_bad
        .is_none());

    // The KEK changed: nothing written, the batch kept for wrapping anew.
    let mut w = store.write().await.unwrap();
    w.set_active_kek("kek-b", Utc::now()).await.unwrap();
    w.commit().await.unwrap();
    let tail = store.audit_tail().await.unwrap();
    let mut late = batch(vec![subject(6, 6, "kek-a")], 5, false);
    assert!(matches!(
        store.write_import_batch(&mut late).await,
        Err(StoreError::KekChanged { active }) if active == "kek-b"
    ));
    assert_eq!(late.subjects.len(), 1);
    assert_eq!(store.subject_count().await.unwrap().active, 3);
    assert_eq!(store.audit_tail().await.unwrap(), tail);
    late.subjects[0].kek_id = "kek-b".into();
    assert!(store
        .write_import_batch(&mut late)
        .await
        .unwrap()
        .skipped
        .is_empty());
    assert_eq!(store.subject_count().await.unwrap().active, 4);
}
