//! `derbes policy ...`: the policy file from the command line.

use std::path::Path;

use derbes_policy::{diff, render, Format, LoadError, LoadedPolicy};

/// The policy the binary carries (`policy/ibusiness.toml` as built): what
/// every command uses unless `--policy FILE` (or `DERBES_POLICY`) names
/// another, so `derbes serve` works from any directory.
pub(crate) const BUILT_IN: &str = include_str!("../../../../policy/ibusiness.toml");

/// How the built-in policy is named where a file's name would be.
pub(crate) const BUILT_IN_NAME: &str = "(built-in policy/ibusiness.toml)";

/// A policy file, or the built-in policy when none is named.
pub(crate) fn read(path: Option<&Path>) -> Result<LoadedPolicy, LoadError> {
    match path {
        Some(p) => LoadedPolicy::load(p),
        None => {
            LoadedPolicy::from_text(BUILT_IN.to_string()).map_err(|problems| LoadError::Invalid {
                path: BUILT_IN_NAME.into(),
                problems,
            })
        }
    }
}
use serde_json::json;

use crate::cli::{FormatArg, PolicyCommand};
use crate::out::{self, CliError, Outcome};

fn load(path: Option<&Path>) -> Result<LoadedPolicy, CliError> {
    read(path).map_err(|e| CliError::failed(e.to_string()))
}

pub fn run(cmd: PolicyCommand, json: bool) -> Result<Outcome, CliError> {
    match cmd {
        PolicyCommand::Check { file } => check(file.as_deref(), json),
        PolicyCommand::Show { file } => show(file.as_deref(), json),
        PolicyCommand::Render { file, document } => {
            let p = load(file.as_deref())?;
            out::document(&document, |lang, format| {
                let format = match format {
                    FormatArg::Md => Format::Markdown,
                    FormatArg::Html => Format::Html,
                };
                render(p.policy(), lang, format)
            })?;
            Ok(Outcome::Ok)
        }
        PolicyCommand::Diff {
            old,
            new,
            exit_code,
        } => {
            let (a, b) = (load(Some(&old))?, load(Some(&new))?);
            let changes = diff(a.policy(), b.policy());
            if json {
                out::json(&json!({
                    "old": { "version": a.policy().version, "sha256": a.sha256() },
                    "new": { "version": b.policy().version, "sha256": b.sha256() },
                    "changes": changes,
                }))?;
            } else if changes.is_empty() {
                crate::outln!(
                    "no changes that matter to users ({} -> {})",
                    a.policy().version,
                    b.policy().version
                );
            } else {
                crate::outln!(
                    "{} -> {}: {} change(s)",
                    a.policy().version,
                    b.policy().version,
                    changes.len()
                );
                for c in &changes {
                    let sign = match c.kind {
                        derbes_policy::ChangeKind::Added => "+",
                        derbes_policy::ChangeKind::Removed => "-",
                        derbes_policy::ChangeKind::Changed => "~",
                    };
                    let detail = if c.detail.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", c.detail)
                    };
                    let mark = if c.reconsent { "  [re-consent]" } else { "" };
                    crate::outln!("  {sign} {} {}{detail}{mark}", c.area, c.id);
                }
            }
            Ok(if exit_code && !changes.is_empty() {
                Outcome::Negative
            } else {
                Outcome::Ok
            })
        }
        PolicyCommand::Versions(storage) => super::serve::versions(storage, json),
    }
}

fn check(file: Option<&Path>, json: bool) -> Result<Outcome, CliError> {
    let shown = file.map_or(BUILT_IN_NAME.to_string(), |f| f.display().to_string());
    match read(file) {
        Ok(p) => {
            if json {
                out::json(&json!({
                    "valid": true,
                    "version": p.policy().version,
                    "sha256": p.sha256(),
                }))?;
            } else {
                crate::outln!(
                    "{} {}: version {}, {} purposes, {} categories, {} recipients",
                    out::verdict(true, "valid"),
                    shown,
                    p.policy().version,
                    p.policy().purposes.len(),
                    p.policy().categories.len(),
                    p.policy().recipients.len()
                );
            }
            Ok(Outcome::Ok)
        }
        Err(LoadError::Invalid { path, problems }) => {
            if json {
                out::json(&json!({ "valid": false, "file": path, "problems": problems.0 }))?;
            } else {
                crate::outln!("{}", problems.report(&path));
                crate::outln!(
                    "{} {path}: {} problem(s)",
                    out::verdict(false, "invalid"),
                    problems.0.len()
                );
            }
            Ok(Outcome::Negative)
        }
        Err(e @ LoadError::Io { .. }) => Err(CliError::failed(e.to_string())),
    }
}

fn show(file: Option<&Path>, json: bool) -> Result<Outcome, CliError> {
    let p = load(file)?;
    if json {
        out::json(&json!({ "sha256": p.sha256(), "policy": p.policy() }))?;
        return Ok(Outcome::Ok);
    }
    let m = &p.policy();
    crate::outln!(
        "{} — version {}, published {}",
        m.title.en,
        m.version,
        m.published
    );
    crate::outln!(
        "operator: {} (BIN {}), {}",
        m.operator.name.en,
        m.operator.bin,
        m.operator.address.en
    );
    crate::outln!(
        "subjects: {}+ years, citizenship {}",
        m.subjects.minimum_age,
        m.subjects.citizenship
    );
    crate::outln!("\npurposes ({}):", m.purposes.len());
    for pu in &m.purposes {
        crate::outln!(
            "  {:<24} {:<9} {}",
            pu.id,
            pu.kind.as_str(),
            pu.categories.join(", ")
        );
    }
    crate::outln!("\nrecipients ({}):", m.recipients.len());
    for r in &m.recipients {
        let abroad = if r.cross_border {
            " [cross-border]"
        } else {
            ""
        };
        crate::outln!(
            "  {:<26} {:<21} {}{abroad}",
            r.id,
            r.kind.as_str(),
            r.purposes.join(", ")
        );
    }
    crate::outln!("\ndeadlines (working days):");
    for (k, v) in m.deadlines.entries() {
        crate::outln!("  {k:<16} {v}");
    }
    crate::outln!("\nsha256 {}", p.sha256());
    Ok(Outcome::Ok)
}
