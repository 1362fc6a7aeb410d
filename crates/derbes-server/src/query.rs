//! Query strings checked against their own OpenAPI description: a name that
//! is not a documented parameter is refused without being echoed (it may be
//! the datum itself, e.g. `?871008401427=1`), a documented one is checked
//! for its type and range as the document states them, and control
//! characters are refused before anything reaches the engine. The document
//! and the check are one (`IntoParams`), so they cannot drift apart.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use utoipa::openapi::path::ParameterIn;
use utoipa::IntoParams;

use crate::ApiError;

/// Like `axum::extract::Query`, with derbes' error shape and the checks
/// above.
#[derive(Debug)]
pub struct Params<T>(pub T);

/// What the document says about one parameter.
struct Spec {
    name: String,
    required: bool,
    /// `string`, `integer`, `boolean` or `number`.
    kind: String,
    minimum: Option<f64>,
    maximum: Option<f64>,
    /// The allowed words, for an enumeration.
    words: Option<Vec<String>>,
    /// The form a text must have (the document's `pattern`).
    pattern: Option<regex::Regex>,
    /// The document constrains the value's form (a type other than text, a
    /// format, a pattern, words): an empty value is a value, and wrong.
    constrained: bool,
}

/// The parameters of `T` as its document states them, read once per type
/// (the document does not change while the process runs).
fn specs<T: IntoParams + 'static>() -> std::sync::Arc<Vec<Spec>> {
    use std::any::TypeId;
    use std::collections::HashMap;
    use std::sync::{Arc, OnceLock, RwLock};
    static SPECS: OnceLock<RwLock<HashMap<TypeId, Arc<Vec<Spec>>>>> = OnceLock::new();
    let cache = SPECS.get_or_init(RwLock::default);
    if let Some(found) = cache
        .read()
        .ok()
        .and_then(|m| m.get(&TypeId::of::<T>()).cloned())
    {
        return found;
    }
    let fresh = Arc::new(read_specs::<T>());
    if let Ok(mut m) = cache.write() {
        m.insert(TypeId::of::<T>(), fresh.clone());
    }
    fresh
}

fn read_specs<T: IntoParams>() -> Vec<Spec> {
    T::into_params(|| Some(ParameterIn::Query))
        .into_iter()
        .map(|p| {
            let required = matches!(p.required, utoipa::openapi::Required::True);
            let schema = serde_json::to_value(&p.schema).unwrap_or(Value::Null);
            let kind = match &schema["type"] {
                Value::String(t) => t.clone(),
                Value::Array(ts) => ts
                    .iter()
                    .filter_map(Value::as_str)
                    .find(|t| *t != "null")
                    .unwrap_or("string")
                    .to_string(),
                _ => "string".to_string(),
            };
            let constrained = kind != "string"
                || ["format", "pattern", "enum"]
                    .iter()
                    .any(|k| schema.get(k).is_some());
            Spec {
                pattern: schema["pattern"]
                    .as_str()
                    .and_then(|p| regex::Regex::new(p).ok()),
                constrained,
                name: p.name,
                required,
                kind,
                minimum: schema["minimum"].as_f64(),
                maximum: schema["maximum"].as_f64(),
                words: schema["enum"].as_array().map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                }),
            }
        })
        .collect()
}

/// Whether `text` holds a character no parameter, path segment or field
/// may carry: C0/C1 controls (NUL above all: PostgreSQL cannot store it).
pub(crate) fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

/// 422 naming `field`: the value holds control characters.
pub(crate) fn control_refused(field: &str) -> ApiError {
    ApiError::unprocessable(
        field,
        "invalid_text",
        "control characters (such as NUL) are not allowed",
    )
}

fn typed(spec: &Spec, raw: &str) -> Result<Value, ApiError> {
    let name = spec.name.as_str();
    let number = |n: f64| -> Result<(), ApiError> {
        let low = spec.minimum.is_some_and(|m| n < m);
        let high = spec.maximum.is_some_and(|m| n > m);
        if low || high {
            let range = match (spec.minimum, spec.maximum) {
                (Some(a), Some(b)) => format!("from {a} to {b}"),
                (Some(a), None) => format!("at least {a}"),
                (None, Some(b)) => format!("at most {b}"),
                (None, None) => String::new(),
            };
            return Err(ApiError::invalid(name, format!("must be {range}")));
        }
        Ok(())
    };
    match spec.kind.as_str() {
        "integer" => {
            let n: i64 = raw
                .parse()
                .map_err(|_| ApiError::invalid(name, "must be a whole number"))?;
            number(n as f64)?;
            Ok(Value::from(n))
        }
        "number" => {
            let n: f64 = raw
                .parse()
                .ok()
                .filter(|n: &f64| n.is_finite())
                .ok_or_else(|| ApiError::invalid(name, "must be a number"))?;
            number(n)?;
            Ok(Value::from(n))
        }
        "boolean" => match raw {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(ApiError::invalid(name, "must be `true` or `false`")),
        },
        _ => match &spec.words {
            Some(words) if !words.iter().any(|w| w == raw) => Err(ApiError::invalid(
                name,
                format!("one of: {}", words.join(", ")),
            )),
            _ => match &spec.pattern {
                Some(p) if !p.is_match(raw) => Err(ApiError::invalid(
                    name,
                    match choices(p.as_str()) {
                        // `^(ru|en)$`: say which words.
                        Some(words) => {
                            let words: Vec<String> =
                                words.iter().map(|w| format!("`{w}`")).collect();
                            match words.split_last() {
                                Some((last, rest)) if !rest.is_empty() => {
                                    format!("expected {} or {last}", rest.join(", "))
                                }
                                _ => format!("expected {}", words.concat()),
                            }
                        }
                        None => "not of the form the API document gives (its pattern)".into(),
                    },
                )),
                _ => Ok(Value::String(raw.to_string())),
            },
        },
    }
}

/// The words of a pattern that is only a choice of words, `^(a|b|c)$`.
fn choices(pattern: &str) -> Option<Vec<&str>> {
    let inner = pattern.strip_prefix("^(")?.strip_suffix(")$")?;
    let words: Vec<&str> = inner.split('|').collect();
    words
        .iter()
        .all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then_some(words)
}

/// Parses `query` for `T`; see the module's description.
pub(crate) fn parse<T: DeserializeOwned + IntoParams + 'static>(
    query: &str,
) -> Result<T, ApiError> {
    let specs = specs::<T>();
    let documented = || {
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        if names.is_empty() {
            "this operation takes no query parameters".to_string()
        } else {
            format!("this operation takes: {}", names.join(", "))
        }
    };
    let mut values = Map::new();
    for (name, raw) in form_urlencoded::parse(query.as_bytes()) {
        let Some(spec) = specs.iter().find(|s| s.name == name) else {
            let mut e = ApiError::invalid(
                "query",
                format!(
                    "a parameter is not one of this operation's; {}",
                    documented()
                ),
            );
            e.body.details[0].code = "unknown_parameter".into();
            return Err(e);
        };
        if has_control(&raw) {
            return Err(control_refused(&spec.name));
        }
        if values.contains_key(&spec.name) {
            return Err(ApiError::invalid(&spec.name, "given more than once"));
        }
        // An empty optional text is the same as leaving it out; where the
        // document gives the value a form, empty is not of it.
        if raw.is_empty() && !spec.required && !spec.constrained {
            continue;
        }
        values.insert(spec.name.clone(), typed(spec, &raw)?);
    }
    if let Some(missing) = specs
        .iter()
        .find(|s| s.required && !values.contains_key(&s.name))
    {
        return Err(ApiError::invalid(
            &missing.name,
            "required parameter is missing",
        ));
    }
    serde_json::from_value(Value::Object(values))
        .map_err(|_| ApiError::invalid("query", "a parameter has the wrong form"))
}

impl<S, T> FromRequestParts<S> for Params<T>
where
    S: Send + Sync,
    T: DeserializeOwned + IntoParams + 'static,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parse(parts.uri.query().unwrap_or_default()).map(Params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, IntoParams)]
    #[into_params(parameter_in = Query)]
    #[allow(dead_code)]
    struct Q {
        by: String,
        #[param(minimum = 1, maximum = 1000)]
        limit: Option<i64>,
        overdue: Option<bool>,
        note: Option<String>,
        #[param(inline)]
        channel: Option<derbes_policy::Channel>,
        #[param(pattern = "^[a-z][a-z0-9_]{0,63}$")]
        system: Option<String>,
    }

    /// Every pattern the API document gives a query parameter compiles:
    /// none is silently left unchecked.
    #[test]
    fn every_documented_pattern_compiles() {
        let doc = serde_json::to_value(crate::routes::document()).unwrap();
        let mut seen = 0;
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                for p in op["parameters"].as_array().into_iter().flatten() {
                    if let Some(pattern) = p["schema"]["pattern"].as_str() {
                        assert!(regex::Regex::new(pattern).is_ok(), "{pattern}");
                        seen += 1;
                    }
                }
            }
        }
        assert!(seen > 20, "{seen}");
    }

    fn field(e: ApiError) -> (String, String) {
        let d = &e.body.details[0];
        (d.field.clone(), d.code.clone())
    }

    #[test]
    fn checks_names_types_ranges_and_text() {
        let q: Q = parse("by=route&limit=10&overdue=true").unwrap();
        assert_eq!(
            (q.by.as_str(), q.limit, q.overdue),
            ("route", Some(10), Some(true))
        );
        let q: Q = parse("by=day&note=&channel=sms").unwrap();
        assert_eq!(
            (q.note, q.channel),
            (None, Some(derbes_policy::Channel::Sms))
        );
        let f = |s| field(parse::<Q>(s).unwrap_err());
        assert_eq!(f("by=a&871008401427=1").0, "query");
        assert_eq!(f("by=a&871008401427=1").1, "unknown_parameter");
        assert_eq!(f("by=a&limit=x").0, "limit");
        assert_eq!(f("by=a&limit=0").0, "limit");
        assert_eq!(f("by=a&limit=1001").0, "limit");
        assert_eq!(f("by=a&overdue=1").0, "overdue");
        assert_eq!(f("limit=1").0, "by");
        assert_eq!(f("by=a&by=b").0, "by");
        assert_eq!(f("by=a%00"), ("by".into(), "invalid_text".into()));
        // Where the document gives a form, empty is a wrong value.
        assert_eq!(f("by=a&limit=").0, "limit");
        assert_eq!(f("by=a&channel=").0, "channel");
        assert_eq!(f("by=a&channel=carrier_pigeon").0, "channel");
        // A documented pattern is enforced, empty included.
        assert_eq!(
            parse::<Q>("by=a&system=crm_2").unwrap().system.as_deref(),
            Some("crm_2")
        );
        assert_eq!(f("by=a&system=").0, "system");
        assert_eq!(f("by=a&system=Crm").0, "system");
        let e = parse::<Q>("by=a&871008401427=1").unwrap_err();
        assert!(!format!("{:?}", e.body).contains("871008401427"));
    }
}
