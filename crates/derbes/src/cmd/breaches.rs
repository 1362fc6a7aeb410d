//! `derbes breaches report|list|show|act|notice|notify-subjects` and
//! `derbes notices`: the breach register and notices to users from the
//! server (audited as `system:cli`).

use derbes_engine::{Actor, BreachStep, BreachView, NewBreach, NoticeView};

use super::staff::engine_error;
use crate::cli::{BreachesCommand, EngineArgs};
use crate::out::{self, CliError, Outcome};

pub(crate) fn breach_line(b: &BreachView) -> String {
    let late = if b.overdue { "  OVERDUE" } else { "" };
    format!(
        "{}  breach {:<9} notice due {}  {} subject(s){}  {}{late}",
        b.breach_id,
        b.state,
        b.notice_due,
        b.affected_count,
        if b.count_known { "" } else { " (estimate)" },
        b.categories.join(",")
    )
}

pub(crate) fn notice_line(n: &NoticeView) -> String {
    let late = if n.overdue { "  OVERDUE" } else { "" };
    format!(
        "{}  notice {:<9} {:<13} due {}  {}{late}",
        n.notice_id,
        n.kind,
        n.state,
        n.due_at
            .map(|d| d
                .with_timezone(&derbes_kz::ALMATY)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, false))
            .unwrap_or_else(|| "-".into()),
        n.subject_id
    )
}

pub fn run(cmd: BreachesCommand, json: bool) -> Result<Outcome, CliError> {
    super::runtime()?.block_on(async move {
        let actor = Actor::system(derbes_engine::SystemJob::Cli);
        match cmd {
            BreachesCommand::Report {
                engine: args,
                description,
                categories,
                subjects,
                affected_count,
                detected_at,
                cause,
                measures,
            } => {
                let detected_at = detected_at
                    .map(|t| {
                        chrono::DateTime::parse_from_rfc3339(&t).map_err(|_| {
                            CliError::usage(
                                "--detected-at: RFC 3339, e.g. 2026-12-03T10:15:00+05:00",
                            )
                        })
                    })
                    .transpose()?;
                let subjects = subjects
                    .iter()
                    .map(|s| {
                        derbes_core::SubjectId::parse(s).map_err(|_| {
                            CliError::usage(format!("--subjects: `{s}` is not a subject id"))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let (engine, _) = super::serve::open_engine(&args).await?;
                let b = engine
                    .report_breach(
                        &actor,
                        &NewBreach {
                            detected_at,
                            description,
                            categories,
                            subjects,
                            affected_count,
                            cause,
                            measures,
                        },
                    )
                    .await
                    .map_err(engine_error)?;
                engine.close().await;
                if json {
                    out::json(&b)?;
                } else {
                    crate::outln!("{}", breach_line(&b));
                }
                Ok(Outcome::Ok)
            }
            BreachesCommand::List {
                engine: args,
                overdue,
                state,
            } => {
                let (engine, _) = super::serve::open_engine(&args).await?;
                let list = engine
                    .breaches(&actor, state.as_deref(), overdue, 10_000)
                    .await
                    .map_err(engine_error)?;
                engine.close().await;
                if json {
                    out::json(&list)?;
                } else if list.is_empty() {
                    crate::outln!(
                        "no breaches{}",
                        if overdue { " with a late notice" } else { "" }
                    );
                } else {
                    for b in &list {
                        crate::outln!("{}", breach_line(b));
                    }
                }
                Ok(if overdue && !list.is_empty() {
                    Outcome::Negative
                } else {
                    Outcome::Ok
                })
            }
            BreachesCommand::Show {
                engine: args,
                breach_id,
            } => {
                let (engine, _) = super::serve::open_engine(&args).await?;
                let b = engine
                    .breach(&actor, &breach_id)
                    .await
                    .map_err(engine_error)?;
                engine.close().await;
                if json {
                    out::json(&b)?;
                } else {
                    crate::outln!("{}", breach_line(&b));
                    for (k, v) in [
                        ("description", &b.description),
                        ("cause", &b.cause),
                        ("measures", &b.measures),
                        ("reference", &b.reference),
                    ] {
                        if let Some(v) = v {
                            crate::outln!("  {k}: {v}");
                        }
                    }
                }
                Ok(Outcome::Ok)
            }
            BreachesCommand::Act {
                engine: args,
                breach_id,
                action,
                cause,
                measures,
                reference,
            } => {
                let action = serde_json::from_value(serde_json::Value::String(action))
                    .map_err(|_| CliError::usage("--action: assess, notify or close"))?;
                let (engine, _) = super::serve::open_engine(&args).await?;
                let b = engine
                    .act_on_breach(
                        &actor,
                        &breach_id,
                        &BreachStep {
                            action,
                            cause,
                            measures,
                            reference,
                        },
                    )
                    .await
                    .map_err(engine_error)?;
                engine.close().await;
                if json {
                    out::json(&b)?;
                } else {
                    crate::outln!("{}", breach_line(&b));
                }
                Ok(Outcome::Ok)
            }
            BreachesCommand::Notice {
                engine: args,
                breach_id,
                document,
            } => {
                let (engine, _) = super::serve::open_engine(&args).await?;
                let notice = engine
                    .breach_notice(&actor, &breach_id, document.lang.into())
                    .await
                    .map_err(engine_error)?;
                engine.close().await;
                out::document(&document, |_, format| format.write(&notice))?;
                Ok(Outcome::Ok)
            }
            BreachesCommand::NotifySubjects {
                engine: args,
                breach_id,
            } => {
                let (engine, _) = super::serve::open_engine(&args).await?;
                let n = engine
                    .notify_breach_subjects(&actor, &breach_id)
                    .await
                    .map_err(engine_error)?;
                engine.close().await;
                if json {
                    out::json(&serde_json::json!({"notices": n}))?;
                } else {
                    crate::outln!("{n} notice(s) to send through the app's sender");
                }
                Ok(Outcome::Ok)
            }
        }
    })
}

pub fn notices(args: EngineArgs, overdue: bool, json: bool) -> Result<Outcome, CliError> {
    super::runtime()?.block_on(async move {
        let actor = Actor::system(derbes_engine::SystemJob::Cli);
        let (engine, _) = super::serve::open_engine(&args).await?;
        let list = engine
            .notices(&actor, None, false, overdue, 10_000)
            .await
            .map_err(engine_error)?;
        engine.close().await;
        if json {
            out::json(&list)?;
        } else if list.is_empty() {
            crate::outln!("no notices{}", if overdue { " past due" } else { "" });
        } else {
            for n in &list {
                crate::outln!("{}", notice_line(n));
            }
        }
        Ok(if overdue && !list.is_empty() {
            Outcome::Negative
        } else {
            Outcome::Ok
        })
    })
}
