#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Roles, 401/403, the decision point, disclosures, the audit log and staff
//! over HTTP, on SQLite and PostgreSQL.

use axum::http::{Method, StatusCode};
use derbes_store::{both_backends, Store};
use serde_json::{json, Value};
mod common;
use common::Api;

/// Call with a token, as these tests always do.
async fn call(
    api: &Api,
    method: Method,
    uri: &str,
    body: Option<Value>,
    token: &str,
) -> (StatusCode, Value) {
    let (status, v, _) = api.call(method, uri, body, Some(token)).await;
    (status, v)
}

async fn subject(api: &Api, backend: &str) -> String {
    let (status, v) = call(
        api,
        Method::POST,
        "/api/v1/subjects",
        Some(json!({
            "fields": {"identity.iin": "871008401427", "identity.rk_citizen": true, "full_name.surname": "Ким",
                       "full_name.first_name": "Дана", "contact.phone": "+77015551122"},
            "consents": [{"kind": "policy", "notify_of_transfers": true}, {"kind": "marketing", "channel": "sms"}]
        })),
        backend,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["subject_id"].as_str().unwrap().to_string()
}

fn codes(v: &Value) -> Vec<String> {
    v["error"]["details"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| d["code"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn roles_and_need_to_know(store: &Store) {
    let api = Api::new(store).await;
    let backend = api.token_for("backend_service").await;
    let marketing = api.token_for("marketing").await;
    let analyst = api.token_for("analyst").await;
    let id = subject(&api, &backend).await;

    // The administrator runs derbes but may not register or read anyone.
    let (status, v) = call(
        &api,
        Method::GET,
        &format!("/api/v1/subjects/{id}/data?purpose=identification"),
        None,
        &api.admin,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(v["error"]["code"], "forbidden");
    // An analyst may not register.
    let (status, _) = call(
        &api,
        Method::POST,
        "/api/v1/subjects",
        Some(json!({"fields": {}, "consents": []})),
        &analyst,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Marketing has no need to know identity: denied, with reasons and an audit record.
    let (status, v) = call(
        &api,
        Method::GET,
        &format!("/api/v1/subjects/{id}/data?purpose=identification"),
        None,
        &marketing,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["error"]["code"], "denied");
    assert!(codes(&v).contains(&"no_need_to_know".to_string()), "{v}");
    // Marketing for marketing: needs the channel, then the channel's consent.
    let (status, v) = call(
        &api,
        Method::GET,
        &format!("/api/v1/subjects/{id}/data?purpose=marketing"),
        None,
        &marketing,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(codes(&v).contains(&"channel_required".to_string()));
    let (status, v) = call(
        &api,
        Method::GET,
        &format!("/api/v1/subjects/{id}/data?purpose=marketing&channel=whatsapp"),
        None,
        &marketing,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(codes(&v).contains(&"no_marketing_consent".to_string()));
    let (status, v) = call(
        &api,
        Method::GET,
        &format!("/api/v1/subjects/{id}/data?purpose=marketing&channel=sms"),
        None,
        &marketing,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["categories"], json!(["full_name", "contact"]));
    assert!(v["audit_id"].as_i64().unwrap() > 0);
    // Withdrawing the SMS consent takes effect on the very next use (no stale cache).
    let (_, consents) = call(
        &api,
        Method::GET,
        &format!("/api/v1/subjects/{id}/consents"),
        None,
        &backend,
    )
    .await;
    let sms = consents["consents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "marketing")
        .unwrap()["consent_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = call(
        &api,
        Method::POST,
        &format!("/api/v1/subjects/{id}/consents/{sms}/withdrawal"),
        Some(json!({"evidence": {"via": "in_app"}})),
        &backend,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, v) = call(
        &api,
        Method::GET,
        &format!("/api/v1/subjects/{id}/data?purpose=marketing&channel=sms"),
        None,
        &marketing,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert!(codes(&v).contains(&"no_marketing_consent".to_string()));
    // Statistics are depersonalised only: a named subject's fields never go to them.
    let (status, v) = call(
        &api,
        Method::GET,
        &format!("/api/v1/subjects/{id}/data?purpose=statistics"),
        None,
        &analyst,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert!(codes(&v).contains(&"depersonalised_only".to_string()));
    // 401 for a revoked token.
    let (_, list) = call(&api, Method::GET, "/api/v1/staff", None, &api.admin).await;
    let analyst_id = list
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["role"] == "analyst")
        .unwrap()["token_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _) = call(
        &api,
        Method::DELETE,
        &format!("/api/v1/staff/{analyst_id}"),
        None,
        &api.admin,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(
        &api,
        Method::GET,
        &format!("/api/v1/subjects/{id}/data?purpose=statistics"),
        None,
        &analyst,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, v) = call(
        &api,
        Method::POST,
        "/api/v1/staff",
        Some(json!({"name": "x", "role": "god"})),
        &api.admin,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["code"], "unknown_role");
    let (status, _) = call(
        &api,
        Method::POST,
        "/api/v1/staff",
        Some(json!({"name": "x", "role": "administrator"})),
        &backend,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn decisions_disclosures_and_audit(store: &Store) {
    let api = Api::new(store).await;
    let backend = api.token_for("backend_service").await;
    let dpo = api.token_for("data_protection_officer").await;
    let id = subject(&api, &backend).await;

    let (status, v) = call(&api, Method::POST, "/api/v1/decisions", Some(json!({"subject_id": id, "operation": "use", "purpose": "identification", "categories": ["identity"]})), &backend).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["decision"], "permit");
    assert!(v["audit_id"].as_i64().unwrap() > 0);
    let (status, v) = call(&api, Method::POST, "/api/v1/decisions", Some(json!({"subject_id": id, "operation": "transfer", "purpose": "marketing", "categories": ["contact"], "recipient": "ad_platforms", "channel": "sms"})), &backend)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["decision"], "deny");
    let reason_codes: Vec<&str> = v["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert!(
        reason_codes.contains(&"cross_border_operation"),
        "{reason_codes:?}"
    );

    // A disclosure to a bank: permitted, recorded, a notice due in 10 working days.
    let (status, v) = call(&api, Method::POST, "/api/v1/disclosures", Some(json!({"subject_id": id, "recipient": "financial_institutions", "purpose": "contract_performance", "categories": ["full_name"], "legal_basis": "the user's consent (clause 6.1)"})), &backend)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["cross_border"], false);
    assert!(
        v["notice_due"].is_string(),
        "the consent asked to be told: {v}"
    );
    // The IP-to-person link goes to nobody but an authority with a basis.
    let (status, v) = call(&api, Method::POST, "/api/v1/disclosures", Some(json!({"subject_id": id, "recipient": "kz_authorities", "purpose": "legal_obligation", "categories": ["network"], "legal_basis": "ask"})), &dpo)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert!(
        codes(&v).contains(&"legal_basis_required".to_string())
            && codes(&v).contains(&"ip_link_forbidden".to_string())
    );
    let (status, v) = call(&api,
            Method::POST,
            "/api/v1/disclosures",
            Some(json!({"subject_id": id, "recipient": "kz_authorities", "purpose": "legal_obligation", "categories": ["identity", "network"],
                        "legal_basis": "Закон РК «О персональных данных и их защите», ст. 12", "reference": "запрос № 12-34/567"})),
            &dpo,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    // The backend may not disclose for legal obligations (no need to know).
    let (status, _) = call(&api, Method::POST, "/api/v1/disclosures", Some(json!({"subject_id": id, "recipient": "kz_authorities", "purpose": "legal_obligation", "categories": ["identity"], "legal_basis": "x", "reference": "y"})), &backend)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, v) = call(
        &api,
        Method::GET,
        &format!("/api/v1/subjects/{id}/disclosures"),
        None,
        &dpo,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let recipients: Vec<&str> = v["disclosures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["recipient"].as_str().unwrap())
        .collect();
    assert_eq!(recipients, ["financial_institutions", "kz_authorities"]);
    // Each names its permit, which committed with it (one unit of work).
    for d in v["disclosures"].as_array().unwrap() {
        let seq = d["audit_id"].as_i64().unwrap();
        let (status, a) = call(
            &api,
            Method::GET,
            &format!("/api/v1/audit?subject_id={id}&after={}&limit=1", seq - 1),
            None,
            &dpo,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let r = &a["records"][0];
        assert_eq!(
            (r["seq"].as_i64(), r["action"].as_str()),
            (Some(seq), Some("disclosure")),
            "{a}"
        );
        assert_eq!(r["decision"], "permit", "{a}");
    }

    // The audit log: every step above, paged, readable by the DPO only.
    let (status, _) = call(&api, Method::GET, "/api/v1/audit", None, &backend).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, v) = call(
        &api,
        Method::GET,
        &format!("/api/v1/audit?subject_id={id}&limit=3"),
        None,
        &dpo,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["records"].as_array().unwrap().len(), 3);
    let after = v["next_after"].as_i64().unwrap();
    let (_, v2) = call(
        &api,
        Method::GET,
        &format!("/api/v1/audit?subject_id={id}&after={after}&limit=1000"),
        None,
        &dpo,
    )
    .await;
    let mut actions: Vec<String> = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .chain(v2["records"].as_array().unwrap())
        .map(|r| r["action"].as_str().unwrap().to_string())
        .collect();
    actions.dedup();
    for a in ["register", "decision", "disclosure", "disclosures.read"] {
        assert!(actions.contains(&a.to_string()), "{a} not in {actions:?}");
    }
    let all = v["records"]
        .as_array()
        .unwrap()
        .iter()
        .chain(v2["records"].as_array().unwrap())
        .cloned()
        .collect::<Vec<_>>();
    assert!(
        all.iter().any(|r| r["decision"] == "deny"),
        "denials are audited too"
    );
    let text = serde_json::to_string(&all).unwrap();
    for secret in ["871008401427", "77015551122", "Ким", "Дана"] {
        assert!(
            !text.contains(secret),
            "the audit log never holds values: {secret}"
        );
    }
    let (status, _) = call(
        &api,
        Method::GET,
        "/api/v1/audit?from=yesterday",
        None,
        &dpo,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The chain is intact.
    let v = api.state.engine().verify_audit().await.unwrap();
    assert!(v.first_bad.is_none() && v.records > 10);
}

both_backends!(roles, roles_and_need_to_know);
both_backends!(decisions, decisions_disclosures_and_audit);

/// `POST /audiences` over HTTP: the streamed answer is one JSON document
/// of the schema's shape, refusals name their field, a role without
/// `decide` is refused, a body over the route's limit is a 413, and the
/// chain verifies after.
async fn audiences(store: &Store) {
    let api = Api::new(store).await;
    let backend = api.token_for("backend_service").await;
    let marketing = api.token_for("marketing").await;
    let support = api.token_for("support_agent").await;
    let id = subject(&api, &backend).await;
    let unknown = "01900000-0000-7000-8000-000000000000";
    let ask = json!({"operation": "use", "purpose": "marketing", "categories": ["contact"],
                     "channel": "sms", "subject_ids": [id, unknown, id], "count_denials": true});
    let (status, v) = call(
        &api,
        Method::POST,
        "/api/v1/audiences",
        Some(ask.clone()),
        &marketing,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["subject_ids"], json!([id]));
    assert_eq!(
        (
            v["asked"].as_u64(),
            v["permitted"].as_u64(),
            v["unknown"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(v["denials"], json!({}));
    assert!(v["audit_id"].as_i64().unwrap() > 0 && v["audience_id"].is_string());
    // Every active subject, nobody permitted for a purpose marketing may not use.
    let (status, v) = call(
        &api,
        Method::POST,
        "/api/v1/audiences",
        Some(
            json!({"operation": "use", "purpose": "identification", "categories": ["identity"],
                    "every_active_subject": true, "count_denials": true}),
        ),
        &marketing,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["subject_ids"], json!([]));
    assert_eq!(v["denied"], 1);
    assert!(!v["denials"].as_object().unwrap().is_empty(), "{v}");
    // Refusals name their field.
    let (status, v) = call(
        &api,
        Method::POST,
        "/api/v1/audiences",
        Some(json!({"operation": "use", "purpose": "marketing", "categories": ["contact"]})),
        &marketing,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["details"][0]["field"], "subject_ids", "{v}");
    let (status, v) = call(
        &api,
        Method::POST,
        "/api/v1/audiences",
        Some(
            json!({"operation": "use", "purpose": "marketing", "categories": ["contact"],
                    "subject_ids": ["not-an-id"]}),
        ),
        &marketing,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert!(!v.to_string().contains("not-an-id"), "{v}");
    let (status, v) = call(&api, Method::POST, "/api/v1/audiences", Some(ask), &support).await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    // 100,000 ids fit; far more do not.
    let many: Vec<String> = (0..170_000)
        .map(|i| format!("01900000-0000-7000-8000-{i:012}"))
        .collect();
    let (status, v) = call(
        &api,
        Method::POST,
        "/api/v1/audiences",
        Some(
            json!({"operation": "use", "purpose": "marketing", "categories": ["contact"],
                    "subject_ids": many}),
        ),
        &marketing,
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    let (status, v) = call(
        &api,
        Method::POST,
        "/api/v1/audiences",
        Some(
            json!({"operation": "use", "purpose": "marketing", "categories": ["contact"],
                    "subject_ids": &many[..100_000]}),
        ),
        &marketing,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (v["asked"].as_u64(), v["unknown"].as_u64()),
        (Some(100_000), Some(100_000))
    );
    assert!(store
        .verify_audit(None, &|_, _, _| true)
        .await
        .unwrap()
        .first_bad
        .is_none());
}

both_backends!(audience, audiences);
