//! Usage statistics over HTTP: app telemetry in, k-anonymous figures out.

use crate::query::Params;
use axum::extract::State;
use axum::{Extension, Json};
use derbes_engine::Actor;
use derbes_weblog::aggregate::{Report, StatsReport};
use derbes_weblog::ingest::Summary;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::body::RawBody;
use crate::{ApiError, AppState, ErrorResponse};

/// What a batch of events did (lines counted, refused by reason with their
/// positions in the batch — never their content).
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct EventsAccepted {
    pub lines: u64,
    pub counted: u64,
    /// Refusals by reason: `{count, lines}`.
    #[schema(value_type = Object)]
    pub malformed: serde_json::Value,
    pub outside_window: u64,
}

impl From<Summary> for EventsAccepted {
    fn from(s: Summary) -> Self {
        EventsAccepted {
            lines: s.lines,
            counted: s.counted,
            malformed: serde_json::to_value(&s.malformed).unwrap_or_default(),
            outside_window: s.outside_window,
        }
    }
}

/// A batch of app telemetry events — a JSON array of objects
/// (`application/json`), or JSON lines (`application/x-ndjson`):
/// `{"event": "screen_view", "screen": "/orders", "time": RFC 3339, "ip": ..., "agent": ...}` —
/// through the same pipeline as the server logs: the address becomes the
/// day's pseudonym, only aggregates are stored. At most 10,000 per batch.
#[utoipa::path(post, path = "/api/v1/events", tag = "statistics",
    request_body(description = "a JSON array of events, or JSON lines",
        content((Vec<Object> = "application/json"), (String = "application/x-ndjson"))),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Counted (refused lines are reported by reason and position)", body = EventsAccepted),
        (status = 403, description = "`forbidden`", body = ErrorResponse),
        (status = 422, description = "`invalid_json`, `too_many`", body = ErrorResponse)))]
pub(crate) async fn events(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    headers: axum::http::HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<EventsAccepted>, ApiError> {
    let lines = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-ndjson"));
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_none() {
        return Err(ApiError::invalid(
            "body",
            "a JSON array of events, or JSON lines, is required",
        ));
    }
    if !lines && first != Some(&b'[') {
        return Err(ApiError::invalid(
            "body",
            "a JSON array of events; send JSON lines as application/x-ndjson",
        ));
    }
    Ok(Json(
        state.engine().ingest_events(&actor, &body).await?.into(),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// route, status, browser, os, device, referrer, social, hour or day.
    #[param(pattern = "^(route|status|browser|os|device|referrer|social|hour|day)$")]
    pub by: String,
    /// First day, `YYYY-MM-DD` (Asia/Almaty).
    #[param(format = Date)]
    pub from: Option<String>,
    /// Last day.
    #[param(format = Date)]
    pub to: Option<String>,
    /// Cells describing fewer than k visitors are suppressed (default 5, at least 2).
    #[param(minimum = 2)]
    pub k: Option<u64>,
}

fn date(field: &str, v: Option<&str>) -> Result<Option<chrono::NaiveDate>, ApiError> {
    v.map(|s| {
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map_err(|_| ApiError::invalid(field, "expected YYYY-MM-DD"))
    })
    .transpose()
}

/// Depersonalised usage statistics, k-anonymous.
#[utoipa::path(get, path = "/api/v1/stats", tag = "statistics", params(StatsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Rows by requests (by day and hour: in order)", body = Object),
        (status = 400, description = "Unknown `by`, bad date", body = ErrorResponse),
        (status = 403, description = "`forbidden`", body = ErrorResponse)))]
pub(crate) async fn stats(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Params(q): Params<StatsQuery>,
) -> Result<Json<StatsReport>, ApiError> {
    let by = Report::parse(&q.by).ok_or_else(|| {
        ApiError::invalid(
            "by",
            "route, status, browser, os, device, referrer, social, hour or day",
        )
    })?;
    let from = date("from", q.from.as_deref())?;
    let to = date("to", q.to.as_deref())?;
    Ok(Json(
        state
            .engine()
            .stats(
                &actor,
                by,
                from,
                to,
                q.k.unwrap_or(derbes_engine::DEFAULT_K),
            )
            .await?,
    ))
}
