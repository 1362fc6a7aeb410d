//! The one error shape of the API: `{"error": {"code", "message", "details"}}`.
//! Messages are written for people and never carry personal data or internals.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// Which input was wrong and why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldError {
    /// The field or parameter, e.g. `lang`.
    pub field: String,
    /// Why it was refused.
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable machine code, e.g. `invalid_input`, `not_found`.
    pub code: String,
    /// A sentence for a person.
    pub message: String,
    /// One entry per offending field, when the input was at fault.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<FieldError>,
}

/// The envelope every error response uses.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody {
                code: code.into(),
                message: message.into(),
                details: Vec::new(),
            },
        }
    }

    /// 400 naming the field and the reason.
    pub fn invalid(field: &str, reason: impl Into<String>) -> ApiError {
        let reason = reason.into();
        let mut e = ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            format!("invalid value for `{field}`: {reason}"),
        );
        e.body.details.push(FieldError {
            field: field.into(),
            reason,
        });
        e
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// 500/503 without internals: the cause goes to the log, not the client.
    pub fn internal(context: &'static str, cause: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(context, error = %cause, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server could not complete the request; it has been logged",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(ErrorResponse { error: self.body })).into_response()
    }
}
