//! What several server nodes on one database share beyond the lifecycle tables
//! (`migrations/*/0010_cluster.sql`, docs/cluster.md):
//!
//! - **wake-ups**: [`Tx::notify`] sends a PostgreSQL `NOTIFY` (delivered when the transaction
//!   commits, or at once on a plain read handle); [`Store::listen`] opens the `LISTEN`
//!   connection that receives them. On SQLite there is one node, so both do nothing. A
//!   notification is only a wake-up: the database stays the source of truth and every
//!   listener catches up by reading after a reconnect.
//! - **node heartbeats** and **gateway links** (which node holds a gateway's control
//!   channel), **revocation acknowledgements** readable by every node, and **leases** for
//!   work that must run on one node at a time.
//!
//! Heartbeats, links, acknowledgements and leases are written outside the event chain's write
//! lock ([`Store::write`]): they produce no evidence, and a heartbeat must never queue
//! behind a burst of appends.

use crate::codec::{from_ms, ms};
use crate::{Backend, Result, Store, StoreError, Tx};
use jitgate_core::Timestamp;
use sqlx::Row;

/// A node as the `cluster_nodes` table holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    pub id: String,
    /// The base URL other nodes and operators reach it at.
    pub url: String,
    pub started_at: Timestamp,
    pub seen_at: Timestamp,
}

/// The `LISTEN` side of [`Tx::notify`]: one dedicated PostgreSQL connection.
pub struct Listener {
    inner: sqlx::postgres::PgListener,
}

/// One received notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub channel: String,
    pub payload: String,
}

impl Listener {
    /// The next notification. `Ok(None)` means the connection was lost and has been
    /// re-established: notifications sent meanwhile are gone, so the caller must catch up
    /// by reading the database.
    pub async fn recv(&mut self) -> Result<Option<Notification>> {
        match self.inner.try_recv().await? {
            Some(n) => Ok(Some(Notification {
                channel: n.channel().to_string(),
                payload: n.payload().to_string(),
            })),
            None => Ok(None),
        }
    }
}

impl Store {
    /// Listen on `channels` (PostgreSQL); `None` on SQLite, where one process is the only node.
    pub async fn listen(&self, channels: &[&str]) -> Result<Option<Listener>> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut inner = sqlx::postgres::PgListener::connect(&self.url).await?;
        inner.listen_all(channels.iter().copied()).await?;
        Ok(Some(Listener { inner }))
    }

    /// Record that node `id` is alive at `now` (inserted at its first beat).
    pub async fn heartbeat(
        &self,
        id: &str,
        url: &str,
        started_at: Timestamp,
        now: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO cluster_nodes (id, url, started_at, seen_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id) DO UPDATE SET url = excluded.url, \
             started_at = excluded.started_at, seen_at = excluded.seen_at",
        )
        .bind(id)
        .bind(url)
        .bind(ms(started_at))
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every node that ever beat, most recently seen first.
    pub async fn nodes(&self) -> Result<Vec<NodeRecord>> {
        let rows = sqlx::query(
            "SELECT id, url, started_at, seen_at FROM cluster_nodes ORDER BY seen_at DESC, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("id")?;
                let at = format!("cluster_nodes id={id}");
                Ok(NodeRecord {
                    url: r.try_get("url")?,
                    started_at: from_ms(r.try_get("started_at")?, &format!("{at} started_at"))?,
                    seen_at: from_ms(r.try_get("seen_at")?, &format!("{at} seen_at"))?,
                    id,
                })
            })
            .collect()
    }

    /// Gateway `gateway` now holds its control channel with node `node`.
    pub async fn link_gateway(&self, gateway: &str, node: &str, now: Timestamp) -> Result<()> {
        sqlx::query(
            "INSERT INTO gateway_links (gateway, node, since) VALUES ($1, $2, $3) \
             ON CONFLICT (gateway) DO UPDATE SET node = excluded.node, since = excluded.since",
        )
        .bind(gateway)
        .bind(node)
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Gateway `gateway` left node `node` (a link another node took over meanwhile stays).
    pub async fn unlink_gateway(&self, gateway: &str, node: &str) -> Result<()> {
        sqlx::query("DELETE FROM gateway_links WHERE gateway = $1 AND node = $2")
            .bind(gateway)
            .bind(node)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every gateway link: (gateway, node, since).
    pub async fn gateway_links(&self) -> Result<Vec<(String, String, Timestamp)>> {
        let rows = sqlx::query("SELECT gateway, node, since FROM gateway_links ORDER BY gateway")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let gateway: String = r.try_get("gateway")?;
                let since = from_ms(r.try_get("since")?, &format!("gateway_links {gateway}"))?;
                Ok((gateway, r.try_get("node")?, since))
            })
            .collect()
    }

    /// Forget the links of node `node` (at its start: whatever it held before is gone).
    pub async fn unlink_node(&self, node: &str) -> Result<()> {
        sqlx::query("DELETE FROM gateway_links WHERE node = $1")
            .bind(node)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Keep a gateway's acknowledgement of a grant's revocation (JSON), replacing an older one.
    pub async fn put_revocation_ack(
        &self,
        gateway: &str,
        grant_id: &str,
        ack_json: &str,
        now: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO revocation_acks (gateway, grant_id, ack, at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (gateway, grant_id) DO UPDATE SET ack = excluded.ack, at = excluded.at",
        )
        .bind(gateway)
        .bind(grant_id)
        .bind(ack_json)
        .bind(ms(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A gateway's acknowledgement of a grant's revocation (JSON), if one arrived at any node.
    pub async fn revocation_ack(&self, gateway: &str, grant_id: &str) -> Result<Option<String>> {
        let row =
            sqlx::query("SELECT ack FROM revocation_acks WHERE gateway = $1 AND grant_id = $2")
                .bind(gateway)
                .bind(grant_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("ack")?),
            None => None,
        })
    }

    /// Forget the acknowledgements of a grant whose teardown is final.
    pub async fn forget_revocation_acks(&self, grant_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM revocation_acks WHERE grant_id = $1")
            .bind(grant_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Take or renew the lease on `job` for node `node` until `until`: `true` if `node` holds
    /// it now (it was free, expired at `now`, or already `node`'s). Atomic on both backends:
    /// one statement, so two nodes asking at once cannot both win.
    pub async fn try_lease(
        &self,
        job: &str,
        node: &str,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<bool> {
        let row = sqlx::query(
            "INSERT INTO leases (job, node, until) VALUES ($1, $2, $3) \
             ON CONFLICT (job) DO UPDATE SET node = excluded.node, until = excluded.until \
             WHERE leases.until <= $4 OR leases.node = excluded.node \
             RETURNING node",
        )
        .bind(job)
        .bind(node)
        .bind(ms(until))
        .bind(ms(now))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Give up `node`'s lease on `job` (no-op if another node holds it).
    pub async fn release_lease(&self, job: &str, node: &str) -> Result<()> {
        sqlx::query("DELETE FROM leases WHERE job = $1 AND node = $2")
            .bind(job)
            .bind(node)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Who holds `job` and until when, if anyone.
    pub async fn lease_holder(&self, job: &str) -> Result<Option<(String, Timestamp)>> {
        let row = sqlx::query("SELECT node, until FROM leases WHERE job = $1")
            .bind(job)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(Some((
                r.try_get("node")?,
                from_ms(r.try_get("until")?, &format!("leases job={job}"))?,
            ))),
            None => Ok(None),
        }
    }
}

impl Tx {
    /// Send `payload` on `channel` to every node listening (PostgreSQL `pg_notify`): on commit
    /// in a write transaction, at once on a read handle. Does nothing on SQLite. PostgreSQL
    /// refuses payloads of 8000 bytes or more; keep them to ids.
    pub async fn notify(&mut self, channel: &str, payload: &str) -> Result<()> {
        if self.backend != Backend::Postgres {
            return Ok(());
        }
        if payload.len() >= 8000 {
            return Err(StoreError::Encode(format!(
                "notification on {channel} of {} bytes: PostgreSQL takes fewer than 8000",
                payload.len()
            )));
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(payload)
            .execute(self.conn())
            .await?;
        Ok(())
    }
}
