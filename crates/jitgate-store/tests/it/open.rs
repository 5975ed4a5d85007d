use crate::fixtures::event;
use jitgate_store::{Backend, Store, StoreError};
use jitgate_testkit::{postgres_store, sqlite_store};

#[tokio::test]
async fn sqlite_data_dir_is_private_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested dir?#%").join("data");
    let store = Store::open_data_dir(&data).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&data).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{mode:o}");
    }
    let mut tx = store.write().await.unwrap();
    tx.set_setting("k", "v").await.unwrap();
    tx.append_events(&[event(1, "r1")]).await.unwrap();
    tx.commit().await.unwrap();
    store.close().await;
    assert!(data.join(jitgate_store::SQLITE_FILE).is_file());

    // Reopening runs the (already applied) migrations again and finds the data.
    let store = Store::open_data_dir(&data).await.unwrap();
    let mut tx = store.read().await.unwrap();
    assert_eq!(tx.get_setting("k").await.unwrap().as_deref(), Some("v"));
    assert!(tx.verify_chain().await.unwrap().is_ok());
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(fk, 1);
    let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(busy, 10_000);
}

#[tokio::test]
async fn sqlite_url_is_accepted_and_bad_urls_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/x.db", dir.path().display());
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    store.close().await;
    for bad in ["mysql://root@localhost/x", "sqlite::memory:", "file.db"] {
        let err = Store::open(bad).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidUrl(_)), "{bad}: {err:?}");
    }
}

#[tokio::test]
async fn dropped_write_rolls_back_and_frees_the_lock() {
    let (store, _dir) = sqlite_store().await;
    run_dropped_write(&store).await;
    if let Some(pg) = postgres_store().await {
        assert_eq!(pg.store.backend(), Backend::Postgres);
        run_dropped_write(&pg.store).await;
        pg.cleanup().await;
    }
}

async fn run_dropped_write(store: &Store) {
    let mut tx = store.write().await.unwrap();
    assert!(tx.is_write());
    tx.set_setting("k", "lost").await.unwrap();
    drop(tx);
    let mut tx = tokio::time::timeout(std::time::Duration::from_secs(5), store.write())
        .await
        .expect("the next writer is not blocked by a dropped one")
        .unwrap();
    assert_eq!(tx.get_setting("k").await.unwrap(), None);
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn postgres_test_database_is_created_and_dropped() {
    let Some(pg) = postgres_store().await else {
        return;
    };
    let name = pg.name.clone();
    assert!(name.starts_with("jitgate_test_"));
    let admin_url = std::env::var("JITGATE_TEST_PG")
        .unwrap_or_else(|_| jitgate_testkit::DEFAULT_TEST_PG.to_string());
    let exists = |n: String| {
        let admin_url = admin_url.clone();
        async move {
            let pool = sqlx::AnyPool::connect(&admin_url).await.unwrap();
            let count: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM pg_database WHERE datname = $1")
                    .bind(n)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            pool.close().await;
            count == 1
        }
    };
    assert!(exists(name.clone()).await);
    pg.cleanup().await;
    assert!(!exists(name).await);
}
