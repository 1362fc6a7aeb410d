#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The real router against real SQLite and PostgreSQL, without a socket.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use derbes_policy::LoadedPolicy;
use derbes_server::{app, AppState};
use derbes_store::{both_backends, Store};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

const SEED: &str = include_str!("../../../policy/ibusiness.toml");

async fn state(store: &Store) -> AppState {
    let policy = LoadedPolicy::from_text(SEED.to_string()).unwrap();
    let p = &policy.policy();
    let mut w = store.write().await.unwrap();
    w.publish_policy(&p.version, policy.sha256(), p.published, policy.text())
        .await
        .unwrap();
    w.commit().await.unwrap();
    let engine = derbes_engine::Engine::with_keyring(
        store.clone(),
        policy,
        derbes_vault::Keyring::ephemeral(),
        None,
    );
    AppState::new(engine).unwrap()
}

async fn get(state: &AppState, uri: &str) -> (StatusCode, String, String) {
    let response = app(state.clone())
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let ctype = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, ctype, String::from_utf8(body.to_vec()).unwrap())
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

async fn health_and_readiness(store: &Store) {
    let st = state(store).await;
    let (status, _, body) = get(&st, "/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["status"], "ok");
    let (status, _, body) = get(&st, "/readyz").await;
    assert_eq!(status, StatusCode::OK);
    let v = json(&body);
    assert_eq!(v["status"], "ready");
    assert_eq!(v["storage"], store.backend().as_str());
    assert_eq!(v["policy_version"], "1.0.0");
    // Storage gone: not ready, and says so without internals.
    store.close().await;
    let (status, _, body) = get(&st, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json(&body)["status"], "unavailable");
}

async fn policy_endpoints(store: &Store) {
    let st = state(store).await;
    let (status, ctype, body) = get(&st, "/api/v1/policy").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ctype, "application/json");
    let v = json(&body);
    assert_eq!(v["policy"]["operator"]["bin"], "220440001087");
    assert_eq!(v["policy"]["deadlines"]["withdrawal"], 1);
    assert_eq!(v["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(v["policy"]["purposes"].as_array().unwrap().len(), 22);

    let (status, _, body) = get(&st, "/api/v1/policy/versions").await;
    assert_eq!(status, StatusCode::OK);
    let v = json(&body);
    assert_eq!(v[0]["version"], "1.0.0");
    assert_eq!(v[0]["current"], true);
    assert_eq!(v[0]["published_on"], "2026-11-24");

    let (status, ctype, body) = get(&st, "/api/v1/policy/document").await;
    assert_eq!(status, StatusCode::OK);
    assert!(ctype.starts_with("text/html"));
    assert!(body.contains("Цели сбора персональной информации"));
    let (status, ctype, body) = get(&st, "/api/v1/policy/document?lang=en&format=md").await;
    assert_eq!(status, StatusCode::OK);
    assert!(ctype.starts_with("text/markdown"));
    assert!(body.starts_with("# PRIVACY POLICY"));
}

both_backends!(health, health_and_readiness);
both_backends!(policy, policy_endpoints);

#[tokio::test]
async fn errors_are_json_and_name_the_field() {
    let db = derbes_store::testing::TestDb::sqlite().await;
    let st = state(&db.store).await;
    let (status, ctype, body) = get(&st, "/api/v1/policy/document?lang=de").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(ctype, "application/json");
    let v = json(&body);
    assert_eq!(v["error"]["code"], "invalid_input");
    assert_eq!(v["error"]["details"][0]["field"], "lang");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("`ru`, `kk` or `en`"));
    let (status, _, body) = get(&st, "/api/v1/no/such/thing?iin=871008401427").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let v = json(&body);
    assert_eq!(v["error"]["code"], "not_found");
    assert!(!body.contains("871008401427"), "errors never echo input");
}

#[tokio::test]
async fn openapi_document_describes_every_route() {
    let db = derbes_store::testing::TestDb::sqlite().await;
    let st = state(&db.store).await;
    let (status, _, body) = get(&st, "/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let v = json(&body);
    assert!(v["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/healthz",
        "/readyz",
        "/api/v1/policy",
        "/api/v1/policy/document",
        "/api/v1/policy/versions",
        "/api/v1/openapi.json",
    ] {
        assert!(
            v["paths"][path]["get"].is_object(),
            "{path} missing from OpenAPI"
        );
    }
    assert!(v["components"]["schemas"]["ErrorResponse"].is_object());
    assert!(v["components"]["schemas"]["Policy"].is_object());
    // Every schema the document refers to is in it (what derbes says of a
    // step among them).
    fn refs(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(|r| r.as_str()) {
                    out.push(r.to_string());
                }
                m.values().for_each(|x| refs(x, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&v, &mut all);
    assert!(all.iter().any(|r| r == "#/components/schemas/Said"));
    for r in &all {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or(r);
        assert!(
            v["components"]["schemas"][name].is_object(),
            "{r} does not resolve"
        );
    }
    // Routes and document come from one list: every documented path and
    // method is routed (never the fallback's "no such endpoint" or a 405).
    let paths = v["paths"].as_object().unwrap();
    assert!(paths.len() >= 40, "{} paths", paths.len());
    let mut tried = 0;
    for (path, item) in paths {
        let uri = path
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        for method in item.as_object().unwrap().keys() {
            let Ok(m) = method.to_uppercase().parse::<axum::http::Method>() else {
                continue;
            };
            let response = app(st.clone())
                .oneshot(
                    Request::builder()
                        .method(m)
                        .uri(&uri)
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert!(
                !String::from_utf8_lossy(&body).contains("no such endpoint"),
                "{method} {path} is documented but not routed"
            );
            tried += 1;
        }
    }
    assert!(tried >= 45, "{tried} operations");
    // Every status the service sends is documented: the shared ones on
    // every operation, and 401/403/429 on every one that needs a token.
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let codes = op["responses"].as_object().unwrap();
            for code in ["400", "408", "422"] {
                assert!(codes.contains_key(code), "{method} {path} lacks {code}");
            }
            if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
                for code in ["401", "403", "429"] {
                    assert!(codes.contains_key(code), "{method} {path} lacks {code}");
                }
            }
        }
    }
    let limit = &v["paths"]["/api/v1/audit"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap()["schema"];
    assert_eq!(
        (limit["minimum"].as_i64(), limit["maximum"].as_i64()),
        (Some(1), Some(1000))
    );
    let (status, ctype, body) = get(&st, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(ctype.starts_with("text/html"));
    assert!(body.contains("/api/v1/openapi.json"));
}

/// The rights desk page: self-contained (its own script, nothing from
/// elsewhere), locked down by its Content-Security-Policy, and putting
/// values on the page only as text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desk_page_is_self_contained() {
    let db = derbes_store::testing::TestDb::sqlite().await;
    let st = state(&db.store).await;
    let response = app(st.clone())
        .oneshot(Request::get("/desk").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let page = String::from_utf8(body.to_vec()).unwrap();
    assert!(page.contains("<script src=\"/ui.js\"></script>\n<script src=\"/desk.js\"></script>"));
    assert!(!page.contains("http://") && !page.contains("https://"));
    assert_eq!(
        page.matches("<script").count(),
        page.matches("<script src=\"/").count(),
        "no inline script, nothing from elsewhere"
    );
    // The privacy center is the same kind of page, and the shared script too.
    let (status, _, center) = get(&st, "/me").await;
    assert_eq!(status, StatusCode::OK);
    assert!(center.contains("<script src=\"/ui.js\"></script>\n<script src=\"/me.js\"></script>"));
    assert_eq!(
        center.matches("<script").count(),
        center.matches("<script src=\"/").count()
    );
    for script in ["/ui.js", "/me.js"] {
        let (status, ctype, js) = get(&st, script).await;
        assert_eq!(status, StatusCode::OK);
        assert!(ctype.starts_with("text/javascript"));
        assert!(
            !js.contains("innerHTML") && !js.contains("eval("),
            "{script}"
        );
    }
    let (status, ctype, js) = get(&st, "/desk.js").await;
    assert_eq!(status, StatusCode::OK);
    assert!(ctype.starts_with("text/javascript"));
    assert!(!js.contains("innerHTML") && !js.contains("eval("));
    assert!(js.contains("/api/v1/requests") && js.contains("sessionStorage"));
    assert!(
        js.contains("/api/v1/breaches?overdue=true") && js.contains("/api/v1/notices?overdue=true")
    );
    // Every API path the page calls exists in the OpenAPI document.
    let (_, _, doc) = get(&st, "/api/v1/openapi.json").await;
    let doc = json(&doc);
    for path in [
        "/api/v1/requests",
        "/api/v1/requests/{id}",
        "/api/v1/requests/{id}/actions",
        "/api/v1/requests/{id}/export",
        "/api/v1/requests/{id}/certificate",
        "/api/v1/breaches",
        "/api/v1/notices",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path}");
    }
    let (_, _, index) = get(&st, "/").await;
    assert!(index.contains("href=\"/desk\""));
}
