//! `derbes`: thin glue between the command line and the library crates.

mod cli;
mod cmd;
mod out;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let json = cli.json;
    match cmd::run(cli) {
        Ok(outcome) => outcome.exit_code(),
        Err(e) => {
            out::error(json, &e);
            e.exit_code()
        }
    }
}
