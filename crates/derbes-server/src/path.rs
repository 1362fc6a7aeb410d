//! Typed path parameters: parsed before a handler runs, and a bad one is
//! refused in derbes' error shape (422, naming the parameter, never echoing
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

async fn segments<S: Send + Sync>(parts: &mut Parts, state: &S) -> Result<Vec<String>, ApiError> {
    let Path(all) = Path::<Vec<(String, String)>>::from_request_parts(parts, state)
        .await
        .map_err(|_| ApiError::invalid("path", "a path parameter is not valid UTF-8 text"))?;
    Ok(all.into_iter().map(|(_, v)| v).collect())
}

fn nth(all: &[String], i: usize) -> Result<&str, ApiError> {
    all.get(i)
        .map(String::as_str)
        .ok_or_else(|| ApiError::internal("path parameters", &"a route lost one"))
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
            nth(&all, 1)?.to_string(),
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
        Ok(IdPath(nth(&all, 0)?.to_string()))
    }
}
