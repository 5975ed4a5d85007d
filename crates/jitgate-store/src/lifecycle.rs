//! Requests, approvals and grants, and the queries the scheduler runs to find what is due.
//!
//! Rows mirror the core structs column by column (scope and decision as JSON), plus
//! `window_end` so "what lapses when" is an indexed comparison. `pos` (an identity column)
//! breaks ties between rows created in the same millisecond, so list order is insertion
//! order.

use crate::codec::{
    enum_from_str, enum_to_str, flag, from_json, from_ms, limit, ms, opt_from_ms, to_json, Arg, Sql,
};
use crate::page::After;
use crate::{Result, StoreError, Tx};
use jitgate_core::{Approval, Grant, GrantState, Request, RequestState, Timestamp};
use sqlx::any::AnyRow;
use sqlx::Row;

/// Which requests to list; newest first. Filters combine with AND.
#[derive(Debug, Clone)]
pub struct RequestFilter {
    pub state: Option<RequestState>,
    pub requester: Option<String>,
    pub subject: Option<String>,
    /// Requests this identity filed or is the subject of.
    pub involving: Option<String>,
    /// Continue after this request (the last of the previous page).
    pub after: Option<String>,
    /// At most this many (non-positive: the default, 200).
    pub limit: i64,
}

impl Default for RequestFilter {
    fn default() -> Self {
        RequestFilter {
            state: None,
            requester: None,
            subject: None,
            involving: None,
            after: None,
            limit: 200,
        }
    }
}

/// Which grants to list; newest first.
#[derive(Debug, Clone)]
pub struct GrantFilter {
    pub state: Option<GrantState>,
    pub subject: Option<String>,
    /// Continue after this grant (the last of the previous page).
    pub after: Option<String>,
    /// At most this many (non-positive: the default, 200).
    pub limit: i64,
}

impl Default for GrantFilter {
    fn default() -> Self {
        GrantFilter {
            state: None,
            subject: None,
            after: None,
            limit: 200,
        }
    }
}

const REQUEST_COLUMNS: &str = "id, requester, subject, scope, scope_digest, window_start, \
    duration_secs, reason, reference, path, state, decision, grant_id, state_reason, \
    filed_with_key, created_at, updated_at";

const GRANT_COLUMNS: &str = "id, request_id, subject, scope, scope_digest, not_before, \
    expires_at, state, emergency, review_required, ended_at, end_reason, created_at";

const APPROVAL_COLUMNS: &str = "id, request_id, approver, verdict, scope_digest, comment, \
    step_up, at";

fn request_from_row(row: &AnyRow) -> Result<Request> {
    let id: String = row.try_get("id")?;
    let at = format!("requests id={id}");
    Ok(Request {
        requester: row.try_get("requester")?,
        subject: row.try_get("subject")?,
        scope: from_json(&row.try_get::<String, _>("scope")?, &format!("{at} scope"))?,
        scope_digest: row.try_get("scope_digest")?,
        window_start: from_ms(row.try_get("window_start")?, &format!("{at} window_start"))?,
        duration_secs: row.try_get("duration_secs")?,
        reason: row.try_get("reason")?,
        reference: row.try_get("reference")?,
        path: enum_from_str(&row.try_get::<String, _>("path")?, &format!("{at} path"))?,
        state: enum_from_str(&row.try_get::<String, _>("state")?, &format!("{at} state"))?,
        decision: from_json(
            &row.try_get::<String, _>("decision")?,
            &format!("{at} decision"),
        )?,
        grant_id: row.try_get("grant_id")?,
        state_reason: row.try_get("state_reason")?,
        filed_with_key: row
            .try_get::<Option<String>, _>("filed_with_key")?
            .map(|text| from_json(&text, &format!("{at} filed_with_key")))
            .transpose()?,
        created_at: from_ms(row.try_get("created_at")?, &format!("{at} created_at"))?,
        updated_at: from_ms(row.try_get("updated_at")?, &format!("{at} updated_at"))?,
        id,
    })
}

fn grant_from_row(row: &AnyRow) -> Result<Grant> {
    let id: String = row.try_get("id")?;
    let at = format!("grants id={id}");
    let end_reason: Option<String> = row.try_get("end_reason")?;
    Ok(Grant {
        request_id: row.try_get("request_id")?,
        subject: row.try_get("subject")?,
        scope: from_json(&row.try_get::<String, _>("scope")?, &format!("{at} scope"))?,
        scope_digest: row.try_get("scope_digest")?,
        not_before: from_ms(row.try_get("not_before")?, &format!("{at} not_before"))?,
        expires_at: from_ms(row.try_get("expires_at")?, &format!("{at} expires_at"))?,
        state: enum_from_str(&row.try_get::<String, _>("state")?, &format!("{at} state"))?,
        emergency: row.try_get::<i64, _>("emergency")? != 0,
        review_required: row.try_get::<i64, _>("review_required")? != 0,
        ended_at: opt_from_ms(row.try_get("ended_at")?, &format!("{at} ended_at"))?,
        end_reason: end_reason
            .map(|text| from_json(&text, &format!("{at} end_reason")))
            .transpose()?,
        created_at: from_ms(row.try_get("created_at")?, &format!("{at} created_at"))?,
        id,
    })
}

fn approval_from_row(row: &AnyRow) -> Result<Approval> {
    let id: String = row.try_get("id")?;
    let at = format!("approvals id={id}");
    Ok(Approval {
        request_id: row.try_get("request_id")?,
        approver: row.try_get("approver")?,
        verdict: enum_from_str(
            &row.try_get::<String, _>("verdict")?,
            &format!("{at} verdict"),
        )?,
        scope_digest: row.try_get("scope_digest")?,
        comment: row.try_get("comment")?,
        step_up: row.try_get::<i64, _>("step_up")? != 0,
        at: from_ms(row.try_get("at")?, &format!("{at} at"))?,
        id,
    })
}

/// The values of a request row in `REQUEST_COLUMNS` order, plus `window_end` last.
fn request_args(r: &Request) -> Result<Vec<Arg>> {
    Ok(vec![
        Arg::Text(r.id.clone()),
        Arg::Text(r.requester.clone()),
        Arg::Text(r.subject.clone()),
        Arg::Text(to_json(&r.scope, "request scope")?),
        Arg::Text(r.scope_digest.clone()),
        Arg::Int(ms(r.window_start)),
        Arg::Int(r.duration_secs),
        Arg::Text(r.reason.clone()),
        Arg::Text(r.reference.clone()),
        Arg::Text(r.path.as_str().to_string()),
        Arg::Text(r.state.as_str().to_string()),
        Arg::Text(to_json(&r.decision, "request decision")?),
        Arg::OptText(r.grant_id.clone()),
        Arg::OptText(r.state_reason.clone()),
        Arg::OptText(
            r.filed_with_key
                .as_ref()
                .map(|k| to_json(k, "request filed_with_key"))
                .transpose()?,
        ),
        Arg::Int(ms(r.created_at)),
        Arg::Int(ms(r.updated_at)),
        Arg::Int(ms(r.window_end())),
    ])
}

fn grant_args(g: &Grant) -> Result<Vec<Arg>> {
    Ok(vec![
        Arg::Text(g.id.clone()),
        Arg::Text(g.request_id.clone()),
        Arg::Text(g.subject.clone()),
        Arg::Text(to_json(&g.scope, "grant scope")?),
        Arg::Text(g.scope_digest.clone()),
        Arg::Int(ms(g.not_before)),
        Arg::Int(ms(g.expires_at)),
        Arg::Text(g.state.as_str().to_string()),
        Arg::Int(flag(g.emergency)),
        Arg::Int(flag(g.review_required)),
        Arg::OptInt(g.ended_at.map(ms)),
        Arg::OptText(
            g.end_reason
                .as_ref()
                .map(|r| to_json(r, "grant end_reason"))
                .transpose()?,
        ),
        Arg::Int(ms(g.created_at)),
    ])
}

/// `INSERT INTO table (cols) VALUES ($1..$n) ON CONFLICT DO NOTHING`: a duplicate leaves the
/// transaction usable on PostgreSQL too (a failed statement would abort it), and the caller
/// learns of it from the row count.
fn insert_sql(table: &str, columns: &str, args: Vec<Arg>) -> Sql {
    let mut sql = Sql::new(&format!("INSERT INTO {table} ({columns}) VALUES ("));
    for (i, a) in args.into_iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        let p = sql.arg(a);
        sql.push(&p);
    }
    sql.push(") ON CONFLICT DO NOTHING");
    sql
}

/// `UPDATE table SET col = $k, ... WHERE id = $1` over the same argument list as the insert
/// (first column is the id).
fn update_sql(table: &str, columns: &str, args: Vec<Arg>) -> Sql {
    let mut sql = Sql::new(&format!("UPDATE {table} SET "));
    let names: Vec<&str> = columns.split(',').map(str::trim).collect();
    let mut where_id = String::new();
    let mut first = true;
    for (name, a) in names.iter().zip(args) {
        let p = sql.arg(a);
        if *name == "id" {
            where_id = p;
            continue;
        }
        if !first {
            sql.push(", ");
        }
        first = false;
        sql.push(&format!("{name} = {p}"));
    }
    sql.push(&format!(" WHERE id = {where_id}"));
    sql
}

impl Tx {
    /// Store a new request. [`StoreError::Conflict`] if the id is taken.
    pub async fn insert_request(&mut self, r: &Request) -> Result<()> {
        self.need_write("insert_request")?;
        let columns = format!("{REQUEST_COLUMNS}, window_end");
        let done = insert_sql("requests", &columns, request_args(r)?)
            .query()
            .execute(self.conn())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "request {} already exists",
                r.id
            )));
        }
        Ok(())
    }

    /// Replace a stored request with `r` (matched by id). [`StoreError::NotFound`] if absent.
    pub async fn update_request(&mut self, r: &Request) -> Result<()> {
        self.need_write("update_request")?;
        let columns = format!("{REQUEST_COLUMNS}, window_end");
        let done = update_sql("requests", &columns, request_args(r)?)
            .query()
            .execute(self.conn())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("request", &r.id));
        }
        Ok(())
    }

    pub async fn get_request(&mut self, id: &str) -> Result<Option<Request>> {
        let row = sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(request_from_row).transpose()
    }

    /// Newest first.
    pub async fn list_requests(&mut self, f: &RequestFilter) -> Result<Vec<Request>> {
        let mut sql = Sql::new(&format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE 1 = 1"
        ));
        if let Some(state) = f.state {
            let p = sql.arg(Arg::Text(state.as_str().to_string()));
            sql.push(&format!(" AND state = {p}"));
        }
        if let Some(requester) = &f.requester {
            let p = sql.arg(Arg::Text(requester.clone()));
            sql.push(&format!(" AND requester = {p}"));
        }
        if let Some(subject) = &f.subject {
            let p = sql.arg(Arg::Text(subject.clone()));
            sql.push(&format!(" AND subject = {p}"));
        }
        if let Some(who) = &f.involving {
            let p = sql.arg(Arg::Text(who.clone()));
            sql.push(&format!(" AND (requester = {p} OR subject = {p})"));
        }
        if let Some(id) = &f.after {
            self.continue_after(&mut sql, newest_first("requests", "request", id))
                .await?;
        }
        let p = sql.arg(Arg::Int(limit(f.limit, 200)));
        sql.push(&format!(" ORDER BY created_at DESC, pos DESC LIMIT {p}"));
        let rows = sql.query().fetch_all(self.conn()).await?;
        rows.iter().map(request_from_row).collect()
    }

    /// Requests the scheduler must act on at `now`: approved ones whose window has opened
    /// (to activate) and pending or approved ones whose window has closed (to lapse). Oldest
    /// deadline first.
    pub async fn requests_due(&mut self, now: Timestamp) -> Result<Vec<Request>> {
        let rows = sqlx::query(&format!(
            "SELECT {REQUEST_COLUMNS} FROM requests \
             WHERE (state = 'approved' AND window_start <= $1) \
                OR (state IN ('pending', 'approved') AND window_end <= $1) \
             ORDER BY window_start, pos"
        ))
        .bind(ms(now))
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(request_from_row).collect()
    }

    /// Record an approver's verdict. [`StoreError::Conflict`] if this approver already
    /// decided on this request (or the id is taken); [`StoreError::NotFound`] if the request
    /// does not exist.
    pub async fn insert_approval(&mut self, a: &Approval) -> Result<()> {
        self.need_write("insert_approval")?;
        let args = vec![
            Arg::Text(a.id.clone()),
            Arg::Text(a.request_id.clone()),
            Arg::Text(a.approver.clone()),
            Arg::Text(enum_to_str(&a.verdict, "approval verdict")?),
            Arg::Text(a.scope_digest.clone()),
            Arg::Text(a.comment.clone()),
            Arg::Int(flag(a.step_up)),
            Arg::Int(ms(a.at)),
        ];
        let result = insert_sql("approvals", APPROVAL_COLUMNS, args)
            .query()
            .execute(self.conn())
            .await;
        let done = match result.map_err(StoreError::from) {
            Err(e) if e.is_foreign_key_violation() => {
                return Err(StoreError::not_found("request", &a.request_id))
            }
            other => other?,
        };
        if done.rows_affected() > 0 {
            return Ok(());
        }
        let same_approver =
            sqlx::query("SELECT id FROM approvals WHERE request_id = $1 AND approver = $2")
                .bind(&a.request_id)
                .bind(&a.approver)
                .fetch_optional(self.conn())
                .await?;
        Err(StoreError::Conflict(if same_approver.is_some() {
            format!(
                "{} has already recorded a decision on request {}; each approver counts once",
                a.approver, a.request_id
            )
        } else {
            format!("approval {} already exists", a.id)
        }))
    }

    /// The approvals of a request that still count (not withdrawn), oldest first.
    pub async fn list_approvals(&mut self, request_id: &str) -> Result<Vec<Approval>> {
        let rows = sqlx::query(&format!(
            "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE request_id = $1 \
             AND withdrawn_at IS NULL ORDER BY at, pos"
        ))
        .bind(request_id)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(approval_from_row).collect()
    }

    /// Mark `approver`'s approval of a request withdrawn at `at`; it stops counting but the
    /// row stays. Returns the approval, or `None` if there is no counting one.
    pub async fn withdraw_approval(
        &mut self,
        request_id: &str,
        approver: &str,
        at: Timestamp,
    ) -> Result<Option<Approval>> {
        self.need_write("withdraw_approval")?;
        let row = sqlx::query(&format!(
            "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE request_id = $1 AND approver = $2 \
             AND withdrawn_at IS NULL"
        ))
        .bind(request_id)
        .bind(approver)
        .fetch_optional(self.conn())
        .await?;
        let Some(approval) = row.as_ref().map(approval_from_row).transpose()? else {
            return Ok(None);
        };
        sqlx::query("UPDATE approvals SET withdrawn_at = $1 WHERE id = $2")
            .bind(ms(at))
            .bind(&approval.id)
            .execute(self.conn())
            .await?;
        Ok(Some(approval))
    }

    /// Store a new grant. [`StoreError::Conflict`] if the id is taken;
    /// [`StoreError::NotFound`] if its request does not exist.
    pub async fn insert_grant(&mut self, g: &Grant) -> Result<()> {
        self.need_write("insert_grant")?;
        let result = insert_sql("grants", GRANT_COLUMNS, grant_args(g)?)
            .query()
            .execute(self.conn())
            .await;
        let done = match result.map_err(StoreError::from) {
            Err(e) if e.is_foreign_key_violation() => {
                return Err(StoreError::not_found("request", &g.request_id))
            }
            other => other?,
        };
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!(
                "grant {} already exists",
                g.id
            )));
        }
        Ok(())
    }

    /// Replace a stored grant with `g` (matched by id). [`StoreError::NotFound`] if absent.
    pub async fn update_grant(&mut self, g: &Grant) -> Result<()> {
        self.need_write("update_grant")?;
        let done = update_sql("grants", GRANT_COLUMNS, grant_args(g)?)
            .query()
            .execute(self.conn())
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("grant", &g.id));
        }
        Ok(())
    }

    pub async fn get_grant(&mut self, id: &str) -> Result<Option<Grant>> {
        let row = sqlx::query(&format!("SELECT {GRANT_COLUMNS} FROM grants WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.conn())
            .await?;
        row.as_ref().map(grant_from_row).transpose()
    }

    /// Newest first.
    pub async fn list_grants(&mut self, f: &GrantFilter) -> Result<Vec<Grant>> {
        let mut sql = Sql::new(&format!("SELECT {GRANT_COLUMNS} FROM grants WHERE 1 = 1"));
        if let Some(state) = f.state {
            let p = sql.arg(Arg::Text(state.as_str().to_string()));
            sql.push(&format!(" AND state = {p}"));
        }
        if let Some(subject) = &f.subject {
            let p = sql.arg(Arg::Text(subject.clone()));
            sql.push(&format!(" AND subject = {p}"));
        }
        if let Some(id) = &f.after {
            self.continue_after(&mut sql, newest_first("grants", "grant", id))
                .await?;
        }
        let p = sql.arg(Arg::Int(limit(f.limit, 200)));
        sql.push(&format!(" ORDER BY created_at DESC, pos DESC LIMIT {p}"));
        let rows = sql.query().fetch_all(self.conn()).await?;
        rows.iter().map(grant_from_row).collect()
    }

    /// How many grants are in each state (for metrics), by state name.
    pub async fn count_grants_by_state(&mut self) -> Result<Vec<(String, i64)>> {
        let rows =
            sqlx::query("SELECT state, COUNT(*) AS n FROM grants GROUP BY state ORDER BY state")
                .fetch_all(self.conn())
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("state")?, r.try_get("n")?)))
            .collect()
    }

    /// Active grants whose expiry has passed at `now`, earliest expiry first.
    pub async fn grants_expired(&mut self, now: Timestamp) -> Result<Vec<Grant>> {
        let rows = sqlx::query(&format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE state = 'active' AND expires_at <= $1 \
             ORDER BY expires_at, pos"
        ))
        .bind(ms(now))
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(grant_from_row).collect()
    }

    /// The next moment something becomes due: an active grant expires, an approved request's
    /// window opens, a pending or approved request's window closes, an active exception's
    /// re-validation falls due. `None` when nothing is
    /// scheduled, so the scheduler can sleep until woken. May lie in the past (work is due
    /// now).
    pub async fn next_deadline(&mut self) -> Result<Option<Timestamp>> {
        let row = sqlx::query(
            "SELECT MIN(t) AS t FROM ( \
               SELECT MIN(expires_at) AS t FROM grants WHERE state = 'active' \
               UNION ALL \
               SELECT MIN(window_start) AS t FROM requests WHERE state = 'approved' \
               UNION ALL \
               SELECT MIN(window_end) AS t FROM requests WHERE state IN ('pending', 'approved') \
               UNION ALL \
               SELECT MIN(e.next_revalidation) AS t FROM exceptions e \
                 JOIN requests r ON r.id = e.request_id WHERE r.state = 'active' \
             ) AS deadlines",
        )
        .fetch_one(self.conn())
        .await?;
        opt_from_ms(row.try_get("t")?, "next deadline")
    }
}

/// After the row `id` of a list ordered newest first (`created_at DESC, pos DESC`).
fn newest_first(table: &'static str, what: &'static str, id: &str) -> After {
    After {
        table,
        what,
        order: "created_at, pos",
        cmp: "<",
        row: vec![("id", Arg::Text(id.to_string()))],
    }
}
