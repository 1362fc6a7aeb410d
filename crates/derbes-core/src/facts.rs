//! The subject's side of a decision: status, what the consent ledger says
//! now, objections, holds, and what the policy version a consent accepted
//! covers. Built by the engine (from the store) and by `Compiled`.

use chrono::{DateTime, Utc};
use derbes_policy::{Channel, ConsentKind, ContactKind};

use crate::consent::ConsentState;
use crate::states::SubjectStatus;

/// What the consent ledger says now, summarised for decisions. Built by
/// [`Compiled::consent_facts`] from the ledger's records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsentFacts {
    /// State of the latest policy acceptance, if any.
    pub policy: Option<ConsentState>,
    /// The SHA-256 of the policy version that acceptance accepted.
    pub policy_sha256: Option<String>,
    pub third_party: bool,
    pub cross_border: bool,
    /// The subject asks to be told of transfers.
    pub notify_of_transfers: bool,
    /// Per channel (index in `Channel::ALL`), the purposes an active
    /// marketing consent of that channel covers (bit per compiled purpose).
    pub marketing: [u64; 8],
    /// Kinds with an active consent (bit per index in `ConsentKind::ALL`).
    pub kinds: u8,
}

pub(crate) fn channel_index(c: Channel) -> usize {
    Channel::ALL.iter().position(|x| *x == c).unwrap_or(7)
}

pub(crate) fn channel_bit(c: Channel) -> u8 {
    1 << channel_index(c)
}

pub(crate) fn kind_bit(k: ConsentKind) -> u8 {
    1 << ConsentKind::ALL.iter().position(|x| *x == k).unwrap_or(7)
}

/// The bit of an objection to `kind` messages on `channel` in [`SubjectFacts::objections`].
pub fn objection_bit(channel: Channel, kind: ContactKind) -> u16 {
    let k = ContactKind::ALL
        .iter()
        .position(|x| *x == kind)
        .unwrap_or(1);
    1 << (channel_index(channel) * 2 + k)
}

/// The subject side of a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectFacts {
    pub status: SubjectStatus,
    /// When the relationship ended (withdrawal, account closed), if it did.
    pub relationship_ended_at: Option<DateTime<Utc>>,
    pub consents: ConsentFacts,
    /// Objections to communications (7.11), see [`objection_bit`].
    pub objections: u16,
    /// An open legal hold: nothing of the subject is deleted or destroyed.
    pub held: bool,
    /// What the policy version the subject accepted covers, when that is not
    /// the version in force (`None`: the version in force, which covers
    /// everything it says). 7.6: a consent covers exactly its version.
    pub accepted: Option<std::sync::Arc<Coverage>>,
}

/// What one purpose of an accepted policy version covered, in the indexes
/// of the policy in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PurposeCover {
    pub(crate) categories: u64,
    pub(crate) operations: u16,
    pub(crate) recipients: u64,
}

/// What a consent given under another policy version covers, purpose by
/// purpose of the policy in force (`None`: the purpose did not exist then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage(pub(crate) Vec<Option<PurposeCover>>);

impl ConsentFacts {
    /// An active marketing consent on `channel` (for any purpose).
    pub fn marketing_on(&self, channel: Channel) -> bool {
        self.marketing[channel_index(channel)] != 0
    }

    /// An active consent of this kind.
    pub fn has(&self, kind: ConsentKind) -> bool {
        self.kinds & kind_bit(kind) != 0
    }
}

impl SubjectFacts {
    /// An active subject with these consents, no objection, no hold.
    pub fn active(consents: ConsentFacts) -> SubjectFacts {
        SubjectFacts {
            status: SubjectStatus::Active,
            relationship_ended_at: None,
            consents,
            objections: 0,
            held: false,
            accepted: None,
        }
    }
}

impl Coverage {
    /// A version derbes cannot read covers nothing (fail closed).
    pub fn nothing() -> Coverage {
        Coverage(Vec::new())
    }
}
