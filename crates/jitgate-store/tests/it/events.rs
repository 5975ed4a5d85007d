use crate::fixtures::event;
use jitgate_store::{EventFilter, Store, StoreError, GENESIS_HASH};
use jitgate_testkit::each_backend;
use sha2::{Digest, Sha256};

/// Append `n` events, alternating between two requests, one write transaction each.
async fn append(store: &Store, n: i64) {
    for i in 1..=n {
        let mut tx = store.write().await.unwrap();
        let rid = if i % 2 == 0 { "r-even" } else { "r-odd" };
        tx.append_events(&[event(i, rid)]).await.unwrap();
        tx.commit().await.unwrap();
    }
}

async fn first_bad(store: &Store) -> Option<(i64, String)> {
    let mut tx = store.read().await.unwrap();
    tx.verify_chain().await.unwrap().first_bad
}

async fn raw(store: &Store, sql: &str) {
    sqlx::query(sql).execute(store.pool()).await.unwrap();
}

#[tokio::test]
async fn events_chain_and_list() {
    each_backend(|store: Store| async move {
        let mut tx = store.read().await.unwrap();
        let report = tx.verify_chain().await.unwrap();
        assert_eq!(
            (report.events, report.head.as_str(), report.first_bad),
            (0, GENESIS_HASH, None)
        );
        drop(tx);

        let mut tx = store.write().await.unwrap();
        assert_eq!(tx.append_events(&[]).await.unwrap(), Vec::<i64>::new());
        let batch = vec![event(1, "r1"), event(2, "r1").grant("g1"), event(3, "r2")];
        assert_eq!(tx.append_events(&batch).await.unwrap(), vec![1, 2, 3]);
        assert_eq!(tx.append_events(&[event(4, "r2")]).await.unwrap(), vec![4]);
        tx.commit().await.unwrap();
        // An uncommitted append leaves no gap behind.
        let mut tx = store.write().await.unwrap();
        assert_eq!(tx.append_events(&[event(99, "r9")]).await.unwrap(), vec![5]);
        drop(tx);
        let mut tx = store.write().await.unwrap();
        assert_eq!(tx.append_events(&[event(5, "r2")]).await.unwrap(), vec![5]);
        tx.commit().await.unwrap();

        let mut tx = store.read().await.unwrap();
        let all = tx.list_events(&EventFilter::default()).await.unwrap();
        assert_eq!(
            all.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        assert_eq!(all[0].prev_hash, GENESIS_HASH);
        let mut prev = hex::decode(GENESIS_HASH).unwrap();
        for (stored, n) in all.iter().zip([1, 2, 3, 4, 5]) {
            // The rule, recomputed independently: hex(SHA-256(prev bytes || canonical)).
            let mut h = Sha256::new();
            h.update(&prev);
            h.update(stored.event.canonical_bytes());
            assert_eq!(stored.hash, hex::encode(h.finalize()));
            assert_eq!(
                stored.canonical.as_bytes(),
                stored.event.canonical_bytes().as_slice()
            );
            assert_eq!(stored.event.at, crate::fixtures::t(n));
            prev = hex::decode(&stored.hash).unwrap();
        }
        assert_eq!(all[1].event, batch[1]);
        assert_eq!(all[1].prev_hash, all[0].hash);

        let f = EventFilter {
            request_id: Some("r2".into()),
            ..Default::default()
        };
        assert_eq!(
            tx.list_events(&f)
                .await
                .unwrap()
                .iter()
                .map(|e| e.seq)
                .collect::<Vec<_>>(),
            [3, 4, 5]
        );
        let f = EventFilter {
            grant_id: Some("g1".into()),
            ..Default::default()
        };
        assert_eq!(
            tx.list_events(&f)
                .await
                .unwrap()
                .iter()
                .map(|e| e.seq)
                .collect::<Vec<_>>(),
            [2]
        );
        let f = EventFilter {
            request_id: Some("r2".into()),
            after_seq: Some(3),
            limit: 1,
            ..Default::default()
        };
        assert_eq!(
            tx.list_events(&f)
                .await
                .unwrap()
                .iter()
                .map(|e| e.seq)
                .collect::<Vec<_>>(),
            [4]
        );

        let report = tx.verify_chain().await.unwrap();
        assert_eq!(report.events, 5);
        assert_eq!(report.head, all[4].hash);
        assert_eq!(tx.chain_tip().await.unwrap(), (5, all[4].hash.clone()));
        assert!(report.is_ok(), "{report:?}");

        // Appending needs the write lock.
        let err = tx.append_events(&[event(6, "r")]).await.unwrap_err();
        assert!(matches!(err, StoreError::ReadOnly(_)), "{err:?}");
    })
    .await;
}

#[tokio::test]
async fn altered_event_is_named() {
    each_backend(|store: Store| async move {
        append(&store, 10).await;
        assert_eq!(first_bad(&store).await, None);
        raw(
            &store,
            "UPDATE events SET canonical = REPLACE(canonical, 'alice', 'mallory') WHERE seq = 5",
        )
        .await;
        let (seq, what) = first_bad(&store).await.unwrap();
        assert_eq!(seq, 5, "{what}");
        assert!(what.contains("altered"), "{what}");

        // Re-hashing the altered row is caught at the next link.
        let mut tx = store.read().await.unwrap();
        let rows = tx
            .list_events(&EventFilter {
                after_seq: Some(4),
                limit: 1,
                ..Default::default()
            })
            .await
            .unwrap();
        drop(tx);
        let forged =
            jitgate_store::chain_hash(&rows[0].prev_hash, rows[0].canonical.as_bytes()).unwrap();
        raw(
            &store,
            &format!("UPDATE events SET hash = '{forged}' WHERE seq = 5"),
        )
        .await;
        let (seq, what) = first_bad(&store).await.unwrap();
        assert_eq!(seq, 6, "{what}");
        assert!(what.contains("does not link"), "{what}");
    })
    .await;
}

#[tokio::test]
async fn deleted_events_are_named() {
    each_backend(|store: Store| async move {
        append(&store, 10).await;
        raw(&store, "DELETE FROM events WHERE seq = 4").await;
        let (seq, what) = first_bad(&store).await.unwrap();
        assert_eq!(seq, 4, "{what}");
        assert!(what.contains("missing"), "{what}");
    })
    .await;
}

#[tokio::test]
async fn truncated_log_is_named() {
    each_backend(|store: Store| async move {
        append(&store, 10).await;
        raw(&store, "DELETE FROM events WHERE seq >= 9").await;
        let mut tx = store.read().await.unwrap();
        let report = tx.verify_chain().await.unwrap();
        assert_eq!(report.events, 8);
        let (seq, what) = report.first_bad.unwrap();
        assert_eq!(seq, 9, "{what}");
        assert!(what.contains("missing"), "{what}");
    })
    .await;
}

#[tokio::test]
async fn swapped_events_are_named() {
    each_backend(|store: Store| async move {
        append(&store, 10).await;
        raw(&store, "UPDATE events SET seq = -1 WHERE seq = 3").await;
        raw(&store, "UPDATE events SET seq = 3 WHERE seq = 7").await;
        raw(&store, "UPDATE events SET seq = 7 WHERE seq = -1").await;
        let (seq, what) = first_bad(&store).await.unwrap();
        assert_eq!(seq, 3, "{what}");
        assert!(what.contains("does not link"), "{what}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_keep_the_chain_gapless() {
    each_backend(|store: Store| async move {
        const TASKS: i64 = 16;
        const TXNS: i64 = 50;
        let mut handles = Vec::new();
        for task in 0..TASKS {
            let store = store.clone();
            handles.push(tokio::spawn(async move {
                let rid = format!("r{task}");
                let mut seqs = Vec::new();
                for i in 0..TXNS {
                    let mut tx = store.write().await.unwrap();
                    // Mix in reads and other writes, as a real transition would.
                    let _ = tx.get_setting("x").await.unwrap();
                    tx.set_setting(&format!("task-{task}"), &i.to_string())
                        .await
                        .unwrap();
                    seqs.extend(tx.append_events(&[event(i, &rid)]).await.unwrap());
                    tx.commit().await.unwrap();
                }
                seqs
            }));
        }
        let mut all = Vec::new();
        for h in handles {
            let seqs = h.await.unwrap();
            assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
            all.extend(seqs);
        }
        all.sort_unstable();
        assert_eq!(all, (1..=TASKS * TXNS).collect::<Vec<_>>());

        let mut tx = store.read().await.unwrap();
        let report = tx.verify_chain().await.unwrap();
        assert_eq!(report.events, TASKS * TXNS);
        assert!(report.is_ok(), "{report:?}");
        let f = EventFilter {
            request_id: Some("r3".into()),
            ..Default::default()
        };
        assert_eq!(tx.list_events(&f).await.unwrap().len() as i64, TXNS);
    })
    .await;
}
