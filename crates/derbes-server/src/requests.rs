//! The rights desk over HTTP.

use crate::query::Params;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use derbes_engine::{Actor, NewRequest, RequestAction, RequestState, RequestView};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::body::JsonBody;
use crate::path::{IdPath, SubjectItemPath, SubjectPath};
use crate::{ApiError, AppState, ErrorResponse};

/// Receive a data-subject request; its due date comes from the policy's
/// deadline for the kind, in Kazakh working days.
#[utoipa::path(post, path = "/api/v1/requests", tag = "requests", request_body = NewRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Received", body = RequestView),
        (status = 403, description = "`forbidden`", body = ErrorResponse),
        (status = 404, description = "No such subject", body = ErrorResponse),
        (status = 422, description = "Refused: `in_future`, `invalid_identification`, ...", body = ErrorResponse)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(req): JsonBody<NewRequest>,
) -> Result<(StatusCode, Json<RequestView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(state.engine().create_request(&actor, &req).await?),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RequestQuery {
    /// Only requests in this state.
    #[param(inline)]
    pub state: Option<RequestState>,
    /// Only requests of this kind (a right of the policy).
    #[param(inline)]
    pub kind: Option<derbes_policy::Right>,
    /// Only open requests past their due date.
    pub overdue: Option<bool>,
    /// Only open requests (neither completed nor refused).
    pub open: Option<bool>,
    /// Only requests due before this instant (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub due_before: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// At most this many requests (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// The queue, soonest due first.
#[utoipa::path(get, path = "/api/v1/requests", tag = "requests", params(RequestQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "Requests", body = [RequestView]), (status = 403, description = "`forbidden`", body = ErrorResponse)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Params(q): Params<RequestQuery>,
) -> Result<Json<Vec<RequestView>>, ApiError> {
    let queue = derbes_engine::Queue {
        state: q.state,
        kind: q.kind,
        subject_id: None,
        open: q.open.unwrap_or(false),
        overdue: q.overdue.unwrap_or(false),
        due_before: q.due_before.map(|t| t.with_timezone(&chrono::Utc)),
        limit: q.limit.unwrap_or(100),
    };
    Ok(Json(state.engine().requests(&actor, &queue).await?))
}

/// The desk's dashboard: open, overdue, due this week, answered on time in
/// the last 30 and 90 days, and the last 12 weeks received and answered.
#[utoipa::path(get, path = "/api/v1/requests/summary", tag = "requests",
    security(("bearer" = [])),
    responses((status = 200, description = "The figures", body = derbes_engine::RequestSummary),
        (status = 403, description = "`forbidden` (work_requests)", body = ErrorResponse)))]
pub(crate) async fn summary(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<derbes_engine::RequestSummary>, ApiError> {
    Ok(Json(state.engine().request_summary(&actor).await?))
}

/// One request with every step.
#[utoipa::path(get, path = "/api/v1/requests/{id}", tag = "requests",
    params(("id" = String, Path, pattern = "^[0-9A-Za-z._:-]{1,128}$", description = "Request id")),
    security(("bearer" = [])),
    responses((status = 200, description = "The request", body = RequestView), (status = 404, description = "No such request", body = ErrorResponse)))]
pub(crate) async fn show(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    IdPath(id): IdPath,
) -> Result<Json<RequestView>, ApiError> {
    Ok(Json(state.engine().request(&actor, &id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    pub action: RequestAction,
    /// Required to refuse.
    pub reason: Option<String>,
}

/// Verify the requester's identity, start, complete, or refuse with a reason.
#[utoipa::path(post, path = "/api/v1/requests/{id}/actions", tag = "requests",
    params(("id" = String, Path, pattern = "^[0-9A-Za-z._:-]{1,128}$", description = "Request id")), request_body = ActionBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The request after the action", body = RequestView),
        (status = 404, description = "No such request", body = ErrorResponse),
        (status = 409, description = "Changed meanwhile", body = ErrorResponse),
        (status = 422, description = "`invalid_transition`, `reason_required`", body = ErrorResponse)))]
pub(crate) async fn act(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody<ActionBody>,
) -> Result<Json<RequestView>, ApiError> {
    Ok(Json(
        state
            .engine()
            .act_on_request(&actor, &id, body.action, body.reason.as_deref())
            .await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContactQuery {
    /// The channel to contact the subject on.
    #[param(inline)]
    pub channel: derbes_policy::Channel,
    /// `service` or `marketing`.
    #[param(pattern = "^(service|marketing)$")]
    pub kind: String,
}

/// May a sender contact this subject on this channel with this kind of
/// message? Every sender asks before sending.
#[utoipa::path(get, path = "/api/v1/subjects/{id}/can-contact", tag = "requests",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "Subject id"), ContactQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The answer", body = derbes_engine::ContactAnswer),
        (status = 404, description = "No such subject", body = ErrorResponse)))]
pub(crate) async fn can_contact(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    SubjectPath(subject): SubjectPath,
    Params(q): Params<ContactQuery>,
) -> Result<Json<derbes_engine::ContactAnswer>, ApiError> {
    let (channel, kind) = (q.channel, q.kind);
    Ok(Json(
        state
            .engine()
            .can_contact(&actor, subject, channel, &kind)
            .await?,
    ))
}

/// Register an open obligation of a subject (a withdrawal is refused while any is open).
#[utoipa::path(post, path = "/api/v1/subjects/{id}/obligations", tag = "requests",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "Subject id")), request_body = derbes_engine::NewObligation,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Recorded", body = derbes_engine::ObligationView),
        (status = 404, description = "No such subject", body = ErrorResponse),
        (status = 422, description = "`invalid_kind`, `invalid_reference`", body = ErrorResponse)))]
pub(crate) async fn add_obligation(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    SubjectPath(subject): SubjectPath,
    JsonBody(body): JsonBody<derbes_engine::NewObligation>,
) -> Result<(StatusCode, Json<derbes_engine::ObligationView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(
            state
                .engine()
                .add_obligation(&actor, subject, &body)
                .await?,
        ),
    ))
}

/// Close an obligation (fulfilled or settled).
#[utoipa::path(post, path = "/api/v1/subjects/{id}/obligations/{obligation_id}/close", tag = "requests",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "Subject id"), ("obligation_id" = String, Path, pattern = "^[0-9A-Za-z._:-]{1,128}$", description = "Obligation id")),
    security(("bearer" = [])),
    responses((status = 204, description = "Closed"), (status = 404, description = "No such obligation", body = ErrorResponse)))]
pub(crate) async fn close_obligation(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    SubjectItemPath(subject, obligation): SubjectItemPath,
) -> Result<StatusCode, ApiError> {
    state
        .engine()
        .close_obligation(&actor, subject, &obligation)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The destruction certificate of a request, with its confirmation by the
/// audit log: JSON as issued, or a page to read and print in ru/kk/en.
#[utoipa::path(get, path = "/api/v1/requests/{id}/certificate", tag = "requests",
    params(("id" = String, Path, pattern = "^[0-9A-Za-z._:-]{1,128}$", description = "Request id"), crate::routes::PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The certificate (JSON, or HTML with `format=html`)", body = derbes_engine::CertificateView,
            content((derbes_engine::CertificateView = "application/json"), (String = "text/html"))),
        (status = 404, description = "No certificate (yet)", body = ErrorResponse)))]
pub(crate) async fn certificate(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    IdPath(id): IdPath,
    Params(q): Params<crate::routes::PageQuery>,
) -> Result<axum::response::Response, ApiError> {
    let page = q.checked()?;
    let engine = state.engine();
    let c = engine.certificate(&actor, &id).await?;
    Ok(page.respond(c, |c, lang| engine.certificate_document(c, lang).html()))
}

/// The answer to a verified `access` request (a copy of everything held,
/// every value decrypted) or `information` request (the same without
/// values): decided by the decision point and audited before anything is
/// opened. Never cached.
#[utoipa::path(get, path = "/api/v1/requests/{id}/export", tag = "requests",
    params(("id" = String, Path, pattern = "^[0-9A-Za-z._:-]{1,128}$", description = "Request id"), crate::routes::PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The export (JSON, or HTML with `format=html`)", body = derbes_engine::SubjectExport),
        (status = 403, description = "`forbidden`, or `denied` by the decision point (need-to-know)", body = ErrorResponse),
        (status = 404, description = "No such request", body = ErrorResponse),
        (status = 410, description = "The subject's data has been destroyed", body = ErrorResponse),
        (status = 422, description = "`not_an_access_request`, `identity_not_verified`, `no_subject`; bad `format` or `lang`", body = ErrorResponse)))]
pub(crate) async fn export(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    IdPath(id): IdPath,
    Params(q): Params<crate::routes::PageQuery>,
) -> Result<axum::response::Response, ApiError> {
    let page = q.checked()?;
    let export = state.engine().export(&actor, &id).await?;
    // No-store, nosniff and the page's CSP: `headers::security_headers`.
    Ok(page.respond(export, derbes_engine::export_html))
}

/// Clause 7.7: report that the subject is under 18, with the minor's own
/// IIN (and, if given, a birth date that must agree with it). Processing
/// stops at once; the report is a destruction request that an approver who
/// did not file it verifies — then the IIN is barred until the 18th birthday
/// and the subject destroyed within the deadline — or refuses.
#[utoipa::path(post, path = "/api/v1/subjects/{id}/minor", tag = "requests",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "Subject id")), request_body = derbes_engine::MinorReport,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Reported: processing stopped; the request awaits an approver", body = RequestView),
        (status = 404, description = "No such subject", body = ErrorResponse),
        (status = 410, description = "The subject was destroyed", body = ErrorResponse),
        (status = 422, description = "`invalid_iin`, `birth_date_mismatch`, `born_in_future`, `not_a_minor`", body = ErrorResponse)))]
pub(crate) async fn minor(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    SubjectPath(subject): SubjectPath,
    JsonBody(body): JsonBody<derbes_engine::MinorReport>,
) -> Result<Json<RequestView>, ApiError> {
    Ok(Json(
        state.engine().report_minor(&actor, subject, &body).await?,
    ))
}
