//! `derbes dev seed`.

use std::sync::Arc;

use crate::cli::DevCommand;
use crate::out::{self, CliError, Outcome};

pub fn run(cmd: DevCommand, json: bool) -> Result<Outcome, CliError> {
    match cmd {
        DevCommand::Seed { engine: args, subjects, seed, start, concurrency } => super::runtime()?.block_on(async move {
            let (engine, config) = super::serve::open_engine(&args).await?;
            let bar = Arc::new(super::progress_bar(subjects, json, "registering"));
            let b2 = bar.clone();
            let report = engine.seed(seed, start, subjects, concurrency, Arc::new(move |n| b2.set_position(n))).await?;
            bar.finish_and_clear();
            engine.close().await;
            if json {
                out::json(&report)?;
            } else {
                crate::outln!(
                    "{}: {} registered, {} minors refused by the age gate, {} already present; {} consents, {} organisations",
                    config.redacted(),
                    report.registered,
                    report.refused_minors,
                    report.duplicates,
                    report.consents,
                    report.organizations
                );
                crate::outln!(
                    "{:.0} registrations/s ({:.2} s, concurrency {concurrency}); {:.0} lookups by IIN/s over {} lookups",
                    report.registrations_per_second,
                    report.seconds,
                    report.lookups_per_second,
                    report.lookups
                );
            }
            Ok(Outcome::Ok)
        }),
    }
}
