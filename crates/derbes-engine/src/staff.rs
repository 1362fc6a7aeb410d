//! Staff and their bearer tokens: stored as SHA-256 only, each with a role of
//! the policy. The secret is shown once, when created.

use derbes_policy::Capability;
use serde::Serialize;

use crate::audit::Record;
use crate::{Actor, Engine, EngineError};

/// A staff member (a token holder).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Staff {
    pub token_id: String,
    pub name: String,
    pub role: String,
}

impl Staff {
    /// The actor this staff member acts as.
    pub fn actor(&self) -> Actor {
        Actor::staff(self.token_id.clone(), self.role.clone())
    }
}

/// A token as listed (never the secret).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StaffView {
    pub token_id: String,
    pub name: String,
    pub role: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// How long an authenticated token is remembered.
pub const TOKEN_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

/// Recently authenticated tokens (by hash), so that a busy client does not
/// cost a database round trip per request.
#[derive(Debug, Default)]
pub(crate) struct TokenCache(
    std::sync::RwLock<std::collections::HashMap<String, (Staff, std::time::Instant)>>,
);

impl TokenCache {
    fn get(&self, hash: &str) -> Option<Staff> {
        let map = self.0.read().ok()?;
        let (staff, at) = map.get(hash)?;
        (at.elapsed() < TOKEN_CACHE_TTL).then(|| staff.clone())
    }

    fn put(&self, hash: String, staff: Staff) {
        if let Ok(mut map) = self.0.write() {
            if map.len() > 10_000 {
                map.retain(|_, (_, at)| at.elapsed() < TOKEN_CACHE_TTL);
            }
            map.insert(hash, (staff, std::time::Instant::now()));
        }
    }

    fn forget(&self, token_id: &str) {
        if let Ok(mut map) = self.0.write() {
            map.retain(|_, (s, _)| s.token_id != token_id);
        }
    }
}

fn token_hash(token: &str) -> String {
    derbes_policy::sha256_hex(token.as_bytes())
}

impl Engine {
    /// Add a staff member with a role of the policy; the token's secret is
    /// returned once and never stored.
    pub async fn create_token(
        &self,
        actor: &Actor,
        name: &str,
        role: &str,
    ) -> Result<(Staff, String), EngineError> {
        self.require(actor, Capability::ManageStaff)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            return Err(EngineError::invalid(
                "name",
                "invalid_name",
                "a name of 1 to 100 printable characters",
            ));
        }
        if self.policy.policy().role(role).is_none() {
            let roles: Vec<&str> = self
                .policy
                .policy()
                .roles
                .iter()
                .map(|r| r.id.as_str())
                .collect();
            return Err(EngineError::invalid(
                "role",
                "unknown_role",
                format!("one of: {}", roles.join(", ")),
            ));
        }
        let mut bytes = [0u8; 32];
        derbes_vault::random_bytes(&mut bytes)?;
        let secret = format!("dbs_{}", derbes_vault::hex::encode(&bytes));
        let token_id = uuid::Uuid::now_v7().to_string();
        let mut w = self.write().await?;
        w.insert_token(&token_id, name, role, &token_hash(&secret), self.now())
            .await?;
        self.commit(
            w,
            [Record::new(actor, "staff.add")
                .details(serde_json::json!({"token_id": token_id, "role": role}))],
        )
        .await?;
        Ok((
            Staff {
                token_id,
                name: name.into(),
                role: role.into(),
            },
            secret,
        ))
    }

    /// The staff member a bearer token belongs to, if it is live. Answers
    /// are cached for [`TOKEN_CACHE_TTL`]: a revocation in this process takes
    /// effect at once, one made by another process within that time.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Staff>, EngineError> {
        if !token.starts_with("dbs_") || token.len() != 68 {
            return Ok(None);
        }
        let hash = token_hash(token);
        if let Some(staff) = self.tokens.get(&hash) {
            return Ok(Some(staff));
        }
        let staff = self.store.token_by_hash(&hash).await?.map(|t| Staff {
            token_id: t.token_id,
            name: t.name,
            role: t.role,
        });
        if let Some(s) = &staff {
            self.tokens.put(hash, s.clone());
        }
        Ok(staff)
    }

    /// A rate limit refused `actor` (or, for failed sign-ins, a client
    /// nobody could name): one audit record per window that trips — what
    /// limit and on what scope, never the client's address (personal data).
    pub async fn audit_rate_limited(
        &self,
        actor: Option<&Actor>,
        limit: &str,
        scope: &str,
        per_minute: u32,
    ) -> Result<i64, EngineError> {
        let guard = Actor::system(crate::SystemJob::Guard);
        self.audit(
            Record::new(actor.unwrap_or(&guard), "rate_limited").details(serde_json::json!({
                "limit": limit,
                "scope": scope,
                "per_minute": per_minute,
            })),
        )
        .await
    }

    /// Every token (without secrets).
    pub async fn staff(&self, actor: &Actor) -> Result<Vec<StaffView>, EngineError> {
        self.require(actor, Capability::ManageStaff)?;
        Ok(self
            .store
            .tokens()
            .await?
            .into_iter()
            .map(|t| StaffView {
                token_id: t.token_id,
                name: t.name,
                role: t.role,
                created_at: t.created_at,
                revoked_at: t.revoked_at,
            })
            .collect())
    }

    /// Revoke a token; `false` when it was already revoked. The last token
    /// that can manage staff is never revoked: that would leave only the
    /// server's shell to add one (`last_administrator`).
    pub async fn revoke_token(&self, actor: &Actor, token_id: &str) -> Result<bool, EngineError> {
        self.require(actor, Capability::ManageStaff)?;
        let managers: Vec<&str> = self
            .policy
            .policy()
            .roles
            .iter()
            .filter(|r| r.can(Capability::ManageStaff))
            .map(|r| r.id.as_str())
            .collect();
        let mut w = self.write().await?;
        let active = w.lock_active_tokens(&managers).await?;
        if active.len() == 1 && active[0] == token_id {
            return Err(EngineError::invalid(
                "token_id",
                "last_administrator",
                "the last token that can manage staff cannot be revoked; add another administrator first",
            ));
        }
        let done = w.revoke_token(token_id, self.now()).await?;
        self.commit(
            w,
            [Record::new(actor, "staff.revoke")
                .details(serde_json::json!({"token_id": token_id, "revoked_now": done}))],
        )
        .await?;
        self.tokens.forget(token_id);
        Ok(done)
    }

    /// An administrator token on first start (no token exists yet).
    pub async fn bootstrap_admin(&self) -> Result<Option<String>, EngineError> {
        if self.store.token_count().await? > 0 {
            return Ok(None);
        }
        let role = self
            .policy
            .policy()
            .roles
            .iter()
            .find(|r| r.can(Capability::ManageStaff))
            .map(|r| r.id.clone())
            .ok_or_else(|| {
                EngineError::Internal("the policy has no role that manages staff".into())
            })?;
        let (_, secret) = self
            .create_token(
                &Actor::system(crate::SystemJob::Bootstrap),
                "administrator",
                &role,
            )
            .await?;
        Ok(Some(secret))
    }
}
