//! Reading personal data: the one place sealed data is opened, and the read
//! for a purpose that asks the decision point first.

use chrono::{DateTime, Utc};
use derbes_core::SubjectId;
use derbes_policy::{Capability, Channel, FieldType, Operation};
use derbes_store::FieldRow;
use derbes_vault::{DataKey, KekId, WrappedKey};
use serde::Serialize;
use serde_json::Value;

use crate::decide::{DecisionRequest as Question, Permit};
use crate::{Actor, Engine, EngineError};

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

/// Fields read for a purpose, with the audit record of the decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DataRead {
    pub fields: Vec<FieldView>,
    /// The categories the decision permitted.
    pub categories: Vec<String>,
    pub audit_id: i64,
}

impl Engine {
    /// The subject's data key, or why there is none.
    /// Callers have loaded the subject (`subject_facts`) already; destruction
    /// deletes the key row in the same transaction as the rest, so a missing
    /// key means destroyed.
    pub(crate) async fn data_key(&self, subject: SubjectId) -> Result<DataKey, EngineError> {
        let sid = subject.to_string();
        let stored = self
            .store
            .subject_key(&sid)
            .await?
            .ok_or(EngineError::Destroyed)?;
        self.unwrap_stored(&sid, stored)
    }

    /// Unwrap a stored data key of `id` (a subject, or a note owner).
    pub(crate) fn unwrap_stored(
        &self,
        id: &str,
        stored: derbes_store::WrappedKey,
    ) -> Result<DataKey, EngineError> {
        let wrapped = WrappedKey {
            kek: KekId::from_stored(&stored.kek_id),
            bytes: stored.wrapped,
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
    pub(crate) fn open_sealed(
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

    /// Open one sealed field (or previous value) a decision permitted:
    /// nothing the permit does not cover is opened (fail closed).
    pub(crate) fn view(
        &self,
        permit: &Permit,
        key: &DataKey,
        sid: &str,
        row: &FieldRow,
    ) -> Result<FieldView, EngineError> {
        if !permit.covers(sid, &row.field) {
            return Err(EngineError::Internal(
                "a field outside the decision's permit was about to be opened".into(),
            ));
        }
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
            collected_at: row.collected_at,
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
        let permit = self
            .decide_and_audit(
                actor,
                &question,
                &facts,
                "read",
                serde_json::json!({"operation": "use", "channel": channel}),
            )
            .await?;
        let key = self.data_key(subject).await?;
        let sid = subject.to_string();
        let rows = self.store.subject_fields(subject).await?;
        let fields = rows
            .iter()
            .filter(|r| permit.covers(&sid, &r.field))
            .map(|r| self.view(&permit, &key, &sid, r))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(DataRead {
            fields,
            categories: permit.categories().to_vec(),
            audit_id: permit.audit_id(),
        })
    }
}
