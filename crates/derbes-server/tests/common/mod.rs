//! The harness the router tests share: a real router on a real store, and
//! staff tokens of the roles a test needs.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use derbes_engine::Engine;
use derbes_policy::LoadedPolicy;
use derbes_server::{app, AppState};
use derbes_store::Store;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

pub struct Api {
    pub state: AppState,
    /// A `backend_service` token.
    pub token: String,
    /// The administrator bootstrapped on first start.
    pub admin: String,
}

impl Api {
    pub async fn new(store: &Store) -> Api {
        let policy =
            LoadedPolicy::from_text(include_str!("../../../../policy/ibusiness.toml").to_string())
                .unwrap();
        let engine = Engine::with_keyring(
            store.clone(),
            policy,
            derbes_vault::Keyring::ephemeral(),
            None,
        );
        let admin = engine.bootstrap_admin().await.unwrap().unwrap();
        let mut api = Api {
            state: AppState::new(engine).unwrap(),
            token: String::new(),
            admin,
        };
        api.token = api.token_for("backend_service").await;
        api
    }

    /// One request; `(status, JSON or null, raw text)`.
    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (StatusCode, Value, String) {
        let (status, _, v, text) = self.exchange(method, uri, body, token).await;
        (status, v, text)
    }

    /// One request; `(status, headers, JSON or null, raw text)`.
    pub async fn exchange(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (StatusCode, HeaderMap, Value, String) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let body = match body {
            Some(v) => {
                req = req.header("content-type", "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let response = app(self.state.clone())
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        )
    }

    /// A request with the backend's token.
    pub async fn send(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value, String) {
        self.call(method, uri, body, Some(&self.token)).await
    }

    /// A new staff token with `role`, created by the administrator over HTTP.
    pub async fn token_for(&self, role: &str) -> String {
        let (status, v, _) = self
            .call(
                Method::POST,
                "/api/v1/staff",
                Some(json!({"name": format!("test {role}"), "role": role})),
                Some(&self.admin),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v["token"].as_str().unwrap().to_string()
    }
}
