//! The verifier's bulk read of the evidence log: the chain head, every checkpoint and every
//! event row up to a bound, **in one snapshot**, streamed as pages.
//!
//! This is the one read that leaves the crate's single `sqlx::Any` code path, on purpose:
//! `jitgate evidence verify` reads every row there is, and through `sqlx::Any` the driver's
//! per-row cost (3–4 µs on SQLite, row decoding on PostgreSQL) — not the database, and not
//! the hashing — bounded how fast a log could be checked (docs/BENCHMARKS.md, "Evidence log
//! in the server"). So:
//!
//! - **SQLite**: a read-only `rusqlite` connection to the same file (same linked SQLite as
//!   sqlx's), one `BEGIN` (a WAL read snapshot), one statement stepped in place on a
//!   blocking thread, column bytes copied straight into the page buffer.
//! - **PostgreSQL**: a dedicated connection, `REPEATABLE READ READ ONLY`, one statement
//!   whose rows are streamed and handed over as the driver's own rows; their text is
//!   borrowed on the verifier's thread, so the reader only receives. (Binary `COPY … TO
//!   STDOUT` and rows packed server-side with `string_agg` were measured and were slower:
//!   the driver's per-message cost is the same for a COPY row, and PostgreSQL concatenates
//!   slower than it sends.)
//!
//! Nothing is interpreted beyond splitting rows: a value that is not UTF-8 or NULL (only
//! possible if someone wrote the table behind the store's back) reads lossily or as empty,
//! so its hash no longer matches and the verifier names the row instead of the read failing.

use crate::checkpoints::{checkpoint_from_parts, CheckpointRecord, CHECKPOINT_COLUMNS};
use crate::{Backend, Result, Store, StoreError};
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};

/// Rows per page: big enough that channel hand-offs cost nothing, small enough (≈ 1.5 MB of
/// typical events) that memory stays flat whatever the log's length.
pub const SCAN_PAGE_ROWS: usize = 4096;

/// Pages read ahead of the verifier.
const READ_AHEAD: usize = 2;

/// One page of event rows, verbatim.
#[derive(Debug, Default)]
pub struct LogPage {
    rows: PageRows,
}

#[derive(Debug)]
enum PageRows {
    /// SQLite: the rows' bytes copied into one buffer (the statement's row buffers are
    /// reused at each step).
    Copied { text: String, rows: Vec<PageRow> },
    /// PostgreSQL: the driver's rows themselves, each already one buffer; the text is
    /// borrowed from them on the verifier's thread (no copy on the reader's).
    Postgres {
        seqs: Vec<i64>,
        rows: Vec<sqlx::postgres::PgRow>,
    },
}

impl Default for PageRows {
    fn default() -> Self {
        PageRows::Copied {
            text: String::new(),
            rows: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct PageRow {
    seq: i64,
    start: usize,
    prev_end: usize,
    hash_end: usize,
    end: usize,
}

/// One row of a [`LogPage`], borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLeaf<'a> {
    pub seq: i64,
    pub prev_hash: &'a str,
    pub hash: &'a str,
    pub canonical: &'a str,
}

impl LogPage {
    fn copied(rows: usize) -> LogPage {
        LogPage {
            rows: PageRows::Copied {
                text: String::with_capacity(rows * 512),
                rows: Vec::with_capacity(rows),
            },
        }
    }

    fn postgres(rows: usize) -> LogPage {
        LogPage {
            rows: PageRows::Postgres {
                seqs: Vec::with_capacity(rows),
                rows: Vec::with_capacity(rows),
            },
        }
    }

    /// Append a row by copy (a page made by [`LogPage::copied`]).
    fn push(&mut self, seq: i64, prev_hash: &[u8], hash: &[u8], canonical: &[u8]) {
        debug_assert!(
            matches!(self.rows, PageRows::Copied { .. }),
            "a copied page"
        );
        if let PageRows::Copied { text, rows } = &mut self.rows {
            let start = text.len();
            push_text(text, prev_hash);
            let prev_end = text.len();
            push_text(text, hash);
            let hash_end = text.len();
            push_text(text, canonical);
            rows.push(PageRow {
                seq,
                start,
                prev_end,
                hash_end,
                end: text.len(),
            });
        }
    }

    /// Keep a driver row (a page made by [`LogPage::postgres`]).
    fn push_pg(&mut self, seq: i64, row: sqlx::postgres::PgRow) {
        debug_assert!(
            matches!(self.rows, PageRows::Postgres { .. }),
            "a driver-row page"
        );
        if let PageRows::Postgres { seqs, rows } = &mut self.rows {
            seqs.push(seq);
            rows.push(row);
        }
    }

    pub fn len(&self) -> usize {
        match &self.rows {
            PageRows::Copied { rows, .. } => rows.len(),
            PageRows::Postgres { rows, .. } => rows.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = PageLeaf<'_>> {
        (0..self.len()).map(move |i| self.leaf(i))
    }

    fn leaf(&self, i: usize) -> PageLeaf<'_> {
        match &self.rows {
            PageRows::Copied { text, rows } => {
                let r = rows[i];
                PageLeaf {
                    seq: r.seq,
                    prev_hash: &text[r.start..r.prev_end],
                    hash: &text[r.prev_end..r.hash_end],
                    canonical: &text[r.hash_end..r.end],
                }
            }
            PageRows::Postgres { seqs, rows } => {
                // A NULL (or text the database let through that is not UTF-8) reads as
                // empty: the verifier then names the row malformed or altered.
                let text = |col: usize| -> &str {
                    use sqlx::{Row, ValueRef};
                    match rows[i].try_get_raw(col) {
                        Ok(v) if !v.is_null() => v.as_str().unwrap_or(""),
                        _ => "",
                    }
                };
                PageLeaf {
                    seq: seqs[i],
                    prev_hash: text(1),
                    hash: text(2),
                    canonical: text(3),
                }
            }
        }
    }
}

fn push_text(out: &mut String, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(s) => out.push_str(s),
        Err(_) => out.push_str(&String::from_utf8_lossy(bytes)),
    }
}

/// The log as of one snapshot: what the chain head and the checkpoints said, and the rows,
/// arriving page by page (read ahead while the caller checks).
#[derive(Debug)]
pub struct LogScan {
    /// The store's chain head `(seq, hash)`: how many events the store says there are.
    pub head: (i64, String),
    /// Every checkpoint, by tree size, then in the order they were stored.
    pub checkpoints: Vec<CheckpointRecord>,
    /// One channel per reader; readers take pages in turn (page `k` comes from reader
    /// `k % readers`), so taking from each in turn gives the pages in seq order.
    readers: Vec<mpsc::Receiver<Result<LogPage>>>,
    turn: usize,
}

impl LogScan {
    /// The next page; `None` after the last one. For a blocking thread.
    pub fn blocking_next(&mut self) -> Option<Result<LogPage>> {
        let page = self.readers.get_mut(self.turn)?.blocking_recv();
        self.turn = (self.turn + 1) % self.readers.len();
        page
    }

    /// The next page; `None` after the last one.
    pub async fn next(&mut self) -> Option<Result<LogPage>> {
        let page = self.readers.get_mut(self.turn)?.recv().await;
        self.turn = (self.turn + 1) % self.readers.len();
        page
    }
}

type Header = ((i64, String), Vec<CheckpointRecord>);

/// PostgreSQL readers: each holds its own connection in the same exported snapshot. The
/// driver's per-row cost bounds one reader, so two read alternate pages while a third
/// thread checks (docs/BENCHMARKS.md).
const POSTGRES_READERS: usize = 2;

impl Store {
    /// Start reading the log: rows with `seq <= up_to` (all when `None`), the chain head and
    /// every checkpoint, all in one snapshot taken now. Dropping the scan stops the readers.
    pub async fn scan_log(&self, up_to: Option<i64>) -> Result<LogScan> {
        let up_to = up_to.unwrap_or(i64::MAX);
        let (header_tx, header_rx) = oneshot::channel::<Result<Header>>();
        let readers = match self.backend {
            Backend::Sqlite => {
                let (pages_tx, pages) = mpsc::channel(READ_AHEAD);
                let path = sqlite_path(&self.url)?;
                tokio::task::spawn_blocking(move || {
                    sqlite_scan(&path, up_to, header_tx, &pages_tx);
                });
                vec![pages]
            }
            Backend::Postgres => {
                let (senders, receivers): (Vec<_>, Vec<_>) = (0..POSTGRES_READERS)
                    .map(|_| mpsc::channel(READ_AHEAD))
                    .unzip();
                let url = self.url.clone();
                tokio::spawn(async move {
                    postgres_scan(&url, up_to, header_tx, senders).await;
                });
                receivers
            }
        };
        let (head, checkpoints) = header_rx
            .await
            .map_err(|_| StoreError::Corrupt("the log reader stopped before reading".into()))??;
        Ok(LogScan {
            head,
            checkpoints,
            readers,
            turn: 0,
        })
    }
}

fn sqlite_path(url: &str) -> Result<std::path::PathBuf> {
    use std::str::FromStr;
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)?;
    Ok(options.get_filename().to_path_buf())
}

/// Sends the header, then pages; a failure goes to whichever the caller is waiting for.
fn sqlite_scan(
    path: &std::path::Path,
    up_to: i64,
    header_tx: oneshot::Sender<Result<Header>>,
    pages_tx: &mpsc::Sender<Result<LogPage>>,
) {
    use rusqlite::{Connection, OpenFlags};
    let sql_err = |e: rusqlite::Error| StoreError::Corrupt(format!("reading the log: {e}"));
    let opened = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .and_then(|conn| {
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // Deferred: the snapshot is taken by the first read below and held until the end.
        conn.execute_batch("BEGIN")?;
        Ok(conn)
    });
    let conn = match opened {
        Ok(conn) => conn,
        Err(e) => {
            let _ = header_tx.send(Err(sql_err(e)));
            return;
        }
    };
    let header = (|| -> Result<Header> {
        let head = conn
            .query_row("SELECT seq, hash FROM chain_head WHERE id = 1", [], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => {
                    StoreError::Corrupt("chain_head: the row id=1 is missing".into())
                }
                e => sql_err(e),
            })?;
        let mut stmt = conn
            .prepare(&format!(
                "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY tree_size, pos"
            ))
            .map_err(sql_err)?;
        let raw = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })
            .map_err(sql_err)?
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(sql_err)?;
        let checkpoints = raw
            .into_iter()
            .map(|(log_id, size, root, at, key_id, sig)| {
                checkpoint_from_parts(log_id, size, root, at, key_id, sig)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((head, checkpoints))
    })();
    let failed = header.is_err();
    if header_tx.send(header).is_err() || failed {
        return;
    }
    let rows = (|| -> Result<()> {
        let mut stmt = conn
            .prepare(
                "SELECT seq, prev_hash, hash, canonical FROM events WHERE seq <= ?1 ORDER BY seq",
            )
            .map_err(sql_err)?;
        let mut rows = stmt.query([up_to]).map_err(sql_err)?;
        let mut page = LogPage::copied(SCAN_PAGE_ROWS);
        while let Some(row) = rows.next().map_err(sql_err)? {
            let seq: i64 = row.get(0).map_err(sql_err)?;
            page.push(
                seq,
                text_at(row, 1).map_err(sql_err)?,
                text_at(row, 2).map_err(sql_err)?,
                text_at(row, 3).map_err(sql_err)?,
            );
            if page.len() == SCAN_PAGE_ROWS {
                let full = std::mem::replace(&mut page, LogPage::copied(SCAN_PAGE_ROWS));
                if pages_tx.blocking_send(Ok(full)).is_err() {
                    return Ok(()); // the verifier stopped reading
                }
            }
        }
        if !page.is_empty() {
            let _ = pages_tx.blocking_send(Ok(page));
        }
        Ok(())
    })();
    if let Err(e) = rows {
        let _ = pages_tx.blocking_send(Err(e));
    }
    let _ = conn.execute_batch("COMMIT");
}

/// A text column's bytes. A NULL or a number where text belongs reads as empty, so the
/// verifier calls the row malformed rather than the read failing.
fn text_at<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<&'r [u8]> {
    use rusqlite::types::ValueRef;
    Ok(match row.get_ref(i)? {
        ValueRef::Text(b) | ValueRef::Blob(b) => b,
        _ => b"",
    })
}

/// Reads the header on a first connection, exports its snapshot, and starts the page
/// readers: reader `r` reads pages `r, r + n, r + 2n, …`, page `k` being the rows with
/// `k·P < seq ≤ (k+1)·P` (`P` = [`SCAN_PAGE_ROWS`]; the first page also takes any `seq ≤ 0`,
/// the last any seq beyond the row count), so every row is read exactly once whatever the
/// seqs are.
async fn postgres_scan(
    url: &str,
    up_to: i64,
    header_tx: oneshot::Sender<Result<Header>>,
    senders: Vec<mpsc::Sender<Result<LogPage>>>,
) {
    use sqlx::{Connection, Row};
    let started = async {
        let mut conn = sqlx::postgres::PgConnection::connect(url).await?;
        sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut conn)
            .await?;
        let head = sqlx::query("SELECT seq, hash FROM chain_head WHERE id = 1")
            .fetch_optional(&mut conn)
            .await?
            .ok_or_else(|| StoreError::Corrupt("chain_head: the row id=1 is missing".into()))?;
        let head: (i64, String) = (head.try_get(0)?, head.try_get(1)?);
        let checkpoints = sqlx::query(&format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY tree_size, pos"
        ))
        .fetch_all(&mut conn)
        .await?
        .iter()
        .map(|r| {
            checkpoint_from_parts(
                r.try_get(0)?,
                r.try_get(1)?,
                r.try_get(2)?,
                r.try_get(3)?,
                r.try_get(4)?,
                r.try_get(5)?,
            )
        })
        .collect::<Result<Vec<_>>>()?;
        // The number of rows decides how many pages there are: in an intact log seqs are
        // 1..=n. Rows with other seqs (edited behind the store's back) fall into the first
        // page (below) or the last (beyond), so a forged huge seq costs one page, not
        // millions of empty ones.
        let rows: i64 = sqlx::query("SELECT COUNT(*) FROM events WHERE seq <= $1")
            .bind(up_to)
            .fetch_one(&mut conn)
            .await?
            .try_get(0)?;
        let snapshot: String = sqlx::query("SELECT pg_export_snapshot()")
            .fetch_one(&mut conn)
            .await?
            .try_get(0)?;
        Ok::<_, StoreError>((conn, (head, checkpoints), rows, snapshot))
    }
    .await;
    let (first, header, rows, snapshot) = match started {
        Ok(started) => started,
        Err(e) => {
            let _ = header_tx.send(Err(e));
            return;
        }
    };
    let page_rows = SCAN_PAGE_ROWS as i64;
    let pages = (rows.max(1) + page_rows - 1) / page_rows;
    let readers = senders.len() as i64;
    let mut tasks = Vec::new();
    for (r, tx) in senders.into_iter().enumerate() {
        let url = url.to_string();
        let snapshot = snapshot.clone();
        tasks.push(tokio::spawn(async move {
            let read = async {
                let mut conn = sqlx::postgres::PgConnection::connect(&url).await?;
                sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .execute(&mut conn)
                    .await?;
                // The snapshot id is PostgreSQL's own text; quoted as a literal anyway.
                sqlx::query(&format!(
                    "SET TRANSACTION SNAPSHOT '{}'",
                    snapshot.replace('\'', "''")
                ))
                .execute(&mut conn)
                .await?;
                let mut k = r as i64;
                while k < pages {
                    let low = if k == 0 { i64::MIN } else { k * page_rows };
                    let high = if k == pages - 1 {
                        up_to
                    } else {
                        (k + 1) * page_rows
                    };
                    let mut page = LogPage::postgres(SCAN_PAGE_ROWS);
                    let mut rows = sqlx::query(
                        "SELECT seq, prev_hash, hash, canonical FROM events \
                         WHERE seq > $1 AND seq <= $2 ORDER BY seq",
                    )
                    .bind(low)
                    .bind(high)
                    .fetch(&mut conn);
                    while let Some(row) = rows.next().await {
                        let row = row?;
                        page.push_pg(row.try_get(0)?, row);
                    }
                    drop(rows);
                    // Every page is sent, even an empty one, so turns stay in step.
                    if tx.send(Ok(page)).await.is_err() {
                        return Ok(()); // the verifier stopped reading
                    }
                    k += readers;
                }
                let _ = sqlx::query("COMMIT").execute(&mut conn).await;
                Ok::<_, StoreError>(())
            }
            .await;
            if let Err(e) = read {
                let _ = tx.send(Err(e)).await;
            }
        }));
    }
    // The exporting transaction must stay open until every reader has imported the
    // snapshot; keep it until they are done.
    let _ = header_tx.send(Ok(header));
    for t in tasks {
        let _ = t.await;
    }
    let mut first = first;
    let _ = sqlx::query("COMMIT").execute(&mut first).await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn bytes_that_are_not_utf8_pass_lossily() {
        let mut page = LogPage::copied(1);
        page.push(7, b"a", b"b", b"{\xff}");
        let leaf = page.iter().next().unwrap();
        assert_eq!(leaf.canonical, "{\u{fffd}}");
    }
}
