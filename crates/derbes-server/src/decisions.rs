//! The decision point, disclosures, the audit log and staff, over HTTP.

use crate::query::Params;
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use derbes_core::SubjectId;
use derbes_engine::AuditQuery;
use derbes_engine::{
    Actor, Audience, AudienceRequest, AuditView, DecisionOutcome, DecisionRequest,
    DisclosureRequest, DisclosureView, StaffView,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::body::JsonBody;
use crate::path::{IdPath, SubjectPath};
use crate::{ApiError, AppState, ErrorResponse};

/// Ask the decision point. The answer (permit or deny, with every reason) is
/// durably audited before it is returned.
#[utoipa::path(post, path = "/api/v1/decisions", tag = "decisions", request_body = DecisionRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The decision", body = DecisionOutcome),
        (status = 403, description = "The role may not ask (`forbidden`)", body = ErrorResponse),
        (status = 404, description = "No such subject", body = ErrorResponse)))]
pub(crate) async fn decide(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(req): JsonBody<DecisionRequest>,
) -> Result<Json<DecisionOutcome>, ApiError> {
    Ok(Json(state.engine().decide(&actor, &req).await?))
}

/// The largest audience body: 100,000 ids with room for the question.
pub(crate) const AUDIENCE_BODY_LIMIT: usize = 6 * 1024 * 1024;

/// Ask the decision point about many subjects at once (up to 100,000 ids,
/// or every active subject): each subject is decided by the same rules as a
/// single decision and audited as one `decision` record, the audience as one
/// `audience` record with the counts and the answered ids' digest. Every
/// record is durable before the answer starts; the permitted ids then
/// stream out in the order asked.
#[utoipa::path(post, path = "/api/v1/audiences", tag = "decisions", request_body = AudienceRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The permitted subjects and the counts", body = Audience),
        (status = 403, description = "The role may not ask (`forbidden`)", body = ErrorResponse),
        (status = 413, description = "Over 6 MiB (`body_too_large`)", body = ErrorResponse),
        (status = 422, description = "Neither or both of `subject_ids` and `every_active_subject`, or over 100,000 ids", body = ErrorResponse)))]
pub(crate) async fn audience(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(req): JsonBody<AudienceRequest>,
) -> Result<axum::response::Response, ApiError> {
    let answer = state.engine().audience(&actor, &req).await?;
    Ok(stream_audience(answer))
}

/// The answer as JSON, the counts first and the ids in chunks, so a large
/// audience is never one string in memory.
fn stream_audience(mut answer: Audience) -> axum::response::Response {
    use axum::response::IntoResponse;
    let ids = std::mem::take(&mut answer.subject_ids);
    // The counts, as the schema has them, and the start of the id list.
    let mut head = serde_json::to_string(&answer).unwrap_or_else(|_| "{}".into());
    if head.ends_with("[]}") {
        head.truncate(head.len() - 2);
    }
    const CHUNK: usize = 4096;
    let chunks = ids.len().div_ceil(CHUNK);
    let id_chunks = (0..chunks).map(move |i| {
        let chunk = &ids[i * CHUNK..((i + 1) * CHUNK).min(ids.len())];
        let mut s = String::with_capacity(chunk.len() * 39);
        for (j, id) in chunk.iter().enumerate() {
            if i > 0 || j > 0 {
                s.push(',');
            }
            s.push('"');
            s.push_str(&id.to_string());
            s.push('"');
        }
        s
    });
    let body = std::iter::once(head)
        .chain(id_chunks)
        .chain(std::iter::once("]}".to_string()))
        .map(|s| Ok::<_, std::convert::Infallible>(axum::body::Bytes::from(s)));
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        axum::body::Body::from_stream(futures_util::stream::iter(body)),
    )
        .into_response()
}

/// Disclose data to a recipient of the policy: decided, audited, recorded.
#[utoipa::path(post, path = "/api/v1/disclosures", tag = "decisions", request_body = DisclosureRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Recorded in the subject's disclosure ledger", body = DisclosureView),
        (status = 403, description = "`forbidden` or `denied` (every reason in details)", body = ErrorResponse),
        (status = 404, description = "No such subject", body = ErrorResponse),
        (status = 422, description = "`unknown_recipient`", body = ErrorResponse)))]
pub(crate) async fn disclose(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(req): JsonBody<DisclosureRequest>,
) -> Result<(StatusCode, Json<DisclosureView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(state.engine().disclose(&actor, &req).await?),
    ))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DisclosureList {
    pub subject_id: SubjectId,
    pub disclosures: Vec<DisclosureView>,
}

/// Who received what of the subject's data, when and why.
#[utoipa::path(get, path = "/api/v1/subjects/{id}/disclosures", tag = "decisions",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "Subject id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The disclosures", body = DisclosureList),
        (status = 404, description = "No such subject", body = ErrorResponse)))]
pub(crate) async fn disclosures(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    SubjectPath(subject): SubjectPath,
) -> Result<Json<DisclosureList>, ApiError> {
    let disclosures = state.engine().disclosures(&actor, subject).await?;
    Ok(Json(DisclosureList {
        subject_id: subject,
        disclosures,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only records about this subject, with their decisions in an
    /// audience's group records (`decisions`) each as a `decision` record
    /// of its own, carrying the group record's `seq` and `hash`.
    #[param(
        pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub subject_id: Option<String>,
    /// A staff token id, or `system:<job>`.
    pub actor: Option<String>,
    /// RFC 3339; records at or after.
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// RFC 3339; records before.
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// Records after this sequence number (paging: pass the last `seq` seen).
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// At most this many records (default 100, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub records: Vec<AuditView>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<i64>,
}

fn time_param(
    name: &str,
    v: &Option<String>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    v.as_deref()
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.to_utc())
                .map_err(|_| {
                    ApiError::invalid(name, "an RFC 3339 time, e.g. 2026-11-24T10:00:00+05:00")
                })
        })
        .transpose()
}

/// The audit log, paged (`read_audit`). Reading it is itself audited.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Records in sequence order", body = AuditPage),
        (status = 403, description = "`forbidden`", body = ErrorResponse)))]
pub(crate) async fn audit(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Params(p): Params<AuditParams>,
) -> Result<Json<AuditPage>, ApiError> {
    let limit = p.limit.unwrap_or(100);
    let q = AuditQuery {
        subject_id: p
            .subject_id
            .as_deref()
            .map(derbes_core::SubjectId::parse)
            .transpose()
            .map_err(|_| ApiError::invalid("subject_id", "a subject id (a UUID)"))?,
        actor: p.actor,
        from: time_param("from", &p.from)?,
        to: time_param("to", &p.to)?,
        after: p.after.unwrap_or(0),
        limit,
    };
    let records = state.engine().audit_records(&actor, &q).await?;
    let next_after = if records.len() as i64 == limit {
        records.last().map(|r| r.seq)
    } else {
        None
    };
    Ok(Json(AuditPage {
        records,
        next_after,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStaff {
    pub name: String,
    /// A role of the policy.
    pub role: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StaffCreated {
    pub token_id: String,
    pub name: String,
    pub role: String,
    /// The bearer token. Shown only now; derbes keeps its hash.
    pub token: String,
}

/// Add a staff member (`manage_staff`); the token is returned once.
#[utoipa::path(post, path = "/api/v1/staff", tag = "staff", request_body = NewStaff,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = StaffCreated),
        (status = 403, description = "`forbidden`", body = ErrorResponse),
        (status = 422, description = "`unknown_role`, `invalid_name`", body = ErrorResponse)))]
pub(crate) async fn add_staff(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(body): JsonBody<NewStaff>,
) -> Result<(StatusCode, Json<StaffCreated>), ApiError> {
    let (staff, token) = state
        .engine()
        .create_token(&actor, &body.name, &body.role)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(StaffCreated {
            token_id: staff.token_id,
            name: staff.name,
            role: staff.role,
            token,
        }),
    ))
}

/// Every staff token, without secrets (`manage_staff`).
#[utoipa::path(get, path = "/api/v1/staff", tag = "staff",
    security(("bearer" = [])),
    responses((status = 200, description = "Staff", body = [StaffView]), (status = 403, description = "`forbidden`", body = ErrorResponse)))]
pub(crate) async fn list_staff(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<Vec<StaffView>>, ApiError> {
    Ok(Json(state.engine().staff(&actor).await?))
}

/// Revoke a staff token (`manage_staff`).
#[utoipa::path(delete, path = "/api/v1/staff/{token_id}", tag = "staff",
    params(("token_id" = String, Path, pattern = "^[0-9A-Za-z._:-]{1,128}$", description = "Token id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "`forbidden`", body = ErrorResponse),
        (status = 404, description = "No such token", body = ErrorResponse),
        (status = 422, description = "`last_administrator`: the last token that can manage staff stays", body = ErrorResponse)))]
pub(crate) async fn revoke_staff(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    IdPath(token_id): IdPath,
) -> Result<StatusCode, ApiError> {
    state.engine().revoke_token(&actor, &token_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who holds this token: name, role and the role's capabilities.
#[utoipa::path(get, path = "/api/v1/whoami", tag = "staff",
    security(("bearer" = [])),
    responses((status = 200, description = "The token's holder", body = derbes_engine::Whoami)))]
pub(crate) async fn whoami(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
) -> Result<Json<derbes_engine::Whoami>, ApiError> {
    Ok(Json(state.engine().whoami(&actor).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LangBody {
    /// `ru`, `kk` or `en`.
    #[schema(pattern = "^(ru|kk|en)$")]
    pub lang: String,
}

/// The language the token's holder wants their pages (the desk) in, kept
/// with their token so every browser they sign in from speaks it.
#[utoipa::path(put, path = "/api/v1/whoami/lang", tag = "staff", request_body = LangBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The token's holder, with the language kept", body = derbes_engine::Whoami),
        (status = 400, description = "`lang` is not `ru`, `kk` or `en`", body = ErrorResponse)))]
pub(crate) async fn set_lang(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(body): JsonBody<LangBody>,
) -> Result<Json<derbes_engine::Whoami>, ApiError> {
    let lang = crate::routes::lang(Some(&body.lang))?;
    Ok(Json(state.engine().set_my_lang(&actor, lang).await?))
}
