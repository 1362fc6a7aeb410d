//! The command-line interface: every command and option, with help text.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// derbes — the personal-data engine behind the iBusiness privacy policy.
///
/// Exit codes: 0 ok, 1 a negative result (not found, invalid input,
/// problems found), 2 a usage or runtime error. With --json an error is
/// {"error": {"code", "message"}}.
#[derive(Debug, Parser)]
#[command(
    name = "derbes",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service (SQLite in the data directory unless DATABASE_URL is set).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate(StorageArgs),
    /// Check, show, render and compare the policy file.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Kazakhstan primitives: IIN, BIN, IBAN, phone numbers, working days.
    #[command(subcommand)]
    Kz(KzCommand),
    /// Key-encryption keys: status and rotation.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Developer tools: synthetic data for tests, benchmarks and demos.
    #[command(subcommand)]
    Dev(DevCommand),
    /// Staff members and their bearer tokens.
    #[command(subcommand)]
    Staff(StaffCommand),
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The rights desk: data-subject requests and their deadlines.
    #[command(subcommand)]
    Requests(RequestsCommand),
    /// Destroy what no purpose of the policy keeps any more (retention, 7.1):
    /// whole subjects whose relationship ended long enough ago, single
    /// fields, previous values. Legal holds stop it. The service's scheduler
    /// runs it too.
    Purge {
        #[command(flatten)]
        engine: EngineArgs,
        /// List what would go and why; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Who must consent again, and for what (7.6): subjects whose policy
    /// acceptance was given to an earlier version that did not include what
    /// the version in force adds. Exit 1 when anyone must.
    Reconsent {
        #[command(flatten)]
        engine: EngineArgs,
        /// Start after this subject id (the `next_after` of the previous page).
        #[arg(long)]
        after: Option<String>,
        /// At most this many subjects.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Server logs and app events into depersonalised usage statistics
    /// (3.2): client addresses become pseudonyms under a key of the day,
    /// destroyed when the day's window closes; only aggregates are kept.
    Ingest(IngestArgs),
    /// Bring in the users the app already has: JSON lines (one registration
    /// per line, each consent with its `given_at`) or CSV (a header of
    /// policy field ids and `source`, `collected_at`, `consents`,
    /// `given_at`, `policy_version`, `app_version`, `collected_via`,
    /// `notify_of_transfers`). Every line is validated exactly as a
    /// registration; refused lines are reported by number, field and code
    /// (never a value). Batches commit with the import's checkpoint: run the
    /// same file again after an interruption and it resumes where it
    /// stopped, registering nobody twice. Exit 1 when a line was refused.
    Import(ImportArgs),
    /// The operator's other systems that must follow what derbes does
    /// (destroy, block, stop contacting, send a notice): connect, list,
    /// disconnect.
    #[command(subcommand)]
    Systems(SystemsCommand),
    /// The breach register (the Law, art. 25): record, assess, notify the
    /// authorised body within 1 working day, close; the notice document.
    #[command(subcommand)]
    Breaches(BreachesCommand),
    /// Notices to users (a transfer, a breach): sent, pending, overdue.
    Notices {
        #[command(flatten)]
        engine: EngineArgs,
        /// Only unsent ones past their due date (exit 1 when there are any).
        #[arg(long)]
        overdue: bool,
    },
    /// The outbox of events for the connected systems: deliver (`run`),
    /// list, retry the dead, confirm by hand.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Usage statistics, k-anonymous: `--by route|status|browser|os|device|referrer|social|hour|day`,
    /// or `report --out FILE` for a self-contained page with charts.
    Stats(StatsArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// The file: JSON lines, or CSV with a header.
    pub file: PathBuf,
    /// jsonl or csv (default: csv for a `.csv` file, else jsonl).
    #[arg(long, value_parser = ["jsonl", "csv"])]
    pub format: Option<String>,
    /// Validate every line and report; register nobody (each batch is
    /// written and rolled back, so duplicates are found exactly as a real
    /// run would find them).
    #[arg(long)]
    pub dry_run: bool,
    /// Lines per transaction (and per checkpoint). Larger batches write
    /// each index page fewer times (10,000: ~10.5k subjects/s on SQLite
    /// against ~7.5k at 2,000); a smaller one holds SQLite's one writer
    /// for less time when a `serve` writes to the same store meanwhile,
    /// and a kill -9 loses less work in flight.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=20_000))]
    pub batch: u64,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Days a statistics day key lives (1: today only; default 2); lines of
    /// older days cannot be counted. Recorded with the keys: `serve`,
    /// `ingest` and `ingest --follow` then all keep that window until told
    /// another.
    #[arg(long, env = "DERBES_KEY_WINDOW_DAYS", value_name = "DAYS",
          value_parser = clap::value_parser!(u32).range(1..=3660))]
    pub key_window_days: Option<u32>,
    /// Log files (plain or gzip); `-` or none: standard input.
    pub files: Vec<PathBuf>,
    /// combined (nginx/Apache default), common, or json (JSON lines: nginx escape=json, app events).
    #[arg(long, default_value = "combined")]
    pub format: String,
    /// Keep reading a file as it grows, across rotation, committing the
    /// aggregates with the file's position: a restart neither counts a line
    /// twice nor skips one.
    #[arg(long)]
    pub follow: bool,
    /// With --follow: stop once the file has no more complete lines (for scripts and tests).
    #[arg(long, requires = "follow")]
    pub until_idle: bool,
    /// Refuse the whole input (count nothing) when more than this share of its lines is malformed.
    #[arg(long, default_value_t = 0.5, value_name = "RATIO")]
    pub max_malformed: f64,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// `report`: write one self-contained HTML page with charts of every
    /// dimension (no external scripts) to --out, instead of printing.
    #[arg(value_enum)]
    pub action: Option<StatsAction>,
    /// Where `report` writes the page.
    #[arg(long, required_if_eq("action", "report"))]
    pub out: Option<PathBuf>,
    /// route, status, browser, os, device, referrer, social, hour or day.
    #[arg(long, default_value = "day")]
    pub by: String,
    /// First day (YYYY-MM-DD, Asia/Almaty).
    #[arg(long)]
    pub from: Option<chrono::NaiveDate>,
    /// Last day (YYYY-MM-DD).
    #[arg(long)]
    pub to: Option<chrono::NaiveDate>,
    /// Suppress cells describing fewer than K visitors.
    #[arg(long, default_value_t = 5)]
    pub k: u64,
    /// CSV instead of a table.
    #[arg(long)]
    pub csv: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StatsAction {
    /// One self-contained HTML page with charts of every dimension.
    Report,
}

#[derive(Debug, Subcommand)]
pub enum RequestsCommand {
    /// The queue, soonest due first.
    List {
        #[command(flatten)]
        engine: EngineArgs,
        /// Only open requests past their due date, with every other late
        /// duty: breach notices to the authorised body, notices to users
        /// (exit 1 when there are any).
        #[arg(long)]
        overdue: bool,
        /// Only this state (received, identity_verified, in_progress, completed, refused).
        #[arg(long)]
        state: Option<String>,
    },
    /// One request with every step.
    Show {
        #[command(flatten)]
        engine: EngineArgs,
        /// The request's id (from `requests list`).
        request_id: String,
    },
    /// The destruction certificate of a completed destruction or withdrawal,
    /// checked against the audit log: a document to read and print (with
    /// --json, the certificate as issued and its confirmation).
    Certificate {
        #[command(flatten)]
        engine: EngineArgs,
        /// The request's id (from `requests list`).
        request_id: String,
        #[command(flatten)]
        document: DocumentArgs,
    },
}

/// How the outbox relay delivers.
#[derive(Debug, Clone, Args)]
pub struct RelayArgs {
    /// The NATS server for JetStream systems (nats://[user:pass@]host:port).
    #[arg(
        long,
        env = "DERBES_NATS_URL",
        default_value = "nats://127.0.0.1:4222",
        value_name = "URL",
        hide_env_values = true
    )]
    pub nats_url: String,
    /// Delivery attempts before an event is dead (the officer retries it or
    /// confirms by hand).
    #[arg(long, env = "DERBES_OUTBOX_MAX_ATTEMPTS", default_value_t = 12, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub outbox_max_attempts: u32,
    /// The first retry's wait in milliseconds; each next one doubles, up to an hour.
    #[arg(long, env = "DERBES_OUTBOX_RETRY_MS", default_value_t = 1000, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub outbox_retry_ms: u64,
}

#[derive(Debug, Subcommand)]
pub enum SystemsCommand {
    /// Connect a system; prints its signing secret once.
    Add {
        #[command(flatten)]
        engine: EngineArgs,
        /// Its name (lowercase snake_case).
        #[arg(long)]
        name: String,
        /// The policy's categories it holds, comma-separated.
        #[arg(long, value_delimiter = ',')]
        categories: Vec<String>,
        /// Events are POSTed here, signed (https://, or http:// on loopback).
        #[arg(
            long,
            conflicts_with = "nats_subject",
            required_unless_present = "nats_subject"
        )]
        webhook: Option<String>,
        /// Events are published to this JetStream subject.
        #[arg(long)]
        nats_subject: Option<String>,
        /// It delivers the app's notices to users (SMS, push).
        #[arg(long)]
        sends_notices: bool,
        /// `delivery` (a 2xx or the JetStream ack confirms) or `callback`
        /// (the system confirms each event when done).
        #[arg(long)]
        confirm: Option<String>,
    },
    /// The connected systems.
    List {
        #[command(flatten)]
        engine: EngineArgs,
        /// Disconnected ones too.
        #[arg(long)]
        removed: bool,
    },
    /// Disconnect a system: what it has not confirmed becomes dead, to be confirmed by hand.
    Remove {
        #[command(flatten)]
        engine: EngineArgs,
        /// The system's name (from `systems list`).
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum BreachesCommand {
    /// Record a detected breach; prints it with its notice deadline.
    Report {
        #[command(flatten)]
        engine: EngineArgs,
        /// What happened (sealed).
        #[arg(long)]
        description: String,
        /// The policy's categories affected, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        categories: Vec<String>,
        /// The subjects affected, comma-separated ids.
        #[arg(long, value_delimiter = ',')]
        subjects: Vec<String>,
        /// How many are affected, when they are not listed.
        #[arg(long)]
        affected_count: Option<i64>,
        /// When it was detected (RFC 3339); now when absent.
        #[arg(long)]
        detected_at: Option<String>,
        /// What caused it, as far as known (sealed).
        #[arg(long)]
        cause: Option<String>,
        /// What was done about it (sealed).
        #[arg(long)]
        measures: Option<String>,
    },
    /// The register, the earliest notice due first.
    List {
        #[command(flatten)]
        engine: EngineArgs,
        /// Only those whose notice is late (exit 1 when there are any).
        #[arg(long)]
        overdue: bool,
        /// Only this state (detected, assessed, notified, closed).
        #[arg(long)]
        state: Option<String>,
    },
    /// One breach with its free text.
    Show {
        #[command(flatten)]
        engine: EngineArgs,
        /// The breach's id (from `breaches list`).
        breach_id: String,
    },
    /// assess, notify (the authorised body was notified) or close.
    Act {
        #[command(flatten)]
        engine: EngineArgs,
        /// The breach's id (from `breaches list`).
        breach_id: String,
        /// assess, notify or close.
        #[arg(long)]
        action: String,
        /// What caused it, as far as known (sealed).
        #[arg(long)]
        cause: Option<String>,
        /// What was done about it (sealed).
        #[arg(long)]
        measures: Option<String>,
        /// The authorised body's registration number or letter.
        #[arg(long)]
        reference: Option<String>,
    },
    /// The notice to the authorised body (Markdown, or a page to print).
    Notice {
        #[command(flatten)]
        engine: EngineArgs,
        /// The breach's id (from `breaches list`).
        breach_id: String,
        #[command(flatten)]
        document: DocumentArgs,
    },
    /// Tell the subjects it lists, through the system that sends the app's notices.
    NotifySubjects {
        #[command(flatten)]
        engine: EngineArgs,
        /// The breach's id (from `breaches list`).
        breach_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Deliver events (the service does this too), until stopped.
    Run {
        #[command(flatten)]
        engine: EngineArgs,
        #[command(flatten)]
        relay: RelayArgs,
        /// Stop once nothing is due (for scripts and tests); exit 1 if
        /// anything is still pending then.
        #[arg(long)]
        until_idle: bool,
    },
    /// Events, oldest first.
    List {
        #[command(flatten)]
        engine: EngineArgs,
        /// pending, delivered, confirmed or dead.
        #[arg(long)]
        state: Option<String>,
        /// Only this system's.
        #[arg(long)]
        system: Option<String>,
        /// Only those a request waits for.
        #[arg(long)]
        request: Option<String>,
    },
    /// Try a dead event again.
    Retry {
        #[command(flatten)]
        engine: EngineArgs,
        /// The event's id (from `outbox list` or `outbox dead`).
        event_id: String,
    },
    /// The dead events (exit 1 when there are any).
    Dead(EngineArgs),
    /// Confirm by hand that a system followed an event, saying how that was established.
    Confirm {
        #[command(flatten)]
        engine: EngineArgs,
        /// The event's id (from `outbox list` or `outbox dead`).
        event_id: String,
        /// How it was established that the system followed (sealed, audited).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum StaffCommand {
    /// Add a staff member with a role of the policy; prints the token once.
    Add {
        #[command(flatten)]
        engine: EngineArgs,
        /// Who it is (shown in listings and audit).
        #[arg(long)]
        name: String,
        /// A role of the policy (backend_service, support_agent, data_protection_officer, ...).
        #[arg(long)]
        role: String,
    },
    /// List staff tokens (never their secrets).
    List(EngineArgs),
    /// Revoke a token by its id.
    Revoke {
        #[command(flatten)]
        engine: EngineArgs,
        /// The token's id (from `staff list`), never its secret.
        token_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the whole chain and every signed checkpoint: exit 0 when intact,
    /// 1 naming the first bad record.
    Verify(EngineArgs),
    /// Sign a checkpoint of the chain's current end.
    Checkpoint(EngineArgs),
}

/// Storage plus the policy in force: what commands that use the engine need.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// The policy file in force; by default the policy built into the
    /// binary (`policy/ibusiness.toml` as it was built).
    #[arg(long, env = "DERBES_POLICY", value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Which KEK is active, how many data keys each KEK wraps, unfinished rotations.
    Status(EngineArgs),
    /// Create a new KEK and re-wrap every data key under it (resumes an
    /// interrupted rotation instead when one is unfinished).
    Rotate {
        #[command(flatten)]
        engine: EngineArgs,
        /// Data keys re-wrapped per transaction.
        #[arg(long, default_value_t = 500)]
        batch: i64,
    },
    /// Destroy an old KEK's key file (overwritten, then removed), so copies of
    /// keys wrapped under it — in backups — can never be opened. Refused for
    /// the active KEK and while any data key is still wrapped under it.
    Retire {
        #[command(flatten)]
        engine: EngineArgs,
        /// The KEK's id, as `derbes keys status` shows it.
        #[arg(value_name = "KEK_ID")]
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Register N synthetic users (valid IINs, KZ phones, some minors for the
    /// age gate to refuse), organisations and consents of every kind, through
    /// the real registration path; print the rates measured.
    Seed {
        #[command(flatten)]
        engine: EngineArgs,
        /// How many users.
        #[arg(long, value_name = "N")]
        subjects: u64,
        /// The population: the same seed always gives the same people.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// First index (to add more people of the same population).
        #[arg(long, default_value_t = 0)]
        start: u64,
        /// Registrations in flight at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Write the users to this file as JSON lines for `derbes import`
        /// (each consent with a `given_at`) instead of registering them.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// Where the data lives.
#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// Data directory (SQLite database, later keys).
    #[arg(
        long,
        env = "DERBES_DATA_DIR",
        default_value = "./derbes-data",
        value_name = "DIR"
    )]
    pub data_dir: PathBuf,
    /// PostgreSQL URL (postgres://user@host:port/db); SQLite in the data directory when unset.
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// The administrative fee for a copy of one's data, in tenge (7.11
    /// allows one; by default access is free, as the Law has it).
    #[arg(
        long,
        env = "DERBES_ACCESS_FEE_KZT",
        default_value_t = 0,
        value_name = "KZT"
    )]
    pub access_fee_kzt: u64,
    /// Days a statistics day key lives (1: today only; default 2); lines of
    /// older days cannot be counted. Recorded with the keys: `serve`,
    /// `ingest` and `ingest --follow` then all keep that window until told
    /// another.
    #[arg(long, env = "DERBES_KEY_WINDOW_DAYS", value_name = "DAYS",
          value_parser = clap::value_parser!(u32).range(1..=3660))]
    pub key_window_days: Option<u32>,
    /// Address to listen on.
    #[arg(
        long,
        env = "DERBES_LISTEN",
        default_value = "127.0.0.1:8080",
        value_name = "ADDR"
    )]
    pub listen: SocketAddr,
    /// Run the retention purge this often, in seconds (0: never; then run
    /// `derbes purge` from cron).
    #[arg(
        long,
        env = "DERBES_PURGE_EVERY",
        default_value_t = 3600,
        value_name = "SECONDS"
    )]
    pub purge_every: u64,
    /// A client must send a request's headers within this many seconds (an
    /// idle keep-alive connection is closed after it too).
    #[arg(long, env = "DERBES_HEADER_TIMEOUT", default_value_t = 10, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout: u64,
    /// A request, its body read and its answer, may take this many seconds (408 after).
    #[arg(long, env = "DERBES_REQUEST_TIMEOUT", default_value_t = 30, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_timeout: u64,
    /// Connections open at once; more wait in the listen queue (bounded by
    /// the open-file limit, which start-up raises to its hard limit).
    #[arg(long, env = "DERBES_MAX_CONNECTIONS", default_value_t = 1024, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,
    /// Failed sign-ins a client address may make per minute (429 after,
    /// audited).
    #[arg(long, env = "DERBES_AUTH_FAILURE_LIMIT", default_value_t = 20, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub auth_failure_limit: u32,
    /// Subject lookups (by IIN or phone) a token, and a client address, may
    /// make per minute (429 after, audited); raise it for a backend that
    /// signs users in faster.
    #[arg(long, env = "DERBES_LOOKUP_LIMIT", default_value_t = 120, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub lookup_limit: u32,
    /// Calls a user's session (the privacy center in the app's web view)
    /// may make per minute (429 after, audited): every copy asked for is a
    /// request on the desk's record.
    #[arg(long, env = "DERBES_SESSION_CALL_LIMIT", default_value_t = 60, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub session_call_limit: u32,
    /// Serve HTTPS with this certificate chain (PEM), for a backend on another
    /// host; needs --tls-key.
    #[arg(
        long,
        env = "DERBES_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM; kept 0600).
    #[arg(
        long,
        env = "DERBES_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    #[command(flatten)]
    pub relay: RelayArgs,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy file; print each problem as file:line:column: message.
    Check {
        /// The policy file (default: the policy built into the binary).
        #[arg(env = "DERBES_POLICY")]
        file: Option<PathBuf>,
    },
    /// Show the policy model (use --json for all of it).
    Show {
        /// The policy file (default: the policy built into the binary).
        #[arg(env = "DERBES_POLICY")]
        file: Option<PathBuf>,
    },
    /// Render the readable policy document.
    Render {
        /// The policy file (default: the policy built into the binary).
        #[arg(env = "DERBES_POLICY")]
        file: Option<PathBuf>,
        #[command(flatten)]
        document: DocumentArgs,
    },
    /// What changed between two policy files that matters to users.
    Diff {
        /// The earlier policy file.
        old: PathBuf,
        /// The later policy file.
        new: PathBuf,
        /// Exit 1 when there are changes (like `git diff --exit-code`).
        #[arg(long)]
        exit_code: bool,
    },
    /// Policy versions published in the store.
    Versions(StorageArgs),
}

/// How a document for a person (the policy, a certificate, a notice) is
/// written.
#[derive(Debug, Args)]
pub struct DocumentArgs {
    /// Language: ru (the original, the default), kk or en.
    #[arg(long, value_enum, default_value_t = LangArg::Ru)]
    pub lang: LangArg,
    /// Output format.
    #[arg(long, value_enum, default_value_t = FormatArg::Md)]
    pub format: FormatArg,
    /// Write to this file instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LangArg {
    /// Russian, the original.
    Ru,
    /// Kazakh.
    Kk,
    /// English.
    En,
}

impl From<LangArg> for derbes_policy::Lang {
    fn from(l: LangArg) -> Self {
        match l {
            LangArg::Ru => derbes_policy::Lang::Ru,
            LangArg::Kk => derbes_policy::Lang::Kk,
            LangArg::En => derbes_policy::Lang::En,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Md,
    Html,
}

#[derive(Debug, Subcommand)]
pub enum KzCommand {
    /// Validate an IIN; show birth date and sex.
    Iin {
        /// 12 digits.
        iin: String,
    },
    /// Validate a BIN; show registration month, entity type and attribute.
    Bin {
        /// 12 digits.
        bin: String,
    },
    /// Validate a Kazakhstan IBAN.
    Iban {
        /// KZ and 18 characters, spaces allowed.
        iban: String,
    },
    /// Validate and normalise a Kazakhstan phone number to E.164.
    Phone {
        /// In any common form: +7 701 123 45 67, 8 (701) 1234567, ...
        phone: String,
    },
    /// Every non-working day of a year, weekends included.
    Calendar {
        /// The year (2000-2100).
        year: i32,
    },
    /// The deadline of "within N working days of receipt".
    Deadline {
        /// When the request was received, RFC 3339 (e.g. 2024-05-03T17:30:00+05:00).
        #[arg(long, value_name = "TIME")]
        received: String,
        /// Working days allowed.
        #[arg(long, value_name = "N")]
        working_days: u32,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every command and every argument says what it is.
    #[test]
    fn every_argument_is_described() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let here = format!("{path} {}", cmd.get_name());
            if cmd.get_about().is_none() && !path.is_empty() {
                missing.push(here.clone());
            }
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!("{here} <{id}>"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &here, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "undescribed: {missing:#?}");
    }
}
