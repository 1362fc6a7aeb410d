#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The audit chain detects every change, deletion, insertion and reordering,
//! on SQLite and PostgreSQL.

use derbes_store::testing::{audit_record as record, audit_subject as subject, TestDb};
use derbes_store::{checkpoint_message, AuditQuery, Checkpoint, NewAuditRecord, Store};
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};

fn verify_sig(pk: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    UnparsedPublicKey::new(&ED25519, pk)
        .verify(msg, sig)
        .is_ok()
}

/// 30 records, a checkpoint at 20, a key trusted for it.
async fn fill(store: &Store) -> Vec<u8> {
    let records: Vec<_> = (1..=30).map(record).collect();
    let seqs = store.append_audit(&records[..10]).await.unwrap();
    assert_eq!(seqs, (1..=10).collect::<Vec<i64>>());
    store.append_audit(&records[10..20]).await.unwrap();
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let derbes_store::ChainTail { seq, hash } = store.audit_tail().await.unwrap().unwrap();
    let sig = key.sign(&checkpoint_message(seq, &hash));
    let mut w = store.write().await.unwrap();
    w.insert_checkpoint(&Checkpoint {
        seq,
        hash,
        signature: sig.as_ref().to_vec(),
        public_key: key.public_key().as_ref().to_vec(),
        at: chrono::DateTime::UNIX_EPOCH,
    })
    .await
    .unwrap();
    w.commit().await.unwrap();
    store.append_audit(&records[20..]).await.unwrap();
    key.public_key().as_ref().to_vec()
}

async fn first_bad(store: &Store, key: &[u8]) -> Option<(i64, String)> {
    store
        .verify_audit(Some(key), &verify_sig)
        .await
        .unwrap()
        .first_bad
}

macro_rules! tamper_test {
    ($name:ident, |$store:ident| $tamper:expr, $expect_seq:expr, $expect_text:expr) => {
        mod $name {
            use super::*;
            async fn body(db: TestDb) {
                let $store = &db.store;
                let key = fill($store).await;
                let ok = $store.verify_audit(Some(&key), &verify_sig).await.unwrap();
                assert_eq!(
                    (ok.records, ok.checkpoints, ok.first_bad.clone()),
                    (30, 1, None)
                );
                $tamper;
                let (seq, why) = first_bad($store, &key)
                    .await
                    .expect("tampering must be detected");
                assert_eq!(seq, $expect_seq, "{why}");
                assert!(why.contains($expect_text), "{why}");
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                body(TestDb::sqlite().await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = TestDb::postgres().await {
                    body(db).await;
                }
            }
        }
    };
}

tamper_test!(
    edit,
    |s| s
        .debug_execute("UPDATE audit_log SET decision = 'permit' WHERE seq = 8")
        .await
        .unwrap(),
    8,
    "changed"
);
tamper_test!(
    edit_reasons,
    |s| s
        .debug_execute("UPDATE audit_log SET reasons = '[]' WHERE seq = 25")
        .await
        .unwrap(),
    25,
    "changed"
);
tamper_test!(
    delete_middle,
    |s| s
        .debug_execute("DELETE FROM audit_log WHERE seq = 12")
        .await
        .unwrap(),
    12,
    "missing"
);
tamper_test!(
    delete_tail_past_checkpoint,
    |s| s
        .debug_execute("DELETE FROM audit_log WHERE seq > 15")
        .await
        .unwrap(),
    16,
    "gone"
);
tamper_test!(
    insert_renumbered,
    |s| {
        // Make room at 5 by shifting everything after it, then insert a forged record.
        s.debug_execute("UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 5")
            .await
            .unwrap();
        s.debug_execute("UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1005")
            .await
            .unwrap();
        s.debug_execute(
            "INSERT INTO audit_log (seq, at, actor, role, action, subject_id, purpose, categories, decision, reasons, details, prev_hash, hash) \
             SELECT 5, at, actor, role, action, subject_id, purpose, categories, 'permit', reasons, details, prev_hash, hash FROM audit_log WHERE seq = 6",
        )
        .await
        .unwrap();
    },
    6,
    "broken"
);
tamper_test!(
    reorder,
    |s| {
        s.debug_execute("UPDATE audit_log SET seq = -3 WHERE seq = 3")
            .await
            .unwrap();
        s.debug_execute("UPDATE audit_log SET seq = 3 WHERE seq = 4")
            .await
            .unwrap();
        s.debug_execute("UPDATE audit_log SET seq = 4 WHERE seq = -3")
            .await
            .unwrap();
    },
    3,
    "broken"
);
tamper_test!(
    forged_checkpoint_hash,
    |s| s
        .debug_execute("UPDATE audit_checkpoints SET seq = 19 WHERE seq = 20")
        .await
        .unwrap(),
    19,
    "checkpoint"
);

mod concurrency {
    use super::*;
    async fn body(db: TestDb) {
        let store = db.store.clone();
        let mut tasks = Vec::new();
        for t in 0..8 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..10 {
                    s.append_audit(&[record(t * 100 + i), record(t * 100 + i + 50)])
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let v = store.verify_audit(None, &verify_sig).await.unwrap();
        assert_eq!(
            (v.records, v.first_bad),
            (160, None),
            "concurrent writers extend one chain"
        );
        let page = store
            .audit_records(&AuditQuery {
                subject_id: Some(derbes_store::SubjectId::parse(&subject(1)).unwrap()),
                limit: 1000,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert!(!page.is_empty() && page.iter().all(|r| r.record.subject_id == Some(subject(1))));
        let page = store
            .audit_records(&AuditQuery {
                after: 150,
                limit: 5,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(
            page.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [151, 152, 153, 154, 155]
        );
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        body(TestDb::sqlite().await).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some(db) = TestDb::postgres().await {
            body(db).await;
        }
    }
}

/// One record proven from the nearest signed checkpoint after it, reading
/// only the records between (issue 12, defect 6): the walk is bounded by
/// the checkpoint interval, not the log; a change is caught even when every
/// later hash is recomputed, because the signed hash is no longer reached.
mod proofs {
    use super::*;
    use derbes_store::{record_hash, Backend, RecordProof};

    async fn prove(store: &Store, key: &[u8], seq: i64) -> RecordProof {
        store
            .prove_record(seq, Some(key), &verify_sig)
            .await
            .unwrap()
    }

    /// Rewrite record `seq` and recompute every hash after it, as someone
    /// with write access to the database but not the signing key would.
    async fn forge(store: &Store, seq: i64) {
        store
            .debug_execute(&format!(
                "UPDATE audit_log SET decision = 'permit' WHERE seq = {seq}"
            ))
            .await
            .unwrap();
        let rows = store
            .audit_records(&AuditQuery {
                after: seq - 1,
                limit: 1000,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        let mut prev = rows[0].prev_hash.clone();
        for row in rows {
            let hash = record_hash(&prev, row.seq, &row.record);
            let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
            let prev_hex: String = prev.iter().map(|b| format!("{b:02x}")).collect();
            let (h, p) = match store.backend() {
                Backend::Sqlite => (format!("X'{hex}'"), format!("X'{prev_hex}'")),
                Backend::Postgres => (
                    format!("'\\x{hex}'::bytea"),
                    format!("'\\x{prev_hex}'::bytea"),
                ),
            };
            store
                .debug_execute(&format!(
                    "UPDATE audit_log SET hash = {h}, prev_hash = {p} WHERE seq = {}",
                    row.seq
                ))
                .await
                .unwrap();
            prev = hash;
        }
    }

    async fn body(db: TestDb) {
        let store = &db.store;
        let key = fill(store).await;
        assert_eq!(
            prove(store, &key, 5).await,
            RecordProof::Signed {
                checkpoint: 20,
                walked: 16
            }
        );
        assert_eq!(
            prove(store, &key, 20).await,
            RecordProof::Signed {
                checkpoint: 20,
                walked: 1
            }
        );
        assert_eq!(
            prove(store, &key, 25).await,
            RecordProof::Unsigned { walked: 6 }
        );
        assert!(store
            .prove_record(31, Some(&key), &verify_sig)
            .await
            .is_err());
        // Another key's checkpoint proves nothing.
        assert!(matches!(
            store
                .prove_record(5, Some(&[7u8; 32]), &verify_sig)
                .await
                .unwrap(),
            RecordProof::Broken { seq: 20, .. }
        ));
        // A plain edit breaks the record's own hash; records before it and
        // after the checkpoint stand.
        store
            .debug_execute("UPDATE audit_log SET reasons = '[]' WHERE seq = 12")
            .await
            .unwrap();
        assert!(matches!(
            prove(store, &key, 12).await,
            RecordProof::Broken { seq: 12, .. }
        ));
        assert!(matches!(
            prove(store, &key, 3).await,
            RecordProof::Broken { seq: 12, .. }
        ));
        assert_eq!(
            prove(store, &key, 25).await,
            RecordProof::Unsigned { walked: 6 }
        );
        // A forged record with every later hash recomputed no longer
        // reaches the signed hash.
        forge(store, 8).await;
        match prove(store, &key, 8).await {
            RecordProof::Broken { seq, why } => {
                assert_eq!(seq, 20, "{why}");
                assert!(why.contains("checkpoint"), "{why}");
            }
            other => panic!("a forgery passed: {other:?}"),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        body(TestDb::sqlite().await).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some(db) = TestDb::postgres().await {
            body(db).await;
        }
    }
}

/// The engine's group-commit writer numbers a batch after the tail its
/// store last saw committed, without reading it. A writer it did not see
/// — another process, here a second store on the same database — moving
/// the tail first cannot fork the chain: the batch's first number is
/// taken, it rolls back whole and is numbered again under the lock.
async fn appender(db: TestDb) {
    let store = &db.store;
    let mut appender = store.audit_appender();
    let records: Vec<_> = (1..=30).map(record).collect();
    assert_eq!(
        appender.append(Vec::new()).await.unwrap(),
        Vec::<i64>::new()
    );
    assert_eq!(
        appender.append(records[..10].to_vec()).await.unwrap(),
        (1..=10).collect::<Vec<i64>>()
    );
    // A unit of work of this process: seen.
    store.append_audit(&records[10..15]).await.unwrap();
    assert_eq!(
        appender.append(records[15..20].to_vec()).await.unwrap(),
        (16..=20).collect::<Vec<i64>>()
    );
    // Another process: not seen, so the next batch's numbers are taken.
    let other = Store::open(&db.config).await.unwrap();
    other.append_audit(&records[20..25]).await.unwrap();
    assert_eq!(
        appender.append(records[25..].to_vec()).await.unwrap(),
        (26..=30).collect::<Vec<i64>>()
    );
    // Both at once, many times over; a batch larger than one insert.
    let o = other.clone();
    let rival = tokio::spawn(async move {
        for i in 0..40 {
            o.append_audit(&[record(100 + i)]).await.unwrap();
        }
    });
    let mut appended = 0;
    for i in 0..40 {
        let batch: Vec<_> = (0..1 + i % 3).map(|j| record(200 + 3 * i + j)).collect();
        let seqs = appender.append(batch.clone()).await.unwrap();
        assert_eq!(seqs.len(), batch.len());
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "dense: {seqs:?}");
        appended += batch.len() as i64;
    }
    let big: Vec<_> = (0..600).map(|j| record(1000 + j)).collect();
    let seqs = appender.append(big).await.unwrap();
    assert_eq!(seqs.len(), 600);
    rival.await.unwrap();
    // A second after the last rival, the known tail is trusted again
    // (PostgreSQL: the one-statement append), and a stale one once more
    // renumbered.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let total = 30 + 40 + appended + 600;
    assert_eq!(
        appender.append(vec![record(2000)]).await.unwrap(),
        [total + 1]
    );
    other.append_audit(&[record(2001)]).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        appender
            .append(vec![record(2002), record(2003)])
            .await
            .unwrap(),
        [total + 3, total + 4]
    );
    let v = store.verify_audit(None, &verify_sig).await.unwrap();
    assert_eq!(
        (v.records, v.first_bad),
        (total + 4, None),
        "one chain, every record once"
    );
    other.close().await;
}

derbes_store::both_databases!(appender);

/// Group records (an audience's chunks of decisions): each member is read
/// back in its subject's trail as a record of its own, and a member or an
/// outcome changed, added, removed or moved breaks the chain at the group
/// record — written through a unit of work and through the appender.
mod groups {
    use super::*;
    use derbes_store::{GroupBuilder, GroupOutcome};

    fn outcome(decision: &str) -> GroupOutcome {
        GroupOutcome {
            action: "decision".into(),
            decision: decision.into(),
            reasons: format!(r#"[{{"code":"{decision}ed"}}]"#),
        }
    }

    /// Record `i` as a group record of `members` (subject number, decision).
    fn group(i: i64, members: &[(i64, &str)]) -> NewAuditRecord {
        let mut g = GroupBuilder::default();
        for (s, d) in members {
            let o = g.outcome(outcome(d));
            g.push(subject(*s), o);
        }
        NewAuditRecord {
            action: "decisions".into(),
            subject_id: None,
            decision: "none".into(),
            reasons: "[]".into(),
            details: r#"{"audience":"a1"}"#.into(),
            group: Some(std::sync::Arc::new(g.build().unwrap().unwrap())),
            ..record(i)
        }
    }

    /// Records 1–12: a group at 6 (a unit of work) and at 10 (the appender).
    async fn fill(store: &Store) {
        let mut records: Vec<_> = (1..=12).map(record).collect();
        records[5] = group(6, &[(1, "permit"), (2, "deny"), (3, "deny")]);
        records[9] = group(10, &[(4, "deny"), (1, "permit")]);
        store.append_audit(&records[..6]).await.unwrap();
        let mut appender = store.audit_appender();
        assert_eq!(
            appender.append(records[6..].to_vec()).await.unwrap(),
            (7..=12).collect::<Vec<i64>>()
        );
    }

    async fn trail(store: &Store, q: AuditQuery) -> Vec<(i64, String, String)> {
        store
            .audit_records(&q)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.seq, r.record.action, r.record.decision))
            .collect()
    }

    fn of(n: i64) -> Option<derbes_store::SubjectId> {
        Some(derbes_store::SubjectId::parse(&subject(n)).unwrap())
    }

    async fn reads(db: TestDb) {
        let store = &db.store;
        fill(store).await;
        let v = store.verify_audit(None, &verify_sig).await.unwrap();
        assert_eq!((v.records, v.first_bad), (12, None));
        // Subject 1: its own record 1 and 11, and its member records in 6 and 10.
        let q = AuditQuery {
            subject_id: of(1),
            limit: 100,
            ..AuditQuery::default()
        };
        let decision = |seq: i64, d: &str| (seq, "decision".to_string(), d.to_string());
        assert_eq!(
            trail(store, q.clone()).await,
            [
                decision(1, "permit"),
                decision(6, "permit"),
                decision(10, "permit"),
                decision(11, "permit")
            ]
        );
        // A member as a record: the group's time, actor, purpose and details,
        // the member's subject and outcome, the group's number and hash.
        let rows = store.audit_records(&q).await.unwrap();
        let (member, sealed) = (&rows[1].record, &records_at(store, 6).await);
        assert_eq!(member.subject_id, Some(subject(1)));
        assert_eq!(member.reasons, r#"[{"code":"permited"}]"#);
        assert_eq!(
            (member.at, &member.actor),
            (sealed.record.at, &sealed.record.actor)
        );
        assert_eq!(member.details, sealed.record.details);
        assert_eq!(rows[1].hash, sealed.hash);
        // Paging and filters apply to members as to records.
        let page = |after, limit| AuditQuery {
            after,
            limit,
            ..q.clone()
        };
        assert_eq!(
            trail(store, page(1, 2)).await,
            [decision(6, "permit"), decision(10, "permit")]
        );
        assert_eq!(trail(store, page(6, 1)).await, [decision(10, "permit")]);
        let actor = AuditQuery {
            actor: Some(sealed.record.actor.clone()),
            ..q.clone()
        };
        assert!(trail(store, actor).await.iter().any(|r| r.0 == 6));
        let elsewhere = AuditQuery {
            actor: Some("nobody".into()),
            ..q.clone()
        };
        assert!(trail(store, elsewhere).await.is_empty());
        assert_eq!(
            trail(
                store,
                AuditQuery {
                    subject_id: of(2),
                    ..q.clone()
                }
            )
            .await,
            [
                decision(2, "permit"),
                decision(6, "deny"),
                decision(7, "permit"),
                decision(12, "deny")
            ]
        );
        // Without a subject, the group record is one record.
        let all = trail(
            store,
            AuditQuery {
                limit: 100,
                ..AuditQuery::default()
            },
        )
        .await;
        assert_eq!(all.len(), 12);
        assert_eq!(all[5], (6, "decisions".to_string(), "none".to_string()));
    }

    async fn records_at(store: &Store, seq: i64) -> derbes_store::AuditRow {
        store
            .audit_records(&AuditQuery {
                after: seq - 1,
                limit: 1,
                ..AuditQuery::default()
            })
            .await
            .unwrap()
            .remove(0)
    }

    derbes_store::both_databases!(reads);

    macro_rules! group_tamper_test {
        ($name:ident, [$($sql:expr),+], $expect_seq:expr, $expect_text:expr) => {
            mod $name {
                use super::*;
                async fn body(db: TestDb) {
                    let store = &db.store;
                    fill(store).await;
                    $(
                        let sql = $sql.replace("S1", &subject(1)).replace("S4", &subject(4));
                        store.debug_execute(&sql).await.unwrap();
                    )+
                    let v = store.verify_audit(None, &verify_sig).await.unwrap();
                    let (seq, why) = v.first_bad.expect("tampering must be detected");
                    assert_eq!(seq, $expect_seq, "{why}");
                    assert!(why.contains($expect_text), "{why}");
                    if seq <= 12 {
                        let proof = store.prove_record(seq, None, &verify_sig).await.unwrap();
                        assert!(
                            matches!(proof, derbes_store::RecordProof::Broken { seq: s, .. } if s == seq),
                            "{proof:?}"
                        );
                    }
                }
                derbes_store::both_databases!(body);
            }
        };
    }

    group_tamper_test!(
        member_outcome_changed,
        ["UPDATE audit_members SET outcome = 0 WHERE seq = 6 AND outcome = 1"],
        6,
        "changed"
    );
    group_tamper_test!(
        member_outcome_out_of_range,
        // 2^32 + 1: an index that wraps to a real one in 32 bits.
        ["UPDATE audit_members SET outcome = 4294967297 WHERE seq = 6 AND outcome = 1"],
        6,
        "changed"
    );
    group_tamper_test!(
        member_removed,
        ["DELETE FROM audit_members WHERE seq = 10 AND subject_id = 'S4'"],
        10,
        "changed"
    );
    group_tamper_test!(
        member_added,
        ["INSERT INTO audit_members (seq, subject_id, outcome) VALUES (6, 'S4', 0)"],
        6,
        "changed"
    );
    group_tamper_test!(
        outcome_reasons_changed,
        ["UPDATE audit_outcomes SET reasons = '[]' WHERE seq = 10"],
        10,
        "changed"
    );
    group_tamper_test!(
        group_removed,
        [
            "DELETE FROM audit_members WHERE seq = 6",
            "DELETE FROM audit_outcomes WHERE seq = 6"
        ],
        6,
        "changed"
    );
    group_tamper_test!(
        group_moved_to_another_record,
        [
            "UPDATE audit_members SET seq = 7 WHERE seq = 6",
            "UPDATE audit_outcomes SET seq = 7 WHERE seq = 6"
        ],
        6,
        "changed"
    );
    group_tamper_test!(
        member_after_the_tail,
        ["INSERT INTO audit_members (seq, subject_id, outcome) VALUES (13, 'S1', 0)"],
        13,
        "group rows"
    );
}
