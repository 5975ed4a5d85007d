//! Recording chunks: rows with their place and hashes, bytes in a table of their own
//! (stored once, never read by the listings), and migration 0011 moving bytes stored as
//! base64 before it — on SQLite (in Rust, as the store opens) and on PostgreSQL (in SQL).

use crate::fixtures::t;
use base64::Engine as _;
use jitgate_store::{RecordingChunkRecord, Store};
use jitgate_testkit::each_backend;
use sqlx::migrate::Migrator;
use sqlx::Connection as _;

fn chunk(session: &str, index: u64, offset: u64, length: u64) -> RecordingChunkRecord {
    RecordingChunkRecord {
        session_id: session.into(),
        index,
        grant_id: "g-1".into(),
        gateway: "gw-north".into(),
        event_seq: 10 + index as i64,
        offset,
        length,
        last: false,
        prev_hash: "00".repeat(32),
        hash: format!("{index:02}").repeat(32),
        recorded_at: t(index as i64),
        data: None,
        stored_at: None,
    }
}

/// Bytes no text column would keep as they are: NULs, invalid UTF-8, every byte value.
fn binary(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 256) as u8).collect()
}

#[tokio::test]
async fn chunk_bytes_are_stored_once_apart_from_the_rows() {
    each_backend(|store| async move {
        let bytes = binary(70_000);
        let mut tx = store.write().await.unwrap();
        for i in 0..3 {
            tx.insert_recording_chunk(&chunk("s-1", i, i * 70_000, 70_000))
                .await
                .unwrap();
        }
        assert!(tx
            .store_recording_data("s-1", 0, &bytes, t(100))
            .await
            .unwrap());
        assert!(tx
            .store_recording_data("s-1", 2, b"", t(101))
            .await
            .unwrap());
        // A retry stores nothing; nor does a chunk that is not recorded.
        assert!(!tx
            .store_recording_data("s-1", 0, b"other", t(102))
            .await
            .unwrap());
        assert!(!tx
            .store_recording_data("s-1", 9, b"x", t(102))
            .await
            .unwrap());
        tx.commit().await.unwrap();

        let mut tx = store.read().await.unwrap();
        let all = tx.recording_chunks("s-1", 0, true).await.unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].data.as_deref(), Some(&bytes[..]));
        assert_eq!(all[0].stored_at, Some(t(100)));
        assert_eq!(all[1].data, None);
        assert_eq!(all[1].stored_at, None);
        assert_eq!(all[2].data.as_deref(), Some(&b""[..]));
        assert_eq!(all[0].hash, chunk("s-1", 0, 0, 0).hash);
        let from = tx.recording_chunks("s-1", 1, true).await.unwrap();
        assert_eq!(
            from.iter().map(|c| c.index).collect::<Vec<_>>(),
            [1, 2],
            "from chunk 1 on"
        );
        assert!(tx
            .recording_chunks("s-1", 0, false)
            .await
            .unwrap()
            .iter()
            .all(|c| c.data.is_none()));
        let index = tx.recording_index(Some("g-1"), 100).await.unwrap();
        assert_eq!(index.len(), 3);
        assert!(index.iter().all(|c| c.data.is_none()));
        assert_eq!(
            index.iter().filter(|c| c.stored_at.is_some()).count(),
            2,
            "the listing says which are stored without reading them"
        );
        let head = tx.recording_head("s-1").await.unwrap().unwrap();
        assert_eq!((head.index, head.data), (2, None));
        let one = tx.recording_chunk("s-1", 0).await.unwrap().unwrap();
        assert_eq!((one.stored_at, one.data), (Some(t(100)), None));
        let bundle = tx.recording_chunks_of_grant("g-1").await.unwrap();
        assert_eq!(bundle[0].data.as_deref(), Some(&bytes[..]));
    })
    .await;
}

/// Rows as the schema before migration 0011 held them: bytes as standard base64 in
/// `recording_chunks.data` (one chunk not delivered, one empty).
async fn legacy_rows(conn: &mut sqlx::AnyConnection, chunks: &[(u64, Option<Vec<u8>>)]) {
    for (i, data) in chunks {
        let c = chunk("s-old", *i, 0, 0);
        sqlx::query(
            "INSERT INTO recording_chunks (session_id, idx, grant_id, gateway, event_seq, \
             byte_offset, length, last, prev_hash, hash, recorded_at, data, stored_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&c.session_id)
        .bind(*i as i64)
        .bind(&c.grant_id)
        .bind(&c.gateway)
        .bind(c.event_seq)
        .bind(0i64)
        .bind(data.as_ref().map_or(0, |d| d.len() as i64))
        .bind(0i64)
        .bind(&c.prev_hash)
        .bind(&c.hash)
        .bind(1_700_000_000_000i64)
        .bind(
            data.as_ref()
                .map(|d| base64::engine::general_purpose::STANDARD.encode(d)),
        )
        .bind(data.as_ref().map(|_| 1_700_000_001_000i64 + *i as i64))
        .execute(&mut *conn)
        .await
        .unwrap();
    }
}

/// The migrations of `backend` before 0011.
async fn before_0011(backend: &str) -> Migrator {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let mut m = Migrator::new(dir).await.unwrap();
    m.migrations = m
        .migrations
        .iter()
        .filter(|m| m.version < 11)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    m
}

fn legacy_chunks() -> Vec<(u64, Option<Vec<u8>>)> {
    (0..150u64)
        .map(|i| match i {
            3 => (i, None),
            4 => (i, Some(Vec::new())),
            _ => (i, Some(binary(1000 + i as usize * 31))),
        })
        .collect()
}

async fn check_moved(store: &Store, chunks: &[(u64, Option<Vec<u8>>)]) {
    let mut tx = store.read().await.unwrap();
    let rows = tx.recording_chunks("s-old", 0, true).await.unwrap();
    assert_eq!(rows.len(), chunks.len());
    for (row, (i, data)) in rows.iter().zip(chunks) {
        assert_eq!(row.index, *i);
        assert_eq!(&row.data, data, "chunk {i}");
        assert_eq!(row.stored_at.is_some(), data.is_some(), "chunk {i}");
    }
}

#[tokio::test]
async fn migration_0011_moves_base64_bytes_on_sqlite() {
    sqlx::any::install_default_drivers();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/old.db?mode=rwc", dir.path().display());
    let chunks = legacy_chunks();
    {
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        before_0011("sqlite").await.run(&mut conn).await.unwrap();
        legacy_rows(&mut conn, &chunks).await;
        conn.close().await.unwrap();
    }
    let store = Store::open(&url).await.unwrap();
    check_moved(&store, &chunks).await;
    let has_data: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pragma_table_info('recording_chunks') WHERE name = 'data'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(has_data, 0, "the base64 column is gone");
    store.close().await;
    // Opening again finds nothing more to move and the same bytes.
    let store = Store::open(&url).await.unwrap();
    check_moved(&store, &chunks).await;
    store.close().await;
}

#[tokio::test]
async fn migration_0011_refuses_to_open_rather_than_lose_bytes_it_cannot_decode() {
    sqlx::any::install_default_drivers();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/old.db?mode=rwc", dir.path().display());
    let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
    before_0011("sqlite").await.run(&mut conn).await.unwrap();
    legacy_rows(&mut conn, &[(0, Some(b"kept".to_vec()))]).await;
    sqlx::query("UPDATE recording_chunks SET data = 'not base64!'")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let err = Store::open(&url).await.unwrap_err().to_string();
    assert!(err.contains("not base64"), "{err}");
    // Nothing was changed: the value is still there, in its column.
    let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
    let kept: String = sqlx::query_scalar("SELECT data FROM recording_chunks")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(kept, "not base64!");
}

#[tokio::test]
async fn migration_0011_moves_base64_bytes_on_postgres() {
    // A database of its own, migrated to 0010 only.
    let Some(pg) = jitgate_testkit::postgres_store().await else {
        return;
    };
    let admin = std::env::var("JITGATE_TEST_PG")
        .unwrap_or_else(|_| jitgate_testkit::DEFAULT_TEST_PG.to_string());
    let name = format!("{}_m11", pg.name);
    let mut conn = sqlx::AnyConnection::connect(&admin).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .unwrap();
    let (base, query) = admin.split_once('?').unwrap_or((&admin, ""));
    let (server, _) = base.rsplit_once('/').unwrap();
    let url = if query.is_empty() {
        format!("{server}/{name}")
    } else {
        format!("{server}/{name}?{query}")
    };
    let chunks = legacy_chunks();
    {
        let mut db = sqlx::AnyConnection::connect(&url).await.unwrap();
        before_0011("postgres").await.run(&mut db).await.unwrap();
        legacy_rows(&mut db, &chunks).await;
        db.close().await.unwrap();
    }
    let store = Store::open(&url).await.unwrap();
    check_moved(&store, &chunks).await;
    let has_data: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.columns \
         WHERE table_name = 'recording_chunks' AND column_name = 'data'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(has_data, 0, "the base64 column is gone");
    store.close().await;
    sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap();
    pg.cleanup().await;
}
