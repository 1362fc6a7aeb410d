//! The outbox relay: delivers the events derbes wrote with its changes to
//! the connected systems — signed webhooks (`X-Derbes-Signature`) and NATS
//! JetStream (published with `Nats-Msg-Id` = the event id, waiting for the
//! stream's ack) — at least once, in order per system and subject, with
//! exponential backoff and a dead-letter state.
//!
//! Nothing here decides what is sent or to whom: the engine wrote each
//! event with the change it reports, and records what each delivery came
//! to ([`derbes_engine::Engine::record_deliveries`]). The relay survives
//! restarts and kill -9 by construction: an event leaves `pending` only in
//! the transaction that records its delivery, after the system had it; a
//! crash in between delivers it again, which the receiver's de-duplication
//! by event id (and JetStream's, by message id) absorbs.

pub mod nats;
pub mod webhook;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use derbes_engine::{Backoff, Delivery, Engine, EngineError, EventRow, SystemRow};

pub use nats::{Nats, NatsError, PubAck};
pub use webhook::{Outcome, Webhooks};

/// The default NATS server (development and CI).
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

/// How the relay runs.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub nats_url: String,
    pub backoff: Backoff,
    /// Events taken per pass.
    pub batch: i64,
    /// The longest wait between passes when nothing wakes the relay.
    pub poll: Duration,
    /// One delivery's time limit.
    pub timeout: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            nats_url: DEFAULT_NATS_URL.to_string(),
            backoff: Backoff::default(),
            batch: 200,
            poll: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Pass {
    pub delivered: u64,
    pub failed: u64,
}

/// The relay over one engine.
#[derive(Debug)]
pub struct Relay {
    engine: Engine,
    config: RelayConfig,
    webhooks: Webhooks,
    nats: Option<Arc<Nats>>,
    secrets: HashMap<String, Arc<Vec<u8>>>,
}

impl Relay {
    pub fn new(engine: Engine, config: RelayConfig) -> Relay {
        Relay {
            webhooks: Webhooks::new(config.timeout),
            engine,
            config,
            nats: None,
            secrets: HashMap::new(),
        }
    }

    async fn secret(&mut self, system: &str) -> Result<Arc<Vec<u8>>, EngineError> {
        if let Some(s) = self.secrets.get(system) {
            return Ok(s.clone());
        }
        let s = Arc::new(self.engine.system_secret(system).await?);
        self.secrets.insert(system.to_string(), s.clone());
        Ok(s)
    }

    async fn nats(&mut self) -> Result<Arc<Nats>, NatsError> {
        if let Some(n) = self.nats.as_ref().filter(|n| n.is_alive()) {
            return Ok(n.clone());
        }
        let n = Arc::new(Nats::connect(&self.config.nats_url, self.config.timeout).await?);
        self.nats = Some(n.clone());
        Ok(n)
    }

    /// Deliver what is due now (one batch); what came of it is recorded
    /// before this returns.
    pub async fn run_once(&mut self) -> Result<Pass, EngineError> {
        let due = self.engine.due_deliveries(self.config.batch).await?;
        if due.is_empty() {
            return Ok(Pass::default());
        }
        let now = self.engine.now().timestamp();
        let mut signed = Vec::with_capacity(due.len());
        for (e, s) in due {
            let secret = self.secret(&s.system_id).await?;
            let signature = derbes_engine::sign(&secret, now, e.payload.as_bytes());
            signed.push((e, s, signature));
        }
        // JetStream publishes are pipelined; a batch never holds two events
        // of one system and subject, so their order does not matter here.
        let mut outcomes: Vec<(EventRow, SystemRow, Delivery)> = Vec::with_capacity(signed.len());
        let mut js = tokio::task::JoinSet::new();
        let has_nats = signed.iter().any(|(_, s, _)| s.transport == "nats");
        let nats = if has_nats {
            match self.nats().await {
                Ok(n) => Some(n),
                Err(e) => {
                    tracing::warn!(error = %e, "NATS unreachable; JetStream deliveries wait");
                    None
                }
            }
        } else {
            None
        };
        for (e, s, signature) in signed {
            match s.transport.as_str() {
                "webhook" => {
                    let o = self
                        .webhooks
                        .post(&s.target, &e.event_id, &signature, e.payload.as_bytes())
                        .await;
                    outcomes.push((e, s, webhook_delivery(o)));
                }
                _ => match &nats {
                    None => outcomes.push((
                        e,
                        s,
                        Delivery::Failed {
                            error: "nats unreachable".into(),
                            permanent: false,
                        },
                    )),
                    Some(n) => {
                        let n = n.clone();
                        let timeout = self.config.timeout;
                        js.spawn(async move {
                            let r = n
                                .publish_js(
                                    &s.target,
                                    &e.event_id,
                                    &[("X-Derbes-Signature", signature.as_str())],
                                    e.payload.as_bytes(),
                                    timeout,
                                )
                                .await;
                            (e, s, nats_delivery(r))
                        });
                    }
                },
            }
        }
        while let Some(r) = js.join_next().await {
            match r {
                Ok(o) => outcomes.push(o),
                Err(e) => tracing::error!(error = %e, "a JetStream delivery task failed"),
            }
        }
        let mut pass = Pass::default();
        for (_, _, d) in &outcomes {
            match d {
                Delivery::Delivered => pass.delivered += 1,
                Delivery::Failed { .. } => pass.failed += 1,
            }
        }
        self.engine
            .record_deliveries(&outcomes, &self.config.backoff)
            .await?;
        Ok(pass)
    }

    /// Deliver until `shutdown` resolves: a pass whenever events are
    /// committed in this process, when the next retry falls due, and at
    /// least every `poll` (events another process wrote).
    pub async fn run(mut self, shutdown: impl std::future::Future<Output = ()>) {
        let signal = self.engine.outbox_signal();
        tokio::pin!(shutdown);
        loop {
            // Armed before the pass, so no commit between is missed.
            let woken = signal.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let busy = match self.run_once().await {
                Ok(p) => p.delivered + p.failed >= self.config.batch.max(1) as u64,
                Err(e) => {
                    tracing::error!(error = %e, "outbox relay pass failed");
                    false
                }
            };
            if busy {
                continue;
            }
            let wait = match self.engine.next_event_at().await {
                Ok(Some(t)) => (t - self.engine.now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .min(self.config.poll),
                _ => self.config.poll,
            };
            tokio::select! {
                _ = &mut shutdown => return,
                _ = woken => {}
                _ = tokio::time::sleep(wait.max(Duration::from_millis(20))) => {}
            }
        }
    }
}

fn webhook_delivery(o: Outcome) -> Delivery {
    match o {
        Outcome::Delivered => Delivery::Delivered,
        Outcome::Retry(error) => Delivery::Failed {
            error,
            permanent: false,
        },
        Outcome::Refused(error) => Delivery::Failed {
            error,
            permanent: true,
        },
    }
}

fn nats_delivery(r: Result<PubAck, NatsError>) -> Delivery {
    match r {
        Ok(_) => Delivery::Delivered,
        // No stream listens yet, a timeout, a lost connection: try again.
        Err(e) => Delivery::Failed {
            error: match e {
                NatsError::NoResponders => "nats no stream for the subject".to_string(),
                NatsError::Timeout(_) => "nats timeout".to_string(),
                NatsError::JetStream(m) => format!("jetstream: {m}"),
                other => format!("nats: {other}"),
            },
            permanent: false,
        },
    }
}
