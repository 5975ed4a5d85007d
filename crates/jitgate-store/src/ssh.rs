//! OpenSSH certificates issued under grants: what was certified, for which grant, until
//! when. The rules (who may get one, for how long, whether a key may be certified again)
//! are `jitgate_core::ssh`'s; this only keeps the record.

use crate::codec::{from_ms, ms};
use crate::{Result, Tx};
use jitgate_core::Timestamp;
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshCertificateRecord {
    /// Decimal text of the certificate's 64-bit serial.
    pub serial: String,
    pub grant_id: String,
    /// `user` or `target`.
    pub kind: String,
    pub asset: String,
    pub principal: String,
    /// `SHA256:<base64>` of the certified public key.
    pub key_fingerprint: String,
    pub valid_after: Timestamp,
    pub valid_before: Timestamp,
    pub issued_at: Timestamp,
}

const COLUMNS: &str = "serial, grant_id, kind, asset, principal, key_fingerprint, \
                       valid_after, valid_before, issued_at";

fn from_row(row: &AnyRow) -> Result<SshCertificateRecord> {
    let serial: String = row.try_get("serial")?;
    let at = format!("ssh_certificates serial={serial}");
    Ok(SshCertificateRecord {
        grant_id: row.try_get("grant_id")?,
        kind: row.try_get("kind")?,
        asset: row.try_get("asset")?,
        principal: row.try_get("principal")?,
        key_fingerprint: row.try_get("key_fingerprint")?,
        valid_after: from_ms(row.try_get("valid_after")?, &format!("{at} valid_after"))?,
        valid_before: from_ms(row.try_get("valid_before")?, &format!("{at} valid_before"))?,
        issued_at: from_ms(row.try_get("issued_at")?, &format!("{at} issued_at"))?,
        serial,
    })
}

impl Tx {
    /// Record an issued certificate (a serial already recorded is a `Conflict`).
    pub async fn insert_ssh_certificate(&mut self, c: &SshCertificateRecord) -> Result<()> {
        self.need_write("insert_ssh_certificate")?;
        sqlx::query(&format!(
            "INSERT INTO ssh_certificates ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&c.serial)
        .bind(&c.grant_id)
        .bind(&c.kind)
        .bind(&c.asset)
        .bind(&c.principal)
        .bind(&c.key_fingerprint)
        .bind(ms(c.valid_after))
        .bind(ms(c.valid_before))
        .bind(ms(c.issued_at))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Every certificate issued for the public key with this fingerprint, oldest first.
    pub async fn ssh_certificates_for_key(
        &mut self,
        key_fingerprint: &str,
    ) -> Result<Vec<SshCertificateRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM ssh_certificates WHERE key_fingerprint = $1 \
             ORDER BY issued_at, serial"
        ))
        .bind(key_fingerprint)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Every certificate issued under a grant, oldest first.
    pub async fn ssh_certificates_for_grant(
        &mut self,
        grant_id: &str,
    ) -> Result<Vec<SshCertificateRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM ssh_certificates WHERE grant_id = $1 ORDER BY issued_at, serial"
        ))
        .bind(grant_id)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(from_row).collect()
    }
}
