//! Representation (clause 1: data may be about the user or their principal,
//! «доверитель»): a legal representative (by law: a parent, a guardian) or an
//! attorney (by a power of attorney the subject, as principal, gave) is
//! recorded with their authority — the document and how long it is valid —
//! and a request that names `requester: legal_representative` must name one
//! whose authority is valid when the request is received. The name and the
//! document's reference are personal data: they are sealed notes.

use chrono::{DateTime, NaiveDate, Utc};
use derbes_core::SubjectId;
use derbes_policy::Capability;
use derbes_store::RepresentativeRow;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::Record;
use crate::{Actor, Engine, EngineError};

/// On what authority a representative acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RepresentationBasis {
    /// By law: a parent, a guardian, a trustee.
    Law,
    /// By a power of attorney the subject gave (the subject is the principal).
    PowerOfAttorney,
}

impl RepresentationBasis {
    const ALL: [RepresentationBasis; 2] = [
        RepresentationBasis::Law,
        RepresentationBasis::PowerOfAttorney,
    ];

    /// The name stored and shown (its JSON name).
    pub fn as_str(self) -> &'static str {
        match self {
            RepresentationBasis::Law => "law",
            RepresentationBasis::PowerOfAttorney => "power_of_attorney",
        }
    }

    /// A stored name; anything else is damage.
    fn stored(s: &str) -> Result<RepresentationBasis, EngineError> {
        RepresentationBasis::ALL
            .into_iter()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| {
                derbes_store::StoreError::Corrupt("an unknown representation basis".into()).into()
            })
    }
}

/// A representative to record.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewRepresentative {
    pub basis: RepresentationBasis,
    /// The representative's full name (sealed).
    pub name: String,
    /// The document giving the authority: its kind, number and date (sealed).
    pub document: String,
    /// The first day the authority is valid (Asia/Almaty); today when absent.
    pub valid_from: Option<NaiveDate>,
    /// The last day it is valid; open-ended when absent (a parent until the
    /// child is of age is recorded with that date).
    pub valid_until: Option<NaiveDate>,
}

/// A representative on record.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RepresentativeView {
    pub representative_id: String,
    pub basis: RepresentationBasis,
    pub name: String,
    pub document: String,
    pub valid_from: DateTime<Utc>,
    pub valid_until: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The start of `d` in Almaty.
fn day_start(d: NaiveDate) -> Option<DateTime<Utc>> {
    let t = d.and_hms_opt(0, 0, 0)?;
    chrono::TimeZone::from_local_datetime(&derbes_kz::ALMATY, &t)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

impl Engine {
    /// Record a representative of a subject (`work_requests`).
    pub async fn add_representative(
        &self,
        actor: &Actor,
        subject: SubjectId,
        r: &NewRepresentative,
    ) -> Result<RepresentativeView, EngineError> {
        self.require(actor, Capability::WorkRequests)?;
        let mut problems = Vec::new();
        let mut text = |field: &str, v: &str| match derbes_core::free_text(field, v, 300) {
            Ok(t) if t.is_empty() => {
                problems.push(derbes_core::Problem::new(
                    field,
                    "missing_field",
                    "required",
                ));
                t
            }
            Ok(t) => t,
            Err(p) => {
                problems.push(p);
                String::new()
            }
        };
        let name = text("name", &r.name);
        let document = text("document", &r.document);
        let now = self.now();
        let from = r.valid_from.map_or(Some(now), day_start).unwrap_or(now);
        // Valid through the whole last day.
        let until = r.valid_until.and_then(|d| d.succ_opt()).and_then(day_start);
        if until.is_some_and(|u| u <= from) {
            problems.push(derbes_core::Problem::new(
                "valid_until",
                "invalid_period",
                "the authority ends after it begins",
            ));
        }
        if !problems.is_empty() {
            return Err(EngineError::Invalid(problems));
        }
        self.require_active(subject).await?;
        let row = RepresentativeRow {
            representative_id: uuid::Uuid::now_v7().to_string(),
            basis: r.basis.as_str().to_string(),
            valid_from: from,
            valid_until: until,
            created_at: now,
            revoked_at: None,
        };
        let owner = format!("representative:{}", row.representative_id);
        let notes = self
            .seal_notes(
                Some(subject),
                &[
                    (owner.clone(), "name", Some(&name)),
                    (owner.clone(), "document", Some(&document)),
                ],
            )
            .await?;
        let mut w = self.write().await?;
        w.add_representative(subject, &row, &notes).await?;
        self.commit(
            w,
            [Record::new(actor, "representative.added")
                .subject(subject)
                .details(json!({"representative_id": row.representative_id, "basis": row.basis}))],
        )
        .await?;
        Ok(RepresentativeView {
            representative_id: row.representative_id,
            basis: r.basis,
            name,
            document,
            valid_from: from,
            valid_until: until,
            revoked_at: None,
        })
    }

    /// A subject's representatives, with their names and documents.
    pub async fn representatives(
        &self,
        actor: &Actor,
        subject: SubjectId,
    ) -> Result<Vec<RepresentativeView>, EngineError> {
        self.require(actor, Capability::WorkRequests)?;
        let rows = self.store.representatives(subject).await?;
        let owners: Vec<String> = rows
            .iter()
            .map(|r| format!("representative:{}", r.representative_id))
            .collect();
        let notes = self.open_notes(actor, Some(subject), &owners).await?;
        rows.into_iter()
            .map(|r| {
                let owner = format!("representative:{}", r.representative_id);
                let note = |n: &str| {
                    notes
                        .get(&(owner.clone(), n.to_string()))
                        .cloned()
                        .unwrap_or_default()
                };
                Ok(RepresentativeView {
                    basis: RepresentationBasis::stored(&r.basis)?,
                    name: note("name"),
                    document: note("document"),
                    representative_id: r.representative_id,
                    valid_from: r.valid_from,
                    valid_until: r.valid_until,
                    revoked_at: r.revoked_at,
                })
            })
            .collect()
    }

    /// End a representative's authority (audited).
    pub async fn revoke_representative(
        &self,
        actor: &Actor,
        subject: SubjectId,
        representative_id: &str,
    ) -> Result<(), EngineError> {
        self.require(actor, Capability::WorkRequests)?;
        let mut w = self.write().await?;
        if !w
            .revoke_representative(subject, representative_id, self.now())
            .await?
        {
            return Err(EngineError::NotFound(
                "representative with a valid authority",
            ));
        }
        self.commit(
            w,
            [Record::new(actor, "representative.revoked")
                .subject(subject)
                .details(json!({"representative_id": representative_id}))],
        )
        .await?;
        Ok(())
    }

    /// The representative `id` of `subject`, if their authority is valid at `at`.
    pub(crate) async fn valid_representative(
        &self,
        subject: SubjectId,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<String, EngineError> {
        let t = at;
        let valid = self
            .store
            .representatives(subject)
            .await?
            .into_iter()
            .find(|r| r.representative_id == id)
            .filter(|r| {
                r.valid_from <= t
                    && r.valid_until.is_none_or(|u| t < u)
                    && r.revoked_at.is_none_or(|x| t < x)
            });
        match valid {
            Some(r) => Ok(r.representative_id),
            None => Err(EngineError::invalid(
                "representative_id",
                "no_valid_authority",
                "no representative of this subject with an authority valid when the request was received",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basis_names_are_the_json_names_and_nothing_else_reads() {
        for b in RepresentationBasis::ALL {
            assert_eq!(serde_json::to_value(b).unwrap(), b.as_str());
            assert_eq!(RepresentationBasis::stored(b.as_str()).unwrap(), b);
        }
        assert!(RepresentationBasis::stored("uncle").is_err());
    }
}
