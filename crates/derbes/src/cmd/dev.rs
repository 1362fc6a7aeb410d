//! `derbes dev seed`.

use std::sync::Arc;

use crate::cli::DevCommand;
use crate::out::{self, CliError, Outcome};

pub fn run(cmd: DevCommand, json: bool) -> Result<Outcome, CliError> {
    match cmd {
        DevCommand::Seed { out: Some(file), subjects, seed, start, .. } => write_file(&file, subjects, seed, start, json),
        DevCommand::Seed { engine: args, subjects, seed, start, concurrency, out: None } => super::runtime()?.block_on(async move {
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

/// The synthetic users as JSON lines for `derbes import`: each consent
/// (those given at registration and later) with a `given_at` in the past
/// two years, the data collected with the policy's acceptance.
fn write_file(
    file: &std::path::Path,
    subjects: u64,
    seed: u64,
    start: u64,
    json: bool,
) -> Result<Outcome, CliError> {
    use std::io::Write;
    let now = chrono::Utc::now();
    let today = derbes_core::almaty_date(now);
    let f = std::fs::File::create(file)
        .map_err(|e| CliError::failed(format!("cannot write {}: {e}", file.display())))?;
    let mut w = std::io::BufWriter::new(f);
    let bar = super::progress_bar(subjects, json, "writing");
    let mut minors = 0;
    for i in start..start + subjects {
        let s = derbes_core::synthetic::subject(seed, i, today);
        minors += u64::from(s.minor);
        let mut line = s.registration;
        let accepted = now - chrono::Duration::minutes(((i * 7919) % (730 * 24 * 60)) as i64 + 60);
        let at = |d: chrono::DateTime<chrono::Utc>| {
            serde_json::Value::from(d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        };
        if let Some(cs) = line["consents"].as_array_mut() {
            for c in cs.iter_mut() {
                c["given_at"] = at(accepted);
            }
            for (k, mut c) in s.later_consents.into_iter().enumerate() {
                c["given_at"] =
                    at(accepted + chrono::Duration::days(k as i64 + 1).min(now - accepted));
                cs.push(c);
            }
        }
        line["collected_at"] = at(accepted);
        serde_json::to_writer(&mut w, &line).map_err(|e| CliError::failed(e.to_string()))?;
        w.write_all(b"\n")
            .map_err(|e| CliError::failed(e.to_string()))?;
        bar.inc(1);
    }
    w.flush().map_err(|e| CliError::failed(e.to_string()))?;
    bar.finish_and_clear();
    if json {
        out::json(
            &serde_json::json!({"file": file.display().to_string(), "subjects": subjects, "minors": minors}),
        )?;
    } else {
        crate::outln!(
            "{}: {subjects} synthetic users ({minors} of them minors, whom an import refuses)",
            file.display()
        );
    }
    Ok(Outcome::Ok)
}
