//! JSON bodies as every door reads them (`derbes_core::input`): never a
//! panic; a refusal names a field or `body` and says why in bounded words
//! that never carry a submitted value.
#![no_main]

use derbes_core::input::{parse_json, JsonInputError};
use derbes_core::registration::RegistrationRequest;
use libfuzzer_sys::fuzz_target;

fn check(data: &[u8], e: JsonInputError) {
    if let JsonInputError::Invalid { field, reason } = e {
        assert!(field.len() <= 64, "field name of {} bytes", field.len());
        assert!(
            field
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._[]".contains(c)),
            "field {field:?}"
        );
        assert!(reason.len() <= 600, "reason of {} bytes", reason.len());
        // A value the sender wrote between quotes (with a digit in it, as
        // an IIN or a phone has; the operation's own field names have none)
        // never comes back.
        for quoted in data.split(|b| *b == b'"').skip(1).step_by(2) {
            if quoted.len() >= 8
                && quoted.iter().all(u8::is_ascii_alphanumeric)
                && quoted.iter().any(u8::is_ascii_digit)
            {
                let q = String::from_utf8_lossy(quoted);
                assert!(
                    !reason.contains(q.as_ref()) && !field.contains(q.as_ref()),
                    "echoed {q}"
                );
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Err(e) = parse_json::<RegistrationRequest>(data) {
        check(data, e);
    }
    if let Err(e) = parse_json::<serde_json::Value>(data) {
        check(data, e);
    }
});
