//! The privacy policy as data.
//!
//! `policy/ibusiness.toml` holds the published text of the policy block by
//! block (Russian original, English translation) and, beside it, what the
//! engine needs: operations, purposes with their categories and retention,
//! recipients, rights with deadlines, consent kinds and the registration form.
//! [`Policy::parse`] validates all of it and reports every problem with its
//! line and column.
//!
//! ```
//! use derbes_policy::{Policy, Lang, render, Format};
//! let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../policy/ibusiness.toml")).unwrap();
//! let policy = Policy::parse(&text).unwrap();
//! assert_eq!(policy.operator.bin.to_string(), "220440001087");
//! assert_eq!(policy.deadlines.withdrawal, 1);
//! let marketing = policy.purpose("marketing").unwrap();
//! assert!(marketing.allows_category("contact"));
//! let ru = render(&policy, Lang::Ru, Format::Markdown);
//! assert!(ru.contains("Цели сбора персональной информации"));
//! assert!(Policy::parse("schema = 2").is_err());
//! ```

mod diff;
mod model;
mod raw;
mod render;
mod validate;
pub mod vocab;

use std::fmt;
use std::path::Path;

pub use diff::{diff, reconsent_changes, Change, ChangeKind};
pub use model::*;
pub use render::{esc as html_escape, render, Format};
pub use vocab::*;

/// One problem in a policy file, with its position (1-based).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Every problem found in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// One line per problem: `origin:line:column: message`.
    pub fn report(&self, origin: &str) -> String {
        self.0
            .iter()
            .map(|p| format!("{origin}:{}:{}: {}", p.line, p.column, p.message))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.report("policy"))
    }
}

impl std::error::Error for Problems {}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", .problems.report(.path))]
    Invalid { path: String, problems: Problems },
}

impl Policy {
    /// Parse and validate a policy file's text.
    pub fn parse(source: &str) -> Result<Policy, Problems> {
        let raw: raw::RawPolicyFile = toml::from_str(source).map_err(|e| {
            let (line, column) = validate::line_col(source, e.span().map(|s| s.start).unwrap_or(0));
            Problems(vec![Problem {
                line,
                column,
                message: e.message().trim().to_string(),
            }])
        })?;
        validate::validate(source, raw)
    }
}

/// A policy read from a file, with the text it came from and that text's
/// SHA-256 (what the store publishes and consents refer to). Built only from
/// the text, so the three always agree.
#[derive(Debug, Clone)]
pub struct LoadedPolicy {
    policy: Policy,
    text: String,
    sha256: String,
}

impl LoadedPolicy {
    /// The validated model.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The file's text, exactly as read.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Lowercase hex SHA-256 of the text.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn from_text(text: String) -> Result<LoadedPolicy, Problems> {
        let policy = Policy::parse(&text)?;
        let sha256 = sha256_hex(text.as_bytes());
        Ok(LoadedPolicy {
            policy,
            text,
            sha256,
        })
    }

    pub fn load(path: &Path) -> Result<LoadedPolicy, LoadError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
            path: shown.clone(),
            source,
        })?;
        LoadedPolicy::from_text(text).map_err(|problems| LoadError::Invalid {
            path: shown,
            problems,
        })
    }
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// Lowercase hex of `bytes` (a token's digest is hashed and written out on
/// every authenticated request: a table, not a `format!` per byte).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

#[cfg(test)]
mod hex_tests {
    use super::{hex, sha256_hex};

    #[test]
    fn hex_writes_every_byte_as_two_lowercase_digits() {
        let all: Vec<u8> = (0..=255).collect();
        let expected: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex(&all), expected);
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn sha256_hex_is_the_known_digest() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
