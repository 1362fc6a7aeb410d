//! The decision: may this actor perform this operation on this subject's data,
//! for this purpose, on these categories, for this recipient? Pure and fast:
//! the policy is compiled once into bitmasks; a decision collects every reason
//! (permit reasons too — they are the audit record) and fails closed.

use std::collections::HashMap;

use chrono::{DateTime, Months, Utc};
use derbes_policy::{
    Channel, ConsentKind, ContactKind, Operation, Policy, PurposeKind, RecipientKind,
    RetentionStart,
};
use serde::{Deserialize, Serialize};

use crate::consent::{ConsentRecord, ConsentState, ConsentTerms};
pub use crate::facts::objection_bit;
use crate::facts::{channel_bit, channel_index, kind_bit, PurposeCover};
pub use crate::facts::{ConsentFacts, Coverage, SubjectFacts};
pub use crate::states::SubjectStatus;

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
    contact: Option<ContactKind>,
    depersonalised_only: bool,
    statutory: bool,
    retention: (u32, RetentionStart),
}

#[derive(Debug, Clone)]
struct RecipientC {
    index: usize,
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
    /// Categories used only with a consent of their own (3.5, 7.4): the kind, the categories.
    category_consents: Vec<(ConsentKind, u64)>,
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

/// Operations that reach the subject (a message, a call, a list handed on):
/// a purpose that contacts over a channel names the channel for them.
const REACHING: [Operation; 4] = [
    Operation::Use,
    Operation::Extraction,
    Operation::Transfer,
    Operation::CrossBorderTransfer,
];

/// What a depersonalised-only purpose may do with a subject's data: take it
/// in, keep it, depersonalise it and let it go — never hand fields out.
const DEPERSONALISED: [Operation; 7] = [
    Operation::Collection,
    Operation::Recording,
    Operation::Storage,
    Operation::Depersonalisation,
    Operation::Blocking,
    Operation::Deletion,
    Operation::Destruction,
];

fn ops_mask(ops: &[Operation]) -> u16 {
    ops.iter().fold(0, |m, o| m | op_bit(*o))
}

/// The reason a contact of `kind` on `channel` is refused, if it is: an
/// objection, or (for marketing) no active consent of the channel covering
/// the purpose (`purpose`: its bit; `None`: any purpose).
fn contact_denial(
    facts: &SubjectFacts,
    channel: Channel,
    kind: ContactKind,
    purpose: Option<u64>,
) -> Option<Reason> {
    if facts.objections & objection_bit(channel, kind) != 0 {
        return Some(Reason {
            code: "objected".into(),
            message: format!("the subject objected to {kind} messages on `{channel}` (7.11)"),
        });
    }
    let covered = facts.consents.marketing[channel_index(channel)];
    if kind == ContactKind::Marketing && purpose.map_or(covered == 0, |b| covered & b == 0) {
        return Some(Reason {
            code: "no_marketing_consent".into(),
            message: format!("no active marketing consent for `{channel}` covers this"),
        });
    }
    None
}

/// May the subject be sent a `kind` message on `channel` now? The same rule
/// decisions apply to every purpose that contacts the subject; `Err` holds
/// the first reason it may not (status first).
pub fn may_contact(
    facts: &SubjectFacts,
    channel: Channel,
    kind: ContactKind,
) -> Result<(), Reason> {
    if facts.status != SubjectStatus::Active {
        return Err(Reason {
            code: "subject_not_active".into(),
            message: "the subject is not active (blocked, withdrawn, barred or destroyed)".into(),
        });
    }
    match contact_denial(facts, channel, kind, None) {
        Some(r) => Err(r),
        None => Ok(()),
    }
}

impl Compiled {
    pub fn new(p: &Policy) -> Result<Compiled, CompileError> {
        if p.categories.len() > 64 || p.purposes.len() > 64 || p.recipients.len() > 64 {
            return Err(CompileError(
                "more than 64 categories, purposes or recipients".into(),
            ));
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
                operations: ops_mask(&pu.operations),
                channels: pu.channels.iter().fold(0, |m, c| m | channel_bit(*c)),
                kind: pu.kind,
                contact: pu.contact,
                depersonalised_only: pu.depersonalised_only,
                statutory: pu.statutory,
                retention: (pu.retention.months, pu.retention.after),
            })
            .collect();
        let mut roles: HashMap<String, Vec<u64>> = p
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
        // The subject's own door: everything a purpose answering their
        // requests uses, nothing else (which subject is the session's).
        roles.insert(
            derbes_policy::SUBJECT_ROLE.to_string(),
            p.purposes
                .iter()
                .map(|pu| match pu.kind {
                    PurposeKind::Rights => mask(&pu.categories),
                    _ => 0,
                })
                .collect(),
        );
        let recipients = p
            .recipients
            .iter()
            .enumerate()
            .map(|(index, r)| {
                (
                    r.id.clone(),
                    RecipientC {
                        index,
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
        let mut category_consents: Vec<(ConsentKind, u64)> = Vec::new();
        for c in &p.categories {
            if let (Some(kind), Some(i)) = (c.requires_consent, categories.get(&c.id)) {
                match category_consents.iter_mut().find(|(k, _)| *k == kind) {
                    Some((_, m)) => *m |= 1 << i,
                    None => category_consents.push((kind, 1 << i)),
                }
            }
        }
        Ok(Compiled {
            purposes,
            purpose,
            category_names: p.categories.iter().map(|c| c.id.clone()).collect(),
            categories,
            ip_categories,
            category_consents,
            roles,
            recipients,
        })
    }

    /// What the ledger's records say now: the latest policy acceptance,
    /// marketing consents per channel and the purposes each covers, the
    /// kinds with an active consent.
    pub fn consent_facts(&self, records: &[ConsentRecord], now: DateTime<Utc>) -> ConsentFacts {
        let terms: Vec<ConsentTerms<'_>> = records.iter().map(ConsentRecord::terms).collect();
        self.terms_facts(&terms, now)
    }

    /// [`Compiled::consent_facts`] from the consents' terms, in any order:
    /// the latest policy acceptance is the one given last (the greater
    /// consent id when two were given at the same moment).
    pub fn terms_facts(&self, terms: &[ConsentTerms<'_>], now: DateTime<Utc>) -> ConsentFacts {
        let mut f = ConsentFacts::default();
        let mut latest_policy: Option<&ConsentTerms<'_>> = None;
        for r in terms {
            if r.kind == ConsentKind::Policy {
                if latest_policy
                    .is_none_or(|l| (r.given_at, &*r.consent_id) >= (l.given_at, &*l.consent_id))
                {
                    latest_policy = Some(r);
                }
                continue;
            }
            if r.state(now) != ConsentState::Active {
                continue;
            }
            f.kinds |= kind_bit(r.kind);
            if let (ConsentKind::Marketing, Some(c)) = (r.kind, r.channel) {
                f.marketing[channel_index(c)] |= r
                    .purposes
                    .iter()
                    .filter_map(|p| self.purposes.get(p))
                    .fold(0, |m, i| m | (1 << i));
            }
        }
        if let Some(p) = latest_policy {
            let state = p.state(now);
            if state == ConsentState::Active {
                f.kinds |= kind_bit(ConsentKind::Policy);
            }
            f.policy = Some(state);
            f.policy_sha256 = Some(p.policy_sha256.to_string());
            f.third_party = p.third_party;
            f.cross_border = p.cross_border;
            f.notify_of_transfers = p.notify_of_transfers;
        }
        f
    }

    /// What a consent to `accepted` (another version of the policy) covers,
    /// in terms of this one: per purpose, its categories, operations and
    /// recipients then. What this version adds is not covered.
    pub fn coverage(&self, accepted: &Policy) -> Coverage {
        let mut per = vec![None; self.purpose.len()];
        for old in &accepted.purposes {
            let Some(&i) = self.purposes.get(&old.id) else {
                continue;
            };
            per[i] = Some(PurposeCover {
                categories: old
                    .categories
                    .iter()
                    .filter_map(|c| self.categories.get(c))
                    .fold(0, |m, b| m | (1 << b)),
                operations: ops_mask(&old.operations),
                recipients: accepted
                    .recipients
                    .iter()
                    .filter(|r| r.purposes.contains(&old.id))
                    .filter_map(|r| self.recipients.get(&r.id))
                    .fold(0, |m, r| m | (1 << r.index)),
            });
        }
        Coverage(per)
    }

    /// The categories `role` may use for `purpose` (need-to-know ∩ the purpose's own).
    pub fn role_categories(&self, role: &str, purpose: &str) -> Vec<String> {
        let (Some(per), Some(&i)) = (self.roles.get(role), self.purposes.get(purpose)) else {
            return Vec::new();
        };
        self.mask_names(per[i] & self.purpose[i].categories)
    }

    /// The categories that need a consent of their own which the subject has
    /// not given (3.5 entrepreneur, 7.4 cookies), among `categories`.
    pub fn unconsented_categories(
        &self,
        categories: &[String],
        consents: &ConsentFacts,
    ) -> Vec<String> {
        let wanted = categories
            .iter()
            .filter_map(|c| self.categories.get(c))
            .fold(0u64, |m, i| m | (1 << i));
        let missing = self
            .category_consents
            .iter()
            .filter(|(k, _)| !consents.has(*k))
            .fold(0, |m, (_, c)| m | c);
        self.mask_names(wanted & missing)
    }

    fn mask_names(&self, m: u64) -> Vec<String> {
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
        let pi = self.purposes.get(input.purpose).copied();
        let kind = pi.map(|i| self.purpose[i].kind);
        // Giving the subjects a copy of their own data (7.11) is not processing
        // that blocking or a withdrawal stops: it is what they asked for.
        let own_copy = op == Operation::Extraction && kind == Some(PurposeKind::Rights);
        // What a law obliges the operator to keep stays usable for that law
        // alone after a withdrawal (7.1, 7.11).
        let statutory = pi.is_some_and(|i| self.purpose[i].statutory);

        // The subject.
        match subject.status {
            SubjectStatus::Active => {}
            SubjectStatus::Blocked | SubjectStatus::Withdrawn if own_copy => {}
            SubjectStatus::Blocked if op != Operation::Storage => why(
                "subject_blocked",
                "the subject's data is blocked: only storage is allowed (4.2)".into(),
            ),
            SubjectStatus::Withdrawn
                if !statutory
                    && !matches!(
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
        if subject.held && matches!(op, Operation::Deletion | Operation::Destruction) {
            why(
                "legal_hold",
                "a legal hold is open: nothing of the subject is deleted or destroyed".into(),
            );
        }

        // The purpose, its categories and operations.
        let Some(pi) = pi else {
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
        if purpose.depersonalised_only && ops_mask(&DEPERSONALISED) & op_bit(op) == 0 {
            why(
                "depersonalised_only",
                format!(
                    "purpose `{}` uses only depersonalised aggregates, never a subject's fields",
                    input.purpose
                ),
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

        // Consent: the policy acceptance covers every purpose but those the
        // law imposes — and only what the version accepted said (7.6).
        let by_law = legal || legal_basis_given;
        if !by_law {
            match subject.consents.policy {
                Some(ConsentState::Active) => {
                    if let Some(cov) = &subject.accepted {
                        let outdated = self.beyond(cov, pi, requested, op, recipient.map(|x| x.1));
                        if !outdated.is_empty() {
                            why(
                                "consent_outdated",
                                format!(
                                    "the subject's consent was given to an earlier version of the policy, which did not include {}; they must consent again (7.6)",
                                    outdated.join(", ")
                                ),
                            );
                        }
                    }
                }
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
            // Categories that need a consent of their own (3.5, 7.4-7.5).
            for (kind, cats) in &self.category_consents {
                if requested & cats != 0 && !subject.consents.has(*kind) {
                    let (code, message) = match kind {
                        ConsentKind::Entrepreneur => (
                            "no_entrepreneur_consent",
                            "entrepreneur data needs the entrepreneur's consent (3.5)",
                        ),
                        ConsentKind::Cookies => (
                            "no_cookie_consent",
                            "cookies and device identifiers need an active cookie consent (7.4-7.5)",
                        ),
                        _ => ("no_category_consent", "these categories need a consent of their own"),
                    };
                    why(code, format!("{message}: {}", self.names(requested & cats)));
                }
            }
        }

        // Reaching the subject over a channel: the channel is named, allowed,
        // not objected to and, for marketing, consented to (7.11).
        if let Some(contact) = purpose
            .contact
            .filter(|_| ops_mask(&REACHING) & op_bit(op) != 0)
        {
            match input.channel {
                None => why(
                    "channel_required",
                    "a use that reaches the subject names its channel".into(),
                ),
                Some(c) => {
                    if purpose.channels & channel_bit(c) == 0 {
                        why(
                            "channel_not_allowed",
                            format!("purpose `{}` does not use `{c}`", input.purpose),
                        );
                    }
                    if let Some(r) = contact_denial(subject, c, contact, Some(1 << pi)) {
                        deny.push(r);
                    }
                }
            }
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
                        if by_law {
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

    /// What a use asks beyond what an accepted version covered, in words.
    fn beyond(
        &self,
        cov: &Coverage,
        pi: usize,
        categories: u64,
        op: Operation,
        recipient: Option<&RecipientC>,
    ) -> Vec<String> {
        let Some(Some(c)) = cov.0.get(pi) else {
            return vec!["this purpose".into()];
        };
        let mut out = Vec::new();
        let new = categories & !c.categories;
        if new != 0 {
            out.push(format!("the categories {}", self.names(new)));
        }
        if c.operations & op_bit(op) == 0 {
            out.push(format!("the operation `{op}`"));
        }
        if let Some(r) = recipient {
            if c.recipients & (1 << r.index) == 0 {
                out.push("this recipient".into());
            }
        }
        out
    }

    fn names(&self, mask: u64) -> String {
        self.mask_names(mask)
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Decide with a policy that failed to compile: always deny (fail closed).
pub fn deny_uncompiled(e: &CompileError) -> Decision {
    Decision::deny("internal_error", e.to_string())
}
