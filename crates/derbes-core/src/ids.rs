//! Identifiers. A subject id names a person without saying anything about
//! them: it is a random-ordered UUIDv7 and may appear in URLs and audit records.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident, $what:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(uuid::Uuid);

        impl $name {
            /// A new, unique id.
            pub fn new() -> $name {
                $name(uuid::Uuid::now_v7())
            }

            pub fn parse(s: &str) -> Result<$name, IdError> {
                uuid::Uuid::try_parse(s.trim())
                    .map($name)
                    .map_err(|_| IdError($what))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name::new()
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, Type};
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::Custom("uuid".into())))
                    .description(Some($what))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// Why a string is not an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {0} (a UUID is expected)")]
pub struct IdError(pub &'static str);

id_type!(
    /// A data subject (a user or the principal they act for).
    SubjectId,
    "subject id"
);
id_type!(
    /// One consent in the ledger.
    ConsentId,
    "consent id"
);
id_type!(
    /// An organisation a user acts for (its data is not personal data).
    OrganizationId,
    "organization id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        let a = SubjectId::new();
        assert_eq!(SubjectId::parse(&a.to_string()).unwrap(), a);
        assert!(SubjectId::parse("871008401427").is_err());
        assert_eq!(
            SubjectId::parse("x").unwrap_err().to_string(),
            "not a valid subject id (a UUID is expected)"
        );
        assert_ne!(SubjectId::new(), SubjectId::new());
    }
}
