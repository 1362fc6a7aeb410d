//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::OpenApi;

use crate::routes;

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "derbes",
        description = "Personal-data engine: the iBusiness privacy policy as running code. \
                       Errors are `{\"error\": {\"code\", \"message\", \"details\"}}`."
    ),
    paths(
        routes::healthz,
        routes::readyz,
        routes::openapi,
        routes::policy,
        routes::policy_document,
        routes::policy_versions,
    ),
    tags(
        (name = "service", description = "Health, readiness and this document"),
        (name = "policy", description = "The privacy policy in force and its versions"),
    )
)]
pub struct ApiDoc;

pub(crate) fn document_json() -> Result<Vec<u8>, serde_json::Error> {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    serde_json::to_vec_pretty(&doc)
}
