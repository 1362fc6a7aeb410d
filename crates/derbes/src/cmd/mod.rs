//! One module per command group.

mod kz;
mod policy;
mod serve;

use crate::cli::{Cli, Command};
use crate::out::{CliError, Outcome};

pub fn run(cli: Cli) -> Result<Outcome, CliError> {
    let json = cli.json;
    match cli.command {
        Command::Kz(c) => kz::run(c, json),
        Command::Policy(c) => policy::run(c, json),
        Command::Serve(args) => serve::serve(args),
        Command::Migrate(args) => serve::migrate(args, json),
    }
}

/// A multi-threaded runtime for the commands that talk to storage or serve.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError(format!("cannot start the async runtime: {e}")))
}
