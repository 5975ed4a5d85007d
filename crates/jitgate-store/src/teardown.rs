//! Teardown records: one row per ended grant with the verdict of its verification, the
//! report of every check, and when to try again (a failed teardown is retried until it
//! succeeds). The checks themselves run in the server; this only keeps their outcome.

use crate::codec::{from_json, from_ms, ms, opt_from_ms, to_json, Arg, Sql};
use crate::page::After;
use crate::{Result, Tx};
use jitgate_core::Timestamp;
use sqlx::any::AnyRow;
use sqlx::Row;

/// The stored state of one grant's teardown.
#[derive(Debug, Clone, PartialEq)]
pub struct TeardownRecord {
    pub grant_id: String,
    /// `pending`, `verified`, `partial` or `failed`.
    pub verdict: String,
    /// Every check with its evidence (the server's report, as JSON).
    pub report: serde_json::Value,
    pub attempts: i64,
    /// When to run the checks again; `None` once the verdict is final.
    pub next_attempt_at: Option<Timestamp>,
    pub started_at: Timestamp,
    pub updated_at: Timestamp,
}

const COLUMNS: &str =
    "grant_id, verdict, report, attempts, next_attempt_at, started_at, updated_at";

fn from_row(row: &AnyRow) -> Result<TeardownRecord> {
    let grant_id: String = row.try_get("grant_id")?;
    let at = format!("teardowns grant_id={grant_id}");
    Ok(TeardownRecord {
        verdict: row.try_get("verdict")?,
        report: from_json(
            &row.try_get::<String, _>("report")?,
            &format!("{at} report"),
        )?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: opt_from_ms(
            row.try_get("next_attempt_at")?,
            &format!("{at} next_attempt_at"),
        )?,
        started_at: from_ms(row.try_get("started_at")?, &format!("{at} started_at"))?,
        updated_at: from_ms(row.try_get("updated_at")?, &format!("{at} updated_at"))?,
        grant_id,
    })
}

impl Tx {
    /// Insert or replace a grant's teardown record.
    pub async fn put_teardown(&mut self, t: &TeardownRecord) -> Result<()> {
        self.need_write("put_teardown")?;
        let report = to_json(&t.report, "teardown report")?;
        sqlx::query(&format!(
            "INSERT INTO teardowns ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (grant_id) DO UPDATE SET verdict = excluded.verdict, \
             report = excluded.report, attempts = excluded.attempts, \
             next_attempt_at = excluded.next_attempt_at, updated_at = excluded.updated_at"
        ))
        .bind(&t.grant_id)
        .bind(&t.verdict)
        .bind(report)
        .bind(t.attempts)
        .bind(t.next_attempt_at.map(ms))
        .bind(ms(t.started_at))
        .bind(ms(t.updated_at))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn get_teardown(&mut self, grant_id: &str) -> Result<Option<TeardownRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM teardowns WHERE grant_id = $1"
        ))
        .bind(grant_id)
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Teardowns whose verdict is `verdict`, oldest first.
    pub async fn list_teardowns(
        &mut self,
        verdict: &str,
        limit: i64,
    ) -> Result<Vec<TeardownRecord>> {
        self.list_teardowns_after(verdict, None, limit).await
    }

    /// [`Tx::list_teardowns`] continued after the teardown of grant `after`.
    pub async fn list_teardowns_after(
        &mut self,
        verdict: &str,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<TeardownRecord>> {
        let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM teardowns WHERE 1 = 1"));
        let p = sql.arg(Arg::Text(verdict.to_string()));
        sql.push(&format!(" AND verdict = {p}"));
        if let Some(id) = after {
            let row = vec![("grant_id", Arg::Text(id.to_string()))];
            self.continue_after(
                &mut sql,
                After {
                    table: "teardowns",
                    what: "teardown",
                    order: "started_at, grant_id",
                    cmp: ">",
                    row,
                },
            )
            .await?;
        }
        let p = sql.arg(Arg::Int(limit.clamp(1, 10_000)));
        sql.push(&format!(" ORDER BY started_at, grant_id LIMIT {p}"));
        let rows = sql.query().fetch_all(self.conn()).await?;
        rows.iter().map(from_row).collect()
    }

    /// Ended grants whose teardown is due: never started, or not final and due again.
    pub async fn teardowns_due(&mut self, now: Timestamp) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT g.id AS id FROM grants g LEFT JOIN teardowns t ON t.grant_id = g.id \
             WHERE g.state = 'ending' AND (t.grant_id IS NULL OR t.next_attempt_at <= $1) \
             ORDER BY g.ended_at, g.pos",
        )
        .bind(ms(now))
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("id").map_err(Into::into))
            .collect()
    }

    /// The earliest retry of a failed teardown, if any.
    pub async fn next_teardown_retry(&mut self) -> Result<Option<Timestamp>> {
        let row = sqlx::query(
            "SELECT MIN(next_attempt_at) AS t FROM teardowns WHERE next_attempt_at IS NOT NULL",
        )
        .fetch_one(self.conn())
        .await?;
        opt_from_ms(row.try_get("t")?, "next teardown retry")
    }

    /// Grants that ended (state `ending` or `closed`) and whose credential could still be
    /// valid at `now` (expiry in the future), for the gateways fronting `assets`: what a
    /// gateway must keep refusing; and every grant still `ending`, expired or not: its
    /// teardown waits for the gateways' acknowledgement, which a gateway that reconnects
    /// (to another node, its own having died with an acknowledgement not yet shared) must
    /// give again. Returns (grant id, expires_at, scope asset ids).
    pub async fn ended_unexpired_grants(
        &mut self,
        now: Timestamp,
    ) -> Result<Vec<(String, Timestamp, jitgate_core::scope::Scope)>> {
        let rows = sqlx::query(
            "SELECT id, expires_at, scope FROM grants WHERE state = 'ending' \
             OR (state = 'closed' AND expires_at > $1) ORDER BY expires_at",
        )
        .bind(ms(now))
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                let at = format!("grants id={id}");
                Ok((
                    id.clone(),
                    from_ms(r.try_get("expires_at")?, &format!("{at} expires_at"))?,
                    from_json(&r.try_get::<String, _>("scope")?, &format!("{at} scope"))?,
                ))
            })
            .collect()
    }
}
