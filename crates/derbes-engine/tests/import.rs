#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Importing an existing user base, on SQLite and PostgreSQL: every line
//! validated as a registration (refused lines by number, field and code,
//! never a value), consents to the version each person accepted at the time
//! they gave it, batches that commit with the checkpoint so an interrupted
//! import resumes and registers nobody twice, and a dry run that writes
//! nothing.

mod common;
#[path = "../../../policy/testdata/v1_1.rs"]
mod v1_1;

use std::sync::{Arc, Mutex};

use common::{at, backend, dpo};
use derbes_engine::{Actor, CsvColumns, Engine, ImportLine, SystemJob};
use derbes_policy::{LoadedPolicy, Operation};
use derbes_store::testing::TestDb;
use serde_json::{json, Value};

fn iin(n: u32) -> String {
    let born =
        chrono::NaiveDate::from_ymd_opt(1975, 1, 1).unwrap() + chrono::Days::new(n as u64 * 3);
    (0..100u16)
        .find_map(|serial| derbes_kz::Iin::from_parts(born, derbes_kz::Sex::Female, serial).ok())
        .unwrap()
        .to_string()
}

fn line(n: u32, consents: Value) -> String {
    json!({"fields": {"identity.iin": iin(n), "identity.rk_citizen": true, "full_name.surname": format!("Импортова{n}"),
                      "full_name.first_name": "Алия", "contact.phone": format!("+7701{n:07}")},
           "source": "subject", "collected_at": "2024-03-01T09:00:00+05:00", "consents": consents})
    .to_string()
}

fn policy_at(given: &str, version: Option<&str>) -> Value {
    let mut c = json!({"kind": "policy", "given_at": given, "evidence": {"collected_via": "in_app", "app_version": "2.9.0"}});
    if let Some(v) = version {
        c["policy_version"] = json!(v);
    }
    c
}

/// The lines, numbered from 1, read as the CLI reads JSON lines.
fn read(
    e: &Engine,
    text: &[String],
) -> Vec<(u64, Result<ImportLine, Vec<derbes_engine::LineProblem>>)> {
    text.iter()
        .enumerate()
        .map(|(i, l)| (i as u64 + 1, ImportLine::from_json(l, e.now())))
        .collect()
}

async fn import_validates_and_resumes(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(Mutex::new(at("2026-11-24T10:00:00+05:00")));
    // Two versions published; the one in force is 1.1, some accepted 1.0.
    let v1 = common::policy();
    let v2 = LoadedPolicy::from_text(v1_1::policy_1_1_text()).unwrap();
    common::publish(&db.store, &[&v1, &v2]).await;
    let e = Engine::over_store(
        db.store.clone(),
        v2,
        dir.path().to_path_buf(),
        &derbes_vault::KeyEnv::default(),
    )
    .unwrap()
    .with_clock({
        let now = now.clone();
        Arc::new(move || *now.lock().unwrap())
    });
    let old = v1.policy().version.clone();
    let lines = vec![
        line(
            1,
            json!([policy_at("2024-03-01T09:00:00+05:00", Some(&old))]),
        ),
        line(
            2,
            json!([policy_at("2025-06-01T09:00:00+05:00", None), {"kind": "marketing", "channel": "sms", "given_at": "2025-06-02T09:00:00+05:00"}]),
        ),
        // A wrong IIN: refused, and the report never repeats it.
        line(3, json!([policy_at("2025-06-01T09:00:00+05:00", None)]))
            .replace(&iin(3), "123456789012"),
        // A consent without the time it was given.
        line(4, json!([{"kind": "policy"}])),
        // The same person as line 2.
        line(2, json!([policy_at("2025-06-01T09:00:00+05:00", None)])),
        // A consent given in the future, to a version never published.
        line(6, json!([policy_at("2027-01-01T00:00:00Z", None)])),
        line(7, json!([policy_at("2025-01-01T00:00:00Z", Some("0.9"))])),
        "{not json".to_string(),
        line(9, json!([policy_at("2025-06-01T09:00:00+05:00", None)])),
        line(10, json!([policy_at("2025-06-01T09:00:00+05:00", None)])),
    ];
    let import = Actor::system(SystemJob::Import);
    // Not every role may import.
    assert!(e.import(&dpo(), "x", false).await.is_err());
    // A dry run reports and writes nothing.
    let mut dry = e.import(&import, "file-1", true).await.unwrap();
    dry.batch(read(&e, &lines)).await.unwrap();
    let r = dry.finish().await.unwrap();
    assert_eq!((r.imported, r.refused), (4, 6), "{r:?}");
    assert_eq!(db.store.subject_count().await.unwrap().active, 0);
    // Interrupted after the first batch (lines 1-4): the next run resumes at line 5.
    let all = read(&e, &lines);
    let mut first = e.import(&import, "file-1", false).await.unwrap();
    first.batch(all[..4].to_vec()).await.unwrap();
    first.flush().await.unwrap();
    drop(first);
    assert_eq!(db.store.subject_count().await.unwrap().active, 2);
    let mut again = e.import(&import, "file-1", false).await.unwrap();
    assert_eq!(again.resume_after(), 4);
    let rest: Vec<_> = all
        .into_iter()
        .filter(|(n, _)| *n > again.resume_after())
        .collect();
    for chunk in rest.chunks(3) {
        again.batch(chunk.to_vec()).await.unwrap();
    }
    let r = again.finish().await.unwrap();
    assert_eq!((r.lines, r.imported, r.refused), (6, 2, 4), "{r:?}");
    let codes: Vec<(u64, String, String)> = r
        .refused_lines
        .iter()
        .flat_map(|l| {
            l.problems
                .iter()
                .map(move |p| (l.line, p.field.clone(), p.code.clone()))
        })
        .collect();
    assert!(
        codes
            .iter()
            .any(|(n, _, c)| *n == 5 && c == "duplicate_subject"),
        "{codes:?}"
    );
    assert!(
        codes.contains(&(6, "consents[0].given_at".into(), "in_the_future".into())),
        "{codes:?}"
    );
    assert!(
        codes.contains(&(
            7,
            "consents[0].policy_version".into(),
            "unknown_policy_version".into()
        )),
        "{codes:?}"
    );
    assert!(
        codes.iter().any(|(n, _, c)| *n == 8 && c == "invalid_json"),
        "{codes:?}"
    );
    let report = serde_json::to_string(&r).unwrap();
    assert!(!report.contains("Импортова") && !report.contains("123456789012"));
    // Running the whole file again registers nobody twice.
    let mut third = e.import(&import, "file-1", false).await.unwrap();
    let left: Vec<_> = read(&e, &lines)
        .into_iter()
        .filter(|(n, _)| *n > third.resume_after())
        .collect();
    assert!(left.is_empty());
    third.batch(left).await.unwrap();
    third.finish().await.unwrap();
    assert_eq!(db.store.subject_count().await.unwrap().active, 4);
    // The first run's refusals (lines 3 and 4) were counted with its batch.
    assert_eq!(
        db.store.import_progress("file-1").await.unwrap().map(|p| (
            p.lines_done,
            p.imported,
            p.refused
        )),
        Some((10, 4, 6))
    );
    // Person 1 accepted 1.0 in 2024: their consent says so, and it covers what 1.0 covered.
    let s1 = e
        .lookup(&backend(), derbes_engine::LookupKind::Iin, &iin(1))
        .await
        .unwrap()
        .unwrap();
    let consents = e.consents(&backend(), s1).await.unwrap();
    assert_eq!(consents[0].record.policy_version, old);
    assert_eq!(consents[0].record.given_at, at("2024-03-01T09:00:00+05:00"));
    let q = derbes_engine::DecisionRequest {
        subject_id: s1,
        operation: Operation::Use,
        purpose: "identification".into(),
        categories: vec!["identity".into()],
        recipient: None,
        channel: None,
        legal_basis: None,
        reference: None,
    };
    assert_eq!(e.decide(&backend(), &q).await.unwrap().decision, "permit");
    // The data was collected when the file says.
    let data = e
        .data_for_purpose(&backend(), s1, "identification", None)
        .await
        .unwrap();
    assert!(
        data.fields
            .iter()
            .all(|f| f.collected_at == at("2024-03-01T09:00:00+05:00")),
        "{:?}",
        data.fields
    );
    // Each registration is audited, naming the import; the chain holds.
    let trail = e
        .audit_records(
            &dpo(),
            &derbes_engine::AuditQuery {
                subject_id: Some(s1),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(trail[0].action, "register");
    assert_eq!(trail[0].details["import"], "file-1");
    assert!(e.verify_audit().await.unwrap().first_bad.is_none());
}

derbes_store::both_databases!(import_validates_and_resumes);

/// CSV rows are the same lines: a header of field ids and words.
#[test]
fn csv_rows_are_lines() {
    let policy = common::policy();
    let now = at("2026-11-24T10:00:00+05:00");
    let header: Vec<String> = [
        "identity.iin",
        "identity.rk_citizen",
        "full_name.surname",
        "full_name.first_name",
        "contact.phone",
        "consents",
        "given_at",
        "app_version",
    ]
    .map(String::from)
    .to_vec();
    let cols = CsvColumns::new(policy.policy(), &header).unwrap();
    let row: Vec<String> = [
        iin(1).as_str(),
        "true",
        "Импортова",
        "Алия",
        "+77010000001",
        "policy;marketing:sms",
        "2025-01-01T10:00:00+05:00",
        "3.1.0",
    ]
    .map(String::from)
    .to_vec();
    let from_csv = cols.line(&row, now).unwrap();
    let json = json!({"fields": {"identity.iin": iin(1), "identity.rk_citizen": true, "full_name.surname": "Импортова",
        "full_name.first_name": "Алия", "contact.phone": "+77010000001"},
        "consents": [{"kind": "policy", "given_at": "2025-01-01T10:00:00+05:00", "evidence": {"app_version": "3.1.0"}},
                     {"kind": "marketing", "channel": "sms", "given_at": "2025-01-01T10:00:00+05:00", "evidence": {"app_version": "3.1.0"}}]});
    assert_eq!(
        from_csv,
        ImportLine::from_json(&json.to_string(), now).unwrap()
    );
    let bad: Vec<String> = ["identity.iin", "nickname"].map(String::from).to_vec();
    let p = CsvColumns::new(policy.policy(), &bad).unwrap_err();
    assert_eq!(
        (p[0].field.as_str(), p[0].code.as_str()),
        ("column 2", "unknown_column")
    );
    assert_eq!(
        cols.line(&row[..3], now).unwrap_err()[0].code,
        "wrong_column_count"
    );
}
