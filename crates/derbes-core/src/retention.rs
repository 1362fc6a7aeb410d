//! Retention (7.1): how long a field may be kept, from the purposes of the
//! policy that may use its category. A field is kept while *any* such purpose
//! keeps it; when every one has ended, it is destroyed. Purposes of kind
//! `rights` never justify keeping anything.
//!
//! One set of rules serves the purge (what goes and why) and the access
//! export (what the subject is told).

use std::collections::HashMap;

use chrono::{DateTime, Months, Utc};
use derbes_policy::{Policy, PurposeKind, RetentionStart};
use serde::Serialize;

/// Until when a field is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Until {
    /// Until this instant.
    Date {
        #[cfg_attr(feature = "openapi", schema(value_type = String))]
        at: DateTime<Utc>,
    },
    /// While the relationship lasts, then this many months.
    RelationshipThen { months: u32 },
    /// No purpose of the policy keeps data of this category.
    NoPurpose,
}

impl Until {
    /// Has the period ended at `now`?
    pub fn expired(self, now: DateTime<Utc>) -> bool {
        match self {
            Until::Date { at } => at <= now,
            Until::RelationshipThen { .. } => false,
            Until::NoPurpose => true,
        }
    }
}

/// The longest period of each kind for one category, and the purposes that set them.
#[derive(Debug, Clone, Default)]
struct CategoryRule {
    after_collection: Option<(u32, String)>,
    after_relationship: Option<(u32, String)>,
}

/// The policy's retention compiled per category.
#[derive(Debug, Clone)]
pub struct RetentionRules {
    by_category: HashMap<String, CategoryRule>,
}

/// A field's retention and the purpose that keeps it longest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldRetention {
    pub until: Until,
    /// The purpose whose period ends last; `None` when no purpose keeps it.
    pub kept_for: Option<String>,
}

fn later(a: Option<(u32, String)>, months: u32, purpose: &str) -> Option<(u32, String)> {
    match a {
        Some((m, p)) if m >= months => Some((m, p)),
        _ => Some((months, purpose.to_string())),
    }
}

fn plus(t: DateTime<Utc>, months: u32) -> DateTime<Utc> {
    t.checked_add_months(Months::new(months))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

impl RetentionRules {
    pub fn new(policy: &Policy) -> RetentionRules {
        RetentionRules::of(policy, |_| true)
    }

    /// The rules of what a law obliges the operator to keep (purposes marked
    /// `statutory`): what remains of a subject after a withdrawal or a
    /// destruction request, and for how long.
    pub fn statutory(policy: &Policy) -> RetentionRules {
        RetentionRules::of(policy, |p| p.statutory)
    }

    fn of(policy: &Policy, keeps: impl Fn(&derbes_policy::Purpose) -> bool) -> RetentionRules {
        let mut by_category: HashMap<String, CategoryRule> = HashMap::new();
        for c in &policy.categories {
            by_category.entry(c.id.clone()).or_default();
        }
        for p in &policy.purposes {
            if p.kind == PurposeKind::Rights || !keeps(p) {
                continue;
            }
            for c in &p.categories {
                let rule = by_category.entry(c.clone()).or_default();
                match p.retention.after {
                    RetentionStart::Collection => {
                        rule.after_collection =
                            later(rule.after_collection.take(), p.retention.months, &p.id)
                    }
                    RetentionStart::RelationshipEnd => {
                        rule.after_relationship =
                            later(rule.after_relationship.take(), p.retention.months, &p.id)
                    }
                }
            }
        }
        RetentionRules { by_category }
    }

    /// How long a field of `category` collected at `collected_at` is kept,
    /// given when the relationship ended (if it has).
    pub fn field(
        &self,
        category: &str,
        collected_at: DateTime<Utc>,
        relationship_ended_at: Option<DateTime<Utc>>,
    ) -> FieldRetention {
        let none = FieldRetention {
            until: Until::NoPurpose,
            kept_for: None,
        };
        let Some(rule) = self.by_category.get(category) else {
            return none;
        };
        let by_collection = rule
            .after_collection
            .as_ref()
            .map(|(m, p)| (plus(collected_at, *m), p));
        match (&rule.after_relationship, relationship_ended_at) {
            (Some((m, p)), None) => FieldRetention {
                until: Until::RelationshipThen { months: *m },
                kept_for: Some(p.clone()),
            },
            (rel, ended) => {
                let by_relationship = rel.as_ref().zip(ended).map(|((m, p), e)| (plus(e, *m), p));
                match (by_collection, by_relationship) {
                    (None, None) => none,
                    (Some((at, p)), None) | (None, Some((at, p))) => FieldRetention {
                        until: Until::Date { at },
                        kept_for: Some(p.clone()),
                    },
                    (Some((a, pa)), Some((b, pb))) => {
                        let (at, p) = if a >= b { (a, pa) } else { (b, pb) };
                        FieldRetention {
                            until: Until::Date { at },
                            kept_for: Some(p.clone()),
                        }
                    }
                }
            }
        }
    }

    /// The earliest collection instant a field could have and still be
    /// expired at `now` while the relationship lasts: fields collected later
    /// cannot be due (a pre-filter for the purge). `None` when no category
    /// expires during the relationship.
    pub fn collected_before_to_expire(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.by_category
            .values()
            .filter(|r| r.after_relationship.is_none())
            .map(|r| match &r.after_collection {
                None => now,
                Some((m, _)) => now
                    .checked_sub_months(Months::new(*m))
                    .unwrap_or(DateTime::<Utc>::MIN_UTC),
            })
            .max()
    }

    /// The categories kept while the relationship lasts: no field of one
    /// is due before the relationship ends (a pre-filter for the purge,
    /// which otherwise reads every field of every subject each pass).
    /// Sorted.
    pub fn kept_while_related(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .by_category
            .iter()
            .filter(|(_, r)| r.after_relationship.is_some())
            .map(|(c, _)| c.clone())
            .collect();
        out.sort();
        out
    }

    /// Every category the rules know (a field of another is due at once). Sorted.
    pub fn categories(&self) -> Vec<String> {
        let mut out: Vec<String> = self.by_category.keys().cloned().collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rules() -> RetentionRules {
        let text = include_str!("../../../policy/ibusiness.toml");
        RetentionRules::new(&Policy::parse(text).unwrap())
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn identity_is_kept_while_the_relationship_lasts_then_five_years() {
        let r = rules();
        let got = r.field("identity", at("2020-01-01T00:00:00Z"), None);
        assert_eq!(got.until, Until::RelationshipThen { months: 60 });
        // contract_performance, fraud_prevention and legal_obligation all keep
        // it 60 months; the first in the policy is named.
        assert_eq!(got.kept_for.as_deref(), Some("contract_performance"));
        let ended = r.field(
            "identity",
            at("2020-01-01T00:00:00Z"),
            Some(at("2021-03-31T10:00:00Z")),
        );
        assert_eq!(
            ended.until,
            Until::Date {
                at: at("2026-03-31T10:00:00Z")
            }
        );
        assert!(!ended.until.expired(at("2026-03-31T09:59:59Z")));
        assert!(ended.until.expired(at("2026-03-31T10:00:00Z")));
    }

    #[test]
    fn client_data_expires_by_collection_during_the_relationship() {
        let r = rules();
        // client (browser, OS): support keeps it longest, 36 months after collection.
        let got = r.field("client", at("2024-01-15T00:00:00Z"), None);
        assert_eq!(
            got.until,
            Until::Date {
                at: at("2027-01-15T00:00:00Z")
            }
        );
        assert_eq!(got.kept_for.as_deref(), Some("support"));
        // The purge's pre-filter never skips a field that is due.
        let cutoff = r
            .collected_before_to_expire(at("2027-01-15T00:00:00Z"))
            .unwrap();
        assert!(cutoff >= at("2024-01-15T00:00:00Z"));
    }

    #[test]
    fn what_the_relationship_keeps_is_never_due_while_it_lasts() {
        let r = rules();
        let kept = r.kept_while_related();
        assert!(kept.iter().any(|c| c == "identity"), "{kept:?}");
        assert!(!kept.iter().any(|c| c == "client"), "{kept:?}");
        let known = r.categories();
        let long_ago = at("2000-01-01T00:00:00Z");
        let now = at("2030-01-01T00:00:00Z");
        for c in &known {
            let due = r.field(c, long_ago, None).until.expired(now);
            // The purge's pre-filter leaves out exactly what cannot be due.
            assert_eq!(kept.contains(c), !due, "{c}");
        }
        assert!(r.field("no_such_category", now, None).until.expired(now));
        assert!(!known.iter().any(|c| c == "no_such_category"));
    }

    #[test]
    fn what_a_law_keeps_outlives_a_withdrawal() {
        let text = include_str!("../../../policy/ibusiness.toml");
        let r = RetentionRules::statutory(&Policy::parse(text).unwrap());
        let ended = Some(at("2026-12-01T10:00:00Z"));
        let kept = r.field("identity", at("2026-01-01T00:00:00Z"), ended);
        assert_eq!(kept.kept_for.as_deref(), Some("legal_obligation"));
        assert_eq!(
            kept.until,
            Until::Date {
                at: at("2031-12-01T10:00:00Z")
            }
        );
        // No law keeps cookies: they go with the withdrawal.
        let gone = r.field("app_data", at("2026-01-01T00:00:00Z"), ended);
        assert_eq!(gone.until, Until::NoPurpose);
    }

    #[test]
    fn the_rights_purpose_keeps_nothing_and_unknown_categories_go() {
        let r = rules();
        // biometric is used by no purpose but answering the subject's requests.
        let got = r.field("biometric", at("2024-01-15T00:00:00Z"), None);
        assert_eq!(got.until, Until::NoPurpose);
        assert!(got.until.expired(at("2024-01-15T00:00:00Z")));
        assert_eq!(
            r.field("nonsense", at("2024-01-15T00:00:00Z"), None).until,
            Until::NoPurpose
        );
    }
}
