//! Kazakhstan telephone numbers, normalised to E.164.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("a phone number may contain only digits, spaces, +, -, ( and ); character {0} is not allowed")]
    Character(usize),
    #[error("a + may only lead the number")]
    Plus,
    #[error("expected a Kazakhstan number: +7, 8 or 7 followed by 10 digits, or 10 digits, found {0} digits")]
    Length(usize),
    #[error("a Kazakhstan national number starts with 7 (other +7 numbers are Russian)")]
    NotKazakhstan,
    #[error("a number written with a leading + must start +7")]
    Country,
}

/// A Kazakhstan telephone number: `+7` and a 10-digit national number starting
/// with 7.
///
/// ```
/// use derbes_kz::KzPhone;
/// for input in ["8 (701) 123-45-67", "+7(701)123-45-67", "77011234567", "7011234567"] {
///     assert_eq!(input.parse::<KzPhone>().unwrap().e164(), "+77011234567");
/// }
/// assert!("+7 912 123 45 67".parse::<KzPhone>().is_err()); // a Russian number
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KzPhone {
    /// The 10-digit national significant number.
    national: [u8; 10],
}

impl KzPhone {
    pub fn parse(input: &str) -> Result<Self, PhoneError> {
        let mut digits: Vec<u8> = Vec::with_capacity(12);
        let mut plus = false;
        for (i, c) in input.trim().chars().enumerate() {
            match c {
                '0'..='9' => digits.push(c as u8 - b'0'),
                ' ' | '-' | '(' | ')' | '\u{a0}' | '.' => {}
                '+' if i == 0 => plus = true,
                '+' => return Err(PhoneError::Plus),
                _ => return Err(PhoneError::Character(i + 1)),
            }
        }
        let national: &[u8] = match (plus, digits.len()) {
            (true, 11) if digits[0] == 7 => &digits[1..],
            (true, _) if digits.first() != Some(&7) => return Err(PhoneError::Country),
            (true, n) => return Err(PhoneError::Length(n)),
            (false, 11) if digits[0] == 7 || digits[0] == 8 => &digits[1..],
            (false, 10) => &digits[..],
            (false, n) => return Err(PhoneError::Length(n)),
        };
        if national[0] != 7 {
            return Err(PhoneError::NotKazakhstan);
        }
        let mut out = [0u8; 10];
        out.copy_from_slice(national);
        Ok(KzPhone { national: out })
    }

    /// `+7` followed by the 10-digit national number.
    pub fn e164(&self) -> String {
        let mut s = String::with_capacity(12);
        s.push_str("+7");
        for d in self.national {
            s.push(char::from(b'0' + d));
        }
        s
    }

    /// Mobile operators' ranges (70x, 747, 75x, 76x, 771, 775-778).
    pub fn is_mobile(&self) -> bool {
        let n = &self.national;
        matches!(
            (n[1], n[2]),
            (0, _) | (4, 7) | (5, _) | (6, _) | (7, 1) | (7, 5..=8)
        )
    }
}

impl FromStr for KzPhone {
    type Err = PhoneError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KzPhone::parse(s)
    }
}

impl fmt::Display for KzPhone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.e164())
    }
}

/// A phone number is personal data: Debug hides it.
impl fmt::Debug for KzPhone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KzPhone(<redacted>)")
    }
}

impl Serialize for KzPhone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.e164())
    }
}

impl<'de> Deserialize<'de> for KzPhone {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        KzPhone::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn table() {
        for ok in [
            "8 (701) 123-45-67",
            "+7(701)123-45-67",
            "+7 701 123 45 67",
            "77011234567",
            "87011234567",
            "7011234567",
            " +77011234567 ",
        ] {
            assert_eq!(KzPhone::parse(ok).unwrap().e164(), "+77011234567", "{ok}");
        }
        assert_eq!(
            KzPhone::parse("+7 727 250 00 00").unwrap().e164(),
            "+77272500000"
        );
        assert!(!KzPhone::parse("+7 727 250 00 00").unwrap().is_mobile());
        assert!(KzPhone::parse("8 701 123 45 67").unwrap().is_mobile());
        assert_eq!(
            KzPhone::parse("+7 912 123 45 67"),
            Err(PhoneError::NotKazakhstan)
        );
        assert_eq!(KzPhone::parse("+1 212 555 0100"), Err(PhoneError::Country));
        assert_eq!(
            KzPhone::parse("+7 701 123 45 6"),
            Err(PhoneError::Length(10))
        );
        assert_eq!(KzPhone::parse("701-123"), Err(PhoneError::Length(6)));
        assert_eq!(KzPhone::parse("7o11234567"), Err(PhoneError::Character(2)));
        assert_eq!(KzPhone::parse("7701+1234567"), Err(PhoneError::Plus));
        assert_eq!(KzPhone::parse(""), Err(PhoneError::Length(0)));
    }

    proptest! {
        #[test]
        fn formats_agree(rest in "[0-9]{9}") {
            let national = format!("7{rest}");
            let a = KzPhone::parse(&format!("8{national}")).unwrap();
            let b = KzPhone::parse(&format!("+7 ({}) {}-{}", &national[..3], &national[3..6], &national[6..])).unwrap();
            let c = KzPhone::parse(&national).unwrap();
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(&a, &c);
            prop_assert_eq!(a.e164(), format!("+7{national}"));
            prop_assert_eq!(KzPhone::parse(&a.e164()).unwrap(), a);
        }

        #[test]
        fn never_panics(s in "\\PC{0,24}") {
            let _ = KzPhone::parse(&s);
        }
    }
}
