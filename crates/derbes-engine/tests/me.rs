#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The data subject's own door: a session the app's backend opens, and
//! everything of 7.11 done through it, on both backends.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use derbes_engine::{EngineError, MyRequest, RequestAction, RequestState};
use derbes_policy::{Channel, Right};
use derbes_store::testing::TestDb;
use serde_json::json;

async fn register(e: &derbes_engine::Engine, iin: &str, phone: &str) -> derbes_core::SubjectId {
    let reg: derbes_core::RegistrationRequest = serde_json::from_value(json!({
        "fields": {"identity.iin": iin, "identity.rk_citizen": true, "full_name.surname": "Сапарова",
                   "full_name.first_name": "Дана", "contact.phone": phone},
        "consents": [{"kind": "policy"}, {"kind": "marketing", "channel": "sms"}]
    }))
    .unwrap();
    e.register(&backend(), &reg).await.unwrap().subject_id
}

fn ask(v: serde_json::Value) -> MyRequest {
    serde_json::from_value(v).unwrap()
}

async fn own_door(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(Mutex::new(at("2026-11-24T10:00:00+05:00")));
    let e = clocked(&db, dir.path(), now.clone());
    let a = register(&e, "871008401427", "+77011230000").await;
    let other = (0..100u16)
        .find_map(|n| {
            derbes_kz::Iin::from_parts(
                chrono::NaiveDate::from_ymd_opt(1990, 3, 15).unwrap(),
                derbes_kz::Sex::Female,
                n,
            )
            .ok()
        })
        .unwrap()
        .to_string();
    let b = register(&e, &other, "+77011239999").await;

    // Only the app's backend opens one, 1 to 60 minutes.
    assert!(matches!(
        e.open_session(&support(), a, None).await,
        Err(EngineError::Forbidden(_))
    ));
    for bad in [0, 61] {
        let Err(EngineError::Invalid(p)) = e.open_session(&backend(), a, Some(bad)).await else {
            panic!("{bad} minutes accepted")
        };
        assert_eq!(p[0].field, "minutes");
    }
    let (view, token) = e.open_session(&backend(), a, None).await.unwrap();
    assert!(token.starts_with("dbm_") && token.len() == 68);
    assert_eq!(view.subject_id, a);
    let s = e.subject_session(&token).await.unwrap().expect("live");
    assert_eq!(s.subject_id(), a);
    assert!(e.subject_session("dbm_nonsense").await.unwrap().is_none());
    let staff_like = format!("dbs_{}", &token[4..]);
    assert!(e.subject_session(&staff_like).await.unwrap().is_none());
    assert!(e.authenticate(&token).await.unwrap().is_none());

    // My page: categories (no values), consents per channel.
    let me = e.me(&s).await.unwrap();
    assert_eq!(me.subject_id, a);
    assert!(me.categories.contains(&"identity".to_string()));
    let sms = me
        .channels
        .iter()
        .find(|c| c.channel == Channel::Sms)
        .unwrap();
    assert!(sms.marketing);
    let page = serde_json::to_string(&me).unwrap();
    assert!(!page.contains("871008401427"), "values on the page");

    // Channels off and on.
    assert!(
        !e.set_my_channel(&s, Channel::Sms, false)
            .await
            .unwrap()
            .marketing
    );
    assert!(
        e.set_my_channel(&s, Channel::Email, true)
            .await
            .unwrap()
            .marketing
    );
    assert!(
        e.set_my_channel(&s, Channel::Email, true)
            .await
            .unwrap()
            .marketing
    );
    let me = e.me(&s).await.unwrap();
    assert!(
        !me.channels
            .iter()
            .find(|c| c.channel == Channel::Sms)
            .unwrap()
            .marketing
    );

    // A copy of my data, and what is done with it: answered at once.
    let copy = e.my_copy(&s, Right::Access).await.unwrap();
    assert_eq!(copy.kind, "access");
    assert!(copy
        .fields
        .iter()
        .any(|f| f.value.as_ref().and_then(|v| v.as_str()) == Some("871008401427")));
    let info = e.my_copy(&s, Right::Information).await.unwrap();
    assert!(info.fields.iter().all(|f| f.value.is_none()));
    assert!(matches!(
        e.my_copy(&s, Right::Blocking).await,
        Err(EngineError::Invalid(_))
    ));
    let mine = e.my_requests(&s).await.unwrap();
    assert_eq!(mine.len(), 2);
    assert!(mine
        .iter()
        .all(|r| r.state == RequestState::Completed && r.channel == "in_app"));
    let Err(EngineError::Invalid(p)) = e.file_my_request(&s, &ask(json!({"kind": "access"}))).await
    else {
        panic!("access filed as a request")
    };
    assert_eq!(p[0].code, "copy_at_once");

    // Rectification with the new values: checked at once, applied by the desk.
    let Err(EngineError::Invalid(p)) = e
        .file_my_request(
            &s,
            &ask(json!({"kind": "rectification", "values": {"identity.iin": "123"}})),
        )
        .await
    else {
        panic!("a bad IIN accepted")
    };
    assert_eq!(p[0].field, "identity.iin");
    let Err(EngineError::Invalid(p)) = e
        .file_my_request(
            &s,
            &ask(json!({"kind": "blocking", "values": {"full_name.first_name": "Айгерим"}})),
        )
        .await
    else {
        panic!("values on a blocking request")
    };
    assert_eq!(p[0].field, "values");
    let r = e
        .file_my_request(
            &s,
            &ask(
                json!({"kind": "rectification", "values": {"full_name.first_name": "Айгерим"},
                        "text": "my name is misspelt"}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(r.state, RequestState::IdentityVerified);
    assert_eq!(
        r.details.fields,
        Some(vec!["full_name.first_name".to_string()])
    );
    let at_desk = e.request(&dpo(), &r.request_id).await.unwrap();
    assert_eq!(
        at_desk.values.as_ref().unwrap()["full_name.first_name"],
        json!("Айгерим")
    );
    let done = e
        .rectify_for_request(&dpo(), &r.request_id, &Default::default(), None)
        .await
        .unwrap();
    assert_eq!(done.state, RequestState::Completed);
    let copy = e.my_copy(&s, Right::Access).await.unwrap();
    assert!(copy.fields.iter().any(|f| f.field == "full_name.first_name"
        && f.value.as_ref().and_then(|v| v.as_str()) == Some("Айгерим")));

    // An objection per channel: worked at once.
    let o = e
        .file_my_request(
            &s,
            &ask(
                json!({"kind": "objection", "details": {"channels": ["push"], "kind": "service"}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(o.state, RequestState::Completed);
    let me = e.me(&s).await.unwrap();
    let push = me
        .channels
        .iter()
        .find(|c| c.channel == Channel::Push)
        .unwrap();
    assert_eq!(push.objected, vec![derbes_policy::ContactKind::Service]);

    // Blocking and unblocking: at once.
    e.file_my_request(&s, &ask(json!({"kind": "blocking"})))
        .await
        .unwrap();
    assert_eq!(
        e.me(&s).await.unwrap().status,
        derbes_core::SubjectStatus::Blocked
    );
    e.file_my_request(&s, &ask(json!({"kind": "unblocking"})))
        .await
        .unwrap();
    assert_eq!(
        e.me(&s).await.unwrap().status,
        derbes_core::SubjectStatus::Active
    );

    // A complaint goes to the data-protection officer.
    let c = e
        .file_my_request(
            &s,
            &ask(json!({"kind": "complaint", "text": "I got an SMS after objecting"})),
        )
        .await
        .unwrap();
    assert_eq!(c.routed_to, vec!["data_protection_officer".to_string()]);
    e.act_on_request(
        &dpo(),
        &c.request_id,
        RequestAction::Complete,
        Some("answered by letter"),
    )
    .await
    .unwrap();

    // Another subject's request is not found through my session.
    let (_, token_b) = e.open_session(&backend(), b, Some(5)).await.unwrap();
    let sb = e.subject_session(&token_b).await.unwrap().unwrap();
    let theirs = e.my_copy(&sb, Right::Information).await.unwrap();
    assert!(matches!(
        e.my_request(&s, &theirs.request.request_id).await,
        Err(EngineError::NotFound("request"))
    ));
    assert!(e.my_request(&s, &c.request_id).await.is_ok());
    assert!(e
        .my_requests(&s)
        .await
        .unwrap()
        .iter()
        .all(|r| r.subject_id == Some(a)));

    // Sessions end: revoked by the backend, expired, signed out.
    assert!(e
        .revoke_session(&backend(), b, sb.session_id())
        .await
        .unwrap());
    assert!(e.subject_session(&token_b).await.unwrap().is_none());
    assert!(matches!(
        e.revoke_session(&backend(), a, sb.session_id()).await,
        Err(EngineError::NotFound(_))
    ));
    *now.lock().unwrap() = at("2026-11-24T10:16:00+05:00");
    assert!(
        e.subject_session(&token).await.unwrap().is_none(),
        "expired"
    );
    let (_, token) = e.open_session(&backend(), a, Some(60)).await.unwrap();
    let s = e.subject_session(&token).await.unwrap().unwrap();
    let (_, other) = e.open_session(&backend(), a, Some(60)).await.unwrap();
    e.end_my_session(&e.subject_session(&other).await.unwrap().unwrap())
        .await
        .unwrap();
    assert!(e.subject_session(&other).await.unwrap().is_none());

    // Withdrawal (7.11): worked at once; the subject sees it done and what
    // a law keeps.
    let w = e
        .file_my_request(&s, &ask(json!({"kind": "withdrawal"})))
        .await
        .unwrap();
    assert_ne!(w.state, RequestState::Received, "{w:?}");
    assert_eq!(e.run_jobs().await.unwrap().destroyed, 1);
    let me = e.me(&s).await.unwrap();
    assert_eq!(me.status, derbes_core::SubjectStatus::Withdrawn);
    let done = e.my_request(&s, &w.request_id).await.unwrap();
    assert_eq!(done.state, RequestState::Completed);
    assert!(done.outcome.is_some());

    // Once a subject is destroyed, their sessions are dead and none opens.
    let (_, token_b) = e.open_session(&backend(), b, None).await.unwrap();
    shred(&e, b).await;
    assert!(e.subject_session(&token_b).await.unwrap().is_none());
    assert!(matches!(
        e.open_session(&backend(), b, None).await,
        Err(EngineError::Destroyed)
    ));

    // The audit names the session, never a value.
    let log = e
        .audit_records(
            &dpo(),
            &derbes_engine::AuditQuery {
                subject_id: Some(a),
                limit: 10_000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(log
        .iter()
        .any(|r| r.actor.starts_with("subject:") && r.action == "export"));
    let text = serde_json::to_string(&log).unwrap();
    assert!(!text.contains("Айгерим") && !text.contains(&token));
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn own_door() {
        super::own_door(derbes_store::testing::TestDb::sqlite().await).await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn own_door() {
        if let Some(db) = derbes_store::testing::TestDb::postgres().await {
            super::own_door(db).await;
        }
    }
}
