//! Withdrawal, destruction and the jobs derbes runs itself: obligations are
//! checked, destruction is scheduled within the legal deadline and run once,
//! in the same transaction that marks its job done, and proven by a
//! certificate whose hash the audit log holds.

use chrono::{DateTime, Utc};
use derbes_core::{SubjectId, SubjectStatus};
use derbes_policy::{Capability, ConsentKind, Right};
use derbes_store::{DestroyOutcome, JobRow, ObligationRow, RecordProof, Write};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::audit::Record;
use crate::destruction::{Ground, Order, What};
use crate::requests::RequestState;
use crate::workflow::Steps;
use crate::{micros, Actor, Engine, EngineError};

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

/// A report that a subject is a minor (7.7).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MinorReport {
    /// The minor's own IIN (from their documents).
    pub iin: String,
    /// Their birth date, if given: it must agree with the IIN's.
    pub born_on: Option<chrono::NaiveDate>,
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
    /// The audit record holds this hash and is as it was written: its hash
    /// links to the signed checkpoint after it (or, while none signs it
    /// yet, to the chain's tail).
    pub confirmed_by_audit: bool,
    /// The signed checkpoint that proves the record, once one covers it.
    pub signed_checkpoint: Option<i64>,
}

/// A deadline: when it ends, and whether its year's calendar is provisional.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Due {
    pub at: DateTime<Utc>,
    pub provisional: bool,
}

/// What a scheduler pass did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct JobsReport {
    pub destroyed: u64,
    /// Destructions waiting while their subject is blocked (4.2).
    pub waiting_blocked: u64,
    /// Destructions waiting while a legal hold is open.
    pub waiting_held: u64,
}

/// An obligation's view, its reference from the opened notes.
pub(crate) fn obligation_view(o: ObligationRow, notes: &crate::notes::Opened) -> ObligationView {
    let owner = format!("obligation:{}", o.obligation_id);
    ObligationView {
        reference: notes
            .get(&(owner, "reference".into()))
            .cloned()
            .unwrap_or_default(),
        obligation_id: o.obligation_id,
        kind: o.kind,
        created_at: o.created_at,
        closed_at: o.closed_at,
    }
}

/// The note owners of these obligations.
pub(crate) fn obligation_owners(rows: &[ObligationRow]) -> Vec<String> {
    rows.iter()
        .map(|o| format!("obligation:{}", o.obligation_id))
        .collect()
}

impl Engine {
    /// Register an open obligation (contract, deal, debt) of a subject.
    pub async fn add_obligation(
        &self,
        actor: &Actor,
        subject: SubjectId,
        o: &NewObligation,
    ) -> Result<ObligationView, EngineError> {
        self.require(actor, Capability::RegisterSubjects)?;
        crate::one_of(
            "kind",
            "invalid_kind",
            &o.kind,
            &["contract", "deal", "debt"],
        )?;
        let reference = crate::reference(&o.reference)?;
        self.require_active(subject).await?;
        let row = ObligationRow {
            obligation_id: uuid::Uuid::now_v7().to_string(),
            kind: o.kind.clone(),
            reference: String::new(),
            created_at: self.now(),
            closed_at: None,
        };
        let owner = format!("obligation:{}", row.obligation_id);
        let notes = self
            .seal_notes(
                Some(subject),
                &[(owner.clone(), "reference", Some(&reference))],
            )
            .await?;
        let mut w = self.write().await?;
        w.add_obligation(subject, &row, &notes).await?;
        self.commit(
            w,
            [Record::new(actor, "obligation.open")
                .subject(subject)
                .details(json!({"obligation_id": row.obligation_id, "kind": row.kind}))],
        )
        .await?;
        let opened =
            std::collections::HashMap::from([((owner, "reference".to_string()), reference)]);
        Ok(obligation_view(row, &opened))
    }

    /// Close an obligation (fulfilled, settled).
    pub async fn close_obligation(
        &self,
        actor: &Actor,
        subject: SubjectId,
        obligation_id: &str,
    ) -> Result<bool, EngineError> {
        self.require(actor, Capability::RegisterSubjects)?;
        let mut w = self.write().await?;
        let done = w
            .close_obligation(subject, obligation_id, self.now())
            .await?;
        self.commit(
            w,
            [Record::new(actor, "obligation.close")
                .subject(subject)
                .details(json!({"obligation_id": obligation_id}))],
        )
        .await?;
        Ok(done)
    }

    /// A withdrawal of consent, once the requester is verified. The policy
    /// consent (7.11): refused with the list of open obligations; otherwise
    /// processing stops at once (status `withdrawn`, every active consent
    /// withdrawn) and destruction — of all but what a law keeps — is
    /// scheduled within the withdrawal deadline (1 working day). A consent
    /// some categories need (3.5 entrepreneur, 7.4 cookies): its consents
    /// are withdrawn and those categories' data is destroyed within the same
    /// deadline.
    pub(crate) async fn work_withdrawal(
        &self,
        request_id: &str,
        subject: SubjectId,
        consent: ConsentKind,
    ) -> Result<(), EngineError> {
        let system = Actor::system(crate::SystemJob::RightsDesk);
        let now = self.now();
        if consent == ConsentKind::Policy {
            let open: Vec<ObligationRow> = self
                .store
                .obligations(subject)
                .await?
                .into_iter()
                .filter(|o| o.closed_at.is_none())
                .collect();
            if !open.is_empty() {
                let notes = self
                    .open_notes(&system, Some(subject), &obligation_owners(&open))
                    .await?;
                let list: Vec<String> = open
                    .into_iter()
                    .map(|o| {
                        let v = obligation_view(o, &notes);
                        format!("{} {}", v.kind, v.reference)
                    })
                    .collect();
                let count = list.len();
                let said = crate::Said::OutstandingObligations { obligations: list };
                let steps = self
                    .system_steps(request_id, &[RequestState::Refused], Some(&said))
                    .await?;
                let mut w = self.write().await?;
                steps.write(&mut w, now).await?;
                self.commit(
                    w,
                    [Record::new(&system, "request.refused")
                        .subject(subject)
                        .details(json!({"request_id": request_id, "open_obligations": count}))],
                )
                .await?;
                return Ok(());
            }
        }
        let steps = self
            .system_steps(request_id, &[RequestState::InProgress], None)
            .await?;
        let withdrawn: Vec<String> = self
            .consent_records_of(subject)
            .await?
            .into_iter()
            .filter(|c| {
                (consent == ConsentKind::Policy || c.kind == consent)
                    && c.state(now) == derbes_core::ConsentState::Active
            })
            .map(|c| c.consent_id.to_string())
            .collect();
        // One unit of work: the destruction job (from here on retention
        // leaves the subject to it), the status, the consents withdrawn.
        let mut w = self.write().await?;
        self.schedule_destruction_in(&mut w, request_id, subject, Right::Withdrawal, steps)
            .await?;
        if consent == ConsentKind::Policy {
            w.set_subject_status(
                subject,
                SubjectStatus::Active,
                SubjectStatus::Withdrawn,
                now,
                true,
            )
            .await?;
        }
        for consent_id in &withdrawn {
            w.withdraw_consent(
                subject,
                consent_id,
                now,
                &json!({"withdrawal_request": request_id}).to_string(),
                &[],
            )
            .await?;
        }
        // The connected systems stop processing what the consent covered
        // now; its destruction, later, is what the request waits for.
        let categories: Vec<String> = if consent == ConsentKind::Policy {
            Vec::new()
        } else {
            self.policy
                .policy()
                .categories
                .iter()
                .filter(|c| c.requires_consent == Some(consent))
                .map(|c| c.id.clone())
                .collect()
        };
        let due = self.request_row(request_id).await?.due_at;
        self.follow_in(
            &mut w,
            &crate::outbox::About {
                subject: Some(subject),
                request_id: Some(request_id),
                gates: false,
                due_at: Some(due),
            },
            crate::outbox::Change::ConsentWithdrawn {
                consent,
                categories,
            },
        )
        .await?;
        let action = if consent == ConsentKind::Policy {
            "subject.withdrawn"
        } else {
            "consent.withdrawal"
        };
        self.commit(
            w,
            [Record::new(&system, action)
                .subject(subject)
                .details(json!({"request_id": request_id, "consent": consent}))],
        )
        .await?;
        Ok(())
    }

    /// Clause 7.7: report that a subject is a minor, with the minor's own IIN
    /// (registration refuses an IIN under 18, so whoever registered gave an
    /// adult's). The IIN's birth date — and `born_on`, when given, which must
    /// agree with it — must make them under 18 today. Processing stops at
    /// once (status `barred_minor`); the report is a destruction request that
    /// an approver who did not file it verifies (then the IIN they registered
    /// with is barred until their 18th birthday and they are destroyed within
    /// the destruction deadline) or refuses (then processing resumes).
    /// Nothing of the minor's IIN is stored.
    pub async fn report_minor(
        &self,
        actor: &Actor,
        subject: SubjectId,
        report: &MinorReport,
    ) -> Result<crate::RequestView, EngineError> {
        self.require(actor, Capability::WorkRequests)?;
        let iin = derbes_kz::Iin::parse(report.iin.trim())
            .map_err(|e| EngineError::invalid("iin", "invalid_iin", e.to_string()))?;
        let born = iin.birth_date();
        if report.born_on.is_some_and(|b| b != born) {
            return Err(EngineError::invalid(
                "born_on",
                "birth_date_mismatch",
                "the birth date does not agree with the IIN's",
            ));
        }
        let now = self.now();
        let today = derbes_core::almaty_date(now);
        let min_age = self.policy.policy().subjects.minimum_age;
        if born > today {
            return Err(EngineError::invalid(
                "iin",
                "born_in_future",
                "the IIN's birth date is after today",
            ));
        }
        if iin.age_on(today) >= min_age as i32 {
            return Err(EngineError::invalid(
                "iin",
                "not_a_minor",
                format!("the person is {min_age} or older today"),
            ));
        }
        let adult_on = born
            .checked_add_months(chrono::Months::new(12 * min_age))
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .and_then(|t| chrono::TimeZone::from_local_datetime(&derbes_kz::ALMATY, &t).earliest())
            .ok_or_else(|| EngineError::invalid("iin", "invalid_iin", "no 18th birthday"))?
            .with_timezone(&Utc);
        self.require_active(subject).await?;
        let receipt = self
            .minor_report_receipt(actor, subject, micros(adult_on))
            .await?;
        // The report and the bar on processing: one unit of work.
        let mut w = self.write().await?;
        let changed = w
            .set_subject_status(
                subject,
                SubjectStatus::Active,
                SubjectStatus::BarredMinor,
                now,
                false,
            )
            .await?;
        let row = receipt.write(&mut w).await?;
        if changed {
            self.follow_in(
                &mut w,
                &crate::outbox::About {
                    subject: Some(subject),
                    request_id: Some(&row.request_id),
                    gates: false,
                    due_at: Some(now),
                },
                crate::outbox::Change::Blocked { reason: "minor" },
            )
            .await?;
        }
        self.commit(w, [Record::new(actor, "subject.barred_minor").subject(subject).details(json!({"request_id": row.request_id, "changed": changed, "barred_until": micros(adult_on), "confirmed": false}))])
        .await?;
        self.request(actor, &row.request_id).await
    }

    /// A verified minor's report: the IIN they registered with is barred
    /// until their 18th birthday and their destruction scheduled.
    pub(crate) async fn work_minor(
        &self,
        request_id: &str,
        subject: SubjectId,
        barred_until: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        let steps = self
            .system_steps(request_id, &[RequestState::InProgress], None)
            .await?;
        let mut w = self.write().await?;
        w.bar_minor(
            subject,
            derbes_policy::FieldType::Iin.as_str(),
            barred_until,
            self.now(),
        )
        .await?;
        self.schedule_destruction_in(&mut w, request_id, subject, Right::Destruction, steps)
            .await?;
        w.commit().await?;
        Ok(())
    }

    /// A destruction request, once verified: scheduled within its deadline.
    pub(crate) async fn work_destruction(
        &self,
        request_id: &str,
        subject: SubjectId,
    ) -> Result<(), EngineError> {
        let steps = self
            .system_steps(request_id, &[RequestState::InProgress], None)
            .await?;
        let mut w = self.write().await?;
        self.schedule_destruction_in(&mut w, request_id, subject, Right::Destruction, steps)
            .await?;
        w.commit().await?;
        Ok(())
    }

    /// The destruction job a verified request orders, within its deadline,
    /// and the request's step to `in_progress` (`steps`), audited, in `w`.
    async fn schedule_destruction_in(
        &self,
        w: &mut Write,
        request_id: &str,
        subject: SubjectId,
        kind: Right,
        steps: Steps,
    ) -> Result<(), EngineError> {
        let system = Actor::system(crate::SystemJob::RightsDesk);
        let now = self.now();
        let due = self.deadline(now, kind)?.at;
        let job = JobRow {
            job_id: uuid::Uuid::now_v7().to_string(),
            kind: "destruction".into(),
            subject_id: subject,
            request_id: Some(request_id.to_string()),
            due_at: due,
        };
        w.schedule_job(&job, now).await?;
        steps.write(w, now).await?;
        w.audit(
            self.audit_record(
                Record::new(&system, "destruction.scheduled")
                    .subject(subject)
                    .details(
                        json!({"request_id": request_id, "job_id": job.job_id, "due_at": micros(job.due_at)}),
                    ),
            )?,
        );
        Ok(())
    }

    /// The end of the policy's deadline for the right `kind`, counted
    /// from `from` (see [`Engine::due`]).
    pub(crate) fn deadline(&self, from: DateTime<Utc>, kind: Right) -> Result<Due, EngineError> {
        let days = self
            .policy
            .policy()
            .right(kind)
            .map(|r| r.deadline_days)
            .ok_or_else(|| {
                EngineError::Internal(format!("the policy has no deadline for `{kind}`"))
            })?;
        self.due(from, days)
    }

    /// The one deadline computation: the end (23:59:59 Asia/Almaty) of the
    /// `days`-th Kazakh working day after the day of `from`, and whether
    /// the calendar of that year is still provisional.
    pub(crate) fn due(&self, from: DateTime<Utc>, days: u32) -> Result<Due, EngineError> {
        let d = derbes_kz::WorkCalendar::kazakhstan()
            .deadline(&from, days)
            .map_err(|e| EngineError::invalid("received_at", "outside_calendar", e.to_string()))?;
        Ok(Due {
            at: d.due.with_timezone(&Utc),
            provisional: d.coverage != derbes_kz::Coverage::Complete,
        })
    }

    /// One scheduler pass: every pending destruction is run now (the due date
    /// is a deadline, not a start); a blocked or held subject's waits. Safe to
    /// run from several places at once and after any crash: a job is done in
    /// the same transaction as its destruction, exactly once.
    pub async fn run_jobs(&self) -> Result<JobsReport, EngineError> {
        let mut report = JobsReport::default();
        let mut orders = Vec::new();
        for job in self.store.pending_jobs(100).await? {
            if !job.kind.starts_with("destruction") {
                continue;
            }
            let subject = job.subject_id;
            let request = match &job.request_id {
                Some(r) => self.store.request(r).await?,
                None => None,
            };
            let (ground, what) = match &request {
                Some(r) => self.destruction_of(r)?,
                None if job.kind == "destruction_minor" => (Ground::Minor, What::Everything),
                None => (Ground::Request, What::AllButStatutory),
            };
            let mut order = Order::new(subject, ground, what);
            order.job_id = Some(job.job_id);
            order.request_id = job.request_id;
            order.due_at = request.as_ref().map(|r| r.due_at);
            orders.push(order);
        }
        // One at a time: each destruction is its own transaction.
        for order in orders {
            match self.destroy(vec![order]).await?.pop().map(|o| o.outcome) {
                Some(DestroyOutcome::Destroyed) => report.destroyed += 1,
                Some(DestroyOutcome::Blocked) => report.waiting_blocked += 1,
                Some(DestroyOutcome::Held) => report.waiting_held += 1,
                _ => {}
            }
        }
        Ok(report)
    }

    /// What a request's destruction takes, on which ground.
    fn destruction_of(&self, r: &derbes_store::RequestRow) -> Result<(Ground, What), EngineError> {
        if self.is_minor_report(r) {
            return Ok((Ground::Minor, What::Everything));
        }
        let consent = self.request_consent(r)?;
        Ok(match (r.kind.as_str(), consent) {
            ("withdrawal", ConsentKind::Policy) => (Ground::Withdrawal, What::AllButStatutory),
            ("withdrawal", kind) => (
                Ground::Consent(kind),
                What::Categories(
                    self.policy
                        .policy()
                        .categories
                        .iter()
                        .filter(|c| c.requires_consent == Some(kind))
                        .map(|c| c.id.clone())
                        .collect(),
                ),
            ),
            _ => (Ground::Request, What::AllButStatutory),
        })
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
        let found = self.store.certificate_for_subject(subject).await?;
        self.confirm_certificate(found).await
    }

    async fn confirm_certificate(
        &self,
        found: Option<derbes_store::Certificate>,
    ) -> Result<CertificateView, EngineError> {
        let derbes_store::Certificate {
            content,
            sha256: sha,
        } = found.ok_or(EngineError::NotFound("certificate"))?;
        let certificate: Value = serde_json::from_str(&content)?;
        let subject = certificate
            .get("subject_id")
            .and_then(Value::as_str)
            .map(SubjectId::parse)
            .transpose()
            .map_err(|_| derbes_store::StoreError::Corrupt("a certificate's subject id".into()))?;
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
        // From the record to the nearest signed checkpoint only: the time
        // does not grow with the log.
        let proof = match record {
            Some(r) => Some(
                self.store
                    .prove_record(
                        r.seq,
                        Some(&self.keyring().audit_public_key()),
                        &derbes_vault::Keyring::verify_signature,
                    )
                    .await?,
            ),
            None => None,
        };
        let (intact, signed_checkpoint) = match proof {
            Some(RecordProof::Signed { checkpoint, .. }) => (true, Some(checkpoint)),
            Some(RecordProof::Unsigned { .. }) => (true, None),
            Some(RecordProof::Broken { .. }) | None => (false, None),
        };
        Ok(CertificateView {
            confirmed_by_audit: intact && derbes_policy::sha256_hex(content.as_bytes()) == sha,
            signed_checkpoint,
            audit_id: record.map(|r| r.seq),
            certificate,
            sha256: sha,
        })
    }
}
