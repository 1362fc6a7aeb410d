//! The OpenAPI document: the service's description, tags and security
//! scheme here; its paths come from the router (`routes::api`), which routes
//! each handler by the path its annotation documents.

use utoipa::OpenApi;

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "derbes",
        description = "Personal-data engine: the iBusiness privacy policy as running code. \
                       Errors are `{\"error\": {\"code\", \"message\", \"details\"}}`."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "service", description = "Health, readiness and this document"),
        (name = "policy", description = "The privacy policy in force and its versions"),
        (name = "subjects", description = "Registration, lookup, data for a purpose, rectification"),
        (name = "consents", description = "The consent ledger and receipts"),
        (name = "organizations", description = "Organisations users act for (not personal data)"),
        (name = "decisions", description = "The decision point and the disclosure ledger"),
        (name = "audit", description = "The hash-chained audit log"),
        (name = "staff", description = "Staff and their bearer tokens"),
        (name = "requests", description = "The rights desk: data-subject requests against legal deadlines"),
        (name = "statistics", description = "Depersonalised usage statistics (3.2): app events in, k-anonymous figures out"),
        (name = "retention", description = "Retention: relationship end, legal holds, the purge, destruction certificates"),
    )
)]
pub struct ApiDoc;

/// Staff bearer tokens.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as served: the paths the router routes, with the service's
/// description, tags and security scheme.
pub(crate) fn document_json(
    mut doc: utoipa::openapi::OpenApi,
) -> Result<Vec<u8>, serde_json::Error> {
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    serde_json::to_vec_pretty(&doc)
}
