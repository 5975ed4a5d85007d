//! Session recordings: one row per chunk, its place and hashes as its `recording.chunk`
//! event recorded them, and its bytes once delivered. Which chunk may follow which, and
//! whether bytes match, are `jitgate_core::recording`'s rules; this only keeps the record.

use crate::codec::{from_ms, ms};
use crate::{Result, Tx};
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
    /// Standard base64 of the bytes, once delivered (not read by the listing queries).
    pub data: Option<String>,
    pub stored_at: Option<Timestamp>,
}

const META: &str = "session_id, idx, grant_id, gateway, event_seq, byte_offset, length, last, \
                    prev_hash, hash, recorded_at, stored_at";

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
            "SELECT {META} FROM recording_chunks WHERE session_id = $1 ORDER BY idx DESC LIMIT 1"
        ))
        .bind(session_id)
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(|r| from_row(r, false)).transpose()
    }

    /// One chunk with its bytes (if delivered).
    pub async fn recording_chunk(
        &mut self,
        session_id: &str,
        index: u64,
    ) -> Result<Option<RecordingChunkRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {META}, data FROM recording_chunks WHERE session_id = $1 AND idx = $2"
        ))
        .bind(session_id)
        .bind(index as i64)
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(|r| from_row(r, true)).transpose()
    }

    /// Store a chunk's delivered bytes once: `false` when they were already stored.
    pub async fn store_recording_data(
        &mut self,
        session_id: &str,
        index: u64,
        data_base64: &str,
        at: Timestamp,
    ) -> Result<bool> {
        self.need_write("store_recording_data")?;
        let done = sqlx::query(
            "UPDATE recording_chunks SET data = $1, stored_at = $2 \
             WHERE session_id = $3 AND idx = $4 AND data IS NULL",
        )
        .bind(data_base64)
        .bind(ms(at))
        .bind(session_id)
        .bind(index as i64)
        .execute(self.conn())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// A session's chunks in index order; with their bytes when `with_data`.
    pub async fn recording_chunks(
        &mut self,
        session_id: &str,
        with_data: bool,
    ) -> Result<Vec<RecordingChunkRecord>> {
        let cols = if with_data {
            format!("{META}, data")
        } else {
            META.to_string()
        };
        let rows = sqlx::query(&format!(
            "SELECT {cols} FROM recording_chunks WHERE session_id = $1 ORDER BY idx"
        ))
        .bind(session_id)
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
                    "SELECT {META} FROM recording_chunks WHERE grant_id = $1 \
                     ORDER BY session_id, idx LIMIT $2"
                ))
                .bind(g)
                .bind(limit)
                .fetch_all(self.conn())
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {META} FROM recording_chunks ORDER BY session_id, idx LIMIT $1"
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
            "SELECT {META}, data FROM recording_chunks WHERE grant_id = $1 ORDER BY session_id, idx"
        ))
        .bind(grant_id)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(|r| from_row(r, true)).collect()
    }
}
