//! `derbes purge [--dry-run]`: the retention purge from the command line
//! (run on the server, audited as `system:purge`).

use std::sync::Arc;

use derbes_engine::Actor;

use crate::cli::EngineArgs;
use crate::out::{self, CliError, Outcome};

pub fn run(args: EngineArgs, dry_run: bool, json: bool) -> Result<Outcome, CliError> {
    super::runtime()?.block_on(async move {
        let (engine, _) = super::serve::open_engine(&args).await?;
        let total = engine.stored_fields().await.map_err(super::staff::engine_error)?;
        let bar = Arc::new(super::progress_bar(total.max(0) as u64, json, "scanning"));
        let b2 = bar.clone();
        let report = engine
            .purge(&Actor::system(derbes_engine::SystemJob::Purge), dry_run, &move |n| b2.set_position(n))
            .await
            .map_err(super::staff::engine_error)?;
        bar.finish_and_clear();
        engine.close().await;
        if json {
            out::json(&report)?;
            return Ok(Outcome::Ok);
        }
        let verb = if dry_run { "would destroy" } else { "destroyed" };
        for item in &report.items {
            let what = if item.whole_subject {
                "the whole subject".to_string()
            } else {
                item.fields.join(", ")
            };
            crate::outln!("{}  {verb} {what}: {}", item.subject_id, item.reason);
        }
        crate::outln!(
            "{} fields looked at; {verb} {} subjects, {} single fields, {} previous values; {} subjects kept by a legal hold",
            report.scanned_fields,
            report.subjects_destroyed,
            report.fields_destroyed,
            report.previous_values_destroyed,
            report.held_subjects
        );
        Ok(Outcome::Ok)
    })
}
