#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Access and information exports, rectification and complaints worked
//! through requests, and the retention purge with legal holds — on both
//! backends.

mod common;

use std::sync::{Arc, Mutex};

use common::{at, backend, clocked as engine, dpo};
use derbes_engine::{
    export_html, Actor, Engine, EngineError, LookupKind, NewRequest, RequestAction, RequestState,
};
use derbes_policy::Lang;
use derbes_store::testing::{contains_text, TestDb};
use serde_json::json;

const IIN: &str = "871008401427";
const PHONE: &str = "+77015550078";
const SURNAME: &str = "Касымова<b>";

async fn register(e: &Engine, iin: &str, phone: &str, surname: &str) -> derbes_core::SubjectId {
    let reg: derbes_core::RegistrationRequest = serde_json::from_value(json!({
        "fields": {"identity.iin": iin, "identity.rk_citizen": true, "full_name.surname": surname,
                   "full_name.first_name": "Дана", "contact.phone": phone},
        "consents": [{"kind": "policy"}]
    }))
    .unwrap();
    let s = e
        .register(&Actor::system(derbes_engine::SystemJob::Cli), &reg)
        .await
        .unwrap()
        .subject_id;
    // Technical data collected for a purpose (3.2), through the decision point.
    e.collect(
        &common::support(),
        s,
        "support",
        &[("client.user_agent".to_string(), json!("Firefox 128"))]
            .into_iter()
            .collect(),
        Some("device"),
    )
    .await
    .unwrap();
    s
}

async fn request(e: &Engine, s: Option<derbes_core::SubjectId>, kind: &str) -> String {
    let r: NewRequest = serde_json::from_value(
        json!({"subject_id": s, "kind": kind, "channel": "in_app", "requester": "subject"}),
    )
    .unwrap();
    e.create_request(&dpo(), &r).await.unwrap().request_id
}

async fn verify(e: &Engine, r: &str) {
    e.act_on_request(&dpo(), r, RequestAction::Verify, None)
        .await
        .unwrap();
}

async fn access_and_information(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(Mutex::new(at("2026-11-24T10:00:00+05:00")));
    let e = engine(&db, dir.path(), now.clone());
    let s = register(&e, IIN, PHONE, SURNAME).await;
    // A correction (kept as a previous value), a disclosure, an objection.
    e.rectify(
        &backend(),
        s,
        &[("full_name.first_name".to_string(), json!("Даниябек"))]
            .into_iter()
            .collect(),
        None,
        "typo in the first name",
    )
    .await
    .unwrap();
    let d: derbes_engine::DisclosureRequest = serde_json::from_value(json!({
        "subject_id": s, "recipient": "affiliates", "purpose": "contract_performance",
        "categories": ["full_name", "contact"], "legal_basis": "consent"
    }))
    .unwrap();
    e.disclose(&backend(), &d).await.unwrap();

    let r = request(&e, Some(s), "access").await;
    // Nothing before the requester's identity is verified.
    assert!(matches!(
        e.export(&dpo(), &r).await,
        Err(EngineError::Invalid(p)) if p[0].code == "identity_not_verified"
    ));
    verify(&e, &r).await;
    // Need-to-know: a support agent works requests but may not copy everything.
    let agent = Actor::staff("agent", "support_agent");
    match e.export(&agent, &r).await {
        Err(EngineError::Denied { reasons, audit_id }) => {
            assert!(audit_id > 0);
            assert!(reasons.iter().any(|x| x.code == "no_need_to_know"));
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    // Blocking does not stop the subject's own copy.
    let b = request(&e, Some(s), "blocking").await;
    verify(&e, &b).await;

    let x = e.export(&dpo(), &r).await.unwrap();
    assert_eq!(x.schema, derbes_engine::EXPORT_SCHEMA);
    assert_eq!(x.kind, "access");
    assert_eq!(x.subject.status, "blocked");
    assert_eq!(x.fee.amount_kzt, 0, "free by default");
    let value = |f: &str| {
        x.fields
            .iter()
            .find(|v| v.field == f)
            .and_then(|v| v.value.clone())
    };
    assert_eq!(value("identity.iin"), Some(json!(IIN)));
    assert_eq!(value("full_name.surname"), Some(json!(SURNAME)));
    assert_eq!(value("full_name.first_name"), Some(json!("Даниябек")));
    assert_eq!(value("identity.rk_citizen"), Some(json!(true)));
    let prev = &x.previous_values[0];
    assert_eq!(prev.value, Some(json!("Дана")));
    assert_eq!(prev.reason.as_deref(), Some("typo in the first name"));
    let iin = x.fields.iter().find(|f| f.field == "identity.iin").unwrap();
    assert_eq!(iin.name.en, "IIN (individual identification number)");
    assert_eq!(
        iin.retention.kept_for.as_deref(),
        Some("contract_performance")
    );
    assert!(x.purposes.iter().any(|p| p.id == "legal_obligation"));
    assert!(!x.purposes.iter().any(|p| p.id == "subject_requests"));
    assert!(x.sources.iter().any(|s| s.id == "subject"));
    assert!(x.recipients.iter().any(|r| r.id == "affiliates"));
    assert_eq!(x.disclosures.len(), 1);
    assert_eq!(x.consents.len(), 1);
    assert!(x
        .consents
        .iter()
        .all(|c| c.record.receipt_sha256.len() == 64));
    assert!(x.requests.iter().any(|q| q.request_id == r));
    // The export itself is audited: decided, then opened.
    let audit = e
        .audit_records(
            &dpo(),
            &derbes_store::AuditQuery {
                subject_id: Some(s),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let rec = audit.iter().find(|a| a.seq == x.audit_id).unwrap();
    assert_eq!(
        (rec.action.as_str(), rec.decision.as_str()),
        ("export", "permit")
    );
    assert_eq!(rec.purpose.as_deref(), Some("subject_requests"));
    assert!(!rec.details.to_string().contains(IIN));

    // The readable page, escaped, in both languages.
    let ru = export_html(&x, Lang::Ru);
    assert!(ru.contains("Копия ваших персональных данных"));
    assert!(ru.contains("Касымова&lt;b&gt;") && !ru.contains(SURNAME));
    assert!(ru.contains("бесплатно"));
    // Russian throughout: codes in words, times in Almaty time with the offset, a print style.
    for code in [
        ">active<",
        ">access<",
        ">policy",
        ">true<",
        "BIN ",
        ">in_progress<",
    ] {
        assert!(!ru.contains(code), "`{code}` on the Russian page");
    }
    assert!(ru.contains("БИН") && ru.contains("(UTC+05:00)") && ru.contains("@media print"));
    let iso = regex_lite_iso(&ru);
    assert!(iso.is_none(), "a raw time on the page: {iso:?}");
    let en = export_html(&x, Lang::En);
    assert!(en.contains("A copy of your personal data") && en.contains(IIN));
    assert!(!en.contains("<script"));

    // Information: the same answer without a single value.
    let i = request(&e, Some(s), "information").await;
    verify(&e, &i).await;
    let info = e.export(&dpo(), &i).await.unwrap();
    assert_eq!(info.kind, "information");
    assert!(info.fields.iter().all(|f| f.value.is_none()));
    assert!(info.previous_values.iter().all(|p| p.value.is_none()));
    let text = serde_json::to_string(&info).unwrap();
    assert!(!text.contains(IIN) && !text.contains("Касымова"));
    assert!(!export_html(&info, Lang::En).contains(IIN));
    // Another kind of request has no export; a fee is a setting.
    let o = request(&e, Some(s), "objection").await;
    assert!(matches!(
        e.export(&dpo(), &o).await,
        Err(EngineError::Invalid(p)) if p[0].code == "not_an_access_request"
    ));
    let paid = e.clone().with_access_fee(2500);
    assert_eq!(paid.export(&dpo(), &r).await.unwrap().fee.amount_kzt, 2500);
}

async fn rectification_and_complaints(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(Mutex::new(at("2026-11-24T10:00:00+05:00")));
    let e = engine(&db, dir.path(), now);
    let s = register(&e, IIN, PHONE, SURNAME).await;
    let r = request(&e, Some(s), "rectification").await;
    let fields = [("contact.phone".to_string(), json!("8 701 555 00 79"))]
        .into_iter()
        .collect();
    assert!(matches!(
        e.rectify_for_request(&dpo(), &r, &fields, None).await,
        Err(EngineError::Invalid(p)) if p[0].code == "identity_not_verified"
    ));
    verify(&e, &r).await;
    let done = e
        .rectify_for_request(&dpo(), &r, &fields, None)
        .await
        .unwrap();
    assert_eq!(done.state, RequestState::Completed);
    assert_eq!(
        e.lookup(&dpo(), LookupKind::Phone, "+77015550079")
            .await
            .unwrap(),
        Some(s)
    );
    // The request is the reason kept with the previous value.
    let i = request(&e, Some(s), "access").await;
    verify(&e, &i).await;
    let x = e.export(&dpo(), &i).await.unwrap();
    let prev = x
        .previous_values
        .iter()
        .find(|p| p.field == "contact.phone")
        .unwrap();
    assert_eq!(
        prev.reason.as_deref(),
        Some(format!("rectification request {r}").as_str())
    );

    // A complaint goes to the data-protection officer, who answers it.
    let c = request(&e, None, "complaint").await;
    let view = e.request(&dpo(), &c).await.unwrap();
    assert_eq!(view.routed_to, vec!["data_protection_officer".to_string()]);
    let agent = Actor::staff("agent", "support_agent");
    assert!(matches!(
        e.act_on_request(&agent, &c, RequestAction::Verify, None)
            .await,
        Err(EngineError::Forbidden("answer_complaints"))
    ));
    verify(&e, &c).await;
    assert!(matches!(
        e.act_on_request(&dpo(), &c, RequestAction::Complete, None).await,
        Err(EngineError::Invalid(p)) if p[0].code == "reason_required"
    ));
    let answered = e
        .act_on_request(
            &dpo(),
            &c,
            RequestAction::Complete,
            Some("checked; the notification was sent by mistake and the sender was corrected"),
        )
        .await
        .unwrap();
    assert_eq!(answered.state, RequestState::Completed);
}

async fn retention_purge(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    // Everyone registers in January 2019.
    let now = Arc::new(Mutex::new(at("2019-01-15T10:00:00+05:00")));
    let e = engine(&db, dir.path(), now.clone());
    let gone = register(&e, IIN, PHONE, SURNAME).await;
    let stays = register(&e, "900101300017", "+77015550080", "Омарова").await;
    let held = register(&e, "950505400019", "+77015550081", "Ахметова").await;
    let blocked = register(&e, "880808300014", "+77015550082", "Садыкова").await;
    // Relationships end in March 2020 (except `stays`); `blocked` is blocked.
    *now.lock().unwrap() = at("2020-03-02T10:00:00+05:00");
    for s in [gone, held, blocked] {
        e.end_relationship(&backend(), s, None).await.unwrap();
    }
    let b = request(&e, Some(blocked), "blocking").await;
    verify(&e, &b).await;
    let hold = e
        .place_hold(
            &dpo(),
            held,
            &serde_json::from_value(
                json!({"reason": "litigation", "reference": "Case 2-1234/2025"}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    // A correction whose previous value is kept 5 years at most.
    e.rectify(
        &backend(),
        stays,
        &[("full_name.first_name".to_string(), json!("Айдана"))]
            .into_iter()
            .collect(),
        None,
        "spelling",
    )
    .await
    .unwrap();

    // Nothing is due in 2024: identity is kept 60 months after the relationship.
    *now.lock().unwrap() = at("2024-06-01T10:00:00+05:00");
    let purge = Actor::system(derbes_engine::SystemJob::Purge);
    let r = e.purge(&purge, true, &|_| {}).await.unwrap();
    // Only the browsers (client data: support keeps it 36 months after
    // collection) — not the held subject's, nor the blocked one's.
    assert_eq!((r.subjects_destroyed, r.fields_destroyed), (0, 2), "{r:?}");
    assert_eq!(r.held_subjects, 1);
    for s in [gone, stays] {
        let item = r.items.iter().find(|i| i.subject_id == s).unwrap();
        assert_eq!(item.fields, vec!["client.user_agent".to_string()]);
        assert!(item.reason.contains("`support`"), "{}", item.reason);
    }

    // In 2026 the ended relationships are past every retention.
    *now.lock().unwrap() = at("2026-11-24T10:00:00+05:00");
    let dry = e.purge(&dpo(), true, &|_| {}).await.unwrap();
    assert_eq!(dry.subjects_destroyed, 1, "{dry:?}");
    assert_eq!(dry.held_subjects, 1);
    assert!(dry
        .items
        .iter()
        .any(|i| i.subject_id == held && i.reason.contains("legal hold")));
    assert!(dry.items.iter().all(|i| i.subject_id != blocked));
    assert!(
        db.store
            .subject_key(&gone.to_string())
            .await
            .unwrap()
            .is_some(),
        "a dry run changes nothing"
    );
    // Only derbes itself destroys.
    assert!(matches!(
        e.purge(&dpo(), false, &|_| {}).await,
        Err(EngineError::Forbidden(_))
    ));

    let done = e.purge(&purge, false, &|_| {}).await.unwrap();
    assert_eq!(done.subjects_destroyed, 1);
    assert_eq!(done.fields_destroyed, 1, "stays' browser");
    // The first name replaced in March 2020 was kept 60 months (the longest
    // retention of full_name's purposes): until March 2025.
    assert_eq!(done.previous_values_destroyed, 1);
    assert_eq!(done.held_subjects, 1);
    let again = e.purge(&purge, false, &|_| {}).await.unwrap();
    assert_eq!(
        (again.subjects_destroyed, again.fields_destroyed),
        (0, 0),
        "nothing twice"
    );
    // The destroyed subject: certificate confirmed, nothing left to find.
    let cert = e.subject_certificate(&dpo(), gone).await.unwrap();
    assert!(cert.confirmed_by_audit, "{cert:?}");
    assert_eq!(
        cert.certificate["legal_ground"],
        "end of the purposes' retention (policy clause 7.1)"
    );
    assert_eq!(e.lookup(&dpo(), LookupKind::Iin, IIN).await.unwrap(), None);
    let stays_fields = db.store.subject_fields(stays).await.unwrap();
    assert!(stays_fields.iter().all(|f| f.field != "client.user_agent"));
    assert!(stays_fields.iter().any(|f| f.field == "identity.iin"));
    assert!(db.store.subject_history(stays).await.unwrap().is_empty());
    // Held and blocked subjects keep everything.
    for s in [held, blocked] {
        assert!(db
            .store
            .subject_key(&s.to_string())
            .await
            .unwrap()
            .is_some());
    }
    // Released: it goes at the next purge.
    e.release_hold(&dpo(), held, &hold.hold_id).await.unwrap();
    assert!(matches!(
        e.release_hold(&dpo(), held, &hold.hold_id).await,
        Err(EngineError::NotFound(_))
    ));
    assert_eq!(
        e.purge(&purge, false, &|_| {})
            .await
            .unwrap()
            .subjects_destroyed,
        1
    );
    let bytes = db.all_bytes().await;
    for needle in [IIN, PHONE, "Ахметова", "Firefox 128"] {
        assert!(
            !contains_text(&bytes, needle),
            "{needle} found after the purge"
        );
    }
}

/// A subject's fields may span the purge's pages: the decision about the
/// whole subject waits for all of them.
async fn purge_pages_never_split_a_subject(db: TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(Mutex::new(at("2014-03-01T10:00:00+05:00")));
    let e = engine(&db, dir.path(), now.clone());
    let whole = register(&e, IIN, PHONE, SURNAME).await;
    let partly = register(&e, "900101300017", "+77015550080", "Омарова").await;
    *now.lock().unwrap() = at("2015-01-01T10:00:00+05:00");
    for s in [whole, partly] {
        e.end_relationship(&backend(), s, None).await.unwrap();
    }
    // A browser collected last month: support keeps it 36 months from collection.
    *now.lock().unwrap() = at("2026-10-24T10:00:00+05:00");
    e.collect(
        &common::support(),
        partly,
        "support",
        &[("client.user_agent".to_string(), json!("Firefox 140"))]
            .into_iter()
            .collect(),
        Some("device"),
    )
    .await
    .unwrap();
    *now.lock().unwrap() = at("2026-11-24T10:00:00+05:00");
    for page in [1, 2, 3, 5000] {
        let r = e
            .purge_paged(
                &Actor::system(derbes_engine::SystemJob::Purge),
                true,
                &|_| {},
                page,
            )
            .await
            .unwrap();
        let w = r.items.iter().find(|i| i.subject_id == whole).unwrap();
        let p = r.items.iter().find(|i| i.subject_id == partly).unwrap();
        assert!(w.whole_subject, "page {page}");
        assert!(!p.whole_subject, "page {page}: its browser is still kept");
        assert!(
            !p.fields.contains(&"client.user_agent".to_string()),
            "page {page}"
        );
        assert_eq!(p.fields.len(), 5, "page {page}: {:?}", p.fields);
    }
    let r = e
        .purge_paged(
            &Actor::system(derbes_engine::SystemJob::Purge),
            false,
            &|_| {},
            2,
        )
        .await
        .unwrap();
    assert_eq!((r.subjects_destroyed, r.fields_destroyed), (1, 5));
    let left = db.store.subject_fields(partly).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].field, "client.user_agent");
}

derbes_store::both_databases!(purge_pages_never_split_a_subject);
derbes_store::both_databases!(access_and_information);
derbes_store::both_databases!(rectification_and_complaints);
derbes_store::both_databases!(retention_purge);

/// A raw RFC 3339 time (`2026-12-03T10:15:00+05:00`) in `text`, if any.
fn regex_lite_iso(text: &str) -> Option<String> {
    let b = text.as_bytes();
    (0..b.len().saturating_sub(19)).find_map(|i| {
        let w = &b[i..i + 19];
        let digits = |r: std::ops::Range<usize>| w[r].iter().all(u8::is_ascii_digit);
        (digits(0..4)
            && w[4] == b'-'
            && digits(5..7)
            && w[7] == b'-'
            && digits(8..10)
            && w[10] == b'T'
            && digits(11..13)
            && w[13] == b':')
            .then(|| String::from_utf8_lossy(w).into_owned())
    })
}
