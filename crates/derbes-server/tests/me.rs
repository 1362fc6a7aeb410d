#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The data subject's own door through the real router, on SQLite and
//! PostgreSQL: a session the backend opens, everything of 7.11 through it,
//! and no way from one subject's session to anyone else or to a staff route.

use axum::http::{Method, StatusCode};
use derbes_store::{both_backends, Store};
use serde_json::{json, Value};

mod common;
use common::Api;

fn registration(iin: &str, phone: &str) -> Value {
    json!({
        "fields": {
            "identity.iin": iin, "identity.rk_citizen": true,
            "full_name.surname": "Жумабаева", "full_name.first_name": "Гульнар",
            "contact.phone": phone
        },
        "consents": [{"kind": "policy"}, {"kind": "marketing", "channel": "sms"}]
    })
}

fn other_iin() -> String {
    (0..100u16)
        .find_map(|n| {
            derbes_kz::Iin::from_parts(
                chrono::NaiveDate::from_ymd_opt(1991, 7, 2).unwrap(),
                derbes_kz::Sex::Male,
                n,
            )
            .ok()
        })
        .unwrap()
        .to_string()
}

async fn register(api: &Api, iin: &str, phone: &str) -> String {
    let (status, v, _) = api
        .send(
            Method::POST,
            "/api/v1/subjects",
            Some(registration(iin, phone)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["subject_id"].as_str().unwrap().to_string()
}

async fn open(api: &Api, subject: &str) -> (String, String) {
    let (status, v, _) = api
        .send(
            Method::POST,
            &format!("/api/v1/subjects/{subject}/sessions"),
            Some(json!({"minutes": 10})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    (
        v["session"]["session_id"].as_str().unwrap().to_string(),
        v["token"].as_str().unwrap().to_string(),
    )
}

async fn own_door(store: &Store) {
    let api = Api::new(store).await;
    let a = register(&api, "871008401427", "+77011230000").await;
    let b = register(&api, &other_iin(), "+77011239999").await;

    // Only the backend opens sessions, for a subject that exists.
    let support = api.token_for("support_agent").await;
    let (status, _, _) = api
        .call(
            Method::POST,
            &format!("/api/v1/subjects/{a}/sessions"),
            Some(json!({})),
            Some(&support),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, v, _) = api
        .send(
            Method::POST,
            &format!("/api/v1/subjects/{a}/sessions"),
            Some(json!({"minutes": 600})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["details"][0]["field"], "minutes");
    let (_, token) = open(&api, &a).await;

    // The session opens the subject's door and nothing else.
    let (status, v, text) = api
        .call(Method::GET, "/api/v1/me", None, Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["subject_id"], a.as_str());
    assert!(!text.contains("871008401427"), "a value on my page");
    for (method, uri) in [
        (Method::GET, format!("/api/v1/subjects/{a}/consents")),
        (Method::GET, format!("/api/v1/subjects/{b}/consents")),
        (Method::GET, "/api/v1/requests".to_string()),
        (Method::GET, format!("/api/v1/subjects/{b}/disclosures")),
        (Method::POST, format!("/api/v1/subjects/{b}/sessions")),
    ] {
        let (status, v, _) = api.call(method, &uri, Some(json!({})), Some(&token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}: {v}");
    }
    // And a staff token does not open it.
    let (status, v, _) = api.send(Method::GET, "/api/v1/me", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("subject session"));

    // Channels.
    let (status, v, _) = api
        .call(
            Method::PUT,
            "/api/v1/me/channels/sms",
            Some(json!({"marketing": false})),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["marketing"], false);
    let (status, v, _) = api
        .call(
            Method::PUT,
            "/api/v1/me/channels/fax",
            Some(json!({"marketing": true})),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["details"][0]["field"], "channel");

    // My data: JSON and a printable page.
    let (status, v, _) = api
        .call(
            Method::POST,
            "/api/v1/me/copy",
            Some(json!({"kind": "access"})),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["kind"], "access");
    assert_eq!(v["request"]["channel"], "in_app");
    let (status, _, page) = api
        .call(
            Method::POST,
            "/api/v1/me/copy?format=html&lang=ru",
            Some(json!({"kind": "information"})),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<html"));
    // In Kazakh too: the answer page and the policy it points to.
    let (status, _, page) = api
        .call(
            Method::POST,
            "/api/v1/me/copy?format=html&lang=kk",
            Some(json!({"kind": "access"})),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("lang=\"kk\"") && page.contains("Дербес деректеріңіздің көшірмесі"));
    let (status, _, doc) = api
        .call(Method::GET, "/api/v1/policy/document?lang=kk", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc.contains("ҚҰПИЯЛЫЛЫҚ САЯСАТЫ") && doc.contains("Пайдаланушы"));

    // A rectification with the new values.
    let (status, v, _) = api
        .call(
            Method::POST,
            "/api/v1/me/requests",
            Some(json!({"kind": "rectification", "values": {"full_name.first_name": "Гүлнар"}})),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["state"], "identity_verified");
    let rect = v["request_id"].as_str().unwrap().to_string();
    let (status, v, _) = api
        .call(
            Method::POST,
            "/api/v1/me/requests",
            Some(json!({"kind": "objection", "details": {"channels": ["sms"], "kind": "all"}, "subject_id": b})),
            Some(&token),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "no subject is named here: {v}"
    );

    // The desk sees the values and applies them.
    let dpo = api.token_for("data_protection_officer").await;
    let (status, v, _) = api
        .call(
            Method::GET,
            &format!("/api/v1/requests/{rect}"),
            None,
            Some(&dpo),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["values"]["full_name.first_name"], "Гүлнар");

    // The desk's views of the same: the subject's page (no values), the
    // open queue, the dashboard, who is signed in.
    let (status, v, text) = api
        .call(
            Method::GET,
            &format!("/api/v1/subjects/{a}/overview"),
            None,
            Some(&dpo),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(
        !text.contains("871008401427"),
        "a value on the desk's subject page"
    );
    assert!(v["categories"]
        .as_array()
        .unwrap()
        .contains(&json!("identity")));
    assert!(v["requests"].as_array().unwrap().len() >= 3);
    let (status, v, _) = api
        .call(Method::GET, "/api/v1/requests?open=true", None, Some(&dpo))
        .await;
    assert_eq!(status, StatusCode::OK);
    let queue = v.as_array().unwrap();
    assert!(queue.iter().any(|r| r["request_id"] == rect.as_str()));
    assert!(queue
        .iter()
        .all(|r| r["state"] != "completed" && r["state"] != "refused"));
    let (status, v, _) = api
        .call(Method::GET, "/api/v1/requests/summary", None, Some(&dpo))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["open"].as_u64().unwrap() >= 1);
    assert!(v["last_30_days"]["answered"].as_u64().unwrap() >= 2);
    assert_eq!(v["weeks"].as_array().unwrap().len(), 12);
    let (status, v, _) = api
        .call(Method::GET, "/api/v1/whoami", None, Some(&dpo))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["role"], "data_protection_officer");
    assert_eq!(v["name"], "test data_protection_officer");
    assert!(v.get("lang").is_none(), "no language chosen yet: {v}");
    // The officer's language, kept with their token (not with a browser).
    let (status, v, _) = api
        .call(
            Method::PUT,
            "/api/v1/whoami/lang",
            Some(json!({"lang": "kk"})),
            Some(&dpo),
        )
        .await;
    assert_eq!(
        (status, v["lang"].as_str()),
        (StatusCode::OK, Some("kk")),
        "{v}"
    );
    let (_, v, _) = api
        .call(Method::GET, "/api/v1/whoami", None, Some(&dpo))
        .await;
    assert_eq!(v["lang"], "kk");
    let (_, v, _) = api
        .call(Method::GET, "/api/v1/whoami", None, Some(&support))
        .await;
    assert!(v.get("lang").is_none(), "another's is their own: {v}");
    let (status, v, _) = api
        .call(
            Method::PUT,
            "/api/v1/whoami/lang",
            Some(json!({"lang": "fr"})),
            Some(&dpo),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["details"][0]["field"], "lang");
    let (status, _, _) = api
        .call(
            Method::PUT,
            "/api/v1/whoami/lang",
            Some(json!({"lang": "ru"})),
            Some(&token),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a subject's session has no desk"
    );
    let (status, v, _) = api
        .call(
            Method::POST,
            &format!("/api/v1/requests/{rect}/rectification"),
            Some(json!({"fields": {}})),
            Some(&dpo),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the requester's values applied: {v}"
    );
    let steps = v["steps"].as_array().unwrap();
    assert!(steps
        .iter()
        .any(|s| s["actor_name"] == "test data_protection_officer"));
    assert!(steps[0]["actor"].as_str().unwrap().starts_with("subject:"));

    // Another subject's request is not found through my session.
    let (_, token_b) = open(&api, &b).await;
    let (status, v, _) = api
        .call(
            Method::POST,
            "/api/v1/me/requests",
            Some(json!({"kind": "complaint", "text": "test"})),
            Some(&token_b),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let theirs = v["request_id"].as_str().unwrap().to_string();
    let (status, _, _) = api
        .call(
            Method::GET,
            &format!("/api/v1/me/requests/{theirs}"),
            None,
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, v, _) = api
        .call(Method::GET, "/api/v1/me/requests", None, Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK);
    let mine = v.as_array().unwrap();
    assert!(mine.iter().all(|r| r["subject_id"] == a.as_str()));
    assert!(mine.iter().any(|r| r["request_id"] == rect.as_str()));

    // Signing out ends it; the backend revokes another.
    let (status, _, _) = api
        .call(Method::DELETE, "/api/v1/me/session", None, Some(&token))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = api
        .call(Method::GET, "/api/v1/me", None, Some(&token))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (session, token) = open(&api, &a).await;
    let (status, v, _) = api
        .send(
            Method::DELETE,
            &format!("/api/v1/subjects/{b}/sessions/{session}"),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another subject's session: {v}"
    );
    let (status, v, _) = api
        .send(
            Method::DELETE,
            &format!("/api/v1/subjects/{a}/sessions/{session}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["revoked_now"], true);
    let (status, _, _) = api
        .call(Method::GET, "/api/v1/me", None, Some(&token))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

both_backends!(me, own_door);
