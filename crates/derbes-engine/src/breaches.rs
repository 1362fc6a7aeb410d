//! The breach register (the Law 94-V, art. 25(2)(8)): a breach is
//! recorded when detected, assessed, notified to the authorised body by
//! the end of the first working day after detection (Asia/Almaty), and
//! closed; every step audited. Its free text — description, cause,
//! measures, the authority's reference — may name people: sealed (notes of
//! owner `breach:<id>`), never in the audit log. The notice to the
//! authorised body names the operator and the responsible person from the
//! policy file; the subjects it lists can be told through the app's sender.

use chrono::{DateTime, FixedOffset, Utc};
use derbes_core::SubjectId;
use derbes_policy::{Capability, Lang};
use derbes_store::{BreachFilter, BreachRow, BreachState};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::audit::Record;
use crate::{Actor, Engine, EngineError};

/// A breach as reported.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewBreach {
    /// When it was detected (RFC 3339); now when absent. The notice's
    /// deadline runs from it.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub detected_at: Option<DateTime<FixedOffset>>,
    /// What happened (sealed: it may name people), 1 to 4000 characters.
    pub description: String,
    /// The policy's categories of personal data affected.
    pub categories: Vec<String>,
    /// The subjects affected, when known.
    #[serde(default)]
    pub subjects: Vec<SubjectId>,
    /// How many subjects are affected, when they are not listed (an estimate).
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1_000_000_000))]
    pub affected_count: Option<i64>,
    /// Its cause, as far as known (sealed).
    pub cause: Option<String>,
    /// Measures taken (sealed).
    pub measures: Option<String>,
}

/// A step of a breach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BreachAction {
    /// Assessed: its scope and cause are known (from `detected`).
    Assess,
    /// The authorised body was notified (from `detected` or `assessed`).
    Notify,
    /// Closed (from `assessed` — not a breach of personal data after all —
    /// or `notified`).
    Close,
}

/// A step with what it adds.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BreachStep {
    pub action: BreachAction,
    /// The cause, now known (sealed; replaces the earlier).
    pub cause: Option<String>,
    /// Measures taken (sealed; replaces the earlier).
    pub measures: Option<String>,
    /// `notify`: the authorised body's registration number or letter (sealed).
    pub reference: Option<String>,
}

/// A breach as the officer sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BreachView {
    pub breach_id: String,
    /// `detected`, `assessed`, `notified` or `closed`.
    pub state: String,
    pub detected_at: DateTime<Utc>,
    /// The end of the notice's deadline, Asia/Almaty (RFC 3339 with offset).
    pub notice_due: String,
    /// Not notified and past `notice_due`.
    pub overdue: bool,
    pub categories: Vec<String>,
    pub affected_count: i64,
    /// `affected_count` counts the subjects listed (not an estimate).
    pub count_known: bool,
    pub reported_by: String,
    pub assessed_at: Option<DateTime<Utc>>,
    pub notified_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    /// The free text (only where a single breach is shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measures: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The subjects listed (only where a single breach is shown).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
}

fn owner(id: &str) -> String {
    format!("breach:{id}")
}

/// A free text of at most `max` characters, trimmed; `None` when empty.
fn text(field: &str, t: Option<&str>, max: usize) -> Result<Option<String>, EngineError> {
    match t {
        None => Ok(None),
        Some(t) => Ok(Some(
            derbes_core::free_text(field, t, max).map_err(|p| EngineError::Invalid(vec![p]))?,
        )
        .filter(|t| !t.is_empty())),
    }
}

impl Engine {
    fn breach_view(&self, b: BreachRow) -> BreachView {
        BreachView {
            overdue: b.notified_at.is_none() && b.closed_at.is_none() && self.now() > b.notice_due,
            notice_due: b
                .notice_due
                .with_timezone(&derbes_kz::ALMATY)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            categories: serde_json::from_str(&b.categories).unwrap_or_default(),
            breach_id: b.breach_id,
            state: b.state.as_str().to_string(),
            detected_at: b.detected_at,
            affected_count: b.affected_count,
            count_known: b.count_known,
            reported_by: b.reported_by,
            assessed_at: b.assessed_at,
            notified_at: b.notified_at,
            closed_at: b.closed_at,
            description: None,
            cause: None,
            measures: None,
            reference: None,
            subjects: Vec::new(),
        }
    }

    /// Record a breach as detected; the notice to the authorised body
    /// falls due at the end of the policy's `breach_notice` working days.
    pub async fn report_breach(
        &self,
        actor: &Actor,
        b: &NewBreach,
    ) -> Result<BreachView, EngineError> {
        self.require(actor, Capability::ManageBreaches)?;
        let now = self.now();
        let detected = b.detected_at.map(|t| t.with_timezone(&Utc)).unwrap_or(now);
        if detected > now + chrono::Duration::minutes(5) {
            return Err(EngineError::invalid(
                "detected_at",
                "in_future",
                "a breach is reported once detected",
            ));
        }
        let description = text("description", Some(&b.description), 4000)?.ok_or_else(|| {
            EngineError::invalid(
                "description",
                "description_required",
                "what happened, 1 to 4000 characters",
            )
        })?;
        let cause = text("cause", b.cause.as_deref(), 4000)?;
        let measures = text("measures", b.measures.as_deref(), 4000)?;
        let p = self.policy.policy();
        let categories = crate::known_categories(p, &b.categories)?;
        if categories.is_empty() {
            return Err(EngineError::invalid(
                "categories",
                "categories_required",
                "the categories of personal data affected",
            ));
        }
        let mut subjects = b.subjects.clone();
        subjects.sort();
        subjects.dedup();
        if subjects.len() > 100_000 {
            return Err(EngineError::invalid(
                "subjects",
                "too_many",
                "at most 100,000 listed subjects; give affected_count for more",
            ));
        }
        for s in &subjects {
            if self.store.subject(*s).await?.is_none() {
                return Err(EngineError::invalid(
                    "subjects",
                    "unknown_subject",
                    "a listed subject is not registered",
                ));
            }
        }
        let (affected_count, count_known) = match (subjects.len(), b.affected_count) {
            (0, Some(n)) if (0..=1_000_000_000).contains(&n) => (n, false),
            (0, Some(_)) => {
                return Err(EngineError::invalid(
                    "affected_count",
                    "out_of_range",
                    "0 to 1,000,000,000",
                ))
            }
            (0, None) => {
                return Err(EngineError::invalid(
                    "subjects",
                    "affected_required",
                    "the affected subjects, or affected_count when they are not known",
                ))
            }
            (n, _) => (i64::try_from(n).unwrap_or(i64::MAX), true),
        };
        let due = self.due(detected, p.deadlines.breach_notice)?.at;
        let row = BreachRow {
            breach_id: uuid::Uuid::now_v7().to_string(),
            state: BreachState::Detected,
            detected_at: detected,
            notice_due: due,
            categories: serde_json::to_string(&categories)?,
            affected_count,
            count_known,
            reported_by: actor.id().to_string(),
            created_at: now,
            assessed_at: None,
            notified_at: None,
            closed_at: None,
        };
        let o = owner(&row.breach_id);
        let notes = self
            .seal_notes(
                None,
                &[
                    (o.clone(), "description", Some(&description)),
                    (o.clone(), "cause", cause.as_deref()),
                    (o, "measures", measures.as_deref()),
                ],
            )
            .await?;
        let mut w = self.write().await?;
        w.add_breach(&row, &subjects, &notes).await?;
        self.commit(
            w,
            [Record::new(actor, "breach.detected")
                .categories(&categories)
                .details(
                    json!({"breach_id": row.breach_id, "affected_count": affected_count,
                                "count_known": count_known, "notice_due": crate::micros(due)}),
                )],
        )
        .await?;
        self.breach(actor, &row.breach_id).await
    }

    /// One breach with its free text (opening it is audited) and subjects.
    pub async fn breach(&self, actor: &Actor, breach_id: &str) -> Result<BreachView, EngineError> {
        self.require(actor, Capability::ManageBreaches)?;
        let row = self
            .store
            .breach(breach_id)
            .await?
            .ok_or(EngineError::NotFound("breach"))?;
        let o = owner(breach_id);
        let notes = self
            .open_notes(actor, None, std::slice::from_ref(&o))
            .await?;
        let subjects = self.store.breach_subjects(breach_id).await?;
        let mut v = self.breach_view(row);
        let get = |name: &str| notes.get(&(o.clone(), name.to_string())).cloned();
        v.description = get("description");
        v.cause = get("cause");
        v.measures = get("measures");
        v.reference = get("reference");
        v.subjects = subjects.iter().map(ToString::to_string).collect();
        Ok(v)
    }

    /// The register, the earliest notice due first (no free text).
    pub async fn breaches(
        &self,
        actor: &Actor,
        state: Option<&str>,
        overdue: bool,
        limit: i64,
    ) -> Result<Vec<BreachView>, EngineError> {
        self.require(actor, Capability::ManageBreaches)?;
        let state = match state {
            None => None,
            Some(s) => Some(BreachState::parse(s).ok_or_else(|| {
                EngineError::invalid(
                    "state",
                    "invalid_state",
                    "`detected`, `assessed`, `notified` or `closed`",
                )
            })?),
        };
        let rows = self
            .store
            .breaches(&BreachFilter {
                state,
                overdue_at: overdue.then(|| self.now()),
                limit,
            })
            .await?;
        Ok(rows.into_iter().map(|b| self.breach_view(b)).collect())
    }

    /// Move a breach on (audited), with what the step adds.
    pub async fn act_on_breach(
        &self,
        actor: &Actor,
        breach_id: &str,
        step: &BreachStep,
    ) -> Result<BreachView, EngineError> {
        self.require(actor, Capability::ManageBreaches)?;
        let row = self
            .store
            .breach(breach_id)
            .await?
            .ok_or(EngineError::NotFound("breach"))?;
        use BreachAction as A;
        use BreachState as S;
        let to = match (step.action, row.state) {
            (A::Assess, S::Detected) => S::Assessed,
            (A::Notify, S::Detected | S::Assessed) => S::Notified,
            (A::Close, S::Assessed | S::Notified) => S::Closed,
            (action, from) => {
                return Err(EngineError::invalid(
                    "action",
                    "invalid_transition",
                    format!(
                        "a breach that is `{}` cannot be {}",
                        from.as_str(),
                        match action {
                            A::Assess => "assessed",
                            A::Notify => "notified",
                            A::Close => "closed (notify the authorised body first, or assess it)",
                        }
                    ),
                ))
            }
        };
        let cause = text("cause", step.cause.as_deref(), 4000)?;
        let measures = text("measures", step.measures.as_deref(), 4000)?;
        let reference = text("reference", step.reference.as_deref(), 200)?;
        let o = owner(breach_id);
        let notes = self
            .seal_notes(
                None,
                &[
                    (o.clone(), "cause", cause.as_deref()),
                    (o.clone(), "measures", measures.as_deref()),
                    (o, "reference", reference.as_deref()),
                ],
            )
            .await?;
        let mut w = self.write().await?;
        w.breach_step(breach_id, row.state, to, self.now(), &notes)
            .await?;
        let late = to == S::Notified && self.now() > row.notice_due;
        self.commit(
            w,
            [
                Record::new(actor, &format!("breach.{}", to.as_str())).details(json!({
                    "breach_id": breach_id, "from": row.state.as_str(), "late": late,
                    "texts": notes.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(),
                })),
            ],
        )
        .await?;
        self.breach(actor, breach_id).await
    }

    /// The notice to the authorised body, in Russian, Kazakh or English:
    /// the operator and its responsible person, when the breach was
    /// detected, what it affects and how many, what happened and what was
    /// done. No personal data but what the officer wrote.
    pub async fn breach_notice(
        &self,
        actor: &Actor,
        breach_id: &str,
        lang: Lang,
    ) -> Result<crate::Document, EngineError> {
        let b = self.breach(actor, breach_id).await?;
        let p = self.policy.policy();
        let o = &p.operator;
        let r = &o.responsible_person;
        let w = |ru: &'static str, kk: &'static str, en: &'static str| lang.pick(ru, kk, en);
        let none = w("не установлено", "әлі анықталмаған", "not yet established");
        let count = if b.count_known {
            b.affected_count.to_string()
        } else {
            format!(
                "{} {} {}",
                w("около", "шамамен", "about"),
                b.affected_count,
                w("(оценка)", "(бағалау)", "(estimate)")
            )
        };
        let title = w(
            "Уведомление уполномоченного органа о нарушении защиты персональных данных",
            "Дербес деректерді қорғаудың бұзылғаны туралы уәкілетті органға хабарлама",
            "Notice to the authorised body of a breach of personal-data protection",
        );
        let mut d = crate::Document::new(lang, title).lead(format!(
            "{}, {}",
            p.law.get(lang),
            w("ст. 25", "25-бап", "art. 25")
        ));
        d.item(
            w("Оператор", "Оператор", "Operator"),
            format!(
                "{}, {} {}, {}",
                o.name.get(lang),
                w("БИН", "БСН", "BIN"),
                o.bin,
                o.address.get(lang)
            ),
        );
        d.item(
            w("Ответственное лицо", "Жауапты тұлға", "Responsible person"),
            format!(
                "{}, {}; {}, {}",
                r.name.get(lang),
                r.position.get(lang),
                r.email,
                r.phone
            ),
        );
        d.item(
            w("Номер в реестре", "Тізілімдегі нөмірі", "Register number"),
            b.breach_id.clone(),
        );
        d.item(
            w("Выявлено", "Анықталды", "Detected"),
            crate::export_html::date(&b.detected_at),
        );
        d.item(
            w("Срок уведомления", "Хабарлау мерзімі", "Notice due"),
            crate::export_html::due_text(&b.notice_due),
        );
        d.item(
            w(
                "Категории персональных данных",
                "Дербес деректер санаттары",
                "Categories of personal data",
            ),
            crate::category_names(p, b.categories.iter().map(String::as_str), lang),
        );
        d.item(
            w("Число субъектов", "Субъектілер саны", "Subjects affected"),
            count,
        );
        d.item(
            w("Описание", "Сипаттамасы", "Description"),
            b.description.clone().unwrap_or_default(),
        );
        d.item(
            w("Причина", "Себебі", "Cause"),
            b.cause.clone().unwrap_or_else(|| none.into()),
        );
        d.item(
            w("Принятые меры", "Қабылданған шаралар", "Measures taken"),
            b.measures.clone().unwrap_or_else(|| none.into()),
        );
        Ok(d)
    }

    /// Tell the subjects a breach lists, through the app's sender (notices
    /// of kind `breach`, each an outbox event); how many notices were new.
    pub async fn notify_breach_subjects(
        &self,
        actor: &Actor,
        breach_id: &str,
    ) -> Result<usize, EngineError> {
        let b = self.breach(actor, breach_id).await?;
        let subjects = self.store.breach_subjects(breach_id).await?;
        if subjects.is_empty() {
            return Err(EngineError::invalid(
                "subjects",
                "no_subjects_listed",
                "the breach lists no subjects to tell",
            ));
        }
        let p = self.policy.policy();
        let date = derbes_core::almaty_date(b.detected_at)
            .format("%d.%m.%Y")
            .to_string();
        let text = crate::in_every_language(|lang| {
            let categories =
                crate::category_names(p, b.categories.iter().map(String::as_str), lang);
            derbes_policy::NoticeTemplates::render(
                p.notices.breach.get(lang),
                &[
                    ("app", p.operator.app.as_str()),
                    ("operator", p.operator.name.get(lang)),
                    ("categories", &categories),
                    ("date", &date),
                    ("measures", b.measures.as_deref().unwrap_or("-")),
                ],
            )
        });
        let mut w = self.write().await?;
        // A subject already told of this breach is not told again.
        let told = self
            .notices_in(&mut w, "breach", breach_id, None, &subjects, &text)
            .await?;
        self.commit(
            w,
            [Record::new(actor, "breach.subjects_notified")
                .details(json!({"breach_id": breach_id, "notices": told}))],
        )
        .await?;
        Ok(told)
    }
}
