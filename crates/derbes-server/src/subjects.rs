//! Subjects, their data, consents and organisations.

use std::collections::BTreeMap;

use crate::query::Params;
use crate::throttle::{guard, ClientAddress, Limit, Scope};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Extension;
use axum::Json;
use derbes_core::{
    ConsentRequest, OrganizationId, Receipt, RegistrationRequest, SignedReceipt, SubjectId,
};
use derbes_engine::{Actor, ConsentView, FieldView, LookupKind, OrganizationRequest, ReceiptCheck};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::body::JsonBody;
use crate::path::{OrganizationPath, SubjectConsentPath, SubjectPath};
use crate::{ApiError, AppState, ErrorResponse};

pub(crate) fn subject_id(s: &str) -> Result<SubjectId, ApiError> {
    SubjectId::parse(s).map_err(|e| ApiError::invalid("subject_id", e.to_string()))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RegisteredResponse {
    pub subject_id: SubjectId,
    /// The receipt of the policy acceptance, for the user to keep.
    pub consent_receipt: Option<SignedReceipt>,
    /// Receipts of every consent given with the registration.
    pub consent_receipts: Vec<SignedReceipt>,
}

/// Register a user: the registration form's fields (clause 7.10) and the
/// consents given with it. One transaction: nothing is stored on refusal.
#[utoipa::path(post, path = "/api/v1/subjects", tag = "subjects", request_body = RegistrationRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Registered", body = RegisteredResponse),
        (status = 400, description = "Malformed JSON", body = ErrorResponse),
        (status = 401, description = "No valid token", body = ErrorResponse),
        (status = 409, description = "`duplicate_subject`: IIN or phone already registered", body = ErrorResponse),
        (status = 422, description = "Refused: `invalid_iin`, `under_age`, `missing_field`, `not_citizen`, ...", body = ErrorResponse)))]
pub(crate) async fn register(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(req): JsonBody<RegistrationRequest>,
) -> Result<(StatusCode, Json<RegisteredResponse>), ApiError> {
    let r = state.engine().register(&actor, &req).await?;
    let policy_receipt = r
        .consent_receipts
        .iter()
        .find(|c| c.receipt.kind == derbes_policy::ConsentKind::Policy)
        .cloned();
    Ok((
        StatusCode::CREATED,
        Json(RegisteredResponse {
            subject_id: r.subject_id,
            consent_receipt: policy_receipt,
            consent_receipts: r.consent_receipts,
        }),
    ))
}

#[derive(Debug, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LookupQuery {
    /// IIN (12 digits).
    pub iin: Option<String>,
    /// Kazakhstan phone number in any common form.
    pub phone: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LookupResponse {
    pub subject_id: SubjectId,
}

async fn lookup_by(
    state: &AppState,
    actor: &Actor,
    ClientAddress(address): ClientAddress,
    q: LookupQuery,
) -> Result<Json<LookupResponse>, ApiError> {
    // Guessing and enumeration: limited per token and per client address.
    let scopes: Vec<Scope> = std::iter::once(Scope::Token(actor.id().to_string()))
        .chain(address.map(Scope::Address))
        .collect();
    guard(state, Some(actor), Limit::Lookup, &scopes, true).await?;
    let (kind, value) = match (q.iin, q.phone) {
        (Some(i), None) => (LookupKind::Iin, i),
        (None, Some(p)) => (LookupKind::Phone, p),
        // Well-formed, but a lookup is by one identifier.
        _ => {
            return Err(ApiError::unprocessable(
                "iin",
                "one_identifier",
                "give exactly one of `iin` or `phone`",
            ))
        }
    };
    match state.engine().lookup(actor, kind, &value).await? {
        Some(subject_id) => Ok(Json(LookupResponse { subject_id })),
        None => Err(ApiError::not_found("subject")),
    }
}

/// Find a subject by IIN or phone through the blind index. Prefer the POST
/// form: a query string is part of the URL, which proxies may log.
#[utoipa::path(get, path = "/api/v1/subjects/lookup", tag = "subjects", params(LookupQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Found", body = LookupResponse),
        (status = 404, description = "No such subject", body = ErrorResponse),
        (status = 422, description = "Not a valid IIN or phone", body = ErrorResponse)))]
pub(crate) async fn lookup_get(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    address: ClientAddress,
    Params(q): Params<LookupQuery>,
) -> Result<Json<LookupResponse>, ApiError> {
    lookup_by(&state, &actor, address, q).await
}

/// Find a subject by IIN or phone (identifier in the body, not the URL).
#[utoipa::path(post, path = "/api/v1/subjects/lookup", tag = "subjects", request_body = LookupQuery,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Found", body = LookupResponse),
        (status = 404, description = "No such subject", body = ErrorResponse),
        (status = 422, description = "Not a valid IIN or phone", body = ErrorResponse)))]
pub(crate) async fn lookup_post(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    address: ClientAddress,
    JsonBody(q): JsonBody<LookupQuery>,
) -> Result<Json<LookupResponse>, ApiError> {
    lookup_by(&state, &actor, address, q).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DataQuery {
    /// The purpose of the use (a purpose id of the policy).
    pub purpose: String,
    /// For communications: the channel the data is used on.
    #[param(inline)]
    pub channel: Option<derbes_policy::Channel>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DataResponse {
    pub subject_id: SubjectId,
    pub purpose: String,
    /// The fields of the categories the decision permitted, decrypted.
    pub fields: Vec<FieldView>,
    /// The categories the decision permitted (the actor's need-to-know for the purpose).
    pub categories: Vec<String>,
    /// The audit record of the decision.
    pub audit_id: i64,
}

/// The subject's fields that `purpose` may use, decrypted.
#[utoipa::path(get, path = "/api/v1/subjects/{id}/data", tag = "subjects",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "Subject id"), DataQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The permitted fields", body = DataResponse),
        (status = 404, description = "No such subject", body = ErrorResponse),
        (status = 403, description = "`forbidden` (role) or `denied` by the decision point, every reason in details", body = ErrorResponse),
        (status = 422, description = "`unknown_purpose`", body = ErrorResponse)))]
pub(crate) async fn data(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    SubjectPath(subject): SubjectPath,
    Params(q): Params<DataQuery>,
) -> Result<Json<DataResponse>, ApiError> {
    let (purpose, channel) = (q.purpose, q.channel);
    let read = state
        .engine()
        .data_for_purpose(&actor, subject, &purpose, channel)
        .await?;
    Ok(Json(DataResponse {
        subject_id: subject,
        purpose,
        fields: read.fields,
        categories: read.categories,
        audit_id: read.audit_id,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RectificationBody {
    /// `category.field` → new value.
    pub fields: BTreeMap<String, Value>,
    /// Where the new values come from (a source id of the policy); default `subject`.
    pub source: Option<String>,
    /// Why the data is corrected (kept sealed with the previous value).
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RectificationResponse {
    pub updated: Vec<String>,
}

/// Rectification (clauses 4.1, 7.11): new values with source and reason.
#[utoipa::path(patch, path = "/api/v1/subjects/{id}/data", tag = "subjects",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "Subject id")), request_body = RectificationBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Corrected", body = RectificationResponse),
        (status = 404, description = "No such subject", body = ErrorResponse),
        (status = 409, description = "The new IIN or phone belongs to another subject", body = ErrorResponse),
        (status = 422, description = "Refused", body = ErrorResponse)))]
pub(crate) async fn rectify(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    SubjectPath(subject): SubjectPath,
    JsonBody(body): JsonBody<RectificationBody>,
) -> Result<Json<RectificationResponse>, ApiError> {
    let updated = state
        .engine()
        .rectify(
            &actor,
            subject,
            &body.fields,
            body.source.as_deref(),
            &body.reason,
        )
        .await?;
    Ok(Json(RectificationResponse { updated }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentCreated {
    pub receipt: SignedReceipt,
}

/// Record a consent (policy, marketing per channel, cookies, entrepreneur).
#[utoipa::path(post, path = "/api/v1/subjects/{id}/consents", tag = "consents",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "Subject id")), request_body = ConsentRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Recorded; the receipt to keep", body = ConsentCreated),
        (status = 404, description = "No such subject", body = ErrorResponse),
        (status = 422, description = "Refused", body = ErrorResponse)))]
pub(crate) async fn add_consent(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    SubjectPath(subject): SubjectPath,
    JsonBody(req): JsonBody<ConsentRequest>,
) -> Result<(StatusCode, Json<ConsentCreated>), ApiError> {
    let receipt = state.engine().add_consent(&actor, subject, &req).await?;
    Ok((StatusCode::CREATED, Json(ConsentCreated { receipt })))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentList {
    pub subject_id: SubjectId,
    pub consents: Vec<ConsentView>,
}

/// Every consent of the subject with its state now (active / expired / withdrawn).
#[utoipa::path(get, path = "/api/v1/subjects/{id}/consents", tag = "consents",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "Subject id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The history", body = ConsentList),
        (status = 404, description = "No such subject", body = ErrorResponse)))]
pub(crate) async fn consents(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    SubjectPath(subject): SubjectPath,
) -> Result<Json<ConsentList>, ApiError> {
    let consents = state.engine().consents(&actor, subject).await?;
    Ok(Json(ConsentList {
        subject_id: subject,
        consents,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalBody {
    /// How the withdrawal was received (channel, letter reference, ...). No personal data.
    #[serde(default)]
    pub evidence: Value,
}

/// Withdraw a consent. Appended to the ledger; the consent record is unchanged.
#[utoipa::path(post, path = "/api/v1/subjects/{id}/consents/{consent_id}/withdrawal", tag = "consents",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "Subject id"), ("consent_id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "Consent id")),
    request_body = WithdrawalBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Withdrawn", body = ConsentView),
        (status = 404, description = "No such consent", body = ErrorResponse)))]
pub(crate) async fn withdraw(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    SubjectConsentPath(subject, consent): SubjectConsentPath,
    JsonBody(body): JsonBody<WithdrawalBody>,
) -> Result<Json<ConsentView>, ApiError> {
    Ok(Json(
        state
            .engine()
            .withdraw_consent(&actor, subject, consent, &body.evidence)
            .await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    pub receipt: Receipt,
}

/// Confirm that a receipt is exactly what the ledger recorded.
#[utoipa::path(post, path = "/api/v1/consents/verify", tag = "consents", request_body = VerifyBody,
    security(("bearer" = [])),
    responses((status = 200, description = "The check", body = ReceiptCheck)))]
pub(crate) async fn verify(
    State(state): State<AppState>,
    Extension(_actor): Extension<Actor>,
    JsonBody(body): JsonBody<VerifyBody>,
) -> Result<Json<ReceiptCheck>, ApiError> {
    Ok(Json(state.engine().verify_receipt(&body.receipt).await?))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationView {
    pub organization_id: OrganizationId,
    /// `organisation.*` fields (not personal data, clause 3.4).
    pub fields: Value,
    pub representatives: Vec<String>,
}

/// Register an organisation (BIN and IBAN validated) and link its representatives.
#[utoipa::path(post, path = "/api/v1/organizations", tag = "organizations", request_body = OrganizationRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Registered", body = OrganizationView),
        (status = 404, description = "A representative is not an active subject", body = ErrorResponse),
        (status = 409, description = "`duplicate_organization`", body = ErrorResponse),
        (status = 422, description = "Refused: `invalid_bin`, `invalid_iban`, ...", body = ErrorResponse)))]
pub(crate) async fn register_organization(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(req): JsonBody<OrganizationRequest>,
) -> Result<(StatusCode, Json<OrganizationView>), ApiError> {
    let id = state.engine().register_organization(&actor, &req).await?;
    let (fields, representatives) = state.engine().organization(&actor, id).await?;
    Ok((
        StatusCode::CREATED,
        Json(OrganizationView {
            organization_id: id,
            fields,
            representatives,
        }),
    ))
}

/// An organisation's details and representatives.
#[utoipa::path(get, path = "/api/v1/organizations/{id}", tag = "organizations",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "Organization id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The organisation", body = OrganizationView),
        (status = 404, description = "No such organisation", body = ErrorResponse)))]
pub(crate) async fn organization(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    OrganizationPath(id): OrganizationPath,
) -> Result<Json<OrganizationView>, ApiError> {
    let (fields, representatives) = state.engine().organization(&actor, id).await?;
    Ok(Json(OrganizationView {
        organization_id: id,
        fields,
        representatives,
    }))
}

/// A subject's page on the desk (`work_requests`): status, the categories
/// held (names, never values), consents and channels, requests,
/// disclosures, legal holds, obligations. Audited.
#[utoipa::path(get, path = "/api/v1/subjects/{id}/overview", tag = "subjects",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "Subject id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The subject", body = derbes_engine::SubjectOverview),
        (status = 403, description = "`forbidden` (work_requests)", body = ErrorResponse),
        (status = 404, description = "No such subject", body = ErrorResponse)))]
pub(crate) async fn overview(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    crate::path::SubjectPath(id): crate::path::SubjectPath,
) -> Result<Json<derbes_engine::SubjectOverview>, ApiError> {
    Ok(Json(state.engine().subject_overview(&actor, id).await?))
}
