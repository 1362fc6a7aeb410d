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
    // The app signed its user in: the request is verified by that, at once.
    assert_eq!(v["state"], "identity_verified");
    assert_eq!(v["steps"][1]["said"], json!({"code": "verified_in_app"}));
    assert_eq!(v["steps"][1]["reason"], serde_json::Value::Null);
    assert!(v["due"].as_str().unwrap().ends_with("T23:59:59+05:00"));
    let received = (chrono::Utc::now() - chrono::Duration::days(20)).to_rfc3339();
    // A legal representative acts on a recorded authority, valid when the letter came.
    let late_request = |rep: Option<&str>| {
        json!({"identification": {"phone": "8 701 777 00 00"}, "kind": "rectification", "channel": "written",
               "requester": "legal_representative", "representative_id": rep, "received_at": received,
               "details": {"fields": ["full_name.surname"]}})
    };
    let (status, v, _) = api
        .call(
            Method::POST,
            "/api/v1/requests",
            Some(late_request(None)),
            Some(&dpo),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["details"][0]["field"], "representative_id");
    let from = (chrono::Utc::now() - chrono::Duration::days(30)).date_naive();
    let (status, rep, _) = api
        .call(
            Method::POST,
            &format!("/api/v1/subjects/{id}/representatives"),
            Some(json!({"basis": "power_of_attorney", "name": "Омаров Ерлан", "document": "доверенность № 123 от 2026-10-01",
                        "valid_from": from})),
            Some(&dpo),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{rep}");
    let (status, late, _) = api
        .call(
            Method::POST,
            "/api/v1/requests",
            Some(late_request(rep["representative_id"].as_str())),
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
        ("sms", "marketing", false, "objected"),
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
    // The decision point says the same for every purpose that contacts over SMS.
    for purpose in [
        "communication",
        "preferred_communication",
        "surveys",
        "marketing",
    ] {
        let (status, d, _) = api
            .send(
                Method::POST,
                "/api/v1/decisions",
                Some(
                    json!({"subject_id": id, "operation": "use", "purpose": purpose,
                            "categories": ["contact"], "channel": "sms"}),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{d}");
        assert_eq!(d["decision"], "deny", "{purpose}: {d}");
        assert!(
            d["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["code"] == "objected"),
            "{purpose}: {d}"
        );
    }
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
    let support = api.token_for("support_agent").await;
    let withdraw = || async {
        // Filed by support from a letter; verified by the officer (four eyes).
        let (_, r, _) = api
            .call(Method::POST, "/api/v1/requests", Some(json!({"subject_id": id, "kind": "withdrawal", "channel": "written", "requester": "subject"})), Some(&support))
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
    assert_eq!(r["state_said"]["code"], "outstanding_obligations");
    assert!(r["state_said"]["obligations"][0]
        .as_str()
        .unwrap()
        .contains("debt INV-7"));
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
    assert_eq!(c["certificate"]["ground"], "withdrawal");
    // The same certificate as a page to print, in each language.
    let id = c["certificate"]["certificate_id"].as_str().unwrap();
    for (lang, title, confirmed) in [
        (
            "kk",
            "Дербес деректерді жою туралы акт",
            "өзгертілмеген: иә",
        ),
        (
            "ru",
            "Акт об уничтожении персональных данных",
            "не изменена: да",
        ),
        (
            "en",
            "Certificate of destruction of personal data",
            "unchanged: yes",
        ),
    ] {
        let (status, _, page) = api
            .call(
                Method::GET,
                &format!("/api/v1/requests/{rid}/certificate?format=html&lang={lang}"),
                None,
                Some(&dpo),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains(&format!("<html lang=\"{lang}\">")), "{page}");
        for text in [title, id, confirmed] {
            assert!(page.contains(text), "{lang}: {text} missing from {page}");
        }
        if lang != "en" {
            assert!(
                !page.contains("withdrawal of consent") && !page.contains("deleted"),
                "{lang}: English on the page: {page}"
            );
        }
    }
    let (status, e, _) = api
        .call(
            Method::GET,
            &format!("/api/v1/requests/{rid}/certificate?format=pdf"),
            None,
            Some(&dpo),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(e["error"]["details"][0]["field"], "format");
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

async fn exports_and_retention(store: &Store) {
    let api = Api::new(store).await;
    let dpo = api.token_for("data_protection_officer").await;
    let agent = api.token_for("support_agent").await;
    let (_, v, _) = api
        .send(
            Method::POST,
            "/api/v1/subjects",
            Some(json!({"fields": {"identity.iin": "871008401427", "identity.rk_citizen": true, "full_name.surname": "Нурланова",
                                   "full_name.first_name": "Асель", "contact.phone": "+77017773333"},
                        "consents": [{"kind": "policy"}]})),
        )
        .await;
    let id = v["subject_id"].as_str().unwrap().to_string();
    let open = |kind: &'static str| {
        let api = &api;
        let dpo = &dpo;
        let id = &id;
        async move {
            let (_, r, _) = api
                .call(Method::POST, "/api/v1/requests", Some(json!({"subject_id": id, "kind": kind, "channel": "in_app", "requester": "subject"})), Some(dpo))
                .await;
            let rid = r["request_id"].as_str().unwrap().to_string();
            let (status, _, _) = api
                .call(
                    Method::POST,
                    &format!("/api/v1/requests/{rid}/actions"),
                    Some(json!({"action": "verify"})),
                    Some(dpo),
                )
                .await;
            assert_eq!(status, StatusCode::OK);
            rid
        }
    };

    // Access: JSON with every value; HTML in Russian and English.
    let rid = open("access").await;
    let (status, x, _) = api
        .call(
            Method::GET,
            &format!("/api/v1/requests/{rid}/export"),
            None,
            Some(&dpo),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{x}");
    assert_eq!(x["schema"], "derbes.subject-export/1");
    let iin = x["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "identity.iin")
        .unwrap();
    assert_eq!(iin["value"], "871008401427");
    assert_eq!(iin["retention"]["until"]["kind"], "relationship_then");
    for (lang, title) in [
        ("ru", "Копия ваших персональных данных"),
        ("en", "A copy of your personal data"),
    ] {
        let (status, headers, _, page) = api
            .exchange(
                Method::GET,
                &format!("/api/v1/requests/{rid}/export?format=html&lang={lang}"),
                None,
                Some(&dpo),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        // A subject's whole data: never cached, never sniffed, no script.
        assert_eq!(headers["cache-control"], "no-store");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.starts_with("default-src 'none'") && !csp.contains("script-src"),
            "{csp}"
        );
        assert!(
            page.starts_with("<!doctype html>")
                && page.contains(title)
                && page.contains("Нурланова")
        );
    }
    for bad in ["format=pdf", "lang=de"] {
        let (status, v, _) = api
            .call(
                Method::GET,
                &format!("/api/v1/requests/{rid}/export?{bad}"),
                None,
                Some(&dpo),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    // Need-to-know: the support agent is refused by the decision point.
    let (status, v, raw) = api
        .call(
            Method::GET,
            &format!("/api/v1/requests/{rid}/export"),
            None,
            Some(&agent),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["error"]["code"], "denied");
    assert!(!raw.contains("871008401427"));
    // Information: no values at all.
    let info = open("information").await;
    let (status, _, raw) = api
        .call(
            Method::GET,
            &format!("/api/v1/requests/{info}/export"),
            None,
            Some(&dpo),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !raw.contains("871008401427") && !raw.contains("Нурланова") && raw.contains("identity.iin")
    );

    // Rectification through its request.
    let fix = open("rectification").await;
    let (status, r, _) = api
        .call(
            Method::POST,
            &format!("/api/v1/requests/{fix}/rectification"),
            Some(json!({"fields": {"full_name.surname": "Нурланова-Ким"}})),
            Some(&dpo),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["state"], "completed");
    let (status, v, _) = api
        .call(
            Method::POST,
            &format!("/api/v1/requests/{fix}/rectification"),
            Some(json!({"fields": {"full_name.surname": "Другая"}})),
            Some(&dpo),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(v["error"]["details"][0]["reason"].as_str().is_some());

    // Retention: the relationship ends; a hold; what is due; no certificate yet.
    let (status, v, _) = api
        .send(
            Method::POST,
            &format!("/api/v1/subjects/{id}/relationship-end"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["ended_at"].is_string());
    let (status, h, _) = api
        .call(
            Method::POST,
            &format!("/api/v1/subjects/{id}/legal-holds"),
            Some(json!({"reason": "litigation", "reference": "Case 2-77/2026"})),
            Some(&dpo),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{h}");
    let (status, v, _) = api
        .call(
            Method::POST,
            &format!("/api/v1/subjects/{id}/legal-holds"),
            Some(json!({"reason": "curiosity", "reference": "x"})),
            Some(&dpo),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["details"][0]["field"], "reason");
    let (status, holds, _) = api
        .call(
            Method::GET,
            &format!("/api/v1/subjects/{id}/legal-holds"),
            None,
            Some(&dpo),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(holds.as_array().unwrap().len(), 1);
    let (status, due, _) = api
        .call(Method::GET, "/api/v1/retention/due", None, Some(&dpo))
        .await;
    assert_eq!(status, StatusCode::OK, "{due}");
    assert_eq!(due["dry_run"], true);
    let hid = h["hold_id"].as_str().unwrap();
    let (status, _, _) = api
        .call(
            Method::DELETE,
            &format!("/api/v1/subjects/{id}/legal-holds/{hid}"),
            None,
            Some(&dpo),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = api
        .call(
            Method::DELETE,
            &format!("/api/v1/subjects/{id}/legal-holds/{hid}"),
            None,
            Some(&dpo),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = api
        .call(
            Method::GET,
            &format!("/api/v1/subjects/{id}/certificate"),
            None,
            Some(&dpo),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Complaints are routed to the DPO; a support agent may not work them.
    let (_, c, _) = api
        .call(
            Method::POST,
            "/api/v1/requests",
            Some(json!({"kind": "complaint", "channel": "email", "requester": "subject"})),
            Some(&agent),
        )
        .await;
    assert_eq!(c["routed_to"], json!(["data_protection_officer"]));
    let cid = c["request_id"].as_str().unwrap();
    let (status, _, _) = api
        .call(
            Method::POST,
            &format!("/api/v1/requests/{cid}/actions"),
            Some(json!({"action": "verify"})),
            Some(&agent),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

both_backends!(exports, exports_and_retention);

async fn events_and_stats(store: &Store) {
    let api = Api::new(store).await;
    let analyst = api.token_for("analyst").await;
    let now = chrono::Utc::now().to_rfc3339();
    let events: Vec<serde_json::Value> = (0..12)
        .map(|i| json!({"event": "screen_view", "screen": format!("/orders/{i}"), "time": now,
                        "ip": format!("198.51.100.{i}"), "agent": "iBusiness/3.2.1 (Android 13; SM-A515F)"}))
        .chain([json!({"event": "screen_view", "time": now})])
        .collect();
    let (status, v, raw) = api
        .send(Method::POST, "/api/v1/events", Some(json!(events)))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (v["lines"].as_u64(), v["counted"].as_u64()),
        (Some(13), Some(12))
    );
    assert_eq!(v["malformed"]["missing_field"]["lines"], json!([13]));
    assert!(!raw.contains("198.51.100"));
    let (status, v, _) = api
        .call(
            Method::GET,
            "/api/v1/stats?by=route&k=5",
            None,
            Some(&analyst),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["rows"][0]["value"], "/orders/{id}");
    assert_eq!(v["rows"][0]["visitors"], 12);
    let (status, v, _) = api
        .call(
            Method::GET,
            "/api/v1/stats?by=device&k=13",
            None,
            Some(&analyst),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            v["rows"].as_array().unwrap().len(),
            v["suppressed_cells"].as_u64()
        ),
        (0, Some(1))
    );
    for bad in ["by=ip", "by=route&from=yesterday"] {
        let (status, _, _) = api
            .call(
                Method::GET,
                &format!("/api/v1/stats?{bad}"),
                None,
                Some(&analyst),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (status, _, _) = api.send(Method::GET, "/api/v1/stats?by=route", None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the backend sends events, it does not read statistics"
    );
    let (status, _, _) = api
        .call(
            Method::POST,
            "/api/v1/events",
            Some(json!("not events")),
            Some(&analyst),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the form first");
    let (status, _, _) = api
        .call(
            Method::POST,
            "/api/v1/events",
            Some(json!([{"event": "screen_view"}])),
            Some(&analyst),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "analysts read, they do not send"
    );
}

both_backends!(statistics, events_and_stats);
