//! Retention over HTTP: the end of a relationship, legal holds, what the
//! purge would destroy, destroyed subjects' certificates, and rectification
//! worked through a request.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use derbes_engine::{Actor, CertificateView, HoldView, NewHold, PurgeReport, RequestView};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::body::JsonBody;
use crate::path::{IdPath, SubjectItemPath, SubjectPath};
use crate::{ApiError, AppState, ErrorResponse};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RelationshipEndBody {
    /// When it ended (RFC 3339); now when absent.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub at: Option<chrono::DateTime<chrono::FixedOffset>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RelationshipEnded {
    /// The first end recorded stands.
    pub ended_at: chrono::DateTime<chrono::Utc>,
}

/// The relationship with a subject ended (account closed, contract over):
/// the retention periods that run from the end start.
#[utoipa::path(post, path = "/api/v1/subjects/{id}/relationship-end", tag = "retention",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "Subject id")), request_body = RelationshipEndBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Recorded", body = RelationshipEnded),
        (status = 404, description = "No such subject", body = ErrorResponse),
        (status = 410, description = "Destroyed", body = ErrorResponse),
        (status = 422, description = "`in_future`", body = ErrorResponse)))]
pub(crate) async fn end_relationship(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    SubjectPath(subject): SubjectPath,
    JsonBody(body): JsonBody<RelationshipEndBody>,
) -> Result<Json<RelationshipEnded>, ApiError> {
    let at = body.at.map(|t| t.with_timezone(&chrono::Utc));
    Ok(Json(RelationshipEnded {
        ended_at: state.engine().end_relationship(&actor, subject, at).await?,
    }))
}

/// Place a legal hold: the retention purge leaves the subject's data alone until it is released.
#[utoipa::path(post, path = "/api/v1/subjects/{id}/legal-holds", tag = "retention",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "Subject id")), request_body = NewHold,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Placed", body = HoldView),
        (status = 404, description = "No such subject", body = ErrorResponse),
        (status = 422, description = "`invalid_reason`, `invalid_reference`", body = ErrorResponse)))]
pub(crate) async fn place_hold(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    SubjectPath(subject): SubjectPath,
    JsonBody(body): JsonBody<NewHold>,
) -> Result<(StatusCode, Json<HoldView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(state.engine().place_hold(&actor, subject, &body).await?),
    ))
}

/// A subject's legal holds, open and released.
#[utoipa::path(get, path = "/api/v1/subjects/{id}/legal-holds", tag = "retention",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "Subject id")),
    security(("bearer" = [])),
    responses((status = 200, description = "Holds", body = [HoldView])))]
pub(crate) async fn holds(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    SubjectPath(subject): SubjectPath,
) -> Result<Json<Vec<HoldView>>, ApiError> {
    Ok(Json(state.engine().holds(&actor, subject).await?))
}

/// Release a legal hold; what became due meanwhile goes at the next purge.
#[utoipa::path(delete, path = "/api/v1/subjects/{id}/legal-holds/{hold_id}", tag = "retention",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "Subject id"), ("hold_id" = String, Path, pattern = "^[0-9A-Za-z._:-]{1,128}$", description = "Hold id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Released"),
        (status = 404, description = "No such open hold", body = ErrorResponse)))]
pub(crate) async fn release_hold(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    SubjectItemPath(subject, hold): SubjectItemPath,
) -> Result<StatusCode, ApiError> {
    state.engine().release_hold(&actor, subject, &hold).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What the retention purge would destroy now, and why (a dry run: nothing
/// changes). The purge itself is run by derbes' scheduler and `derbes purge`.
#[utoipa::path(get, path = "/api/v1/retention/due", tag = "retention",
    security(("bearer" = [])),
    responses((status = 200, description = "What is due", body = PurgeReport)))]
pub(crate) async fn due(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<PurgeReport>, ApiError> {
    Ok(Json(state.engine().purge(&actor, true, &|_| {}).await?))
}

/// The destruction certificate of a destroyed subject (on request, as a
/// minor, or at the end of retention), checked against the audit log.
#[utoipa::path(get, path = "/api/v1/subjects/{id}/certificate", tag = "retention",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "Subject id"), crate::routes::PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The certificate (JSON, or HTML with `format=html`)", body = CertificateView,
            content((CertificateView = "application/json"), (String = "text/html"))),
        (status = 404, description = "No certificate", body = ErrorResponse)))]
pub(crate) async fn certificate(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    SubjectPath(subject): SubjectPath,
    crate::query::Params(q): crate::query::Params<crate::routes::PageQuery>,
) -> Result<axum::response::Response, ApiError> {
    let page = q.checked()?;
    let engine = state.engine();
    let c = engine.subject_certificate(&actor, subject).await?;
    Ok(page.respond(c, |c, lang| engine.certificate_document(c, lang).html()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestRectificationBody {
    /// `category.field` → corrected value; empty or absent: the values the
    /// requester gave with the request.
    #[schema(value_type = Object)]
    #[serde(default)]
    pub fields: BTreeMap<String, Value>,
    /// Where the corrected values come from (a source id of the policy); default `subject`.
    pub source: Option<String>,
}

/// Work a verified rectification request: the values are corrected through
/// the vault with the request as their reason, and the request is completed.
#[utoipa::path(post, path = "/api/v1/requests/{id}/rectification", tag = "requests",
    params(("id" = String, Path, pattern = "^[0-9A-Za-z._:-]{1,128}$", description = "Request id")), request_body = RequestRectificationBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Corrected; the request is completed", body = RequestView),
        (status = 403, description = "`forbidden`, or `denied` (blocked or withdrawn data is not changed)", body = ErrorResponse),
        (status = 404, description = "No such request", body = ErrorResponse),
        (status = 409, description = "The new IIN or phone belongs to another subject", body = ErrorResponse),
        (status = 422, description = "`not_a_rectification_request`, `identity_not_verified`, invalid values", body = ErrorResponse)))]
pub(crate) async fn rectify(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody<RequestRectificationBody>,
) -> Result<Json<RequestView>, ApiError> {
    Ok(Json(
        state
            .engine()
            .rectify_for_request(&actor, &id, &body.fields, body.source.as_deref())
            .await?,
    ))
}
