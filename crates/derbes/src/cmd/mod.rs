//! One module per command group.

mod audit;
mod breaches;
mod dev;
mod import;
mod keys;
mod kz;
mod outbox;
mod policy;
mod purge;
mod requests;
mod serve;
mod staff;
mod weblog;

use crate::cli::{Cli, Command};
use crate::out::{CliError, Outcome};

pub fn run(cli: Cli) -> Result<Outcome, CliError> {
    let json = cli.json;
    match cli.command {
        Command::Kz(c) => kz::run(c, json),
        Command::Policy(c) => policy::run(c, json),
        Command::Serve(args) => serve::serve(args),
        Command::Migrate(args) => serve::migrate(args, json),
        Command::Keys(c) => keys::run(c, json),
        Command::Dev(c) => dev::run(c, json),
        Command::Staff(c) => staff::run(c, json),
        Command::Audit(c) => audit::run(c, json),
        Command::Requests(c) => requests::run(c, json),
        Command::Purge { engine, dry_run } => purge::run(engine, dry_run, json),
        Command::Reconsent {
            engine,
            after,
            limit,
        } => requests::reconsent(engine, after, limit, json),
        Command::Breaches(c) => breaches::run(c, json),
        Command::Notices { engine, overdue } => breaches::notices(engine, overdue, json),
        Command::Systems(c) => outbox::systems(c, json),
        Command::Outbox(c) => outbox::run(c, json),
        Command::Ingest(args) => weblog::ingest(args, json),
        Command::Import(args) => import::run(args, json),
        Command::Stats(args) => weblog::stats(args, json),
    }
}

/// A multi-threaded runtime for the commands that talk to storage or serve.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failed(format!("cannot start the async runtime: {e}")))
}

/// A progress bar on a terminal; hidden for `--json` or when output is piped.
pub(crate) fn progress_bar(len: u64, json: bool, what: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if json || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(&format!(
        "{what} {{bar:40}} {{pos}}/{{len}} ({{per_sec}}, eta {{eta}})"
    )) {
        bar.set_style(style);
    }
    bar
}
