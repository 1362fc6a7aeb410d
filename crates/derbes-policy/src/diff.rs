//! What changed between two versions of the policy that matters to users:
//! purposes, recipients, categories, deadlines, retention, consent rules.

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
}

fn added_removed<T, F>(out: &mut Vec<Change>, area: &'static str, old: &[T], new: &[T], id: F)
where
    F: Fn(&T) -> String,
{
    for o in old {
        if !new.iter().any(|n| id(n) == id(o)) {
            out.push(Change {
                area,
                id: id(o),
                kind: ChangeKind::Removed,
                detail: String::new(),
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
            });
        }
    }
}

fn list_change(label: &str, old: &[String], new: &[String]) -> Option<String> {
    let added: Vec<&String> = new.iter().filter(|x| !old.contains(x)).collect();
    let removed: Vec<&String> = old.iter().filter(|x| !new.contains(x)).collect();
    if added.is_empty() && removed.is_empty() {
        return None;
    }
    let mut parts = Vec::new();
    if !added.is_empty() {
        parts.push(format!("{label} added: {}", join(&added)));
    }
    if !removed.is_empty() {
        parts.push(format!("{label} removed: {}", join(&removed)));
    }
    Some(parts.join("; "))
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
    let changed = |out: &mut Vec<Change>, area: &'static str, id: &str, detail: String| {
        out.push(Change {
            area,
            id: id.to_string(),
            kind: ChangeKind::Changed,
            detail,
        });
    };

    added_removed(&mut out, "purpose", &old.purposes, &new.purposes, |p| {
        p.id.clone()
    });
    for o in &old.purposes {
        let Some(n) = new.purpose(&o.id) else {
            continue;
        };
        let mut details = Vec::new();
        details.extend(list_change("categories", &o.categories, &n.categories));
        details.extend(list_change(
            "operations",
            &strs(&o.operations),
            &strs(&n.operations),
        ));
        details.extend(list_change(
            "channels",
            &strs(&o.channels),
            &strs(&n.channels),
        ));
        if o.kind != n.kind {
            details.push(format!("kind {} -> {}", o.kind, n.kind));
        }
        if o.retention.months != n.retention.months || o.retention.after != n.retention.after {
            details.push(format!(
                "retention {} months after {} -> {} months after {}",
                o.retention.months, o.retention.after, n.retention.months, n.retention.after
            ));
        }
        if o.depersonalised_only != n.depersonalised_only {
            details.push(format!(
                "depersonalised_only {} -> {}",
                o.depersonalised_only, n.depersonalised_only
            ));
        }
        if o.name != n.name {
            details.push("wording changed".into());
        }
        if !details.is_empty() {
            changed(&mut out, "purpose", &o.id, details.join("; "));
        }
    }

    added_removed(
        &mut out,
        "recipient",
        &old.recipients,
        &new.recipients,
        |r| r.id.clone(),
    );
    for o in &old.recipients {
        let Some(n) = new.recipient(&o.id) else {
            continue;
        };
        let mut details = Vec::new();
        details.extend(list_change("purposes", &o.purposes, &n.purposes));
        if o.cross_border != n.cross_border {
            details.push(format!(
                "cross_border {} -> {}",
                o.cross_border, n.cross_border
            ));
        }
        if o.third_party != n.third_party {
            details.push(format!(
                "third_party {} -> {}",
                o.third_party, n.third_party
            ));
        }
        if o.legal_basis_required != n.legal_basis_required {
            details.push(format!(
                "legal_basis_required {} -> {}",
                o.legal_basis_required, n.legal_basis_required
            ));
        }
        if o.kind != n.kind {
            details.push(format!("kind {} -> {}", o.kind, n.kind));
        }
        if !details.is_empty() {
            changed(&mut out, "recipient", &o.id, details.join("; "));
        }
    }

    added_removed(
        &mut out,
        "category",
        &old.categories,
        &new.categories,
        |c| c.id.clone(),
    );
    for o in &old.categories {
        let Some(n) = new.category(&o.id) else {
            continue;
        };
        let of: Vec<String> = o.fields.iter().map(|f| f.id.clone()).collect();
        let nf: Vec<String> = n.fields.iter().map(|f| f.id.clone()).collect();
        let mut details = Vec::new();
        details.extend(list_change("fields", &of, &nf));
        if o.personal != n.personal {
            details.push(format!("personal {} -> {}", o.personal, n.personal));
        }
        if !details.is_empty() {
            changed(&mut out, "category", &o.id, details.join("; "));
        }
    }

    for ((k, a), (_, b)) in old
        .deadlines
        .entries()
        .iter()
        .zip(new.deadlines.entries().iter())
    {
        if a != b {
            changed(&mut out, "deadline", k, format!("{a} -> {b} working days"));
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
        );
    }
    added_removed(&mut out, "source", &old.sources, &new.sources, |s| {
        s.id.clone()
    });
    for o in &old.forms {
        if let Some(n) = new.form(&o.id) {
            let f = |form: &crate::model::Form| -> Vec<String> {
                form.fields
                    .iter()
                    .map(|x| format!("{}{}", x.field, if x.required { " (required)" } else { "" }))
                    .collect()
            };
            if let Some(d) = list_change("fields", &f(o), &f(n)) {
                changed(&mut out, "form", &o.id, d);
            }
        }
    }
    if old.operator.bin != new.operator.bin
        || old.operator.address != new.operator.address
        || old.operator.name != new.operator.name
    {
        changed(
            &mut out,
            "operator",
            "operator",
            "operator's name, BIN or address changed".into(),
        );
    }
    out
}
