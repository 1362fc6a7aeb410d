//! `derbes systems add|list|remove` and `derbes outbox run|list|retry|dead|confirm`:
//! the connected systems and the events they must follow, from the server
//! (audited as `system:cli`).

use derbes_engine::{Actor, EventView, NewSystem, OutboxQuery};
use derbes_relay::{Relay, RelayConfig};

use super::staff::engine_error;
use crate::cli::{OutboxCommand, RelayArgs, SystemsCommand};
use crate::out::{self, CliError, Outcome};

/// The relay's configuration from the command line.
pub(crate) fn relay_config(args: &RelayArgs) -> RelayConfig {
    let mut c = RelayConfig {
        nats_url: args.nats_url.clone(),
        ..RelayConfig::default()
    };
    c.backoff.max_attempts = args.outbox_max_attempts;
    c.backoff.base = std::time::Duration::from_millis(args.outbox_retry_ms);
    c
}

fn line(e: &EventView) -> String {
    let error = e
        .last_error
        .as_deref()
        .map(|x| format!("  ({x})"))
        .unwrap_or_default();
    format!(
        "{}  {:<18} {:<10} {:<9} tries {:<2} {}{}{error}",
        e.event_id,
        e.kind,
        e.system,
        e.state,
        e.attempts,
        e.subject_id.as_deref().unwrap_or("-"),
        e.request_id
            .as_deref()
            .map(|r| format!("  request {r}"))
            .unwrap_or_default(),
    )
}

fn print_events(list: &[EventView], json: bool, none: &str) -> Result<(), CliError> {
    if json {
        out::json(&list)?;
    } else if list.is_empty() {
        crate::outln!("{none}");
    } else {
        for e in list {
            crate::outln!("{}", line(e));
        }
    }
    Ok(())
}

pub fn systems(cmd: SystemsCommand, json: bool) -> Result<Outcome, CliError> {
    super::runtime()?.block_on(async move {
        let actor = Actor::system(derbes_engine::SystemJob::Cli);
        match cmd {
            SystemsCommand::Add {
                engine: args,
                name,
                categories,
                webhook,
                nats_subject,
                sends_notices,
                confirm,
            } => {
                let (engine, _) = super::serve::open_engine(&args).await?;
                let new = NewSystem {
                    name,
                    categories,
                    sends_notices,
                    webhook,
                    nats_subject,
                    confirm,
                };
                let c = engine.connect_system(&actor, &new).await.map_err(engine_error)?;
                engine.close().await;
                if json {
                    out::json(&c)?;
                } else {
                    crate::outln!(
                        "{} connected ({} {}, confirms by {}). Signing secret, shown only now:\n\n    {}\n",
                        c.system.name, c.system.transport, c.system.target, c.system.confirm, c.secret
                    );
                }
                Ok(Outcome::Ok)
            }
            SystemsCommand::List { engine: args, removed } => {
                let (engine, _) = super::serve::open_engine(&args).await?;
                let list = engine.systems(&actor, removed).await.map_err(engine_error)?;
                engine.close().await;
                if json {
                    out::json(&list)?;
                } else if list.is_empty() {
                    crate::outln!("no connected systems");
                } else {
                    for s in &list {
                        let gone = s
                            .removed_at
                            .map(|t| format!("  removed {}", crate::out::almaty(t)))
                            .unwrap_or_default();
                        crate::outln!(
                            "{:<16} {:<8} {:<40} {:<9} {}{}{gone}",
                            s.name,
                            s.transport,
                            s.target,
                            s.confirm,
                            s.categories.join(","),
                            if s.sends_notices { " +notices" } else { "" }
                        );
                    }
                }
                Ok(Outcome::Ok)
            }
            SystemsCommand::Remove { engine: args, name } => {
                let (engine, _) = super::serve::open_engine(&args).await?;
                engine.disconnect_system(&actor, &name).await.map_err(engine_error)?;
                engine.close().await;
                if json {
                    out::json(&serde_json::json!({"name": name, "removed": true}))?;
                } else {
                    crate::outln!("{name} disconnected");
                }
                Ok(Outcome::Ok)
            }
        }
    })
}

pub fn run(cmd: OutboxCommand, json: bool) -> Result<Outcome, CliError> {
    super::runtime()?.block_on(async move {
        let actor = Actor::system(derbes_engine::SystemJob::Cli);
        match cmd {
            OutboxCommand::Run {
                engine: args,
                relay,
                until_idle,
            } => {
                let (engine, _) = super::serve::open_engine(&args).await?;
                let mut r = Relay::new(engine.clone(), relay_config(&relay));
                if !until_idle {
                    r.run(async {
                        let _ = tokio::signal::ctrl_c().await;
                    })
                    .await;
                    engine.shutdown().await;
                    return Ok(Outcome::Ok);
                }
                let mut total = derbes_relay::Pass::default();
                loop {
                    let p = r.run_once().await.map_err(engine_error)?;
                    total.delivered += p.delivered;
                    total.failed += p.failed;
                    if p.delivered + p.failed == 0 {
                        break;
                    }
                }
                let pending = engine
                    .outbox(
                        &actor,
                        &OutboxQuery {
                            state: Some("pending".into()),
                            limit: Some(10_000),
                            ..OutboxQuery::default()
                        },
                    )
                    .await
                    .map_err(engine_error)?
                    .len();
                engine.shutdown().await;
                if json {
                    out::json(&serde_json::json!({"delivered": total.delivered, "failed": total.failed, "pending": pending}))?;
                } else {
                    crate::outln!(
                        "{} delivered, {} failed attempt(s), {pending} pending",
                        total.delivered,
                        total.failed
                    );
                }
                Ok(if pending > 0 { Outcome::Negative } else { Outcome::Ok })
            }
            OutboxCommand::List {
                engine: args,
                state,
                system,
                request,
            } => {
                let (engine, _) = super::serve::open_engine(&args).await?;
                let q = OutboxQuery {
                    state,
                    system,
                    request_id: request,
                    limit: Some(10_000),
                    ..OutboxQuery::default()
                };
                let list = engine.outbox(&actor, &q).await.map_err(engine_error)?;
                engine.close().await;
                print_events(&list, json, "no events")?;
                Ok(Outcome::Ok)
            }
            OutboxCommand::Dead(args) => {
                let (engine, _) = super::serve::open_engine(&args).await?;
                let q = OutboxQuery {
                    state: Some("dead".into()),
                    limit: Some(10_000),
                    ..OutboxQuery::default()
                };
                let list = engine.outbox(&actor, &q).await.map_err(engine_error)?;
                engine.close().await;
                print_events(&list, json, "no dead events")?;
                Ok(if list.is_empty() { Outcome::Ok } else { Outcome::Negative })
            }
            OutboxCommand::Retry { engine: args, event_id } => {
                let (engine, _) = super::serve::open_engine(&args).await?;
                let e = engine.retry_event(&actor, &event_id).await.map_err(engine_error)?;
                engine.close().await;
                print_events(std::slice::from_ref(&e), json, "")?;
                Ok(Outcome::Ok)
            }
            OutboxCommand::Confirm {
                engine: args,
                event_id,
                reason,
            } => {
                let (engine, _) = super::serve::open_engine(&args).await?;
                let e = engine
                    .confirm_event_manually(&actor, &event_id, &reason)
                    .await
                    .map_err(engine_error)?;
                engine.close().await;
                print_events(std::slice::from_ref(&e), json, "")?;
                Ok(Outcome::Ok)
            }
        }
    })
}
