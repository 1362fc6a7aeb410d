//! Kazakhstan IBAN (ISO 13616): `KZ`, 2 check digits, 3-digit bank code, 13 more.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IbanError {
    #[error("a KZ IBAN has 20 characters, this has {0}")]
    Length(usize),
    #[error("a KZ IBAN starts with KZ")]
    Country,
    #[error("character {0} is not a letter or digit")]
    Character(usize),
    #[error("characters 3-4 (check digits) must be digits")]
    CheckDigits,
    #[error("characters 5-7 (bank code) must be digits")]
    BankCode,
    #[error("the ISO 13616 mod-97 check fails")]
    Checksum,
}

/// A valid KZ IBAN, stored in its electronic form (upper case, no spaces).
///
/// ```
/// use derbes_kz::KzIban;
/// let iban: KzIban = "KZ86 125K ZT50 0410 0100".parse().unwrap();
/// assert_eq!(iban.as_str(), "KZ86125KZT5004100100");
/// assert_eq!(iban.bank_code(), "125");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KzIban {
    text: String,
}

impl KzIban {
    /// Parse an IBAN; spaces are ignored and letters may be lower case.
    pub fn parse(input: &str) -> Result<Self, IbanError> {
        let mut text = String::with_capacity(20);
        for (i, c) in input.chars().filter(|c| *c != ' ').enumerate() {
            if !c.is_ascii_alphanumeric() {
                return Err(IbanError::Character(i + 1));
            }
            text.push(c.to_ascii_uppercase());
        }
        if text.len() != 20 {
            return Err(IbanError::Length(text.len()));
        }
        let b = text.as_bytes();
        if &b[..2] != b"KZ" {
            return Err(IbanError::Country);
        }
        if !b[2..4].iter().all(u8::is_ascii_digit) {
            return Err(IbanError::CheckDigits);
        }
        if !b[4..7].iter().all(u8::is_ascii_digit) {
            return Err(IbanError::BankCode);
        }
        if mod97(b[4..].iter().chain(&b[..4])) != 1 {
            return Err(IbanError::Checksum);
        }
        Ok(KzIban { text })
    }

    /// Build a valid IBAN from a 3-digit bank code and a 13-character account
    /// part (digits and capital letters), computing the check digits.
    pub fn from_parts(bank_code: &str, account: &str) -> Result<Self, IbanError> {
        let body = format!("{bank_code}{account}KZ00");
        if !body
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        {
            return Err(IbanError::Character(5));
        }
        let check = 98 - mod97(body.as_bytes().iter());
        KzIban::parse(&format!("KZ{check:02}{bank_code}{account}"))
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The 3-digit bank code (characters 5-7).
    pub fn bank_code(&self) -> &str {
        &self.text[4..7]
    }
}

/// ISO 7064 mod 97-10 over the rearranged IBAN, letters as 10..35.
fn mod97<'a>(chars: impl Iterator<Item = &'a u8>) -> u32 {
    let mut r: u32 = 0;
    for &c in chars {
        if c.is_ascii_digit() {
            r = (r * 10 + u32::from(c - b'0')) % 97;
        } else {
            let v = u32::from(c - b'A') + 10;
            r = (r * 100 + v) % 97;
        }
    }
    r
}

impl FromStr for KzIban {
    type Err = IbanError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KzIban::parse(s)
    }
}

impl fmt::Display for KzIban {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A bank account can identify an individual entrepreneur: Debug hides it.
impl fmt::Debug for KzIban {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KzIban(bank {}, <redacted>)", self.bank_code())
    }
}

impl Serialize for KzIban {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for KzIban {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        KzIban::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn make(bank: &str, rest: &str) -> String {
        KzIban::from_parts(bank, rest).unwrap().as_str().to_string()
    }

    #[test]
    fn table() {
        assert!(KzIban::parse("KZ86125KZT5004100100").is_ok());
        assert!(KzIban::parse("kz86125kzt5004100100").is_ok());
        assert_eq!(
            KzIban::parse("KZ87125KZT5004100100"),
            Err(IbanError::Checksum)
        );
        assert_eq!(
            KzIban::parse("DE86125KZT5004100100"),
            Err(IbanError::Country)
        );
        assert_eq!(
            KzIban::parse("KZ86125KZT500410010"),
            Err(IbanError::Length(19))
        );
        assert_eq!(
            KzIban::parse("KZ8612-KZT5004100100"),
            Err(IbanError::Character(7))
        );
        assert_eq!(
            KzIban::parse("KZ86A25KZT5004100100"),
            Err(IbanError::BankCode)
        );
        assert_eq!(
            KzIban::parse("KZX6125KZT5004100100"),
            Err(IbanError::CheckDigits)
        );
        assert_eq!(
            KzIban::parse("KZ86125KZT5004100100").unwrap().bank_code(),
            "125"
        );
    }

    proptest! {
        #[test]
        fn generated_ibans_validate_and_single_changes_fail(bank in "[0-9]{3}", rest in "[0-9A-Z]{13}", pos in 4usize..20, ch in "[0-9A-Z]") {
            let iban = make(&bank, &rest);
            prop_assert!(KzIban::parse(&iban).is_ok(), "{}", iban);
            let mut bytes = iban.clone().into_bytes();
            let c = ch.as_bytes()[0];
            if bytes[pos] != c && bytes[pos].is_ascii_digit() == c.is_ascii_digit() {
                bytes[pos] = c;
                let changed = String::from_utf8(bytes).unwrap();
                // mod 97 catches every substitution of a digit for a digit or a letter for a letter.
                prop_assert!(KzIban::parse(&changed).is_err(), "{}", changed);
            }
        }

        #[test]
        fn never_panics(s in "\\PC{0,30}") {
            let _ = KzIban::parse(&s);
        }
    }
}
