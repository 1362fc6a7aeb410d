//! `derbes import FILE`: an existing user base, line by line through the
//! registration's own validation, in batches that commit with the import's
//! checkpoint (run on the server, audited as `system:import`).

use derbes_engine::{Actor, CsvColumns, ImportLine, LineProblem};

use super::staff::engine_error;
use crate::cli::ImportArgs;
use crate::out::{self, CliError, Outcome};

type Line = (u64, Result<ImportLine, Vec<LineProblem>>);

/// The file's lines: (number, line or why not).
fn lines<'a>(
    args: &ImportArgs,
    bytes: &'a [u8],
    policy: &derbes_policy::Policy,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Box<dyn Iterator<Item = Line> + 'a>, CliError> {
    let csv = match args.format.as_deref() {
        Some(f) => f == "csv",
        None => args
            .file
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv")),
    };
    if !csv {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            CliError::invalid(format!("the file is not UTF-8 (byte {})", e.valid_up_to()))
        })?;
        return Ok(Box::new(
            text.lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .map(move |(i, l)| (i as u64 + 1, ImportLine::from_json(l, now))),
        ));
    }
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| {
            CliError::invalid(format!("the CSV header cannot be read: {}", csv_error(&e)))
        })?
        .iter()
        .map(str::to_string)
        .collect();
    let columns = CsvColumns::new(policy, &header).map_err(|p| {
        CliError::invalid(format!(
            "the CSV header: {}",
            p.iter()
                .map(|p| format!("{} {}", p.field, p.reason))
                .collect::<Vec<_>>()
                .join("; ")
        ))
    })?;
    Ok(Box::new(reader.into_records().map(move |r| match r {
        Ok(rec) => {
            let n = rec.position().map_or(0, |p| p.line());
            let row: Vec<String> = rec.iter().map(str::to_string).collect();
            (n, columns.line(&row, now))
        }
        Err(e) => (
            e.position().map_or(0, |p| p.line()),
            Err(vec![LineProblem {
                field: "line".into(),
                code: "invalid_csv".into(),
                reason: csv_error(&e),
            }]),
        ),
    })))
}

/// A CSV error without the data it met.
fn csv_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "not UTF-8".into(),
        csv::ErrorKind::UnequalLengths { .. } => {
            "a different number of columns than the header".into()
        }
        _ => "not readable as CSV".into(),
    }
}

pub fn run(args: ImportArgs, json: bool) -> Result<Outcome, CliError> {
    let bytes = std::fs::read(&args.file)
        .map_err(|e| CliError::failed(format!("cannot read {}: {e}", args.file.display())))?;
    let import_id = derbes_policy::sha256_hex(&bytes);
    let total = bytes.iter().filter(|b| **b == b'\n').count() as u64;
    super::runtime()?.block_on(async move {
        let (engine, config) = super::serve::open_engine(&args.engine).await?;
        let actor = Actor::system(derbes_engine::SystemJob::Import);
        let mut importer = engine
            .import(&actor, &import_id, args.dry_run)
            .await
            .map_err(engine_error)?;
        let skip = importer.resume_after();
        let now = importer.now();
        let policy = engine.policy().policy().clone();
        let bar = super::progress_bar(
            total,
            json,
            if args.dry_run {
                "checking"
            } else {
                "importing"
            },
        );
        bar.set_position(skip);
        let mut batch = Vec::with_capacity(args.batch as usize);
        for (n, line) in lines(&args, &bytes, &policy, now)? {
            if n <= skip {
                continue;
            }
            batch.push((n, line));
            if batch.len() as u64 >= args.batch {
                importer
                    .batch(std::mem::take(&mut batch))
                    .await
                    .map_err(engine_error)?;
                bar.set_position(n);
            }
        }
        importer.batch(batch).await.map_err(engine_error)?;
        bar.finish_and_clear();
        let report = importer.finish().await.map_err(engine_error)?;
        engine.close().await;
        if json {
            out::json(&report)?;
        } else {
            for l in &report.refused_lines {
                for p in &l.problems {
                    crate::outln!("line {}: {} {} — {}", l.line, p.field, p.code, p.reason);
                }
            }
            let verb = if args.dry_run {
                "would import"
            } else {
                "imported"
            };
            crate::outln!(
                "{}: {verb} {} subjects, refused {} lines ({} lines read{}); {:.0} subjects/s",
                config.redacted(),
                report.imported,
                report.refused,
                report.lines,
                if skip > 0 {
                    format!(", resumed after line {skip}")
                } else {
                    String::new()
                },
                report.subjects_per_second
            );
        }
        Ok(if report.refused > 0 {
            Outcome::Negative
        } else {
            Outcome::Ok
        })
    })
}
