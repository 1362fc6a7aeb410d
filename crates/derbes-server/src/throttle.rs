//! Rate limits against guessing and enumeration: failed sign-ins per client
//! address, lookups by identifier per token and per client address, and
//! every call of a subject's session (the app's web view: a copy files a
//! request each time). Over a
//! limit the answer is 429 with `Retry-After`; the first refusal of each
//! window is audited (which limit, which scope — never the address, which
//! is personal data). Counts are fixed one-minute windows kept in this
//! process's memory: each `serve` process limits on its own.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::StatusCode;

use crate::ApiError;

const WINDOW: Duration = Duration::from_secs(60);

/// How many of each a minute allows (see `derbes serve --help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Failed authentications per client address.
    pub auth_failures_per_minute: u32,
    /// Subject lookups (by IIN or phone) per token and per client address.
    pub lookups_per_minute: u32,
    /// Calls of `/api/v1/me` per subject session.
    pub session_calls_per_minute: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            auth_failures_per_minute: 20,
            lookups_per_minute: 120,
            session_calls_per_minute: 60,
        }
    }
}

/// What is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Limit {
    FailedAuthentication,
    Lookup,
    SessionCall,
}

impl Limit {
    fn as_str(self) -> &'static str {
        match self {
            Limit::FailedAuthentication => "failed_authentication",
            Limit::Lookup => "lookup",
            Limit::SessionCall => "session_call",
        }
    }
}

/// Whom it is counted for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Scope {
    Address(IpAddr),
    Token(String),
    Session(String),
}

impl Scope {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Scope::Address(_) => "address",
            Scope::Token(_) => "token",
            Scope::Session(_) => "session",
        }
    }
}

#[derive(Debug)]
struct Window {
    start: Instant,
    count: u32,
}

/// A refusal: when to come back, and whether it is the window's first
/// (to be audited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refused {
    pub retry_after: Duration,
    pub first: bool,
}

#[derive(Debug)]
pub(crate) struct Throttle {
    limits: RateLimits,
    windows: Mutex<HashMap<(Limit, Scope), Window>>,
}

/// Entries kept before stale windows are swept.
const SWEEP_AT: usize = 10_000;

impl Throttle {
    pub(crate) fn new(limits: RateLimits) -> Throttle {
        Throttle {
            limits,
            windows: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn per_minute(&self, limit: Limit) -> u32 {
        match limit {
            Limit::FailedAuthentication => self.limits.auth_failures_per_minute,
            Limit::Lookup => self.limits.lookups_per_minute,
            Limit::SessionCall => self.limits.session_calls_per_minute,
        }
    }

    /// Count one for `scope`, at `now`; refused when the window is full.
    pub(crate) fn hit(&self, limit: Limit, scope: &Scope, now: Instant) -> Result<(), Refused> {
        self.count(limit, scope, now, 1)
    }

    /// Whether `scope` is over the limit now, without counting.
    pub(crate) fn check(&self, limit: Limit, scope: &Scope, now: Instant) -> Result<(), Refused> {
        self.count(limit, scope, now, 0)
    }

    fn count(&self, limit: Limit, scope: &Scope, now: Instant, n: u32) -> Result<(), Refused> {
        let max = self.per_minute(limit);
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if windows.len() >= SWEEP_AT {
            windows.retain(|_, w| now.duration_since(w.start) < WINDOW);
        }
        let w = windows.entry((limit, scope.clone())).or_insert(Window {
            start: now,
            count: 0,
        });
        if now.duration_since(w.start) >= WINDOW {
            *w = Window {
                start: now,
                count: 0,
            };
        }
        let before = w.count;
        w.count = w.count.saturating_add(n);
        if w.count > max {
            Err(Refused {
                retry_after: WINDOW
                    .saturating_sub(now.duration_since(w.start))
                    .max(Duration::from_secs(1)),
                first: n > 0 && before == max,
            })
        } else {
            Ok(())
        }
    }
}

/// The 429 of a refusal, with `Retry-After` in whole seconds.
pub(crate) fn too_many(limit: Limit, refused: Refused) -> ApiError {
    let secs = refused.retry_after.as_secs_f64().ceil() as u64;
    let mut e = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "too many {} from this client; try again in {secs} s",
            match limit {
                Limit::FailedAuthentication => "failed sign-ins",
                Limit::Lookup => "lookups",
                Limit::SessionCall => "calls in this session",
            }
        ),
    );
    e.retry_after = Some(secs);
    e
}

/// The client's address, where the connection gave one (`serve` always
/// does; a router driven without a socket does not).
pub(crate) fn client_address(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// [`client_address`] as an extractor.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddress(pub Option<IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(client_address(&parts.extensions)))
    }
}

/// Count `limit` for every scope; the first refusal (if any) is returned,
/// and each window's first refusal audited.
pub(crate) async fn guard(
    state: &crate::AppState,
    actor: Option<&derbes_engine::Actor>,
    limit: Limit,
    scopes: &[Scope],
    count: bool,
) -> Result<(), ApiError> {
    let now = Instant::now();
    let throttle = state.throttle();
    let mut refusal = None;
    for scope in scopes {
        let r = if count {
            throttle.hit(limit, scope, now)
        } else {
            throttle.check(limit, scope, now)
        };
        if let Err(r) = r {
            if r.first {
                let audited = state
                    .engine()
                    .audit_rate_limited(
                        actor,
                        limit.as_str(),
                        scope.name(),
                        throttle.per_minute(limit),
                    )
                    .await;
                if let Err(e) = audited {
                    tracing::error!(error = %e, "auditing a rate limit failed");
                }
            }
            refusal.get_or_insert(r);
        }
    }
    match refusal {
        Some(r) => Err(too_many(limit, r)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_window_refuses_until_it_ends() {
        let t = Throttle::new(RateLimits {
            auth_failures_per_minute: 3,
            lookups_per_minute: 2,
            session_calls_per_minute: 1,
        });
        let a = Scope::Address("192.0.2.1".parse().unwrap());
        let b = Scope::Address("192.0.2.2".parse().unwrap());
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(t.hit(Limit::FailedAuthentication, &a, t0).is_ok());
        }
        let r = t.hit(Limit::FailedAuthentication, &a, t0).unwrap_err();
        assert!(r.first && r.retry_after == WINDOW);
        let r = t
            .hit(
                Limit::FailedAuthentication,
                &a,
                t0 + Duration::from_secs(45),
            )
            .unwrap_err();
        assert!(!r.first && r.retry_after == Duration::from_secs(15));
        assert!(t.check(Limit::FailedAuthentication, &a, t0).is_err());
        // Another address, another limit: their own windows.
        assert!(t.hit(Limit::FailedAuthentication, &b, t0).is_ok());
        assert!(t.hit(Limit::Lookup, &a, t0).is_ok());
        // The window ends.
        let later = t0 + WINDOW;
        assert!(t.check(Limit::FailedAuthentication, &a, later).is_ok());
        assert!(t.hit(Limit::FailedAuthentication, &a, later).is_ok());
    }
}
