//! Session recordings: one row per chunk in `recording_chunks`, its place and hashes as its
//! `recording.chunk` event recorded them, and its bytes once delivered in a table of their
//! own, `recording_chunk_data` (BLOB / BYTEA). Which chunk may follow which, and whether
//! bytes match, are `jitgate_core::recording`'s rules; this only keeps the record.
//!
//! Why the bytes live apart: listing recordings and checking a chain's head read every
//! chunk's row, and with the bytes in the row SQLite walked each chunk's overflow pages to
//! reach the columns after them (docs/BENCHMARKS.md, "SSH through the gateway"). Raw bytes,
//! not base64: a third smaller, nothing to encode or decode.

use crate::codec::{from_ms, ms};
use crate::{Result, Store, StoreError, Tx};
use base64::Engine as _;
use jitgate_core::Timestamp;
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingChunkRecord {
    pub session_id: String,
    pub index: u64,
    pub grant_id: String,
    /// The gateway that reported it (the only one that may deliver its bytes).
    pub gateway: String,
    /// Seq of its `recording.chunk` event.
    pub event_seq: i64,
    pub offset: u64,
    pub length: u64,
    pub last: bool,
    /// Lowercase hex.
    pub prev_hash: String,
    pub hash: String,
    pub recorded_at: Timestamp,
    /// The bytes, once delivered, when the query asked for them (the listing queries never
    /// read them).
    pub data: Option<Vec<u8>>,
    pub stored_at: Option<Timestamp>,
}

const META: &str = "c.session_id, c.idx, c.grant_id, c.gateway, c.event_seq, c.byte_offset, \
                    c.length, c.last, c.prev_hash, c.hash, c.recorded_at, c.stored_at";

/// The chunk rows (`c`) with their bytes (`d.data`, NULL until delivered).
const WITH_DATA: &str = "recording_chunks c LEFT JOIN recording_chunk_data d \
                         ON d.session_id = c.session_id AND d.idx = c.idx";

fn num(row: &AnyRow, col: &str) -> Result<u64> {
    let v: i64 = row.try_get(col)?;
    Ok(v.max(0) as u64)
}

fn from_row(row: &AnyRow, with_data: bool) -> Result<RecordingChunkRecord> {
    let session_id: String = row.try_get("session_id")?;
    let index = num(row, "idx")?;
    let at = format!("recording_chunks {session_id}/{index}");
    let stored_at: Option<i64> = row.try_get("stored_at")?;
    Ok(RecordingChunkRecord {
        grant_id: row.try_get("grant_id")?,
        gateway: row.try_get("gateway")?,
        event_seq: row.try_get("event_seq")?,
        offset: num(row, "byte_offset")?,
        length: num(row, "length")?,
        last: num(row, "last")? != 0,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
        recorded_at: from_ms(row.try_get("recorded_at")?, &format!("{at} recorded_at"))?,
        data: if with_data {
            row.try_get("data")?
        } else {
            None
        },
        stored_at: match stored_at {
            Some(t) => Some(from_ms(t, &format!("{at} stored_at"))?),
            None => None,
        },
        session_id,
        index,
    })
}

impl Tx {
    /// Record a chunk's place and hashes (a session and index already recorded is a
    /// `Conflict`). `data` and `stored_at` are ignored: bytes come with
    /// [`Tx::store_recording_data`].
    pub async fn insert_recording_chunk(&mut self, c: &RecordingChunkRecord) -> Result<()> {
        self.need_write("insert_recording_chunk")?;
        sqlx::query(
            "INSERT INTO recording_chunks (session_id, idx, grant_id, gateway, event_seq, \
             byte_offset, length, last, prev_hash, hash, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&c.session_id)
        .bind(c.index as i64)
        .bind(&c.grant_id)
        .bind(&c.gateway)
        .bind(c.event_seq)
        .bind(c.offset as i64)
        .bind(c.length as i64)
        .bind(i64::from(c.last))
        .bind(&c.prev_hash)
        .bind(&c.hash)
        .bind(ms(c.recorded_at))
        .execute(self.conn())
        .await?;
        Ok(())
    }

    /// The chunk of a session with the highest index (the chain's head), without bytes.
    pub async fn recording_head(
        &mut self,
        session_id: &str,
    ) -> Result<Option<RecordingChunkRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {META} FROM recording_chunks c WHERE c.session_id = $1 \
             ORDER BY c.idx DESC LIMIT 1"
        ))
        .bind(session_id)
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(|r| from_row(r, false)).transpose()
    }

    /// One chunk, without its bytes (`stored_at` says whether they were delivered).
    pub async fn recording_chunk(
        &mut self,
        session_id: &str,
        index: u64,
    ) -> Result<Option<RecordingChunkRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {META} FROM recording_chunks c WHERE c.session_id = $1 AND c.idx = $2"
        ))
        .bind(session_id)
        .bind(index as i64)
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(|r| from_row(r, false)).transpose()
    }

    /// Store a chunk's delivered bytes once: `false` when they were already stored (or the
    /// chunk is not recorded).
    pub async fn store_recording_data(
        &mut self,
        session_id: &str,
        index: u64,
        data: &[u8],
        at: Timestamp,
    ) -> Result<bool> {
        self.need_write("store_recording_data")?;
        // Under the write lock: marking the row first decides who stores the bytes.
        let marked = sqlx::query(
            "UPDATE recording_chunks SET stored_at = $1 \
             WHERE session_id = $2 AND idx = $3 AND stored_at IS NULL",
        )
        .bind(ms(at))
        .bind(session_id)
        .bind(index as i64)
        .execute(self.conn())
        .await?;
        if marked.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("INSERT INTO recording_chunk_data (session_id, idx, data) VALUES ($1, $2, $3)")
            .bind(session_id)
            .bind(index as i64)
            .bind(data)
            .execute(self.conn())
            .await?;
        Ok(true)
    }

    /// A session's chunks in index order, from chunk `from` on; with their bytes when
    /// `with_data`.
    pub async fn recording_chunks(
        &mut self,
        session_id: &str,
        from: u64,
        with_data: bool,
    ) -> Result<Vec<RecordingChunkRecord>> {
        let sql = if with_data {
            format!(
                "SELECT {META}, d.data FROM {WITH_DATA} \
                 WHERE c.session_id = $1 AND c.idx >= $2 ORDER BY c.idx"
            )
        } else {
            format!(
                "SELECT {META} FROM recording_chunks c \
                 WHERE c.session_id = $1 AND c.idx >= $2 ORDER BY c.idx"
            )
        };
        let rows = sqlx::query(&sql)
            .bind(session_id)
            .bind(i64::try_from(from).unwrap_or(i64::MAX))
            .fetch_all(self.conn())
            .await?;
        rows.iter().map(|r| from_row(r, with_data)).collect()
    }

    /// Chunks (without bytes) of one grant, or of every grant, by session and index; at
    /// most `limit` rows.
    pub async fn recording_index(
        &mut self,
        grant_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RecordingChunkRecord>> {
        let rows = match grant_id {
            Some(g) => {
                sqlx::query(&format!(
                    "SELECT {META} FROM recording_chunks c WHERE c.grant_id = $1 \
                     ORDER BY c.session_id, c.idx LIMIT $2"
                ))
                .bind(g)
                .bind(limit)
                .fetch_all(self.conn())
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {META} FROM recording_chunks c ORDER BY c.session_id, c.idx LIMIT $1"
                ))
                .bind(limit)
                .fetch_all(self.conn())
                .await?
            }
        };
        rows.iter().map(|r| from_row(r, false)).collect()
    }

    /// Every chunk of a grant with its bytes, by session and index (for its bundle).
    pub async fn recording_chunks_of_grant(
        &mut self,
        grant_id: &str,
    ) -> Result<Vec<RecordingChunkRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {META}, d.data FROM {WITH_DATA} WHERE c.grant_id = $1 \
             ORDER BY c.session_id, c.idx"
        ))
        .bind(grant_id)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(|r| from_row(r, true)).collect()
    }
}

/// Chunks moved per query by [`move_base64_data`].
const MOVE_BATCH: i64 = 64;

/// Finish migration 0011 on SQLite: before it, chunk bytes were standard base64 in
/// `recording_chunks.data`. SQLite cannot decode base64 in SQL (PostgreSQL's migration
/// does), so here, in one write transaction, every stored chunk's bytes are decoded into
/// `recording_chunk_data` and then the old column is dropped. Runs when the column exists
/// (once); a crash in between rolls it all back and the next start does it again. A value
/// that does not decode stops the store from opening rather than losing it.
pub(crate) async fn move_base64_data(store: &Store) -> Result<()> {
    let has_column: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pragma_table_info('recording_chunks') WHERE name = 'data'",
    )
    .fetch_one(&store.pool)
    .await?;
    if has_column == 0 {
        return Ok(());
    }
    let mut tx = store.write().await?;
    let (mut after_session, mut after_idx) = (String::new(), -1i64);
    let mut moved = 0u64;
    loop {
        let rows = sqlx::query(
            "SELECT session_id, idx, data FROM recording_chunks \
             WHERE data IS NOT NULL AND (session_id > $1 OR (session_id = $1 AND idx > $2)) \
             ORDER BY session_id, idx LIMIT $3",
        )
        .bind(&after_session)
        .bind(after_idx)
        .bind(MOVE_BATCH)
        .fetch_all(tx.conn())
        .await?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            let session: String = row.try_get("session_id")?;
            let idx: i64 = row.try_get("idx")?;
            let text: String = row.try_get("data")?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.as_bytes())
                .map_err(|e| {
                    StoreError::Corrupt(format!(
                        "recording_chunks {session}/{idx}: the stored bytes are not base64 ({e}); \
                         nothing was moved"
                    ))
                })?;
            sqlx::query(
                "INSERT INTO recording_chunk_data (session_id, idx, data) VALUES ($1, $2, $3)",
            )
            .bind(&session)
            .bind(idx)
            .bind(bytes)
            .execute(tx.conn())
            .await?;
            (after_session, after_idx) = (session, idx);
            moved += 1;
        }
    }
    sqlx::query("ALTER TABLE recording_chunks DROP COLUMN data")
        .execute(tx.conn())
        .await?;
    tx.commit().await?;
    tracing::info!(
        chunks = moved,
        "recording bytes moved out of recording_chunks (migration 0011)"
    );
    Ok(())
}
