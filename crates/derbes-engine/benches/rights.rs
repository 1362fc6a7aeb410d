#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The rights desk's heavy answers, each against a peer run in the same
//! process on the same database, printing both and their ratio:
//!
//! - access export of a subject with 1,000 field values (current and
//!   previous), 50 consents and 100 disclosures — peer: reading the same
//!   rows raw from the store (no decision, no audit, nothing opened);
//! - destruction of such a subject on its request (the scheduled job:
//!   everything but what a law keeps deleted, certificate, audit record) —
//!   peer: bare SQL deleting the subject's rows;
//! - a destruction certificate confirmed while 10,000 and 100,000 audit
//!   records follow it — peer: walking the whole chain (how it was done);
//! - the retention purge of 100,000 expired subjects on SQLite — peer: plain
//!   set-based SQL statements deleting the same rows.
//!
//! `cargo bench -p derbes-engine --bench rights` (SQLite; PostgreSQL too for
//! the first two when DERBES_TEST_DATABASE_URL reaches one).
//! `DERBES_BENCH_PURGE_SUBJECTS` changes the purge's population (default 100000).

use std::time::{Duration, Instant};

use derbes_core::{synthetic, SubjectId};
use derbes_engine::{Actor, Engine, NewRequest};
use derbes_policy::{Channel, FieldType, LoadedPolicy};
use derbes_store::testing::TestDb;
use serde_json::json;

fn engine(db: &TestDb) -> Engine {
    let policy =
        LoadedPolicy::from_text(include_str!("../../../policy/ibusiness.toml").to_string())
            .unwrap();
    Engine::with_keyring(
        db.store.clone(),
        policy,
        derbes_vault::Keyring::ephemeral(),
        None,
    )
}

fn backend() -> Actor {
    Actor::staff("bench-backend", "backend_service")
}

fn dpo() -> Actor {
    Actor::staff("bench-dpo", "data_protection_officer")
}

/// A subject with 1,000 values (current and previous), 50 consents, 100 disclosures.
async fn big_subject(e: &Engine, st: &derbes_store::Store, n: u64) -> SubjectId {
    let today = derbes_core::almaty_date(e.now());
    let person = (n * 4..)
        .map(|i| synthetic::subject(77, i, today))
        .find(|s| !s.minor)
        .unwrap();
    let reg = serde_json::from_value(person.registration.clone()).unwrap();
    let s = e
        .register(&Actor::system(derbes_engine::SystemJob::Cli), &reg)
        .await
        .unwrap()
        .subject_id;
    let p = &e.policy().policy();
    let text_fields: Vec<String> = p
        .categories
        .iter()
        // Personal details are corrected; technical data is collected for a purpose.
        .filter(|c| {
            c.personal && !c.technical && !matches!(c.id.as_str(), "entrepreneur" | "organisation")
        })
        .flat_map(|c| {
            c.fields
                .iter()
                .filter(|f| f.ty == FieldType::Text)
                .map(move |f| format!("{}.{}", c.id, f.id))
        })
        .collect();
    let mut values = st.subject_fields(s).await.unwrap().len();
    let mut round = 0;
    while values < 1000 {
        let take = (1000 - values).min(text_fields.len());
        let fields = text_fields[..take]
            .iter()
            .map(|f| (f.clone(), json!(format!("value {round} of {f}"))))
            .collect();
        e.rectify(&backend(), s, &fields, None, "benchmark correction")
            .await
            .unwrap();
        values += take;
        round += 1;
    }
    for i in 0..49 {
        let channel = Channel::ALL[i % Channel::ALL.len()];
        let c = serde_json::from_value(json!({"kind": "marketing", "channel": channel})).unwrap();
        e.add_consent(&backend(), s, &c).await.unwrap();
    }
    for i in 0..100 {
        let d = serde_json::from_value(json!({
            "subject_id": s, "recipient": "affiliates", "purpose": "contract_performance",
            "categories": ["full_name", "contact"], "legal_basis": format!("consent; order {i}")
        }))
        .unwrap();
        e.disclose(&backend(), &d).await.unwrap();
    }
    s
}

async fn request(e: &Engine, s: SubjectId, kind: &str) -> String {
    let r: NewRequest = serde_json::from_value(
        json!({"subject_id": s, "kind": kind, "channel": "in_app", "requester": "subject"}),
    )
    .unwrap();
    // Filed in the app for its signed-in user: verified by that sign-in.
    e.create_request(&backend(), &r).await.unwrap().request_id
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn export_and_destruction(name: &str, db: TestDb) {
    let e = engine(&db);
    let s = big_subject(&e, &db.store, 1).await;
    let r = request(&e, s, "access").await;
    let x = e.export(&dpo(), &r).await.unwrap();
    let values = x.fields.len() + x.previous_values.len();
    assert!(values >= 1000, "{values}");
    assert_eq!((x.consents.len(), x.disclosures.len()), (50, 100));
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        let t = Instant::now();
        let x = e.export(&dpo(), &r).await.unwrap();
        ours.push(t.elapsed());
        std::hint::black_box(x);
        let t = Instant::now();
        let st = &db.store;
        let raw = (
            st.subject_fields(s).await.unwrap(),
            st.subject_history(s).await.unwrap(),
            st.consents(s).await.unwrap(),
            st.disclosures(s).await.unwrap(),
        );
        peer.push(t.elapsed());
        std::hint::black_box(raw);
    }
    let (o, p) = (median(ours), median(peer));
    println!(
        "{name:<9} access export ({values} values, 50 consents, 100 disclosures): median {} | peer raw row reads {} | ratio {:.1}",
        ms(o),
        ms(p),
        o.as_secs_f64() / p.as_secs_f64()
    );

    // Destruction of subjects of the same shape, one at a time.
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    let mut destroyed = String::new();
    for i in 0..5 {
        let s = big_subject(&e, &db.store, 100 + i * 2).await;
        destroyed = request(&e, s, "destruction").await;
        let t = Instant::now();
        assert_eq!(e.run_jobs().await.unwrap().destroyed, 1);
        ours.push(t.elapsed());
        let s = big_subject(&e, &db.store, 101 + i * 2).await;
        let t = Instant::now();
        db.store.bench_bare_shred(&s.to_string()).await.unwrap();
        peer.push(t.elapsed());
    }
    let (o, p) = (median(ours), median(peer));
    println!(
        "{name:<9} destruction (job: shred + certificate + audit): median {} | peer bare shred {} | ratio {:.1}",
        ms(o),
        ms(p),
        o.as_secs_f64() / p.as_secs_f64()
    );
    certificate_as_the_log_grows(name, &e, &db, &destroyed).await;
}

/// A destruction certificate confirmed against the audit log while the log
/// grows after it (with a checkpoint every 1,000 records, as the scheduler
/// signs them) — peer: walking the whole chain, as confirming did before.
async fn certificate_as_the_log_grows(name: &str, e: &Engine, db: &TestDb, request_id: &str) {
    let filler = |i: i64| derbes_store::NewAuditRecord {
        at: e.now(),
        actor: "bench".into(),
        role: "backend_service".into(),
        action: "decision".into(),
        subject_id: None,
        purpose: Some("identification".into()),
        categories: "identity".into(),
        decision: "permit".into(),
        reasons: "[]".into(),
        details: format!("{{\"i\":{i}}}"),
        group: None,
    };
    let mut appended = 0i64;
    for target in [10_000i64, 100_000] {
        while appended < target {
            let batch: Vec<_> = (appended..appended + 1000).map(filler).collect();
            db.store.append_audit(batch).await.unwrap();
            e.checkpoint().await.unwrap();
            appended += 1000;
        }
        let (mut ours, mut peer) = (Vec::new(), Vec::new());
        for _ in 0..5 {
            let t = Instant::now();
            let c = e.certificate(&dpo(), request_id).await.unwrap();
            ours.push(t.elapsed());
            assert!(c.confirmed_by_audit && c.signed_checkpoint.is_some());
            let t = Instant::now();
            assert!(e.verify_audit().await.unwrap().first_bad.is_none());
            peer.push(t.elapsed());
        }
        let (o, p) = (median(ours), median(peer));
        println!(
            "{name:<9} certificate confirmed with {target}+ audit records after it: median {} | peer whole-chain walk {} | ratio {:.3}",
            ms(o),
            ms(p),
            o.as_secs_f64() / p.as_secs_f64()
        );
    }
}

/// `n` subjects whose relationship ended in 2015, five sealed fields and two
/// index entries each, written straight into the tables (the purge never
/// opens a value, so random bytes stand in for ciphertext).
async fn expired_population(db: &TestDb, n: u64) {
    let t2014 = 1_393_668_000_000_000i64; // 2014-03-01
    let t2015 = 1_420_070_400_000_000i64; // 2015-01-01
    let ids = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) \
         SELECT printf('01900000-0000-7000-8000-%012d', i) AS id FROM n"
    );
    let st = &db.store;
    for sql in [
        format!("INSERT INTO subjects (subject_id, status, created_at, policy_version, relationship_ended_at) SELECT id, 'active', {t2014}, '1.0.0', {t2015} FROM ({ids})"),
        format!("INSERT INTO subject_keys (subject_id, kek_id, wrapped, created_at) SELECT id, 'bench', randomblob(60), {t2014} FROM ({ids})"),
        format!(
            "INSERT INTO subject_fields (subject_id, field, sealed, source, collected_at, purposes, version) \
             SELECT id, f.name, randomblob(48), 'subject', {t2014}, '', 1 FROM ({ids}) CROSS JOIN \
             (SELECT 'identity.iin' AS name UNION ALL SELECT 'identity.rk_citizen' UNION ALL SELECT 'full_name.surname' \
              UNION ALL SELECT 'full_name.first_name' UNION ALL SELECT 'contact.phone') f"
        ),
        format!("INSERT INTO blind_index (kind, digest, subject_id) SELECT 'iin', randomblob(32), id FROM ({ids})"),
        format!("INSERT INTO blind_index (kind, digest, subject_id) SELECT 'phone', randomblob(32), id FROM ({ids})"),
    ] {
        st.debug_execute(&sql).await.unwrap();
    }
}

async fn purge(n: u64) {
    // derbes' purge.
    let db = TestDb::sqlite().await;
    expired_population(&db, n).await;
    let e = engine(&db);
    let t = Instant::now();
    let report = e
        .purge(
            &Actor::system(derbes_engine::SystemJob::Cli),
            false,
            &|_| {},
        )
        .await
        .unwrap();
    let ours = t.elapsed();
    assert_eq!(report.subjects_destroyed, n);
    // The peer: the same rows deleted by five plain SQL statements.
    let db = TestDb::sqlite().await;
    expired_population(&db, n).await;
    let t = Instant::now();
    let st = &db.store;
    let doomed = "SELECT subject_id FROM subjects WHERE relationship_ended_at IS NOT NULL";
    for table in [
        "subject_keys",
        "subject_fields",
        "subject_field_history",
        "blind_index",
    ] {
        st.debug_execute(&format!(
            "DELETE FROM {table} WHERE subject_id IN ({doomed})"
        ))
        .await
        .unwrap();
    }
    st.debug_execute(
        "UPDATE subjects SET status = 'destroyed' WHERE relationship_ended_at IS NOT NULL",
    )
    .await
    .unwrap();
    let peer = t.elapsed();
    println!(
        "sqlite    purge of {n} expired subjects (with {n} certificates and audit records): {:.1} s ({:.0} subjects/s) | peer plain SQL deletes {:.1} s | ratio {:.1}",
        ours.as_secs_f64(),
        n as f64 / ours.as_secs_f64(),
        peer.as_secs_f64(),
        ours.as_secs_f64() / peer.as_secs_f64()
    );
}

fn main() {
    // `cargo test --benches` runs bench binaries without --bench; only run under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let n = std::env::var("DERBES_BENCH_PURGE_SUBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        export_and_destruction("sqlite", TestDb::sqlite().await).await;
        if let Some(db) = TestDb::postgres().await {
            export_and_destruction("postgres", db).await;
        }
        purge(n).await;
    });
}
