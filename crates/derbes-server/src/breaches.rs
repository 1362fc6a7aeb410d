//! The breach register over HTTP (`manage_breaches`: the data-protection
//! officer and security).

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Json};
use derbes_engine::{Actor, BreachStep, BreachView, NewBreach};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::body::JsonBody;
use crate::path::IdPath;
use crate::query::Params;
use crate::{ApiError, AppState, ErrorResponse};

/// Record a detected breach: the notice to the authorised body falls due
/// at the end of the first working day after detection.
#[utoipa::path(post, path = "/api/v1/breaches", tag = "breaches", request_body = NewBreach,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Recorded", body = BreachView),
        (status = 403, description = "`forbidden` (manage_breaches)", body = ErrorResponse),
        (status = 422, description = "`description_required`, `unknown_category`, `categories_required`, `unknown_subject`, `affected_required`, `in_future`", body = ErrorResponse)))]
pub(crate) async fn report(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(body): JsonBody<NewBreach>,
) -> Result<(StatusCode, Json<BreachView>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(state.engine().report_breach(&actor, &body).await?),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BreachQuery {
    /// Only breaches in this state.
    #[param(pattern = "^(detected|assessed|notified|closed)$")]
    pub state: Option<String>,
    /// Only those whose notice to the authorised body is late.
    pub overdue: Option<bool>,
    /// At most this many (default 100).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<i64>,
}

/// The register, the earliest notice due first.
#[utoipa::path(get, path = "/api/v1/breaches", tag = "breaches", params(BreachQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "Breaches", body = [BreachView]), (status = 403, description = "`forbidden`", body = ErrorResponse)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Params(q): Params<BreachQuery>,
) -> Result<Json<Vec<BreachView>>, ApiError> {
    Ok(Json(
        state
            .engine()
            .breaches(
                &actor,
                q.state.as_deref(),
                q.overdue.unwrap_or(false),
                q.limit.unwrap_or(100),
            )
            .await?,
    ))
}

/// One breach with its free text and the subjects it lists.
#[utoipa::path(get, path = "/api/v1/breaches/{id}", tag = "breaches",
    params(("id" = String, Path, pattern = "^[0-9A-Za-z._:-]{1,128}$", description = "Breach id")),
    security(("bearer" = [])),
    responses((status = 200, description = "The breach", body = BreachView), (status = 404, description = "No such breach", body = ErrorResponse)))]
pub(crate) async fn show(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    IdPath(id): IdPath,
) -> Result<Json<BreachView>, ApiError> {
    Ok(Json(state.engine().breach(&actor, &id).await?))
}

/// Assess, record the notice to the authorised body, or close.
#[utoipa::path(post, path = "/api/v1/breaches/{id}/actions", tag = "breaches",
    params(("id" = String, Path, pattern = "^[0-9A-Za-z._:-]{1,128}$", description = "Breach id")),
    request_body = BreachStep,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The breach after the step", body = BreachView),
        (status = 404, description = "No such breach", body = ErrorResponse),
        (status = 409, description = "Changed meanwhile", body = ErrorResponse),
        (status = 422, description = "`invalid_transition`", body = ErrorResponse)))]
pub(crate) async fn act(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody<BreachStep>,
) -> Result<Json<BreachView>, ApiError> {
    Ok(Json(
        state.engine().act_on_breach(&actor, &id, &body).await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NoticeQuery {
    /// `ru` (default), `kk` or `en`.
    #[param(pattern = "^(ru|kk|en)$")]
    pub lang: Option<String>,
    /// `md` (default) or `html` (a page to print).
    #[param(pattern = "^(md|html)$")]
    pub format: Option<String>,
}

/// The notice to the authorised body: the operator, the responsible
/// person, the breach; Markdown, or a page to print; in ru, kk or en.
#[utoipa::path(get, path = "/api/v1/breaches/{id}/notice", tag = "breaches",
    params(("id" = String, Path, pattern = "^[0-9A-Za-z._:-]{1,128}$", description = "Breach id"), NoticeQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The notice", content((String = "text/markdown"), (String = "text/html"))),
        (status = 404, description = "No such breach", body = ErrorResponse)))]
pub(crate) async fn notice(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    IdPath(id): IdPath,
    Params(q): Params<NoticeQuery>,
) -> Result<Response, ApiError> {
    let lang = crate::routes::lang(q.lang.as_deref())?;
    let html = match q.format.as_deref() {
        None | Some("md") => false,
        Some("html") => true,
        Some(_) => return Err(ApiError::invalid("format", "expected `md` or `html`")),
    };
    let notice = state.engine().breach_notice(&actor, &id, lang).await?;
    Ok(if html {
        Html(notice.html()).into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/markdown; charset=utf-8"),
            )],
            notice.markdown(),
        )
            .into_response()
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubjectNotices {
    /// Notices recorded now (a subject already told is not told twice).
    pub notices: usize,
}

/// Tell the subjects the breach lists, through the system that sends the
/// app's notices.
#[utoipa::path(post, path = "/api/v1/breaches/{id}/subject-notices", tag = "breaches",
    params(("id" = String, Path, pattern = "^[0-9A-Za-z._:-]{1,128}$", description = "Breach id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Notices recorded", body = SubjectNotices),
        (status = 404, description = "No such breach", body = ErrorResponse),
        (status = 422, description = "`no_subjects_listed`", body = ErrorResponse)))]
pub(crate) async fn notify_subjects(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    IdPath(id): IdPath,
) -> Result<Json<SubjectNotices>, ApiError> {
    Ok(Json(SubjectNotices {
        notices: state.engine().notify_breach_subjects(&actor, &id).await?,
    }))
}
