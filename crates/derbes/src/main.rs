//! `derbes`: thin glue between the command line and the library crates.

mod cli;
mod cmd;
mod out;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of the system allocator: the service allocates and
/// frees on every request from many threads, where glibc's malloc spent a
/// fifth of the decision path's time (bench/http-decisions.sh).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
