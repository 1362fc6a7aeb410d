//! Populating a store with synthetic subjects through the real registration
//! path (`derbes dev seed`), and measuring it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use derbes_core::synthetic;
use serde::Serialize;

use derbes_core::almaty_date;

use crate::{Actor, Engine, EngineError, LookupKind};

/// What a seeding run did and how fast.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SeedReport {
    pub requested: u64,
    pub registered: u64,
    /// Refused by the age gate (expected: the population includes minors).
    pub refused_minors: u64,
    /// Already present (a second run with the same seed).
    pub duplicates: u64,
    pub consents: u64,
    pub organizations: u64,
    pub seconds: f64,
    pub registrations_per_second: f64,
    pub lookups: u64,
    pub lookups_per_second: f64,
}

impl Engine {
    /// Register `count` synthetic subjects of population `seed` (indexes
    /// `start..start+count`) with `concurrency` registrations in flight, then
    /// look up to 10,000 of them by IIN. `progress(done)` after each subject.
    pub async fn seed(
        &self,
        seed: u64,
        start: u64,
        count: u64,
        concurrency: usize,
        progress: Arc<dyn Fn(u64) + Send + Sync>,
    ) -> Result<SeedReport, EngineError> {
        let today = almaty_date(self.now());
        let next = Arc::new(AtomicU64::new(start));
        let end = start + count;
        let stats: Arc<[AtomicU64; 6]> = Arc::new(Default::default());
        let began = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..concurrency.max(1) {
            let (engine, next, stats, progress) =
                (self.clone(), next.clone(), stats.clone(), progress.clone());
            let actor = Actor::system(crate::SystemJob::Seed);
            tasks.spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= end {
                        return Ok::<(), EngineError>(());
                    }
                    let s = synthetic::subject(seed, i, today);
                    let req: derbes_core::RegistrationRequest =
                        serde_json::from_value(s.registration)?;
                    match engine.register(&actor, &req).await {
                        Ok(r) => {
                            stats[0].fetch_add(1, Ordering::Relaxed);
                            stats[3].fetch_add(r.consent_receipts.len() as u64, Ordering::Relaxed);
                            for c in &s.later_consents {
                                let c: derbes_core::ConsentRequest =
                                    serde_json::from_value(c.clone())?;
                                engine.add_consent(&actor, r.subject_id, &c).await?;
                                stats[3].fetch_add(1, Ordering::Relaxed);
                            }
                            if let Some(mut org) = s.organization {
                                org["representatives"] = serde_json::json!([r.subject_id]);
                                let org: crate::OrganizationRequest = serde_json::from_value(org)?;
                                match engine.register_organization(&actor, &org).await {
                                    Ok(_) => {
                                        stats[4].fetch_add(1, Ordering::Relaxed);
                                    }
                                    Err(EngineError::DuplicateOrganization) => {}
                                    Err(e) => return Err(e),
                                }
                            }
                        }
                        Err(EngineError::Invalid(p))
                            if s.minor && p.iter().any(|p| p.code == "under_age") =>
                        {
                            stats[1].fetch_add(1, Ordering::Relaxed);
                        }
                        Err(EngineError::DuplicateSubject { .. }) => {
                            stats[2].fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => return Err(e),
                    }
                    progress(
                        stats[0].load(Ordering::Relaxed)
                            + stats[1].load(Ordering::Relaxed)
                            + stats[2].load(Ordering::Relaxed),
                    );
                }
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.map_err(|e| EngineError::Internal(format!("seeding task: {e}")))??;
        }
        let seconds = began.elapsed().as_secs_f64();
        let registered = stats[0].load(Ordering::Relaxed);
        // Lookups by IIN of the adults just registered.
        let sample: Vec<String> = (start..end)
            .map(|i| synthetic::subject(seed, i, today))
            .filter(|s| !s.minor)
            .take(10_000)
            .map(|s| s.iin)
            .collect();
        let lookup_actor = Actor::system(crate::SystemJob::Seed);
        let t = Instant::now();
        let mut found = 0u64;
        for iin in &sample {
            if self
                .lookup(&lookup_actor, LookupKind::Iin, iin)
                .await?
                .is_some()
            {
                found += 1;
            }
        }
        let lookup_secs = t.elapsed().as_secs_f64();
        Ok(SeedReport {
            requested: count,
            registered,
            refused_minors: stats[1].load(Ordering::Relaxed),
            duplicates: stats[2].load(Ordering::Relaxed),
            consents: stats[3].load(Ordering::Relaxed),
            organizations: stats[4].load(Ordering::Relaxed),
            seconds,
            registrations_per_second: if seconds > 0.0 {
                registered as f64 / seconds
            } else {
                0.0
            },
            lookups: found,
            lookups_per_second: if lookup_secs > 0.0 {
                sample.len() as f64 / lookup_secs
            } else {
                0.0
            },
        })
    }
}
