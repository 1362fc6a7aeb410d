//! Health, readiness, the policy and the API's own description.

use crate::query::Params;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use derbes_policy::{render, Format, Lang, LoadedPolicy, Policy};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::{ApiError, AppState, ErrorResponse};
use derbes_engine::PolicyVersionView;

/// Every route of the service and its OpenAPI description, from one list:
/// a handler is routed by the path and method its `#[utoipa::path]`
/// annotation documents, so the two cannot drift apart. The pages a person
/// opens (`/`, `/desk`) are routed without an API description. With a
/// state, the `/api/v1` routes but the policy's and this document's need a
/// staff token; without one the router is only for its document.
pub(crate) fn api(state: Option<AppState>) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use crate::breaches as b;
    use crate::decisions as d;
    use crate::me as m;
    use crate::outbox as o;
    use crate::promises as p;
    use crate::requests as r;
    use crate::retention as t;
    use crate::stats as st;
    use crate::subjects as s;
    use utoipa_axum::router::OpenApiRouter;
    use utoipa_axum::routes;
    let protected = OpenApiRouter::new()
        .routes(routes!(s::register))
        .routes(routes!(s::lookup_get, s::lookup_post))
        .routes(routes!(s::data, s::rectify))
        .routes(routes!(s::consents, s::add_consent))
        .routes(routes!(s::withdraw))
        .routes(routes!(s::verify))
        .routes(routes!(s::register_organization))
        .routes(routes!(s::organization))
        .routes(routes!(d::decide))
        // An audience lists up to 100,000 ids: a larger body than any other.
        .merge(
            OpenApiRouter::new()
                .routes(routes!(d::audience))
                .layer(axum::extract::DefaultBodyLimit::max(d::AUDIENCE_BODY_LIMIT)),
        )
        .routes(routes!(d::disclose))
        .routes(routes!(d::disclosures))
        .routes(routes!(d::audit))
        .routes(routes!(r::list, r::create))
        .routes(routes!(r::summary))
        .routes(routes!(s::overview))
        .routes(routes!(d::whoami))
        .routes(routes!(d::set_lang))
        .routes(routes!(r::show))
        .routes(routes!(r::act))
        .routes(routes!(r::can_contact))
        .routes(routes!(r::add_obligation))
        .routes(routes!(r::close_obligation))
        .routes(routes!(r::certificate))
        .routes(routes!(r::export))
        .routes(routes!(r::minor))
        .routes(routes!(t::rectify))
        .routes(routes!(t::end_relationship))
        .routes(routes!(t::holds, t::place_hold))
        .routes(routes!(t::release_hold))
        .routes(routes!(t::certificate))
        .routes(routes!(t::due))
        .routes(routes!(st::events))
        .routes(routes!(st::stats))
        .routes(routes!(p::collect))
        .routes(routes!(p::representatives, p::add_representative))
        .routes(routes!(p::revoke_representative))
        .routes(routes!(p::reconsent))
        .routes(routes!(d::list_staff, d::add_staff))
        .routes(routes!(d::revoke_staff))
        .routes(routes!(o::systems, o::connect))
        .routes(routes!(o::disconnect))
        .routes(routes!(o::list))
        .routes(routes!(o::show))
        .routes(routes!(o::retry))
        .routes(routes!(o::confirm_manually))
        .routes(routes!(o::notices))
        .routes(routes!(b::list, b::report))
        .routes(routes!(b::show))
        .routes(routes!(b::act))
        .routes(routes!(b::notice))
        .routes(routes!(b::notify_subjects))
        .routes(routes!(m::open_session))
        .routes(routes!(m::revoke_session));
    // The subject's own door: a subject session, never a staff token.
    let own = OpenApiRouter::new()
        .routes(routes!(m::me))
        .routes(routes!(m::sign_out))
        .routes(routes!(m::copy))
        .routes(routes!(m::requests, m::file))
        .routes(routes!(m::request))
        .routes(routes!(m::channel));
    let (protected, own) = match state {
        Some(state) => (
            protected.route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                crate::auth::require_staff,
            )),
            own.route_layer(axum::middleware::from_fn_with_state(
                state,
                crate::me::require_session,
            )),
        ),
        None => (protected, own),
    };
    let (router, api) = OpenApiRouter::with_openapi(<crate::ApiDoc as utoipa::OpenApi>::openapi())
        .merge(protected)
        .merge(own)
        // A system's confirmation carries its own signature, not a token.
        .routes(routes!(o::confirm))
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(openapi))
        .routes(routes!(policy))
        .routes(routes!(policy_document))
        .routes(routes!(policy_versions))
        .split_for_parts();
    let mut api = api;
    crate::openapi::complete_responses(&mut api);
    let router = router
        .route("/", get(index))
        .route("/desk", get(desk_page))
        .route("/desk.js", get(desk_script))
        .route("/me", get(center_page))
        .route("/me.js", get(center_script))
        .route("/ui.js", get(ui_script))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    (router, api)
}

/// The OpenAPI document of [`api`]'s routes.
pub(crate) fn document() -> utoipa::openapi::OpenApi {
    api(None).1
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
    /// `ru` (default, the original), `kk` or `en`.
    #[param(pattern = "^(ru|kk|en)$")]
    pub lang: Option<String>,
    /// `html` (default) or `md`.
    #[param(pattern = "^(html|md)$")]
    pub format: Option<String>,
}

/// The readable policy document.
#[utoipa::path(get, path = "/api/v1/policy/document", tag = "policy", params(DocumentQuery),
    responses(
        (status = 200, description = "The document: an HTML page, or Markdown with `format=md`",
            content((String = "text/html"), (String = "text/markdown"))),
        (status = 400, description = "Unknown language or format", body = ErrorResponse)))]
pub(crate) async fn policy_document(
    State(state): State<AppState>,
    Params(q): Params<DocumentQuery>,
) -> Result<Response, ApiError> {
    let lang = lang(q.lang.as_deref())?;
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

/// How an answer that a person may read is given: JSON, or a page in a
/// language (an export, a copy, a certificate).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// `json` (default) or `html` (a page to read and print).
    #[param(pattern = "^(json|html)$")]
    pub format: Option<String>,
    /// The page's language: `ru` (default), `kk` or `en`.
    #[param(pattern = "^(ru|kk|en)$")]
    pub lang: Option<String>,
}

/// A [`PageQuery`] checked: the page's language, or `None` for JSON.
pub(crate) struct AsPage(Option<Lang>);

impl PageQuery {
    /// Checked before anything is done, so a bad query changes nothing.
    pub(crate) fn checked(&self) -> Result<AsPage, ApiError> {
        let lang = lang(self.lang.as_deref())?;
        match self.format.as_deref() {
            None | Some("json") => Ok(AsPage(None)),
            Some("html") => Ok(AsPage(Some(lang))),
            Some(_) => Err(ApiError::invalid("format", "expected `json` or `html`")),
        }
    }
}

impl AsPage {
    /// `value` as JSON, or as the page `render` writes in the language.
    pub(crate) fn respond<T: Serialize>(
        self,
        value: T,
        render: impl FnOnce(&T, Lang) -> String,
    ) -> Response {
        match self.0 {
            Some(lang) => Html(render(&value, lang)).into_response(),
            None => Json(value).into_response(),
        }
    }
}

/// A page's or document's language, `ru` (the original) by default.
pub(crate) fn lang(lang: Option<&str>) -> Result<Lang, ApiError> {
    match lang {
        None => Ok(Lang::Ru),
        Some(l) => {
            Lang::parse(l).ok_or_else(|| ApiError::invalid("lang", "expected `ru`, `kk` or `en`"))
        }
    }
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
         <li><a href=\"/api/v1/policy/document?lang=kk\">Құпиялылық саясаты (қазақша)</a></li>\
         <li><a href=\"/api/v1/policy/document?lang=en\">Privacy policy (English)</a></li>\
         <li><a href=\"/desk\">Rights desk (data-protection officer)</a></li>\
         <li><a href=\"/me\">Privacy center (a user's own page, opened from the app)</a></li>\
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
        [(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DESK_CSP),
        )],
        Html(include_str!("desk/desk.html")),
    )
        .into_response()
}

pub(crate) async fn desk_script() -> Response {
    script(include_str!("desk/desk.js"))
}

/// The privacy center: a data subject's own page, opened by the app in a
/// web view with the session in the fragment (`/me#token=dbm_…`), in
/// Kazakh, Russian and English (a thin client of `/api/v1/me`).
pub(crate) async fn center_page() -> Response {
    (
        [(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DESK_CSP),
        )],
        Html(include_str!("center/center.html")),
    )
        .into_response()
}

pub(crate) async fn center_script() -> Response {
    script(include_str!("center/center.js"))
}

/// What the pages share (`el`, `almaty`, `callApi`).
pub(crate) async fn ui_script() -> Response {
    script(include_str!("ui.js"))
}

fn script(text: &'static str) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take this method; see /api/v1/openapi.json",
    )
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; see /api/v1/openapi.json",
    )
}
