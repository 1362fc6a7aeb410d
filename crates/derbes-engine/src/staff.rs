//! Staff bearer tokens (minimal until roles arrive): stored as SHA-256 only.

use serde::Serialize;

use crate::{micros, Engine, EngineError};

/// An authenticated staff member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Staff {
    pub token_id: String,
    pub name: String,
    pub role: String,
}

fn token_hash(token: &str) -> String {
    derbes_policy::sha256_hex(token.as_bytes())
}

impl Engine {
    /// Create a token; the secret is returned once and never stored.
    pub async fn create_token(
        &self,
        name: &str,
        role: &str,
    ) -> Result<(Staff, String), EngineError> {
        let mut bytes = [0u8; 32];
        derbes_vault::random_bytes(&mut bytes)?;
        let secret = format!("dbs_{}", derbes_vault::hex::encode(&bytes));
        let token_id = uuid::Uuid::now_v7().to_string();
        self.store
            .insert_token(
                &token_id,
                name,
                role,
                &token_hash(&secret),
                micros(self.now()),
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

    /// The staff member a bearer token belongs to, if it is live.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Staff>, EngineError> {
        if !token.starts_with("dbs_") || token.len() != 68 {
            return Ok(None);
        }
        Ok(self
            .store
            .token_by_hash(&token_hash(token))
            .await?
            .map(|t| Staff {
                token_id: t.token_id,
                name: t.name,
                role: t.role,
            }))
    }

    /// An administrator token on first start (no token exists yet).
    pub async fn bootstrap_admin(&self) -> Result<Option<String>, EngineError> {
        if self.store.token_count().await? > 0 {
            return Ok(None);
        }
        let (_, secret) = self.create_token("administrator", "administrator").await?;
        Ok(Some(secret))
    }
}
