//! Technical data (policy clause 3.2): server logs and app events turned into
//! depersonalised usage statistics. Client addresses become pseudonyms under
//! a key that changes every day and is destroyed when the day's window
//! closes; nothing that names a person is kept.

pub mod aggregate;
pub mod classify;
pub mod content;
pub mod follow;
pub mod ingest;
pub mod parse;
pub mod pseudonym;
pub mod report;

pub use parse::{parse_line, Format, Hit, Malformed};
