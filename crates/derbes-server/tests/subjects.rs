#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The subject, consent and organisation endpoints, through the real router,
//! on SQLite and PostgreSQL.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use derbes_server::app;
use derbes_store::{both_backends, Store};
use serde_json::{json, Value};
use tower::ServiceExt;

mod common;
use common::Api;

const IIN: &str = "871008401427";

fn registration(iin: &str, phone: &str) -> Value {
    json!({
        "fields": {
            "identity.iin": iin, "identity.rk_citizen": true,
            "full_name.surname": "Нурланова", "full_name.first_name": "Сауле",
            "contact.phone": phone
        },
        "consents": [{"kind": "policy", "evidence": {"app_version": "3.2.1"}}]
    })
}

async fn authentication_is_required(store: &Store) {
    let api = Api::new(store).await;
    for (method, uri) in [
        (Method::POST, "/api/v1/subjects"),
        (Method::GET, "/api/v1/subjects/lookup?iin=871008401427"),
    ] {
        let (status, v, _) = api
            .call(
                method.clone(),
                uri,
                Some(registration(IIN, "+77011112233")),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(v["error"]["code"], "unauthorized");
        let bogus = format!("dbs_{}", "0".repeat(64));
        let (status, _, _) = api
            .call(
                method,
                uri,
                Some(registration(IIN, "+77011112233")),
                Some(&bogus),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // Public endpoints stay public.
    let (status, _, _) = api.call(Method::GET, "/api/v1/policy", None, None).await;
    assert_eq!(status, StatusCode::OK);
}

async fn register_lookup_read_correct(store: &Store) {
    let api = Api::new(store).await;
    let (status, v, _) = api
        .send(
            Method::POST,
            "/api/v1/subjects",
            Some(registration(IIN, "8 701 111 22 33")),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["subject_id"].as_str().unwrap().to_string();
    assert_eq!(
        v["consent_receipt"]["receipt"]["operator"]["bin"],
        "220440001087"
    );
    assert_eq!(v["consent_receipt"]["sha256"].as_str().unwrap().len(), 64);

    let (status, v, _) = api
        .send(
            Method::GET,
            &format!("/api/v1/subjects/lookup?iin={IIN}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["subject_id"], id.as_str());
    let (status, v, _) = api
        .send(
            Method::POST,
            "/api/v1/subjects/lookup",
            Some(json!({"phone": "+7 701 111 22 33"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["subject_id"], id.as_str());
    let (status, v, _) = api
        .send(
            Method::POST,
            "/api/v1/subjects/lookup",
            Some(json!({"iin": "940140000385"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (status, _, _) = api
        .send(
            Method::POST,
            "/api/v1/subjects/lookup",
            Some(json!({"phone": "+77770000000"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, v, _) = api
        .send(
            Method::GET,
            &format!("/api/v1/subjects/{id}/data?purpose=communication&channel=sms"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let fields: Vec<&str> = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["contact.phone", "full_name.first_name", "full_name.surname"],
        "communication may use name and contact only (no IIN)"
    );
    let (status, v, _) = api
        .send(
            Method::GET,
            &format!("/api/v1/subjects/{id}/data?purpose=identification"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let iin = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "identity.iin")
        .unwrap();
    assert_eq!(iin["value"], IIN);
    assert_eq!(iin["source"], "subject");
    let (status, v, _) = api
        .send(
            Method::GET,
            &format!("/api/v1/subjects/{id}/data?purpose=spying"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["code"], "unknown_purpose");

    let (status, v, _) = api
        .send(
            Method::PATCH,
            &format!("/api/v1/subjects/{id}/data"),
            Some(json!({"fields": {"full_name.surname": "Нурланова-Ким"}, "reason": "брак"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["updated"], json!(["full_name.surname"]));
    let (status, _, _) = api
        .send(
            Method::GET,
            "/api/v1/subjects/not-a-uuid/data?purpose=marketing",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = api
        .send(
            Method::GET,
            &format!(
                "/api/v1/subjects/{}/data?purpose=marketing",
                derbes_core::SubjectId::new()
            ),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn refusals_name_the_field_and_store_nothing(store: &Store) {
    let api = Api::new(store).await;
    api.send(
        Method::POST,
        "/api/v1/subjects",
        Some(registration(IIN, "+77011112233")),
    )
    .await;
    let (status, v, _) = api
        .send(
            Method::POST,
            "/api/v1/subjects",
            Some(registration(IIN, "+77014445566")),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(v["error"]["code"], "duplicate_subject");
    assert_eq!(v["error"]["details"][0]["field"], "identity.iin");

    // A minor: 2010-born.
    let minor = (0..50)
        .find_map(|s| {
            derbes_kz::Iin::from_parts(
                chrono::NaiveDate::from_ymd_opt(2010, 3, 3).unwrap(),
                derbes_kz::Sex::Male,
                s,
            )
            .ok()
        })
        .unwrap()
        .to_string();
    let (status, v, text) = api
        .send(
            Method::POST,
            "/api/v1/subjects",
            Some(registration(&minor, "+77019990000")),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["code"], "under_age");
    assert_eq!(v["error"]["details"][0]["field"], "identity.iin");
    assert!(!text.contains(&minor), "never echoes the input");
    let (status, _, _) = api
        .send(
            Method::POST,
            "/api/v1/subjects/lookup",
            Some(json!({"iin": minor})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the minor left nothing behind"
    );

    let (status, v, _) = api
        .send(
            Method::POST,
            "/api/v1/subjects",
            Some(registration("871008401428", "+77018887766")),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["code"], "invalid_iin");

    // Malformed JSON and wrong types: where, not what.
    let response = app(api.state.clone())
        .oneshot(
            Request::post("/api/v1/subjects")
                .header("authorization", format!("Bearer {}", api.token))
                .body(Body::from(
                    r#"{"fields": {"identity.iin": "871008401427"}, "consents": "#,
                ))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (status, v, text) = api
        .send(Method::POST, "/api/v1/subjects", Some(json!({"fields": {}, "consents": [{"kind": "policy", "third_party": "871008401427"}]})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["code"], "invalid_json");
    assert!(!text.contains("871008401427"), "{text}");
    let (status, v, _) = api
        .send(
            Method::POST,
            "/api/v1/subjects",
            Some(json!({"fields": {}, "consents": [], "iin": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // An unknown name is not echoed (it may be the datum); the allowed are.
    assert_eq!(v["error"]["details"][0]["field"], "body");
    let reason = v["error"]["details"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("`fields`") && !reason.contains("iin"),
        "{reason}"
    );
}

async fn consents_over_http(store: &Store) {
    let api = Api::new(store).await;
    let (_, v, _) = api
        .send(
            Method::POST,
            "/api/v1/subjects",
            Some(registration(IIN, "+77011112233")),
        )
        .await;
    let id = v["subject_id"].as_str().unwrap().to_string();
    let (status, v, _) = api
        .send(
            Method::POST,
            &format!("/api/v1/subjects/{id}/consents"),
            Some(json!({"kind": "marketing", "channel": "telegram"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let receipt = v["receipt"]["receipt"].clone();
    let consent_id = receipt["consent_id"].as_str().unwrap().to_string();
    let (status, v, _) = api
        .send(
            Method::POST,
            "/api/v1/consents/verify",
            Some(json!({"receipt": receipt})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["valid"], true);
    assert_eq!(v["state"], "active");
    let (status, v, _) = api
        .send(
            Method::POST,
            &format!("/api/v1/subjects/{id}/consents/{consent_id}/withdrawal"),
            Some(json!({"evidence": {"via": "in_app"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "withdrawn");
    let (status, v, _) = api
        .send(
            Method::GET,
            &format!("/api/v1/subjects/{id}/consents"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let states: Vec<(&str, &str)> = v["consents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["kind"].as_str().unwrap(), c["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [("policy", "active"), ("marketing", "withdrawn")]);
    let (status, v, _) = api
        .send(
            Method::POST,
            &format!("/api/v1/subjects/{id}/consents"),
            Some(json!({"kind": "cookies", "expires_in_months": 24})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["code"], "invalid_expiry");
}

async fn organizations_over_http(store: &Store) {
    let api = Api::new(store).await;
    let (_, v, _) = api
        .send(
            Method::POST,
            "/api/v1/subjects",
            Some(registration(IIN, "+77011112233")),
        )
        .await;
    let id = v["subject_id"].as_str().unwrap().to_string();
    let org = json!({
        "fields": {
            "organisation.name": "ТОО «Тест Сауда»", "organisation.bin": "940140000385",
            "organisation.bank_account": "KZ86125KZT5004100100", "organisation.bik": "KCJBKZKX"
        },
        "representatives": [id]
    });
    let (status, v, _) = api
        .send(Method::POST, "/api/v1/organizations", Some(org.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["fields"]["organisation.bin"], "940140000385");
    assert_eq!(v["representatives"][0], id.as_str());
    let oid = v["organization_id"].as_str().unwrap().to_string();
    let (status, _, _) = api
        .send(Method::GET, &format!("/api/v1/organizations/{oid}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, v, _) = api
        .send(Method::POST, "/api/v1/organizations", Some(org))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(v["error"]["code"], "duplicate_organization");
    let (status, v, _) = api
        .send(Method::POST, "/api/v1/organizations", Some(json!({"fields": {"organisation.name": "X", "organisation.bin": "940140000386", "organisation.bank_account": "KZ00125KZT5004100100"}})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let codes: Vec<&str> = v["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert!(
        codes.contains(&"invalid_bin") && codes.contains(&"invalid_iban"),
        "{codes:?}"
    );
}

/// Path parameters are typed: a bad one is refused before the handler
/// runs, in the error shape, naming the parameter and never echoing it.
async fn path_parameters_are_typed(store: &Store) {
    let api = Api::new(store).await;
    let subject = "01900000-0000-7000-8000-000000000001";
    for (method, uri, field) in [
        (
            Method::GET,
            "/api/v1/subjects/x-871008401427/data?purpose=identification".to_string(),
            "subject_id",
        ),
        (
            Method::POST,
            "/api/v1/subjects/x-871008401427/consents".to_string(),
            "subject_id",
        ),
        (
            Method::GET,
            "/api/v1/subjects/x-871008401427/disclosures".to_string(),
            "subject_id",
        ),
        (
            Method::GET,
            "/api/v1/subjects/x-871008401427/legal-holds".to_string(),
            "subject_id",
        ),
        (
            Method::POST,
            format!("/api/v1/subjects/{subject}/consents/x-871008401427/withdrawal"),
            "consent_id",
        ),
        (
            Method::GET,
            "/api/v1/organizations/x-871008401427".to_string(),
            "id",
        ),
        (
            Method::GET,
            "/api/v1/subjects/%FF%FE871008401427/legal-holds".to_string(),
            "path",
        ),
    ] {
        let (status, v, body) = api.send(method, &uri, Some(json!({}))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(v["error"]["code"], "invalid_input", "{uri}");
        assert_eq!(v["error"]["details"][0]["field"], field, "{uri}");
        assert!(!body.contains("871008401427"), "{uri}: echoed");
    }
}

both_backends!(auth, authentication_is_required);
both_backends!(paths, path_parameters_are_typed);
both_backends!(register, register_lookup_read_correct);
both_backends!(refusals, refusals_name_the_field_and_store_nothing);
both_backends!(consents, consents_over_http);
both_backends!(organizations, organizations_over_http);
