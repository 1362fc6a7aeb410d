//! `derbes kz ...`: Kazakhstan primitives from the command line.

use chrono::DateTime;
use derbes_kz::{Bin, Coverage, Iin, KzIban, KzPhone, WorkCalendar};
use serde_json::{json, Value};

use crate::cli::KzCommand;
use crate::out::{self, CliError, Outcome};

/// Print a validation result; exit 1 when invalid.
fn verdict(
    json: bool,
    what: &str,
    result: Result<(Value, String), String>,
) -> Result<Outcome, CliError> {
    match result {
        Ok((mut fields, human)) => {
            if json {
                if let Some(map) = fields.as_object_mut() {
                    map.insert("valid".into(), Value::Bool(true));
                }
                out::json(&fields)?;
            } else {
                crate::outln!("{} {what}: {human}", out::verdict(true, "valid"));
            }
            Ok(Outcome::Ok)
        }
        Err(reason) => {
            if json {
                out::json(&json!({ "valid": false, "reason": reason }))?;
            } else {
                crate::outln!("{} {what}: {reason}", out::verdict(false, "invalid"));
            }
            Ok(Outcome::Negative)
        }
    }
}

fn coverage_json(c: &Coverage) -> Value {
    match c {
        Coverage::Complete => json!("complete"),
        Coverage::Provisional(reason) => json!({ "provisional": reason }),
    }
}

pub fn run(cmd: KzCommand, json: bool) -> Result<Outcome, CliError> {
    match cmd {
        KzCommand::Iin { iin } => {
            let r = Iin::parse(iin.trim()).map_err(|e| e.to_string()).map(|i| {
                (
                    json!({ "birth_date": i.birth_date().to_string(), "sex": i.sex().as_str() }),
                    format!("born {}, {}", i.birth_date(), i.sex().as_str()),
                )
            });
            verdict(json, "IIN", r)
        }
        KzCommand::Bin { bin } => {
            let r = Bin::parse(bin.trim()).map_err(|e| e.to_string()).map(|b| {
                let (y, m) = b.registered();
                let registered = format!("{y:04}-{m:02}");
                (
                    json!({
                        "registered": registered,
                        "entity": b.entity_type().as_str(),
                        "attribute": b.attribute().as_str(),
                    }),
                    format!(
                        "registered {registered}, {}, {}",
                        b.entity_type().as_str().replace('_', " "),
                        b.attribute().as_str().replace('_', " ")
                    ),
                )
            });
            verdict(json, "BIN", r)
        }
        KzCommand::Iban { iban } => {
            let r = KzIban::parse(&iban).map_err(|e| e.to_string()).map(|i| {
                (
                    json!({ "iban": i.as_str(), "bank_code": i.bank_code() }),
                    format!("{} (bank code {})", i.as_str(), i.bank_code()),
                )
            });
            verdict(json, "IBAN", r)
        }
        KzCommand::Phone { phone } => {
            let r = KzPhone::parse(&phone).map_err(|e| e.to_string()).map(|p| {
                let kind = if p.is_mobile() { "mobile" } else { "landline" };
                (
                    json!({ "e164": p.e164(), "mobile": p.is_mobile() }),
                    format!("{} ({kind})", p.e164()),
                )
            });
            verdict(json, "phone number", r)
        }
        KzCommand::Calendar { year } => calendar(year, json),
        KzCommand::Deadline {
            received,
            working_days,
        } => deadline(&received, working_days, json),
    }
}

fn calendar(year: i32, json: bool) -> Result<Outcome, CliError> {
    let y = WorkCalendar::kazakhstan().year(year)?;
    if let Coverage::Provisional(reason) = &y.coverage {
        out::warn(reason);
    }
    if json {
        let dates: Vec<String> = y
            .non_working_days
            .iter()
            .map(|d| d.date.to_string())
            .collect();
        out::json(&json!({
            "year": y.year,
            "non_working_days": dates,
            "working_days": y.working_days,
            "coverage": coverage_json(&y.coverage),
            "days": y.non_working_days,
        }))?;
    } else {
        crate::outln!(
            "{year}: {} working days, {} non-working days ({} besides weekends)",
            y.working_days,
            y.non_working_days.len(),
            y.non_working_days
                .iter()
                .filter(|d| d.kind != "weekend")
                .count()
        );
        for d in y.non_working_days.iter().filter(|d| d.kind != "weekend") {
            crate::outln!(
                "  {} {:<3} {:<14} {}",
                d.date,
                d.date.format("%a"),
                d.kind,
                d.note.as_deref().unwrap_or("")
            );
        }
    }
    Ok(Outcome::Ok)
}

fn deadline(received: &str, n: u32, json: bool) -> Result<Outcome, CliError> {
    let at = DateTime::parse_from_rfc3339(received.trim()).map_err(|e| {
        CliError::failed(format!(
            "--received must be an RFC 3339 time such as 2024-05-03T17:30:00+05:00 ({e})"
        ))
    })?;
    let d = WorkCalendar::kazakhstan().deadline(&at, n)?;
    if let Coverage::Provisional(reason) = &d.coverage {
        out::warn(reason);
    }
    if json {
        out::json(&json!({
            "due": d.due_rfc3339(),
            "working_day": d.day.to_string(),
            "coverage": coverage_json(&d.coverage),
        }))?;
    } else {
        crate::outln!(
            "due {} (end of {} in Asia/Almaty)",
            d.due_rfc3339(),
            d.day.format("%A %-d %B %Y")
        );
    }
    Ok(Outcome::Ok)
}
