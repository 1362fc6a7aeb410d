//! `derbes serve`, `derbes migrate`, `derbes policy versions`: the commands
//! that open storage.

use std::path::Path;
use std::time::Instant;

use derbes_engine::Engine;
use derbes_policy::LoadedPolicy;
use derbes_server::{app, AppState};
use derbes_store::{PublishOutcome, Store, StoreConfig};
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

async fn open(args: &StorageArgs) -> Result<(Store, StoreConfig), CliError> {
    let config = store_config(args)?;
    let store = Store::open_and_migrate(&config)
        .await
        .map_err(|e| CliError(format!("storage ({}): {e}", config.redacted())))?;
    Ok((store, config))
}

/// Open storage, publish the policy in force and open the keyring.
pub(crate) async fn open_engine(args: &EngineArgs) -> Result<(Engine, StoreConfig), CliError> {
    let policy = load_policy(&args.policy)?;
    let (store, config) = open(&args.storage).await?;
    let p = &policy.policy;
    match store
        .publish_policy(&p.version, &policy.sha256, p.published, &policy.text)
        .await?
    {
        PublishOutcome::Published => {
            tracing::info!(version = %p.version, sha256 = %policy.sha256, "policy version published")
        }
        PublishOutcome::AlreadyPublished => {}
    }
    let env = KeyEnv::from_process().map_err(|e| CliError(format!("keys: {e}")))?;
    let engine = Engine::open(store, policy, args.storage.data_dir.clone(), &env)
        .map_err(|e| CliError(format!("keys: {e}")))?
        .with_access_fee(args.access_fee_kzt);
    // Free text an earlier version kept in plaintext is sealed before anything else runs.
    let sealed = engine
        .seal_legacy_text()
        .await
        .map_err(super::staff::engine_error)?;
    if sealed > 0 {
        tracing::info!(
            texts = sealed,
            "free text stored by an earlier version sealed"
        );
    }
    Ok((engine, config))
}

pub fn serve(args: ServeArgs) -> Result<Outcome, CliError> {
    init_logging();
    let started = Instant::now();
    super::runtime()?.block_on(async move {
        let (engine, config) = open_engine(&args.engine).await?;
        let store = engine.store().clone();
        let version = engine.policy().policy.version.clone();
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
                if purge_every > 0
                    && last_purge.is_none_or(|t| t.elapsed().as_secs() >= purge_every)
                {
                    last_purge = Some(Instant::now());
                    let system = derbes_engine::Actor::system("purge");
                    match scheduler.purge(&system, false, &|_| {}).await {
                        Ok(r) if r.subjects_destroyed + r.fields_destroyed + r.previous_values_destroyed > 0 => tracing::info!(
                            subjects = r.subjects_destroyed,
                            fields = r.fields_destroyed,
                            previous_values = r.previous_values_destroyed,
                            held = r.held_subjects,
                            "retention purge done"
                        ),
                        Ok(_) => {}
                        Err(e) => tracing::error!(error = %e, "retention purge failed; it will be retried"),
                    }
                }
                if let Err(e) = scheduler.close_weblog_days() {
                    tracing::error!(error = %e, "closing the statistics' day keys failed; it will be retried");
                }
                match scheduler.run_jobs().await {
                    Ok(r) if r.destroyed > 0 => tracing::info!(destroyed = r.destroyed, "scheduled destructions done"),
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %e, "scheduler pass failed; it will be retried"),
                }
            }
        });
        let state = AppState::new(engine)?;
        let shutdown = shutdown_signal()?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| CliError(format!("cannot listen on {}: {e}", args.listen)))?;
        let addr = listener.local_addr()?;
        tracing::info!(
            address = %format!("http://{addr}"),
            storage = %config.redacted(),
            policy_version = %version,
            startup_ms = started.elapsed().as_millis() as u64,
            "derbes ready"
        );
        axum::serve(listener, app(state))
            .with_graceful_shutdown(shutdown)
            .await?;
        match keeper.checkpoint().await {
            Ok(Some(seq)) => tracing::info!(seq, "audit checkpoint signed"),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "audit checkpoint at shutdown failed"),
        }
        store.close().await;
        tracing::info!("derbes stopped");
        Ok(Outcome::Ok)
    })
}

fn load_policy(path: &Path) -> Result<LoadedPolicy, CliError> {
    LoadedPolicy::load(path).map_err(|e| CliError(format!("the policy cannot be loaded:\n{e}")))
}

/// Ctrl-C or SIGTERM, registered at once so that a signal arriving right
/// after start-up is not lost (the handlers exist before "ready" is logged).
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, CliError> {
    #[cfg(unix)]
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| CliError(format!("cannot install the SIGTERM handler: {e}")))?;
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
        let config = store_config(&args)?;
        let store = Store::open(&config).await?;
        let applied = store.migrate().await?;
        let version = store.schema_version().await?;
        store.close().await;
        if json {
            out::json(&json!({ "storage": config.redacted(), "applied": applied, "schema_version": version }))?;
        } else {
            crate::outln!("{}: schema version {version} ({} migration(s) applied now)", config.redacted(), applied.len());
        }
        Ok(Outcome::Ok)
    })
}

pub fn versions(args: StorageArgs, json: bool) -> Result<Outcome, CliError> {
    super::runtime()?.block_on(async move {
        let (store, _) = open(&args).await?;
        let versions = store.policy_versions().await?;
        store.close().await;
        if json {
            let list: Vec<_> = versions
                .iter()
                .map(|v| {
                    json!({
                        "version": v.version,
                        "sha256": v.sha256,
                        "published_on": v.published_on.to_string(),
                        "recorded_at": derbes_store::micros_to_rfc3339(v.recorded_at),
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
                    derbes_store::micros_to_rfc3339(v.recorded_at),
                    v.sha256
                );
            }
        }
        Ok(Outcome::Ok)
    })
}
