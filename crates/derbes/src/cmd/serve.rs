//! `derbes serve`, `derbes migrate`, `derbes policy versions`: the commands
//! that open storage.

use std::path::Path;
use std::time::{Duration, Instant};

use derbes_engine::{Engine, EngineConfig, StoreConfig};
use derbes_policy::LoadedPolicy;
use derbes_server::{app, AppState, Limits, RateLimits, Tls};
use derbes_vault::KeyEnv;
use serde_json::json;

use crate::cli::{EngineArgs, ServeArgs, StorageArgs};
use crate::out::{self, CliError, Outcome};

/// Structured log lines on standard error: text by default, JSON with
/// `DERBES_LOG_FORMAT=json`; level from `DERBES_LOG` (default `info`).
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("DERBES_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if std::env::var("DERBES_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().flatten_event(true).try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
}

fn store_config(args: &StorageArgs) -> Result<StoreConfig, CliError> {
    Ok(StoreConfig::choose(
        args.database_url.as_deref(),
        &args.data_dir,
    )?)
}

/// Open the engine: storage, the policy in force published (or refused),
/// the keyring.
pub(crate) async fn open_engine(args: &EngineArgs) -> Result<(Engine, StoreConfig), CliError> {
    open_engine_with(args, 0, None).await
}

/// [`open_engine`] with the access fee (`serve`) and a new window for the
/// statistics' day keys (`serve`, `ingest`).
pub(crate) async fn open_engine_with(
    args: &EngineArgs,
    access_fee_kzt: u64,
    key_window_days: Option<u32>,
) -> Result<(Engine, StoreConfig), CliError> {
    let policy = load_policy(args.policy.as_deref())?;
    let storage = store_config(&args.storage)?;
    let keys = KeyEnv::from_process().map_err(|e| CliError::failed(format!("keys: {e}")))?;
    let (engine, opened) = Engine::open(EngineConfig {
        storage: storage.clone(),
        policy,
        data_dir: args.storage.data_dir.clone(),
        keys,
        access_fee_kzt,
        key_window_days,
    })
    .await
    .map_err(|e| {
        CliError::failed(format!(
            "{} ({}): {e}",
            "cannot open derbes",
            storage.redacted()
        ))
    })?;
    if opened.published {
        let p = engine.policy();
        tracing::info!(version = %p.policy().version, sha256 = %p.sha256(), "policy version published");
    }
    if opened.legacy_texts_sealed > 0 {
        tracing::info!(
            texts = opened.legacy_texts_sealed,
            "free text stored by an earlier version sealed"
        );
    }
    Ok((engine, storage))
}

pub fn serve(args: ServeArgs) -> Result<Outcome, CliError> {
    init_logging();
    let started = Instant::now();
    super::runtime()?.block_on(async move {
        let (engine, config) =
            open_engine_with(&args.engine, args.access_fee_kzt, args.key_window_days).await?;
        let version = engine.policy().policy().version.clone();
        if let Some(token) = engine.bootstrap_admin().await? {
            // Shown once, on standard output, never in the log.
            crate::outln!(
                "First start: an administrator token was created. It is shown only now; keep it safe:\n\n    {token}\n"
            );
            tracing::info!("administrator token created and printed once on standard output");
        }
        let keeper = engine.clone();
        // The rights desk's own work (destruction after a withdrawal, ...):
        // pending jobs live in the database, so a restart resumes them.
        let scheduler = engine.clone();
        let purge_every = args.purge_every;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
            let mut last_purge: Option<Instant> = None;
            loop {
                tick.tick().await;
                let purge = purge_every > 0
                    && last_purge.is_none_or(|t| t.elapsed().as_secs() >= purge_every);
                if purge {
                    last_purge = Some(Instant::now());
                }
                match scheduler.tick(purge).await {
                    Ok(r) => {
                        if let Some(p) = r.purged.filter(|p| {
                            p.subjects_destroyed + p.fields_destroyed + p.previous_values_destroyed > 0
                        }) {
                            tracing::info!(
                                subjects = p.subjects_destroyed,
                                fields = p.fields_destroyed,
                                previous_values = p.previous_values_destroyed,
                                held = p.held_subjects,
                                "retention purge done"
                            );
                        }
                        if r.jobs.destroyed > 0 {
                            tracing::info!(destroyed = r.jobs.destroyed, "scheduled destructions done");
                        }
                    }
                    Err(failed) => {
                        for (part, e) in failed {
                            tracing::error!(part, error = %e, "scheduler pass failed; it will be retried");
                        }
                    }
                }
            }
        });
        // The outbox relay: events for the connected systems, delivered
        // until shutdown (pending ones survive in the database).
        let relay = derbes_relay::Relay::new(engine.clone(), super::outbox::relay_config(&args.relay));
        let (relay_stop, relay_stopped) = tokio::sync::oneshot::channel::<()>();
        let relay_task = tokio::spawn(relay.run(async move {
            let _ = relay_stopped.await;
        }));
        let state = AppState::with_rate_limits(
            engine,
            RateLimits {
                auth_failures_per_minute: args.auth_failure_limit,
                lookups_per_minute: args.lookup_limit,
                session_calls_per_minute: args.session_call_limit,
            },
        )?;
        let shutdown = shutdown_signal()?;
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(Tls::from_pem_files(cert, key).map_err(CliError::failed)?),
            _ => None,
        };
        let limits = Limits {
            header_timeout: Duration::from_secs(args.header_timeout),
            request_timeout: Duration::from_secs(args.request_timeout),
            max_connections: connection_limit(args.max_connections),
        };
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| CliError::failed(format!("cannot listen on {}: {e}", args.listen)))?;
        let addr = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(
            address = %format!("{scheme}://{addr}"),
            storage = %config.redacted(),
            policy_version = %version,
            max_connections = limits.max_connections,
            startup_ms = started.elapsed().as_millis() as u64,
            "derbes ready"
        );
        derbes_server::serve(listener, app(state), limits, tls, shutdown).await?;
        let _ = relay_stop.send(());
        let _ = relay_task.await;
        keeper.shutdown().await;
        tracing::info!("derbes stopped");
        Ok(Outcome::Ok)
    })
}

/// Connections the service may hold: what was asked, within the open-file
/// limit (raised to its hard limit first), keeping some descriptors for the
/// database, key files and logs.
fn connection_limit(asked: u64) -> usize {
    const RESERVED: u64 = 64;
    let files = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "the open-file limit could not be raised");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    };
    let fit = files.saturating_sub(RESERVED).max(1);
    if asked > fit {
        tracing::warn!(
            asked,
            open_files = files,
            allowed = fit,
            "fewer connections than asked: the open-file limit"
        );
    }
    usize::try_from(asked.min(fit)).unwrap_or(usize::MAX)
}

fn load_policy(path: Option<&Path>) -> Result<LoadedPolicy, CliError> {
    super::policy::read(path)
        .map_err(|e| CliError::failed(format!("the policy cannot be loaded:\n{e}")))
}

/// Ctrl-C or SIGTERM, registered at once so that a signal arriving right
/// after start-up is not lost (the handlers exist before "ready" is logged).
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, CliError> {
    #[cfg(unix)]
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| CliError::failed(format!("cannot install the SIGTERM handler: {e}")))?;
    let ctrl_c = tokio::spawn(tokio::signal::ctrl_c());
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = ctrl_c => {},
            _ = terminate.recv() => {},
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down: finishing requests in flight");
    })
}

pub fn migrate(args: StorageArgs, json: bool) -> Result<Outcome, CliError> {
    super::runtime()?.block_on(async move {
        let m = derbes_engine::migrate(&store_config(&args)?).await?;
        if json {
            out::json(&m)?;
        } else {
            crate::outln!(
                "{}: schema version {} ({} migration(s) applied now)",
                m.storage,
                m.schema_version,
                m.applied.len()
            );
        }
        Ok(Outcome::Ok)
    })
}

pub fn versions(args: StorageArgs, json: bool) -> Result<Outcome, CliError> {
    super::runtime()?.block_on(async move {
        let versions = derbes_engine::published_versions(&store_config(&args)?).await?;
        if json {
            let list: Vec<_> = versions
                .iter()
                .map(|v| {
                    json!({
                        "version": v.version,
                        "sha256": v.sha256,
                        "published_on": v.published_on.to_string(),
                        "recorded_at": v.recorded_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    })
                })
                .collect();
            out::json(&list)?;
        } else if versions.is_empty() {
            crate::outln!(
                "no policy version published yet (derbes serve publishes the one in force)"
            );
        } else {
            for v in &versions {
                crate::outln!(
                    "{:<10} published {}  recorded {}  sha256 {}",
                    v.version,
                    v.published_on,
                    v.recorded_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    v.sha256
                );
            }
        }
        Ok(Outcome::Ok)
    })
}
