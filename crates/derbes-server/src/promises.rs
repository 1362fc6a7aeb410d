//! Collection of technical data for a purpose, representatives acting for
//! subjects, and the re-consent list (7.6).

use std::collections::BTreeMap;

use crate::query::Params;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Extension;
use axum::Json;
use derbes_engine::{Actor, Collected, NewRepresentative, ReconsentPage, RepresentativeView};
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::body::JsonBody;
use crate::path::{SubjectItemPath, SubjectPath};
use crate::subjects::subject_id;
use crate::{ApiError, AppState, ErrorResponse};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectionBody {
    /// The purpose the data is collected for (decided as `collection`).
    pub purpose: String,
    /// Technical fields, `category.field` → value (device, location, network, cookies, ...).
    #[schema(value_type = Object)]
    pub fields: BTreeMap<String, Value>,
    /// A source id of the policy (5.1); `device` is usual.
    pub source: Option<String>,
}

/// Collect technical data for a purpose: the decision point decides the
/// operation `collection` (purpose, need-to-know, the cookie consent for
/// cookies and device identifiers, blocking) and the decision is audited
/// before anything is stored.
#[utoipa::path(post, path = "/api/v1/subjects/{id}/collections", tag = "subjects",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "Subject id")), request_body = CollectionBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Collected", body = Collected),
        (status = 403, description = "Denied by the decision point (every reason listed)", body = ErrorResponse),
        (status = 404, description = "No such subject", body = ErrorResponse),
        (status = 422, description = "`not_technical`, `consent_required`, an invalid value", body = ErrorResponse)))]
pub(crate) async fn collect(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    SubjectPath(subject): SubjectPath,
    JsonBody(body): JsonBody<CollectionBody>,
) -> Result<(StatusCode, Json<Collected>), ApiError> {
    let done = state
        .engine()
        .collect(
            &actor,
            subject,
            &body.purpose,
            &body.fields,
            body.source.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(done)))
}

/// Record a legal representative or attorney who acts for the subject
/// (clause 1), with the document giving the authority and its validity. A
/// request with `requester: legal_representative` names one.
#[utoipa::path(post, path = "/api/v1/subjects/{id}/representatives", tag = "requests",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "Subject id")), request_body = NewRepresentative,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Recorded", body = RepresentativeView),
        (status = 404, description = "No such subject", body = ErrorResponse),
        (status = 422, description = "Refused", body = ErrorResponse)))]
pub(crate) async fn add_representative(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    SubjectPath(subject): SubjectPath,
    JsonBody(body): JsonBody<NewRepresentative>,
) -> Result<(StatusCode, Json<RepresentativeView>), ApiError> {
    let r = state
        .engine()
        .add_representative(&actor, subject, &body)
        .await?;
    Ok((StatusCode::CREATED, Json(r)))
}

/// A subject's representatives.
#[utoipa::path(get, path = "/api/v1/subjects/{id}/representatives", tag = "requests",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "Subject id")),
    security(("bearer" = [])),
    responses((status = 200, description = "Representatives", body = [RepresentativeView])))]
pub(crate) async fn representatives(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    SubjectPath(subject): SubjectPath,
) -> Result<Json<Vec<RepresentativeView>>, ApiError> {
    Ok(Json(state.engine().representatives(&actor, subject).await?))
}

/// End a representative's authority.
#[utoipa::path(delete, path = "/api/v1/subjects/{id}/representatives/{representative_id}", tag = "requests",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "Subject id"),
           ("representative_id" = String, Path, pattern = "^[0-9A-Za-z._:-]{1,128}$", description = "Representative id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Ended"),
        (status = 404, description = "No such representative with a valid authority", body = ErrorResponse)))]
pub(crate) async fn revoke_representative(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    SubjectItemPath(subject, rid): SubjectItemPath,
) -> Result<StatusCode, ApiError> {
    state
        .engine()
        .revoke_representative(&actor, subject, &rid)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReconsentQuery {
    /// The `next_after` of the previous page.
    #[param(
        pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub after: Option<String>,
    /// At most this many subjects (1-1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// Who must consent again, and for what (7.6): active subjects whose
/// policy acceptance was given to an earlier version that did not include
/// something the version in force adds. Until they do, the decision point
/// denies what is new (`consent_outdated`).
#[utoipa::path(get, path = "/api/v1/reconsent", tag = "consents", params(ReconsentQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "A page of the list", body = ReconsentPage)))]
pub(crate) async fn reconsent(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Params(q): Params<ReconsentQuery>,
) -> Result<Json<ReconsentPage>, ApiError> {
    let after = q.after.as_deref().map(subject_id).transpose()?;
    Ok(Json(
        state
            .engine()
            .reconsent(&actor, after, q.limit.unwrap_or(100))
            .await?,
    ))
}
