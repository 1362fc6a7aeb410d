//! Staff authentication: `Authorization: Bearer <token>`, checked against the
//! hashed tokens in the store. The token's role (from the policy) decides
//! what the actor may do: the engine answers 403 for a missing capability and
//! the decision point for a missing need-to-know. Failed attempts are
//! counted per client address; over the limit, a client gets 429 before its
//! token is even looked at (`throttle.rs`).

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;

use crate::throttle::{client_address, guard, Limit, Scope};
use crate::{ApiError, AppState};

pub(crate) async fn require_staff(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let address: Vec<Scope> = client_address(request.extensions())
        .map(Scope::Address)
        .into_iter()
        .collect();
    guard(&state, None, Limit::FailedAuthentication, &address, false).await?;
    let token = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let staff = match token {
        Some(t) => state.engine().authenticate(t).await?,
        None => None,
    };
    let Some(staff) = staff else {
        guard(&state, None, Limit::FailedAuthentication, &address, true).await?;
        return Err(ApiError::unauthorized());
    };
    let actor = staff.actor();
    request.extensions_mut().insert(actor);
    Ok(next.run(request).await)
}
