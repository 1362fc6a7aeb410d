//! Hostile input at every door of the router, on both backends: NUL and
//! control characters, unknown and mistyped query parameters, odd paths and
//! methods. Every answer is derbes' JSON error shape, bounded in size, never
//! a 5xx, never echoing what was sent; nothing is written or audited for a
//! refused input (issue 12, defects 5 and 7).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::http::{Method, StatusCode};
use common::Api;
use derbes_store::{both_backends, Store};
use serde_json::{json, Value};

async fn subject(api: &Api) -> String {
    let (status, v, _) = api
        .send(
            Method::POST,
            "/api/v1/subjects",
            Some(json!({
                "fields": {"identity.iin": "871008401427", "identity.rk_citizen": true, "full_name.surname": "Ким",
                           "full_name.first_name": "Дана", "contact.phone": "+77015551122"},
                "consents": [{"kind": "policy", "notify_of_transfers": true}]
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["subject_id"].as_str().unwrap().to_string()
}

/// The answer is a 4xx in the error shape, small, and never carries `secret`.
fn refused(what: &str, status: StatusCode, v: &Value, raw: &str, secret: &str) {
    assert!(status.is_client_error(), "{what}: {status} {raw}");
    assert!(
        v["error"]["code"].is_string() && v["error"]["message"].is_string(),
        "{what}: not the error shape: {raw}"
    );
    assert!(raw.len() < 2048, "{what}: {} bytes", raw.len());
    assert!(!raw.contains(secret), "{what} echoed the input: {raw}");
}

/// The audit records but the audit's own reads.
async fn audit_count(api: &Api) -> usize {
    let (status, v, raw) = api
        .call(
            Method::GET,
            "/api/v1/audit?limit=1000",
            None,
            Some(&api.admin),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{raw}");
    v["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] != "audit.read")
        .count()
}

async fn nul_and_controls(store: &Store) {
    let api = Api::new(store).await;
    let id = subject(&api).await;
    let dpo = api.token_for("data_protection_officer").await;
    let before = audit_count(&api).await;

    // Query strings, paths: NUL and other control characters.
    for uri in [
        "/api/v1/audit?subject_id=%00".to_string(),
        "/api/v1/audit?actor=%00".to_string(),
        "/api/v1/audit?actor=a%01b".to_string(),
        "/api/v1/requests/a%00b".to_string(),
        "/api/v1/requests?state=%00".to_string(),
        format!("/api/v1/subjects/{id}/data?purpose=%00"),
        "/api/v1/subjects/lookup?iin=%00".to_string(),
        "/api/v1/stats?by=%00".to_string(),
    ] {
        let (status, v, raw) = api.call(Method::GET, &uri, None, Some(&dpo)).await;
        refused(&uri, status, &v, &raw, "\u{0}");
    }
    let (status, v, raw) = api
        .call(
            Method::DELETE,
            "/api/v1/staff/a%00b",
            None,
            Some(&api.admin),
        )
        .await;
    refused("DELETE /staff/a%00b", status, &v, &raw, "\u{0}");

    // JSON bodies with an escaped NUL, in every free text named in the issue.
    let nul = "x\u{0}y";
    let bodies = [
        (
            format!("/api/v1/subjects/{id}/legal-holds"),
            json!({"reason": "litigation", "reference": nul}),
        ),
        (
            format!("/api/v1/subjects/{id}/legal-holds"),
            json!({"reason": nul, "reference": "case 1"}),
        ),
        (
            format!("/api/v1/subjects/{id}/obligations"),
            json!({"kind": "debt", "reference": nul}),
        ),
        (
            "/api/v1/disclosures".to_string(),
            json!({"subject_id": id, "recipient": "kz_authorities", "purpose": "legal_obligation",
                   "categories": ["identity"], "legal_basis": nul}),
        ),
        (
            "/api/v1/disclosures".to_string(),
            json!({"subject_id": id, "recipient": "kz_authorities", "purpose": "legal_obligation",
                   "categories": ["identity"], "legal_basis": "court order", "reference": nul}),
        ),
        (
            "/api/v1/events".to_string(),
            json!([{"event": "screen_view", "screen": nul, "time": chrono::Utc::now().to_rfc3339()}]),
        ),
        (
            "/api/v1/requests".to_string(),
            json!({"subject_id": id, "kind": "access", "channel": "written", "requester": "subject", "note": nul}),
        ),
        (
            "/api/v1/staff".to_string(),
            json!({"name": nul, "role": "support_agent"}),
        ),
        (
            "/api/v1/subjects".to_string(),
            json!({"fields": {"identity.iin": "900101300017", "identity.rk_citizen": true, "full_name.surname": nul,
                              "full_name.first_name": "Дана", "contact.phone": "+77015551133"},
                   "consents": [{"kind": "policy"}]}),
        ),
    ];
    for (uri, body) in bodies {
        let token = if uri.ends_with("/staff") {
            &api.admin
        } else {
            &dpo
        };
        let (status, v, raw) = api.call(Method::POST, &uri, Some(body), Some(token)).await;
        refused(&uri, status, &v, &raw, "\u{0}");
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{uri}: {raw}");
    }
    // Nothing was written or audited for any of them: no permit for a
    // disclosure that never happened.
    assert_eq!(audit_count(&api).await, before);
    let (status, v, _) = api
        .call(
            Method::GET,
            &format!("/api/v1/subjects/{id}/disclosures"),
            None,
            Some(&dpo),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["disclosures"].as_array().map(Vec::len), Some(0), "{v}");
}

async fn query_strings(store: &Store) {
    let api = Api::new(store).await;
    let dpo = api.token_for("data_protection_officer").await;
    let iin = "871008401427";
    for (uri, field) in [
        // An unknown name is refused and never echoed: it may be the datum.
        (format!("/api/v1/subjects/lookup?{iin}=1"), "query"),
        (format!("/api/v1/audit?{iin}=1"), "query"),
        (format!("/api/v1/requests?q={iin}"), "query"),
        // A mistyped documented one is named, its value is not echoed.
        (format!("/api/v1/audit?limit={iin}x"), "limit"),
        (format!("/api/v1/audit?after={iin}x"), "after"),
        (format!("/api/v1/requests?overdue={iin}"), "overdue"),
        (format!("/api/v1/stats?by=route&k={iin}x"), "k"),
        // Out of the documented range.
        ("/api/v1/audit?limit=0".to_string(), "limit"),
        ("/api/v1/audit?limit=100000".to_string(), "limit"),
        ("/api/v1/requests?limit=-1".to_string(), "limit"),
        // Required and missing, or given twice.
        ("/api/v1/stats".to_string(), "by"),
        ("/api/v1/audit?limit=1&limit=2".to_string(), "limit"),
    ] {
        let (status, v, raw) = api.call(Method::GET, &uri, None, Some(&dpo)).await;
        refused(&uri, status, &v, &raw, iin);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {raw}");
        assert_eq!(v["error"]["details"][0]["field"], field, "{uri}: {raw}");
    }
    // A valid query still works, and an empty value of an optional one is
    // the same as leaving it out.
    let (status, _, raw) = api
        .call(
            Method::GET,
            "/api/v1/audit?limit=1000&after=0",
            None,
            Some(&dpo),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{raw}");
}

async fn paths_methods_and_sizes(store: &Store) {
    let api = Api::new(store).await;
    let dpo = api.token_for("data_protection_officer").await;
    // A method the path does not take: 405 in the error shape.
    let (status, v, raw) = api
        .call(Method::PUT, "/api/v1/requests", None, Some(&dpo))
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{raw}");
    refused("PUT /requests", status, &v, &raw, "PUT");
    // An id path with characters no id has, or absurdly long.
    let long = "7".repeat(5000);
    for uri in [
        "/api/v1/requests/%F0%9F%98%80".to_string(),
        format!("/api/v1/requests/{long}"),
    ] {
        let (status, v, raw) = api.call(Method::GET, &uri, None, Some(&dpo)).await;
        refused(&uri, status, &v, &raw, &long);
    }
    // An unknown body field with a huge name: refused, neither echoed nor
    // answered at length.
    let key = format!("{}{}", "871008401427", "a".repeat(100_000));
    let mut body = serde_json::Map::new();
    body.insert("name".into(), json!("A. Clerk"));
    body.insert("role".into(), json!("support_agent"));
    body.insert(key.clone(), json!(1));
    let (status, v, raw) = api
        .call(
            Method::POST,
            "/api/v1/staff",
            Some(Value::Object(body)),
            Some(&api.admin),
        )
        .await;
    refused("unknown body field", status, &v, &raw, "871008401427");
    // The events body over its limit: a 413 in the error shape.
    let big: Vec<Value> = (0..40_000)
        .map(|i| json!({"event": "screen_view", "screen": format!("/orders/{i}/{}", "x".repeat(64))}))
        .collect();
    let (status, v, raw) = api
        .send(Method::POST, "/api/v1/events", Some(json!(big)))
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{raw}");
    refused("big events", status, &v, &raw, "orders");
}

/// Every HTML page has a strict CSP and `nosniff`; every answer holding
/// personal data says `no-store` (issue 12, defect 9).
async fn headers_on_every_answer(store: &Store) {
    let api = Api::new(store).await;
    let id = subject(&api).await;
    for (uri, html) in [
        ("/".to_string(), true),
        ("/api/v1/policy/document".to_string(), true),
        (
            "/api/v1/policy/document?lang=en&format=md".to_string(),
            false,
        ),
        ("/desk".to_string(), true),
        (
            format!("/api/v1/subjects/{id}/data?purpose=contract_performance"),
            false,
        ),
        (format!("/api/v1/subjects/{id}/consents"), false),
        (
            "/api/v1/subjects/lookup?iin=871008401427".to_string(),
            false,
        ),
        ("/api/v1/nowhere".to_string(), false),
    ] {
        let (status, h, _, raw) = api
            .exchange(Method::GET, &uri, None, Some(&api.token))
            .await;
        assert!(
            status.is_success() || uri.contains("nowhere"),
            "{uri}: {status} {raw}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff", "{uri}");
        if html {
            let csp = h["content-security-policy"].to_str().unwrap();
            assert!(
                csp.starts_with("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
                "{uri}: {csp}"
            );
        }
        if uri.contains(&id) || uri.contains("lookup") {
            assert_eq!(h["cache-control"], "no-store", "{uri}");
        }
    }
}

/// The last token that can manage staff cannot be revoked, by itself or
/// by anyone; with a second administrator, the first can go (defect 12).
async fn last_administrator(store: &Store) {
    let api = Api::new(store).await;
    let id_of = |list: &Value, name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name && t["revoked_at"].is_null())
            .map(|t| t["token_id"].as_str().unwrap().to_string())
    };
    let (_, list, _) = api
        .call(Method::GET, "/api/v1/staff", None, Some(&api.admin))
        .await;
    let first = id_of(&list, "administrator").unwrap();
    let (status, v, raw) = api
        .call(
            Method::DELETE,
            &format!("/api/v1/staff/{first}"),
            None,
            Some(&api.admin),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{raw}");
    assert_eq!(v["error"]["code"], "last_administrator");
    let second = api.token_for("administrator").await;
    let (status, _, raw) = api
        .call(
            Method::DELETE,
            &format!("/api/v1/staff/{first}"),
            None,
            Some(&second),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{raw}");
    let (_, list, _) = api
        .call(Method::GET, "/api/v1/staff", None, Some(&second))
        .await;
    let second_id = id_of(&list, "test administrator").unwrap();
    let (status, v, _) = api
        .call(
            Method::DELETE,
            &format!("/api/v1/staff/{second_id}"),
            None,
            Some(&second),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["code"], "last_administrator");
}

both_backends!(nul, nul_and_controls);
both_backends!(admins, last_administrator);
both_backends!(headers, headers_on_every_answer);
both_backends!(queries, query_strings);
both_backends!(paths, paths_methods_and_sizes);
