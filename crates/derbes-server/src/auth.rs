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
    let address = client(&request);
    before_sign_in(&state, &address).await?;
    let staff = match bearer(&request) {
        Some(t) => state.engine().authenticate(&t).await?,
        None => None,
    };
    let Some(staff) = staff else {
        return Err(failed_sign_in(&state, &address, ApiError::unauthorized()).await);
    };
    let actor = staff.actor();
    request.extensions_mut().insert(actor);
    Ok(next.run(request).await)
}

/// The client's address, as the failed sign-in limit counts it.
pub(crate) fn client(request: &Request) -> Vec<Scope> {
    client_address(request.extensions())
        .map(Scope::Address)
        .into_iter()
        .collect()
}

/// Refused at once (429) when the client has failed to sign in too often —
/// before its token is even looked at.
pub(crate) async fn before_sign_in(state: &AppState, address: &[Scope]) -> Result<(), ApiError> {
    guard(state, None, Limit::FailedAuthentication, address, false).await
}

/// `Authorization: Bearer <token>`, if sent.
pub(crate) fn bearer(request: &Request) -> Option<String> {
    request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
}

/// A failed sign-in, counted against the client's address: `refusal`, or
/// 429 once over the limit.
pub(crate) async fn failed_sign_in(
    state: &AppState,
    address: &[Scope],
    refusal: ApiError,
) -> ApiError {
    match guard(state, None, Limit::FailedAuthentication, address, true).await {
        Ok(()) => refusal,
        Err(limited) => limited,
    }
}
