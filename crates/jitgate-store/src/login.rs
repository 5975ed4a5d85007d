//! Failed sign-ins counted per identity name and per source address (the rule is
//! `jitgate_core::lockout`; this only keeps its records), sessions ended together, and the
//! TOTP secrets read in bulk (to encrypt those stored in clear by earlier versions), and the
//! federated tokens already exchanged (replay refusal, `jitgate_core::federation`).

use crate::codec::{from_ms, ms, opt_from_ms};
use crate::{Result, Tx};
use jitgate_core::lockout::FailureRecord;
use jitgate_core::Timestamp;
use sqlx::Row;

impl Tx {
    /// The failures of one key (`kind` `identity` or `source`), if any are remembered.
    pub async fn get_auth_failures(
        &mut self,
        kind: &str,
        value: &str,
    ) -> Result<Option<FailureRecord>> {
        let row = sqlx::query(
            "SELECT failures, last_failure, locked_until FROM auth_failures \
             WHERE kind = $1 AND value = $2",
        )
        .bind(kind)
        .bind(value)
        .fetch_optional(self.conn())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let at = format!("auth_failures {kind}");
        let failures: i64 = row.try_get("failures")?;
        Ok(Some(FailureRecord {
            failures: u32::try_from(failures.max(0)).unwrap_or(u32::MAX),
            last_failure: from_ms(row.try_get("last_failure")?, &at)?,
            locked_until: opt_from_ms(row.try_get("locked_until")?, &at)?,
        }))
    }

    /// Store a key's failures (replacing what was there).
    pub async fn put_auth_failures(
        &mut self,
        kind: &str,
        value: &str,
        rec: &FailureRecord,
    ) -> Result<()> {
        self.need_write("put_auth_failures")?;
        sqlx::query(
            "INSERT INTO auth_failures (kind, value, failures, last_failure, locked_until) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kind, value) DO UPDATE SET \
             failures = excluded.failures, last_failure = excluded.last_failure, \
             locked_until = excluded.locked_until",
        )
        .bind(kind)
        .bind(value)
        .bind(i64::from(rec.failures))
        .bind(ms(rec.last_failure))
        .bind(rec.locked_until.map(ms))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Forget a key's failures (a success, an unlock); returns what was forgotten.
    pub async fn delete_auth_failures(
        &mut self,
        kind: &str,
        value: &str,
    ) -> Result<Option<FailureRecord>> {
        self.need_write("delete_auth_failures")?;
        let before = self.get_auth_failures(kind, value).await?;
        if before.is_some() {
            sqlx::query("DELETE FROM auth_failures WHERE kind = $1 AND value = $2")
                .bind(kind)
                .bind(value)
                .execute(self.conn())
                .await?;
        }
        Ok(before)
    }

    /// End every session of `identity` except the one whose token hash is `keep`; returns
    /// how many ended.
    pub async fn delete_sessions_of(&mut self, identity: &str, keep: Option<&str>) -> Result<u64> {
        self.need_write("delete_sessions_of")?;
        let done = sqlx::query("DELETE FROM sessions WHERE identity = $1 AND token_hash <> $2")
            .bind(identity)
            .bind(keep.unwrap_or(""))
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected())
    }

    /// Every stored TOTP secret as stored: `(identity, secret)`.
    pub async fn list_totp_secrets(&mut self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT identity, secret_b32 FROM totp ORDER BY identity")
            .fetch_all(self.conn())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("identity")?, r.try_get("secret_b32")?)))
            .collect()
    }

    /// Replace a stored TOTP secret (its confirmation and last used step stay).
    pub async fn replace_totp_secret(&mut self, identity: &str, secret: &str) -> Result<()> {
        self.need_write("replace_totp_secret")?;
        sqlx::query("UPDATE totp SET secret_b32 = $2 WHERE identity = $1")
            .bind(identity)
            .bind(secret)
            .execute(self.conn())
            .await?;
        Ok(())
    }
}

impl Tx {
    /// Remember an exchanged federated token until `expires_at` (forgetting those already
    /// expired at `now`). `false` when it is remembered already: a replay. Runs in the
    /// exchange's transaction, so on PostgreSQL two nodes cannot both take one token (the
    /// primary key decides).
    pub async fn remember_federated_token(
        &mut self,
        token_key: &str,
        issuer: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool> {
        self.need_write("remember_federated_token")?;
        sqlx::query("DELETE FROM federation_replay WHERE expires_at <= $1")
            .bind(ms(now))
            .execute(self.conn())
            .await?;
        let done = sqlx::query(
            "INSERT INTO federation_replay (token_key, issuer, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (token_key) DO NOTHING",
        )
        .bind(token_key)
        .bind(issuer)
        .bind(ms(expires_at))
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Is this federated token (or ID token) remembered, unexpired at `now`? A read before
    /// the checks that come after replay; [`Tx::remember_federated_token`] decides races.
    pub async fn federated_token_remembered(
        &mut self,
        token_key: &str,
        now: Timestamp,
    ) -> Result<bool> {
        let row = sqlx::query(
            "SELECT 1 AS one FROM federation_replay WHERE token_key = $1 AND expires_at > $2",
        )
        .bind(token_key)
        .bind(ms(now))
        .fetch_optional(self.conn())
        .await?;
        Ok(row.is_some())
    }
}
