//! Request bodies: over the route's limit a 413, control characters a 422,
//! JSON errors that say where and what without echoing the submitted values
//! (the reading itself is `derbes_core::input`, shared with every door that
//! takes JSON).

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use derbes_core::input::{forbidden_control, parse_json, JsonInputError};
use serde::de::DeserializeOwned;

use crate::ApiError;

/// Like `axum::Json`, with derbes' error shape.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// A request body as bytes: over the route's limit is a 413 in the error
/// shape, and control characters are refused (422) before anything parses
/// it.
#[derive(Debug)]
pub struct RawBody(pub axum::body::Bytes);

/// The body's bytes, or a 413 in the error shape over the route's limit.
async fn bytes_of<S: Send + Sync>(req: Request, state: &S) -> Result<axum::body::Bytes, ApiError> {
    axum::body::Bytes::from_request(req, state)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the request body is too large",
            )
        })
}

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = bytes_of(req, state).await?;
        if forbidden_control(&bytes).is_some() {
            return Err(crate::query::control_refused("body"));
        }
        Ok(RawBody(bytes))
    }
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // `parse_json` refuses control characters itself.
        let bytes = bytes_of(req, state).await?;
        parse_json(&bytes).map(JsonBody).map_err(|e| match e {
            JsonInputError::Empty => ApiError::invalid("body", "a JSON body is required"),
            JsonInputError::Control(_) => crate::query::control_refused("body"),
            JsonInputError::Invalid { field, reason } => {
                let mut err = ApiError::invalid(&field, reason);
                err.body.code = "invalid_json".into();
                err
            }
        })
    }
}
