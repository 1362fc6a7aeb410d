//! IIN, BIN, IBAN and phone parsers: never a panic; what parses, prints in
//! its canonical form, which parses to the same value; an error never
//! carries the input.
#![no_main]

use derbes_kz::{Bin, Iin, KzIban, KzPhone};
use libfuzzer_sys::fuzz_target;

fn no_echo(input: &str, error: &str) {
    let digits: String = input.chars().filter(char::is_ascii_digit).collect();
    if digits.len() >= 6 {
        assert!(!error.contains(&digits), "an error echoed the input");
    }
}

/// Parse `s` as `$t`: a value prints as a string that parses back to it;
/// an error says nothing of `s`.
macro_rules! round_trip {
    ($t:ty, $s:expr) => {
        match <$t>::parse($s) {
            Ok(v) => assert_eq!(<$t>::parse(&v.to_string()).ok(), Some(v)),
            Err(e) => no_echo($s, &e.to_string()),
        }
    };
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    round_trip!(Iin, s);
    round_trip!(Bin, s);
    round_trip!(KzIban, s);
    round_trip!(KzPhone, s);
});
