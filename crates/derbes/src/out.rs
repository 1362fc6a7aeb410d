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

/// A command that could not answer: printed (with `--json`, as
/// `{"error": {"code", "message"}}`), exit 1 when the answer is "not
/// found" or the input is invalid, 2 for a usage or runtime error.
#[derive(Debug)]
pub struct CliError {
    pub code: &'static str,
    pub message: String,
    negative: bool,
}

impl CliError {
    /// The command could not run (storage, files, keys): exit 2.
    pub fn failed(message: impl Into<String>) -> CliError {
        CliError {
            code: "failed",
            message: message.into(),
            negative: false,
        }
    }

    /// The command line itself is wrong (beyond what clap checks): exit 2.
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError {
            code: "usage",
            message: message.into(),
            negative: false,
        }
    }

    /// What was asked for does not exist: exit 1.
    pub fn not_found(message: impl Into<String>) -> CliError {
        CliError {
            code: "not_found",
            message: message.into(),
            negative: true,
        }
    }

    /// The input was refused, naming the field: exit 1.
    pub fn invalid(message: impl Into<String>) -> CliError {
        CliError {
            code: "invalid",
            message: message.into(),
            negative: true,
        }
    }

    /// Another answer of the engine, by its code (`forbidden`, `conflict`,
    /// `destroyed`, ...): exit 1 for a refusal, 2 otherwise.
    pub fn refused(code: &'static str, message: impl Into<String>, negative: bool) -> CliError {
        CliError {
            code,
            message: message.into(),
            negative,
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(if self.negative { 1 } else { 2 })
    }
}

impl<E: std::fmt::Display> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError::failed(e.to_string())
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
        let v = serde_json::json!({ "error": { "code": e.code, "message": e.message } });
        crate::outln!("{v}");
    } else if colour_on(std::io::stderr().is_terminal()) {
        eprintln!("\x1b[1;31merror:\x1b[0m {}", e.message);
    } else {
        eprintln!("error: {}", e.message);
    }
}

pub fn warn(text: &str) {
    if colour_on(std::io::stderr().is_terminal()) {
        eprintln!("\x1b[1;33mwarning:\x1b[0m {text}");
    } else {
        eprintln!("warning: {text}");
    }
}

/// A time as a person in Kazakhstan reads it: Almaty time, with its offset
/// (`2026-12-03 18:18 +05:00`).
pub fn almaty(t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&derbes_kz::ALMATY)
        .format("%Y-%m-%d %H:%M %:z")
        .to_string()
}

/// A document for a person (the policy, a certificate, a notice), written
/// by `make` in the language and format asked for, to the file asked for or
/// standard output.
pub fn document(
    args: &crate::cli::DocumentArgs,
    make: impl FnOnce(derbes_policy::Lang, crate::cli::FormatArg) -> String,
) -> Result<(), CliError> {
    let text = make(args.lang.into(), args.format);
    match &args.out {
        Some(f) => std::fs::write(f, text)
            .map_err(|e| CliError::failed(format!("cannot write {}: {e}", f.display()))),
        None => {
            crate::out!("{text}");
            Ok(())
        }
    }
}

impl crate::cli::FormatArg {
    /// An engine's document in this format.
    pub fn write(self, d: &derbes_engine::Document) -> String {
        match self {
            crate::cli::FormatArg::Md => d.markdown(),
            crate::cli::FormatArg::Html => d.html(),
        }
    }
}
