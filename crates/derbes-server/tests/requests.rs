#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The rights desk over HTTP, on SQLite and PostgreSQL.

use axum::http::{Method, StatusCode};
use derbes_store::{both_backends, Store};
use serde_json::json;

mod common;
use common::Api;

async fn queue(store: &Store) {
    let api = Api::new(store).await;
    let dpo = api.token_for("data_protection_officer").await;
    let analyst = api.token_for("analyst").await;
    let (_, v, _) = api
        .send(
            Method::POST,
            "/api/v1/subjects",
            Some(json!({"fields": {"identity.iin": "871008401427", "identity.rk_citizen": true, "full_name.surname": "Омарова",
                                   "full_name.first_name": "Лаура", "contact.phone": "+77017770000"},
                        "consents": [{"kind": "policy"}]})),
        )
        .await;
    let id = v["subject_id"].as_str().unwrap().to_string();
    // In-app request from the backend; a written one entered by the DPO a week late.
    let (status, v, _) = api
        .send(Method::POST, "/api/v1/requests", Some(json!({"subject_id": id, "kind": "access", "channel": "in_app", "requester": "subject"})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["state"], "received");
    assert!(v["due"].as_str().unwrap().ends_with("T23:59:59+05:00"));
    let received = (chrono::Utc::now() - chrono::Duration::days(20)).to_rfc3339();
    let (status, late, _) = api
        .call(
            Method::POST,
            "/api/v1/requests",
            Some(json!({"identification": {"phone": "8 701 777 00 00"}, "kind": "rectification", "channel": "written",
                        "requester": "legal_representative", "received_at": received, "details": {"fields": ["full_name.surname"]}})),
            Some(&dpo),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{late}");
    assert_eq!(late["subject_id"], id.as_str());
    assert_eq!(late["overdue"], true);
    let (status, v, _) = api
        .call(
            Method::GET,
            "/api/v1/requests?overdue=true",
            None,
            Some(&dpo),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v.as_array().unwrap().len(), 1);
    let rid = late["request_id"].as_str().unwrap();
    let (status, v, _) = api
        .call(
            Method::POST,
            &format!("/api/v1/requests/{rid}/actions"),
            Some(json!({"action": "complete"})),
            Some(&dpo),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["code"], "invalid_transition");
    let (status, v, _) = api
        .call(
            Method::POST,
            &format!("/api/v1/requests/{rid}/actions"),
            Some(json!({"action": "refuse"})),
            Some(&dpo),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["code"], "reason_required");
    for action in ["verify", "start", "complete"] {
        let (status, v, _) = api
            .call(
                Method::POST,
                &format!("/api/v1/requests/{rid}/actions"),
                Some(json!({"action": action})),
                Some(&dpo),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    let (_, v, _) = api
        .call(
            Method::GET,
            &format!("/api/v1/requests/{rid}"),
            None,
            Some(&dpo),
        )
        .await;
    assert_eq!(v["state"], "completed");
    assert_eq!(v["steps"].as_array().unwrap().len(), 4);
    let (status, _, _) = api
        .call(
            Method::GET,
            "/api/v1/requests?state=completed&kind=rectification",
            None,
            Some(&dpo),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = api
        .call(Method::GET, "/api/v1/requests?state=lost", None, Some(&dpo))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = api
        .call(Method::GET, "/api/v1/requests", None, Some(&analyst))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

both_backends!(desk, queue);

async fn objections(store: &Store) {
    let api = Api::new(store).await;
    let dpo = api.token_for("data_protection_officer").await;
    let (_, v, _) = api
        .send(
            Method::POST,
            "/api/v1/subjects",
            Some(json!({"fields": {"identity.iin": "871008401427", "identity.rk_citizen": true, "full_name.surname": "Ли",
                                   "full_name.first_name": "Ирина", "contact.phone": "+77017771111"},
                        "consents": [{"kind": "policy"}, {"kind": "marketing", "channel": "sms"}, {"kind": "marketing", "channel": "telegram"}]})),
        )
        .await;
    let id = v["subject_id"].as_str().unwrap().to_string();
    let ask = |channel: &str, kind: &str| {
        format!("/api/v1/subjects/{id}/can-contact?channel={channel}&kind={kind}")
    };
    for (c, k, allowed) in [
        ("sms", "marketing", true),
        ("push", "marketing", false),
        ("sms", "service", true),
    ] {
        let (status, v, _) = api.send(Method::GET, &ask(c, k), None).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["allowed"], allowed, "{c} {k}: {v}");
    }
    // "No more SMS of any kind."
    let (_, r, _) = api
        .call(
            Method::POST,
            "/api/v1/requests",
            Some(json!({"subject_id": id, "kind": "objection", "channel": "in_app", "requester": "subject", "details": {"channels": ["sms"], "kind": "all"}})),
            Some(&dpo),
        )
        .await;
    let rid = r["request_id"].as_str().unwrap();
    let (status, r, _) = api
        .call(
            Method::POST,
            &format!("/api/v1/requests/{rid}/actions"),
            Some(json!({"action": "verify"})),
            Some(&dpo),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(r["state"], "completed", "objections are worked at once");
    for (c, k, allowed, reason) in [
        ("sms", "marketing", false, "no_marketing_consent"),
        ("sms", "service", false, "objected"),
        ("telegram", "marketing", true, "allowed"),
        ("telegram", "service", true, "allowed"),
    ] {
        let (_, v, _) = api.send(Method::GET, &ask(c, k), None).await;
        assert_eq!(
            (
                v["allowed"].as_bool().unwrap(),
                v["reason"].as_str().unwrap()
            ),
            (allowed, reason),
            "{c} {k}"
        );
    }
    let (status, _, _) = api.send(Method::GET, &ask("pigeon", "service"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

both_backends!(objection, objections);

async fn withdrawal_over_http(store: &Store) {
    let api = Api::new(store).await;
    let dpo = api.token_for("data_protection_officer").await;
    let (_, v, _) = api
        .send(
            Method::POST,
            "/api/v1/subjects",
            Some(json!({"fields": {"identity.iin": "871008401427", "identity.rk_citizen": true, "full_name.surname": "Сарсенова",
                                   "full_name.first_name": "Алия", "contact.phone": "+77017772222"},
                        "consents": [{"kind": "policy"}]})),
        )
        .await;
    let id = v["subject_id"].as_str().unwrap().to_string();
    let (status, o, _) = api
        .send(
            Method::POST,
            &format!("/api/v1/subjects/{id}/obligations"),
            Some(json!({"kind": "debt", "reference": "INV-7"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{o}");
    let withdraw = || async {
        let (_, r, _) = api
            .call(Method::POST, "/api/v1/requests", Some(json!({"subject_id": id, "kind": "withdrawal", "channel": "written", "requester": "subject"})), Some(&dpo))
            .await;
        let rid = r["request_id"].as_str().unwrap().to_string();
        let (_, r, _) = api
            .call(
                Method::POST,
                &format!("/api/v1/requests/{rid}/actions"),
                Some(json!({"action": "verify"})),
                Some(&dpo),
            )
            .await;
        (rid, r)
    };
    let (_, r) = withdraw().await;
    assert_eq!(r["state"], "refused");
    assert!(r["state_reason"].as_str().unwrap().contains("debt INV-7"));
    let oid = o["obligation_id"].as_str().unwrap();
    let (status, _, _) = api
        .send(
            Method::POST,
            &format!("/api/v1/subjects/{id}/obligations/{oid}/close"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (rid, r) = withdraw().await;
    assert_eq!(r["state"], "in_progress");
    let (status, _, _) = api
        .call(
            Method::GET,
            &format!("/api/v1/requests/{rid}/certificate"),
            None,
            Some(&dpo),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "no certificate before the destruction"
    );
    assert_eq!(api.state.engine().run_jobs().await.unwrap().destroyed, 1);
    let (status, c, _) = api
        .call(
            Method::GET,
            &format!("/api/v1/requests/{rid}/certificate"),
            None,
            Some(&dpo),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["confirmed_by_audit"], true);
    let (_, r, _) = api
        .call(
            Method::GET,
            &format!("/api/v1/requests/{rid}"),
            None,
            Some(&dpo),
        )
        .await;
    assert_eq!(r["state"], "completed");
}

both_backends!(withdrawal, withdrawal_over_http);
