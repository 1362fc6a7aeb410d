//! Re-consent (7.6): a consent covers exactly the policy version it
//! accepted, so when a later version adds what needs consent, the decision
//! point denies it (`consent_outdated`) until the subject consents again.
//! This is the list of who must, and for what.

use derbes_core::SubjectId;
use derbes_policy::Capability;
use serde::Serialize;

use crate::audit::Record;
use crate::{Actor, Engine, EngineError};

/// One subject who must consent again.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReconsentItem {
    pub subject_id: SubjectId,
    /// The version they accepted (`unknown` if it is not on record).
    pub accepted_version: String,
    pub accepted_sha256: String,
    /// What the version in force adds that their consent does not cover:
    /// `area id: detail`, in the words of `derbes policy diff`.
    pub changes: Vec<String>,
}

/// A page of the re-consent list.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReconsentPage {
    /// The version in force.
    pub version: String,
    pub items: Vec<ReconsentItem>,
    /// Pass as `after` for the next page; absent on the last.
    pub next_after: Option<SubjectId>,
}

impl Engine {
    /// Who must consent again for what, `limit` subjects after `after`.
    pub async fn reconsent(
        &self,
        actor: &Actor,
        after: Option<SubjectId>,
        limit: i64,
    ) -> Result<ReconsentPage, EngineError> {
        self.require(actor, Capability::RecordConsents)?;
        let limit = limit.clamp(1, 1000);
        let current = &self.policy;
        let mut cursor = after.map(|s| s.to_string()).unwrap_or_default();
        let mut items = Vec::new();
        let mut by_version: std::collections::HashMap<String, (String, Vec<String>)> =
            std::collections::HashMap::new();
        let mut exhausted = false;
        while items.len() < limit as usize && !exhausted {
            let rows = self
                .store
                .accepted_other_versions(current.sha256(), &cursor, limit)
                .await?;
            exhausted = (rows.len() as i64) < limit;
            for derbes_store::Acceptance {
                subject_id,
                policy_sha256,
            } in rows
            {
                let sha = policy_sha256.unwrap_or_default();
                cursor = subject_id.to_string();
                if !by_version.contains_key(&sha) {
                    let entry = match self.published(&sha).await? {
                        Some(old) => (
                            old.policy().version.clone(),
                            derbes_policy::reconsent_changes(old.policy(), current.policy())
                                .into_iter()
                                .map(|c| {
                                    if c.detail.is_empty() {
                                        format!("{} {} ({:?})", c.area, c.id, c.kind).to_lowercase()
                                    } else {
                                        format!("{} {}: {}", c.area, c.id, c.detail)
                                    }
                                })
                                .collect(),
                        ),
                        // A version derbes cannot read covers nothing.
                        None => ("unknown".into(), vec!["the whole policy".into()]),
                    };
                    by_version.insert(sha.clone(), entry);
                }
                let (version, changes) = &by_version[&sha];
                if changes.is_empty() {
                    continue;
                }
                items.push(ReconsentItem {
                    subject_id,
                    accepted_version: version.clone(),
                    accepted_sha256: sha,
                    changes: changes.clone(),
                });
                if items.len() == limit as usize {
                    break;
                }
            }
        }
        let next_after = (!exhausted || items.len() == limit as usize)
            .then(|| items.last().map(|i| i.subject_id))
            .flatten();
        self.audit(
            Record::new(actor, "reconsent.read")
                .details(serde_json::json!({"subjects": items.len(), "after": after})),
        )
        .await?;
        Ok(ReconsentPage {
            version: current.policy().version.clone(),
            items,
            next_after,
        })
    }
}

/// How far this process has walked the re-consent list to record notices:
/// once to its end per start (recording is idempotent per subject and
/// version; nobody joins the list later, as new consents accept the
/// version in force).
#[derive(Debug, Default)]
pub(crate) struct NoticeWalk {
    after: Option<SubjectId>,
    done: bool,
}

impl Engine {
    /// One page of re-consent notices (7.6): each subject on the list is
    /// told, once per version, through the system that sends the app's
    /// notices (a notice with no such system is listed `undeliverable`).
    /// How many were recorded now.
    pub(crate) async fn reconsent_notices_pass(&self, limit: i64) -> Result<usize, EngineError> {
        let after = {
            let walk = self
                .reconsent_walk
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if walk.done {
                return Ok(0);
            }
            walk.after
        };
        let duties = Actor::system(crate::SystemJob::Duties);
        let page = self.reconsent(&duties, after, limit).await?;
        let p = self.policy.policy();
        let version = p.version.clone();
        let published = p.published.format("%d.%m.%Y").to_string();
        let text = crate::in_every_language(|lang| {
            derbes_policy::NoticeTemplates::render(
                p.notices.reconsent.get(lang),
                &[
                    ("app", p.operator.app.as_str()),
                    ("operator", p.operator.name.get(lang)),
                    ("version", &version),
                    ("published", &published),
                ],
            )
        });
        let subjects: Vec<SubjectId> = page.items.iter().map(|i| i.subject_id).collect();
        let mut told = 0;
        if !subjects.is_empty() {
            let mut w = self.write().await?;
            told = self
                .notices_in(&mut w, "reconsent", &version, None, &subjects, &text)
                .await?;
            if told > 0 {
                self.commit(
                    w,
                    [Record::new(&duties, "reconsent.notices")
                        .details(serde_json::json!({"version": version, "notices": told}))],
                )
                .await?;
            }
        }
        let mut walk = self
            .reconsent_walk
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        walk.after = page.next_after;
        walk.done = page.next_after.is_none();
        Ok(told)
    }
}
