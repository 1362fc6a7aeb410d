//! The data subject's own door over HTTP. The app's backend
//! (`in_app_requests`) opens a session for its signed-in user at
//! `POST /api/v1/subjects/{id}/sessions`; `/api/v1/me/...` then answers that
//! session's bearer, about that one subject — no route here names a subject.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use axum::{Extension, Json};
use derbes_engine::{
    Actor, ChannelView, MeView, MyRequest, RequestView, SessionView, SubjectExport, SubjectSession,
};
use derbes_policy::Right;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::body::JsonBody;
use crate::path::{ChannelPath, IdPath, SubjectItemPath, SubjectPath};
use crate::query::Params;
use crate::{ApiError, AppState, ErrorResponse};

/// `/api/v1/me`: a live subject session, or 401 (failed attempts counted
/// per client address, as for staff tokens); each session's calls limited
/// per minute (429 after, audited).
pub(crate) async fn require_session(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let address = crate::auth::client(&request);
    crate::auth::before_sign_in(&state, &address).await?;
    let session = match crate::auth::bearer(&request) {
        Some(t) => state.engine().subject_session(&t).await?,
        None => None,
    };
    let Some(session) = session else {
        return Err(crate::auth::failed_sign_in(&state, &address, ApiError::no_session()).await);
    };
    let scope = crate::throttle::Scope::Session(session.session_id().to_string());
    crate::throttle::guard(
        &state,
        None,
        crate::throttle::Limit::SessionCall,
        &[scope],
        true,
    )
    .await?;
    request.extensions_mut().insert(session);
    Ok(next.run(request).await)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenSessionBody {
    /// How long the session lasts: 1 to 60 minutes (15 by default).
    #[schema(minimum = 1, maximum = 60)]
    pub minutes: Option<u32>,
}

/// A new session and its token (shown once; kept as SHA-256 only).
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenedSession {
    pub session: SessionView,
    /// `dbm_…`: the bearer for `/api/v1/me` and the `/me` page, for this
    /// subject only. Hand it to the app's web view, never to anyone else.
    pub token: String,
}

/// Open a session for the app's signed-in user (`in_app_requests`: the
/// app's backend, which has signed them in). The token reaches that one
/// subject's own door, for minutes; it can be revoked; opening it is audited.
#[utoipa::path(post, path = "/api/v1/subjects/{id}/sessions", tag = "me",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "Subject id")),
    request_body = OpenSessionBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Opened", body = OpenedSession),
        (status = 403, description = "`forbidden` (in_app_requests)", body = ErrorResponse),
        (status = 404, description = "No such subject", body = ErrorResponse),
        (status = 410, description = "The subject was destroyed", body = ErrorResponse),
        (status = 422, description = "`out_of_range` minutes", body = ErrorResponse)))]
pub(crate) async fn open_session(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    SubjectPath(id): SubjectPath,
    JsonBody(body): JsonBody<OpenSessionBody>,
) -> Result<(StatusCode, Json<OpenedSession>), ApiError> {
    let (session, token) = state
        .engine()
        .open_session(&actor, id, body.minutes)
        .await?;
    Ok((StatusCode::CREATED, Json(OpenedSession { session, token })))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    /// `false` when it had ended already.
    pub revoked_now: bool,
}

/// End a subject's session (the app signs its user out).
#[utoipa::path(delete, path = "/api/v1/subjects/{id}/sessions/{session_id}", tag = "me",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "Subject id"),
           ("session_id" = String, Path, pattern = "^[0-9A-Za-z._:-]{1,128}$", description = "Session id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Ended", body = Revoked),
        (status = 403, description = "`forbidden` (in_app_requests)", body = ErrorResponse),
        (status = 404, description = "No such session of this subject", body = ErrorResponse)))]
pub(crate) async fn revoke_session(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    SubjectItemPath(id, session): SubjectItemPath,
) -> Result<Json<Revoked>, ApiError> {
    let revoked_now = state.engine().revoke_session(&actor, id, &session).await?;
    Ok(Json(Revoked { revoked_now }))
}

/// My page: where I stand, the categories held (names, not values), my
/// consents and channels, my requests with their due dates, and who
/// received my data.
#[utoipa::path(get, path = "/api/v1/me", tag = "me",
    security(("subject" = [])),
    responses((status = 200, description = "The session's subject", body = MeView)))]
pub(crate) async fn me(
    State(state): State<AppState>,
    Extension(session): Extension<SubjectSession>,
) -> Result<Json<MeView>, ApiError> {
    Ok(Json(state.engine().me(&session).await?))
}

/// Sign out: the session ends now.
#[utoipa::path(delete, path = "/api/v1/me/session", tag = "me",
    security(("subject" = [])),
    responses((status = 204, description = "Signed out")))]
pub(crate) async fn sign_out(
    State(state): State<AppState>,
    Extension(session): Extension<SubjectSession>,
) -> Result<StatusCode, ApiError> {
    state.engine().end_my_session(&session).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CopyBody {
    /// `access` (a copy of my data, with values) or `information` (what is
    /// done with it: purposes, sources, recipients, retention).
    pub kind: Right,
}

/// A copy of my data, or what is done with it (7.11): an in-app request,
/// verified by the session, answered through the decision point at once
/// and completed; as JSON, or a printable page.
#[utoipa::path(post, path = "/api/v1/me/copy", tag = "me", params(crate::routes::PageQuery), request_body = CopyBody,
    security(("subject" = [])),
    responses(
        (status = 200, description = "The answer", body = SubjectExport,
            content((SubjectExport = "application/json"), (String = "text/html"))),
        (status = 422, description = "`invalid_kind`", body = ErrorResponse)))]
pub(crate) async fn copy(
    State(state): State<AppState>,
    Extension(session): Extension<SubjectSession>,
    Params(q): Params<crate::routes::PageQuery>,
    JsonBody(body): JsonBody<CopyBody>,
) -> Result<Response, ApiError> {
    let page = q.checked()?;
    let export = state.engine().my_copy(&session, body.kind).await?;
    Ok(page.respond(export, derbes_engine::export_html))
}

/// My requests, newest first, with their due dates.
#[utoipa::path(get, path = "/api/v1/me/requests", tag = "me",
    security(("subject" = [])),
    responses((status = 200, description = "My requests", body = [RequestView])))]
pub(crate) async fn requests(
    State(state): State<AppState>,
    Extension(session): Extension<SubjectSession>,
) -> Result<Json<Vec<RequestView>>, ApiError> {
    Ok(Json(state.engine().my_requests(&session).await?))
}

/// File a request of my own (7.11): rectification with the corrected
/// values, blocking, unblocking, objection per channel, withdrawal of
/// consent, destruction, a complaint. It is received in the app, verified
/// by the session and worked at once where derbes works it.
#[utoipa::path(post, path = "/api/v1/me/requests", tag = "me", request_body = MyRequest,
    security(("subject" = [])),
    responses(
        (status = 201, description = "Received (and, where derbes works it, worked)", body = RequestView),
        (status = 422, description = "`copy_at_once` (access and information: POST /api/v1/me/copy), invalid details or values", body = ErrorResponse)))]
pub(crate) async fn file(
    State(state): State<AppState>,
    Extension(session): Extension<SubjectSession>,
    JsonBody(body): JsonBody<MyRequest>,
) -> Result<(StatusCode, Json<RequestView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(state.engine().file_my_request(&session, &body).await?),
    ))
}

/// One of my requests with its steps; another's is not found.
#[utoipa::path(get, path = "/api/v1/me/requests/{id}", tag = "me",
    params(("id" = String, Path, pattern = "^[0-9A-Za-z._:-]{1,128}$", description = "Request id")),
    security(("subject" = [])),
    responses(
        (status = 200, description = "The request", body = RequestView),
        (status = 404, description = "No such request of mine", body = ErrorResponse)))]
pub(crate) async fn request(
    State(state): State<AppState>,
    Extension(session): Extension<SubjectSession>,
    IdPath(id): IdPath,
) -> Result<Json<RequestView>, ApiError> {
    Ok(Json(state.engine().my_request(&session, &id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelBody {
    /// Advertising on this channel: on (a consent given in the app) or off
    /// (withdrawn at once).
    pub marketing: bool,
}

/// Turn advertising on one channel on or off.
#[utoipa::path(put, path = "/api/v1/me/channels/{channel}", tag = "me",
    params(("channel" = String, Path, pattern = "^(sms|whatsapp|telegram|push|email|phone_call)$", description = "The channel")),
    request_body = ChannelBody,
    security(("subject" = [])),
    responses((status = 200, description = "The channel now", body = ChannelView)))]
pub(crate) async fn channel(
    State(state): State<AppState>,
    Extension(session): Extension<SubjectSession>,
    ChannelPath(channel): ChannelPath,
    JsonBody(body): JsonBody<ChannelBody>,
) -> Result<Json<ChannelView>, ApiError> {
    Ok(Json(
        state
            .engine()
            .set_my_channel(&session, channel, body.marketing)
            .await?,
    ))
}
