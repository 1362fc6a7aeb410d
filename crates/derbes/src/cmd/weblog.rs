//! `derbes ingest` and `derbes stats`: server logs into depersonalised
//! statistics, and the statistics out (table, CSV, JSON, a page).

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use derbes_engine::{Actor, Engine};
use derbes_weblog::aggregate::{Aggregates, Dim, Report};
use derbes_weblog::content::{first_line_key, Fingerprint};
use derbes_weblog::ingest::{maybe_gunzip, Summary};
use derbes_weblog::Format;
use serde::Serialize;

use crate::cli::{IngestArgs, StatsAction, StatsArgs};
use crate::out::{self, CliError, Outcome};

/// Counts bytes read into a progress bar.
struct Counted<R> {
    inner: R,
    bar: Arc<indicatif::ProgressBar>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

#[derive(Debug, Serialize)]
struct FileSummary {
    file: String,
    /// Bytes at its start that an earlier ingest counted (skipped).
    already_counted_bytes: u64,
    #[serde(flatten)]
    summary: Summary,
}

#[derive(Debug, Serialize)]
struct IngestReport {
    files: Vec<FileSummary>,
    lines: u64,
    counted: u64,
    malformed: u64,
    outside_window: u64,
    /// Bytes of the inputs counted by an earlier ingest, not counted again.
    already_counted_bytes: u64,
    /// Days a day key lives (the window recorded with the keys).
    key_window_days: u32,
    seconds: f64,
    lines_per_second: f64,
    /// Whether the aggregates were stored (all of them, or nothing).
    committed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    refused: Option<String>,
}

fn format_of(s: &str) -> Result<Format, CliError> {
    Format::parse(s).ok_or_else(|| CliError::usage("--format: combined, common or json"))
}

fn print_summary(name: &str, s: &Summary) {
    crate::outln!(
        "{name}: {} lines, {} counted, {} malformed{}{}",
        s.lines,
        s.counted,
        s.malformed_total(),
        if s.outside_window > 0 {
            format!(
                ", {} of days whose key window closed (not counted)",
                s.outside_window
            )
        } else {
            String::new()
        },
        if s.truncated_last_line {
            ", the last line was cut off"
        } else {
            ""
        }
    );
    for (reason, r) in &s.malformed {
        let lines: Vec<String> = r.lines.iter().map(u64::to_string).collect();
        crate::outln!(
            "  {reason}: {} (lines {}{})",
            r.count,
            lines.join(", "),
            if r.count as usize > r.lines.len() {
                ", ..."
            } else {
                ""
            }
        );
    }
}

pub fn ingest(args: IngestArgs, json: bool) -> Result<Outcome, CliError> {
    let format = format_of(&args.format)?;
    if !(0.0..=1.0).contains(&args.max_malformed) {
        return Err(CliError::usage("--max-malformed: a ratio from 0 to 1"));
    }
    super::runtime()?.block_on(async move {
        let (engine, _) =
            super::serve::open_engine_with(&args.engine, 0, args.key_window_days).await?;
        let result = if args.follow {
            follow(&engine, &args, format, json).await
        } else {
            batch(&engine, &args, format, json).await
        };
        engine.close().await;
        result
    })
}

/// One input of a batch, opened: decompressed, and known by its first line.
struct Opened {
    reader: Box<dyn BufRead>,
    /// The content checkpoint's key (`None` for standard input, or an input
    /// without a complete line).
    key: Option<String>,
}

fn open_input(
    input: &Option<PathBuf>,
    bar: &Arc<indicatif::ProgressBar>,
) -> Result<Opened, CliError> {
    let name = input
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "-".into());
    let raw: Box<dyn Read> = match input {
        Some(p) => Box::new(
            std::fs::File::open(p)
                .map_err(|e| CliError::failed(format!("{}: {e}", p.display())))?,
        ),
        None => Box::new(std::io::stdin()),
    };
    let counted = Counted {
        inner: raw,
        bar: bar.clone(),
    };
    let reader: Box<dyn BufRead> = Box::new(BufReader::with_capacity(256 * 1024, counted));
    let mut reader = maybe_gunzip(reader).map_err(|e| CliError::failed(format!("{name}: {e}")))?;
    // Standard input cannot be read again if its start only looks familiar.
    let key = match input {
        Some(_) => first_line_key(
            reader
                .fill_buf()
                .map_err(|e| CliError::failed(format!("{name}: {e}")))?,
        ),
        None => None,
    };
    Ok(Opened { reader, key })
}

async fn batch(
    engine: &Engine,
    args: &IngestArgs,
    format: Format,
    json: bool,
) -> Result<Outcome, CliError> {
    let mut ing = engine
        .weblog_ingester(format)
        .map_err(super::staff::engine_error)?;
    let window = ing.window_days();
    // `-` (or no file) is standard input.
    let inputs: Vec<Option<PathBuf>> = if args.files.is_empty() {
        vec![None]
    } else {
        args.files
            .iter()
            .map(|f| (f.as_os_str() != "-").then(|| f.clone()))
            .collect()
    };
    let total: u64 = inputs
        .iter()
        .flatten()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let bar = Arc::new(super::progress_bar(total, json, "reading"));
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "reading {bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta}) {msg}",
    ) {
        bar.set_style(style);
    }
    let started = Instant::now();
    let mut all = Aggregates::default();
    let mut files = Vec::new();
    // Content checkpoints of this batch: (key, prefix digest, position).
    let mut checkpoints: Vec<(String, String, i64)> = Vec::new();
    for input in inputs {
        let name = input
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "-".into());
        let mut opened = open_input(&input, &bar)?;
        // Counted before (by an earlier ingest, or earlier in this one)?
        let known = match &opened.key {
            None => None,
            Some(key) => match checkpoints.iter().rev().find(|c| &c.0 == key) {
                Some((_, digest, position)) => Some((digest.clone(), *position)),
                None => engine
                    .weblog_checkpoint(key)
                    .await
                    .map_err(super::staff::engine_error)?
                    .map(|p| (p.identity, p.position)),
            },
        };
        let mut fp = Fingerprint::new(opened.reader);
        let mut already_counted = 0u64;
        if let Some((digest, position)) = known {
            let want = position.max(0) as u64;
            let skipped = fp
                .skip(want)
                .map_err(|e| CliError::failed(format!("{name}: {e}")))?;
            if skipped == want && fp.digest() == digest {
                already_counted = want;
            } else {
                // Same first line, other content: count it all.
                opened = open_input(&input, &bar)?;
                fp = Fingerprint::new(opened.reader);
            }
        }
        let mut reader = BufReader::with_capacity(256 * 1024, fp);
        ing.restart_lines();
        let started_file = Instant::now();
        let b2 = bar.clone();
        ing.read_with(&mut reader, false, &mut |s: &Summary| {
            b2.set_message(format!(
                "{} lines, {:.0} lines/s, {} malformed",
                s.lines,
                s.lines as f64 / started_file.elapsed().as_secs_f64().max(1e-9),
                s.malformed_total()
            ))
        })
        .map_err(|e| CliError::failed(format!("{name}: {e}; nothing was counted")))?;
        let (position, digest) = reader.get_ref().complete_lines();
        if let Some(key) = opened.key.filter(|_| position > 0) {
            checkpoints.push((key, digest, position as i64));
        }
        let (agg, summary) = ing.take();
        all.merge(&agg);
        files.push(FileSummary {
            file: name,
            already_counted_bytes: already_counted,
            summary,
        });
    }
    bar.finish_and_clear();
    let mut totals = Summary::default();
    for f in &files {
        totals.merge(&f.summary);
    }
    let seconds = started.elapsed().as_secs_f64();
    let malformed = totals.malformed_total();
    let refused = if totals.lines > 0 && malformed as f64 > args.max_malformed * totals.lines as f64
    {
        Some(format!(
            "{malformed} of {} lines are not `{}` lines (more than --max-malformed {}): wrong --format? nothing was counted",
            totals.lines, args.format, args.max_malformed
        ))
    } else if totals.counted == 0 && totals.outside_window > 0 {
        // Nothing counted because the days' keys are gone: say which option
        // would have counted them.
        let needed = totals
            .oldest_outside
            .map(|d| (engine.today() - d).num_days() + 1)
            .unwrap_or(i64::from(window) + 1);
        Some(format!(
            "nothing was counted: {} lines are of days whose key window ({window} days) had closed; \
             logs that old can only be counted with a wider window, --key-window-days {needed} \
             (kept from then on for every ingest and the service)",
            totals.outside_window
        ))
    } else {
        None
    };
    if refused.is_none() {
        let marks: Vec<(&str, &str, i64)> = checkpoints
            .iter()
            .map(|(k, d, p)| (k.as_str(), d.as_str(), *p))
            .collect();
        engine
            .save_weblog(&all, &marks)
            .await
            .map_err(super::staff::engine_error)?;
    }
    let already_counted_bytes = files.iter().map(|f| f.already_counted_bytes).sum();
    let report = IngestReport {
        lines: totals.lines,
        counted: if refused.is_none() { totals.counted } else { 0 },
        malformed,
        outside_window: totals.outside_window,
        already_counted_bytes,
        key_window_days: window,
        seconds,
        lines_per_second: totals.lines as f64 / seconds.max(1e-9),
        committed: refused.is_none(),
        refused: refused.clone(),
        files,
    };
    if json {
        out::json(&report)?;
    } else {
        for f in &report.files {
            print_summary(&f.file, &f.summary);
            if f.already_counted_bytes > 0 {
                crate::outln!(
                    "  its first {} bytes were counted by an earlier ingest: not counted again",
                    f.already_counted_bytes
                );
            }
        }
        crate::outln!(
            "{} lines in {:.2} s ({:.0} lines/s); {}",
            report.lines,
            seconds,
            report.lines_per_second,
            match &refused {
                None => format!("{} counted and stored", report.counted),
                Some(why) => why.clone(),
            }
        );
    }
    Ok(if refused.is_some() {
        Outcome::Negative
    } else {
        Outcome::Ok
    })
}

async fn follow(
    engine: &Engine,
    args: &IngestArgs,
    format: Format,
    json: bool,
) -> Result<Outcome, CliError> {
    let [path] = args.files.as_slice() else {
        return Err(CliError::usage("--follow reads exactly one file"));
    };
    let follower =
        derbes_weblog::follow::Follower::new(path).map_err(|e| CliError::failed(e.to_string()))?;
    let source = follower.source().to_string();
    let mut ing = engine
        .weblog_ingester(format)
        .map_err(super::staff::engine_error)?;
    let mut totals = Summary::default();
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        // A follow can run for days: move to today, destroying closed days' keys.
        ing.advance(engine.today())
            .map_err(|e| CliError::failed(e.to_string()))?;
        let committed = engine
            .weblog_checkpoint(&source)
            .await
            .map_err(super::staff::engine_error)?
            .map(|p| (p.identity, p.position.max(0) as u64));
        let commits = follower
            .step(&mut ing, committed)
            .map_err(|e| CliError::failed(e.to_string()))?;
        let read = commits.iter().any(|c| c.position > 0);
        for c in commits {
            engine
                .save_weblog(
                    &c.aggregates,
                    &[(source.as_str(), c.file_id.as_str(), c.position as i64)],
                )
                .await
                .map_err(super::staff::engine_error)?;
            if !json && c.position > 0 {
                eprintln!("{} lines, {} counted", c.summary.lines, c.summary.counted);
            }
            totals.merge(&c.summary);
        }
        if !read && args.until_idle {
            break;
        }
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(Duration::from_millis(if read { 50 } else { 1000 })) => {}
        }
    }
    if json {
        out::json(&totals)?;
    } else {
        print_summary(&source, &totals);
    }
    Ok(Outcome::Ok)
}

pub fn stats(args: StatsArgs, json: bool) -> Result<Outcome, CliError> {
    let by = Report::parse(&args.by).ok_or_else(|| {
        CliError::usage("--by: route, status, browser, os, device, referrer, social, hour or day")
    })?;
    super::runtime()?.block_on(async move {
        let (engine, _) = super::serve::open_engine(&args.engine).await?;
        let actor = Actor::system(derbes_engine::SystemJob::Cli);
        let result = match (args.action, &args.out) {
            (Some(StatsAction::Report), Some(out)) => {
                let mut sections = Vec::new();
                for by in std::iter::once(Report::Day).chain(Dim::ALL.into_iter().map(Report::Dim))
                {
                    let r = engine
                        .stats(&actor, by, args.from, args.to, args.k)
                        .await
                        .map_err(super::staff::engine_error)?;
                    sections.push(r);
                }
                let page =
                    derbes_weblog::report::report_html(&sections, args.from, args.to, args.k);
                std::fs::write(out, page)
                    .map_err(|e| CliError::failed(format!("{}: {e}", out.display())))?;
                if json {
                    out::json(&serde_json::json!({"out": out.display().to_string()}))?;
                } else {
                    crate::outln!("wrote {}", out.display());
                }
                Ok(Outcome::Ok)
            }
            _ => {
                let r = engine
                    .stats(&actor, by, args.from, args.to, args.k)
                    .await
                    .map_err(super::staff::engine_error)?;
                if json {
                    out::json(&r)?;
                } else if args.csv {
                    crate::outln!("{},requests,visitors,approximate", r.by);
                    for row in &r.rows {
                        crate::outln!(
                            "{},{},{},{}",
                            csv_field(&row.value),
                            row.requests,
                            row.visitors,
                            row.approximate
                        );
                    }
                } else {
                    crate::outln!("{:<40} {:>12} {:>10}", r.by, "requests", "visitors");
                    for row in &r.rows {
                        crate::outln!(
                            "{:<40} {:>12} {:>10}{}",
                            row.value,
                            row.requests,
                            row.visitors,
                            if row.approximate { " ~" } else { "" }
                        );
                    }
                    if r.suppressed_cells > 0 {
                        crate::outln!(
                            "({} cells of fewer than {} visitors suppressed: {} requests)",
                            r.suppressed_cells,
                            r.k,
                            r.suppressed_requests
                        );
                    }
                }
                Ok(Outcome::Ok)
            }
        };
        engine.close().await;
        result
    })
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
