//! Health, readiness, the policy and the API's own description.

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use derbes_policy::{render, Format, Lang, LoadedPolicy, Policy};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{ApiError, AppState, ErrorResponse};
use derbes_engine::PolicyVersionView;

pub(crate) fn router(state: AppState) -> Router<AppState> {
    use crate::decisions as d;
    use crate::requests as r;
    use crate::subjects as s;
    use axum::routing::post;
    let protected = Router::new()
        .route("/api/v1/subjects", post(s::register))
        .route(
            "/api/v1/subjects/lookup",
            get(s::lookup_get).post(s::lookup_post),
        )
        .route("/api/v1/subjects/{id}/data", get(s::data).patch(s::rectify))
        .route(
            "/api/v1/subjects/{id}/consents",
            get(s::consents).post(s::add_consent),
        )
        .route(
            "/api/v1/subjects/{id}/consents/{consent_id}/withdrawal",
            post(s::withdraw),
        )
        .route("/api/v1/consents/verify", post(s::verify))
        .route("/api/v1/organizations", post(s::register_organization))
        .route("/api/v1/organizations/{id}", get(s::organization))
        .route("/api/v1/decisions", post(d::decide))
        .route("/api/v1/disclosures", post(d::disclose))
        .route("/api/v1/subjects/{id}/disclosures", get(d::disclosures))
        .route("/api/v1/audit", get(d::audit))
        .route("/api/v1/requests", get(r::list).post(r::create))
        .route("/api/v1/requests/{id}", get(r::show))
        .route("/api/v1/requests/{id}/actions", post(r::act))
        .route("/api/v1/subjects/{id}/can-contact", get(r::can_contact))
        .route("/api/v1/subjects/{id}/obligations", post(r::add_obligation))
        .route(
            "/api/v1/subjects/{id}/obligations/{obligation_id}/close",
            post(r::close_obligation),
        )
        .route("/api/v1/requests/{id}/certificate", get(r::certificate))
        .route("/api/v1/requests/{id}/export", get(r::export))
        .route(
            "/api/v1/requests/{id}/rectification",
            post(crate::retention::rectify),
        )
        .route(
            "/api/v1/subjects/{id}/relationship-end",
            post(crate::retention::end_relationship),
        )
        .route(
            "/api/v1/subjects/{id}/legal-holds",
            get(crate::retention::holds).post(crate::retention::place_hold),
        )
        .route(
            "/api/v1/subjects/{id}/legal-holds/{hold_id}",
            axum::routing::delete(crate::retention::release_hold),
        )
        .route(
            "/api/v1/subjects/{id}/certificate",
            get(crate::retention::certificate),
        )
        .route("/api/v1/retention/due", get(crate::retention::due))
        .route("/api/v1/events", post(crate::stats::events))
        .route("/api/v1/stats", get(crate::stats::stats))
        .route("/api/v1/subjects/{id}/minor", post(r::minor))
        .route(
            "/api/v1/subjects/{id}/collections",
            post(crate::promises::collect),
        )
        .route(
            "/api/v1/subjects/{id}/representatives",
            get(crate::promises::representatives).post(crate::promises::add_representative),
        )
        .route(
            "/api/v1/subjects/{id}/representatives/{representative_id}",
            axum::routing::delete(crate::promises::revoke_representative),
        )
        .route("/api/v1/reconsent", get(crate::promises::reconsent))
        .route("/api/v1/staff", get(d::list_staff).post(d::add_staff))
        .route(
            "/api/v1/staff/{token_id}",
            axum::routing::delete(d::revoke_staff),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            crate::auth::require_staff,
        ));
    Router::new()
        .merge(protected)
        .route("/", get(index))
        .route("/desk", get(desk_page))
        .route("/desk.js", get(desk_script))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/policy", get(policy))
        .route("/api/v1/policy/document", get(policy_document))
        .route("/api/v1/policy/versions", get(policy_versions))
        .fallback(not_found)
}

fn json_bytes(bytes: &[u8]) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes.to_vec(),
    )
        .into_response()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` when the process is up.
    pub status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "service",
    responses((status = 200, description = "The process is up", body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// `ready` or `unavailable`.
    pub status: &'static str,
    /// `sqlite` or `postgres`.
    pub storage: &'static str,
    /// The policy version in force.
    pub policy_version: String,
}

/// Readiness: storage answers a round trip.
#[utoipa::path(get, path = "/readyz", tag = "service",
    responses(
        (status = 200, description = "Storage is reachable", body = Ready),
        (status = 503, description = "Storage is not reachable", body = Ready)))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    let storage = state.engine().backend().as_str();
    let policy_version = state.policy().policy().version.clone();
    match state.engine().ready().await {
        Ok(()) => Json(Ready {
            status: "ready",
            storage,
            policy_version,
        })
        .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Ready {
                    status: "unavailable",
                    storage,
                    policy_version,
                }),
            )
                .into_response()
        }
    }
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "service",
    responses((status = 200, description = "OpenAPI document", content_type = "application/json")))]
pub(crate) async fn openapi(State(state): State<AppState>) -> Response {
    json_bytes(&state.inner.openapi_json)
}

/// The policy in force, with the hash of the file it was loaded from.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyResponse<'a> {
    /// SHA-256 of the policy file, as published.
    pub sha256: &'a str,
    pub policy: &'a Policy,
}

impl<'a> PolicyResponse<'a> {
    pub(crate) fn of(loaded: &'a LoadedPolicy) -> PolicyResponse<'a> {
        PolicyResponse {
            sha256: loaded.sha256(),
            policy: loaded.policy(),
        }
    }
}

/// The current policy as data: purposes, categories, recipients, rights,
/// deadlines and the published text.
#[utoipa::path(get, path = "/api/v1/policy", tag = "policy",
    responses((status = 200, description = "The policy in force", body = PolicyResponse)))]
pub(crate) async fn policy(State(state): State<AppState>) -> Response {
    json_bytes(&state.inner.policy_json)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DocumentQuery {
    /// `ru` (default, the original) or `en`.
    pub lang: Option<String>,
    /// `html` (default) or `md`.
    pub format: Option<String>,
}

/// The readable policy document.
#[utoipa::path(get, path = "/api/v1/policy/document", tag = "policy", params(DocumentQuery),
    responses(
        (status = 200, description = "The document", content_type = "text/html"),
        (status = 400, description = "Unknown language or format", body = ErrorResponse)))]
pub(crate) async fn policy_document(
    State(state): State<AppState>,
    Query(q): Query<DocumentQuery>,
) -> Result<Response, ApiError> {
    let lang = match q.lang.as_deref() {
        None => Lang::Ru,
        Some(l) => {
            Lang::parse(l).ok_or_else(|| ApiError::invalid("lang", "expected `ru` or `en`"))?
        }
    };
    let format = match q.format.as_deref() {
        None => Format::Html,
        Some(f) => Format::parse(f)
            .ok_or_else(|| ApiError::invalid("format", "expected `html` or `md`"))?,
    };
    let body = render(state.policy().policy(), lang, format);
    Ok(match format {
        Format::Html => Html(body).into_response(),
        Format::Markdown => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/markdown; charset=utf-8"),
            )],
            body,
        )
            .into_response(),
    })
}

/// Every policy version published through this derbes, oldest first.
#[utoipa::path(get, path = "/api/v1/policy/versions", tag = "policy",
    responses(
        (status = 200, description = "Published versions", body = [PolicyVersionView]),
        (status = 500, description = "Storage failed", body = ErrorResponse)))]
pub(crate) async fn policy_versions(
    State(state): State<AppState>,
) -> Result<Json<Vec<PolicyVersionView>>, ApiError> {
    Ok(Json(state.engine().policy_versions().await?))
}

/// A small page for people who open the service in a browser.
pub(crate) async fn index(State(state): State<AppState>) -> Html<String> {
    let p = &state.policy().policy();
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>derbes</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}}</style></head>\
         <body><h1>derbes</h1><p>Personal-data engine for «{app}». Policy version {version} ({published}).</p><ul>\
         <li><a href=\"/api/v1/policy/document?lang=ru\">Политика конфиденциальности (русский)</a></li>\
         <li><a href=\"/api/v1/policy/document?lang=en\">Privacy policy (English)</a></li>\
         <li><a href=\"/desk\">Rights desk (data-protection officer)</a></li>\
         <li><a href=\"/api/v1/openapi.json\">OpenAPI document</a></li>\
         <li><a href=\"/readyz\">Readiness</a></li></ul></body></html>",
        app = p.operator.app,
        version = p.version,
        published = p.published,
    ))
}

/// The desk page's policy: its own script only, no inline script, nothing
/// fetched from elsewhere, never framed.
const DESK_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; \
     connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The rights desk: the DPO's queue in a browser (a thin client of this API).
pub(crate) async fn desk_page() -> Response {
    (
        [
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(DESK_CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        Html(include_str!("desk/desk.html")),
    )
        .into_response()
}

pub(crate) async fn desk_script() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        include_str!("desk/desk.js"),
    )
        .into_response()
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; see /api/v1/openapi.json",
    )
}
