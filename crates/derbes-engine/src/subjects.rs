//! Subjects: registration exactly as the policy's form says (7.10), and
//! finding a subject by a lookup field through its blind index.

use derbes_core::{
    almaty_date, validate_registration, RegistrationRequest, SignedReceipt, SubjectId,
    SubjectStatus, ValidRegistration,
};
use derbes_policy::{Capability, FieldType};
use derbes_store::{FieldRow, NewConsent, NewSubject};
use serde::Serialize;
use serde_json::Value;

use crate::audit::Record;
use crate::{field_categories, purposes_for, Actor, Engine, EngineError};

/// The result of a registration.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Registered {
    pub subject_id: SubjectId,
    /// The receipt of each consent given with the registration.
    pub consent_receipts: Vec<SignedReceipt>,
}

/// Identifiers that can be looked up by blind index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupKind {
    Iin,
    Phone,
}

impl LookupKind {
    /// The type of the policy's lookup field this looks up.
    pub(crate) fn field_type(self) -> FieldType {
        match self {
            LookupKind::Iin => FieldType::Iin,
            LookupKind::Phone => FieldType::Phone,
        }
    }
}

/// A registration sealed and ready to write (see `Engine::prepare_subject`).
#[derive(Debug)]
pub(crate) struct Prepared {
    pub(crate) new: NewSubject,
    wrapped: derbes_vault::WrappedKey,
    categories: Vec<String>,
    source: String,
    pub(crate) receipts: Vec<SignedReceipt>,
}

impl Prepared {
    /// What the store writes, and the data key as wrapped (to wrap it anew
    /// should the KEK change before it is stored).
    pub(crate) fn into_parts(self) -> (NewSubject, derbes_vault::WrappedKey) {
        (self.new, self.wrapped)
    }

    /// The IIN's blind-index digest.
    pub(crate) fn iin_digest(&self) -> Option<&Vec<u8>> {
        self.new
            .index
            .iter()
            .find(|(k, _)| k == FieldType::Iin.as_str())
            .map(|(_, d)| d)
    }

    /// The registration's audit record (`import`: the import it came with).
    pub(crate) fn record<'a>(&'a self, actor: &'a Actor, import: Option<&str>) -> Record<'a> {
        let consents: Vec<&str> = self
            .new
            .consents
            .iter()
            .map(|c| c.consent_id.as_str())
            .collect();
        let mut details = serde_json::json!({"source": self.source, "consents": consents});
        if let Some(i) = import {
            details["import"] = Value::from(i);
        }
        Record::new(actor, "register")
            .subject(self.new.subject_id)
            .categories(&self.categories)
            .details(details)
    }
}

impl Engine {
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
        let mut consents = Vec::new();
        let mut problems = Vec::new();
        let subject = SubjectId::new();
        for (i, c) in req.consents.iter().enumerate() {
            match self.new_consent(subject, c, &format!("consents[{i}].")) {
                Ok(pair) => consents.push(pair),
                Err(p) => problems.extend(p),
            }
        }
        if !problems.is_empty() {
            return Err(EngineError::Invalid(problems));
        }
        let mut p = self.prepare_subject(subject, &valid, consents, now).await?;
        // Clause 7.7: a person found to be a minor is refused until 18.
        if let Some(digest) = p.iin_digest() {
            if self.store.is_barred(digest, now).await? {
                return Err(self.barred());
            }
        }
        let w = loop {
            let mut w = self.write().await?;
            match w.insert_subject(&p.new).await {
                Ok(()) => break w,
                // Another process rotated the KEK meanwhile: wrap under the new one.
                Err(derbes_store::StoreError::KekChanged { .. }) => {
                    drop(w);
                    self.rewrap(&mut p.new, &mut p.wrapped).await?;
                }
                Err(e) => return Err(self.duplicate(e)),
            }
        };
        self.commit(w, [p.record(actor, None)]).await?;
        Ok(Registered {
            subject_id: subject,
            consent_receipts: p.receipts,
        })
    }

    /// A registration ready to be written: every field sealed under a new
    /// data key, the lookup fields blind-indexed, the consents built.
    pub(crate) async fn prepare_subject(
        &self,
        subject: SubjectId,
        valid: &ValidRegistration,
        consents: Vec<(NewConsent, SignedReceipt)>,
        collected_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Prepared, EngineError> {
        let sid = subject.to_string();
        let (key, wrapped) = self.new_data_key(&sid).await?;
        let keys = self.keyring();
        let mut fields = Vec::with_capacity(valid.fields().len());
        for f in valid.fields() {
            let name = f.field.to_string();
            fields.push(FieldRow {
                sealed: key.seal(&sid, &name, f.value.as_bytes())?,
                field: name,
                source: valid.source().to_string(),
                collected_at,
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
        let categories = field_categories(fields.iter().map(|f| f.field.as_str()));
        let (rows, receipts): (Vec<_>, Vec<_>) = consents.into_iter().unzip();
        Ok(Prepared {
            new: NewSubject {
                subject_id: subject,
                policy_version: self.policy.policy().version.clone(),
                created_at: self.now(),
                kek_id: wrapped.kek.to_string(),
                wrapped_key: wrapped.bytes.clone(),
                fields,
                index,
                consents: rows,
            },
            wrapped,
            categories,
            source: valid.source().to_string(),
            receipts,
        })
    }

    /// Another process rotated the KEK: wrap these keys under the new one.
    pub(crate) async fn rewrap(
        &self,
        new: &mut NewSubject,
        wrapped: &mut derbes_vault::WrappedKey,
    ) -> Result<(), EngineError> {
        *wrapped = self
            .rewrap_for_active(&new.subject_id.to_string(), wrapped)
            .await?;
        new.kek_id = wrapped.kek.to_string();
        new.wrapped_key = wrapped.bytes.clone();
        Ok(())
    }

    /// The refusal of a barred minor (clause 7.7).
    pub(crate) fn barred(&self) -> EngineError {
        EngineError::Invalid(vec![self.barred_problem()])
    }

    pub(crate) fn barred_problem(&self) -> derbes_core::Problem {
        let field = self.policy.policy().lookup_field(FieldType::Iin);
        derbes_core::Problem::new(
            field.map(|f| f.to_string()).unwrap_or_default(),
            "barred_minor",
            "registration is refused until this person turns 18 (clause 7.7)",
        )
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
        let found = self.store.lookup(field, &digest).await?;
        self.audit(
            Record::new(actor, "lookup")
                .subject(found)
                .categories(&[by.category])
                .details(serde_json::json!({"by": field, "found": found.is_some()})),
        )
        .await?;
        Ok(found)
    }

    pub(crate) async fn require_active(&self, subject: SubjectId) -> Result<(), EngineError> {
        let row = self
            .store
            .subject(subject)
            .await?
            .ok_or(EngineError::NotFound("subject"))?;
        if row.status == SubjectStatus::Destroyed {
            return Err(EngineError::Destroyed);
        }
        Ok(())
    }
}
