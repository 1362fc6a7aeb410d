//! `derbes requests list|show`: the DPO's queue from the command line
//! (run on the server, audited as `system:cli`).

use derbes_engine::{Actor, RequestState, RequestView};

use crate::cli::RequestsCommand;
use crate::out::{self, CliError, Outcome};

fn line(r: &RequestView) -> String {
    let late = if r.overdue { "  OVERDUE" } else { "" };
    format!(
        "{}  {:<13} {:<18} due {}  {}{late}",
        r.request_id,
        r.kind,
        r.state,
        r.due,
        r.subject_id
            .map_or_else(|| "(no subject)".to_string(), |s| s.to_string())
    )
}

pub fn run(cmd: RequestsCommand, json: bool) -> Result<Outcome, CliError> {
    super::runtime()?.block_on(async move {
        let actor = Actor::system(derbes_engine::SystemJob::Cli);
        match cmd {
            RequestsCommand::List { engine: args, overdue, state } => {
                let state = match state.as_deref() {
                    None => None,
                    Some(s) => Some(
                        serde_json::from_value::<RequestState>(serde_json::Value::String(s.to_string()))
                            .map_err(|_| CliError::usage("--state: received, identity_verified, in_progress, completed or refused"))?,
                    ),
                };
                let (engine, _) = super::serve::open_engine(&args).await?;
                let list = engine.requests(&actor, &derbes_engine::Queue { state, overdue, limit: 1000, ..Default::default() }).await.map_err(super::staff::engine_error)?;
                // The DPO's other duties with deadlines: a breach notice to the
                // authorised body, a notice to a user — late ones with the requests.
                let (breaches, notices) = if overdue {
                    (
                        engine.breaches(&actor, None, true, 1000).await.map_err(super::staff::engine_error)?,
                        engine.notices(&actor, None, false, true, 1000).await.map_err(super::staff::engine_error)?,
                    )
                } else {
                    (Vec::new(), Vec::new())
                };
                engine.close().await;
                let late = list.len() + breaches.len() + notices.len();
                if json {
                    let mut items: Vec<serde_json::Value> = Vec::with_capacity(late);
                    for r in &list {
                        items.push(serde_json::to_value(r).map_err(|e| CliError::failed(e.to_string()))?);
                    }
                    for (duty, v) in breaches
                        .iter()
                        .map(|b| ("breach_notice", serde_json::to_value(b)))
                        .chain(notices.iter().map(|n| ("subject_notice", serde_json::to_value(n))))
                    {
                        let mut v = v.map_err(|e| CliError::failed(e.to_string()))?;
                        v["duty"] = duty.into();
                        items.push(v);
                    }
                    out::json(&items)?;
                } else if late == 0 {
                    crate::outln!("no requests{}", if overdue { " past due" } else { "" });
                } else {
                    for r in &list {
                        crate::outln!("{}", line(r));
                    }
                    for b in &breaches {
                        crate::outln!("{}", super::breaches::breach_line(b));
                    }
                    for n in &notices {
                        crate::outln!("{}", super::breaches::notice_line(n));
                    }
                }
                Ok(if overdue && late > 0 { Outcome::Negative } else { Outcome::Ok })
            }
            RequestsCommand::Show { engine: args, request_id } => {
                let (engine, _) = super::serve::open_engine(&args).await?;
                let r = engine.request(&actor, &request_id).await.map_err(super::staff::engine_error)?;
                engine.close().await;
                if json {
                    out::json(&r)?;
                } else {
                    crate::outln!("{}", line(&r));
                    crate::outln!("received {} via {} from {}", out::almaty(r.received_at), r.channel, r.requester);
                    for s in &r.steps {
                        let said = s.said.as_ref().map(|x| x.to_string());
                        let reason: String =
                            s.reason.iter().chain(said.iter()).map(|x| format!(" — {x}")).collect();
                        let by = s.actor_name.as_deref().unwrap_or(&s.actor);
                        crate::outln!("  {}  {:<18} by {by}{reason}", out::almaty(s.at), s.to);
                    }
                }
                Ok(Outcome::Ok)
            }
            RequestsCommand::Certificate { engine: args, request_id, document } => {
                let (engine, _) = super::serve::open_engine(&args).await?;
                let c = engine.certificate(&actor, &request_id).await.map_err(super::staff::engine_error)?;
                engine.close().await;
                if json {
                    out::json(&c)?;
                } else {
                    out::document(&document, |lang, format| format.write(&engine.certificate_document(&c, lang)))?;
                }
                Ok(Outcome::Ok)
            }
        }
    })
}

/// `derbes reconsent`: who must consent again, and for what.
pub fn reconsent(
    args: crate::cli::EngineArgs,
    after: Option<String>,
    limit: i64,
    json: bool,
) -> Result<Outcome, CliError> {
    let after = after
        .map(|a| {
            derbes_core::SubjectId::parse(&a).map_err(|_| CliError::usage("--after: a subject id"))
        })
        .transpose()?;
    super::runtime()?.block_on(async move {
        let (engine, _) = super::serve::open_engine(&args).await?;
        let page = engine
            .reconsent(&Actor::system(derbes_engine::SystemJob::Cli), after, limit)
            .await
            .map_err(super::staff::engine_error)?;
        engine.close().await;
        if json {
            out::json(&page)?;
        } else if page.items.is_empty() {
            crate::outln!("nobody must consent again to version {}", page.version);
        } else {
            for i in &page.items {
                crate::outln!(
                    "{}  accepted {}  needs: {}",
                    i.subject_id,
                    i.accepted_version,
                    i.changes.join("; ")
                );
            }
            if let Some(next) = &page.next_after {
                crate::outln!("more: --after {next}");
            }
        }
        Ok(if page.items.is_empty() {
            Outcome::Ok
        } else {
            Outcome::Negative
        })
    })
}
