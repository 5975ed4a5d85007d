//! Standing exceptions (`jitgate_core::exception`): one row per exception, beside the request
//! of path `standing` it rides on. The row holds the owner, the compensating controls and the
//! re-validation clock; subject, scope and state are the request's, the grant is the
//! request's grant. Uses are read from the evidence log (`session.started` events of the
//! grant), never counted separately, so the count cannot drift from the evidence.

use crate::codec::{from_json, from_ms, limit, ms, opt_from_ms, to_json, Arg, Sql};
use crate::page::After;
use crate::{Result, StoreError, Tx};
use jitgate_core::exception::Exception;
use jitgate_core::{Grant, Request, Timestamp};
use sqlx::any::AnyRow;
use sqlx::Row;

const COLUMNS: &str = "id, request_id, owner, controls, revalidate_every_secs, expires_at, \
    next_revalidation, last_revalidated_at, last_revalidated_by, created_at";

/// Filter of [`Tx::list_exceptions`]; newest first.
#[derive(Debug, Clone)]
pub struct ExceptionFilter {
    /// Only exceptions owned by this identity.
    pub owner: Option<String>,
    /// Continue after this exception id (the last of the previous page).
    pub after: Option<String>,
    /// At most this many (non-positive: the default, 200).
    pub limit: i64,
}

impl Default for ExceptionFilter {
    fn default() -> Self {
        ExceptionFilter {
            owner: None,
            after: None,
            limit: 200,
        }
    }
}

/// An exception with what it rides on and how it was used: the row the exception list, the
/// standing-privilege inventory and review campaigns read
/// ([`jitgate_core::exception::summarize`] turns it into the shared view).
#[derive(Debug, Clone, PartialEq)]
pub struct ExceptionRecord {
    pub exception: Exception,
    pub request: Request,
    pub grant: Option<Grant>,
    /// Sessions started under its grant (`session.started` events).
    pub uses: i64,
    pub last_use: Option<Timestamp>,
}

fn from_row(row: &AnyRow) -> Result<Exception> {
    let id: String = row.try_get("id")?;
    let at = format!("exceptions id={id}");
    Ok(Exception {
        request_id: row.try_get("request_id")?,
        owner: row.try_get("owner")?,
        controls: from_json(
            &row.try_get::<String, _>("controls")?,
            &format!("{at} controls"),
        )?,
        revalidate_every_secs: row.try_get("revalidate_every_secs")?,
        expires_at: from_ms(row.try_get("expires_at")?, &format!("{at} expires_at"))?,
        next_revalidation: from_ms(
            row.try_get("next_revalidation")?,
            &format!("{at} next_revalidation"),
        )?,
        last_revalidated_at: opt_from_ms(
            row.try_get("last_revalidated_at")?,
            &format!("{at} last_revalidated_at"),
        )?,
        last_revalidated_by: row.try_get("last_revalidated_by")?,
        created_at: from_ms(row.try_get("created_at")?, &format!("{at} created_at"))?,
        id,
    })
}

impl Tx {
    /// Record a new exception; its request must exist (saved first, same transaction).
    pub async fn insert_exception(&mut self, e: &Exception) -> Result<()> {
        self.need_write("insert_exception")?;
        sqlx::query(&format!(
            "INSERT INTO exceptions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(&e.id)
        .bind(&e.request_id)
        .bind(&e.owner)
        .bind(to_json(&e.controls, "exception controls")?)
        .bind(e.revalidate_every_secs)
        .bind(ms(e.expires_at))
        .bind(ms(e.next_revalidation))
        .bind(e.last_revalidated_at.map(ms))
        .bind(e.last_revalidated_by.clone())
        .bind(ms(e.created_at))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// Save the re-validation clock (the terms never change).
    pub async fn update_exception(&mut self, e: &Exception) -> Result<()> {
        self.need_write("update_exception")?;
        let done = sqlx::query(
            "UPDATE exceptions SET next_revalidation = $2, last_revalidated_at = $3, \
             last_revalidated_by = $4 WHERE id = $1",
        )
        .bind(&e.id)
        .bind(ms(e.next_revalidation))
        .bind(e.last_revalidated_at.map(ms))
        .bind(e.last_revalidated_by.clone())
        .execute(self.conn())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("exception", &e.id));
        }
        Ok(())
    }

    pub async fn get_exception(&mut self, id: &str) -> Result<Option<Exception>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM exceptions WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// The exception a request of path `standing` carries, if any.
    pub async fn exception_of_request(&mut self, request_id: &str) -> Result<Option<Exception>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM exceptions WHERE request_id = $1"
        ))
        .bind(request_id)
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Exceptions, newest first.
    pub async fn list_exceptions(&mut self, f: &ExceptionFilter) -> Result<Vec<Exception>> {
        let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM exceptions WHERE 1 = 1"));
        if let Some(owner) = &f.owner {
            let p = sql.arg(Arg::Text(owner.clone()));
            sql.push(&format!(" AND owner = {p}"));
        }
        if let Some(id) = &f.after {
            self.continue_after(
                &mut sql,
                After {
                    table: "exceptions",
                    what: "exception",
                    order: "created_at, pos",
                    cmp: "<",
                    row: vec![("id", Arg::Text(id.clone()))],
                },
            )
            .await?;
        }
        let p = sql.arg(Arg::Int(limit(f.limit, 200)));
        sql.push(&format!(" ORDER BY created_at DESC, pos DESC LIMIT {p}"));
        let rows = sql.query().fetch_all(self.conn()).await?;
        rows.iter().map(from_row).collect()
    }

    /// Exceptions whose request is active and whose re-validation was due at or before `now`
    /// (the scheduler ends their grants), earliest due first.
    pub async fn exceptions_overdue(&mut self, now: Timestamp) -> Result<Vec<Exception>> {
        let cols: Vec<String> = COLUMNS
            .split(", ")
            .map(|c| format!("e.{}", c.trim()))
            .collect();
        let rows = sqlx::query(&format!(
            "SELECT {} FROM exceptions e JOIN requests r ON r.id = e.request_id \
             WHERE r.state = 'active' AND e.next_revalidation <= $1 \
             ORDER BY e.next_revalidation, e.pos",
            cols.join(", ")
        ))
        .bind(ms(now))
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// How often the grant was used: sessions started under it (from the evidence log), and
    /// when the last one started.
    pub async fn grant_uses(&mut self, grant_id: &str) -> Result<(i64, Option<Timestamp>)> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MAX(at) AS last FROM events \
             WHERE grant_id = $1 AND kind = 'session.started'",
        )
        .bind(grant_id)
        .fetch_one(self.conn())
        .await?;
        let n: i64 = row.try_get("n")?;
        let last = opt_from_ms(row.try_get("last")?, "events last session.started")?;
        Ok((n, last))
    }

    /// An exception with its request, grant and uses (see [`ExceptionRecord`]).
    pub async fn exception_record(&mut self, exception: Exception) -> Result<ExceptionRecord> {
        let request = self
            .get_request(&exception.request_id)
            .await?
            .ok_or_else(|| StoreError::not_found("request", &exception.request_id))?;
        let grant = match &request.grant_id {
            Some(g) => self.get_grant(g).await?,
            None => None,
        };
        let (uses, last_use) = match &grant {
            Some(g) => self.grant_uses(&g.id).await?,
            None => (0, None),
        };
        Ok(ExceptionRecord {
            exception,
            request,
            grant,
            uses,
            last_use,
        })
    }

    /// The standing-privilege view of exceptions: one page of [`ExceptionRecord`]s, newest
    /// first (for the inventory of standing privilege and review campaigns).
    pub async fn list_exception_records(
        &mut self,
        f: &ExceptionFilter,
    ) -> Result<Vec<ExceptionRecord>> {
        let mut out = Vec::new();
        for e in self.list_exceptions(f).await? {
            out.push(self.exception_record(e).await?);
        }
        Ok(out)
    }
}
