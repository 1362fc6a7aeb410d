//! The derbes HTTP API.
//!
//! [`app`] builds the whole router from an [`AppState`], so tests drive it
//! without a socket and `derbes serve` binds it to one.
//!
//! ```no_run
//! # async fn demo(state: derbes_server::AppState) {
//! let router = derbes_server::app(state);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
//! axum::serve(listener, router).await.unwrap();
//! # }
//! ```

mod auth;
mod body;
mod breaches;
mod decisions;
mod error;
mod headers;
mod listen;
mod log;
mod me;
mod openapi;
mod outbox;
mod path;
mod promises;
mod query;
mod requests;
mod retention;
mod routes;
mod stats;
mod subjects;
mod throttle;

use std::sync::Arc;

use axum::body::Bytes;
use axum::Router;
use derbes_engine::Engine;
use derbes_policy::LoadedPolicy;

pub use error::{ApiError, ErrorBody, ErrorResponse, FieldError};
pub use listen::{serve, Limits, Tls};
pub use openapi::ApiDoc;
pub use throttle::RateLimits;

/// What every handler shares. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    engine: Engine,
    /// The policy model as JSON, rendered once and shared by every response.
    policy_json: Bytes,
    /// The OpenAPI document, rendered once.
    openapi_json: Bytes,
    throttle: throttle::Throttle,
}

impl AppState {
    /// The state for an engine (its store, policy and keys), with the
    /// default rate limits.
    pub fn new(engine: Engine) -> Result<AppState, serde_json::Error> {
        AppState::with_rate_limits(engine, RateLimits::default())
    }

    /// The state for an engine, with these rate limits.
    pub fn with_rate_limits(
        engine: Engine,
        limits: RateLimits,
    ) -> Result<AppState, serde_json::Error> {
        let policy_json = Bytes::from(serde_json::to_vec(&routes::PolicyResponse::of(
            engine.policy(),
        ))?);
        let openapi_json = Bytes::from(openapi::document_json(routes::document())?);
        Ok(AppState {
            inner: Arc::new(Inner {
                engine,
                policy_json,
                openapi_json,
                throttle: throttle::Throttle::new(limits),
            }),
        })
    }

    pub(crate) fn throttle(&self) -> &throttle::Throttle {
        &self.inner.throttle
    }

    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    pub fn policy(&self) -> &LoadedPolicy {
        self.inner.engine.policy()
    }
}

/// The complete router.
pub fn app(state: AppState) -> Router {
    routes::api(Some(state.clone()))
        .0
        .layer(axum::middleware::from_fn(headers::security_headers))
        .layer(axum::middleware::from_fn(log::access_log))
        .with_state(state)
}
