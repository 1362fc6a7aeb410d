//! What changed between two versions of the policy that matters to users:
//! purposes, recipients, categories, deadlines, retention, consent rules —
//! and which of those changes need the users' consent again (7.6): a
//! consent covers exactly what the version it accepted said, so anything a
//! later version adds to what a consent allows must be consented to anew.

use serde::Serialize;

use crate::model::Policy;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

/// One change: what (`purpose`, `recipient`, ...), which id, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub area: &'static str,
    pub id: String,
    pub kind: ChangeKind,
    pub detail: String,
    /// It widens what a consent given under the old version allows: users
    /// must consent again before it applies to them (7.6).
    pub reconsent: bool,
}

/// The parts of one change, each saying whether it needs re-consent.
#[derive(Default)]
struct Details(Vec<(String, bool)>);

impl Details {
    fn push(&mut self, text: String, reconsent: bool) {
        self.0.push((text, reconsent));
    }

    /// Additions need re-consent when `widens`; removals never do.
    fn list(&mut self, label: &str, old: &[String], new: &[String], widens: bool) {
        let added: Vec<&String> = new.iter().filter(|x| !old.contains(x)).collect();
        let removed: Vec<&String> = old.iter().filter(|x| !new.contains(x)).collect();
        if !added.is_empty() {
            self.push(format!("{label} added: {}", join(&added)), widens);
        }
        if !removed.is_empty() {
            self.push(format!("{label} removed: {}", join(&removed)), false);
        }
    }

    /// A flag that widens what consent allows when it goes `from` -> `to`.
    fn flag(&mut self, label: &str, old: bool, new: bool, widening: bool) {
        if old != new {
            self.push(format!("{label} {old} -> {new}"), new == widening);
        }
    }

    fn into_change(self, out: &mut Vec<Change>, area: &'static str, id: &str) {
        if self.0.is_empty() {
            return;
        }
        out.push(Change {
            area,
            id: id.to_string(),
            kind: ChangeKind::Changed,
            reconsent: self.0.iter().any(|(_, r)| *r),
            detail: self
                .0
                .into_iter()
                .map(|(t, _)| t)
                .collect::<Vec<_>>()
                .join("; "),
        });
    }
}

fn added_removed<T, F, R>(
    out: &mut Vec<Change>,
    area: &'static str,
    old: &[T],
    new: &[T],
    id: F,
    added_needs_consent: R,
) where
    F: Fn(&T) -> String,
    R: Fn(&T) -> bool,
{
    for o in old {
        if !new.iter().any(|n| id(n) == id(o)) {
            out.push(Change {
                area,
                id: id(o),
                kind: ChangeKind::Removed,
                detail: String::new(),
                reconsent: false,
            });
        }
    }
    for n in new {
        if !old.iter().any(|o| id(o) == id(n)) {
            out.push(Change {
                area,
                id: id(n),
                kind: ChangeKind::Added,
                detail: String::new(),
                reconsent: added_needs_consent(n),
            });
        }
    }
}

/// Purposes the law imposes, and answering the subject's own requests, need no consent.
fn needs_consent(kind: crate::PurposeKind) -> bool {
    !matches!(kind, crate::PurposeKind::Legal | crate::PurposeKind::Rights)
}

fn join(v: &[&String]) -> String {
    v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

fn strs<T: ToString>(v: &[T]) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

/// Compare two policies.
pub fn diff(old: &Policy, new: &Policy) -> Vec<Change> {
    let mut out = Vec::new();
    let changed =
        |out: &mut Vec<Change>, area: &'static str, id: &str, detail: String, reconsent: bool| {
            out.push(Change {
                area,
                id: id.to_string(),
                kind: ChangeKind::Changed,
                detail,
                reconsent,
            });
        };

    added_removed(
        &mut out,
        "purpose",
        &old.purposes,
        &new.purposes,
        |p| p.id.clone(),
        |p| needs_consent(p.kind),
    );
    for o in &old.purposes {
        let Some(n) = new.purpose(&o.id) else {
            continue;
        };
        let consented = needs_consent(n.kind);
        let mut d = Details::default();
        d.list("categories", &o.categories, &n.categories, consented);
        d.list(
            "operations",
            &strs(&o.operations),
            &strs(&n.operations),
            consented,
        );
        d.list(
            "channels",
            &strs(&o.channels),
            &strs(&n.channels),
            consented,
        );
        if o.kind != n.kind {
            d.push(
                format!("kind {} -> {}", o.kind, n.kind),
                consented && !needs_consent(o.kind),
            );
        }
        if o.contact != n.contact {
            let name = |c: Option<crate::ContactKind>| c.map_or("none", |c| c.as_str());
            d.push(
                format!("contact {} -> {}", name(o.contact), name(n.contact)),
                n.contact == Some(crate::ContactKind::Marketing),
            );
        }
        if o.retention.months != n.retention.months || o.retention.after != n.retention.after {
            d.push(
                format!(
                    "retention {} months after {} -> {} months after {}",
                    o.retention.months, o.retention.after, n.retention.months, n.retention.after
                ),
                consented
                    && (n.retention.months > o.retention.months
                        || n.retention.after != o.retention.after),
            );
        }
        d.flag(
            "depersonalised_only",
            o.depersonalised_only,
            n.depersonalised_only,
            false,
        );
        d.flag("statutory", o.statutory, n.statutory, true);
        if o.name != n.name {
            d.push("wording changed".into(), false);
        }
        d.into_change(&mut out, "purpose", &o.id);
    }

    added_removed(
        &mut out,
        "recipient",
        &old.recipients,
        &new.recipients,
        |r| r.id.clone(),
        |r| !r.legal_basis_required,
    );
    for o in &old.recipients {
        let Some(n) = new.recipient(&o.id) else {
            continue;
        };
        let mut d = Details::default();
        d.list(
            "purposes",
            &o.purposes,
            &n.purposes,
            !n.legal_basis_required,
        );
        d.flag("cross_border", o.cross_border, n.cross_border, true);
        d.flag("third_party", o.third_party, n.third_party, true);
        d.flag(
            "legal_basis_required",
            o.legal_basis_required,
            n.legal_basis_required,
            false,
        );
        if o.kind != n.kind {
            d.push(format!("kind {} -> {}", o.kind, n.kind), true);
        }
        d.into_change(&mut out, "recipient", &o.id);
    }

    // A new category means nothing until a purpose uses it (a purpose change).
    added_removed(
        &mut out,
        "category",
        &old.categories,
        &new.categories,
        |c| c.id.clone(),
        |_| false,
    );
    for o in &old.categories {
        let Some(n) = new.category(&o.id) else {
            continue;
        };
        let of: Vec<String> = o.fields.iter().map(|f| f.id.clone()).collect();
        let nf: Vec<String> = n.fields.iter().map(|f| f.id.clone()).collect();
        let mut d = Details::default();
        d.list("fields", &of, &nf, n.personal);
        d.flag("personal", o.personal, n.personal, true);
        d.into_change(&mut out, "category", &o.id);
    }

    for ((k, a), (_, b)) in old
        .deadlines
        .entries()
        .iter()
        .zip(new.deadlines.entries().iter())
    {
        if a != b {
            changed(
                &mut out,
                "deadline",
                k,
                format!("{a} -> {b} working days"),
                false,
            );
        }
    }
    if old.subjects.minimum_age != new.subjects.minimum_age {
        changed(
            &mut out,
            "subjects",
            "minimum_age",
            format!(
                "{} -> {}",
                old.subjects.minimum_age, new.subjects.minimum_age
            ),
            false,
        );
    }
    if old.consent.cookie_max_months != new.consent.cookie_max_months {
        changed(
            &mut out,
            "consent",
            "cookie_max_months",
            format!(
                "{} -> {}",
                old.consent.cookie_max_months, new.consent.cookie_max_months
            ),
            false,
        );
    }
    // Data from a new kind of source is data the consent did not name (5.1).
    added_removed(
        &mut out,
        "source",
        &old.sources,
        &new.sources,
        |s| s.id.clone(),
        |_| true,
    );
    for o in &old.forms {
        if let Some(n) = new.form(&o.id) {
            let f = |form: &crate::model::Form| -> Vec<String> {
                form.fields
                    .iter()
                    .map(|x| format!("{}{}", x.field, if x.required { " (required)" } else { "" }))
                    .collect()
            };
            let mut d = Details::default();
            d.list("fields", &f(o), &f(n), true);
            d.into_change(&mut out, "form", &o.id);
        }
    }
    // The consent is given to a named operator.
    if old.operator.bin != new.operator.bin
        || old.operator.address != new.operator.address
        || old.operator.name != new.operator.name
    {
        changed(
            &mut out,
            "operator",
            "operator",
            "operator's name, BIN or address changed".into(),
            true,
        );
    }
    out
}

/// The changes from `old` to `new` that need re-consent.
pub fn reconsent_changes(old: &Policy, new: &Policy) -> Vec<Change> {
    diff(old, new).into_iter().filter(|c| c.reconsent).collect()
}
