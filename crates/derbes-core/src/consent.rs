//! The consent ledger's records, their state over time, and receipts.
//!
//! A record says everything the Law asks of a consent: the operator (name,
//! BIN), the subject, the policy version accepted (and so the list of data),
//! the operations and purposes, third-party and cross-border transfer, no
//! publication, how long it lasts, and the evidence of how it was given.
//! Records are never changed: a withdrawal is a separate fact appended later.

use std::borrow::Cow;

use chrono::{DateTime, Months, NaiveDate, Utc};
use derbes_policy::{Channel, ConsentKind, ContactKind, LoadedPolicy, Operation};
use serde::{Deserialize, Serialize};

use crate::ids::{ConsentId, SubjectId};
use crate::value::Problem;

/// How the consent reached the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CollectedVia {
    InApp,
    Web,
    Written,
    CallCentre,
}

/// Evidence supplied with a consent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EvidenceInput {
    pub collected_via: Option<CollectedVia>,
    /// The app's version string, e.g. `3.2.1`.
    pub app_version: Option<String>,
    /// The client's IP address; stored only as a keyed pseudonym.
    pub client_address: Option<String>,
}

/// A consent as the app submits it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConsentRequest {
    pub kind: ConsentKind,
    /// The policy version shown to the user; must be the one in force.
    pub policy_version: Option<String>,
    /// Marketing consent is per channel.
    pub channel: Option<Channel>,
    /// Transfer to third parties (policy acceptance covers it unless refused).
    pub third_party: Option<bool>,
    /// Cross-border transfer (policy acceptance covers it unless refused).
    pub cross_border: Option<bool>,
    /// Cookie consent only: months until it expires (at most the policy's limit).
    pub expires_in_months: Option<u32>,
    /// Policy consent: the subject asks to be told of every transfer to a third party.
    pub notify_of_transfers: Option<bool>,
    #[serde(default)]
    pub evidence: EvidenceInput,
}

/// A consent in the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsentRecord {
    pub consent_id: ConsentId,
    pub subject_id: SubjectId,
    pub kind: ConsentKind,
    pub policy_version: String,
    pub policy_sha256: String,
    pub operations: Vec<Operation>,
    pub purposes: Vec<String>,
    /// The data categories the purposes use: "the list of data".
    pub categories: Vec<String>,
    pub channel: Option<Channel>,
    pub third_party: bool,
    pub cross_border: bool,
    #[serde(default)]
    pub notify_of_transfers: bool,
    pub collected_via: CollectedVia,
    pub app_version: Option<String>,
    pub client_pseudonym: Option<String>,
    pub given_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub withdrawn_at: Option<DateTime<Utc>>,
    pub receipt_sha256: String,
}

/// Where a consent stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConsentState {
    Active,
    Expired,
    Withdrawn,
}

impl ConsentRecord {
    pub fn state(&self, now: DateTime<Utc>) -> ConsentState {
        state_at(self.withdrawn_at, self.expires_at, now)
    }

    /// What a decision reads of this consent.
    pub fn terms(&self) -> ConsentTerms<'_> {
        ConsentTerms {
            consent_id: Cow::Owned(self.consent_id.to_string()),
            kind: self.kind,
            channel: self.channel,
            purposes: Purposes::Record(&self.purposes),
            policy_sha256: &self.policy_sha256,
            third_party: self.third_party,
            cross_border: self.cross_border,
            notify_of_transfers: self.notify_of_transfers,
            given_at: self.given_at,
            expires_at: self.expires_at,
            withdrawn_at: self.withdrawn_at,
        }
    }
}

fn state_at(
    withdrawn_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> ConsentState {
    if withdrawn_at.is_some_and(|w| w <= now) {
        ConsentState::Withdrawn
    } else if expires_at.is_some_and(|e| e <= now) {
        ConsentState::Expired
    } else {
        ConsentState::Active
    }
}

/// What decisions read of a consent: its terms, without the operator, the
/// evidence and the receipt. The ledger stores them beside the record as
/// one short line ([`ConsentTerms::line`], ~150 bytes against the record's
/// ~1,200 of JSON), so deciding for an audience reads and parses a tenth of
/// what the records would take. The withdrawal is not in the line: records
/// are never changed, a withdrawal is a row of its own. The terms borrow
/// what they were read from — the line or the record — so deciding for a
/// subject allocates nothing per consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentTerms<'a> {
    pub consent_id: Cow<'a, str>,
    pub kind: ConsentKind,
    pub channel: Option<Channel>,
    pub purposes: Purposes<'a>,
    pub policy_sha256: &'a str,
    pub third_party: bool,
    pub cross_border: bool,
    pub notify_of_transfers: bool,
    pub given_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub withdrawn_at: Option<DateTime<Utc>>,
}

/// A consent's purposes, as its terms line lists them (comma-separated)
/// or as its record does; equal when they name the same purposes in the
/// same order.
#[derive(Debug, Clone, Copy)]
pub enum Purposes<'a> {
    Line(&'a str),
    Record(&'a [String]),
}

impl<'a> Purposes<'a> {
    /// The purposes' ids, in order.
    pub fn iter(self) -> impl Iterator<Item = &'a str> {
        let (line, record): (&'a str, &'a [String]) = match self {
            Purposes::Line(l) => (l, &[]),
            Purposes::Record(r) => ("", r),
        };
        line.split(',')
            .filter(|p| !p.is_empty())
            .chain(record.iter().map(String::as_str))
    }
}

impl PartialEq for Purposes<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Purposes<'_> {}

/// The first word of a terms line: its format's version.
const TERMS_V1: &str = "t1";

impl<'a> ConsentTerms<'a> {
    pub fn state(&self, now: DateTime<Utc>) -> ConsentState {
        state_at(self.withdrawn_at, self.expires_at, now)
    }

    /// The stored line: `t1 consent kind channel|- purpose,… |- given_µs
    /// expires_µs|- sha256|- flags` (flags: third party, cross border,
    /// notify of transfers, each `0` or `1`). `None` when a word would not
    /// be plain (policy ids, uuids and hex digests always are): the reader
    /// then parses the record itself.
    pub fn line(&self) -> Option<String> {
        let plain = |s: &str| {
            !s.is_empty()
                && s != "-"
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if !plain(&self.consent_id)
            || !self.purposes.iter().all(plain)
            || !(self.policy_sha256.is_empty() || plain(self.policy_sha256))
        {
            return None;
        }
        let word = |s: &str| {
            if s.is_empty() {
                "-".to_string()
            } else {
                s.to_string()
            }
        };
        let purposes: Vec<&str> = self.purposes.iter().collect();
        let flag = |b: bool| if b { '1' } else { '0' };
        Some(format!(
            "{TERMS_V1} {} {} {} {} {} {} {} {}{}{}",
            self.consent_id,
            self.kind.as_str(),
            self.channel.map_or("-", Channel::as_str),
            word(&purposes.join(",")),
            self.given_at.timestamp_micros(),
            self.expires_at
                .map_or_else(|| "-".to_string(), |e| e.timestamp_micros().to_string()),
            word(self.policy_sha256),
            flag(self.third_party),
            flag(self.cross_border),
            flag(self.notify_of_transfers),
        ))
    }

    /// Read a stored line (`None`: not a terms line of a known version).
    pub fn parse_line(
        line: &'a str,
        withdrawn_at: Option<DateTime<Utc>>,
    ) -> Option<ConsentTerms<'a>> {
        let mut w = line.split(' ');
        if w.next()? != TERMS_V1 {
            return None;
        }
        let consent_id = Cow::Borrowed(w.next()?);
        let kind = ConsentKind::parse(w.next()?)?;
        let channel = match w.next()? {
            "-" => None,
            c => Some(Channel::parse(c)?),
        };
        let purposes = match w.next()? {
            "-" => Purposes::Line(""),
            p => Purposes::Line(p),
        };
        let time = |s: &str| DateTime::from_timestamp_micros(s.parse().ok()?);
        let given_at = time(w.next()?)?;
        let expires_at = match w.next()? {
            "-" => None,
            e => Some(time(e)?),
        };
        let policy_sha256 = match w.next()? {
            "-" => "",
            s => s,
        };
        let flags = w.next()?.as_bytes();
        if flags.len() != 3 || w.next().is_some() {
            return None;
        }
        let flag = |i: usize| match flags[i] {
            b'0' => Some(false),
            b'1' => Some(true),
            _ => None,
        };
        Some(ConsentTerms {
            consent_id,
            kind,
            channel,
            purposes,
            policy_sha256,
            third_party: flag(0)?,
            cross_border: flag(1)?,
            notify_of_transfers: flag(2)?,
            given_at,
            expires_at,
            withdrawn_at,
        })
    }
}

/// The operator as named on a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReceiptOperator {
    pub name: String,
    pub bin: String,
    pub address: String,
}

/// The policy as named on a receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReceiptPolicy {
    pub version: String,
    pub sha256: String,
    pub published: NaiveDate,
}

/// What the user keeps: the consent's content. Its SHA-256 over the compact
/// JSON (fields in this order) is what the ledger stores and later confirms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    pub receipt_version: u32,
    pub consent_id: ConsentId,
    pub subject_id: SubjectId,
    pub kind: ConsentKind,
    pub operator: ReceiptOperator,
    pub policy: ReceiptPolicy,
    pub operations: Vec<Operation>,
    pub purposes: Vec<String>,
    pub categories: Vec<String>,
    pub channel: Option<Channel>,
    pub third_party_transfer: bool,
    pub cross_border_transfer: bool,
    /// The subject is told of every transfer within 10 working days.
    #[serde(default)]
    pub notify_of_transfers: bool,
    /// The policy never makes personal data public.
    pub publication: bool,
    pub given_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub collected_via: CollectedVia,
    pub app_version: Option<String>,
    pub client_pseudonym: Option<String>,
}

impl Receipt {
    /// Lowercase hex SHA-256 of the compact JSON.
    pub fn sha256(&self) -> String {
        // Serialising plain structs, strings and numbers cannot fail.
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        derbes_policy::sha256_hex(&bytes)
    }
}

/// A receipt and its hash, as returned to the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignedReceipt {
    pub receipt: Receipt,
    pub sha256: String,
}

/// The categories that are used only with a consent of `kind`.
fn own_categories(p: &derbes_policy::Policy, kind: ConsentKind) -> impl Iterator<Item = &str> {
    p.categories
        .iter()
        .filter(move |c| c.requires_consent == Some(kind))
        .map(|c| c.id.as_str())
}

fn ordered_ops(ops: impl IntoIterator<Item = Operation>) -> Vec<Operation> {
    let set: std::collections::BTreeSet<Operation> = ops.into_iter().collect();
    Operation::ALL
        .iter()
        .copied()
        .filter(|o| set.contains(o))
        .collect()
}

/// Validate a consent request and build its record and receipt.
/// `client_pseudonym` is the keyed pseudonym of the client address, computed
/// by the caller (this crate holds no keys).
pub fn build_consent(
    loaded: &LoadedPolicy,
    subject: SubjectId,
    req: &ConsentRequest,
    client_pseudonym: Option<String>,
    now: DateTime<Utc>,
    prefix: &str,
) -> Result<(ConsentRecord, SignedReceipt), Vec<Problem>> {
    let p = &loaded.policy();
    let mut problems = Vec::new();
    let at = |f: &str| format!("{prefix}{f}");
    if let Some(v) = &req.policy_version {
        if v != &p.version {
            problems.push(Problem::new(
                at("policy_version"),
                "policy_version_mismatch",
                format!("the policy in force is version {}; show it to the user and submit that version", p.version),
            ));
        }
    }
    if req.channel.is_some() && req.kind != ConsentKind::Marketing {
        problems.push(Problem::new(
            at("channel"),
            "unexpected_channel",
            "only marketing consent names a channel",
        ));
    }
    if req.notify_of_transfers.is_some() && req.kind != ConsentKind::Policy {
        problems.push(Problem::new(
            at("notify_of_transfers"),
            "unexpected_field",
            "only the policy consent asks for transfer notices",
        ));
    }
    if req.expires_in_months.is_some() && req.kind != ConsentKind::Cookies {
        problems.push(Problem::new(
            at("expires_in_months"),
            "unexpected_expiry",
            "only cookie consent expires",
        ));
    }
    if let Some(a) = &req.evidence.app_version {
        if a.trim().is_empty() || a.len() > 64 || a.chars().any(char::is_control) {
            problems.push(Problem::new(
                at("evidence.app_version"),
                "invalid_app_version",
                "at most 64 printable characters",
            ));
        }
    }
    if let Some(ip) = &req.evidence.client_address {
        if ip.trim().parse::<std::net::IpAddr>().is_err() {
            problems.push(Problem::new(
                at("evidence.client_address"),
                "invalid_ip_address",
                "an IPv4 or IPv6 address is expected",
            ));
        }
    }
    let purposes: Vec<&derbes_policy::Purpose> = match req.kind {
        ConsentKind::Policy => p.purposes.iter().collect(),
        ConsentKind::Marketing => match req.channel {
            None => {
                problems.push(Problem::new(
                    at("channel"),
                    "missing_channel",
                    "marketing consent is given per channel",
                ));
                Vec::new()
            }
            // Every purpose that sends marketing on the channel (offers, surveys).
            Some(ch) => p
                .purposes
                .iter()
                .filter(|pu| {
                    pu.contact == Some(ContactKind::Marketing) && pu.channels.contains(&ch)
                })
                .collect(),
        },
        // A consent of its own for the categories that need one (3.5, 7.4).
        kind => p
            .purposes
            .iter()
            .filter(|pu| own_categories(p, kind).any(|c| pu.allows_category(c)))
            .collect(),
    };
    let expires_at = if req.kind == ConsentKind::Cookies {
        let max = p
            .consent_kinds
            .iter()
            .find(|k| k.id == ConsentKind::Cookies)
            .and_then(|k| k.max_months)
            .unwrap_or(p.consent.cookie_max_months)
            .min(p.consent.cookie_max_months);
        let months = req.expires_in_months.unwrap_or(max);
        if months == 0 || months > max {
            problems.push(Problem::new(
                at("expires_in_months"),
                "invalid_expiry",
                format!("cookie consent lasts 1 to {max} months (clause 7.5)"),
            ));
        }
        now.checked_add_months(Months::new(months.min(max)))
    } else {
        None
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let categories: Vec<String> = match req.kind {
        ConsentKind::Cookies | ConsentKind::Entrepreneur => {
            own_categories(p, req.kind).map(String::from).collect()
        }
        _ => {
            let mut c: Vec<String> = Vec::new();
            for pu in &purposes {
                for cat in &pu.categories {
                    if !c.contains(cat) {
                        c.push(cat.clone());
                    }
                }
            }
            c
        }
    };
    let transfers_default = req.kind == ConsentKind::Policy;
    let receipt = Receipt {
        receipt_version: 1,
        consent_id: ConsentId::new(),
        subject_id: subject,
        kind: req.kind,
        operator: ReceiptOperator {
            name: p.operator.name.ru.clone(),
            bin: p.operator.bin.to_string(),
            address: p.operator.address.ru.clone(),
        },
        policy: ReceiptPolicy {
            version: p.version.clone(),
            sha256: loaded.sha256().to_string(),
            published: p.published,
        },
        operations: ordered_ops(purposes.iter().flat_map(|pu| pu.operations.iter().copied())),
        purposes: purposes.iter().map(|pu| pu.id.clone()).collect(),
        categories,
        channel: req.channel,
        third_party_transfer: req.third_party.unwrap_or(transfers_default),
        cross_border_transfer: req.cross_border.unwrap_or(transfers_default),
        notify_of_transfers: req.notify_of_transfers.unwrap_or(false),
        publication: false,
        given_at: now,
        expires_at,
        collected_via: req.evidence.collected_via.unwrap_or(CollectedVia::InApp),
        app_version: req
            .evidence
            .app_version
            .as_ref()
            .map(|a| a.trim().to_string()),
        client_pseudonym,
    };
    let sha256 = receipt.sha256();
    let record = ConsentRecord {
        consent_id: receipt.consent_id,
        subject_id: subject,
        kind: receipt.kind,
        policy_version: receipt.policy.version.clone(),
        policy_sha256: receipt.policy.sha256.clone(),
        operations: receipt.operations.clone(),
        purposes: receipt.purposes.clone(),
        categories: receipt.categories.clone(),
        channel: receipt.channel,
        third_party: receipt.third_party_transfer,
        cross_border: receipt.cross_border_transfer,
        notify_of_transfers: receipt.notify_of_transfers,
        collected_via: receipt.collected_via,
        app_version: receipt.app_version.clone(),
        client_pseudonym: receipt.client_pseudonym.clone(),
        given_at: now,
        expires_at,
        withdrawn_at: None,
        receipt_sha256: sha256.clone(),
    };
    Ok((record, SignedReceipt { receipt, sha256 }))
}

/// Rebuild the receipt of a stored record (for verification and export).
pub fn receipt_of(
    record: &ConsentRecord,
    operator: ReceiptOperator,
    published: NaiveDate,
) -> Receipt {
    Receipt {
        receipt_version: 1,
        consent_id: record.consent_id,
        subject_id: record.subject_id,
        kind: record.kind,
        operator,
        policy: ReceiptPolicy {
            version: record.policy_version.clone(),
            sha256: record.policy_sha256.clone(),
            published,
        },
        operations: record.operations.clone(),
        purposes: record.purposes.clone(),
        categories: record.categories.clone(),
        channel: record.channel,
        third_party_transfer: record.third_party,
        cross_border_transfer: record.cross_border,
        notify_of_transfers: record.notify_of_transfers,
        publication: false,
        given_at: record.given_at,
        expires_at: record.expires_at,
        collected_via: record.collected_via,
        app_version: record.app_version.clone(),
        client_pseudonym: record.client_pseudonym.clone(),
    }
}
