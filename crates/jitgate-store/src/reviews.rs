//! Post-session reviews: one row per (grant, reason), opened when a grant needs a human to
//! look at what happened (break-glass, legacy assets), completed by someone other than the
//! subject. The rules for who may complete one live in the server; this only stores them.

use crate::codec::{from_json, from_ms, limit, ms, opt_from_ms, to_json, Arg, Sql};
use crate::page::After;
use crate::{Result, StoreError, Tx};
use jitgate_core::Timestamp;
use sqlx::any::AnyRow;
use sqlx::Row;

/// One review. `reason` and `outcome` are kept as text (`break_glass`, `legacy_asset`;
/// `ok`, `finding`): the server owns their meaning.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewRecord {
    pub grant_id: String,
    pub request_id: String,
    pub subject: String,
    pub reason: String,
    /// Why it was opened, in the opener's terms (limitation, compensating controls, ...).
    pub detail: serde_json::Value,
    pub opened_at: Timestamp,
    pub due_at: Timestamp,
    /// The "review due" notice has been sent.
    pub overdue_notified: bool,
    pub reviewer: Option<String>,
    pub outcome: Option<String>,
    pub note: Option<String>,
    pub completed_at: Option<Timestamp>,
}

impl ReviewRecord {
    pub fn is_open(&self) -> bool {
        self.completed_at.is_none()
    }
}

/// Which reviews to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewState {
    /// Not completed (overdue ones included).
    Open,
    /// Not completed and past their due time at the given moment.
    Overdue(Timestamp),
    /// Completed.
    Done,
}

/// Filter of [`Tx::list_reviews`]; newest first.
#[derive(Debug, Clone)]
pub struct ReviewFilter {
    pub state: Option<ReviewState>,
    pub grant_id: Option<String>,
    /// Continue after this review, `(grant_id, reason)` (the last of the previous page).
    pub after: Option<(String, String)>,
    /// At most this many (non-positive: the default, 200).
    pub limit: i64,
}

impl Default for ReviewFilter {
    fn default() -> Self {
        ReviewFilter {
            state: None,
            grant_id: None,
            after: None,
            limit: 200,
        }
    }
}

const COLUMNS: &str = "grant_id, request_id, subject, reason, detail, opened_at, due_at, \
    overdue_notified, reviewer, outcome, note, completed_at";

fn from_row(row: &AnyRow) -> Result<ReviewRecord> {
    let grant_id: String = row.try_get("grant_id")?;
    let reason: String = row.try_get("reason")?;
    let at = format!("reviews grant_id={grant_id} reason={reason}");
    Ok(ReviewRecord {
        request_id: row.try_get("request_id")?,
        subject: row.try_get("subject")?,
        detail: from_json(
            &row.try_get::<String, _>("detail")?,
            &format!("{at} detail"),
        )?,
        opened_at: from_ms(row.try_get("opened_at")?, &format!("{at} opened_at"))?,
        due_at: from_ms(row.try_get("due_at")?, &format!("{at} due_at"))?,
        overdue_notified: row.try_get::<i64, _>("overdue_notified")? != 0,
        reviewer: row.try_get("reviewer")?,
        outcome: row.try_get("outcome")?,
        note: row.try_get("note")?,
        completed_at: opt_from_ms(row.try_get("completed_at")?, &format!("{at} completed_at"))?,
        grant_id,
        reason,
    })
}

impl Tx {
    /// Open a review unless one for the same grant and reason exists. Returns `true` when
    /// it was opened now, `false` when it already existed (opening is idempotent).
    /// [`StoreError::NotFound`] if the grant does not exist.
    pub async fn open_review(&mut self, r: &ReviewRecord) -> Result<bool> {
        self.need_write("open_review")?;
        // Checked first rather than left to the foreign key: a failed statement would abort
        // the caller's whole transaction on PostgreSQL.
        let grant = sqlx::query("SELECT id FROM grants WHERE id = $1")
            .bind(&r.grant_id)
            .fetch_optional(self.conn())
            .await?;
        if grant.is_none() {
            return Err(StoreError::not_found("grant", &r.grant_id));
        }
        let result = sqlx::query(&format!(
            "INSERT INTO reviews ({COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING"
        ))
        .bind(&r.grant_id)
        .bind(&r.request_id)
        .bind(&r.subject)
        .bind(&r.reason)
        .bind(to_json(&r.detail, "review detail")?)
        .bind(ms(r.opened_at))
        .bind(ms(r.due_at))
        .bind(i64::from(r.overdue_notified))
        .bind(r.reviewer.clone())
        .bind(r.outcome.clone())
        .bind(r.note.clone())
        .bind(r.completed_at.map(ms))
        .execute(self.conn())
        .await;
        match result.map_err(StoreError::from) {
            Err(e) if e.is_foreign_key_violation() => {
                Err(StoreError::not_found("grant", &r.grant_id))
            }
            Err(e) => Err(e),
            Ok(done) => Ok(done.rows_affected() > 0),
        }
    }

    pub async fn get_review(
        &mut self,
        grant_id: &str,
        reason: &str,
    ) -> Result<Option<ReviewRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM reviews WHERE grant_id = $1 AND reason = $2"
        ))
        .bind(grant_id)
        .bind(reason)
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Newest first.
    pub async fn list_reviews(&mut self, f: &ReviewFilter) -> Result<Vec<ReviewRecord>> {
        let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM reviews WHERE 1 = 1"));
        match f.state {
            Some(ReviewState::Open) => {
                sql.push(" AND completed_at IS NULL");
            }
            Some(ReviewState::Overdue(now)) => {
                let p = sql.arg(Arg::Int(ms(now)));
                sql.push(&format!(" AND completed_at IS NULL AND due_at <= {p}"));
            }
            Some(ReviewState::Done) => {
                sql.push(" AND completed_at IS NOT NULL");
            }
            None => {}
        }
        if let Some(g) = &f.grant_id {
            let p = sql.arg(Arg::Text(g.clone()));
            sql.push(&format!(" AND grant_id = {p}"));
        }
        if let Some((grant, reason)) = &f.after {
            let row = vec![
                ("grant_id", Arg::Text(grant.clone())),
                ("reason", Arg::Text(reason.clone())),
            ];
            self.continue_after(
                &mut sql,
                After {
                    table: "reviews",
                    what: "review",
                    order: "opened_at, pos",
                    cmp: "<",
                    row,
                },
            )
            .await?;
        }
        let p = sql.arg(Arg::Int(limit(f.limit, 200)));
        sql.push(&format!(" ORDER BY opened_at DESC, pos DESC LIMIT {p}"));
        let rows = sql.query().fetch_all(self.conn()).await?;
        rows.iter().map(from_row).collect()
    }

    /// Open reviews past their due time whose "review due" notice has not been sent yet,
    /// earliest due first.
    pub async fn reviews_overdue_unnotified(
        &mut self,
        now: Timestamp,
    ) -> Result<Vec<ReviewRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM reviews \
             WHERE completed_at IS NULL AND overdue_notified = 0 AND due_at <= $1 \
             ORDER BY due_at, pos"
        ))
        .bind(ms(now))
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Remember that the "review due" notice of this review went out (it is sent once).
    pub async fn mark_review_overdue_notified(
        &mut self,
        grant_id: &str,
        reason: &str,
    ) -> Result<()> {
        self.need_write("mark_review_overdue_notified")?;
        let done = sqlx::query(
            "UPDATE reviews SET overdue_notified = 1 WHERE grant_id = $1 AND reason = $2",
        )
        .bind(grant_id)
        .bind(reason)
        .execute(self.conn())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(
                "review",
                &format!("{grant_id}/{reason}"),
            ));
        }
        Ok(())
    }

    /// Record the outcome of an open review. [`StoreError::Conflict`] if it was completed
    /// already, [`StoreError::NotFound`] if there is no such review.
    pub async fn complete_review(
        &mut self,
        grant_id: &str,
        reason: &str,
        reviewer: &str,
        outcome: &str,
        note: &str,
        at: Timestamp,
    ) -> Result<()> {
        self.need_write("complete_review")?;
        let done = sqlx::query(
            "UPDATE reviews SET reviewer = $1, outcome = $2, note = $3, completed_at = $4 \
             WHERE grant_id = $5 AND reason = $6 AND completed_at IS NULL",
        )
        .bind(reviewer)
        .bind(outcome)
        .bind(note)
        .bind(ms(at))
        .bind(grant_id)
        .bind(reason)
        .execute(self.conn())
        .await?;
        if done.rows_affected() > 0 {
            return Ok(());
        }
        match self.get_review(grant_id, reason).await? {
            Some(r) => Err(StoreError::Conflict(format!(
                "the {reason} review of grant {grant_id} was completed already by {}",
                r.reviewer.unwrap_or_default()
            ))),
            None => Err(StoreError::not_found(
                "review",
                &format!("{grant_id}/{reason}"),
            )),
        }
    }
}
