//! `derbes keys status|rotate|retire`.

use std::sync::Arc;

use crate::cli::KeysCommand;
use crate::out::{self, CliError, Outcome};

pub fn run(cmd: KeysCommand, json: bool) -> Result<Outcome, CliError> {
    super::runtime()?.block_on(async move {
        match cmd {
            KeysCommand::Status(args) => {
                let (engine, _) = super::serve::open_engine(&args).await?;
                let s = engine.key_status().await?;
                engine.close().await;
                if json {
                    out::json(&s)?;
                } else {
                    crate::outln!("active KEK {} (from {})", s.active_kek, s.source);
                    for k in &s.keks {
                        let mark = match (k.active, k.in_keyring) {
                            (true, _) => "active",
                            (false, true) => "previous",
                            (false, false) => "MISSING",
                        };
                        crate::outln!("  {} {:<8} wraps {} data keys", k.id, mark, k.data_keys);
                    }
                    crate::outln!("subjects: {} active, {} destroyed", s.active_subjects, s.destroyed_subjects);
                    if s.pending_rewrap > 0 {
                        out::warn(&format!("{} data keys are still under a previous KEK: run `derbes keys rotate` to finish", s.pending_rewrap));
                    }
                    if s.orphaned > 0 {
                        out::warn(&format!("{} data keys are under a KEK missing from the keyring and cannot be read", s.orphaned));
                    }
                }
                Ok(if s.orphaned > 0 { Outcome::Negative } else { Outcome::Ok })
            }
            KeysCommand::Rotate { engine: args, batch } => {
                let (engine, _) = super::serve::open_engine(&args).await?;
                let before = engine.key_status().await?;
                let total = if before.pending_rewrap > 0 { before.pending_rewrap } else { before.keks.iter().map(|k| k.data_keys).sum() };
                let bar = Arc::new(super::progress_bar(total.max(0) as u64, json, "re-wrapping"));
                let b2 = bar.clone();
                let report = engine.rotate_keys(batch, None, &move |done, _| b2.set_position(done)).await?;
                bar.finish_and_clear();
                engine.close().await;
                if json {
                    out::json(&report)?;
                } else {
                    match &report.new_kek {
                        Some(k) => crate::outln!("new KEK {k} is active"),
                        None => crate::outln!("resumed the unfinished rotation to {}", report.active_kek),
                    }
                    crate::outln!("{} data keys re-wrapped, {} remaining", report.rewrapped, report.remaining);
                }
                Ok(Outcome::Ok)
            }
            KeysCommand::Retire { engine: args, id } => {
                let (engine, _) = super::serve::open_engine(&args).await?;
                let done = engine.retire_kek(&id).await;
                engine.close().await;
                done?;
                if json {
                    out::json(&serde_json::json!({"retired": id}))?;
                } else {
                    crate::outln!("KEK {id} retired: its key file is gone");
                }
                Ok(Outcome::Ok)
            }
        }
    })
}
