//! Withdrawal, destruction and the jobs derbes runs itself: obligations are
//! checked, destruction is scheduled within the legal deadline and run once,
//! in the same transaction that marks its job done, and proven by a
//! certificate whose hash the audit log holds.

use chrono::Utc;
use derbes_core::SubjectId;
use derbes_policy::{Capability, Right};
use derbes_store::{JobOutcome, JobRow, ObligationRow};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::requests::RequestState;
use crate::{from_micros, micros, Actor, Engine, EngineError};

/// An obligation that keeps a withdrawal from being accepted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewObligation {
    /// `contract`, `deal` or `debt`.
    pub kind: String,
    /// The contract's or deal's reference (no personal data).
    pub reference: String,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ObligationView {
    pub obligation_id: String,
    pub kind: String,
    pub reference: String,
    pub created_at: chrono::DateTime<Utc>,
    pub closed_at: Option<chrono::DateTime<Utc>>,
}

/// A destruction certificate and its confirmation by the audit log.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CertificateView {
    /// The certificate as issued (no personal data).
    pub certificate: Value,
    /// SHA-256 of the certificate's JSON as issued.
    pub sha256: String,
    /// The audit record that holds this hash.
    pub audit_id: Option<i64>,
    /// The audit record holds this hash and the chain up to it is intact.
    pub confirmed_by_audit: bool,
}

/// What a scheduler pass did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct JobsReport {
    pub destroyed: u64,
    pub waiting_blocked: u64,
}

pub(crate) fn obligation_view(o: ObligationRow) -> ObligationView {
    ObligationView {
        obligation_id: o.obligation_id,
        kind: o.kind,
        reference: o.reference,
        created_at: from_micros(o.created_at),
        closed_at: o.closed_at.map(from_micros),
    }
}

/// A destruction certificate (акт об уничтожении): what went, when, on which
/// request and ground, how — and no personal data. Returns (content, SHA-256).
pub(crate) fn certificate_content(
    p: &derbes_policy::Policy,
    certificate_id: &str,
    subject: SubjectId,
    request_id: Option<&str>,
    ground: &str,
    at: chrono::DateTime<Utc>,
    categories: &[String],
) -> (String, String) {
    let content = json!({
        "title": {"ru": "Акт об уничтожении персональных данных", "en": "Certificate of destruction of personal data"},
        "certificate_id": certificate_id,
        "operator": {"name": p.operator.name.ru, "bin": p.operator.bin.to_string()},
        "subject_id": subject,
        "request_id": request_id,
        "legal_ground": ground,
        "destroyed_at": at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "categories": categories,
        "method": "crypto-shredding: the subject's data key, every sealed field and previous value, the blind-index entries and the opt-outs were deleted; any copy of the sealed data can no longer be opened",
        "kept": "consent ledger and audit records, which hold no personal data",
    })
    .to_string();
    let sha = derbes_policy::sha256_hex(content.as_bytes());
    (content, sha)
}

/// The legal ground a destruction certificate names when no request asked for it.
pub(crate) const RETENTION_GROUND: &str = "end of the purposes' retention (policy clause 7.1)";

impl Engine {
    /// Register an open obligation (contract, deal, debt) of a subject.
    pub async fn add_obligation(
        &self,
        actor: &Actor,
        subject: SubjectId,
        o: &NewObligation,
    ) -> Result<ObligationView, EngineError> {
        self.require(actor, Capability::RegisterSubjects)?;
        if !matches!(o.kind.as_str(), "contract" | "deal" | "debt") {
            return Err(EngineError::invalid(
                "kind",
                "invalid_kind",
                "`contract`, `deal` or `debt`",
            ));
        }
        let reference = o.reference.trim();
        if reference.is_empty() || reference.chars().count() > 200 {
            return Err(EngineError::invalid(
                "reference",
                "invalid_reference",
                "1 to 200 characters",
            ));
        }
        if self.store.subject(&subject.to_string()).await?.is_none() {
            return Err(EngineError::NotFound("subject"));
        }
        let row = ObligationRow {
            obligation_id: uuid::Uuid::now_v7().to_string(),
            kind: o.kind.clone(),
            reference: reference.to_string(),
            created_at: micros(self.now()),
            closed_at: None,
        };
        self.store
            .add_obligation(&subject.to_string(), &row)
            .await?;
        self.audit(
            actor,
            "obligation.open",
            Some(subject),
            None,
            &[],
            None,
            json!({"obligation_id": row.obligation_id, "kind": row.kind}),
        )
        .await?;
        Ok(obligation_view(row))
    }

    /// Close an obligation (fulfilled, settled).
    pub async fn close_obligation(
        &self,
        actor: &Actor,
        subject: SubjectId,
        obligation_id: &str,
    ) -> Result<bool, EngineError> {
        self.require(actor, Capability::RegisterSubjects)?;
        let done = self
            .store
            .close_obligation(&subject.to_string(), obligation_id, micros(self.now()))
            .await?;
        self.audit(
            actor,
            "obligation.close",
            Some(subject),
            None,
            &[],
            None,
            json!({"obligation_id": obligation_id}),
        )
        .await?;
        Ok(done)
    }

    /// A withdrawal of consent (7.11), once the requester is verified: refused
    /// with the list of open obligations; otherwise processing stops at once
    /// (status `withdrawn`, every active consent withdrawn) and destruction is
    /// scheduled within the withdrawal deadline (1 working day).
    pub(crate) async fn work_withdrawal(
        &self,
        request_id: &str,
        subject: SubjectId,
    ) -> Result<(), EngineError> {
        let system = Actor::system("rights-desk");
        let sid = subject.to_string();
        let now = self.now();
        let open: Vec<ObligationRow> = self
            .store
            .obligations(&sid)
            .await?
            .into_iter()
            .filter(|o| o.closed_at.is_none())
            .collect();
        if !open.is_empty() {
            let list: Vec<String> = open
                .iter()
                .map(|o| format!("{} {}", o.kind, o.reference))
                .collect();
            let reason = format!("outstanding obligations: {}", list.join("; "));
            self.system_steps(request_id, &[RequestState::Refused], Some(&reason))
                .await?;
            self.audit(
                &system,
                "request.refused",
                Some(subject),
                None,
                &[],
                None,
                json!({"request_id": request_id, "open_obligations": open.len()}),
            )
            .await?;
            return Ok(());
        }
        self.store
            .set_subject_status(&sid, "active", "withdrawn", micros(now), true)
            .await?;
        for c in self.consent_records_of(subject).await? {
            if c.state(now) == derbes_core::ConsentState::Active {
                self.store
                    .withdraw_consent(
                        &sid,
                        &c.consent_id.to_string(),
                        micros(now),
                        &json!({"withdrawal_request": request_id}).to_string(),
                    )
                    .await?;
            }
        }
        self.facts.forget(&subject);
        self.audit(
            &system,
            "subject.withdrawn",
            Some(subject),
            None,
            &[],
            None,
            json!({"request_id": request_id}),
        )
        .await?;
        self.schedule_destruction(request_id, subject, Right::Withdrawal)
            .await
    }

    /// Clause 7.7: a subject found to be under 18 (born on `born_on`) is
    /// barred — processing stops at once, their IIN's keyed digest refuses
    /// re-registration until their 18th birthday (Asia/Almaty) — and
    /// destroyed within the destruction deadline. Nothing is decrypted: the
    /// bar keeps the blind-index digest the subject already had.
    pub async fn report_minor(
        &self,
        actor: &Actor,
        subject: SubjectId,
        born_on: chrono::NaiveDate,
    ) -> Result<chrono::DateTime<Utc>, EngineError> {
        self.require(actor, Capability::WorkRequests)?;
        let min_age = self.policy.policy.subjects.minimum_age;
        let adult_on = born_on
            .checked_add_months(chrono::Months::new(12 * min_age))
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .and_then(|t| chrono::TimeZone::from_local_datetime(&derbes_kz::ALMATY, &t).earliest())
            .ok_or_else(|| EngineError::invalid("born_on", "invalid_date", "a birth date"))?
            .with_timezone(&Utc);
        let now = self.now();
        if adult_on <= now {
            return Err(EngineError::invalid(
                "born_on",
                "not_a_minor",
                format!("someone born then is {min_age} or older today"),
            ));
        }
        if self.store.subject(&subject.to_string()).await?.is_none() {
            return Err(EngineError::NotFound("subject"));
        }
        if !self
            .store
            .bar_minor(&subject.to_string(), micros(adult_on), micros(now))
            .await?
        {
            return Err(EngineError::Destroyed);
        }
        self.facts.forget(&subject);
        self.audit(
            actor,
            "subject.barred_minor",
            Some(subject),
            None,
            &[],
            None,
            json!({"barred_until": micros(adult_on)}),
        )
        .await?;
        let days = self.policy.policy.deadlines.destruction;
        let due = derbes_kz::WorkCalendar::kazakhstan()
            .deadline(&now, days)
            .map_err(|e| EngineError::Internal(e.to_string()))?
            .due
            .with_timezone(&Utc);
        let job = JobRow {
            job_id: uuid::Uuid::now_v7().to_string(),
            kind: "destruction_minor".into(),
            subject_id: subject.to_string(),
            request_id: None,
            due_at: micros(due),
        };
        self.store.schedule_job(&job, micros(now)).await?;
        Ok(adult_on)
    }

    /// A destruction request, once verified: scheduled within its deadline.
    pub(crate) async fn work_destruction(
        &self,
        request_id: &str,
        subject: SubjectId,
    ) -> Result<(), EngineError> {
        self.schedule_destruction(request_id, subject, Right::Destruction)
            .await
    }

    async fn schedule_destruction(
        &self,
        request_id: &str,
        subject: SubjectId,
        kind: Right,
    ) -> Result<(), EngineError> {
        let system = Actor::system("rights-desk");
        let now = self.now();
        let days = self
            .policy
            .policy
            .right(kind)
            .map(|r| r.deadline_days)
            .unwrap_or(1);
        let due = derbes_kz::WorkCalendar::kazakhstan()
            .deadline(&now, days)
            .map_err(|e| EngineError::Internal(e.to_string()))?
            .due
            .with_timezone(&Utc);
        let job = JobRow {
            job_id: uuid::Uuid::now_v7().to_string(),
            kind: "destruction".into(),
            subject_id: subject.to_string(),
            request_id: Some(request_id.to_string()),
            due_at: micros(due),
        };
        self.store.schedule_job(&job, micros(now)).await?;
        self.system_steps(request_id, &[RequestState::InProgress], None)
            .await?;
        self.audit(
            &system,
            "destruction.scheduled",
            Some(subject),
            None,
            &[],
            None,
            json!({"request_id": request_id, "job_id": job.job_id, "due_at": job.due_at}),
        )
        .await?;
        Ok(())
    }

    /// One scheduler pass: every pending destruction is run now (the due date
    /// is a deadline, not a start); a blocked subject's waits. Safe to run
    /// from several places at once and after any crash: a job is done in the
    /// same transaction as the destruction, exactly once.
    pub async fn run_jobs(&self) -> Result<JobsReport, EngineError> {
        let mut report = JobsReport::default();
        for job in self.store.pending_jobs(100).await? {
            if !job.kind.starts_with("destruction") {
                continue;
            }
            let Ok(subject) = SubjectId::parse(&job.subject_id) else {
                continue;
            };
            // What is destroyed, for the certificate (names only, before they go).
            let categories = crate::field_categories(
                self.store
                    .subject_fields(&job.subject_id)
                    .await?
                    .iter()
                    .map(|f| f.field.as_str()),
            );
            let at = self.now();
            match self
                .store
                .run_destruction_job(&job.job_id, &job.subject_id, micros(at))
                .await?
            {
                JobOutcome::Blocked => report.waiting_blocked += 1,
                JobOutcome::AlreadyDone => {}
                JobOutcome::Destroyed => {
                    self.facts.forget(&subject);
                    self.certify(&job, subject, categories, at).await?;
                    report.destroyed += 1;
                }
            }
        }
        Ok(report)
    }

    async fn certify(
        &self,
        job: &JobRow,
        subject: SubjectId,
        categories: Vec<String>,
        at: chrono::DateTime<Utc>,
    ) -> Result<(), EngineError> {
        let system = Actor::system("scheduler");
        let p = &self.policy.policy;
        let request = match &job.request_id {
            Some(r) => self.store.request(r).await?,
            None => None,
        };
        let ground = match request.as_ref().map(|r| r.kind.as_str()) {
            Some("withdrawal") => "withdrawal of consent (policy clause 7.11)",
            Some("destruction") => {
                "request for destruction (Law «О персональных данных и их защите»)"
            }
            _ => RETENTION_GROUND,
        };
        let certificate_id = uuid::Uuid::now_v7().to_string();
        let (content, sha) = certificate_content(
            p,
            &certificate_id,
            subject,
            job.request_id.as_deref(),
            ground,
            at,
            &categories,
        );
        self.store
            .insert_certificate(
                &certificate_id,
                &subject.to_string(),
                job.request_id.as_deref(),
                micros(at),
                &content,
                &sha,
            )
            .await?;
        self.audit(&system, "destruction", Some(subject), None, &categories, None, json!({"request_id": job.request_id, "job_id": job.job_id, "certificate_id": certificate_id, "certificate_sha256": sha}))
            .await?;
        if let Some(r) = &job.request_id {
            match self
                .store
                .transition_request(
                    r,
                    RequestState::InProgress.as_str(),
                    RequestState::Completed.as_str(),
                    None,
                    &system.id,
                    micros(at),
                )
                .await
            {
                Ok(()) | Err(derbes_store::StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The certificate of a destruction request, checked against the audit log.
    pub async fn certificate(
        &self,
        actor: &Actor,
        request_id: &str,
    ) -> Result<CertificateView, EngineError> {
        self.require(actor, Capability::WorkRequests)?;
        let found = self.store.certificate_for_request(request_id).await?;
        self.confirm_certificate(found).await
    }

    /// The certificate of a destroyed subject (by request, minor bar or
    /// retention), checked against the audit log.
    pub async fn subject_certificate(
        &self,
        actor: &Actor,
        subject: SubjectId,
    ) -> Result<CertificateView, EngineError> {
        self.require(actor, Capability::WorkRequests)?;
        let found = self
            .store
            .certificate_for_subject(&subject.to_string())
            .await?;
        self.confirm_certificate(found).await
    }

    async fn confirm_certificate(
        &self,
        found: Option<(String, String)>,
    ) -> Result<CertificateView, EngineError> {
        let (content, sha) = found.ok_or(EngineError::NotFound("certificate"))?;
        let certificate: Value = serde_json::from_str(&content)?;
        let subject = certificate
            .get("subject_id")
            .and_then(Value::as_str)
            .map(String::from);
        let records = self
            .store
            .audit_records(&derbes_store::AuditQuery {
                subject_id: subject,
                limit: 10_000,
                ..Default::default()
            })
            .await?;
        let record = records.iter().find(|r| {
            r.record.action == "destruction"
                && serde_json::from_str::<Value>(&r.record.details)
                    .ok()
                    .and_then(|d| d.get("certificate_sha256").cloned())
                    == Some(Value::String(sha.clone()))
        });
        let intact = self
            .verify_audit()
            .await?
            .first_bad
            .is_none_or(|(bad, _)| record.is_some_and(|r| r.seq < bad));
        Ok(CertificateView {
            confirmed_by_audit: record.is_some()
                && intact
                && derbes_policy::sha256_hex(content.as_bytes()) == sha,
            audit_id: record.map(|r| r.seq),
            certificate,
            sha256: sha,
        })
    }
}
