#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The promises' HTTP doors (the engine's conformance suite tries each
//! promise at every engine door; this drives the same doors through the
//! router), on SQLite and PostgreSQL.

use axum::http::{Method, StatusCode};
use derbes_store::{both_backends, Store};
use serde_json::{json, Value};

mod common;
use common::Api;

fn codes(v: &Value) -> Vec<String> {
    v["error"]["details"]
        .as_array()
        .map(|d| {
            d.iter()
                .map(|x| x["code"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn register(api: &Api, iin: &str, phone: &str, consents: Value) -> String {
    let (status, v, _) = api
        .send(
            Method::POST,
            "/api/v1/subjects",
            Some(json!({"fields": {"identity.iin": iin, "identity.rk_citizen": true, "full_name.surname": "Нурланова",
                                   "full_name.first_name": "Асем", "contact.phone": phone},
                        "consents": consents})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v["subject_id"].as_str().unwrap().to_string()
}

async fn doors(store: &Store) {
    let api = Api::new(store).await;
    let dpo = api.token_for("data_protection_officer").await;
    let support = api.token_for("support_agent").await;
    let analyst = api.token_for("analyst").await;
    let id = register(
        &api,
        "871008401427",
        "+77017770101",
        json!([{"kind": "policy"}]),
    )
    .await;

    // Depersonalised only: no subject's fields for statistics.
    let (status, v, _) = api
        .call(
            Method::GET,
            &format!("/api/v1/subjects/{id}/data?purpose=statistics"),
            None,
            Some(&analyst),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert!(codes(&v).contains(&"depersonalised_only".to_string()));

    // Technical data is collected for a purpose, with the cookie consent it needs.
    let collect = json!({"purpose": "device_linking", "fields": {"app_data.cookies": "sid=http-1"}, "source": "device"});
    let (status, v, _) = api
        .send(
            Method::POST,
            &format!("/api/v1/subjects/{id}/collections"),
            Some(collect.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["code"], "consent_required");
    let (status, v, _) = api
        .send(
            Method::PATCH,
            &format!("/api/v1/subjects/{id}/data"),
            Some(json!({"fields": {"app_data.cookies": "sid=http-1"}, "reason": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["code"], "collected_for_a_purpose");
    api.send(
        Method::POST,
        &format!("/api/v1/subjects/{id}/consents"),
        Some(json!({"kind": "cookies"})),
    )
    .await;
    let (status, v, _) = api
        .send(
            Method::POST,
            &format!("/api/v1/subjects/{id}/collections"),
            Some(collect),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["fields"], json!(["app_data.cookies"]));

    // Holds: the officer's alone; refusals are 403 with the reason, audited.
    let (status, v, _) = api
        .call(
            Method::POST,
            &format!("/api/v1/subjects/{id}/legal-holds"),
            Some(json!({"reason": "litigation", "reference": "case 1-1/2026"})),
            Some(&support),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(codes(&v), ["approver_required"]);
    let (status, hold, _) = api
        .call(
            Method::POST,
            &format!("/api/v1/subjects/{id}/legal-holds"),
            Some(json!({"reason": "litigation", "reference": "case 1-1/2026"})),
            Some(&dpo),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    let hid = hold["hold_id"].as_str().unwrap();
    let (status, _, _) = api
        .call(
            Method::DELETE,
            &format!("/api/v1/subjects/{id}/legal-holds/{hid}"),
            None,
            Some(&support),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A destruction request filed by support: support cannot verify it, the
    // officer can; the held subject's destruction waits and says why.
    let (_, r, _) = api
        .call(Method::POST, "/api/v1/requests",
              Some(json!({"subject_id": id, "kind": "destruction", "channel": "written", "requester": "subject"})),
              Some(&support))
        .await;
    let rid = r["request_id"].as_str().unwrap().to_string();
    let act = |token: String, action: &'static str| {
        let rid = rid.clone();
        let api = &api;
        async move {
            api.call(
                Method::POST,
                &format!("/api/v1/requests/{rid}/actions"),
                Some(json!({"action": action})),
                Some(&token),
            )
            .await
        }
    };
    let (status, v, _) = act(support.clone(), "verify").await;
    assert_eq!(
        (status, codes(&v)),
        (StatusCode::FORBIDDEN, vec!["approver_required".to_string()]),
        "{v}"
    );
    let (status, v, _) = act(dpo.clone(), "verify").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(api.state.engine().run_jobs().await.unwrap().waiting_held, 1);
    let (_, v, _) = api
        .call(
            Method::GET,
            &format!("/api/v1/requests/{rid}"),
            None,
            Some(&dpo),
        )
        .await;
    assert_eq!(v["waiting"], json!(["legal_hold"]));
    let (_, audit, _) = api
        .call(
            Method::GET,
            &format!("/api/v1/audit?subject_id={id}"),
            None,
            Some(&dpo),
        )
        .await;
    let denials = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["decision"] == "deny" && r["reasons"].to_string().contains("approver_required")
        })
        .count();
    assert_eq!(denials, 3, "every refusal is audited");

    // The policy consent withdrawn through the consent endpoint: only the
    // app for its signed-in user, and it is the 7.11 withdrawal.
    let other = register(
        &api,
        "900101300017",
        "+77017770102",
        json!([{"kind": "policy"}]),
    )
    .await;
    let (_, list, _) = api
        .send(
            Method::GET,
            &format!("/api/v1/subjects/{other}/consents"),
            None,
        )
        .await;
    let cid = list["consents"][0]["consent_id"]
        .as_str()
        .unwrap()
        .to_string();
    let uri = format!("/api/v1/subjects/{other}/consents/{cid}/withdrawal");
    let (status, _, _) = api
        .call(Method::POST, &uri, Some(json!({})), Some(&support))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, v, _) = api
        .send(
            Method::POST,
            &uri,
            Some(json!({"evidence": {"app_version": "3.2.1"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["state"], "withdrawn");
    let (status, v, _) = api
        .send(
            Method::GET,
            &format!("/api/v1/subjects/{other}/data?purpose=identification"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(codes(&v).contains(&"subject_withdrawn".to_string()), "{v}");
    let (_, q, _) = api
        .call(
            Method::GET,
            "/api/v1/requests?kind=withdrawal",
            None,
            Some(&dpo),
        )
        .await;
    assert!(q
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["subject_id"] == other.as_str() && r["channel"] == "in_app"));

    // A minor's report: the birth date must agree with the IIN; the filer cannot verify.
    let (status, v, _) = api
        .call(
            Method::POST,
            &format!("/api/v1/subjects/{other}/minor"),
            Some(json!({"iin": "871008401427", "born_on": "2099-01-01"})),
            Some(&support),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["code"], "birth_date_mismatch");

    // Representatives and the re-consent list.
    let (status, rep, _) = api
        .call(Method::POST, &format!("/api/v1/subjects/{id}/representatives"),
              Some(json!({"basis": "law", "name": "Нурланов Ерлан", "document": "свидетельство о рождении"})), Some(&support))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rep}");
    let (status, list, _) = api
        .call(
            Method::GET,
            &format!("/api/v1/subjects/{id}/representatives"),
            None,
            Some(&dpo),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list[0]["name"], "Нурланов Ерлан");
    let (status, v, _) = api
        .call(Method::GET, "/api/v1/reconsent?limit=10", None, Some(&dpo))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["items"], json!([]));

    // A text with a bidirectional override is refused, naming the field only.
    let (status, v, raw) = api
        .send(Method::POST, "/api/v1/subjects",
              Some(json!({"fields": {"identity.iin": "950505400019", "identity.rk_citizen": true,
                                     "full_name.surname": "Иванов\u{202E}вокс", "full_name.first_name": "Иван",
                                     "contact.phone": "+77017770103"}, "consents": [{"kind": "policy"}]})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["details"][0]["field"], "full_name.surname");
    assert!(!raw.contains("Иванов"));

    // Every new door is described.
    let (_, doc, _) = api
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    for path in [
        "/api/v1/subjects/{id}/collections",
        "/api/v1/subjects/{id}/representatives",
        "/api/v1/subjects/{id}/representatives/{representative_id}",
        "/api/v1/reconsent",
        "/api/v1/subjects/{id}/minor",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} is not in the OpenAPI document"
        );
    }
}

both_backends!(http_doors, doors);
