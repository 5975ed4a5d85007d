//! OIDC sign-in state (docs/sso.md): sign-ins waiting for the provider's callback, and CLI
//! sign-ins waiting to be redeemed. Each row is taken once (deleted in the statement that
//! reads it), so a `state` or a hand-off code cannot be used twice, on any node.

use crate::codec::{from_ms, ms};
use crate::{Result, Tx};
use jitgate_core::Timestamp;
use sqlx::any::AnyRow;
use sqlx::Row;

/// A sign-in sent to a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoLoginRecord {
    /// Lowercase hex SHA-256 of the `state` sent to the provider.
    pub state_hash: String,
    pub provider: String,
    pub nonce: String,
    pub pkce_verifier: String,
    /// Console sign-ins: SHA-256 of the cookie that binds the sign-in to the browser.
    pub browser_hash: Option<String>,
    /// CLI sign-ins: the loopback port the CLI listens on, and its PKCE challenge (S256).
    pub cli_port: Option<u16>,
    pub cli_challenge: Option<String>,
    pub expires_at: Timestamp,
}

/// A CLI sign-in completed at the provider, waiting for the CLI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoHandoffRecord {
    /// Lowercase hex SHA-256 of the one-time code sent to the CLI's loopback address.
    pub code_hash: String,
    /// The CLI's PKCE challenge (S256): only the holder of the verifier redeems the code.
    pub challenge: String,
    /// The accepted sign-in, as JSON (the server's own format).
    pub sign_in: String,
    pub expires_at: Timestamp,
}

fn login_from_row(row: &AnyRow) -> Result<SsoLoginRecord> {
    let port: Option<i64> = row.try_get("cli_port")?;
    Ok(SsoLoginRecord {
        state_hash: row.try_get("state_hash")?,
        provider: row.try_get("provider")?,
        nonce: row.try_get("nonce")?,
        pkce_verifier: row.try_get("pkce_verifier")?,
        browser_hash: row.try_get("browser_hash")?,
        cli_port: port.and_then(|p| u16::try_from(p).ok()),
        cli_challenge: row.try_get("cli_challenge")?,
        expires_at: from_ms(row.try_get("expires_at")?, "sso_logins.expires_at")?,
    })
}

impl Tx {
    /// Remember a sign-in sent to a provider (forgetting those expired at `now`).
    pub async fn insert_sso_login(&mut self, r: &SsoLoginRecord, now: Timestamp) -> Result<()> {
        self.need_write("insert_sso_login")?;
        sqlx::query("DELETE FROM sso_logins WHERE expires_at <= $1")
            .bind(ms(now))
            .execute(self.conn())
            .await?;
        sqlx::query(
            "INSERT INTO sso_logins (state_hash, provider, nonce, pkce_verifier, browser_hash, \
             cli_port, cli_challenge, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&r.state_hash)
        .bind(&r.provider)
        .bind(&r.nonce)
        .bind(&r.pkce_verifier)
        .bind(r.browser_hash.clone())
        .bind(r.cli_port.map(i64::from))
        .bind(r.cli_challenge.clone())
        .bind(ms(r.expires_at))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Take (delete and return) the sign-in with this state hash, if it is there and not
    /// expired at `now`.
    pub async fn take_sso_login(
        &mut self,
        state_hash: &str,
        now: Timestamp,
    ) -> Result<Option<SsoLoginRecord>> {
        self.need_write("take_sso_login")?;
        let row = sqlx::query(
            "DELETE FROM sso_logins WHERE state_hash = $1 RETURNING state_hash, provider, \
             nonce, pkce_verifier, browser_hash, cli_port, cli_challenge, expires_at",
        )
        .bind(state_hash)
        .fetch_optional(self.conn())
        .await?;
        let found = row.as_ref().map(login_from_row).transpose()?;
        Ok(found.filter(|r| r.expires_at > now))
    }

    /// Remember a CLI sign-in for its redemption (forgetting those expired at `now`).
    pub async fn insert_sso_handoff(&mut self, r: &SsoHandoffRecord, now: Timestamp) -> Result<()> {
        self.need_write("insert_sso_handoff")?;
        sqlx::query("DELETE FROM sso_handoffs WHERE expires_at <= $1")
            .bind(ms(now))
            .execute(self.conn())
            .await?;
        sqlx::query(
            "INSERT INTO sso_handoffs (code_hash, challenge, sign_in, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&r.code_hash)
        .bind(&r.challenge)
        .bind(&r.sign_in)
        .bind(ms(r.expires_at))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Take (delete and return) the hand-off with this code hash, if not expired at `now`.
    pub async fn take_sso_handoff(
        &mut self,
        code_hash: &str,
        now: Timestamp,
    ) -> Result<Option<SsoHandoffRecord>> {
        self.need_write("take_sso_handoff")?;
        let row = sqlx::query(
            "DELETE FROM sso_handoffs WHERE code_hash = $1 \
             RETURNING code_hash, challenge, sign_in, expires_at",
        )
        .bind(code_hash)
        .fetch_optional(self.conn())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let r = SsoHandoffRecord {
            code_hash: row.try_get("code_hash")?,
            challenge: row.try_get("challenge")?,
            sign_in: row.try_get("sign_in")?,
            expires_at: from_ms(row.try_get("expires_at")?, "sso_handoffs.expires_at")?,
        };
        Ok((r.expires_at > now).then_some(r))
    }
}
