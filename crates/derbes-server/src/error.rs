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
    /// The field or parameter, e.g. `identity.iin` or `lang`.
    pub field: String,
    /// A stable code for this field's problem, e.g. `invalid_iin`, `under_age`.
    pub code: String,
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
    /// Seconds for `Retry-After` (a 429).
    pub retry_after: Option<u64>,
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
            retry_after: None,
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
            code: "invalid_input".into(),
            reason,
        });
        e
    }

    /// 422 naming the field: the request is well-formed (it matches the
    /// document) but cannot be done as asked.
    pub fn unprocessable(field: &str, code: &str, reason: impl Into<String>) -> ApiError {
        let mut e = ApiError::invalid(field, reason);
        e.status = StatusCode::UNPROCESSABLE_ENTITY;
        e.body.code = code.into();
        if let Some(d) = e.body.details.first_mut() {
            d.code = code.into();
        }
        e
    }

    /// 401 with a `WWW-Authenticate` challenge.
    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid staff bearer token is required (Authorization: Bearer ...)",
        )
    }

    /// The subject's own door: no live session.
    pub fn no_session() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a live subject session is required (Authorization: Bearer dbm_...): the app opens one",
        )
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
        let challenge = self.status == StatusCode::UNAUTHORIZED;
        let retry_after = self.retry_after;
        let mut r = (self.status, Json(ErrorResponse { error: self.body })).into_response();
        if let Some(secs) = retry_after {
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        if challenge {
            r.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"derbes\""),
            );
        }
        r
    }
}

impl From<derbes_engine::EngineError> for ApiError {
    fn from(e: derbes_engine::EngineError) -> Self {
        use derbes_engine::EngineError as E;
        match e {
            E::Invalid(problems) => {
                let code = match problems.as_slice() {
                    [one] => one.code.to_string(),
                    _ => "invalid_input".to_string(),
                };
                let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
                let mut err = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &code,
                    format!(
                        "the request was refused; see details ({})",
                        fields.join(", ")
                    ),
                );
                err.body.details = problems
                    .into_iter()
                    .map(|p| FieldError {
                        field: p.field,
                        code: p.code.to_string(),
                        reason: p.reason,
                    })
                    .collect();
                err
            }
            E::NotFound(what) => ApiError::not_found(what),
            E::DuplicateOrganization => ApiError::new(
                StatusCode::CONFLICT,
                "duplicate_organization",
                "an organisation with this BIN is already registered",
            ),
            E::DuplicateSubject { field } => {
                let mut err = ApiError::new(
                    StatusCode::CONFLICT,
                    "duplicate_subject",
                    format!("a subject with this {field} is already registered"),
                );
                err.body.details.push(FieldError {
                    field,
                    code: "duplicate_subject".into(),
                    reason: "already registered".into(),
                });
                err
            }
            E::Conflict(field) => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("{field} changed meanwhile; read it again and retry"),
            ),
            E::AwaitingSystems(n) => ApiError::new(
                StatusCode::CONFLICT,
                "awaiting_systems",
                format!("{n} connected system(s) have yet to confirm they followed; see the request's `awaiting`"),
            ),
            E::Destroyed => ApiError::new(
                StatusCode::GONE,
                "subject_destroyed",
                "this subject's personal data has been destroyed",
            ),
            E::Denied { reasons, audit_id } => {
                let mut err = ApiError::new(
                    StatusCode::FORBIDDEN,
                    "denied",
                    format!(
                        "the decision point denied this use (audit record {audit_id}); see details"
                    ),
                );
                err.body.details = reasons
                    .into_iter()
                    .map(|r| FieldError {
                        field: "decision".into(),
                        code: r.code,
                        reason: r.message,
                    })
                    .collect();
                err
            }
            E::Forbidden(what) => ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("your role may not {}", what.replace('_', " ")),
            ),
            E::Internal(cause) | E::Refused(cause) => ApiError::internal("engine", &cause),
        }
    }
}
