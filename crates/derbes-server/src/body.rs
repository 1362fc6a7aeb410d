//! JSON request bodies with errors that say where and what, never echoing
//! the submitted values (they may be personal data).

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::ApiError;

/// Like `axum::Json`, with derbes' error shape.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// A safe description of a deserialisation error: the structure (unknown or
/// missing field names), never the values.
fn describe(e: &serde_json::Error) -> (String, String) {
    let msg = e.to_string();
    let name_in_backticks = |prefix: &str| {
        msg.strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .filter(|n| {
                n.len() <= 64
                    && n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._[]".contains(c))
            })
            .map(str::to_string)
    };
    let at = format!("line {}, column {}", e.line(), e.column());
    if let Some(f) = name_in_backticks("unknown field `") {
        return (f, format!("unknown field ({at})"));
    }
    if let Some(f) = name_in_backticks("missing field `") {
        return (f, "required field is missing".to_string());
    }
    // An unknown variant's text is the submitted value: say so without it.
    if msg.starts_with("unknown variant `") {
        return (
            "body".into(),
            format!("a value is not one of the allowed words ({at})"),
        );
    }
    match e.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            ("body".into(), format!("not valid JSON ({at})"))
        }
        _ => (
            "body".into(),
            format!("a value has the wrong type or form ({at})"),
        ),
    }
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    "the request body is too large",
                )
            })?;
        if bytes.is_empty() {
            return Err(ApiError::invalid("body", "a JSON body is required"));
        }
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            let (field, reason) = describe(&e);
            let mut err = ApiError::invalid(&field, reason);
            err.body.code = "invalid_json".into();
            err
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        flag: bool,
    }

    #[test]
    fn never_echoes_values() {
        let e = serde_json::from_str::<T>(r#"{"flag": "871008401427"}"#).unwrap_err();
        let (field, reason) = describe(&e);
        assert!(!reason.contains("871008401427") && !field.contains("871008401427"));
        let e = serde_json::from_str::<T>(r#"{"flag": true, "iin": 1}"#).unwrap_err();
        assert_eq!(describe(&e).0, "iin");
        let e = serde_json::from_str::<T>(r#"{}"#).unwrap_err();
        assert_eq!(describe(&e).0, "flag");
        let e = serde_json::from_str::<T>(r#"{"flag": tru"#).unwrap_err();
        assert!(describe(&e).1.starts_with("not valid JSON"));
    }
}
