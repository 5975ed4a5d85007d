//! # jitgate-store
//!
//! Persistence for jitgate on SQLite (the embedded default, one file, WAL) and PostgreSQL
//! (several server nodes), through **one** code path: `sqlx::Any` with `$1, $2, ...`
//! placeholders, which both databases accept. The store keeps no business rules: the core
//! decides every transition, the store saves what it is given, in the caller's transaction.
//!
//! ## Layout
//! - this file — [`Store`] (pool, opening, migrations), [`Tx`] (the transaction every
//!   operation runs in) and the write lock that serialises writers.
//! - [`error`] — [`StoreError`].
//! - `codec` — the column encoding shared by all tables: timestamps as BIGINT unix
//!   milliseconds, booleans as BIGINT 0/1, structured values as JSON TEXT. `sqlx::Any`
//!   decodes exactly these alike on both databases.
//! - `inventory` — sites, orgs, identities, assets (JSON documents keyed by id).
//! - `lifecycle` — requests, approvals, grants, and the "what is due" queries the
//!   scheduler sleeps on.
//! - `events` — the evidence log: a SHA-256 hash chain over the events' canonical bytes.
//! - `checkpoints` — the rest of the evidence: signed checkpoints of the log, raw event rows
//!   for verifiers, one access's events for a bundle, the archive of policy texts.
//! - `scan` — the evidence verifier's bulk read of the whole log in one snapshot, the one
//!   read outside `sqlx::Any` (rusqlite on SQLite, binary `COPY` on PostgreSQL), for speed.
//! - `ssh` — OpenSSH certificates issued under grants (serial, grant, key fingerprint,
//!   validity): the record behind "one key, one grant" and the target certificates' expiry.
//! - `page` — keyset pagination shared by the lists: continue after the row a cursor names,
//!   compared on the list's order (with an index on that order), never by offset.
//! - `recordings` — session recording chunks: place and hashes (written with their
//!   `recording.chunk` event), and the bytes once delivered in a table of their own (BLOB /
//!   BYTEA), so that listings never read them.
//! - `exceptions` — standing exceptions (owner, controls, re-validation clock) beside the
//!   request they ride on; their uses are read from the evidence log.
//! - `teardown` — the verdict and report of each ended grant's teardown verification.
//! - `outbox` — outgoing notifications (webhook outbox: enqueue in the caller's transaction,
//!   claim, mark delivered, reschedule) and `reviews` — mandatory post-session reviews.
//! - `attestations` — post-session attestations (required at issue, given once) and which
//!   required ones are missing; `campaigns` — review campaigns, their fixed items and
//!   decisions, and the period queries that gather items (break-glass, unverified teardowns).
//! - `cluster` — what several server nodes share: `LISTEN`/`NOTIFY` wake-ups, node
//!   heartbeats, gateway links, revocation acknowledgements, leases (docs/cluster.md).
//! - `auth` — passwords, TOTP (with replay protection), API keys, sessions; settings.
//! - `passkeys` — passkeys enrolled for step-up and their ceremonies' single-use challenges.
//! - `migrations/sqlite`, `migrations/postgres` — the schema; the two differ only where the
//!   DDL does (identity columns), and are embedded in the binary.
//!
//! Timestamps are stored with millisecond precision: a value read back is the value
//! written truncated to the millisecond (event times are milliseconds already).
//!
//! ## Writers are serialised, on purpose
//! [`Store::write`] starts every write transaction with `UPDATE chain_head ... WHERE id = 1`.
//! The event hash chain needs a total order of appends anyway, and taking the lock first
//! avoids the failure modes of optimistic writers: on SQLite a deferred transaction that
//! first reads and later writes can fail with `SQLITE_BUSY` without waiting; taking the write
//! lock in the first statement lets the busy timeout do its job. On PostgreSQL it is a row
//! lock. Within one process, SQLite writers additionally queue on an async mutex so they do
//! not spin in SQLite's busy handler.

pub mod error;

mod attestations;
mod auth;
mod campaigns;
mod checkpoints;
mod cluster;
mod codec;
mod events;
mod exceptions;
mod inventory;
mod lifecycle;
mod login;
mod outbox;
mod page;
mod passkeys;
mod recordings;
mod reviews;
mod scan;
mod ssh;
mod sso;
mod teardown;

pub use attestations::{AttestationFilter, AttestationRecord};
pub use auth::{ApiKeyRecord, Bearer, SessionRecord, TotpRecord};
pub use campaigns::{CampaignItemRecord, CampaignRecord};
pub use checkpoints::{CheckpointRecord, CosignatureRecord, EventRow};
pub use cluster::{Listener, NodeRecord, Notification as ClusterNotification};
pub use error::{Result, StoreError};
pub use events::{chain_hash, ChainReport, EventFilter, StoredEvent, GENESIS_HASH};
pub use exceptions::{ExceptionFilter, ExceptionRecord};
pub use lifecycle::{GrantFilter, RequestFilter};
pub use outbox::{Notification, NotificationFilter};
pub use passkeys::{PasskeyChallengeRecord, PasskeyRecord};
pub use recordings::RecordingChunkRecord;
pub use reviews::{ReviewFilter, ReviewRecord, ReviewState};
pub use scan::{LogPage, LogScan, PageLeaf, SCAN_PAGE_ROWS};
pub use ssh::SshCertificateRecord;
pub use sso::{SsoHandoffRecord, SsoLoginRecord};
pub use teardown::TeardownRecord;

use sqlx::any::{Any, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool, Row};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, OwnedMutexGuard};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Set on every new SQLite connection. WAL lets readers proceed while one writer writes;
/// `synchronous=NORMAL` is durable against process crashes in WAL mode (an OS crash may lose
/// the last commits, never corrupt the file); the busy timeout covers writers of other
/// processes; foreign keys are off by default in SQLite.
const SQLITE_PRAGMAS: &[&str] = &[
    "PRAGMA busy_timeout = 10000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
];

/// File name of the SQLite database inside a data directory.
pub const SQLITE_FILE: &str = "jitgate.db";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Tuning for [`Store::open_with`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Size of the connection pool.
    pub max_connections: u32,
    /// How long to wait for a free connection before failing.
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

/// The database. Cheap to clone: clones share one pool.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The normalised database URL; the log scan (`scan`) opens its own connection with it.
    url: String,
    /// In-process queue of SQLite writers (see the crate docs); unused on PostgreSQL.
    write_queue: Arc<Mutex<()>>,
}

impl Store {
    /// Open `sqlite://<path>` (the file is created if missing) or `postgres://...`, and bring
    /// the schema up to date.
    pub async fn open(url: &str) -> Result<Store> {
        Store::open_with(url, &StoreOptions::default()).await
    }

    /// [`Store::open`] with explicit pool settings.
    pub async fn open_with(url: &str, options: &StoreOptions) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let (backend, url) = normalise_url(url)?;
        let pool_options = AnyPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout);
        let pool = match backend {
            Backend::Sqlite => {
                pool_options
                    // A connection to a file in this process cannot break behind the pool's
                    // back; testing it on every acquire cost a round trip to its worker
                    // thread per transaction (seen in profiles of the lifecycle benchmark).
                    .test_before_acquire(false)
                    .after_connect(|conn: &mut AnyConnection, _meta| {
                        Box::pin(async move {
                            for pragma in SQLITE_PRAGMAS {
                                sqlx::query(pragma).execute(&mut *conn).await?;
                            }
                            Ok(())
                        })
                    })
                    .connect(&url)
                    .await?
            }
            Backend::Postgres => pool_options.connect(&url).await?,
        };
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&pool).await?;
        let store = Store {
            pool,
            backend,
            url,
            write_queue: Arc::new(Mutex::new(())),
        };
        if backend == Backend::Sqlite {
            recordings::move_base64_data(&store).await?;
        }
        tracing::debug!(backend = backend.as_str(), "store opened and migrated");
        Ok(store)
    }

    /// The SQLite database `jitgate.db` inside `data_dir`. The directory is created if
    /// missing, readable by its owner only: it holds password hashes and TOTP secrets.
    pub async fn open_data_dir(data_dir: &Path) -> Result<Store> {
        let dir_err = |source| StoreError::DataDir {
            path: data_dir.display().to_string(),
            source,
        };
        if !data_dir.exists() {
            create_private_dir(data_dir).map_err(dir_err)?;
        } else {
            make_private(data_dir, 0o700);
        }
        let dir = std::fs::canonicalize(data_dir).map_err(dir_err)?;
        let file = dir.join(SQLITE_FILE);
        let Some(path) = file.to_str() else {
            return Err(StoreError::InvalidUrl(format!(
                "{}: the data directory path must be valid UTF-8",
                file.display()
            )));
        };
        // The database holds password hashes and TOTP secrets: owner-only, created so (SQLite
        // gives its -wal and -shm files the database file's mode).
        create_private_file(&file).map_err(dir_err)?;
        let store =
            Store::open(&format!("sqlite://{}?mode=rwc", percent_encode_path(path))).await?;
        for suffix in ["", "-wal", "-shm"] {
            let f = dir.join(format!("{SQLITE_FILE}{suffix}"));
            if f.exists() {
                make_private(&f, 0o600);
            }
        }
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A write transaction, holding the global write lock from its first statement until
    /// commit or drop (drop rolls back).
    pub async fn write(&self) -> Result<Tx> {
        let guard = match self.backend {
            Backend::Sqlite => Some(self.write_queue.clone().lock_owned().await),
            Backend::Postgres => None,
        };
        let mut tx = self.pool.begin().await?;
        // Taking the lock also reads the chain head, which saves a query per append.
        let row = sqlx::query("UPDATE chain_head SET seq = seq WHERE id = 1 RETURNING seq, hash")
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::Corrupt("chain_head: the row id=1 is missing".into()))?;
        let head = (row.try_get("seq")?, row.try_get("hash")?);
        Ok(Tx {
            tx: Conn::Tx(tx),
            write: true,
            backend: self.backend,
            head: Some(head),
            _write_guard: guard,
        })
    }

    /// A transaction for queries. Takes no lock; mutations in it are refused with
    /// [`StoreError::ReadOnly`]. It sees one consistent snapshot on both databases (SQLite
    /// WAL readers do; on PostgreSQL it is `REPEATABLE READ`), so multi-query reads such as
    /// [`Tx::verify_chain`] are not confused by concurrent writers.
    /// A read-only handle without a transaction: each statement sees the latest committed
    /// state. This is what request handlers use — no BEGIN/COMMIT round trips on the hot
    /// path. Use [`Store::read_snapshot`] when several reads must agree with each other.
    pub async fn read(&self) -> Result<Tx> {
        let conn = self.pool.acquire().await?;
        Ok(Tx {
            tx: Conn::Plain(conn),
            write: false,
            backend: self.backend,
            head: None,
            _write_guard: None,
        })
    }

    /// A read-only transaction: all its reads see one snapshot (e.g. verifying the chain).
    pub async fn read_snapshot(&self) -> Result<Tx> {
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        Ok(Tx {
            tx: Conn::Tx(tx),
            write: false,
            backend: self.backend,
            head: None,
            _write_guard: None,
        })
    }

    /// The underlying pool, for tests and maintenance tools. Statements run here bypass the
    /// write lock and every invariant this crate keeps.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Close all connections; waits for checked-out connections to come back.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// One database transaction. Every store operation is a method here, so the state change
/// and its evidence events always commit (or roll back) together.
/// A transaction, or (for plain reads) a pooled connection in autocommit mode.
enum Conn {
    Tx(sqlx::Transaction<'static, Any>),
    Plain(sqlx::pool::PoolConnection<Any>),
}

pub struct Tx {
    tx: Conn,
    write: bool,
    backend: Backend,
    /// Chain head (seq, hash) as of this write transaction; read when the lock is taken and
    /// kept current by `append_events`. `None` in read transactions.
    head: Option<(i64, String)>,
    // Declared after `tx` so it is released only after the transaction has been dropped
    // (rolled back): the next queued writer then finds the database free.
    _write_guard: Option<OwnedMutexGuard<()>>,
}

impl Tx {
    pub async fn commit(self) -> Result<()> {
        if let Conn::Tx(tx) = self.tx {
            tx.commit().await?;
        }
        Ok(())
    }

    /// Roll back explicitly (dropping a `Tx` does the same).
    pub async fn rollback(self) -> Result<()> {
        if let Conn::Tx(tx) = self.tx {
            tx.rollback().await?;
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// `true` for transactions from [`Store::write`].
    pub fn is_write(&self) -> bool {
        self.write
    }

    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        match &mut self.tx {
            Conn::Tx(tx) => tx,
            Conn::Plain(conn) => conn,
        }
    }

    pub(crate) fn need_write(&self, op: &str) -> Result<()> {
        if self.write {
            Ok(())
        } else {
            Err(StoreError::ReadOnly(op.to_string()))
        }
    }
}

/// Recognise the backend and make the URL say what we need (SQLite: create the file).
fn normalise_url(url: &str) -> Result<(Backend, String)> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Backend::Postgres, url.to_string()));
    }
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Err(StoreError::InvalidUrl(format!(
            "{}: use sqlite://<path> or postgres://user@host/db",
            redact(url)
        )));
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" || query.split('&').any(|p| p == "mode=memory") {
        return Err(StoreError::InvalidUrl(format!(
            "{url}: in-memory SQLite is not supported (each pooled connection would see its own \
             empty database); give a file path, e.g. sqlite:///var/lib/jitgate/jitgate.db"
        )));
    }
    if query.split('&').any(|p| p.starts_with("mode=")) {
        Ok((Backend::Sqlite, url.to_string()))
    } else if query.is_empty() {
        Ok((Backend::Sqlite, format!("{url}?mode=rwc")))
    } else {
        Ok((Backend::Sqlite, format!("{url}&mode=rwc")))
    }
}

/// URLs may carry a password; error messages must not.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_string(),
    }
}

/// SQLite file names are percent-decoded by sqlx, so `%`, `?`, `#` and spaces in a path
/// must be encoded.
fn percent_encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// The data directory and the database hold password hashes, TOTP secrets and signing
/// keys: a directory or file accessible to others is made owner-only (`mode`), with a
/// warning naming what was changed; if that fails, the warning says what to do.
#[cfg(unix)]
fn make_private(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let was = meta.permissions().mode() & 0o777;
        if was & 0o077 != 0 {
            match std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
                Ok(()) => tracing::warn!(
                    path = %path.display(),
                    was = format!("{was:o}"),
                    now = format!("{mode:o}"),
                    "was accessible to other users; made owner-only (it holds password hashes \
                     and TOTP secrets)"
                ),
                Err(e) => tracing::warn!(
                    path = %path.display(),
                    mode = format!("{was:o}"),
                    error = %e,
                    "accessible to other users and cannot be changed; it holds password \
                     hashes and TOTP secrets: chmod {:o} it",
                    mode
                ),
            }
        }
    }
}

#[cfg(not(unix))]
fn make_private(_path: &Path, _mode: u32) {}

#[cfg(unix)]
fn create_private_file(file: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn create_private_file(_file: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_get_create_mode() {
        assert_eq!(
            normalise_url("sqlite:///tmp/a.db").unwrap(),
            (Backend::Sqlite, "sqlite:///tmp/a.db?mode=rwc".to_string())
        );
        assert_eq!(
            normalise_url("sqlite:///tmp/a.db?cache=private").unwrap().1,
            "sqlite:///tmp/a.db?cache=private&mode=rwc"
        );
        assert_eq!(
            normalise_url("sqlite:///tmp/a.db?mode=ro").unwrap().1,
            "sqlite:///tmp/a.db?mode=ro"
        );
        assert_eq!(
            normalise_url("postgresql://u@h/d").unwrap().0,
            Backend::Postgres
        );
    }

    #[test]
    fn unusable_urls_are_refused_without_leaking_passwords() {
        assert!(matches!(
            normalise_url("sqlite::memory:"),
            Err(StoreError::InvalidUrl(_))
        ));
        assert!(matches!(
            normalise_url("sqlite://?mode=memory"),
            Err(StoreError::InvalidUrl(_))
        ));
        let err = normalise_url("mysql://root:hunter2@db/x")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(err.contains("sqlite://"), "{err}");
    }

    #[test]
    fn paths_are_percent_encoded() {
        assert_eq!(
            percent_encode_path("/a b/c?d#e%f.db"),
            "/a%20b/c%3Fd%23e%25f.db"
        );
    }
}
