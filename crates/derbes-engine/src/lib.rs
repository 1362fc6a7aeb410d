//! The derbes application layer: the one place where the policy, the domain
//! rules, the vault and the store meet. The HTTP server and the CLI call it;
//! neither touches keys or sealed data directly.
//!
//! Personal data is in plaintext only inside these methods and in what they
//! return to the caller; it is never logged.

mod audit;
mod decide;
mod destruction;
mod error;
mod export;
mod export_html;
mod fields;
mod jobs;
mod keys;
mod lifecycle;
mod notes;
mod organizations;
mod reconsent;
mod representatives;
mod requests;
mod retention;
mod seed;
mod staff;
mod weblog;

use crate::audit::Record;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use derbes_core::{
    almaty_date, build_consent, validate_registration, Compiled, ConsentId, ConsentRecord,
    ConsentRequest, ConsentState, Problem, Receipt, RegistrationRequest, SignedReceipt, SubjectId,
};
use derbes_policy::{Capability, Channel, FieldType, LoadedPolicy, Operation};
use derbes_store::{FieldRow, NewConsent, NewSubject, Store};
use derbes_vault::{DataKey, KekId, KeyEnv, Keyring, WrappedKey};
use serde::Serialize;
use serde_json::Value;

pub use audit::{Actor, AuditView, SystemJob};
use decide::DecisionRequest as Question;
pub use decide::{DecisionOutcome, DecisionRequest, DisclosureRequest, DisclosureView};
pub use derbes_store::{AuditQuery, Verification};
pub use destruction::{DestructionAnswer, Kept};
pub use error::EngineError;
pub use export::{
    ExportFee, ExportField, ExportNamed, ExportObjection, ExportOperator, ExportPolicy,
    ExportPrevious, ExportPurpose, ExportRecipient, ExportSubject, SubjectExport, EXPORT_SCHEMA,
};
pub use export_html::export_html;
pub use fields::Collected;
pub use jobs::{CertificateView, JobsReport, MinorReport, NewObligation, ObligationView};
pub use keys::{KekUse, KeyStatus, RotationReport};
pub use lifecycle::{
    migrate, published_versions, Backend, EngineConfig, Migrated, Opened, PolicyVersionView,
    StoreConfig, TickReport,
};
pub use organizations::OrganizationRequest;
pub use reconsent::{ReconsentItem, ReconsentPage};
pub use representatives::{NewRepresentative, RepresentationBasis, RepresentativeView};
pub use requests::{
    ContactAnswer, Identification, NewRequest, ObjectionKind, RequestAction, RequestChannel,
    RequestDetails, RequestState, RequestStep, RequestView, Requester,
};
pub use retention::{HoldView, NewHold, PurgeItem, PurgeReport};
pub use seed::SeedReport;
pub use staff::{Staff, StaffView};
pub use weblog::{DEFAULT_K, DEFAULT_KEY_WINDOW_DAYS};

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
    /// The administrative fee for a copy (7.11); 0, the Law's default.
    access_fee_kzt: u64,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("policy", &self.policy.policy().version)
            .finish_non_exhaustive()
    }
}

/// A field of a subject, decrypted for a permitted use.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldView {
    pub field: String,
    pub value: Value,
    pub source: String,
    pub collected_at: DateTime<Utc>,
    pub purposes: Vec<String>,
}

/// A consent with its state now.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsentView {
    pub state: ConsentState,
    #[serde(flatten)]
    pub record: ConsentRecord,
}

/// The result of a registration.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Registered {
    pub subject_id: SubjectId,
    /// The receipt of each consent given with the registration.
    pub consent_receipts: Vec<SignedReceipt>,
}

/// What a receipt check found.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReceiptCheck {
    /// The receipt is exactly what the ledger recorded.
    pub valid: bool,
    pub consent_id: Option<ConsentId>,
    pub state: Option<ConsentState>,
}

/// Fields read for a purpose, with the audit record of the decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DataRead {
    pub fields: Vec<FieldView>,
    /// The categories the decision permitted.
    pub categories: Vec<String>,
    pub audit_id: i64,
}

/// Consent records from stored rows, with their withdrawals.
pub(crate) fn records_of(
    rows: &[derbes_store::ConsentRow],
) -> Result<Vec<ConsentRecord>, EngineError> {
    rows.iter()
        .map(|r| {
            let mut rec: ConsentRecord = serde_json::from_str(&r.record_json)?;
            rec.withdrawn_at = r.withdrawn_at.map(from_micros);
            Ok(rec)
        })
        .collect()
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

/// Identifiers that can be looked up by blind index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupKind {
    Iin,
    Phone,
}

impl LookupKind {
    /// The type of the policy's lookup field this looks up.
    fn field_type(self) -> FieldType {
        match self {
            LookupKind::Iin => FieldType::Iin,
            LookupKind::Phone => FieldType::Phone,
        }
    }
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(m: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(m).unwrap_or_default()
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
            policy: Arc::new(policy),
            keys: Arc::new(RwLock::new(Arc::new(keys))),
            data_dir,
            key_env: KeyEnv::default(),
            clock: Arc::new(Utc::now),
            access_fee_kzt: 0,
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

    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    pub fn policy(&self) -> &LoadedPolicy {
        &self.policy
    }

    pub(crate) fn keyring(&self) -> Arc<Keyring> {
        match self.keys.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
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

    fn pseudonym(&self, req: &ConsentRequest) -> Option<String> {
        req.evidence
            .client_address
            .as_ref()
            .map(|ip| self.keyring().pseudonym("client_address", ip.trim()))
    }

    fn new_consent(
        &self,
        subject: SubjectId,
        req: &ConsentRequest,
        prefix: &str,
    ) -> Result<(NewConsent, SignedReceipt), Vec<Problem>> {
        let (record, signed) = build_consent(
            &self.policy,
            subject,
            req,
            self.pseudonym(req),
            self.now(),
            prefix,
        )?;
        let row = NewConsent {
            consent_id: record.consent_id.to_string(),
            kind: record.kind.as_str().to_string(),
            given_at: micros(record.given_at),
            expires_at: record.expires_at.map(micros),
            record_json: serde_json::to_string(&record)
                .map_err(|_| vec![Problem::new("consent", "invalid", "cannot be recorded")])?,
            receipt_sha256: record.receipt_sha256.clone(),
            policy_sha256: record.policy_sha256.clone(),
        };
        Ok((row, signed))
    }

    /// Register a user as the registration form describes (7.10): all fields
    /// sealed under a new data key, IIN and phone blind-indexed, the consents
    /// recorded — in one transaction. Nothing is stored when anything is refused.
    pub async fn register(
        &self,
        actor: &Actor,
        req: &RegistrationRequest,
    ) -> Result<Registered, EngineError> {
        self.require(actor, Capability::RegisterSubjects)?;
        let now = self.now();
        let valid = validate_registration(self.policy.policy(), req, almaty_date(now))
            .map_err(EngineError::Invalid)?;
        let subject = SubjectId::new();
        let sid = subject.to_string();
        let mut consents = Vec::new();
        let mut receipts = Vec::new();
        let mut problems = Vec::new();
        for (i, c) in req.consents.iter().enumerate() {
            match self.new_consent(subject, c, &format!("consents[{i}].")) {
                Ok((row, signed)) => {
                    consents.push(row);
                    receipts.push(signed);
                }
                Err(p) => problems.extend(p),
            }
        }
        if !problems.is_empty() {
            return Err(EngineError::Invalid(problems));
        }
        let keys = self.keyring();
        let (key, wrapped) = keys.new_data_key(&sid)?;
        let mut fields = Vec::with_capacity(valid.fields().len());
        for f in valid.fields() {
            let name = f.field.to_string();
            fields.push(FieldRow {
                sealed: key.seal(&sid, &name, f.value.as_bytes())?,
                field: name,
                source: valid.source().to_string(),
                collected_at: micros(now),
                purposes: purposes_for(&self.policy, &f.field.category).join(","),
                version: 1,
            });
        }
        // The policy's lookup fields are blind-indexed by their type.
        let index: Vec<(String, Vec<u8>)> = valid
            .fields()
            .iter()
            .filter_map(|f| {
                let kind = self.policy.policy().index_kind(&f.field.to_string())?;
                Some((kind.to_string(), keys.blind_index(kind, &f.value).to_vec()))
            })
            .collect();
        // Clause 7.7: a person found to be a minor is refused until 18.
        for (kind, digest) in &index {
            if kind == FieldType::Iin.as_str() && self.store.is_barred(digest, micros(now)).await? {
                let field = self.policy.policy().lookup_field(FieldType::Iin);
                return Err(EngineError::invalid(
                    &field.map(|f| f.to_string()).unwrap_or_default(),
                    "barred_minor",
                    "registration is refused until this person turns 18 (clause 7.7)",
                ));
            }
        }
        let categories = field_categories(fields.iter().map(|f| f.field.as_str()));
        let consent_ids: Vec<String> = consents.iter().map(|c| c.consent_id.clone()).collect();
        self.store
            .insert_subject(&NewSubject {
                subject_id: sid,
                policy_version: self.policy.policy().version.clone(),
                created_at: micros(now),
                kek_id: wrapped.kek.to_string(),
                wrapped_key: wrapped.bytes,
                fields,
                index,
                consents,
            })
            .await
            .map_err(|e| self.duplicate(e))?;
        self.audit(
            Record::new(actor, "register")
                .subject(subject)
                .categories(&categories)
                .details(serde_json::json!({"source": valid.source(), "consents": consent_ids})),
        )
        .await?;
        Ok(Registered {
            subject_id: subject,
            consent_receipts: receipts,
        })
    }

    /// A store's refusal of a taken identifier, named by the policy's field.
    pub(crate) fn duplicate(&self, e: derbes_store::StoreError) -> EngineError {
        match e {
            derbes_store::StoreError::Duplicate(kind) => EngineError::DuplicateSubject {
                field: FieldType::parse(&kind)
                    .and_then(|t| self.policy.policy().lookup_field(t))
                    .map_or(kind, |f| f.to_string()),
            },
            e => e.into(),
        }
    }

    /// Find a subject by IIN or phone, through the blind index (audited).
    pub async fn lookup(
        &self,
        actor: &Actor,
        kind: LookupKind,
        value: &str,
    ) -> Result<Option<SubjectId>, EngineError> {
        self.require(actor, Capability::Lookup)?;
        let ty = kind.field_type();
        let field = ty.as_str();
        let by = self.policy.policy().lookup_field(ty).ok_or_else(|| {
            EngineError::invalid(field, "no_lookup", "the policy looks nobody up by this")
        })?;
        let canonical = derbes_core::canonical(ty, &Value::String(value.to_string()))
            .map_err(|(code, reason)| EngineError::invalid(field, code, reason))?;
        let digest = self.keyring().blind_index(field, &canonical);
        let found = match self.store.lookup(field, &digest).await? {
            None => None,
            Some(s) => {
                Some(SubjectId::parse(&s).map_err(|e| EngineError::Internal(e.to_string()))?)
            }
        };
        self.audit(
            Record::new(actor, "lookup")
                .subject(found)
                .categories(&[by.category])
                .details(serde_json::json!({"by": field, "found": found.is_some()})),
        )
        .await?;
        Ok(found)
    }

    /// The subject's data key, or why there is none.
    /// Callers have loaded the subject (`subject_facts`) already; destruction
    /// deletes the key row in the same transaction as the rest, so a missing
    /// key means destroyed.
    async fn data_key(&self, subject: SubjectId) -> Result<DataKey, EngineError> {
        let sid = subject.to_string();
        let (kek, bytes) = self
            .store
            .subject_key(&sid)
            .await?
            .ok_or(EngineError::Destroyed)?;
        self.unwrap_stored(&sid, &kek, bytes)
    }

    /// Unwrap a stored data key of `id` (a subject, or a note owner).
    pub(crate) fn unwrap_stored(
        &self,
        id: &str,
        kek: &str,
        bytes: Vec<u8>,
    ) -> Result<DataKey, EngineError> {
        let wrapped = WrappedKey {
            kek: KekId::from_stored(kek),
            bytes,
        };
        match self.keyring().unwrap_key(id, &wrapped) {
            Ok(k) => Ok(k),
            Err(derbes_vault::VaultError::UnknownKek(_)) => {
                // Rotated by another process: pick up the new keyring once.
                self.reload_keys()?;
                Ok(self.keyring().unwrap_key(id, &wrapped)?)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The one place sealed data is opened. Its callers: [`Engine::view`]
    /// (fields, after a decision) and [`Engine::open_notes`] (free text,
    /// audited); `tests/one_path.rs` pins both.
    fn open_sealed(
        &self,
        key: &DataKey,
        sid: &str,
        label: &str,
        sealed: &[u8],
    ) -> Result<String, EngineError> {
        let plain = key.open(sid, label, sealed)?;
        String::from_utf8(plain.to_vec())
            .map_err(|_| EngineError::Internal("a sealed value is not UTF-8".into()))
    }

    fn view(&self, key: &DataKey, sid: &str, row: &FieldRow) -> Result<FieldView, EngineError> {
        let text = self.open_sealed(key, sid, &row.field, &row.sealed)?;
        let ty = derbes_core::field_ref(self.policy.policy(), &row.field).map(|(_, t)| t);
        let value = match (ty, text.as_str()) {
            (Some(FieldType::Boolean), "true") => Value::Bool(true),
            (Some(FieldType::Boolean), "false") => Value::Bool(false),
            _ => Value::String(text),
        };
        Ok(FieldView {
            field: row.field.clone(),
            value,
            source: row.source.clone(),
            collected_at: from_micros(row.collected_at),
            purposes: row
                .purposes
                .split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
        })
    }

    /// The fields the actor may use for `purpose`: the decision point is asked
    /// for the categories the actor's role needs for it, the answer is audited
    /// durably, and only then are the permitted fields decrypted.
    pub async fn data_for_purpose(
        &self,
        actor: &Actor,
        subject: SubjectId,
        purpose: &str,
        channel: Option<Channel>,
    ) -> Result<DataRead, EngineError> {
        self.require(actor, Capability::ReadData)?;
        let p = self.policy.policy().purpose(purpose).ok_or_else(|| {
            EngineError::invalid("purpose", "unknown_purpose", "not a purpose of the policy")
        })?;
        let mut categories = match self.compiled.as_ref() {
            Ok(c) => c.role_categories(actor.role(), purpose),
            Err(_) => Vec::new(),
        };
        if categories.is_empty() {
            // Ask for everything the purpose may use, so the refusal says why.
            categories = p.categories.clone();
        }
        let facts = self.subject_facts(subject).await?;
        // Categories that need a consent the subject has not given (3.5,
        // 7.4) are not asked for: they are not theirs to use.
        if let Ok(c) = self.compiled.as_ref() {
            let unconsented = c.unconsented_categories(&categories, &facts.consents);
            categories.retain(|c| !unconsented.contains(c));
        }
        let question = Question {
            subject_id: subject,
            operation: Operation::Use,
            purpose: purpose.to_string(),
            categories,
            recipient: None,
            channel,
            legal_basis: None,
            reference: None,
        };
        let d = self.decide_facts(actor, &question, &facts);
        let audit_id = self
            .audit(
                Record::new(actor, "read")
                    .subject(subject)
                    .purpose(purpose)
                    .categories(&question.categories)
                    .decision(&d)
                    .details(serde_json::json!({"operation": "use", "channel": channel})),
            )
            .await?;
        if !d.permit {
            return Err(EngineError::Denied {
                reasons: d.reasons,
                audit_id,
            });
        }
        let key = self.data_key(subject).await?;
        let sid = subject.to_string();
        let rows = self.store.subject_fields(&sid).await?;
        let fields = rows
            .iter()
            .filter(|r| {
                r.field
                    .split_once('.')
                    .is_some_and(|(c, _)| question.categories.iter().any(|x| x == c))
            })
            .map(|r| self.view(&key, &sid, r))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(DataRead {
            fields,
            categories: question.categories,
            audit_id,
        })
    }

    async fn consent_records(&self, subject: SubjectId) -> Result<Vec<ConsentRecord>, EngineError> {
        records_of(&self.store.consents(&subject.to_string()).await?)
    }

    pub(crate) async fn consent_records_of(
        &self,
        subject: SubjectId,
    ) -> Result<Vec<ConsentRecord>, EngineError> {
        self.consent_records(subject).await
    }

    async fn require_active(&self, subject: SubjectId) -> Result<(), EngineError> {
        let row = self
            .store
            .subject(&subject.to_string())
            .await?
            .ok_or(EngineError::NotFound("subject"))?;
        if row.status == "destroyed" {
            return Err(EngineError::Destroyed);
        }
        Ok(())
    }

    /// Record a consent; returns its receipt.
    pub async fn add_consent(
        &self,
        actor: &Actor,
        subject: SubjectId,
        req: &ConsentRequest,
    ) -> Result<SignedReceipt, EngineError> {
        self.require(actor, Capability::RecordConsents)?;
        self.require_active(subject).await?;
        let (row, signed) = self
            .new_consent(subject, req, "")
            .map_err(EngineError::Invalid)?;
        self.store
            .insert_consent(&subject.to_string(), &row)
            .await?;
        self.facts.forget(&subject);
        self.audit(
            Record::new(actor, "consent")
                .subject(subject)
                .categories(&signed.receipt.categories)
                .details(serde_json::json!({"consent_id": row.consent_id, "kind": row.kind})),
        )
        .await?;
        Ok(signed)
    }

    /// The full consent history with each consent's state now.
    pub async fn consents(
        &self,
        actor: &Actor,
        subject: SubjectId,
    ) -> Result<Vec<ConsentView>, EngineError> {
        if self.require(actor, Capability::RecordConsents).is_err() {
            self.require(actor, Capability::ReadData)?;
        }
        let views = self.consent_views(subject).await?;
        self.audit(
            Record::new(actor, "consents.read")
                .subject(subject)
                .details(serde_json::json!({"count": views.len()})),
        )
        .await?;
        Ok(views)
    }

    async fn consent_views(&self, subject: SubjectId) -> Result<Vec<ConsentView>, EngineError> {
        if self.store.subject(&subject.to_string()).await?.is_none() {
            return Err(EngineError::NotFound("subject"));
        }
        let now = self.now();
        Ok(self
            .consent_records(subject)
            .await?
            .into_iter()
            .map(|record| ConsentView {
                state: record.state(now),
                record,
            })
            .collect())
    }

    /// Withdraw a consent (appended to the ledger; the record is unchanged).
    /// Returns the consent's view after withdrawal. A marketing consent is
    /// withdrawn at once. The policy consent is the 7.11 withdrawal, and a
    /// consent some categories need (entrepreneur, cookies) takes their data
    /// with it: both are worked as a withdrawal request — the same path as
    /// the desk's — filed in the app for its signed-in user
    /// (`in_app_requests`); staff file such a request on the desk instead.
    pub async fn withdraw_consent(
        &self,
        actor: &Actor,
        subject: SubjectId,
        consent: ConsentId,
        evidence: &Value,
    ) -> Result<ConsentView, EngineError> {
        self.require(actor, Capability::RecordConsents)?;
        let now = self.now();
        let evidence = serde_json::to_string(evidence)?;
        if evidence.len() > 4000 {
            return Err(EngineError::invalid(
                "evidence",
                "too_long",
                "at most 4000 characters of evidence",
            ));
        }
        let record = self
            .consent_views(subject)
            .await?
            .into_iter()
            .find(|c| c.record.consent_id == consent)
            .ok_or(EngineError::NotFound("consent"))?;
        // The evidence may name people: sealed, like every free text.
        let notes = self
            .seal_notes(
                Some(subject),
                &[(format!("withdrawal:{consent}"), "evidence", Some(&evidence))],
            )
            .await?;
        if record.record.kind == derbes_policy::ConsentKind::Marketing {
            self.store
                .withdraw_consent(
                    &subject.to_string(),
                    &consent.to_string(),
                    micros(now),
                    "{}",
                    &notes,
                )
                .await?;
            self.facts.forget(&subject);
            self.audit(
                Record::new(actor, "consent.withdrawal")
                    .subject(subject)
                    .details(serde_json::json!({"consent_id": consent})),
            )
            .await?;
        } else if record.state != ConsentState::Withdrawn {
            if self.require(actor, Capability::InAppRequests).is_err() {
                self.refuse(
                    actor,
                    "consent.withdrawal",
                    Some(subject),
                    "withdrawal_request_required",
                    "this consent's withdrawal destroys data: the app files it for its signed-in user, staff file a withdrawal request on the desk",
                    serde_json::json!({"consent_id": consent}),
                )
                .await?;
            }
            let kind = record.record.kind;
            let request = self
                .create_request(
                    actor,
                    &NewRequest {
                        subject_id: Some(subject),
                        identification: None,
                        kind: derbes_policy::Right::Withdrawal,
                        channel: RequestChannel::InApp,
                        requester: Requester::Subject,
                        representative_id: None,
                        received_at: None,
                        details: RequestDetails {
                            consent: Some(kind),
                            ..RequestDetails::default()
                        },
                        text: None,
                    },
                )
                .await?;
            if request.state == RequestState::Refused {
                return Err(EngineError::invalid(
                    "consent_id",
                    "withdrawal_refused",
                    format!(
                        "obligations are outstanding (clause 7.11); see request {}",
                        request.request_id
                    ),
                ));
            }
            self.store.insert_notes(&notes).await?;
        }
        self.consent_views(subject)
            .await?
            .into_iter()
            .find(|c| c.record.consent_id == consent)
            .ok_or(EngineError::NotFound("consent"))
    }

    /// Confirm that a receipt a user kept is exactly what the ledger recorded.
    pub async fn verify_receipt(&self, receipt: &Receipt) -> Result<ReceiptCheck, EngineError> {
        let sha = receipt.sha256();
        let Some(row) = self.store.consent_by_receipt(&sha).await? else {
            return Ok(ReceiptCheck {
                valid: false,
                consent_id: None,
                state: None,
            });
        };
        let mut rec: ConsentRecord = serde_json::from_str(&row.record_json)?;
        rec.withdrawn_at = row.withdrawn_at.map(from_micros);
        // The hash covers every word of the receipt; finding it is the proof.
        Ok(ReceiptCheck {
            valid: rec.receipt_sha256 == sha,
            consent_id: Some(rec.consent_id),
            state: Some(rec.state(self.now())),
        })
    }
}
