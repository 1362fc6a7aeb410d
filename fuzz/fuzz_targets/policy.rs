//! The policy loader: any text is a policy or a list of problems with
//! positions, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = derbes_policy::LoadedPolicy::from_text(text.to_string());
    }
});
