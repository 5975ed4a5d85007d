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
//! - **PostgreSQL**: a dedicated connection, `REPEATABLE READ READ ONLY`, and the rows as
//!   `COPY (SELECT …) TO STDOUT (FORMAT binary)`, parsed here (the format is small and
//!   stable: signature, then per row a field count and length-prefixed fields).
//!
//! Nothing is interpreted beyond splitting rows: a value that is not UTF-8 (only possible if
//! someone wrote the table behind the store's back) is passed on lossily, so its hash no
//! longer matches and the verifier names the row as altered instead of the read failing.

use crate::checkpoints::{checkpoint_from_parts, CheckpointRecord, CHECKPOINT_COLUMNS};
use crate::{Backend, Result, Store, StoreError};
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};

/// Rows per page: big enough that channel hand-offs cost nothing, small enough (≈ 1.5 MB of
/// typical events) that memory stays flat whatever the log's length.
pub const SCAN_PAGE_ROWS: usize = 4096;

/// Pages read ahead of the verifier.
const READ_AHEAD: usize = 2;

/// One page of event rows, verbatim, in one buffer.
#[derive(Debug, Default)]
pub struct LogPage {
    text: String,
    rows: Vec<PageRow>,
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
    fn with_capacity(rows: usize) -> LogPage {
        LogPage {
            text: String::with_capacity(rows * 512),
            rows: Vec::with_capacity(rows),
        }
    }

    fn push(&mut self, seq: i64, prev_hash: &[u8], hash: &[u8], canonical: &[u8]) {
        let start = self.text.len();
        push_text(&mut self.text, prev_hash);
        let prev_end = self.text.len();
        push_text(&mut self.text, hash);
        let hash_end = self.text.len();
        push_text(&mut self.text, canonical);
        self.rows.push(PageRow {
            seq,
            start,
            prev_end,
            hash_end,
            end: self.text.len(),
        });
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = PageLeaf<'_>> {
        self.rows.iter().map(|r| PageLeaf {
            seq: r.seq,
            prev_hash: &self.text[r.start..r.prev_end],
            hash: &self.text[r.prev_end..r.hash_end],
            canonical: &self.text[r.hash_end..r.end],
        })
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
    pages: mpsc::Receiver<Result<LogPage>>,
}

impl LogScan {
    /// The next page; `None` after the last one. For a blocking thread.
    pub fn blocking_next(&mut self) -> Option<Result<LogPage>> {
        self.pages.blocking_recv()
    }

    /// The next page; `None` after the last one.
    pub async fn next(&mut self) -> Option<Result<LogPage>> {
        self.pages.recv().await
    }
}

type Header = ((i64, String), Vec<CheckpointRecord>);

impl Store {
    /// Start reading the log: rows with `seq <= up_to` (all when `None`), the chain head and
    /// every checkpoint, all in one snapshot taken now. Dropping the scan stops the reader.
    pub async fn scan_log(&self, up_to: Option<i64>) -> Result<LogScan> {
        let up_to = up_to.unwrap_or(i64::MAX);
        let (header_tx, header_rx) = oneshot::channel::<Result<Header>>();
        let (pages_tx, pages) = mpsc::channel(READ_AHEAD);
        match self.backend {
            Backend::Sqlite => {
                let path = sqlite_path(&self.url)?;
                tokio::task::spawn_blocking(move || {
                    sqlite_scan(&path, up_to, header_tx, &pages_tx);
                });
            }
            Backend::Postgres => {
                let url = self.url.clone();
                tokio::spawn(async move {
                    postgres_scan(&url, up_to, header_tx, &pages_tx).await;
                });
            }
        }
        let (head, checkpoints) = header_rx
            .await
            .map_err(|_| StoreError::Corrupt("the log reader stopped before reading".into()))??;
        Ok(LogScan {
            head,
            checkpoints,
            pages,
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
        let mut page = LogPage::with_capacity(SCAN_PAGE_ROWS);
        while let Some(row) = rows.next().map_err(sql_err)? {
            let seq: i64 = row.get(0).map_err(sql_err)?;
            page.push(
                seq,
                text_at(row, 1).map_err(sql_err)?,
                text_at(row, 2).map_err(sql_err)?,
                text_at(row, 3).map_err(sql_err)?,
            );
            if page.len() == SCAN_PAGE_ROWS {
                let full = std::mem::replace(&mut page, LogPage::with_capacity(SCAN_PAGE_ROWS));
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

async fn postgres_scan(
    url: &str,
    up_to: i64,
    header_tx: oneshot::Sender<Result<Header>>,
    pages_tx: &mpsc::Sender<Result<LogPage>>,
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
        Ok::<_, StoreError>((conn, (head, checkpoints)))
    }
    .await;
    let mut conn = match started {
        Ok((conn, header)) => {
            if header_tx.send(Ok(header)).is_err() {
                return;
            }
            conn
        }
        Err(e) => {
            let _ = header_tx.send(Err(e));
            return;
        }
    };
    // COPY takes no bind parameters; `up_to` is an integer, formatted here.
    let sql = format!(
        "COPY (SELECT seq, prev_hash, hash, canonical FROM events WHERE seq <= {up_to} \
         ORDER BY seq) TO STDOUT (FORMAT binary)"
    );
    let copied = async {
        let mut stream = conn.copy_out_raw(&sql).await?;
        let mut parser = CopyParser::default();
        let mut page = LogPage::with_capacity(SCAN_PAGE_ROWS);
        while let Some(chunk) = stream.next().await {
            parser.feed(&chunk?);
            while parser.next_row(&mut page)? {
                if page.len() == SCAN_PAGE_ROWS {
                    let full = std::mem::replace(&mut page, LogPage::with_capacity(SCAN_PAGE_ROWS));
                    if pages_tx.send(Ok(full)).await.is_err() {
                        return Ok(false); // the verifier stopped reading
                    }
                }
            }
        }
        parser.finish()?;
        if !page.is_empty() {
            let _ = pages_tx.send(Ok(page)).await;
        }
        Ok::<_, StoreError>(true)
    }
    .await;
    match copied {
        Ok(true) => {
            let _ = sqlx::query("COMMIT").execute(&mut conn).await;
        }
        // Stopped early: the COPY may still be streaming; closing the connection ends it.
        Ok(false) => {}
        Err(e) => {
            let _ = pages_tx.send(Err(e)).await;
        }
    }
}

/// PostgreSQL's binary COPY format, for rows of `(int8, text, text, text)`.
#[derive(Debug, Default)]
struct CopyParser {
    buf: Vec<u8>,
    pos: usize,
    header_read: bool,
    ended: bool,
}

const COPY_SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

impl CopyParser {
    fn feed(&mut self, bytes: &[u8]) {
        if self.pos > 0 && self.pos * 2 >= self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    fn rest(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Parse the next whole row into `page`; `false` when more bytes are needed (or the
    /// trailer was read).
    fn next_row(&mut self, page: &mut LogPage) -> Result<bool> {
        let bad = |what: &str| StoreError::Corrupt(format!("COPY of the event log: {what}"));
        if self.ended {
            return Ok(false);
        }
        if !self.header_read {
            let rest = self.rest();
            if rest.len() < 19 {
                return Ok(false);
            }
            if &rest[..11] != COPY_SIGNATURE {
                return Err(bad("the binary signature is missing"));
            }
            let ext = u32::from_be_bytes([rest[15], rest[16], rest[17], rest[18]]) as usize;
            if rest.len() < 19 + ext {
                return Ok(false);
            }
            self.pos += 19 + ext;
            self.header_read = true;
        }
        let rest = self.rest();
        if rest.len() < 2 {
            return Ok(false);
        }
        let fields = i16::from_be_bytes([rest[0], rest[1]]);
        if fields == -1 {
            self.pos += 2;
            self.ended = true;
            return Ok(false);
        }
        if fields != 4 {
            return Err(bad(&format!("a row has {fields} fields, 4 expected")));
        }
        // Find the four fields' extents before consuming anything.
        let mut at = 2;
        let mut spans = [(0usize, 0usize); 4];
        for span in &mut spans {
            let Some(len) = rest.get(at..at + 4) else {
                return Ok(false);
            };
            let len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
            at += 4;
            // NULL (-1) reads as empty: the verifier then reports the row malformed.
            let len = usize::try_from(len).unwrap_or(0);
            if rest.len() < at + len {
                return Ok(false);
            }
            *span = (at, at + len);
            at += len;
        }
        let field = |i: usize| &rest[spans[i].0..spans[i].1];
        let seq = <[u8; 8]>::try_from(field(0))
            .map(i64::from_be_bytes)
            .map_err(|_| bad("seq is not an 8-byte integer"))?;
        page.push(seq, field(1), field(2), field(3));
        self.pos += at;
        Ok(true)
    }

    fn finish(&self) -> Result<()> {
        if self.ended && self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(StoreError::Corrupt(
                "COPY of the event log ended in the middle of a row".into(),
            ))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    fn copy_bytes(rows: &[(i64, &str, &str, &str)]) -> Vec<u8> {
        let mut out = COPY_SIGNATURE.to_vec();
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        for (seq, a, b, c) in rows {
            out.extend_from_slice(&4i16.to_be_bytes());
            out.extend_from_slice(&8i32.to_be_bytes());
            out.extend_from_slice(&seq.to_be_bytes());
            for f in [a, b, c] {
                out.extend_from_slice(&(f.len() as i32).to_be_bytes());
                out.extend_from_slice(f.as_bytes());
            }
        }
        out.extend_from_slice(&(-1i16).to_be_bytes());
        out
    }

    #[test]
    fn copy_rows_parse_whatever_the_chunking() {
        let rows = [
            (1, "p1", "h1", "{\"a\":\"\\\\ \\\"x\"}"),
            (2, "h1", "h2", ""),
        ];
        let bytes = copy_bytes(&rows);
        for chunk in 1..bytes.len() {
            let mut parser = CopyParser::default();
            let mut page = LogPage::default();
            for piece in bytes.chunks(chunk) {
                parser.feed(piece);
                while parser.next_row(&mut page).unwrap() {}
            }
            parser.finish().unwrap();
            let got: Vec<_> = page
                .iter()
                .map(|l| (l.seq, l.prev_hash, l.hash, l.canonical))
                .collect();
            assert_eq!(got, rows, "chunk size {chunk}");
        }
    }

    #[test]
    fn a_cut_copy_or_a_foreign_shape_is_an_error() {
        let bytes = copy_bytes(&[(1, "p", "h", "c")]);
        let mut parser = CopyParser::default();
        let mut page = LogPage::default();
        parser.feed(&bytes[..bytes.len() - 3]);
        while parser.next_row(&mut page).unwrap() {}
        assert!(parser.finish().is_err());

        let mut wrong = bytes.clone();
        wrong[19..21].copy_from_slice(&3i16.to_be_bytes());
        let mut parser = CopyParser::default();
        parser.feed(&wrong);
        assert!(parser.next_row(&mut LogPage::default()).is_err());

        let mut parser = CopyParser::default();
        parser.feed(b"NOTCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0");
        assert!(parser.next_row(&mut LogPage::default()).is_err());
    }

    #[test]
    fn bytes_that_are_not_utf8_pass_lossily() {
        let mut page = LogPage::default();
        page.push(7, b"a", b"b", b"{\xff}");
        let leaf = page.iter().next().unwrap();
        assert_eq!(leaf.canonical, "{\u{fffd}}");
    }
}
