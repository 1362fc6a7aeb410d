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
        crate::subjects::register,
        crate::subjects::lookup_get,
        crate::subjects::lookup_post,
        crate::subjects::data,
        crate::subjects::rectify,
        crate::subjects::add_consent,
        crate::subjects::consents,
        crate::subjects::withdraw,
        crate::subjects::verify,
        crate::subjects::register_organization,
        crate::subjects::organization,
        crate::decisions::decide,
        crate::decisions::disclose,
        crate::decisions::disclosures,
        crate::decisions::audit,
        crate::decisions::add_staff,
        crate::decisions::list_staff,
        crate::decisions::revoke_staff,
        crate::requests::create,
        crate::requests::list,
        crate::requests::show,
        crate::requests::act,
        crate::requests::can_contact,
        crate::requests::add_obligation,
        crate::requests::close_obligation,
        crate::requests::certificate,
        crate::requests::export,
        crate::retention::rectify,
        crate::retention::end_relationship,
        crate::retention::place_hold,
        crate::retention::holds,
        crate::retention::release_hold,
        crate::retention::due,
        crate::retention::certificate,
        crate::stats::events,
        crate::stats::stats,
        crate::requests::minor,
        crate::promises::collect,
        crate::promises::add_representative,
        crate::promises::representatives,
        crate::promises::revoke_representative,
        crate::promises::reconsent,
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

pub(crate) fn document_json() -> Result<Vec<u8>, serde_json::Error> {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    serde_json::to_vec_pretty(&doc)
}
