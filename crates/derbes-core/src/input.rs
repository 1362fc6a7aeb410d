//! JSON input as derbes reads it, at every door that takes JSON: control
//! characters refused before parsing, integral numbers read as integers,
//! and errors that name the structure (a field, a position) but never echo
//! a submitted value — it may be personal data.

use serde::de::DeserializeOwned;

/// Why a JSON input was refused; nothing in it comes from the input's
/// values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonInputError {
    /// Nothing was sent.
    Empty,
    /// A control character (NUL above all) at this byte.
    Control(usize),
    /// Not the expected JSON: which field (or `body`) and why.
    Invalid { field: String, reason: String },
}

/// Read `bytes` as a `T`: refused if empty or holding control characters;
/// a number with no fractional part (`30.0`) is the integer it is, as JSON
/// Schema's `integer` means it.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, JsonInputError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(JsonInputError::Empty);
    }
    if let Some(at) = forbidden_control(bytes) {
        return Err(JsonInputError::Control(at));
    }
    serde_json::from_slice(bytes)
        .or_else(|e| {
            // Read again with integral numbers made integers; if that fails
            // too, the first error (it knows where) is the one to report.
            let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(bytes) else {
                return Err(e);
            };
            if integral_numbers(&mut v) == 0 {
                return Err(e);
            }
            serde_json::from_value(v).map_err(|_| e)
        })
        .map_err(|e| {
            let (field, reason) = describe(&e);
            JsonInputError::Invalid { field, reason }
        })
}

/// A safe description of a deserialisation error: the structure (unknown or
/// missing field names), never the values.
pub fn describe(e: &serde_json::Error) -> (String, String) {
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
    // An unknown name is never echoed: it may be the datum itself, and it
    // is as long as the sender likes.
    if msg.starts_with("unknown field `") {
        // The allowed names close the message (after the sender's name, so
        // the last `expected` is serde's own); say them if they are names.
        let expected = msg
            .rsplit_once("`, expected ")
            .map(|(_, rest)| rest.split(" at line").next().unwrap_or_default())
            .filter(|e| {
                e.len() <= 400
                    && e.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._`, ".contains(c))
            })
            .map(|e| format!("; expected {e}"))
            .unwrap_or_default();
        return (
            "body".into(),
            format!("a field is not one of this operation's ({at}){expected}"),
        );
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

/// The position of a character no text may carry, as JSON writes it: a raw
/// control byte, or a `\u` escape of a C0 control other than tab, line
/// feed and carriage return (NUL above all: PostgreSQL cannot store it).
pub fn forbidden_control(json: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'\\' if json.get(i + 1) == Some(&b'u') => {
                let code = json
                    .get(i + 2..i + 6)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u32::from_str_radix(h, 16).ok());
                if code.is_some_and(|c| c < 0x20 && ![0x09, 0x0a, 0x0d].contains(&c)) {
                    return Some(i);
                }
                i += 6;
            }
            b'\\' => i += 2,
            b if b < 0x20 && ![b'\t', b'\n', b'\r'].contains(&b) => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Make every number with no fractional part (`30.0`) an integer; how many
/// there were.
pub fn integral_numbers(v: &mut serde_json::Value) -> usize {
    match v {
        serde_json::Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if f.fract() == 0.0 && f.abs() < 9.0e15 {
                *v = serde_json::Value::from(f as i64);
                1
            } else {
                0
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().map(integral_numbers).sum(),
        serde_json::Value::Object(o) => o.values_mut().map(integral_numbers).sum(),
        _ => 0,
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
        let e = serde_json::from_str::<T>(r#"{"flag": true, "871008401427": 1}"#).unwrap_err();
        let (field, reason) = describe(&e);
        assert_eq!(field, "body");
        assert!(
            !reason.contains("871008401427") && reason.ends_with("expected `flag`"),
            "{reason}"
        );
        let e = serde_json::from_str::<T>(r#"{"flag": true, "x`, expected `iin`, `y": 1}"#)
            .unwrap_err();
        assert!(
            describe(&e).1.ends_with("expected `flag`"),
            "{:?}",
            describe(&e)
        );
        let e = serde_json::from_str::<T>(r#"{}"#).unwrap_err();
        assert_eq!(describe(&e).0, "flag");
        let e = serde_json::from_str::<T>(r#"{"flag": tru"#).unwrap_err();
        assert!(describe(&e).1.starts_with("not valid JSON"));
    }

    #[test]
    fn integral_numbers_are_integers() {
        let mut v = serde_json::json!({"a": 30.0, "b": [1.5, 2.0], "c": "3.0"});
        assert_eq!(integral_numbers(&mut v), 2);
        assert_eq!(v, serde_json::json!({"a": 30, "b": [1.5, 2], "c": "3.0"}));
    }

    #[test]
    fn finds_control_characters_as_json_writes_them() {
        for bad in [
            r#"{"a":"x\u0000"}"#,
            r#"{"a":"\u001F"}"#,
            "{\"a\":\"\u{1}\"}",
            r#"["\\\u0000"]"#,
        ] {
            assert!(forbidden_control(bad.as_bytes()).is_some(), "{bad}");
        }
        for good in [
            r#"{"a":"x\\u0000"}"#,
            r#"{"a":"\n\t\u000a\u0041"}"#,
            "{\n\"a\": 1}\r\n",
            r#"{"a":"\u"}"#,
        ] {
            assert!(forbidden_control(good.as_bytes()).is_none(), "{good}");
        }
    }
}
