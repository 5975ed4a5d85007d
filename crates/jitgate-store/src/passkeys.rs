//! Passkeys (WebAuthn credentials) enrolled for step-up, and the challenges of their
//! ceremonies. The rules (what a challenge is bound to, when an assertion counts) are
//! `jitgate_core::passkey`; the library's credential and ceremony state are opaque JSON here.

use crate::codec::{from_json, from_ms, ms, opt_from_ms, to_json};
use crate::{Result, StoreError, Tx};
use jitgate_core::passkey::ChallengePurpose;
use jitgate_core::Timestamp;
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRecord {
    /// base64url of the WebAuthn credential id.
    pub credential_id: String,
    pub identity: String,
    pub name: String,
    /// The WebAuthn library's credential (public key, counter, flags), JSON.
    pub passkey: String,
    /// The signature counter last accepted.
    pub counter: u32,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub removed_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyChallengeRecord {
    pub id: String,
    pub identity: String,
    pub purpose: ChallengePurpose,
    /// The WebAuthn library's ceremony state, JSON.
    pub state: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
}

const PASSKEY_COLUMNS: &str =
    "credential_id, identity, name, passkey, counter, created_at, last_used_at, removed_at";
const CHALLENGE_COLUMNS: &str = "id, identity, purpose, state, created_at, expires_at, used_at";

fn passkey_from_row(row: &AnyRow) -> Result<PasskeyRecord> {
    let counter: i64 = row.try_get("counter")?;
    Ok(PasskeyRecord {
        credential_id: row.try_get("credential_id")?,
        identity: row.try_get("identity")?,
        name: row.try_get("name")?,
        passkey: row.try_get("passkey")?,
        counter: u32::try_from(counter)
            .map_err(|_| StoreError::Corrupt(format!("passkeys.counter {counter}")))?,
        created_at: from_ms(row.try_get("created_at")?, "passkeys.created_at")?,
        last_used_at: opt_from_ms(row.try_get("last_used_at")?, "passkeys.last_used_at")?,
        removed_at: opt_from_ms(row.try_get("removed_at")?, "passkeys.removed_at")?,
    })
}

fn challenge_from_row(row: &AnyRow) -> Result<PasskeyChallengeRecord> {
    let purpose: String = row.try_get("purpose")?;
    Ok(PasskeyChallengeRecord {
        id: row.try_get("id")?,
        identity: row.try_get("identity")?,
        purpose: from_json(&purpose, "passkey_challenges.purpose")?,
        state: row.try_get("state")?,
        created_at: from_ms(row.try_get("created_at")?, "passkey_challenges.created_at")?,
        expires_at: from_ms(row.try_get("expires_at")?, "passkey_challenges.expires_at")?,
        used_at: opt_from_ms(row.try_get("used_at")?, "passkey_challenges.used_at")?,
    })
}

impl Tx {
    /// Enrol a passkey. [`StoreError::Conflict`] if its credential id is enrolled already
    /// (by anyone, removed or not).
    pub async fn insert_passkey(&mut self, p: &PasskeyRecord) -> Result<()> {
        self.need_write("insert_passkey")?;
        let done = sqlx::query(
            "INSERT INTO passkeys (credential_id, identity, name, passkey, counter, created_at, \
             last_used_at, removed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind(&p.credential_id)
        .bind(&p.identity)
        .bind(&p.name)
        .bind(&p.passkey)
        .bind(i64::from(p.counter))
        .bind(ms(p.created_at))
        .bind(p.last_used_at.map(ms))
        .bind(p.removed_at.map(ms))
        .execute(self.conn())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "passkey {} is enrolled already",
                p.credential_id
            )));
        }
        Ok(())
    }

    /// The passkey with this credential id, removed or not.
    pub async fn get_passkey(&mut self, credential_id: &str) -> Result<Option<PasskeyRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE credential_id = $1"
        ))
        .bind(credential_id)
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(passkey_from_row).transpose()
    }

    /// An identity's passkeys that are not removed, oldest first.
    pub async fn list_passkeys(&mut self, identity: &str) -> Result<Vec<PasskeyRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {PASSKEY_COLUMNS} FROM passkeys WHERE identity = $1 AND removed_at IS NULL \
             ORDER BY created_at, credential_id"
        ))
        .bind(identity)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(passkey_from_row).collect()
    }

    /// Record a step-up by a passkey: its new counter and credential state. Only if the
    /// stored counter is still `before` (two step-ups at once cannot both move it from the
    /// same value); returns whether it was updated.
    pub async fn use_passkey(
        &mut self,
        credential_id: &str,
        before: u32,
        counter: u32,
        passkey: &str,
        at: Timestamp,
    ) -> Result<bool> {
        self.need_write("use_passkey")?;
        let done = sqlx::query(
            "UPDATE passkeys SET counter = $3, passkey = $4, last_used_at = $5 \
             WHERE credential_id = $1 AND counter = $2 AND removed_at IS NULL",
        )
        .bind(credential_id)
        .bind(i64::from(before))
        .bind(i64::from(counter))
        .bind(passkey)
        .bind(ms(at))
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Mark an identity's passkey removed; returns whether it was enrolled and not removed.
    pub async fn remove_passkey(
        &mut self,
        identity: &str,
        credential_id: &str,
        at: Timestamp,
    ) -> Result<bool> {
        self.need_write("remove_passkey")?;
        let done = sqlx::query(
            "UPDATE passkeys SET removed_at = $3 \
             WHERE credential_id = $1 AND identity = $2 AND removed_at IS NULL",
        )
        .bind(credential_id)
        .bind(identity)
        .bind(ms(at))
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Store a ceremony's challenge (and forget those that expired more than a day ago).
    pub async fn insert_passkey_challenge(&mut self, c: &PasskeyChallengeRecord) -> Result<()> {
        self.need_write("insert_passkey_challenge")?;
        sqlx::query("DELETE FROM passkey_challenges WHERE expires_at < $1")
            .bind(ms(c.created_at) - 86_400_000)
            .execute(self.conn())
            .await?;
        sqlx::query(
            "INSERT INTO passkey_challenges (id, identity, purpose, state, created_at, \
             expires_at, used_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&c.id)
        .bind(&c.identity)
        .bind(to_json(&c.purpose, "passkey challenge purpose")?)
        .bind(&c.state)
        .bind(ms(c.created_at))
        .bind(ms(c.expires_at))
        .bind(c.used_at.map(ms))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// How many of an identity's challenges are open (unused and unexpired) at `now`.
    pub async fn count_open_passkey_challenges(
        &mut self,
        identity: &str,
        now: Timestamp,
    ) -> Result<u64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM passkey_challenges \
             WHERE identity = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(identity)
        .bind(ms(now))
        .fetch_one(self.conn())
        .await?;
        let n: i64 = row.try_get("n")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Take a challenge: mark it used at `at` and return it as it was before (its
    /// `used_at` says whether it had been taken already). One conditional UPDATE, so two
    /// presentations of one challenge at once cannot both find it unused.
    pub async fn take_passkey_challenge(
        &mut self,
        id: &str,
        at: Timestamp,
    ) -> Result<Option<PasskeyChallengeRecord>> {
        self.need_write("take_passkey_challenge")?;
        let done = sqlx::query(
            "UPDATE passkey_challenges SET used_at = $2 WHERE id = $1 AND used_at IS NULL",
        )
        .bind(id)
        .bind(ms(at))
        .execute(self.conn())
        .await?;
        let row = sqlx::query(&format!(
            "SELECT {CHALLENGE_COLUMNS} FROM passkey_challenges WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.conn())
        .await?;
        let Some(mut c) = row.as_ref().map(challenge_from_row).transpose()? else {
            return Ok(None);
        };
        if done.rows_affected() > 0 {
            c.used_at = None;
        }
        Ok(Some(c))
    }
}
