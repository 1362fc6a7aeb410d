//! Usage statistics (3.2): logs and app events through `derbes-weblog`,
//! depersonalised aggregates stored and reported with k-anonymity. Nothing
//! here is personal data once a line is read: the client address becomes a
//! day's pseudonym and is dropped.

use chrono::NaiveDate;
use derbes_policy::Capability;
use derbes_store::WeblogCell;
use derbes_weblog::aggregate::{merge_stored, Aggregates, Report, StatsReport, EXACT_LIMIT};
use derbes_weblog::ingest::{Ingester, Summary};
use derbes_weblog::pseudonym::DailyKeys;
use derbes_weblog::Format;

use crate::{Actor, Engine, EngineError};

/// The default smallest number of visitors a published cell may describe.
pub const DEFAULT_K: u64 = 5;

impl Engine {
    /// The Almaty date now.
    pub fn today(&self) -> NaiveDate {
        derbes_core::almaty_date(self.now())
    }

    /// The pseudonym keys: in `<data dir>/weblog-keys` (shared by every
    /// ingester of this machine, with the window recorded there), or in
    /// memory without a data directory. Keys of days whose window closed
    /// are destroyed first.
    pub fn weblog_keys(&self) -> Result<DailyKeys, EngineError> {
        let mut keys = match &self.data_dir {
            Some(dir) => DailyKeys::open(&dir.join("weblog-keys"), self.key_window_days)
                .map_err(|e| EngineError::Internal(e.to_string()))?,
            None => DailyKeys::ephemeral(
                self.key_window_days
                    .unwrap_or(crate::DEFAULT_KEY_WINDOW_DAYS),
            ),
        };
        keys.close_days(self.today())
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        Ok(keys)
    }

    /// Destroy the pseudonym keys of days whose window closed (the
    /// service's scheduler calls this, so keys die on time even when no
    /// log is read that day). Returns the days destroyed.
    pub fn close_weblog_days(&self) -> Result<Vec<NaiveDate>, EngineError> {
        let Some(dir) = &self.data_dir else {
            return Ok(Vec::new());
        };
        let dir = dir.join("weblog-keys");
        if !dir.exists() {
            return Ok(Vec::new());
        }
        DailyKeys::open(&dir, self.key_window_days)
            .and_then(|mut k| k.close_days(self.today()))
            .map_err(|e| EngineError::Internal(e.to_string()))
    }

    /// An ingester for `format` with this engine's keys and clock.
    pub fn weblog_ingester(&self, format: Format) -> Result<Ingester, EngineError> {
        Ok(Ingester::new(
            format,
            self.weblog_keys()?,
            self.today(),
            EXACT_LIMIT,
        ))
    }

    /// Add aggregates to the stored statistics, with the inputs'
    /// checkpoints (source, identity, position) in the same transaction.
    pub async fn save_weblog(
        &self,
        aggregates: &Aggregates,
        checkpoints: &[(&str, &str, i64)],
    ) -> Result<(), EngineError> {
        let cells: Vec<WeblogCell> = aggregates
            .to_rows()
            .into_iter()
            .map(|(day, dim, value, requests, visitors)| WeblogCell {
                day,
                dim: dim.to_string(),
                value,
                requests: requests as i64,
                visitors,
            })
            .collect();
        let limit = aggregates.exact_limit;
        let mut w = self.write().await?;
        w.weblog_merge(
            &cells,
            &move |a: &[u8], b: &[u8]| merge_stored(a, b, limit),
            checkpoints,
            self.now(),
        )
        .await?;
        w.commit().await?;
        Ok(())
    }

    /// Where the ingest of `source` got to.
    pub async fn weblog_checkpoint(
        &self,
        source: &str,
    ) -> Result<Option<crate::WeblogPosition>, EngineError> {
        Ok(self.store.weblog_checkpoint(source).await?)
    }

    /// A batch of app telemetry events (a JSON array of event objects, or
    /// JSON lines) through the same pipeline; all counted or nothing.
    pub async fn ingest_events(&self, actor: &Actor, body: &[u8]) -> Result<Summary, EngineError> {
        self.require(actor, Capability::SendEvents)?;
        let mut ing = self.weblog_ingester(Format::Json)?;
        let trimmed = body.iter().position(|b| !b.is_ascii_whitespace());
        let result = if trimmed.map(|i| body[i]) == Some(b'[') {
            let events: Vec<serde_json::Map<String, serde_json::Value>> =
                serde_json::from_slice(body).map_err(|_| {
                    EngineError::invalid(
                        "events",
                        "invalid_json",
                        "a JSON array of event objects, or JSON lines",
                    )
                })?;
            if events.len() > 10_000 {
                return Err(EngineError::invalid(
                    "events",
                    "too_many",
                    "at most 10000 events per batch",
                ));
            }
            events
                .iter()
                .try_for_each(|e| ing.line(&serde_json::to_vec(e).unwrap_or_default()))
                .map_err(|e| EngineError::Internal(e.to_string()))
        } else {
            ing.read(&mut &body[..], false)
                .map(|_| ())
                .map_err(|e| EngineError::Internal(e.to_string()))
        };
        result?;
        let (aggregates, summary) = ing.take();
        self.save_weblog(&aggregates, &[]).await?;
        Ok(summary)
    }

    /// Statistics by a dimension (or by day) over `from..=to`, with cells of
    /// fewer than `k` visitors suppressed.
    pub async fn stats(
        &self,
        actor: &Actor,
        by: Report,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        k: u64,
    ) -> Result<StatsReport, EngineError> {
        self.require(actor, Capability::ReadStats)?;
        if k < 2 && !actor.is_system() {
            return Err(EngineError::invalid(
                "k",
                "too_small",
                "k-anonymity needs k of 2 or more",
            ));
        }
        let aggregates = self.stored_aggregates(by, from, to).await?;
        Ok(aggregates.report(by, k))
    }

    /// The stored cells of `by` (or all) over the range, as aggregates.
    pub async fn stored_aggregates(
        &self,
        by: Report,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Result<Aggregates, EngineError> {
        let dim = match by {
            Report::Day => Some("total"),
            Report::Dim(d) => Some(d.as_str()),
        };
        let cells = self
            .store
            .weblog_cells(
                from.map(|d| d.to_string()).as_deref(),
                to.map(|d| d.to_string()).as_deref(),
                dim,
            )
            .await?;
        let mut aggregates = Aggregates::default();
        for c in &cells {
            if !aggregates.add_row(
                &c.day,
                &c.dim,
                &c.value,
                c.requests.max(0) as u64,
                &c.visitors,
            ) {
                return Err(EngineError::Internal(format!(
                    "a stored statistics cell of {} is damaged",
                    c.day
                )));
            }
        }
        Ok(aggregates)
    }
}
