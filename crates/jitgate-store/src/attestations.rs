//! Post-session attestations: one row per grant whose policy required one (written when the
//! grant is issued) or that was attested anyway. Once attested a row never changes. Who may
//! attest and when one is missing are the core's rules (`jitgate_core::attestation`); this
//! stores them and answers "which required ones are still missing".

use crate::codec::{flag, from_json, limit, ms, opt_from_ms, to_json, Arg, Sql};
use crate::{Result, StoreError, Tx};
use jitgate_core::Timestamp;
use sqlx::any::AnyRow;
use sqlx::Row;

/// One grant's attestation (or the obligation to give one).
#[derive(Debug, Clone, PartialEq)]
pub struct AttestationRecord {
    pub grant_id: String,
    pub request_id: String,
    pub subject: String,
    /// The policy required it.
    pub required: bool,
    /// Who attested (the subject, or an owner of a workload subject); `None` until then.
    pub attester: Option<String>,
    pub task_done: Option<bool>,
    pub changes: Vec<String>,
    pub note: Option<String>,
    pub attested_at: Option<Timestamp>,
}

/// Filter of [`Tx::list_attestations`]; newest grant first.
#[derive(Debug, Clone, Default)]
pub struct AttestationFilter {
    /// `Some(cutoff)`: only required, not given, of grants ended at or before `cutoff` (the
    /// grace period is the caller's); `None`: only attestations given.
    pub missing_before: Option<Timestamp>,
    /// Only grants that ended in `[from, to)`.
    pub ended_in: Option<(Timestamp, Timestamp)>,
    /// Continue after the attestation of this grant.
    pub after: Option<String>,
    /// At most this many (non-positive: the default, 200).
    pub limit: i64,
}

const COLUMNS: &str = "a.grant_id, a.request_id, a.subject, a.required, a.attester, a.task_done, \
    a.changes, a.note, a.attested_at";

fn from_row(row: &AnyRow) -> Result<AttestationRecord> {
    let grant_id: String = row.try_get("grant_id")?;
    let at = format!("attestations grant_id={grant_id}");
    let changes: Option<String> = row.try_get("changes")?;
    Ok(AttestationRecord {
        request_id: row.try_get("request_id")?,
        subject: row.try_get("subject")?,
        required: row.try_get::<i64, _>("required")? != 0,
        attester: row.try_get("attester")?,
        task_done: row.try_get::<Option<i64>, _>("task_done")?.map(|v| v != 0),
        changes: match changes {
            Some(text) => from_json(&text, &format!("{at} changes"))?,
            None => Vec::new(),
        },
        note: row.try_get("note")?,
        attested_at: opt_from_ms(row.try_get("attested_at")?, &format!("{at} attested_at"))?,
        grant_id,
    })
}

impl Tx {
    /// Record that grant `grant_id` must be attested (its policy said so). Idempotent.
    pub async fn require_attestation(
        &mut self,
        grant_id: &str,
        request_id: &str,
        subject: &str,
    ) -> Result<()> {
        self.need_write("require_attestation")?;
        sqlx::query(
            "INSERT INTO attestations (grant_id, request_id, subject, required) \
             VALUES ($1, $2, $3, 1) ON CONFLICT DO NOTHING",
        )
        .bind(grant_id)
        .bind(request_id)
        .bind(subject)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn get_attestation(&mut self, grant_id: &str) -> Result<Option<AttestationRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM attestations a WHERE a.grant_id = $1"
        ))
        .bind(grant_id)
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Record an attestation (`r.attester`, `task_done`, `attested_at` set). Fills the
    /// required row, or adds one when none was required. [`StoreError::Conflict`] if the
    /// grant was attested already.
    pub async fn record_attestation(&mut self, r: &AttestationRecord) -> Result<()> {
        self.need_write("record_attestation")?;
        let (Some(attester), Some(task_done), Some(at)) = (&r.attester, r.task_done, r.attested_at)
        else {
            return Err(StoreError::Encode(
                "an attestation needs its attester, task_done and time".into(),
            ));
        };
        let changes = to_json(&r.changes, "attestation changes")?;
        let note = r.note.clone().unwrap_or_default();
        let done = sqlx::query(
            "UPDATE attestations SET attester = $1, task_done = $2, changes = $3, note = $4, \
             attested_at = $5 WHERE grant_id = $6 AND attested_at IS NULL",
        )
        .bind(attester)
        .bind(flag(task_done))
        .bind(&changes)
        .bind(&note)
        .bind(ms(at))
        .bind(&r.grant_id)
        .execute(self.conn())
        .await?;
        if done.rows_affected() > 0 {
            return Ok(());
        }
        if self.get_attestation(&r.grant_id).await?.is_some() {
            return Err(StoreError::Conflict(format!(
                "grant {} has been attested already",
                r.grant_id
            )));
        }
        sqlx::query(
            "INSERT INTO attestations (grant_id, request_id, subject, required, attester, \
             task_done, changes, note, attested_at) VALUES ($1, $2, $3, 0, $4, $5, $6, $7, $8)",
        )
        .bind(&r.grant_id)
        .bind(&r.request_id)
        .bind(&r.subject)
        .bind(attester)
        .bind(flag(task_done))
        .bind(&changes)
        .bind(&note)
        .bind(ms(at))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Attestations given, or (with `missing_before`) required ones not given for grants
    /// ended by then; newest grant first.
    pub async fn list_attestations(
        &mut self,
        f: &AttestationFilter,
    ) -> Result<Vec<AttestationRecord>> {
        let mut sql = Sql::new(&format!(
            "SELECT {COLUMNS} FROM attestations a JOIN grants g ON g.id = a.grant_id WHERE 1 = 1"
        ));
        match f.missing_before {
            Some(cutoff) => {
                let p = sql.arg(Arg::Int(ms(cutoff)));
                sql.push(&format!(
                    " AND a.required = 1 AND a.attested_at IS NULL AND g.state <> 'active' \
                     AND g.ended_at IS NOT NULL AND g.ended_at <= {p}"
                ));
            }
            None => {
                sql.push(" AND a.attested_at IS NOT NULL");
            }
        }
        if let Some((from, to)) = f.ended_in {
            let (pf, pt) = (sql.arg(Arg::Int(ms(from))), sql.arg(Arg::Int(ms(to))));
            sql.push(&format!(
                " AND g.ended_at IS NOT NULL AND g.ended_at >= {pf} AND g.ended_at < {pt}"
            ));
        }
        if let Some(after) = &f.after {
            let pos = sqlx::query("SELECT pos FROM attestations WHERE grant_id = $1")
                .bind(after)
                .fetch_optional(self.conn())
                .await?;
            let Some(pos) = pos else {
                return Err(StoreError::UnknownCursor {
                    what: "attestation".into(),
                    id: after.clone(),
                });
            };
            let p = sql.arg(Arg::Int(pos.try_get::<i64, _>("pos")?));
            sql.push(&format!(" AND a.pos < {p}"));
        }
        let p = sql.arg(Arg::Int(limit(f.limit, 200)));
        sql.push(&format!(" ORDER BY a.pos DESC LIMIT {p}"));
        let rows = sql.query().fetch_all(self.conn()).await?;
        rows.iter().map(from_row).collect()
    }
}
