//! `derbes staff add|list|revoke`: run by the operator on the machine that
//! holds the data directory, as derbes itself (audited as `system:cli`).

use derbes_engine::Actor;

use crate::cli::StaffCommand;
use crate::out::{self, CliError, Outcome};

pub fn run(cmd: StaffCommand, json: bool) -> Result<Outcome, CliError> {
    super::runtime()?.block_on(async move {
        let actor = Actor::system(derbes_engine::SystemJob::Cli);
        match cmd {
            StaffCommand::Add { engine: args, name, role } => {
                let (engine, _) = super::serve::open_engine(&args).await?;
                let (staff, token) = engine.create_token(&actor, &name, &role).await.map_err(engine_error)?;
                engine.close().await;
                if json {
                    out::json(&serde_json::json!({"token_id": staff.token_id, "name": staff.name, "role": staff.role, "token": token}))?;
                } else {
                    crate::outln!("{} ({}) added as {}. Token, shown only now:\n\n    {token}\n", staff.name, staff.token_id, staff.role);
                }
                Ok(Outcome::Ok)
            }
            StaffCommand::List(args) => {
                let (engine, _) = super::serve::open_engine(&args).await?;
                let list = engine.staff(&actor).await.map_err(engine_error)?;
                engine.close().await;
                if json {
                    out::json(&list)?;
                } else {
                    for s in &list {
                        let state = match s.revoked_at {
                            Some(t) => format!("revoked {}", crate::out::almaty(t)),
                            None => "active".into(),
                        };
                        crate::outln!("{}  {:<26} {:<24} {state}", s.token_id, s.role, s.name);
                    }
                }
                Ok(Outcome::Ok)
            }
            StaffCommand::Revoke { engine: args, token_id } => {
                let (engine, _) = super::serve::open_engine(&args).await?;
                let done = engine.revoke_token(&actor, &token_id).await.map_err(engine_error)?;
                engine.close().await;
                if json {
                    out::json(&serde_json::json!({"token_id": token_id, "revoked_now": done}))?;
                } else if done {
                    crate::outln!("revoked {token_id}");
                } else {
                    crate::outln!("{token_id} was already revoked");
                }
                Ok(Outcome::Ok)
            }
        }
    })
}

/// Engine refusals as one readable line (field: reason).
pub(crate) fn engine_error(e: derbes_engine::EngineError) -> CliError {
    use derbes_engine::EngineError as E;
    match e {
        E::Invalid(problems) => CliError::invalid(
            problems
                .iter()
                .map(|p| format!("{}: {} ({})", p.field, p.reason, p.code))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        e @ E::NotFound(_) => CliError::not_found(e.to_string()),
        e @ E::Forbidden(_) => CliError::refused("forbidden", e.to_string(), true),
        e @ E::Destroyed => CliError::refused("destroyed", e.to_string(), true),
        e @ E::Denied { .. } => CliError::refused("denied", e.to_string(), true),
        other => CliError::failed(other.to_string()),
    }
}
