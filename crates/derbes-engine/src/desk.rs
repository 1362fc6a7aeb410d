//! What the rights desk shows besides one request: a subject's standing
//! (status, categories held — names, never values —, consents and
//! channels, requests, disclosures, holds, obligations), the queue's
//! figures for the dashboard, and who is signed in.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use derbes_core::{SubjectId, SubjectStatus};
use derbes_policy::Capability;
use serde::Serialize;

use crate::audit::Record;
use crate::me::ChannelView;
use crate::{
    Actor, ConsentView, DisclosureView, Engine, EngineError, HoldView, ObligationView,
    RequestState, RequestView,
};

/// What the subject's page and the desk's subject page share.
pub(crate) struct Standing {
    pub(crate) row: derbes_store::SubjectRow,
    pub(crate) categories: Vec<String>,
    pub(crate) consents: Vec<ConsentView>,
    pub(crate) channels: Vec<ChannelView>,
    pub(crate) requests: Vec<RequestView>,
    pub(crate) disclosures: Vec<DisclosureView>,
}

/// A subject as the desk sees them: no value of their data.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubjectOverview {
    pub subject_id: SubjectId,
    pub status: SubjectStatus,
    pub registered_at: DateTime<Utc>,
    /// The policy version they registered under.
    pub policy_version: String,
    pub relationship_ended_at: Option<DateTime<Utc>>,
    /// The categories of personal data held (ids of the policy).
    pub categories: Vec<String>,
    pub consents: Vec<ConsentView>,
    pub channels: Vec<ChannelView>,
    pub requests: Vec<RequestView>,
    pub disclosures: Vec<DisclosureView>,
    pub holds: Vec<HoldView>,
    pub obligations: Vec<ObligationView>,
}

/// Requests answered in a period, and how many by their due date.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OnTime {
    pub answered: u64,
    pub on_time: u64,
}

/// One week of the chart: requests received and answered.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WeekCount {
    /// The week's Monday (Almaty).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub week: NaiveDate,
    pub received: u64,
    pub answered: u64,
}

/// The desk's dashboard.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RequestSummary {
    pub open: u64,
    pub overdue: u64,
    /// Open and due by the end of this week (Sunday, Almaty).
    pub due_this_week: u64,
    pub last_30_days: OnTime,
    pub last_90_days: OnTime,
    /// The last 12 weeks, oldest first.
    pub weeks: Vec<WeekCount>,
}

/// Who holds the token.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Whoami {
    pub token_id: String,
    pub name: String,
    pub role: String,
    /// The language they chose for their pages (`ru`, `kk` or `en`);
    /// absent until they choose (the pages then speak Russian, or what the
    /// page was asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lang: Option<String>,
    pub capabilities: Vec<String>,
}

/// The Monday of `d`'s week.
fn monday(d: NaiveDate) -> NaiveDate {
    d - Duration::days(i64::from(d.weekday().num_days_from_monday()))
}

impl Engine {
    /// A subject's standing as `actor` may see it (audited by the reads
    /// it makes: consents and disclosures).
    pub(crate) async fn standing(
        &self,
        actor: &Actor,
        subject: SubjectId,
    ) -> Result<Standing, EngineError> {
        let row = self
            .store
            .subject(subject)
            .await?
            .ok_or(EngineError::NotFound("subject"))?;
        let filter = derbes_store::RequestFilter {
            subject_id: Some(subject),
            limit: 1000,
            ..Default::default()
        };
        let (fields, rows, optouts) = tokio::try_join!(
            self.store.subject_fields(subject),
            self.store.requests(&filter),
            self.store.optouts(subject),
        )?;
        let p = self.policy.policy();
        let mut categories = crate::field_categories(fields.iter().map(|f| f.field.as_str()));
        categories.retain(|c| p.category(c).is_some_and(|c| c.personal));
        let consents = self.consent_views(subject).await?;
        let channels = crate::me::channel_views(&consents, &optouts);
        let mut requests = self.listed(rows).await?;
        requests.reverse();
        let disclosures = self.disclosures(actor, subject).await?;
        Ok(Standing {
            row,
            categories,
            consents,
            channels,
            requests,
            disclosures,
        })
    }

    /// A subject's page on the desk (`work_requests`): everything but the
    /// values of their data.
    pub async fn subject_overview(
        &self,
        actor: &Actor,
        subject: SubjectId,
    ) -> Result<SubjectOverview, EngineError> {
        self.require(actor, Capability::WorkRequests)?;
        let s = self.standing(actor, subject).await?;
        let holds = self.holds(actor, subject).await?;
        let rows = self.store.obligations(subject).await?;
        let owners = crate::jobs::obligation_owners(&rows);
        let notes = self.open_notes(actor, Some(subject), &owners).await?;
        let obligations = rows
            .into_iter()
            .map(|o| crate::jobs::obligation_view(o, &notes))
            .collect();
        self.audit(
            Record::new(actor, "subject.overview")
                .subject(subject)
                .categories(&s.categories)
                .details(serde_json::json!({"requests": s.requests.len()})),
        )
        .await?;
        Ok(SubjectOverview {
            subject_id: subject,
            status: s.row.status,
            registered_at: s.row.created_at,
            policy_version: s.row.policy_version,
            relationship_ended_at: s.row.relationship_ended_at,
            categories: s.categories,
            consents: s.consents,
            channels: s.channels,
            requests: s.requests,
            disclosures: s.disclosures,
            holds,
            obligations,
        })
    }

    /// The dashboard's figures (`work_requests`).
    pub async fn request_summary(&self, actor: &Actor) -> Result<RequestSummary, EngineError> {
        self.require(actor, Capability::WorkRequests)?;
        let now = self.now();
        let today = derbes_core::almaty_date(now);
        let first_week = monday(today) - Duration::weeks(11);
        let since = (now - Duration::days(90)).min(
            first_week
                .and_hms_opt(0, 0, 0)
                .and_then(|t| t.and_local_timezone(derbes_kz::ALMATY).single())
                .map_or(now - Duration::days(90), |t| t.with_timezone(&Utc)),
        );
        let week_end = monday(today) + Duration::days(7);
        let mut out = RequestSummary {
            open: 0,
            overdue: 0,
            due_this_week: 0,
            last_30_days: OnTime::default(),
            last_90_days: OnTime::default(),
            weeks: (0..12)
                .map(|i| WeekCount {
                    week: first_week + Duration::weeks(i),
                    received: 0,
                    answered: 0,
                })
                .collect(),
        };
        let week_of = |t: DateTime<Utc>| {
            let d = monday(derbes_core::almaty_date(t));
            usize::try_from((d - first_week).num_weeks())
                .ok()
                .filter(|_| d >= first_week)
        };
        for (state, received, due, changed) in self.store.request_times(since).await? {
            if let Some(w) = week_of(received).and_then(|i| out.weeks.get_mut(i)) {
                w.received += 1;
            }
            if !state.is_final() {
                out.open += 1;
                if now > due {
                    out.overdue += 1;
                }
                if derbes_core::almaty_date(due) < week_end {
                    out.due_this_week += 1;
                }
                continue;
            }
            if state == RequestState::Completed || state == RequestState::Refused {
                if let Some(w) = week_of(changed).and_then(|i| out.weeks.get_mut(i)) {
                    w.answered += 1;
                }
                for (days, bucket) in [(30, &mut out.last_30_days), (90, &mut out.last_90_days)] {
                    if changed >= now - Duration::days(days) {
                        bucket.answered += 1;
                        if changed <= due {
                            bucket.on_time += 1;
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Who holds this token, with their role's capabilities.
    pub async fn whoami(&self, actor: &Actor) -> Result<Whoami, EngineError> {
        let token = self
            .store
            .tokens()
            .await?
            .into_iter()
            .find(|t| t.token_id == actor.id() && t.revoked_at.is_none())
            .ok_or(EngineError::NotFound("staff token"))?;
        let capabilities = self
            .policy
            .policy()
            .role(actor.role())
            .map(|r| {
                r.capabilities
                    .iter()
                    .map(|c| c.as_str().to_string())
                    .collect()
            })
            .unwrap_or_default();
        Ok(Whoami {
            token_id: actor.id().to_string(),
            name: token.name,
            role: actor.role().to_string(),
            lang: token.lang,
            capabilities,
        })
    }

    /// The language the token's holder wants their pages in, kept with
    /// their token (audited: `staff.lang`).
    pub async fn set_my_lang(
        &self,
        actor: &Actor,
        lang: derbes_policy::Lang,
    ) -> Result<Whoami, EngineError> {
        let mut w = self.write().await?;
        w.set_token_lang(actor.id(), lang.code()).await?;
        self.commit(
            w,
            [crate::audit::Record::new(actor, "staff.lang")
                .details(serde_json::json!({"lang": lang.code()}))],
        )
        .await?;
        self.whoami(actor).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_start_on_monday() {
        let thu = NaiveDate::from_ymd_opt(2026, 12, 3).unwrap_or_default();
        assert_eq!(
            monday(thu),
            NaiveDate::from_ymd_opt(2026, 11, 30).unwrap_or_default()
        );
        assert_eq!(monday(monday(thu)), monday(thu));
    }
}
