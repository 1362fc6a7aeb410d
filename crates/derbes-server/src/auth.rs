//! Staff authentication: `Authorization: Bearer <token>`, checked against the
//! hashed tokens in the store. The token's role (from the policy) decides
//! what the actor may do: the engine answers 403 for a missing capability and
//! the decision point for a missing need-to-know.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;

use crate::{ApiError, AppState};

pub(crate) async fn require_staff(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(ApiError::unauthorized)?;
    let staff = state
        .engine()
        .authenticate(token)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    request.extensions_mut().insert(staff.actor());
    Ok(next.run(request).await)
}
