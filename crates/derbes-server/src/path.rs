//! Typed path parameters: parsed before a handler runs, and a bad one is
//! refused in derbes' error shape (400, or 422 for control characters, naming the parameter, never echoing
//! what was sent — it may be personal data).

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use derbes_core::{ConsentId, OrganizationId, SubjectId};

use crate::subjects::subject_id;
use crate::ApiError;

/// `{id}`: a subject id.
#[derive(Debug, Clone, Copy)]
pub struct SubjectPath(pub SubjectId);

/// `{id}/…/{item}`: a subject id and one of the subject's records (an
/// obligation, a hold, a representative) named by its own id.
#[derive(Debug, Clone)]
pub struct SubjectItemPath(pub SubjectId, pub String);

/// `{id}/consents/{consent_id}`: a subject id and a consent id.
#[derive(Debug, Clone, Copy)]
pub struct SubjectConsentPath(pub SubjectId, pub ConsentId);

/// `{id}`: an organisation id.
#[derive(Debug, Clone, Copy)]
pub struct OrganizationPath(pub OrganizationId);

/// `{id}`: the id of a request, a staff token — looked up as sent.
#[derive(Debug, Clone)]
pub struct IdPath(pub String);

/// The route's parameters, `(name, value)`, in the path's order.
async fn segments<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
) -> Result<Vec<(String, String)>, ApiError> {
    let Path(all) = Path::<Vec<(String, String)>>::from_request_parts(parts, state)
        .await
        .map_err(|_| ApiError::invalid("path", "a path parameter is not valid UTF-8 text"))?;
    Ok(all)
}

fn nth(all: &[(String, String)], i: usize) -> Result<&str, ApiError> {
    all.get(i)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| ApiError::internal("path parameters", &"a route lost one"))
}

/// The `i`th parameter as an id derbes issued, refused under its own name.
fn nth_issued(all: &[(String, String)], i: usize) -> Result<&str, ApiError> {
    let name = all.get(i).map_or("id", |(n, _)| n.as_str());
    issued_id(name, nth(all, i)?)
}

/// An id derbes issued (a request's, a staff token's, a hold's): letters,
/// digits, `.`, `_`, `:` and `-`, at most 128 — anything else cannot name
/// one, and is refused before it reaches the store.
fn issued_id<'a>(field: &str, text: &'a str) -> Result<&'a str, ApiError> {
    if crate::query::has_control(text) {
        return Err(crate::query::control_refused(field));
    }
    let fits = (1..=128).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    if fits {
        Ok(text)
    } else {
        Err(ApiError::invalid(
            field,
            "not an id derbes issues (letters, digits, `.`, `_`, `:`, `-`; at most 128)",
        ))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SubjectPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let all = segments(parts, state).await?;
        Ok(SubjectPath(subject_id(nth(&all, 0)?)?))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SubjectItemPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let all = segments(parts, state).await?;
        Ok(SubjectItemPath(
            subject_id(nth(&all, 0)?)?,
            nth_issued(&all, 1)?.to_string(),
        ))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SubjectConsentPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let all = segments(parts, state).await?;
        let consent = ConsentId::parse(nth(&all, 1)?)
            .map_err(|e| ApiError::invalid("consent_id", e.to_string()))?;
        Ok(SubjectConsentPath(subject_id(nth(&all, 0)?)?, consent))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for OrganizationPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let all = segments(parts, state).await?;
        OrganizationId::parse(nth(&all, 0)?)
            .map(OrganizationPath)
            .map_err(|e| ApiError::invalid("id", e.to_string()))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let all = segments(parts, state).await?;
        Ok(IdPath(nth_issued(&all, 0)?.to_string()))
    }
}

/// `{channel}`: a channel of the policy's vocabulary.
#[derive(Debug, Clone, Copy)]
pub struct ChannelPath(pub derbes_policy::Channel);

impl<S: Send + Sync> FromRequestParts<S> for ChannelPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let all = segments(parts, state).await?;
        let text = nth(&all, 0)?;
        derbes_policy::Channel::parse(text)
            .map(ChannelPath)
            .ok_or_else(|| {
                let names: Vec<&str> = derbes_policy::Channel::ALL
                    .iter()
                    .map(|c| c.as_str())
                    .collect();
                ApiError::invalid("channel", format!("one of: {}", names.join(", ")))
            })
    }
}
