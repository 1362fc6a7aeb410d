//! Printing: JSON for machines, text (coloured only on a terminal) for people.

use std::io::IsTerminal;
use std::process::ExitCode;

use serde::Serialize;

/// How a command ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0.
    Ok,
    /// Exit 1: the answer is "no" (invalid input, problems found).
    Negative,
}

impl Outcome {
    pub fn exit_code(self) -> ExitCode {
        match self {
            Outcome::Ok => ExitCode::SUCCESS,
            Outcome::Negative => ExitCode::from(1),
        }
    }
}

/// A runtime or usage error: printed, exit 2.
#[derive(Debug)]
pub struct CliError(pub String);

impl<E: std::fmt::Display> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError(e.to_string())
    }
}

/// Write to standard output. A closed pipe (`derbes ... | head`) ends the
/// program quietly instead of panicking.
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(2);
    }
}

/// `println!` that survives a closed pipe.
#[macro_export]
macro_rules! outln {
    () => { $crate::out::write_stdout(format_args!("\n")) };
    ($($t:tt)*) => { $crate::out::write_stdout(format_args!("{}\n", format_args!($($t)*))) };
}

/// `print!` that survives a closed pipe.
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => { $crate::out::write_stdout(format_args!($($t)*)) };
}

pub fn json<T: Serialize>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)?;
    crate::outln!("{text}");
    Ok(())
}

fn colour_on(stream_is_terminal: bool) -> bool {
    stream_is_terminal && std::env::var_os("NO_COLOR").is_none()
}

/// `text` in green (good) or red (bad) on a terminal, plain otherwise.
pub fn verdict(good: bool, text: &str) -> String {
    if colour_on(std::io::stdout().is_terminal()) {
        let code = if good { 32 } else { 31 };
        format!("\x1b[1;{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

pub fn error(json: bool, e: &CliError) {
    if json {
        let v = serde_json::json!({ "error": { "message": e.0 } });
        crate::outln!("{v}");
    } else if colour_on(std::io::stderr().is_terminal()) {
        eprintln!("\x1b[1;31merror:\x1b[0m {}", e.0);
    } else {
        eprintln!("error: {}", e.0);
    }
}

pub fn warn(text: &str) {
    if colour_on(std::io::stderr().is_terminal()) {
        eprintln!("\x1b[1;33mwarning:\x1b[0m {text}");
    } else {
        eprintln!("warning: {text}");
    }
}
