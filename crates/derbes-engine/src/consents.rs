//! The consent ledger through the engine: recording, reading, withdrawing
//! (the policy consent's withdrawal is the 7.11 withdrawal, worked as a
//! request), and confirming a receipt.

use derbes_core::{
    build_consent, ConsentId, ConsentRecord, ConsentRequest, ConsentState, Problem, Receipt,
    SignedReceipt, SubjectId,
};
use derbes_policy::Capability;
use derbes_store::NewConsent;
use serde::Serialize;
use serde_json::Value;

use crate::audit::Record;
use crate::{
    Actor, Engine, EngineError, NewRequest, RequestChannel, RequestDetails, RequestState, Requester,
};

/// A consent with its state now.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsentView {
    pub state: ConsentState,
    #[serde(flatten)]
    pub record: ConsentRecord,
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

/// Consent records from stored rows, with their withdrawals.
pub(crate) fn records_of(
    rows: &[derbes_store::ConsentRow],
) -> Result<Vec<ConsentRecord>, EngineError> {
    rows.iter()
        .map(|r| {
            let mut rec: ConsentRecord = serde_json::from_str(&r.record_json)?;
            rec.withdrawn_at = r.withdrawn_at;
            Ok(rec)
        })
        .collect()
}

impl Engine {
    pub(crate) fn pseudonym(&self, req: &ConsentRequest) -> Option<String> {
        req.evidence
            .client_address
            .as_ref()
            .map(|ip| self.keyring().pseudonym("client_address", ip.trim()))
    }

    pub(crate) fn new_consent(
        &self,
        subject: SubjectId,
        req: &ConsentRequest,
        prefix: &str,
    ) -> Result<(NewConsent, SignedReceipt), Vec<Problem>> {
        self.new_consent_to(&self.policy, subject, req, prefix, self.now())
    }

    /// A consent to `policy` (the version in force, or for an import the
    /// published version the person accepted) given at `at`.
    pub(crate) fn new_consent_to(
        &self,
        policy: &derbes_policy::LoadedPolicy,
        subject: SubjectId,
        req: &ConsentRequest,
        prefix: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(NewConsent, SignedReceipt), Vec<Problem>> {
        let (record, signed) =
            build_consent(policy, subject, req, self.pseudonym(req), at, prefix)?;
        let row = NewConsent {
            consent_id: record.consent_id.to_string(),
            kind: record.kind.as_str().to_string(),
            given_at: record.given_at,
            expires_at: record.expires_at,
            record_json: serde_json::to_string(&record)
                .map_err(|_| vec![Problem::new("consent", "invalid", "cannot be recorded")])?,
            receipt_sha256: record.receipt_sha256.clone(),
            policy_sha256: record.policy_sha256.clone(),
            terms: record.terms().line(),
        };
        Ok((row, signed))
    }

    pub(crate) async fn consent_records(
        &self,
        subject: SubjectId,
    ) -> Result<Vec<ConsentRecord>, EngineError> {
        records_of(&self.store.consents(subject).await?)
    }

    pub(crate) async fn consent_records_of(
        &self,
        subject: SubjectId,
    ) -> Result<Vec<ConsentRecord>, EngineError> {
        self.consent_records(subject).await
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
        let mut w = self.write().await?;
        w.insert_consent(subject, &row).await?;
        self.commit(
            w,
            [Record::new(actor, "consent")
                .subject(subject)
                .categories(&signed.receipt.categories)
                .details(serde_json::json!({"consent_id": row.consent_id, "kind": row.kind}))],
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

    pub(crate) async fn consent_views(
        &self,
        subject: SubjectId,
    ) -> Result<Vec<ConsentView>, EngineError> {
        if self.store.subject(subject).await?.is_none() {
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
            let mut w = self.write().await?;
            w.withdraw_consent(subject, &consent.to_string(), now, "{}", &notes)
                .await?;
            self.follow_in(
                &mut w,
                &crate::outbox::About {
                    subject: Some(subject),
                    request_id: None,
                    gates: false,
                    due_at: Some(now),
                },
                crate::outbox::Change::ConsentWithdrawn {
                    consent: derbes_policy::ConsentKind::Marketing,
                    categories: Vec::new(),
                },
            )
            .await?;
            self.commit(
                w,
                [Record::new(actor, "consent.withdrawal")
                    .subject(subject)
                    .details(serde_json::json!({"consent_id": consent}))],
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
                        values: None,
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
            let mut w = self.write().await?;
            w.insert_notes(&notes).await?;
            self.commit(w, []).await?;
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
        rec.withdrawn_at = row.withdrawn_at;
        // The hash covers every word of the receipt; finding it is the proof.
        Ok(ReceiptCheck {
            valid: rec.receipt_sha256 == sha,
            consent_id: Some(rec.consent_id),
            state: Some(rec.state(self.now())),
        })
    }
}
