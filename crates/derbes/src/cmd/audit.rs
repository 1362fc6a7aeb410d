//! `derbes audit verify|checkpoint`.

use crate::cli::AuditCommand;
use crate::out::{self, CliError, Outcome};

pub fn run(cmd: AuditCommand, json: bool) -> Result<Outcome, CliError> {
    super::runtime()?.block_on(async move {
        match cmd {
            AuditCommand::Verify(args) => {
                let (engine, config) = super::serve::open_engine(&args).await?;
                let v = engine.verify_audit().await?;
                engine.close().await;
                if json {
                    out::json(&serde_json::json!({
                        "intact": v.first_bad.is_none(),
                        "records": v.records,
                        "checkpoints": v.checkpoints,
                        "first_bad": v.first_bad.as_ref().map(|(seq, why)| serde_json::json!({"seq": seq, "reason": why})),
                    }))?;
                }
                match v.first_bad {
                    None => {
                        if !json {
                            crate::outln!(
                                "{} {}: {} records, {} signed checkpoints",
                                out::verdict(true, "intact"),
                                config.redacted(),
                                v.records,
                                v.checkpoints
                            );
                        }
                        Ok(Outcome::Ok)
                    }
                    Some((seq, why)) => {
                        if !json {
                            crate::outln!("{} at record {seq}: {why}", out::verdict(false, "TAMPERED"));
                            crate::outln!("{} records before it are intact", v.records);
                        }
                        Ok(Outcome::Negative)
                    }
                }
            }
            AuditCommand::Checkpoint(args) => {
                let (engine, _) = super::serve::open_engine(&args).await?;
                let seq = engine.checkpoint().await?;
                engine.close().await;
                if json {
                    out::json(&serde_json::json!({"checkpoint": seq}))?;
                } else {
                    match seq {
                        Some(s) => crate::outln!("signed a checkpoint at record {s}"),
                        None => crate::outln!("nothing new since the last checkpoint"),
                    }
                }
                Ok(Outcome::Ok)
            }
        }
    })
}
