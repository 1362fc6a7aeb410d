//! Connected systems and the outbox over HTTP: the administrator connects
//! systems; the officer watches, retries and confirms by hand; a system
//! confirms an event it has followed by signing it.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use derbes_engine::{Actor, ConnectedSystem, EventView, NewSystem, OutboxQuery, SystemView};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::body::JsonBody;
use crate::path::IdPath;
use crate::query::Params;
use crate::{ApiError, AppState, ErrorResponse};

/// Connect a system that must follow what derbes does; its signing secret
/// is in the answer, this once.
#[utoipa::path(post, path = "/api/v1/systems", tag = "outbox", request_body = NewSystem,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Connected", body = ConnectedSystem),
        (status = 403, description = "`forbidden` (manage_systems)", body = ErrorResponse),
        (status = 422, description = "`invalid_name`, `duplicate_system`, `unknown_category`, `invalid_webhook`, `invalid_subject`, `one_transport`", body = ErrorResponse)))]
pub(crate) async fn connect(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(body): JsonBody<NewSystem>,
) -> Result<(StatusCode, Json<ConnectedSystem>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(state.engine().connect_system(&actor, &body).await?),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SystemsQuery {
    /// Disconnected systems too.
    pub removed: Option<bool>,
}

/// The connected systems (never their secrets).
#[utoipa::path(get, path = "/api/v1/systems", tag = "outbox", params(SystemsQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "Systems", body = [SystemView]), (status = 403, description = "`forbidden`", body = ErrorResponse)))]
pub(crate) async fn systems(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Params(q): Params<SystemsQuery>,
) -> Result<Json<Vec<SystemView>>, ApiError> {
    Ok(Json(
        state
            .engine()
            .systems(&actor, q.removed.unwrap_or(false))
            .await?,
    ))
}

/// Disconnect a system: what it has not confirmed becomes dead, for the
/// officer to confirm by hand.
#[utoipa::path(delete, path = "/api/v1/systems/{id}", tag = "outbox",
    params(("id" = String, Path, pattern = "^[0-9A-Za-z._:-]{1,128}$", description = "The system's name")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Disconnected"),
        (status = 403, description = "`forbidden`", body = ErrorResponse),
        (status = 404, description = "No such connected system", body = ErrorResponse)))]
pub(crate) async fn disconnect(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    IdPath(name): IdPath,
) -> Result<StatusCode, ApiError> {
    state.engine().disconnect_system(&actor, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events in this state.
    #[param(pattern = "^(pending|delivered|confirmed|dead)$")]
    pub state: Option<String>,
    /// Only this system's.
    #[param(pattern = "^[a-z][a-z0-9_]{0,63}$")]
    pub system: Option<String>,
    /// Only this subject's.
    #[param(
        pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub subject_id: Option<String>,
    /// Only those this request waits for.
    #[param(pattern = "^[0-9A-Za-z._:-]{1,128}$")]
    pub request_id: Option<String>,
    /// At most this many (default 100).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<i64>,
}

/// The outbox, oldest first: what each connected system was told and where it is.
#[utoipa::path(get, path = "/api/v1/outbox", tag = "outbox", params(EventsQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "Events", body = [EventView]), (status = 403, description = "`forbidden`", body = ErrorResponse)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Params(q): Params<EventsQuery>,
) -> Result<Json<Vec<EventView>>, ApiError> {
    let subject_id = q
        .subject_id
        .as_deref()
        .map(derbes_core::SubjectId::parse)
        .transpose()
        .map_err(|_| ApiError::invalid("subject_id", "a subject id"))?;
    let query = OutboxQuery {
        state: q.state,
        system: q.system,
        subject_id,
        request_id: q.request_id,
        limit: q.limit,
    };
    Ok(Json(state.engine().outbox(&actor, &query).await?))
}

/// One event.
#[utoipa::path(get, path = "/api/v1/outbox/{id}", tag = "outbox",
    params(("id" = String, Path, pattern = "^[0-9A-Za-z._:-]{1,128}$", description = "Event id")),
    security(("bearer" = [])),
    responses((status = 200, description = "The event", body = EventView), (status = 404, description = "No such event", body = ErrorResponse)))]
pub(crate) async fn show(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    IdPath(id): IdPath,
) -> Result<Json<EventView>, ApiError> {
    Ok(Json(state.engine().outbox_event(&actor, &id).await?))
}

/// Try a dead event again.
#[utoipa::path(post, path = "/api/v1/outbox/{id}/retry", tag = "outbox",
    params(("id" = String, Path, pattern = "^[0-9A-Za-z._:-]{1,128}$", description = "Event id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Pending again", body = EventView),
        (status = 404, description = "No such event", body = ErrorResponse),
        (status = 422, description = "`not_dead`", body = ErrorResponse)))]
pub(crate) async fn retry(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    IdPath(id): IdPath,
) -> Result<Json<EventView>, ApiError> {
    Ok(Json(state.engine().retry_event(&actor, &id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualConfirmation {
    /// How the system's compliance was established (sealed; it may name people).
    pub reason: String,
}

/// The officer confirms by hand that a system followed an event (it cannot
/// be reached, or confirmed another way); a request waiting for it may then
/// complete.
#[utoipa::path(post, path = "/api/v1/outbox/{id}/manual-confirmation", tag = "outbox",
    params(("id" = String, Path, pattern = "^[0-9A-Za-z._:-]{1,128}$", description = "Event id")),
    request_body = ManualConfirmation,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Confirmed", body = EventView),
        (status = 403, description = "`forbidden` (approve_irreversible)", body = ErrorResponse),
        (status = 404, description = "No such event", body = ErrorResponse),
        (status = 422, description = "`reason_required`", body = ErrorResponse)))]
pub(crate) async fn confirm_manually(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody<ManualConfirmation>,
) -> Result<Json<EventView>, ApiError> {
    Ok(Json(
        state
            .engine()
            .confirm_event_manually(&actor, &id, &body.reason)
            .await?,
    ))
}

/// A connected system confirms it has followed an event (for systems that
/// confirm by callback). No bearer token: the system signs
/// `confirm.<event id>` with its secret in `X-Derbes-Signature`
/// (`t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.confirm.<event id>")>`,
/// within 5 minutes of now).
#[utoipa::path(post, path = "/api/v1/outbox/{id}/confirm", tag = "outbox",
    params(("id" = String, Path, pattern = "^[0-9A-Za-z._:-]{1,128}$", description = "Event id"),
        ("X-Derbes-Signature" = String, Header, description = "t=<unix seconds>,v1=<hex HMAC-SHA256>")),
    responses(
        (status = 200, description = "Confirmed (or confirmed already)", body = EventView),
        (status = 401, description = "`unauthorized`: no signature", body = ErrorResponse),
        (status = 403, description = "`forbidden`: the signature does not match this event's system, or is stale", body = ErrorResponse)))]
pub(crate) async fn confirm(
    State(state): State<AppState>,
    IdPath(id): IdPath,
    headers: HeaderMap,
) -> Result<Json<EventView>, ApiError> {
    let signature = headers
        .get("x-derbes-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(ApiError::unauthorized)?;
    Ok(Json(
        state
            .engine()
            .confirm_event_by_system(&id, signature)
            .await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NoticesQuery {
    /// Only this subject's.
    #[param(
        pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub subject_id: Option<String>,
    /// Only those not sent yet.
    pub open: Option<bool>,
    /// Only unsent ones past their due date.
    pub overdue: Option<bool>,
    /// At most this many (default 100).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<i64>,
}

/// Notices to subjects (a transfer, art. 19), the earliest due first: sent
/// when the system that sends the app's notices confirms delivery.
#[utoipa::path(get, path = "/api/v1/notices", tag = "outbox", params(NoticesQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "Notices", body = [derbes_engine::NoticeView]), (status = 403, description = "`forbidden`", body = ErrorResponse)))]
pub(crate) async fn notices(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Params(q): Params<NoticesQuery>,
) -> Result<Json<Vec<derbes_engine::NoticeView>>, ApiError> {
    let subject = q
        .subject_id
        .as_deref()
        .map(derbes_core::SubjectId::parse)
        .transpose()
        .map_err(|_| ApiError::invalid("subject_id", "a subject id"))?;
    Ok(Json(
        state
            .engine()
            .notices(
                &actor,
                subject,
                q.open.unwrap_or(false),
                q.overdue.unwrap_or(false),
                q.limit.unwrap_or(100),
            )
            .await?,
    ))
}
