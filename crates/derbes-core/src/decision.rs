//! The decision: may this actor perform this operation on this subject's data,
//! for this purpose, on these categories, for this recipient? Pure and fast:
//! the policy is compiled once into bitmasks; a decision collects every reason
//! (permit reasons too — they are the audit record) and fails closed.

use std::collections::HashMap;

use chrono::{DateTime, Months, Utc};
use derbes_policy::{
    Channel, ConsentKind, Operation, Policy, PurposeKind, RecipientKind, RetentionStart,
};
use serde::{Deserialize, Serialize};

use crate::consent::{ConsentRecord, ConsentState};

/// Where a subject stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SubjectStatus {
    Active,
    /// Frozen during a verification: nothing but storage (4.2).
    Blocked,
    /// Consent withdrawn: processing stopped, destruction pending.
    Withdrawn,
    Destroyed,
    /// Found to be under 18 (7.7).
    BarredMinor,
}

/// What the consent ledger says now, summarised for decisions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsentFacts {
    /// State of the latest policy acceptance, if any.
    pub policy: Option<ConsentState>,
    pub third_party: bool,
    pub cross_border: bool,
    /// The subject asks to be told of transfers.
    pub notify_of_transfers: bool,
    /// Channels with an active marketing consent (bit per `Channel::ALL` index).
    pub marketing_channels: u8,
    pub entrepreneur: bool,
}

fn channel_bit(c: Channel) -> u8 {
    1 << Channel::ALL.iter().position(|x| *x == c).unwrap_or(7)
}

impl ConsentFacts {
    pub fn from_records(records: &[ConsentRecord], now: DateTime<Utc>) -> ConsentFacts {
        let mut f = ConsentFacts::default();
        let mut latest_policy: Option<&ConsentRecord> = None;
        for r in records {
            let active = r.state(now) == ConsentState::Active;
            match r.kind {
                ConsentKind::Policy if latest_policy.is_none_or(|l| r.given_at >= l.given_at) => {
                    latest_policy = Some(r);
                }
                ConsentKind::Marketing if active => {
                    if let Some(c) = r.channel {
                        f.marketing_channels |= channel_bit(c);
                    }
                }
                ConsentKind::Entrepreneur if active => f.entrepreneur = true,
                _ => {}
            }
        }
        if let Some(p) = latest_policy {
            f.policy = Some(p.state(now));
            f.third_party = p.third_party;
            f.cross_border = p.cross_border;
            f.notify_of_transfers = p.notify_of_transfers;
        }
        f
    }
}

/// The subject side of a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectFacts {
    pub status: SubjectStatus,
    /// When the relationship ended (withdrawal, account closed), if it did.
    pub relationship_ended_at: Option<DateTime<Utc>>,
    pub consents: ConsentFacts,
}

/// A recipient of a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecipientInput<'a> {
    pub id: &'a str,
    /// The law, court order or request the disclosure rests on.
    pub legal_basis: Option<&'a str>,
    /// The reference of that request (number, date).
    pub reference: Option<&'a str>,
}

/// What is asked.
#[derive(Debug, Clone, Copy)]
pub struct DecisionInput<'a> {
    pub role: &'a str,
    pub operation: Operation,
    pub purpose: &'a str,
    pub categories: &'a [String],
    pub channel: Option<Channel>,
    pub recipient: Option<RecipientInput<'a>>,
    pub now: DateTime<Utc>,
}

/// One reason. Codes are stable; messages never carry personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reason {
    pub code: String,
    pub message: String,
}

/// The answer, with every reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Decision {
    pub permit: bool,
    pub reasons: Vec<Reason>,
}

impl Decision {
    fn deny(code: &str, message: impl Into<String>) -> Decision {
        Decision {
            permit: false,
            reasons: vec![Reason {
                code: code.into(),
                message: message.into(),
            }],
        }
    }

    /// The deny codes, for tests and summaries.
    pub fn codes(&self) -> Vec<&str> {
        self.reasons.iter().map(|r| r.code.as_str()).collect()
    }
}

#[derive(Debug, Clone)]
struct PurposeC {
    categories: u64,
    operations: u16,
    channels: u8,
    kind: PurposeKind,
    retention: (u32, RetentionStart),
}

#[derive(Debug, Clone)]
struct RecipientC {
    kind: RecipientKind,
    third_party: bool,
    cross_border: bool,
    legal_basis_required: bool,
    purposes: u64,
}

/// The policy in the form decisions need: ids to indexes, sets to bitmasks.
#[derive(Debug, Clone)]
pub struct Compiled {
    purposes: HashMap<String, usize>,
    purpose: Vec<PurposeC>,
    categories: HashMap<String, usize>,
    category_names: Vec<String>,
    /// Categories holding the IP address (3.2).
    ip_categories: u64,
    entrepreneur_categories: u64,
    roles: HashMap<String, Vec<u64>>,
    recipients: HashMap<String, RecipientC>,
}

/// Why a policy cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the policy cannot be compiled for decisions: {0}")]
pub struct CompileError(String);

fn op_bit(o: Operation) -> u16 {
    1 << Operation::ALL.iter().position(|x| *x == o).unwrap_or(15)
}

impl Compiled {
    pub fn new(p: &Policy) -> Result<Compiled, CompileError> {
        if p.categories.len() > 64 || p.purposes.len() > 64 {
            return Err(CompileError("more than 64 categories or purposes".into()));
        }
        let categories: HashMap<String, usize> = p
            .categories
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.clone(), i))
            .collect();
        let mask = |ids: &[String]| {
            ids.iter()
                .filter_map(|c| categories.get(c))
                .fold(0u64, |m, i| m | (1 << i))
        };
        let purposes: HashMap<String, usize> = p
            .purposes
            .iter()
            .enumerate()
            .map(|(i, pu)| (pu.id.clone(), i))
            .collect();
        let purpose = p
            .purposes
            .iter()
            .map(|pu| PurposeC {
                categories: mask(&pu.categories),
                operations: pu.operations.iter().fold(0, |m, o| m | op_bit(*o)),
                channels: pu.channels.iter().fold(0, |m, c| m | channel_bit(*c)),
                kind: pu.kind,
                retention: (pu.retention.months, pu.retention.after),
            })
            .collect();
        let roles = p
            .roles
            .iter()
            .map(|r| {
                let mut per = vec![0u64; p.purposes.len()];
                for a in &r.access {
                    if let Some(i) = purposes.get(&a.purpose) {
                        per[*i] = mask(&a.categories);
                    }
                }
                (r.id.clone(), per)
            })
            .collect();
        let recipients = p
            .recipients
            .iter()
            .map(|r| {
                (
                    r.id.clone(),
                    RecipientC {
                        kind: r.kind,
                        third_party: r.third_party,
                        cross_border: r.cross_border,
                        legal_basis_required: r.legal_basis_required,
                        purposes: r
                            .purposes
                            .iter()
                            .filter_map(|x| purposes.get(x))
                            .fold(0, |m, i| m | (1 << i)),
                    },
                )
            })
            .collect();
        let ip_categories = p
            .categories
            .iter()
            .filter(|c| {
                c.fields
                    .iter()
                    .any(|f| f.ty == derbes_policy::FieldType::IpAddress)
            })
            .filter_map(|c| categories.get(&c.id))
            .fold(0, |m, i| m | (1 << i));
        let entrepreneur_categories = p
            .categories
            .iter()
            .filter(|c| c.requires_consent == Some(ConsentKind::Entrepreneur))
            .filter_map(|c| categories.get(&c.id))
            .fold(0, |m, i| m | (1 << i));
        Ok(Compiled {
            purposes,
            purpose,
            category_names: p.categories.iter().map(|c| c.id.clone()).collect(),
            categories,
            ip_categories,
            entrepreneur_categories,
            roles,
            recipients,
        })
    }

    /// The categories `role` may use for `purpose` (need-to-know ∩ the purpose's own).
    pub fn role_categories(&self, role: &str, purpose: &str) -> Vec<String> {
        let (Some(per), Some(&i)) = (self.roles.get(role), self.purposes.get(purpose)) else {
            return Vec::new();
        };
        let m = per[i] & self.purpose[i].categories;
        (0..self.category_names.len())
            .filter(|b| m & (1 << b) != 0)
            .map(|b| self.category_names[b].clone())
            .collect()
    }

    /// Decide. Every failing rule adds a reason; no rule short-circuits the
    /// others, so the answer explains everything that would have to change.
    pub fn decide(&self, input: &DecisionInput<'_>, subject: &SubjectFacts) -> Decision {
        let mut deny: Vec<Reason> = Vec::new();
        let mut why = |code: &str, message: String| {
            deny.push(Reason {
                code: code.into(),
                message,
            })
        };
        let op = input.operation;
        // Giving the subjects a copy of their own data (7.11) is not processing
        // that blocking or a withdrawal stops: it is what they asked for.
        let own_copy = op == Operation::Extraction
            && self
                .purposes
                .get(input.purpose)
                .is_some_and(|&i| self.purpose[i].kind == PurposeKind::Rights);

        // The subject.
        match subject.status {
            SubjectStatus::Active => {}
            _ if own_copy
                && matches!(
                    subject.status,
                    SubjectStatus::Blocked | SubjectStatus::Withdrawn
                ) => {}
            SubjectStatus::Blocked if op != Operation::Storage => why(
                "subject_blocked",
                "the subject's data is blocked: only storage is allowed (4.2)".into(),
            ),
            SubjectStatus::Withdrawn
                if !matches!(
                    op,
                    Operation::Storage | Operation::Deletion | Operation::Destruction
                ) =>
            {
                why(
                    "subject_withdrawn",
                    "the subject withdrew consent: processing has stopped (7.11)".into(),
                )
            }
            SubjectStatus::Destroyed => why(
                "subject_destroyed",
                "the subject's data has been destroyed".into(),
            ),
            SubjectStatus::BarredMinor => why(
                "subject_barred_minor",
                "the subject is barred as a minor (7.7)".into(),
            ),
            _ => {}
        }

        // The purpose, its categories and operations.
        let Some(&pi) = self.purposes.get(input.purpose) else {
            why("unknown_purpose", "not a purpose of the policy".into());
            return Decision {
                permit: false,
                reasons: deny,
            };
        };
        let purpose = &self.purpose[pi];
        let mut requested = 0u64;
        for c in input.categories {
            match self.categories.get(c) {
                Some(i) => requested |= 1 << i,
                None => why(
                    "unknown_category",
                    format!("`{c}` is not a category of the policy"),
                ),
            }
        }
        if input.categories.is_empty() {
            why("no_categories", "name the categories the use needs".into());
        }
        let outside = requested & !purpose.categories;
        if outside != 0 {
            why(
                "category_not_allowed",
                format!(
                    "purpose `{}` may not use {}",
                    input.purpose,
                    self.names(outside)
                ),
            );
        }
        if purpose.operations & op_bit(op) == 0 {
            why(
                "operation_not_allowed",
                format!("purpose `{}` does not allow `{op}`", input.purpose),
            );
        }

        // Need-to-know (5.2).
        match self.roles.get(input.role) {
            None => why(
                "unknown_role",
                "the actor's role is not in the policy".into(),
            ),
            Some(per) => {
                let missing = requested & purpose.categories & !per[pi];
                if missing != 0 {
                    why(
                        "no_need_to_know",
                        format!(
                            "role `{}` has no need to know {} for `{}`",
                            input.role,
                            self.names(missing),
                            input.purpose
                        ),
                    );
                }
            }
        }

        // Retention (a rights purpose keeps nothing and shows what others keep).
        let rights = purpose.kind == PurposeKind::Rights;
        if let (false, RetentionStart::RelationshipEnd, Some(ended)) =
            (rights, purpose.retention.1, subject.relationship_ended_at)
        {
            if ended
                .checked_add_months(Months::new(purpose.retention.0))
                .is_none_or(|until| input.now >= until)
            {
                why(
                    "retention_expired",
                    format!(
                        "purpose `{}` keeps data {} months after the relationship ends",
                        input.purpose, purpose.retention.0
                    ),
                );
            }
        }

        // The recipient (section 6) and the IP-to-person link (3.2).
        let recipient = match (input.recipient, op) {
            (None, Operation::Transfer | Operation::CrossBorderTransfer) => {
                why(
                    "recipient_required",
                    "a transfer names its recipient".into(),
                );
                None
            }
            (None, _) => None,
            (Some(r), _) => match self.recipients.get(r.id) {
                None => {
                    why("unknown_recipient", "not a recipient of the policy".into());
                    None
                }
                Some(rc) => Some((r, rc)),
            },
        };
        let legal = matches!(purpose.kind, PurposeKind::Legal | PurposeKind::Rights);
        let mut legal_basis_given = false;
        if let Some((r, rc)) = recipient {
            if rc.purposes & (1 << pi) == 0 {
                why(
                    "recipient_not_allowed",
                    format!(
                        "recipient `{}` may not receive data for `{}` (section 6)",
                        r.id, input.purpose
                    ),
                );
            }
            let has_basis = r.legal_basis.is_some_and(|s| !s.trim().is_empty())
                && r.reference.is_some_and(|s| !s.trim().is_empty());
            legal_basis_given = rc.legal_basis_required && has_basis;
            if rc.legal_basis_required && !has_basis {
                why(
                    "legal_basis_required",
                    "this recipient receives data only on a legal basis with a reference".into(),
                );
            }
            if requested & self.ip_categories != 0
                && !(rc.kind == RecipientKind::Authority && has_basis)
            {
                why("ip_link_forbidden", "the link between an IP address and a person is disclosed only to an authority on a legal basis (3.2)".into());
            }
            if rc.cross_border && op != Operation::CrossBorderTransfer {
                why(
                    "cross_border_operation",
                    "a recipient abroad receives data by `cross_border_transfer`".into(),
                );
            }
            if !legal_basis_given {
                if rc.cross_border && !subject.consents.cross_border {
                    why(
                        "no_cross_border_consent",
                        "the subject has not consented to cross-border transfer".into(),
                    );
                }
                if rc.third_party && !subject.consents.third_party {
                    why(
                        "no_third_party_consent",
                        "the subject has not consented to transfer to third parties".into(),
                    );
                }
            }
        }

        // Consent: the policy acceptance covers every purpose but those the law imposes.
        if !(legal || legal_basis_given) {
            match subject.consents.policy {
                Some(ConsentState::Active) => {}
                Some(ConsentState::Withdrawn) => why(
                    "consent_withdrawn",
                    "the policy consent was withdrawn".into(),
                ),
                Some(ConsentState::Expired) => {
                    why("consent_expired", "the policy consent has expired".into())
                }
                None => why(
                    "no_policy_consent",
                    "the subject has not accepted the policy".into(),
                ),
            }
        }
        if purpose.kind == PurposeKind::Marketing {
            match input.channel {
                None => why(
                    "channel_required",
                    "a marketing use names its channel".into(),
                ),
                Some(c) => {
                    if purpose.channels & channel_bit(c) == 0 {
                        why(
                            "channel_not_allowed",
                            format!("purpose `{}` does not use `{c}`", input.purpose),
                        );
                    }
                    if subject.consents.marketing_channels & channel_bit(c) == 0 {
                        why(
                            "no_marketing_consent",
                            format!("no active marketing consent for `{c}`"),
                        );
                    }
                }
            }
        }
        if requested & self.entrepreneur_categories != 0 && !subject.consents.entrepreneur {
            why(
                "no_entrepreneur_consent",
                "entrepreneur data needs the entrepreneur's consent (3.5)".into(),
            );
        }

        if deny.is_empty() {
            Decision {
                permit: true,
                reasons: vec![Reason {
                    code: "permitted".into(),
                    message: format!(
                        "purpose `{}` allows `{op}` of {}; role `{}` needs them; {}",
                        input.purpose,
                        self.names(requested),
                        input.role,
                        if legal || legal_basis_given {
                            "legal basis"
                        } else {
                            "consent active"
                        }
                    ),
                }],
            }
        } else {
            Decision {
                permit: false,
                reasons: deny,
            }
        }
    }

    fn names(&self, mask: u64) -> String {
        (0..self.category_names.len())
            .filter(|b| mask & (1 << b) != 0)
            .map(|b| format!("`{}`", self.category_names[b]))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Decide with a policy that failed to compile: always deny (fail closed).
pub fn deny_uncompiled(e: &CompileError) -> Decision {
    Decision::deny("internal_error", e.to_string())
}
