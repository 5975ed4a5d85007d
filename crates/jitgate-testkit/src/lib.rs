//! # jitgate-testkit
//!
//! Helpers for jitgate's tests, never for production code.
//!
//! ## Layout
//! - [`sqlite_store`] — a [`Store`] on a fresh SQLite file in a temporary directory.
//! - [`postgres_store`] / [`PgTestDb`] — a [`Store`] on a freshly created, uniquely named
//!   PostgreSQL database that is dropped afterwards, so runs never collide or depend on
//!   leftovers. Where PostgreSQL is unreachable the tests skip it loudly, or fail when
//!   `JITGATE_REQUIRE_PG=1` (CI sets it, so a skipped backend cannot pass unnoticed).
//! - [`each_backend`] — run one test body against SQLite and then PostgreSQL.
//! - [`oidc`] — the real OpenID provider of the SSO tests (`oidc-provider` from npm, run
//!   by node on a loopback port) and a minimal browser that signs in on its pages.

// Test-only crate: a failed precondition (cannot create a temp dir, cannot reach the
// database CI promised) should fail the test at once, with the message.
#![allow(clippy::expect_used, clippy::panic)]

pub mod oidc;

use jitgate_store::{Store, StoreOptions};
use sqlx::Connection;
use std::future::Future;
use std::time::Duration;

/// Where tests find PostgreSQL unless `JITGATE_TEST_PG` says otherwise.
pub const DEFAULT_TEST_PG: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Each test database gets a small pool: many tests run in parallel against one server.
const PG_TEST_POOL: u32 = 5;

/// A store on a new SQLite database in a temporary directory; keep the `TempDir` alive for
/// as long as the store is used.
pub async fn sqlite_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let store = Store::open_data_dir(&dir.path().join("data"))
        .await
        .expect("open a SQLite store in a temporary directory");
    (store, dir)
}

/// A store on a freshly created PostgreSQL database. Call [`PgTestDb::cleanup`] at the end;
/// if the test panics first, `Drop` drops the database (best effort).
pub struct PgTestDb {
    pub store: Store,
    /// Name of the created database.
    pub name: String,
    admin_url: String,
    dropped: bool,
}

impl PgTestDb {
    /// The database's URL, for processes of their own (e.g. several `jitgate serve` nodes).
    pub fn url(&self) -> String {
        let mut url = url::Url::parse(&self.admin_url)
            .unwrap_or_else(|e| panic!("JITGATE_TEST_PG {}: {e}", self.admin_url));
        url.set_path(&format!("/{}", self.name));
        url.to_string()
    }

    /// Close the store and drop the database.
    pub async fn cleanup(mut self) {
        self.store.close().await;
        drop_database(&self.admin_url, &self.name)
            .await
            .unwrap_or_else(|e| panic!("drop test database {}: {e}", self.name));
        self.dropped = true;
    }
}

impl Drop for PgTestDb {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Drop may run inside a tokio runtime (during a panic in an async test), where
        // blocking on a future is not allowed; a separate thread with its own runtime is.
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let handle = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            if let Err(e) = rt.block_on(drop_database(&admin_url, &name)) {
                eprintln!("warning: could not drop test database {name}: {e}");
            }
        });
        let _ = handle.join();
    }
}

async fn drop_database(admin_url: &str, name: &str) -> Result<(), sqlx::Error> {
    let mut conn = sqlx::AnyConnection::connect(admin_url).await?;
    // FORCE ends connections a panicking test may have left open.
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    conn.close().await
}

fn pg_required() -> bool {
    std::env::var("JITGATE_REQUIRE_PG").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// A store on a new, uniquely named database on the server `JITGATE_TEST_PG` points at
/// (default [`DEFAULT_TEST_PG`]). `None` (after a loud line on stderr) when the server is
/// unreachable, unless `JITGATE_REQUIRE_PG=1`, which turns that into a panic.
pub async fn postgres_store() -> Option<PgTestDb> {
    sqlx::any::install_default_drivers();
    let admin_url =
        std::env::var("JITGATE_TEST_PG").unwrap_or_else(|_| DEFAULT_TEST_PG.to_string());
    let connected = tokio::time::timeout(
        Duration::from_secs(5),
        sqlx::AnyConnection::connect(&admin_url),
    )
    .await;
    let mut admin = match connected {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => return pg_unreachable(&admin_url, &e.to_string()),
        Err(_) => return pg_unreachable(&admin_url, "timed out after 5s"),
    };
    let name = format!("jitgate_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("create test database {name} on {admin_url}: {e}"));
    let _ = admin.close().await;

    let mut url =
        url::Url::parse(&admin_url).unwrap_or_else(|e| panic!("JITGATE_TEST_PG {admin_url}: {e}"));
    url.set_path(&format!("/{name}"));
    let options = StoreOptions {
        max_connections: PG_TEST_POOL,
        ..StoreOptions::default()
    };
    match Store::open_with(url.as_str(), &options).await {
        Ok(store) => Some(PgTestDb {
            store,
            name,
            admin_url,
            dropped: false,
        }),
        Err(e) => {
            let _ = drop_database(&admin_url, &name).await;
            panic!("open a store on test database {name}: {e}");
        }
    }
}

fn pg_unreachable(url: &str, why: &str) -> Option<PgTestDb> {
    // CI logs are public more often than not: never print a password from the URL.
    let url = match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    };
    if pg_required() {
        panic!(
            "PostgreSQL is not reachable at {url} ({why}) and JITGATE_REQUIRE_PG=1 requires it; \
             start it or point JITGATE_TEST_PG at one"
        );
    }
    eprintln!(
        "\n**********\nSKIPPED: PostgreSQL not reachable at {url} ({why}); \
         set JITGATE_REQUIRE_PG=1 to make this fail\n**********\n"
    );
    None
}

/// Run `body` on a fresh SQLite store, then on a fresh PostgreSQL store (skipped loudly, or
/// failing under `JITGATE_REQUIRE_PG=1`, when PostgreSQL is unreachable). Each run prints
/// which backend it is on, so a failure's output names the backend.
pub async fn each_backend<F, Fut>(body: F)
where
    F: Fn(Store) -> Fut,
    Fut: Future<Output = ()>,
{
    let (store, _dir) = sqlite_store().await;
    eprintln!("-- backend: sqlite");
    body(store.clone()).await;
    store.close().await;

    if let Some(pg) = postgres_store().await {
        eprintln!("-- backend: postgres (database {})", pg.name);
        body(pg.store.clone()).await;
        pg.cleanup().await;
    }
}
