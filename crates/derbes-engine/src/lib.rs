//! The derbes application layer: the one place where the policy, the domain
//! rules, the vault and the store meet. The HTTP server and the CLI call it;
//! neither touches keys or sealed data directly.
//!
//! Personal data is in plaintext only inside these methods and in what they
//! return to the caller; it is never logged.

mod audience;
mod audit;
mod breaches;
mod consents;
mod decide;
mod desk;
mod destruction;
mod document;
mod error;
mod export;
mod export_html;
mod fields;
mod import;
mod intake;
mod jobs;
mod keys;
mod lifecycle;
mod me;
mod notes;
mod organizations;
mod outbox;
mod reads;
mod reconsent;
mod representatives;
mod requests;
mod retention;
mod seed;
mod staff;
mod subjects;
mod weblog;
mod workflow;

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use derbes_core::Compiled;
use derbes_policy::LoadedPolicy;
use derbes_store::Store;
use derbes_vault::{KeyEnv, Keyring};

pub use audience::{Audience, AudienceRequest, MAX_AUDIENCE};
pub use audit::{Actor, AuditView, SystemJob};
pub use breaches::{BreachAction, BreachStep, BreachView, NewBreach};
pub(crate) use consents::records_of;
pub use consents::{ConsentView, ReceiptCheck};
pub use decide::{DecisionOutcome, DecisionRequest, DisclosureRequest, DisclosureView};
pub use derbes_store::{AuditQuery, Verification, WeblogPosition};
pub use derbes_store::{EventRow, SystemRow};
pub use derbes_weblog::pseudonym::DEFAULT_WINDOW_DAYS as DEFAULT_KEY_WINDOW_DAYS;
pub use desk::{OnTime, RequestSummary, SubjectOverview, WeekCount, Whoami};
pub use destruction::{DestructionAnswer, Kept};
pub use document::Document;
pub use error::EngineError;
pub use export::{
    ExportFee, ExportField, ExportNamed, ExportObjection, ExportOperator, ExportPolicy,
    ExportPrevious, ExportPurpose, ExportRecipient, ExportSubject, SubjectExport, EXPORT_SCHEMA,
};
pub use export_html::export_html;
pub use fields::Collected;
pub use import::{CsvColumns, ImportLine, ImportReport, Importer, LineProblem, RefusedLine};
pub use jobs::{CertificateView, JobsReport, MinorReport, NewObligation, ObligationView};
pub use keys::{KekUse, KeyStatus, RotationReport};
pub use lifecycle::{
    migrate, published_versions, Backend, EngineConfig, Migrated, Opened, PolicyVersionView,
    StoreConfig, TickReport,
};
pub use me::{
    ChannelView, MeView, MyRequest, SessionView, SubjectSession, SESSION_MINUTES_DEFAULT,
    SESSION_MINUTES_MAX,
};
pub use organizations::OrganizationRequest;
pub use outbox::{
    confirmation_message, sign, verify_signature, Awaiting, Backoff, ConnectedSystem, Delivery,
    EventView, NewSystem, NoticeView, OutboxQuery, SystemView, SIGNATURE_TOLERANCE_SECS,
};
pub use reads::{DataRead, FieldView};
pub use reconsent::{ReconsentItem, ReconsentPage};
pub use representatives::{NewRepresentative, RepresentationBasis, RepresentativeView};
pub use requests::{
    ContactAnswer, Identification, NewRequest, ObjectionKind, Queue, RequestAction, RequestChannel,
    RequestDetails, RequestState, RequestStep, RequestView, Requester, Said,
};
pub use retention::{HoldView, NewHold, PurgeItem, PurgeReport};
pub use seed::SeedReport;
pub use staff::{Staff, StaffView};
pub use subjects::{LookupKind, Registered};
pub use weblog::DEFAULT_K;

/// The keyring in use (a rotation replaces it).
pub(crate) fn current_keyring(keys: &RwLock<Arc<Keyring>>) -> Arc<Keyring> {
    match keys.read() {
        Ok(k) => k.clone(),
        Err(poisoned) => poisoned.into_inner().clone(),
    }
}

/// The clock, replaceable in tests.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Shared by every request; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    store: Store,
    policy: Arc<LoadedPolicy>,
    keys: Arc<RwLock<Arc<Keyring>>>,
    data_dir: Option<PathBuf>,
    key_env: KeyEnv,
    clock: Clock,
    /// The policy compiled for decisions; an error makes every decision a deny.
    compiled: Arc<Result<Compiled, derbes_core::decision::CompileError>>,
    auditor: audit::SharedAuditor,
    tokens: Arc<staff::TokenCache>,
    facts: Arc<decide::FactsCache>,
    coverages: Arc<decide::CoverageCache>,
    /// The KEK new data keys are wrapped under, as the database names it
    /// (read once; forgotten when a write finds it changed).
    wrap_kek: Arc<RwLock<Option<derbes_vault::KekId>>>,
    /// Set when personal data went and the store could not yet expunge
    /// every old copy of it (SQLite's WAL was busy): the scheduler retries.
    expunge_pending: Arc<std::sync::atomic::AtomicBool>,
    /// The administrative fee for a copy (7.11); 0, the Law's default.
    access_fee_kzt: u64,
    /// A new window for the statistics' day keys, to record with them
    /// (`--key-window-days`); `None` keeps the recorded one.
    key_window_days: Option<u32>,
    reconsent_walk: Arc<std::sync::Mutex<reconsent::NoticeWalk>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("policy", &self.policy.policy().version)
            .finish_non_exhaustive()
    }
}

/// The distinct categories of `category.field` names, in order.
pub(crate) fn field_categories<'a>(fields: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in fields {
        if let Some((c, _)) = f.split_once('.') {
            if !out.iter().any(|x| x == c) {
                out.push(c.to_string());
            }
        }
    }
    out
}

/// `value` if it is one of `allowed`; otherwise `code` on `field`, naming them.
/// The policy's categories named in `ids`, each once, in order; an
/// unknown one refused (`unknown_category`).
fn known_categories(
    policy: &derbes_policy::Policy,
    ids: &[String],
) -> Result<Vec<String>, EngineError> {
    let mut out: Vec<String> = Vec::new();
    for c in ids {
        if policy.category(c).is_none() {
            return Err(EngineError::invalid(
                "categories",
                "unknown_category",
                format!("`{c}` is not a category of the policy"),
            ));
        }
        if !out.contains(c) {
            out.push(c.clone());
        }
    }
    Ok(out)
}

/// The names of categories in `lang`, comma-separated, for a notice.
fn category_names<'a>(
    policy: &derbes_policy::Policy,
    ids: impl IntoIterator<Item = &'a str>,
    lang: derbes_policy::Lang,
) -> String {
    ids.into_iter()
        .map(|c| match policy.category(c) {
            Some(x) => x.name.get(lang).to_string(),
            None => c.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A text a person reads, made in each of the policy's languages.
fn in_every_language(make: impl Fn(derbes_policy::Lang) -> String) -> derbes_policy::Text {
    use derbes_policy::Lang;
    derbes_policy::Text {
        ru: make(Lang::Ru),
        en: make(Lang::En),
        kk: Some(make(Lang::Kk)),
    }
}

fn one_of(
    field: &str,
    code: &'static str,
    value: &str,
    allowed: &[&str],
) -> Result<(), EngineError> {
    if allowed.contains(&value) {
        return Ok(());
    }
    let names: Vec<String> = allowed.iter().map(|a| format!("`{a}`")).collect();
    let message = match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.concat(),
    };
    Err(EngineError::invalid(field, code, message))
}

/// A required reference (a case number, a contract's): free text of 1 to
/// 200 characters, kept as a sealed note.
fn reference(text: &str) -> Result<String, EngineError> {
    let reference = derbes_core::free_text("reference", text, 200)
        .map_err(|p| EngineError::Invalid(vec![p]))?;
    if reference.is_empty() {
        return Err(EngineError::invalid(
            "reference",
            "invalid_reference",
            "1 to 200 characters",
        ));
    }
    Ok(reference)
}

/// A time as unix microseconds, the form derbes' own JSON (audit details,
/// a request's internal notes) keeps times in.
fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// A time derbes kept as unix microseconds; out of range is damage.
fn from_micros(m: i64) -> Result<DateTime<Utc>, EngineError> {
    DateTime::from_timestamp_micros(m).ok_or_else(|| {
        EngineError::from(derbes_store::StoreError::Corrupt(
            "a kept time out of range".into(),
        ))
    })
}

/// The purposes that may use a field's category, by the policy.
fn purposes_for(policy: &LoadedPolicy, category: &str) -> Vec<String> {
    policy
        .policy()
        .purposes
        .iter()
        .filter(|p| p.allows_category(category))
        .map(|p| p.id.clone())
        .collect()
}

impl Engine {
    /// An engine over an open store, a policy and the keyring of `data_dir`
    /// (tests, benchmarks; services use [`Engine::open`]).
    pub fn over_store(
        store: Store,
        policy: LoadedPolicy,
        data_dir: PathBuf,
        env: &KeyEnv,
    ) -> Result<Engine, EngineError> {
        let keys =
            Keyring::open(&data_dir, env).map_err(|e| EngineError::Internal(e.to_string()))?;
        let mut engine = Engine::with_keyring(store, policy, keys, Some(data_dir));
        engine.key_env = env.clone();
        Ok(engine)
    }

    /// An engine with a given keyring (tests, benchmarks).
    pub fn with_keyring(
        store: Store,
        policy: LoadedPolicy,
        keys: Keyring,
        data_dir: Option<PathBuf>,
    ) -> Engine {
        let compiled = Arc::new(Compiled::new(policy.policy()));
        Engine {
            store,
            compiled,
            auditor: Arc::default(),
            tokens: Arc::default(),
            facts: Arc::default(),
            coverages: Arc::default(),
            expunge_pending: Arc::default(),
            wrap_kek: Arc::default(),
            policy: Arc::new(policy),
            keys: Arc::new(RwLock::new(Arc::new(keys))),
            data_dir,
            key_env: KeyEnv::default(),
            clock: Arc::new(Utc::now),
            access_fee_kzt: 0,
            key_window_days: None,
            reconsent_walk: Arc::default(),
        }
    }

    /// Replace the clock (tests).
    pub fn with_clock(mut self, clock: Clock) -> Engine {
        self.clock = clock;
        self
    }

    /// Charge an administrative fee for a copy of one's data (7.11 allows
    /// it; the Law makes access free unless the operator sets one).
    pub fn with_access_fee(mut self, amount_kzt: u64) -> Engine {
        self.access_fee_kzt = amount_kzt;
        self
    }

    /// Record a new window for the statistics' day keys: from then on every
    /// process opening them (the service's scheduler, every ingest) keeps
    /// a day's key this many days.
    pub fn with_key_window(mut self, days: Option<u32>) -> Engine {
        self.key_window_days = days;
        self
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    pub fn policy(&self) -> &LoadedPolicy {
        &self.policy
    }

    pub(crate) fn keyring(&self) -> Arc<Keyring> {
        current_keyring(&self.keys)
    }

    /// Reload the keyring from the data directory (after `derbes keys rotate`
    /// ran in another process).
    pub(crate) fn reload_keys(&self) -> Result<(), EngineError> {
        let Some(dir) = &self.data_dir else {
            return Ok(());
        };
        let fresh =
            Keyring::open(dir, &self.key_env).map_err(|e| EngineError::Internal(e.to_string()))?;
        self.replace_keyring(fresh);
        Ok(())
    }

    pub(crate) fn replace_keyring(&self, ring: Keyring) {
        match self.keys.write() {
            Ok(mut k) => *k = Arc::new(ring),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(ring),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_of_names_the_choices() {
        assert!(one_of("kind", "invalid_kind", "deal", &["contract", "deal"]).is_ok());
        let Err(EngineError::Invalid(p)) = one_of(
            "kind",
            "invalid_kind",
            "loan",
            &["contract", "deal", "debt"],
        ) else {
            panic!("refused")
        };
        assert_eq!(p[0].field, "kind");
        assert_eq!(p[0].reason, "`contract`, `deal` or `debt`");
        let Err(EngineError::Invalid(p)) = reference("  ") else {
            panic!("refused")
        };
        assert_eq!(p[0].code, "invalid_reference");
    }
}
