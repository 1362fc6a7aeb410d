//! Field values: each field type of the policy has one canonical text form,
//! which is what gets sealed. Parsing a value never echoes it in an error.

use derbes_kz::{Bin, Iin, KzIban, KzPhone};
use derbes_policy::FieldType;
use serde_json::Value;

/// A field's problem: a stable code and a reason for a person.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// The field (`identity.iin`) or input path (`consent.channel`).
    pub field: String,
    /// Stable machine code: `invalid_iin`, `missing_field`, `under_age`, ...
    pub code: &'static str,
    pub reason: String,
}

impl Problem {
    pub fn new(field: impl Into<String>, code: &'static str, reason: impl Into<String>) -> Problem {
        Problem {
            field: field.into(),
            code,
            reason: reason.into(),
        }
    }
}

const MAX_TEXT: usize = 500;

/// Characters that change how text is shown without being seen: the
/// bidirectional controls (U+202E turns «Иванов» into «вонавИ» on the
/// desk and in an export) and the zero-width ones.
pub fn is_invisible_control(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}' // zero-width space, joiners, LRM, RLM
        | '\u{202A}'..='\u{202E}' // embeddings and overrides
        | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
        | '\u{2066}'..='\u{2069}' // isolates
        | '\u{061C}' // Arabic letter mark
        | '\u{FEFF}' // zero-width no-break space
    )
}

/// Free text a person typed (a complaint, a refusal's reason, a reference):
/// trimmed, at most `max` characters, lines and tabs allowed, no other
/// control and no invisible formatting character. The error never repeats it.
pub fn free_text(field: &str, text: &str, max: usize) -> Result<String, Problem> {
    let t = text.trim();
    if t.chars().count() > max {
        return Err(Problem::new(
            field,
            "too_long",
            format!("at most {max} characters"),
        ));
    }
    if t.chars()
        .any(|c| (c.is_control() && c != '\n' && c != '\t' && c != '\r') || is_invisible_control(c))
    {
        return Err(Problem::new(
            field,
            "invalid_text",
            "control, bidirectional and zero-width characters are not allowed",
        ));
    }
    Ok(t.to_string())
}

fn text_of(v: &Value) -> Result<&str, (&'static str, String)> {
    v.as_str()
        .ok_or(("invalid_type", "a string is expected".to_string()))
}

/// The canonical form of `value` as a field of type `ty`.
pub fn canonical(ty: FieldType, value: &Value) -> Result<String, (&'static str, String)> {
    match ty {
        FieldType::Boolean => value
            .as_bool()
            .map(|b| b.to_string())
            .ok_or(("invalid_type", "true or false is expected".to_string())),
        FieldType::Iin => Iin::parse(text_of(value)?.trim())
            .map(|i| i.to_string())
            .map_err(|e| ("invalid_iin", e.to_string())),
        FieldType::Bin => Bin::parse(text_of(value)?.trim())
            .map(|b| b.to_string())
            .map_err(|e| ("invalid_bin", e.to_string())),
        FieldType::Phone => KzPhone::parse(text_of(value)?)
            .map(|p| p.e164())
            .map_err(|e| ("invalid_phone", e.to_string())),
        FieldType::Iban => KzIban::parse(text_of(value)?)
            .map(|i| i.as_str().to_string())
            .map_err(|e| ("invalid_iban", e.to_string())),
        FieldType::Email => email(text_of(value)?),
        FieldType::Bik => bik(text_of(value)?),
        FieldType::Url => {
            let s = text_of(value)?.trim();
            if (s.starts_with("https://") || s.starts_with("http://"))
                && s.len() <= 2000
                && !s.contains(char::is_whitespace)
            {
                Ok(s.to_string())
            } else {
                Err((
                    "invalid_url",
                    "an http(s) URL of at most 2000 characters is expected".into(),
                ))
            }
        }
        FieldType::IpAddress => text_of(value)?
            .trim()
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.to_string())
            .map_err(|_| {
                (
                    "invalid_ip_address",
                    "an IPv4 or IPv6 address is expected".into(),
                )
            }),
        FieldType::Text => {
            let s = text_of(value)?.trim();
            if s.is_empty() {
                Err(("empty", "must not be empty".into()))
            } else if s.chars().count() > MAX_TEXT {
                Err(("too_long", format!("at most {MAX_TEXT} characters")))
            } else if s.chars().any(|c| c.is_control() || is_invisible_control(c)) {
                Err((
                    "invalid_text",
                    "control, bidirectional and zero-width characters are not allowed".into(),
                ))
            } else {
                Ok(s.to_string())
            }
        }
    }
}

fn email(s: &str) -> Result<String, (&'static str, String)> {
    let s = s.trim();
    let bad = || {
        (
            "invalid_email",
            "an address like name@example.kz is expected".to_string(),
        )
    };
    let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
    let ok = !local.is_empty()
        && local.len() <= 64
        && s.len() <= 254
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && !local.contains('@');
    if ok {
        Ok(format!("{local}@{}", domain.to_lowercase()))
    } else {
        Err(bad())
    }
}

/// A SWIFT BIC as Kazakhstan banks use it: 4 letters, `KZ`, 2 letters or
/// digits, optionally 3 more (e.g. `KCJBKZKX`).
fn bik(s: &str) -> Result<String, (&'static str, String)> {
    let s = s.trim().to_uppercase();
    let b = s.as_bytes();
    let ok = (b.len() == 8 || b.len() == 11)
        && b[..4].iter().all(u8::is_ascii_uppercase)
        && &b[4..6] == b"KZ"
        && b[6..].iter().all(u8::is_ascii_alphanumeric);
    if ok {
        Ok(s)
    } else {
        Err((
            "invalid_bik",
            "a BIC of 8 or 11 characters like KCJBKZKX is expected".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_forms() {
        assert_eq!(
            canonical(FieldType::Phone, &json!("8 (701) 123-45-67")).unwrap(),
            "+77011234567"
        );
        assert_eq!(
            canonical(FieldType::Iin, &json!(" 871008401427 ")).unwrap(),
            "871008401427"
        );
        assert_eq!(
            canonical(FieldType::Email, &json!("Aigerim@Mail.KZ")).unwrap(),
            "Aigerim@mail.kz"
        );
        assert_eq!(
            canonical(FieldType::Bik, &json!("kcjbkzkx")).unwrap(),
            "KCJBKZKX"
        );
        assert_eq!(canonical(FieldType::Boolean, &json!(true)).unwrap(), "true");
        assert_eq!(
            canonical(FieldType::Text, &json!("  Иванова ")).unwrap(),
            "Иванова"
        );
        assert_eq!(
            canonical(FieldType::Iban, &json!("kz86 125K ZT50 0410 0100")).unwrap(),
            "KZ86125KZT5004100100"
        );
    }

    #[test]
    fn refusals_name_a_code_and_never_echo() {
        let cases = [
            (FieldType::Iin, json!("871008401428"), "invalid_iin"),
            (FieldType::Phone, json!("+7 912 000 00 00"), "invalid_phone"),
            (FieldType::Email, json!("no-at-sign"), "invalid_email"),
            (FieldType::Bik, json!("ABCDRUMM"), "invalid_bik"),
            (FieldType::Text, json!(""), "empty"),
            (FieldType::Text, json!("a".repeat(501)), "too_long"),
            (FieldType::Text, json!(12), "invalid_type"),
            (FieldType::Boolean, json!("yes"), "invalid_type"),
            (
                FieldType::IpAddress,
                json!("999.1.1.1"),
                "invalid_ip_address",
            ),
        ];
        for (ty, v, code) in cases {
            let (c, reason) = canonical(ty, &v).unwrap_err();
            assert_eq!(c, code, "{v}");
            if let Some(s) = v.as_str() {
                assert!(s.is_empty() || !reason.contains(s), "{reason}");
            }
        }
    }

    #[test]
    fn invisible_formatting_is_refused_in_every_text() {
        // U+202E would show «Иванов» reversed on the desk and in an export.
        for c in [
            '\u{202E}', '\u{202D}', '\u{2066}', '\u{200B}', '\u{200D}', '\u{FEFF}', '\u{061C}',
        ] {
            let spoof = format!("Иванов{c}вокс");
            let (code, reason) = canonical(FieldType::Text, &json!(spoof)).unwrap_err();
            assert_eq!(code, "invalid_text");
            assert!(!reason.contains("Иванов"));
            assert_eq!(
                free_text("text", &spoof, 100).unwrap_err().code,
                "invalid_text"
            );
        }
        // Lines and ordinary letters of any script are text.
        assert_eq!(
            free_text("text", "  Жалоба:\nқазақша, русский, English\t1 ", 100).unwrap(),
            "Жалоба:\nқазақша, русский, English\t1"
        );
        assert_eq!(
            free_text("t", &"я".repeat(11), 10).unwrap_err().code,
            "too_long"
        );
    }
}
