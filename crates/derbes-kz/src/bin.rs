//! Business identification number (БИН).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::checksum::{check_digit, first_eleven, twelve_digits, DigitsError};

/// Digit 5 of a BIN: the kind of entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityType {
    /// 4: a legal entity resident in Kazakhstan.
    ResidentLegalEntity,
    /// 5: a non-resident legal entity.
    NonResidentLegalEntity,
    /// 6: a joint individual entrepreneurship.
    JointIndividualEntrepreneurship,
}

impl EntityType {
    pub fn as_str(self) -> &'static str {
        match self {
            EntityType::ResidentLegalEntity => "resident_legal_entity",
            EntityType::NonResidentLegalEntity => "non_resident_legal_entity",
            EntityType::JointIndividualEntrepreneurship => "joint_individual_entrepreneurship",
        }
    }
}

/// Digit 6 of a BIN: which part of the entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attribute {
    HeadOffice,
    Branch,
    RepresentativeOffice,
    PeasantFarm,
}

impl Attribute {
    pub fn as_str(self) -> &'static str {
        match self {
            Attribute::HeadOffice => "head_office",
            Attribute::Branch => "branch",
            Attribute::RepresentativeOffice => "representative_office",
            Attribute::PeasantFarm => "peasant_farm",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BinError {
    #[error("a BIN has 12 digits, this has {0} characters")]
    Length(usize),
    #[error("character {0} is not a digit")]
    NotDigit(usize),
    #[error("digits 3-4 must be a month 01-12, found {0:02}")]
    Month(u8),
    #[error("digit 5 (entity type) must be 4, 5 or 6, found {0}")]
    EntityType(u8),
    #[error("digit 6 (attribute) must be 0 to 3, found {0}")]
    Attribute(u8),
    #[error("the check digit cannot be computed for these digits (the second pass gives 10)")]
    Uncheckable,
    #[error("the check digit (digit 12) does not match the other digits")]
    CheckDigit,
}

impl From<DigitsError> for BinError {
    fn from(e: DigitsError) -> Self {
        match e {
            DigitsError::Length(n) => BinError::Length(n),
            DigitsError::NotDigit(i) => BinError::NotDigit(i),
        }
    }
}

/// A valid BIN.
///
/// ```
/// use derbes_kz::{Bin, EntityType, Attribute};
/// let bin: Bin = "940140000385".parse().unwrap();
/// assert_eq!(bin.registered(), (1994, 1));
/// assert_eq!(bin.entity_type(), EntityType::ResidentLegalEntity);
/// assert_eq!(bin.attribute(), Attribute::HeadOffice);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bin {
    digits: [u8; 12],
}

impl Bin {
    pub fn parse(input: &str) -> Result<Self, BinError> {
        let digits = twelve_digits(input)?;
        let month = digits[2] * 10 + digits[3];
        if !(1..=12).contains(&month) {
            return Err(BinError::Month(month));
        }
        entity_type(digits[4])?;
        attribute(digits[5])?;
        match check_digit(&first_eleven(&digits)) {
            None => Err(BinError::Uncheckable),
            Some((c, _)) if c != digits[11] => Err(BinError::CheckDigit),
            Some(_) => Ok(Bin { digits }),
        }
    }

    /// Build a BIN from its parts (for synthetic test data): registration
    /// year (1990-2089) and month, entity type, attribute and a 5-digit serial.
    /// Fails when these digits have no check digit (try another serial).
    pub fn from_parts(
        year: i32,
        month: u32,
        entity: EntityType,
        attribute: Attribute,
        serial: u32,
    ) -> Result<Bin, BinError> {
        if !(1..=12).contains(&month) {
            return Err(BinError::Month(month as u8));
        }
        let yy = (year.rem_euclid(100)) as u8;
        let e = match entity {
            EntityType::ResidentLegalEntity => 4,
            EntityType::NonResidentLegalEntity => 5,
            EntityType::JointIndividualEntrepreneurship => 6,
        };
        let a = match attribute {
            Attribute::HeadOffice => 0,
            Attribute::Branch => 1,
            Attribute::RepresentativeOffice => 2,
            Attribute::PeasantFarm => 3,
        };
        let s = serial % 100_000;
        let eleven = [
            yy / 10,
            yy % 10,
            (month / 10) as u8,
            (month % 10) as u8,
            e,
            a,
            (s / 10_000) as u8,
            (s / 1000 % 10) as u8,
            (s / 100 % 10) as u8,
            (s / 10 % 10) as u8,
            (s % 10) as u8,
        ];
        let (check, _) = check_digit(&eleven).ok_or(BinError::Uncheckable)?;
        let mut digits = [0u8; 12];
        digits[..11].copy_from_slice(&eleven);
        digits[11] = check;
        Ok(Bin { digits })
    }

    /// Registration year and month. Two-digit years 90-99 are 1990s (registration
    /// in independent Kazakhstan began in the 1990s), 00-89 are 2000-2089.
    pub fn registered(&self) -> (i32, u32) {
        let yy = i32::from(self.digits[0]) * 10 + i32::from(self.digits[1]);
        let year = if yy >= 90 { 1900 + yy } else { 2000 + yy };
        let month = u32::from(self.digits[2]) * 10 + u32::from(self.digits[3]);
        (year, month)
    }

    pub fn entity_type(&self) -> EntityType {
        // Validated in parse; the fallback is never reached.
        entity_type(self.digits[4]).unwrap_or(EntityType::ResidentLegalEntity)
    }

    pub fn attribute(&self) -> Attribute {
        attribute(self.digits[5]).unwrap_or(Attribute::HeadOffice)
    }
}

fn entity_type(d: u8) -> Result<EntityType, BinError> {
    match d {
        4 => Ok(EntityType::ResidentLegalEntity),
        5 => Ok(EntityType::NonResidentLegalEntity),
        6 => Ok(EntityType::JointIndividualEntrepreneurship),
        other => Err(BinError::EntityType(other)),
    }
}

fn attribute(d: u8) -> Result<Attribute, BinError> {
    match d {
        0 => Ok(Attribute::HeadOffice),
        1 => Ok(Attribute::Branch),
        2 => Ok(Attribute::RepresentativeOffice),
        3 => Ok(Attribute::PeasantFarm),
        other => Err(BinError::Attribute(other)),
    }
}

impl FromStr for Bin {
    type Err = BinError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Bin::parse(s)
    }
}

impl fmt::Display for Bin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in self.digits {
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// A BIN identifies an organisation, not a person, so Debug may show it.
impl fmt::Debug for Bin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bin({self})")
    }
}

impl Serialize for Bin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Bin {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Bin::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn table() {
        let ok = Bin::parse("940140000385").unwrap();
        assert_eq!(ok.registered(), (1994, 1));
        assert_eq!(ok.entity_type().as_str(), "resident_legal_entity");
        assert_eq!(ok.attribute().as_str(), "head_office");
        // The operator of the seed policy.
        let op = Bin::parse("220440001087").unwrap();
        assert_eq!(op.registered(), (2022, 4));
        assert_eq!(Bin::parse("940140000386"), Err(BinError::CheckDigit));
        assert_eq!(Bin::parse("941340000385"), Err(BinError::Month(13)));
        assert_eq!(Bin::parse("940040000385"), Err(BinError::Month(0)));
        assert_eq!(Bin::parse("940170000385"), Err(BinError::EntityType(7)));
        assert_eq!(Bin::parse("940144000385"), Err(BinError::Attribute(4)));
        assert_eq!(Bin::parse("9401400003"), Err(BinError::Length(10)));
        assert_eq!(Bin::parse("94014000038O"), Err(BinError::NotDigit(12)));
    }

    proptest! {
        #[test]
        fn built_bins_parse_back(year in 1990i32..2089, month in 1u32..=12, serial in 0u32..100_000) {
            if let Ok(b) = Bin::from_parts(year, month, EntityType::ResidentLegalEntity, Attribute::Branch, serial) {
                let back = Bin::parse(&b.to_string()).unwrap();
                prop_assert_eq!(back.registered(), (year, month));
                prop_assert_eq!(back.attribute(), Attribute::Branch);
            }
        }

        #[test]
        fn never_panics(s in "[0-9]{0,14}|\\PC{0,14}") {
            if let Ok(bin) = Bin::parse(&s) {
                prop_assert_eq!(bin.to_string(), s);
            }
        }
    }
}
