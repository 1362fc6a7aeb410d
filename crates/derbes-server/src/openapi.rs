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
        (name = "breaches", description = "The breach register: detected, assessed, notified to the authorised body within 1 working day, closed"),
        (name = "outbox", description = "Connected systems and the transactional outbox of what they must follow"),
        (name = "me", description = "The data subject's own door: a session the app opens for its signed-in user, and everything of 7.11 through it"),
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
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A staff token (`dbs_…`)"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "subject",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A subject session (`dbm_…`), opened by the app's backend at POST /api/v1/subjects/{id}/sessions",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as served: the paths the router routes, with the service's
/// description, tags and security scheme.
pub(crate) fn document_json(
    mut doc: utoipa::openapi::OpenApi,
) -> Result<Vec<u8>, serde_json::Error> {
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let mut v = serde_json::to_value(&doc)?;
    exact_integer_ranges(&mut v);
    serde_json::to_vec_pretty(&v)
}

/// An unsigned 32-bit field is described as `int32` from 0, which says
/// 2^31 and above is refused while the service takes it: describe what it
/// takes (0 to 2^32-1).
fn exact_integer_ranges(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(o) => {
            let unsigned32 = o.get("format").and_then(|f| f.as_str()) == Some("int32")
                && o.get("minimum").and_then(serde_json::Value::as_i64) == Some(0)
                && !o.contains_key("maximum");
            if unsigned32 {
                o.insert("format".into(), "int64".into());
                o.insert("maximum".into(), u32::MAX.into());
            }
            o.values_mut().for_each(exact_integer_ranges);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(exact_integer_ranges),
        _ => {}
    }
}

/// The answers every operation can give besides its own, added to each in
/// one place so that the document lists every status the service sends:
/// 400 (a malformed parameter or body), 408 (the request took too long),
/// 422 (control characters in text) everywhere; 413 where a body is taken;
/// 401, 403 and 429 wherever a staff token is required.
pub(crate) fn complete_responses(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::Operation;
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let error = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorResponse")))
                    .build(),
            )
            .build()
    };
    let add = |op: &mut Operation, status: &str, description: &str| {
        op.responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| error(description).into());
    };
    for item in doc.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            add(op, "400", "`invalid_input`, `invalid_json`: a parameter or the body is malformed (details name it)");
            add(
                op,
                "408",
                "`request_timeout`: the request was not completed in time",
            );
            add(
                op,
                "422",
                "`invalid_text` and the operation's own refusals (details name the field)",
            );
            if op.request_body.is_some() {
                add(op, "413", "`body_too_large`");
            }
            if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                add(
                    op,
                    "401",
                    "`unauthorized`: no valid staff token (for /api/v1/me: no live subject session)",
                );
                add(
                    op,
                    "403",
                    "`forbidden` (the role may not) or `denied` (the decision point refused)",
                );
                add(
                    op,
                    "429",
                    "`rate_limited`: too many failed sign-ins or lookups; see `Retry-After`",
                );
            }
        }
    }
}
