#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Withdrawal, destruction, the scheduler and the certificate, on both backends.

mod common;

use common::{dpo, engine};
use derbes_engine::{Actor, Engine, EngineError, NewRequest, RequestAction, RequestState};
use derbes_store::testing::{contains_text, TestDb};
use serde_json::json;

const IIN: &str = "871008401427";
const PHONE: &str = "+77015550077";
const SURNAME: &str = "Жаксыбекова";
const COOKIE: &str = "session=7f3a9c0e5b21";

async fn register(e: &Engine) -> derbes_core::SubjectId {
    let reg: derbes_core::RegistrationRequest = serde_json::from_value(json!({
        "fields": {"identity.iin": IIN, "identity.rk_citizen": true, "full_name.surname": SURNAME,
                   "full_name.first_name": "Аяулым", "contact.phone": PHONE},
        "consents": [{"kind": "policy"}, {"kind": "marketing", "channel": "push"}]
    }))
    .unwrap();
    e.register(&Actor::system(derbes_engine::SystemJob::Cli), &reg)
        .await
        .unwrap()
        .subject_id
}

async fn request(e: &Engine, s: derbes_core::SubjectId, kind: &str) -> String {
    let r: NewRequest = serde_json::from_value(
        json!({"subject_id": s, "kind": kind, "channel": "written", "requester": "subject"}),
    )
    .unwrap();
    // Filed by support, verified by the officer (four eyes).
    let r = e.create_request(&common::support(), &r).await.unwrap();
    e.act_on_request(&dpo(), &r.request_id, RequestAction::Verify, None)
        .await
        .unwrap()
        .request_id
}

async fn withdrawal_flow(db: TestDb) {
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(Mutex::new(common::at("2026-11-24T10:00:00+05:00")));
    let e = common::clocked(&db, dir.path(), now.clone());
    let s = register(&e).await;
    let backend = Actor::staff("b", "backend_service");
    // Cookies, collected with their consent: no law keeps them.
    e.add_consent(
        &backend,
        s,
        &serde_json::from_value(json!({"kind": "cookies"})).unwrap(),
    )
    .await
    .unwrap();
    e.collect(
        &backend,
        s,
        "service_access",
        &std::collections::BTreeMap::from([("app_data.cookies".to_string(), json!(COOKIE))]),
        Some("device"),
    )
    .await
    .unwrap();
    let obligation = e
        .add_obligation(
            &backend,
            s,
            &serde_json::from_value(json!({"kind": "contract", "reference": "C-2026-0042"}))
                .unwrap(),
        )
        .await
        .unwrap();

    // Refused while a contract is open.
    let r = request(&e, s, "withdrawal").await;
    let v = e.request(&dpo(), &r).await.unwrap();
    assert_eq!(v.state, RequestState::Refused);
    assert_eq!(
        v.state_said,
        Some(derbes_engine::Said::OutstandingObligations {
            obligations: vec!["contract C-2026-0042".into()]
        })
    );
    assert!(
        e.data_for_purpose(&backend, s, "identification", None)
            .await
            .is_ok(),
        "nothing stopped"
    );

    // Accepted once it is closed: processing stops at once.
    assert!(e
        .close_obligation(&backend, s, &obligation.obligation_id)
        .await
        .unwrap());
    let r = request(&e, s, "withdrawal").await;
    assert_eq!(
        e.request(&dpo(), &r).await.unwrap().state,
        RequestState::InProgress
    );
    assert!(matches!(
        e.data_for_purpose(&backend, s, "identification", None).await,
        Err(EngineError::Denied { reasons, .. }) if reasons[0].code == "subject_withdrawn"
    ));
    let contact = e
        .can_contact(&backend, s, derbes_policy::Channel::Push, "marketing")
        .await
        .unwrap();
    assert!(!contact.allowed);
    let due = e.request(&dpo(), &r).await.unwrap().due;

    // "Restart": this engine is dropped before any scheduler pass; a new one runs the job.
    drop(e);
    let e2 = common::clocked(&db, dir.path(), now.clone());
    let report = e2.run_jobs().await.unwrap();
    assert_eq!(report.destroyed, 1);
    assert_eq!(e2.run_jobs().await.unwrap().destroyed, 0, "never twice");
    let done = e2.request(&dpo(), &r).await.unwrap();
    assert_eq!(done.state, RequestState::Completed);
    assert!(
        done.steps.last().unwrap().at <= chrono::DateTime::parse_from_rfc3339(&due).unwrap(),
        "on time"
    );
    // The answer says what went now and what a law keeps, until when (7.11).
    let answer = done.outcome.expect("the withdrawal's answer");
    assert_eq!(answer.destroyed, ["app_data"]);
    let kept: Vec<&str> = answer
        .kept_by_law
        .iter()
        .map(|k| k.category.as_str())
        .collect();
    assert_eq!(kept, ["contact", "full_name", "identity"]);
    assert!(answer
        .kept_by_law
        .iter()
        .all(|k| k.purpose == "legal_obligation"
            && k.until == common::at("2031-11-24T10:00:00+05:00")));

    // The certificate, confirmed by the audit log, says the same.
    let cert = e2.certificate(&dpo(), &r).await.unwrap();
    assert!(cert.confirmed_by_audit, "{cert:?}");
    assert_eq!(cert.certificate["subject_id"], s.to_string().as_str());
    assert_eq!(cert.certificate["categories"], json!(["app_data"]));
    assert_eq!(cert.certificate["kept_by_law"].as_array().unwrap().len(), 3);
    let text = cert.certificate.to_string();
    assert!(
        !text.contains(IIN) && !text.contains(SURNAME),
        "no personal data in the certificate"
    );
    // What is kept serves that law alone.
    assert!(matches!(
        e2.data_for_purpose(&backend, s, "contract_performance", None).await,
        Err(EngineError::Denied { reasons, .. }) if reasons[0].code == "subject_withdrawn"
    ));
    let by_law = e2
        .data_for_purpose(&dpo(), s, "legal_obligation", None)
        .await
        .unwrap();
    assert!(by_law.fields.iter().any(|f| f.field == "identity.iin"));
    assert!(!by_law
        .fields
        .iter()
        .any(|f| f.field.starts_with("app_data")));
    let sid = s.to_string();
    assert!(db.store.subject_key(&sid).await.unwrap().is_some());

    // Five years later the purge destroys the rest: nothing is left.
    *now.lock().unwrap() = common::at("2031-11-25T10:00:00+05:00");
    let purged = e2
        .purge(
            &Actor::system(derbes_engine::SystemJob::Purge),
            false,
            &|_| {},
        )
        .await
        .unwrap();
    assert_eq!(purged.subjects_destroyed, 1, "{purged:?}");
    assert!(
        e2.subject_certificate(&dpo(), s)
            .await
            .unwrap()
            .confirmed_by_audit
    );
    assert!(db.store.subject_key(&sid).await.unwrap().is_none());
    assert!(db.store.subject_fields(s).await.unwrap().is_empty());
    assert_eq!(
        e2.lookup(
            &Actor::system(derbes_engine::SystemJob::Cli),
            derbes_engine::LookupKind::Iin,
            IIN
        )
        .await
        .unwrap(),
        None
    );
    let bytes = db.all_bytes().await;
    for needle in [IIN, PHONE, SURNAME, COOKIE, "C-2026-0042"] {
        assert!(
            !contains_text(&bytes, needle),
            "{needle} found after destruction"
        );
    }
}

async fn blocked_destruction_waits(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(&db, dir.path());
    let s = register(&e).await;
    let b = request(&e, s, "blocking").await;
    assert_eq!(
        e.request(&dpo(), &b).await.unwrap().state,
        RequestState::Completed
    );
    let d = request(&e, s, "destruction").await;
    assert_eq!(
        e.request(&dpo(), &d).await.unwrap().state,
        RequestState::InProgress
    );
    let report = e.run_jobs().await.unwrap();
    assert_eq!(
        (report.destroyed, report.waiting_blocked),
        (0, 1),
        "blocked data is not destroyed"
    );
    assert!(db
        .store
        .subject_key(&s.to_string())
        .await
        .unwrap()
        .is_some());
    request(&e, s, "unblocking").await;
    assert_eq!(e.run_jobs().await.unwrap().destroyed, 1);
    assert_eq!(
        e.request(&dpo(), &d).await.unwrap().state,
        RequestState::Completed
    );
    assert!(e.certificate(&dpo(), &d).await.unwrap().confirmed_by_audit);
}

derbes_store::both_databases!(withdrawal_flow);
derbes_store::both_databases!(blocked_destruction_waits);

async fn minors_are_barred_until_18(db: TestDb) {
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(Mutex::new(
        chrono::DateTime::parse_from_rfc3339("2026-11-24T10:00:00+05:00")
            .unwrap()
            .with_timezone(&chrono::Utc),
    ));
    let n2 = now.clone();
    let e = engine(&db, dir.path()).with_clock(Arc::new(move || *n2.lock().unwrap()));
    let s = register(&e).await;
    // The minor's own IIN (born 1 March 2010); whoever registered used an adult's.
    let born = chrono::NaiveDate::from_ymd_opt(2010, 3, 1).unwrap();
    let minor_iin = (0..100u16)
        .find_map(|n| derbes_kz::Iin::from_parts(born, derbes_kz::Sex::Female, n).ok())
        .unwrap()
        .to_string();
    let report = |iin: &str, born_on: Option<chrono::NaiveDate>| derbes_engine::MinorReport {
        iin: iin.to_string(),
        born_on,
    };
    let support = common::support();
    // A birth date must agree with the IIN, and make the person a minor today.
    assert!(matches!(
        e.report_minor(&support, s, &report(&minor_iin, chrono::NaiveDate::from_ymd_opt(2099, 1, 1))).await,
        Err(EngineError::Invalid(p)) if p[0].code == "birth_date_mismatch"
    ));
    assert!(matches!(
        e.report_minor(&support, s, &report(IIN, None)).await,
        Err(EngineError::Invalid(p)) if p[0].code == "not_a_minor"
    ));
    let r = e
        .report_minor(&support, s, &report(&minor_iin, Some(born)))
        .await
        .unwrap();
    assert_eq!(r.ground.as_deref(), Some("minor"));
    // Processing stops at once.
    let backend = Actor::staff("b", "backend_service");
    assert!(matches!(
        e.data_for_purpose(&backend, s, "identification", None).await,
        Err(EngineError::Denied { reasons, .. }) if reasons[0].code == "subject_barred_minor"
    ));
    // Only an approver who did not file it verifies it.
    assert!(matches!(
        e.act_on_request(&support, &r.request_id, RequestAction::Verify, None).await,
        Err(EngineError::Denied { reasons, .. }) if reasons[0].code == "approver_required"
    ));
    e.act_on_request(&dpo(), &r.request_id, RequestAction::Verify, None)
        .await
        .unwrap();
    assert_eq!(e.run_jobs().await.unwrap().destroyed, 1);
    assert!(db
        .store
        .subject_key(&s.to_string())
        .await
        .unwrap()
        .is_none());
    let cert = e.certificate(&dpo(), &r.request_id).await.unwrap();
    assert!(cert.confirmed_by_audit);
    assert!(
        cert.certificate["legal_ground"]
            .as_str()
            .unwrap()
            .contains("7.7"),
        "{}",
        cert.certificate
    );
    // The IIN they registered with is refused until the minor's 18th
    // birthday (00:00 on 1 March 2028 in Almaty), then welcome.
    let reg: derbes_core::RegistrationRequest = serde_json::from_value(json!({
        "fields": {"identity.iin": IIN, "identity.rk_citizen": true, "full_name.surname": SURNAME,
                   "full_name.first_name": "Аяулым", "contact.phone": PHONE},
        "consents": [{"kind": "policy"}]
    }))
    .unwrap();
    assert!(matches!(
        e.register(&Actor::system(derbes_engine::SystemJob::Cli), &reg).await,
        Err(EngineError::Invalid(p)) if p[0].code == "barred_minor"
    ));
    *now.lock().unwrap() = chrono::DateTime::parse_from_rfc3339("2028-03-01T00:00:01+05:00")
        .unwrap()
        .with_timezone(&chrono::Utc);
    assert!(e
        .register(&Actor::system(derbes_engine::SystemJob::Cli), &reg)
        .await
        .is_ok());
}

derbes_store::both_databases!(minors_are_barred_until_18);
