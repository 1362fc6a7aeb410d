//! Organisations a user acts for (3.4): not personal data, kept apart from
//! subjects, linked to their representatives.

use std::collections::BTreeMap;

use derbes_core::{validate_form, OrganizationId, SubjectId};
use serde::Deserialize;
use serde_json::Value;

use derbes_policy::{Capability, FieldType};

use crate::audit::Record;
use crate::{Actor, Engine, EngineError};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OrganizationRequest {
    /// `organisation.*` fields of the policy's organisation form.
    pub fields: BTreeMap<String, Value>,
    /// Subjects who act for the organisation.
    #[serde(default)]
    pub representatives: Vec<SubjectId>,
}

impl Engine {
    /// Register an organisation (BIN and IBAN validated) and link representatives.
    pub async fn register_organization(
        &self,
        actor: &Actor,
        req: &OrganizationRequest,
    ) -> Result<OrganizationId, EngineError> {
        self.require(actor, Capability::RegisterSubjects)?;
        let p = &self.policy.policy();
        let mut problems = Vec::new();
        let fields = validate_form(p, "organisation", &req.fields, &mut problems);
        if !problems.is_empty() {
            return Err(EngineError::Invalid(problems));
        }
        // The organisation is known by its BIN: the form's field of that type.
        let bin = fields
            .iter()
            .find(|f| p.field(&f.field).is_some_and(|d| d.ty == FieldType::Bin))
            .map(|f| f.value.clone())
            .ok_or_else(|| {
                EngineError::invalid(
                    "fields",
                    "missing_field",
                    "the organisation's BIN (the form's field of type `bin`) is required",
                )
            })?;
        let json: serde_json::Map<String, Value> = fields
            .iter()
            .map(|f| (f.field.to_string(), Value::String(f.value.clone())))
            .collect();
        let id = OrganizationId::new();
        let reps: Vec<String> = req
            .representatives
            .iter()
            .map(ToString::to_string)
            .collect();
        let mut w = self.write().await?;
        w.insert_organization(
            &id.to_string(),
            &bin,
            &serde_json::to_string(&json)?,
            &reps,
            self.now(),
        )
        .await
        .map_err(|e| match e {
            derbes_store::StoreError::Duplicate(_) => EngineError::DuplicateOrganization,
            e => e.into(),
        })?;
        self.commit(
            w,
            [Record::new(actor, "organization.register")
                .categories(&["organisation".to_string()])
                .details(serde_json::json!({"organization_id": id, "representatives": reps}))],
        )
        .await?;
        Ok(id)
    }

    /// An organisation's details and representatives.
    pub async fn organization(
        &self,
        actor: &Actor,
        id: OrganizationId,
    ) -> Result<(Value, Vec<String>), EngineError> {
        self.require(actor, Capability::Lookup)?;
        let org = self
            .store
            .organization(&id.to_string())
            .await?
            .ok_or(EngineError::NotFound("organization"))?;
        Ok((serde_json::from_str(&org.fields_json)?, org.representatives))
    }
}
