//! The evidence log: every event is stored with its canonical bytes verbatim and chained,
//! `hash = hex(SHA-256(prev_hash_bytes || canonical))`, starting from 32 zero bytes.
//! `chain_head` (one row) holds the last seq and hash, so an append needs no scan and a
//! truncated log is detectable. Sequence numbers are assigned here, gapless, under the
//! write lock every write transaction takes first.

use crate::codec::{from_json, limit, ms, Arg, Sql};
use crate::{Result, StoreError, Tx};
use jitgate_core::teardown::SessionEvidence;
use jitgate_core::Event;
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::Row;

/// The `prev_hash` of event 1: hex of 32 zero bytes.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How many rows [`Tx::verify_chain`] reads per query, so memory stays flat on long logs.
const VERIFY_PAGE: i64 = 1000;

/// Which events to list, in sequence order. Filters combine with AND.
#[derive(Debug, Clone)]
pub struct EventFilter {
    pub request_id: Option<String>,
    pub grant_id: Option<String>,
    /// Only events after this sequence number (for paging and tailing).
    pub after_seq: Option<i64>,
    /// At most this many (non-positive: the default, 1000).
    pub limit: i64,
}

impl Default for EventFilter {
    fn default() -> Self {
        EventFilter {
            request_id: None,
            grant_id: None,
            after_seq: None,
            limit: 1000,
        }
    }
}

/// An event as stored: its place in the chain, and the exact bytes that were hashed.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub seq: i64,
    pub prev_hash: String,
    pub hash: String,
    pub event: Event,
    /// The canonical bytes the hash covers, verbatim; what an offline verifier re-hashes.
    pub canonical: String,
}

/// The outcome of [`Tx::verify_chain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Number of events stored.
    pub events: i64,
    /// The hash the chain head records (of the last event, or [`GENESIS_HASH`]).
    pub head: String,
    /// The first sequence number at which the log is wrong, and what is wrong there.
    pub first_bad: Option<(i64, String)>,
}

impl ChainReport {
    pub fn is_ok(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// `hex(SHA-256(prev || canonical))` where `prev` is the 32 bytes `prev_hash` encodes;
/// `None` if `prev_hash` is not 64 hex digits. Public so offline verifiers use the same rule.
pub fn chain_hash(prev_hash: &str, canonical: &[u8]) -> Option<String> {
    let prev = hex::decode(prev_hash).ok()?;
    if prev.len() != 32 {
        return None;
    }
    let mut h = Sha256::new();
    h.update(&prev);
    h.update(canonical);
    Some(hex::encode(h.finalize()))
}

/// [`chain_hash`] for a chain being appended: `prev` (bytes) becomes the new hash, which is
/// returned as hex — the same rule without decoding the previous hash from hex each time.
fn next_hash(prev: &mut [u8; 32], canonical: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(*prev);
    h.update(canonical);
    prev.copy_from_slice(&h.finalize());
    let mut text = [0u8; 64];
    // 32 bytes always fit 64 hex digits, which are ASCII.
    let _ = hex::encode_to_slice(*prev, &mut text);
    text.iter().map(|&b| char::from(b)).collect()
}

fn stored_from_row(row: &AnyRow) -> Result<StoredEvent> {
    let seq: i64 = row.try_get("seq")?;
    let canonical: String = row.try_get("canonical")?;
    Ok(StoredEvent {
        event: from_json(&canonical, &format!("events seq={seq}"))?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
        canonical,
        seq,
    })
}

impl Tx {
    async fn chain_head(&mut self) -> Result<(i64, String)> {
        if let Some(head) = &self.head {
            return Ok(head.clone());
        }
        let row = sqlx::query("SELECT seq, hash FROM chain_head WHERE id = 1")
            .fetch_optional(self.conn())
            .await?
            .ok_or_else(|| StoreError::Corrupt("chain_head: the row id=1 is missing".into()))?;
        Ok((row.try_get("seq")?, row.try_get("hash")?))
    }

    /// Append events in order; returns their sequence numbers (consecutive, gapless).
    pub async fn append_events(&mut self, events: &[Event]) -> Result<Vec<i64>> {
        let encoded = events
            .iter()
            .map(|event| {
                let canonical = String::from_utf8(event.canonical_bytes()).map_err(|e| {
                    StoreError::Encode(format!("event {}: {e}", event.kind.as_str()))
                })?;
                Ok((event, canonical))
            })
            .collect::<Result<Vec<_>>>()?;
        self.append_encoded(&encoded).await
    }

    /// [`Tx::append_events`] for events whose canonical text the caller has written
    /// already (the server writes a gateway's operations from the text they arrived in,
    /// `Event::canonical_bytes_with_data`). Each text must be the event's canonical bytes:
    /// the event's columns (kind, actor, time, ids) come from `Event`, the hash and what
    /// verifiers read from the text.
    pub async fn append_encoded<E: std::borrow::Borrow<Event> + Sync>(
        &mut self,
        events: &[(E, String)],
    ) -> Result<Vec<i64>> {
        self.need_write("append_events")?;
        if events.is_empty() {
            return Ok(Vec::new());
        }
        // Rows per statement. Bind-parameter limits (SQLite 32766, PostgreSQL 65535) cap it
        // at ~3000, but binding costs more than linearly in the statement's size: 100 rows
        // per statement appended 6x faster than 1000 (docs/BENCHMARKS.md, "Evidence log").
        const MAX_ROWS: usize = 100;
        if events.len() > MAX_ROWS {
            let mut seqs = Vec::with_capacity(events.len());
            for chunk in events.chunks(MAX_ROWS) {
                seqs.extend(Box::pin(self.append_encoded(chunk)).await?);
            }
            return Ok(seqs);
        }
        let (mut seq, mut prev) = self.chain_head().await?;
        // The previous hash as bytes, decoded once per append (not once per event).
        let mut prev_bytes: [u8; 32] = hex::decode(&prev)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                StoreError::Corrupt(format!("chain_head: hash {prev:?} is not 64 hex digits"))
            })?;
        let mut seqs = Vec::with_capacity(events.len());
        let mut rows = Vec::with_capacity(events.len());
        for (event, canonical) in events {
            let event: &Event = event.borrow();
            if canonical.is_empty() {
                return Err(StoreError::Encode(format!(
                    "event {}: no canonical form",
                    event.kind.as_str()
                )));
            }
            let hash = next_hash(&mut prev_bytes, canonical.as_bytes());
            seq += 1;
            seqs.push(seq);
            rows.push((
                seq,
                std::mem::replace(&mut prev, hash.clone()),
                hash,
                event,
                canonical,
            ));
        }
        // One round trip per call, under the write lock where every round trip counts: the
        // multi-row INSERT and the chain head's move travel together — as a data-modifying
        // CTE on PostgreSQL, as two statements in one call on SQLite.
        let mut sql = String::from(match self.backend() {
            crate::Backend::Postgres => "WITH ins AS (INSERT INTO events (seq, prev_hash, hash, kind, actor, at, request_id, \
             approval_id, grant_id, canonical) VALUES ",
            crate::Backend::Sqlite => "INSERT INTO events (seq, prev_hash, hash, kind, actor, at, request_id, \
             approval_id, grant_id, canonical) VALUES ",
        });
        // Placeholders: numbered (`$n`) on PostgreSQL, plain `?` on SQLite. SQLite finds a
        // numbered parameter's name by a linear walk of the statement's parameter list, and
        // the driver asks for every parameter's name at every execution: with 1,002
        // parameters that walk was a fifth of the server's CPU while a gateway's operations
        // were recorded (docs/BENCHMARKS.md, "Modbus through the gateway"). Plain `?` are
        // bound in order, with no names to look up.
        let numbered = matches!(self.backend(), crate::Backend::Postgres);
        let mut param = 0usize;
        let mut next = |sql: &mut String| {
            param += 1;
            if numbered {
                sql.push_str(&format!("${param}"));
            } else {
                sql.push('?');
            }
        };
        for n in 0..rows.len() {
            sql.push_str(if n > 0 { ", (" } else { "(" });
            for col in 0..10 {
                if col > 0 {
                    sql.push_str(", ");
                }
                next(&mut sql);
            }
            sql.push(')');
        }
        let mut tail = String::new();
        next(&mut tail);
        tail.push_str(", hash = ");
        next(&mut tail);
        match self.backend() {
            crate::Backend::Postgres => sql.push_str(&format!(
                " RETURNING 1) UPDATE chain_head SET seq = {tail} WHERE id = 1"
            )),
            crate::Backend::Sqlite => sql.push_str(&format!(
                "; UPDATE chain_head SET seq = {tail} WHERE id = 1"
            )),
        }
        let mut query = sqlx::query(&sql);
        for (seq, prev_hash, hash, event, canonical) in rows {
            query = query
                .bind(seq)
                .bind(prev_hash)
                .bind(hash)
                .bind(event.kind.as_str())
                .bind(event.actor.0.clone())
                .bind(ms(event.at))
                .bind(event.request_id.clone())
                .bind(event.approval_id.clone())
                .bind(event.grant_id.clone())
                .bind(canonical.as_str());
        }
        query
            .bind(seq)
            .bind(prev.clone())
            .execute(self.conn())
            .await?;
        self.head = Some((seq, prev));
        Ok(seqs)
    }

    /// Events in sequence order.
    pub async fn list_events(&mut self, f: &EventFilter) -> Result<Vec<StoredEvent>> {
        let mut sql = Sql::new("SELECT seq, prev_hash, hash, canonical FROM events WHERE 1 = 1");
        if let Some(id) = &f.request_id {
            let p = sql.arg(Arg::Text(id.clone()));
            sql.push(&format!(" AND request_id = {p}"));
        }
        if let Some(id) = &f.grant_id {
            let p = sql.arg(Arg::Text(id.clone()));
            sql.push(&format!(" AND grant_id = {p}"));
        }
        if let Some(after) = f.after_seq {
            let p = sql.arg(Arg::Int(after));
            sql.push(&format!(" AND seq > {p}"));
        }
        let p = sql.arg(Arg::Int(limit(f.limit, 1000)));
        sql.push(&format!(" ORDER BY seq LIMIT {p}"));
        let rows = sql.query().fetch_all(self.conn()).await?;
        rows.iter().map(stored_from_row).collect()
    }

    /// A grant's session evidence: which sessions have a `session.started` event and which a
    /// `session.ended` one (with its sequence number). Reads only those two kinds, so a grant
    /// with many operations costs no more.
    pub async fn session_evidence(&mut self, grant_id: &str) -> Result<SessionEvidence> {
        let rows = sqlx::query(
            "SELECT seq, kind, canonical FROM events WHERE grant_id = $1 \
             AND kind IN ('session.started', 'session.ended') ORDER BY seq",
        )
        .bind(grant_id)
        .fetch_all(self.conn())
        .await?;
        let mut ev = SessionEvidence::default();
        for row in &rows {
            let seq: i64 = row.try_get("seq")?;
            let kind: String = row.try_get("kind")?;
            let canonical: String = row.try_get("canonical")?;
            let event: Event = from_json(&canonical, &format!("events seq={seq}"))?;
            let Some(session) = event.data.get("session_id").and_then(|v| v.as_str()) else {
                continue;
            };
            if kind == "session.started" {
                ev.started.push(session.to_string());
            } else {
                ev.ended.push((session.to_string(), seq));
            }
        }
        Ok(ev)
    }

    /// The sequence number and hash of the last event ((0, [`GENESIS_HASH`]) when empty).
    pub async fn chain_tip(&mut self) -> Result<(i64, String)> {
        self.chain_head().await
    }

    /// Recompute the whole chain in sequence order and report the first place it breaks:
    /// a missing sequence number (deleted event), a `prev_hash` that does not link (events
    /// removed, reordered or replaced), a hash that does not match the stored bytes (event
    /// altered), bytes that are not an event, or a chain head that disagrees with the log
    /// (events cut off the end, or added behind the store's back).
    ///
    /// Needs a consistent view: run it in a [`crate::Store::read`] transaction (a snapshot
    /// on both databases) or a write transaction.
    pub async fn verify_chain(&mut self) -> Result<ChainReport> {
        let (head_seq, head_hash) = self.chain_head().await?;
        let total: i64 = sqlx::query("SELECT COUNT(*) AS n FROM events")
            .fetch_one(self.conn())
            .await?
            .try_get("n")?;
        let report = |first_bad| ChainReport {
            events: total,
            head: head_hash.clone(),
            first_bad,
        };
        let mut expected = 1_i64;
        let mut prev = GENESIS_HASH.to_string();
        loop {
            let rows = sqlx::query(
                "SELECT seq, prev_hash, hash, canonical FROM events WHERE seq >= $1 \
                 ORDER BY seq LIMIT $2",
            )
            .bind(expected)
            .bind(VERIFY_PAGE)
            .fetch_all(self.conn())
            .await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let seq: i64 = row.try_get("seq")?;
                let prev_hash: String = row.try_get("prev_hash")?;
                let hash: String = row.try_get("hash")?;
                let canonical: String = row.try_get("canonical")?;
                if seq != expected {
                    return Ok(report(Some((
                        expected,
                        format!(
                            "event {expected} is missing: the log goes from {} to {seq}",
                            expected - 1
                        ),
                    ))));
                }
                if prev_hash != prev {
                    return Ok(report(Some((
                        seq,
                        format!(
                            "prev_hash does not link to event {}: events were removed, reordered or replaced",
                            seq - 1
                        ),
                    ))));
                }
                if chain_hash(&prev, canonical.as_bytes()).as_deref() != Some(hash.as_str()) {
                    return Ok(report(Some((
                        seq,
                        "hash does not match the stored event bytes: the event was altered"
                            .to_string(),
                    ))));
                }
                if let Err(e) = serde_json::from_str::<Event>(&canonical) {
                    return Ok(report(Some((
                        seq,
                        format!("stored bytes are not an event: {e}"),
                    ))));
                }
                prev = hash;
                expected += 1;
            }
        }
        let last = expected - 1;
        let first_bad = if last < head_seq {
            Some((
                last + 1,
                format!(
                    "events {}..{head_seq} are missing: the chain head records {head_seq} events \
                     but the log ends at {last}",
                    last + 1
                ),
            ))
        } else if last > head_seq {
            Some((
                head_seq + 1,
                format!("event {} lies beyond the chain head ({head_seq}): it was added outside the store", head_seq + 1),
            ))
        } else if prev != head_hash {
            Some((
                head_seq,
                "the chain head hash does not match the last event".to_string(),
            ))
        } else {
            None
        };
        Ok(report(first_bad))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_appending_hash_step_is_the_chain_rule() {
        let mut prev_hex = GENESIS_HASH.to_string();
        let mut prev = [0u8; 32];
        for canonical in ["{\"a\":1}", "", "{\"kind\":\"operation\",\"é\":\"\\n\"}"] {
            let expected = chain_hash(&prev_hex, canonical.as_bytes()).unwrap();
            let got = next_hash(&mut prev, canonical.as_bytes());
            assert_eq!(got, expected);
            assert_eq!(hex::encode(prev), expected);
            prev_hex = got;
        }
    }
}
