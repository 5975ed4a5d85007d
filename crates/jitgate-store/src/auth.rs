//! Authentication material and settings. Identity ids are plain TEXT without foreign keys:
//! identities come from the inventory file and may be reloaded, and credentials of a removed
//! identity must stay refusable (the server checks the identity on every use).

use crate::codec::{flag, from_json, from_ms, ms, Arg, Sql};
use crate::page::After;
use crate::{Result, Store, StoreError, Tx};
use jitgate_core::payload::AuthMethod;
use jitgate_core::{Identity, Timestamp};
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpRecord {
    pub secret_b32: String,
    /// The identity proved possession with a first code; until then it is not used.
    pub confirmed: bool,
    /// The last TOTP time step accepted; codes of this step or older are replays.
    pub last_step: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: String,
    pub identity: String,
    pub name: String,
    /// Lowercase hex SHA-256 of the key; the key itself is never stored.
    pub key_hash: String,
    pub created_at: Timestamp,
    pub revoked: bool,
    /// Who minted the key (`None` for keys minted before minters were recorded).
    pub minted_by: Option<String>,
    /// When the key stops working (`None`: minted before expiries existed).
    pub expires_at: Option<Timestamp>,
}

const API_KEY_COLUMNS: &str =
    "id, identity, name, key_hash, created_at, revoked, minted_by, expires_at";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Lowercase hex SHA-256 of the session token.
    pub token_hash: String,
    pub identity: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// How the session was opened (password sign-in, a federated token, SSO).
    pub method: AuthMethod,
    /// Roles added to this session only (an SSO sign-in's groups); empty otherwise.
    pub roles: Vec<String>,
}

fn api_key_from_row(row: &AnyRow) -> Result<ApiKeyRecord> {
    let id: String = row.try_get("id")?;
    Ok(ApiKeyRecord {
        identity: row.try_get("identity")?,
        name: row.try_get("name")?,
        key_hash: row.try_get("key_hash")?,
        created_at: from_ms(
            row.try_get("created_at")?,
            &format!("api_keys id={id} created_at"),
        )?,
        revoked: row.try_get::<i64, _>("revoked")? != 0,
        minted_by: row.try_get("minted_by")?,
        expires_at: crate::codec::opt_from_ms(
            row.try_get("expires_at")?,
            &format!("api_keys id={id} expires_at"),
        )?,
        id,
    })
}

fn session_from_row(row: &AnyRow) -> Result<SessionRecord> {
    let token_hash: String = row.try_get("token_hash")?;
    // The token hash is a bearer secret's digest; name the row by its prefix only.
    let at = format!(
        "sessions token_hash={}...",
        token_hash.get(..8).unwrap_or("")
    );
    Ok(SessionRecord {
        identity: row.try_get("identity")?,
        created_at: from_ms(row.try_get("created_at")?, &format!("{at} created_at"))?,
        expires_at: from_ms(row.try_get("expires_at")?, &format!("{at} expires_at"))?,
        method: method_of(row.try_get("method")?, &at)?,
        roles: roles_of(&row.try_get::<String, _>("roles")?),
        token_hash,
    })
}

/// Session roles are stored comma-separated (role names never contain a comma: the
/// server's configuration refuses them).
fn roles_of(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect()
}

fn method_of(text: String, at: &str) -> Result<AuthMethod> {
    AuthMethod::parse(&text)
        .ok_or_else(|| StoreError::Corrupt(format!("{at} method {text:?} is not a sign-in method")))
}

impl Tx {
    /// Set (or replace) the PHC-format password hash of an identity.
    pub async fn set_password(&mut self, identity: &str, phc_hash: &str) -> Result<()> {
        self.need_write("set_password")?;
        sqlx::query(
            "INSERT INTO passwords (identity, phc) VALUES ($1, $2) \
             ON CONFLICT (identity) DO UPDATE SET phc = excluded.phc",
        )
        .bind(identity)
        .bind(phc_hash)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn get_password(&mut self, identity: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT phc FROM passwords WHERE identity = $1")
            .bind(identity)
            .fetch_optional(self.conn())
            .await?;
        Ok(row.map(|r| r.try_get("phc")).transpose()?)
    }

    /// Set (or replace) an identity's TOTP secret. The last used step is kept across
    /// re-enrolment: time steps only grow, so it still marks every older code as used.
    pub async fn set_totp(
        &mut self,
        identity: &str,
        secret_b32: &str,
        confirmed: bool,
    ) -> Result<()> {
        self.need_write("set_totp")?;
        sqlx::query(
            "INSERT INTO totp (identity, secret_b32, confirmed, last_step) VALUES ($1, $2, $3, 0) \
             ON CONFLICT (identity) DO UPDATE SET secret_b32 = excluded.secret_b32, \
             confirmed = excluded.confirmed",
        )
        .bind(identity)
        .bind(secret_b32)
        .bind(flag(confirmed))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn get_totp(&mut self, identity: &str) -> Result<Option<TotpRecord>> {
        let row =
            sqlx::query("SELECT secret_b32, confirmed, last_step FROM totp WHERE identity = $1")
                .bind(identity)
                .fetch_optional(self.conn())
                .await?;
        match row {
            Some(row) => Ok(Some(TotpRecord {
                secret_b32: row.try_get("secret_b32")?,
                confirmed: row.try_get::<i64, _>("confirmed")? != 0,
                last_step: row.try_get("last_step")?,
            })),
            None => Ok(None),
        }
    }

    /// Record that TOTP time step `step` was used. Returns `false`, changing nothing, if
    /// `step` is not newer than the last used one (a replayed or older code). One
    /// conditional UPDATE, so two concurrent logins with the same code cannot both succeed.
    /// [`StoreError::NotFound`] if the identity has no TOTP.
    pub async fn use_totp_step(&mut self, identity: &str, step: i64) -> Result<bool> {
        self.need_write("use_totp_step")?;
        let done =
            sqlx::query("UPDATE totp SET last_step = $2 WHERE identity = $1 AND last_step < $2")
                .bind(identity)
                .bind(step)
                .execute(self.conn())
                .await?;
        if done.rows_affected() > 0 {
            return Ok(true);
        }
        match self.get_totp(identity).await? {
            Some(_) => Ok(false),
            None => Err(StoreError::not_found(
                "TOTP enrolment of identity",
                identity,
            )),
        }
    }

    /// Remove an identity's TOTP enrolment; returns whether there was one.
    pub async fn delete_totp(&mut self, identity: &str) -> Result<bool> {
        self.need_write("delete_totp")?;
        let done = sqlx::query("DELETE FROM totp WHERE identity = $1")
            .bind(identity)
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// [`StoreError::Conflict`] if the id or the key hash is taken.
    pub async fn insert_api_key(&mut self, k: &ApiKeyRecord) -> Result<()> {
        self.need_write("insert_api_key")?;
        let done = sqlx::query(
            "INSERT INTO api_keys (id, identity, name, key_hash, created_at, revoked, minted_by, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind(&k.id)
        .bind(&k.identity)
        .bind(&k.name)
        .bind(&k.key_hash)
        .bind(ms(k.created_at))
        .bind(flag(k.revoked))
        .bind(k.minted_by.clone())
        .bind(k.expires_at.map(ms))
        .execute(self.conn())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "API key {} (or its hash) already exists",
                k.id
            )));
        }
        Ok(())
    }

    /// The key with this hash, revoked or not (the caller refuses revoked keys).
    pub async fn find_api_key(&mut self, key_hash: &str) -> Result<Option<ApiKeyRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE key_hash = $1"
        ))
        .bind(key_hash)
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(api_key_from_row).transpose()
    }

    /// An identity's keys, oldest first, revoked ones included.
    pub async fn list_api_keys(&mut self, identity: &str) -> Result<Vec<ApiKeyRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE identity = $1 ORDER BY created_at, id"
        ))
        .bind(identity)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(api_key_from_row).collect()
    }

    /// Keys (of `identity`, or all), oldest first, revoked ones included: at most `limit`,
    /// after the key `after` (the last of the previous page).
    pub async fn list_api_keys_after(
        &mut self,
        identity: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ApiKeyRecord>> {
        let mut sql = Sql::new(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE 1 = 1"
        ));
        if let Some(id) = identity {
            let p = sql.arg(Arg::Text(id.to_string()));
            sql.push(&format!(" AND identity = {p}"));
        }
        if let Some(id) = after {
            let row = vec![("id", Arg::Text(id.to_string()))];
            self.continue_after(
                &mut sql,
                After {
                    table: "api_keys",
                    what: "API key",
                    order: "created_at, id",
                    cmp: ">",
                    row,
                },
            )
            .await?;
        }
        let p = sql.arg(Arg::Int(crate::codec::limit(limit, 200)));
        sql.push(&format!(" ORDER BY created_at, id LIMIT {p}"));
        let rows = sql.query().fetch_all(self.conn()).await?;
        rows.iter().map(api_key_from_row).collect()
    }

    /// One key by id, revoked or not.
    pub async fn get_api_key(&mut self, id: &str) -> Result<Option<ApiKeyRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(api_key_from_row).transpose()
    }

    /// Mark a key revoked (it stays listed). [`StoreError::NotFound`] if absent.
    pub async fn revoke_api_key(&mut self, id: &str) -> Result<()> {
        self.need_write("revoke_api_key")?;
        let done = sqlx::query("UPDATE api_keys SET revoked = 1 WHERE id = $1")
            .bind(id)
            .execute(self.conn())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("API key", id));
        }
        Ok(())
    }

    /// [`StoreError::Conflict`] if the token hash is taken.
    pub async fn insert_session(&mut self, s: &SessionRecord) -> Result<()> {
        self.need_write("insert_session")?;
        let done = sqlx::query(
            "INSERT INTO sessions (token_hash, identity, created_at, expires_at, method, roles) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(&s.token_hash)
        .bind(&s.identity)
        .bind(ms(s.created_at))
        .bind(ms(s.expires_at))
        .bind(s.method.as_str())
        .bind(s.roles.join(","))
        .execute(self.conn())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(
                "a session with this token already exists".into(),
            ));
        }
        Ok(())
    }

    /// The session as stored, expired or not: the caller compares `expires_at` with its
    /// clock (the store has no notion of "now").
    pub async fn get_session(&mut self, token_hash: &str) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(
            "SELECT token_hash, identity, created_at, expires_at, method, roles FROM sessions \
             WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    /// Log out. Deleting an unknown session is not an error (logging out twice is fine).
    pub async fn delete_session(&mut self, token_hash: &str) -> Result<()> {
        self.need_write("delete_session")?;
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Move a session's expiry (the web console's idle timeout slides it forward while the
    /// person is active, never past the session's absolute lifetime — the caller's rule).
    /// Returns whether the session exists.
    pub async fn set_session_expiry(
        &mut self,
        token_hash: &str,
        expires_at: Timestamp,
    ) -> Result<bool> {
        self.need_write("set_session_expiry")?;
        let done = sqlx::query("UPDATE sessions SET expires_at = $1 WHERE token_hash = $2")
            .bind(ms(expires_at))
            .bind(token_hash)
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Delete sessions with `expires_at <= now`; returns how many.
    pub async fn delete_expired_sessions(&mut self, now: Timestamp) -> Result<u64> {
        self.need_write("delete_expired_sessions")?;
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(ms(now))
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn get_setting(&mut self, key: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_optional(self.conn())
            .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    pub async fn delete_setting(&mut self, key: &str) -> Result<()> {
        self.need_write("delete_setting")?;
        sqlx::query("DELETE FROM settings WHERE key = $1")
            .bind(key)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    pub async fn set_setting(&mut self, key: &str, value: &str) -> Result<()> {
        self.need_write("set_setting")?;
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(self.conn())
        .await?;
        Ok(())
    }
}

/// What a bearer token (session token or API key) resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bearer {
    Session {
        identity: Identity,
        expires_at: Timestamp,
        method: AuthMethod,
        /// When the session was opened (a sign-in's age: removing a passkey needs a fresh one).
        created_at: Timestamp,
        /// Roles added to this session only (SSO groups).
        roles: Vec<String>,
    },
    ApiKey {
        identity: Identity,
        key_id: String,
        revoked: bool,
        expires_at: Option<Timestamp>,
        /// The minter's identity as stored now (`None`: not recorded, or no longer in the
        /// inventory — the caller tells the two apart by `minted_by`).
        minted_by: Option<String>,
        minter: Option<Box<Identity>>,
    },
}

impl Store {
    /// Resolve a bearer token's hash to its identity in one statement on the pool, without a
    /// transaction: this runs on every API call, so it must cost one round trip, not four.
    pub async fn bearer(&self, token_hash: &str) -> Result<Option<Bearer>> {
        let row = sqlx::query(
            "SELECT 's' AS kind, s.expires_at AS expires_at, 0 AS revoked, i.doc AS doc, \
             NULL AS key_id, NULL AS minted_by, NULL AS minter_doc, s.method AS method, \
             s.created_at AS created_at, s.roles AS roles \
             FROM sessions s JOIN identities i ON i.id = s.identity WHERE s.token_hash = $1 \
             UNION ALL \
             SELECT 'k' AS kind, k.expires_at AS expires_at, k.revoked AS revoked, i.doc AS doc, \
             k.id AS key_id, k.minted_by AS minted_by, m.doc AS minter_doc, NULL AS method, \
             k.created_at AS created_at, NULL AS roles \
             FROM api_keys k JOIN identities i ON i.id = k.identity \
             LEFT JOIN identities m ON m.id = k.minted_by WHERE k.key_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let kind: String = row.try_get("kind")?;
        let doc: String = row.try_get("doc")?;
        let identity: Identity = from_json(&doc, "identities (bearer lookup)")?;
        Ok(Some(if kind == "s" {
            let expires: i64 = row.try_get("expires_at")?;
            let method: Option<String> = row.try_get("method")?;
            Bearer::Session {
                identity,
                expires_at: from_ms(expires, "sessions.expires_at")?,
                method: method_of(method.unwrap_or_default(), "sessions (bearer lookup)")?,
                created_at: from_ms(row.try_get("created_at")?, "sessions.created_at")?,
                roles: roles_of(
                    &row.try_get::<Option<String>, _>("roles")?
                        .unwrap_or_default(),
                ),
            }
        } else {
            let revoked: i64 = row.try_get("revoked")?;
            let expires: Option<i64> = row.try_get("expires_at")?;
            let minter_doc: Option<String> = row.try_get("minter_doc")?;
            Bearer::ApiKey {
                identity,
                key_id: row
                    .try_get::<Option<String>, _>("key_id")?
                    .unwrap_or_default(),
                revoked: revoked != 0,
                expires_at: crate::codec::opt_from_ms(expires, "api_keys.expires_at")?,
                minted_by: row.try_get("minted_by")?,
                minter: minter_doc
                    .map(|d| from_json(&d, "identities (key minter)").map(Box::new))
                    .transpose()?,
            }
        }))
    }
}
