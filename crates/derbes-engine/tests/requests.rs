#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The rights desk's intake, due dates and state machine, on both backends.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use derbes_engine::{Actor, Engine, EngineError, NewRequest, RequestAction, RequestState};
use derbes_policy::LoadedPolicy;
use derbes_store::testing::TestDb;
use serde_json::json;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn engine(db: &TestDb, now: Arc<Mutex<DateTime<Utc>>>) -> Engine {
    let policy =
        LoadedPolicy::from_text(include_str!("../../../policy/ibusiness.toml").to_string())
            .unwrap();
    Engine::with_keyring(
        db.store.clone(),
        policy,
        derbes_vault::Keyring::ephemeral(),
        None,
    )
    .with_clock(Arc::new(move || *now.lock().unwrap()))
}

fn dpo() -> Actor {
    Actor::staff("test-dpo", "data_protection_officer")
}

fn new_request(v: serde_json::Value) -> NewRequest {
    serde_json::from_value(v).unwrap()
}

async fn desk(db: TestDb) {
    let now = Arc::new(Mutex::new(at("2024-05-03T18:00:00+05:00")));
    let e = engine(&db, now.clone());
    let reg: derbes_core::RegistrationRequest = serde_json::from_value(json!({
        "fields": {"identity.iin": "871008401427", "identity.rk_citizen": true, "full_name.surname": "Абенова",
                   "full_name.first_name": "Жанна", "contact.phone": "+77011230000"},
        "consents": [{"kind": "policy"}]
    }))
    .unwrap();
    let s = e
        .register(&Actor::system(derbes_engine::SystemJob::Cli), &reg)
        .await
        .unwrap()
        .subject_id;

    // Blocking, 1 working day, received Friday 3 May 2024 17:30: the next
    // working day is Saturday 4 May (a working Saturday that year).
    let blocking = e
        .create_request(&dpo(), &new_request(json!({"subject_id": s, "kind": "blocking", "channel": "in_app", "requester": "subject",
            "received_at": "2024-05-03T17:30:00+05:00"})))
        .await
        .unwrap();
    assert_eq!(blocking.due, "2024-05-04T23:59:59+05:00");
    assert_eq!(blocking.state, RequestState::Received);

    // Access, 3 working days, received by letter Monday 6 May: 7, 8 and 9 May are
    // days off (Defender's Day, the day moved from 4 May, Victory Day), so
    // 10, 13, 14 May — due 14 May.
    *now.lock().unwrap() = at("2024-05-06T12:00:00+05:00");
    let access = e
        .create_request(&dpo(), &new_request(json!({"identification": {"iin": "871008401427"}, "kind": "access", "channel": "written",
            "requester": "subject", "received_at": "2024-05-06T10:15:00+05:00", "text": "registered letter RR123456789KZ"})))
        .await
        .unwrap();
    assert_eq!(access.due, "2024-05-14T23:59:59+05:00");
    assert_eq!(access.subject_id, Some(s));

    // A complaint about nobody known is still received.
    let complaint = e
        .create_request(
            &dpo(),
            &new_request(json!({"kind": "complaint", "channel": "email", "requester": "subject"})),
        )
        .await
        .unwrap();
    assert!(complaint.subject_id.is_none());

    // Refusals.
    let bad = e
        .create_request(&dpo(), &new_request(json!({"subject_id": s, "kind": "access", "channel": "email", "requester": "subject", "received_at": "2030-01-01T00:00:00+05:00"})))
        .await;
    assert!(matches!(bad, Err(EngineError::Invalid(p)) if p[0].code == "in_future"));
    let marketing = Actor::staff("m", "marketing");
    assert!(matches!(
        e.create_request(&marketing, &new_request(json!({"subject_id": s, "kind": "access", "channel": "email", "requester": "subject"}))).await,
        Err(EngineError::Forbidden(_))
    ));

    // Overdue: on 15 May both the blocking and the access request are past due.
    *now.lock().unwrap() = at("2024-05-15T00:00:01+05:00");
    let overdue = e
        .requests(
            &dpo(),
            &derbes_engine::Queue {
                overdue: true,
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let ids: Vec<&str> = overdue.iter().map(|r| r.request_id.as_str()).collect();
    assert!(
        ids.contains(&blocking.request_id.as_str()) && ids.contains(&access.request_id.as_str())
    );
    assert!(overdue.iter().all(|r| r.overdue));

    // The state machine.
    let r = e
        .act_on_request(&dpo(), &access.request_id, RequestAction::Verify, None)
        .await
        .unwrap();
    assert_eq!(r.state, RequestState::IdentityVerified);
    let r = e
        .act_on_request(&dpo(), &access.request_id, RequestAction::Start, None)
        .await
        .unwrap();
    assert_eq!(r.state, RequestState::InProgress);
    assert!(matches!(
        e.act_on_request(&dpo(), &access.request_id, RequestAction::Verify, None).await,
        Err(EngineError::Invalid(p)) if p[0].code == "invalid_transition"
    ));
    let r = e
        .act_on_request(&dpo(), &access.request_id, RequestAction::Complete, None)
        .await
        .unwrap();
    assert_eq!(r.state, RequestState::Completed);
    assert!(!r.overdue, "answered requests are not overdue");
    let steps: Vec<&str> = r.steps.iter().map(|s| s.to.as_str()).collect();
    assert_eq!(
        steps,
        ["received", "identity_verified", "in_progress", "completed"]
    );
    assert!(matches!(
        e.act_on_request(&dpo(), &complaint.request_id, RequestAction::Refuse, None).await,
        Err(EngineError::Invalid(p)) if p[0].code == "reason_required"
    ));
    let r = e
        .act_on_request(
            &dpo(),
            &complaint.request_id,
            RequestAction::Refuse,
            Some("not about this operator"),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.state, r.state_reason.as_deref()),
        (RequestState::Refused, Some("not about this operator"))
    );
    let open = e
        .requests(
            &dpo(),
            &derbes_engine::Queue {
                overdue: true,
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        open.len(),
        1,
        "only the blocking request is still open and late"
    );

    // Every step is in the audit log.
    let v = e.verify_audit().await.unwrap();
    assert!(v.first_bad.is_none());
    let log = db
        .store
        .audit_records(&derbes_store::AuditQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    let actions: Vec<&str> = log.iter().map(|r| r.record.action.as_str()).collect();
    for a in [
        "request.received",
        "request.identity_verified",
        "request.in_progress",
        "request.completed",
        "request.refused",
    ] {
        assert!(actions.contains(&a), "{a}");
    }
}

mod desk {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::desk(derbes_store::testing::TestDb::sqlite().await).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some(db) = derbes_store::testing::TestDb::postgres().await {
            super::desk(db).await;
        }
    }
}

async fn blocking_and_unblocking(db: TestDb) {
    let now = Arc::new(Mutex::new(Utc::now()));
    let e = engine(&db, now.clone());
    let reg: derbes_core::RegistrationRequest = serde_json::from_value(json!({
        "fields": {"identity.iin": "871008401427", "identity.rk_citizen": true, "full_name.surname": "Досова",
                   "full_name.first_name": "Мира", "contact.phone": "+77011239999"},
        "consents": [{"kind": "policy"}]
    }))
    .unwrap();
    let s = e
        .register(&Actor::system(derbes_engine::SystemJob::Cli), &reg)
        .await
        .unwrap()
        .subject_id;
    let backend = Actor::staff("b", "backend_service");
    assert!(e
        .data_for_purpose(&backend, s, "identification", None)
        .await
        .is_ok());

    let r = e
        .create_request(&dpo(), &new_request(json!({"subject_id": s, "kind": "blocking", "channel": "authority", "requester": "authorised_body"})))
        .await
        .unwrap();
    let r = e
        .act_on_request(&dpo(), &r.request_id, RequestAction::Verify, None)
        .await
        .unwrap();
    assert_eq!(
        r.state,
        RequestState::Completed,
        "derbes blocks by itself once verified"
    );
    let steps: Vec<&str> = r.steps.iter().map(|s| s.to.as_str()).collect();
    assert_eq!(
        steps,
        ["received", "identity_verified", "in_progress", "completed"]
    );

    // Blocked: nothing but storage — reads, corrections and destruction refused.
    let denied = |r: Result<derbes_engine::DataRead, EngineError>| matches!(r, Err(EngineError::Denied { reasons, .. }) if reasons[0].code == "subject_blocked");
    assert!(denied(
        e.data_for_purpose(&backend, s, "identification", None)
            .await
    ));
    let fix =
        std::collections::BTreeMap::from([("full_name.surname".to_string(), json!("Досова-Ли"))]);
    assert!(matches!(
        e.rectify(&backend, s, &fix, None, "x").await,
        Err(EngineError::Denied { .. })
    ));
    let destroy: derbes_engine::DecisionRequest = serde_json::from_value(json!({
        "subject_id": s, "operation": "destruction", "purpose": "identification", "categories": ["identity"]
    }))
    .unwrap();
    let d = e.decide(&dpo(), &destroy).await.unwrap();
    assert_eq!(d.decision, "deny");
    assert_eq!(d.reasons[0].code, "subject_blocked");

    // Unblocking lifts it.
    let u = e
        .create_request(&dpo(), &new_request(json!({"subject_id": s, "kind": "unblocking", "channel": "authority", "requester": "authorised_body"})))
        .await
        .unwrap();
    let u = e
        .act_on_request(&dpo(), &u.request_id, RequestAction::Verify, None)
        .await
        .unwrap();
    assert_eq!(u.state, RequestState::Completed);
    assert!(e
        .data_for_purpose(&backend, s, "identification", None)
        .await
        .is_ok());
    assert_eq!(e.decide(&dpo(), &destroy).await.unwrap().decision, "permit");
}

mod blocking {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::blocking_and_unblocking(derbes_store::testing::TestDb::sqlite().await).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        if let Some(db) = derbes_store::testing::TestDb::postgres().await {
            super::blocking_and_unblocking(db).await;
        }
    }
}
