//! The notification outbox: one row per (notice, webhook), written in the same transaction
//! as the state change that caused it, delivered later by the server's delivery worker.
//!
//! Delivery is at-least-once. A worker *claims* due rows (moving `next_attempt_at` ahead by a
//! lease and counting the attempt) in a write transaction, sends them outside any
//! transaction, then marks each delivered or reschedules it with the error. Claims run under
//! the global write lock, so two server nodes never claim the same row; a node that dies
//! mid-send leaves the row to be retried when its lease runs out.

use crate::codec::{from_json, from_ms, limit, ms, opt_from_ms, to_json, Arg, Sql};
use crate::page::After;
use crate::{Result, StoreError, Tx};
use jitgate_core::Timestamp;
use sqlx::any::AnyRow;
use sqlx::Row;

/// One outbox row.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// Delivery id (`ntf-...`), sent as `X-Jitgate-Delivery`: receivers deduplicate on it.
    pub id: String,
    /// Name of the configured webhook it goes to.
    pub webhook: String,
    /// Notice kind, e.g. `grant.active`.
    pub kind: String,
    /// Format-neutral JSON envelope of the notice.
    pub payload: serde_json::Value,
    pub created_at: Timestamp,
    /// Attempts started so far (a claim counts as one).
    pub attempts: i64,
    /// When it is (next) due; while claimed, the end of the lease.
    pub next_attempt_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
    pub last_error: Option<String>,
}

/// Which notifications to list; newest first.
#[derive(Debug, Clone)]
pub struct NotificationFilter {
    /// `Some(true)`: delivered only; `Some(false)`: pending only.
    pub delivered: Option<bool>,
    pub webhook: Option<String>,
    /// Continue after this notification (the last of the previous page).
    pub after: Option<String>,
    /// At most this many (non-positive: the default, 200).
    pub limit: i64,
}

impl Default for NotificationFilter {
    fn default() -> Self {
        NotificationFilter {
            delivered: None,
            webhook: None,
            after: None,
            limit: 200,
        }
    }
}

const COLUMNS: &str = "id, webhook, kind, payload, created_at, attempts, next_attempt_at, \
    delivered_at, last_error";

fn from_row(row: &AnyRow) -> Result<Notification> {
    let id: String = row.try_get("id")?;
    let at = format!("notifications id={id}");
    Ok(Notification {
        webhook: row.try_get("webhook")?,
        kind: row.try_get("kind")?,
        payload: from_json(
            &row.try_get::<String, _>("payload")?,
            &format!("{at} payload"),
        )?,
        created_at: from_ms(row.try_get("created_at")?, &format!("{at} created_at"))?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: from_ms(
            row.try_get("next_attempt_at")?,
            &format!("{at} next_attempt_at"),
        )?,
        delivered_at: opt_from_ms(row.try_get("delivered_at")?, &format!("{at} delivered_at"))?,
        last_error: row.try_get("last_error")?,
        id,
    })
}

impl Tx {
    /// Add a notification to the outbox. [`StoreError::Conflict`] if the id is taken.
    pub async fn enqueue_notification(&mut self, n: &Notification) -> Result<()> {
        self.need_write("enqueue_notification")?;
        let done = sqlx::query(&format!(
            "INSERT INTO notifications ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT DO NOTHING"
        ))
        .bind(&n.id)
        .bind(&n.webhook)
        .bind(&n.kind)
        .bind(to_json(&n.payload, "notification payload")?)
        .bind(ms(n.created_at))
        .bind(n.attempts)
        .bind(ms(n.next_attempt_at))
        .bind(n.delivered_at.map(ms))
        .bind(n.last_error.clone())
        .execute(self.conn())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "notification {} already exists",
                n.id
            )));
        }
        Ok(())
    }

    /// Undelivered notifications due at `now`, oldest due first.
    pub async fn notifications_due(
        &mut self,
        now: Timestamp,
        max: i64,
    ) -> Result<Vec<Notification>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM notifications \
             WHERE delivered_at IS NULL AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, pos LIMIT $2"
        ))
        .bind(ms(now))
        .bind(limit(max, 100))
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Take up to `max` due notifications for delivery: each gets its attempt counted and is
    /// not due again before `lease_until` (if the sender never reports back, it is retried
    /// then). Returns the claimed rows as they are after the claim.
    pub async fn claim_notifications(
        &mut self,
        now: Timestamp,
        lease_until: Timestamp,
        max: i64,
    ) -> Result<Vec<Notification>> {
        self.need_write("claim_notifications")?;
        let mut due = self.notifications_due(now, max).await?;
        for n in &mut due {
            sqlx::query(
                "UPDATE notifications SET attempts = attempts + 1, next_attempt_at = $1 \
                 WHERE id = $2",
            )
            .bind(ms(lease_until))
            .bind(&n.id)
            .execute(self.conn())
            .await?;
            n.attempts += 1;
            n.next_attempt_at = lease_until;
        }
        Ok(due)
    }

    /// The receiver accepted it. Delivering twice is harmless (the first time is kept).
    pub async fn mark_notification_delivered(&mut self, id: &str, at: Timestamp) -> Result<()> {
        self.need_write("mark_notification_delivered")?;
        let done = sqlx::query(
            "UPDATE notifications SET delivered_at = COALESCE(delivered_at, $1), \
             last_error = NULL WHERE id = $2",
        )
        .bind(ms(at))
        .bind(id)
        .execute(self.conn())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("notification", id));
        }
        Ok(())
    }

    /// An attempt failed (or was abandoned at shutdown): try again at `next_attempt_at`,
    /// keeping the reason for operators. A delivered row is left alone.
    pub async fn reschedule_notification(
        &mut self,
        id: &str,
        next_attempt_at: Timestamp,
        error: &str,
    ) -> Result<()> {
        self.need_write("reschedule_notification")?;
        let done = sqlx::query(
            "UPDATE notifications SET next_attempt_at = $1, last_error = $2 \
             WHERE id = $3 AND delivered_at IS NULL",
        )
        .bind(ms(next_attempt_at))
        .bind(error)
        .bind(id)
        .execute(self.conn())
        .await?;
        if done.rows_affected() == 0 && self.get_notification(id).await?.is_none() {
            return Err(StoreError::not_found("notification", id));
        }
        Ok(())
    }

    pub async fn get_notification(&mut self, id: &str) -> Result<Option<Notification>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM notifications WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// When the next undelivered notification is due (may lie in the past); `None` when
    /// everything is delivered.
    pub async fn next_notification_at(&mut self) -> Result<Option<Timestamp>> {
        let row = sqlx::query(
            "SELECT MIN(next_attempt_at) AS t FROM notifications WHERE delivered_at IS NULL",
        )
        .fetch_one(self.conn())
        .await?;
        opt_from_ms(row.try_get("t")?, "next notification")
    }

    /// Newest first.
    pub async fn list_notifications(
        &mut self,
        f: &NotificationFilter,
    ) -> Result<Vec<Notification>> {
        let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM notifications WHERE 1 = 1"));
        match f.delivered {
            Some(true) => {
                sql.push(" AND delivered_at IS NOT NULL");
            }
            Some(false) => {
                sql.push(" AND delivered_at IS NULL");
            }
            None => {}
        }
        if let Some(w) = &f.webhook {
            let p = sql.arg(Arg::Text(w.clone()));
            sql.push(&format!(" AND webhook = {p}"));
        }
        if let Some(id) = &f.after {
            let row = vec![("id", Arg::Text(id.clone()))];
            self.continue_after(
                &mut sql,
                After {
                    table: "notifications",
                    what: "notification",
                    order: "created_at, pos",
                    cmp: "<",
                    row,
                },
            )
            .await?;
        }
        let p = sql.arg(Arg::Int(limit(f.limit, 200)));
        sql.push(&format!(" ORDER BY created_at DESC, pos DESC LIMIT {p}"));
        let rows = sql.query().fetch_all(self.conn()).await?;
        rows.iter().map(from_row).collect()
    }
}
