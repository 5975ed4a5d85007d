//! Checkpoints, raw event rows, one access's events and the policy text archive, on both
//! backends. The store keeps them verbatim; signing and verifying are the server's.

use crate::fixtures::{event, t};
use jitgate_store::{CheckpointRecord, Store, StoreError};
use jitgate_testkit::each_backend;

fn cp(size: i64, at_ms: i64) -> CheckpointRecord {
    CheckpointRecord {
        log_id: "jitgate.test/plant-1".into(),
        tree_size: size,
        root_hash: format!("{size:064x}"),
        at: t(at_ms),
        key_id: "0123456789abcdef".into(),
        signature: format!("sig-{size}-{at_ms}"),
    }
}

#[tokio::test]
async fn checkpoints_are_kept_verbatim_in_size_order() {
    each_backend(|store: Store| async move {
        let mut tx = store.read().await.unwrap();
        assert_eq!(tx.latest_checkpoint().await.unwrap(), None);
        assert!(matches!(
            tx.insert_checkpoint(&cp(1, 0)).await,
            Err(StoreError::ReadOnly(_))
        ));
        drop(tx);
        let mut tx = store.write().await.unwrap();
        for c in [cp(10, 1000), cp(3, 500), cp(10, 2000)] {
            tx.insert_checkpoint(&c).await.unwrap();
        }
        tx.commit().await.unwrap();
        let mut tx = store.read().await.unwrap();
        let all = tx.list_checkpoints().await.unwrap();
        assert_eq!(all, vec![cp(3, 500), cp(10, 1000), cp(10, 2000)]);
        // The largest tree; of two of that size, the one stored last.
        assert_eq!(tx.latest_checkpoint().await.unwrap(), Some(cp(10, 2000)));
    })
    .await;
}

#[tokio::test]
async fn event_rows_page_verbatim_and_access_events_take_request_or_grant() {
    each_backend(|store: Store| async move {
        let mut tx = store.write().await.unwrap();
        tx.append_events(&[
            event(1, "r1"),
            event(2, "r2"),
            event(3, "r1").grant("g1"),
            // A gateway event names the grant only.
            jitgate_core::Event::new(
                jitgate_core::EventKind::Operation,
                jitgate_core::Actor::identity("gw-north"),
                t(4),
            )
            .grant("g1"),
            event(5, "r2").grant("g2"),
        ])
        .await
        .unwrap();
        tx.commit().await.unwrap();

        let mut tx = store.read_snapshot().await.unwrap();
        let all = tx.event_rows(0, None, 1000).await.unwrap();
        assert_eq!(
            all.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        let listed = tx
            .list_events(&jitgate_store::EventFilter::default())
            .await
            .unwrap();
        for (row, e) in all.iter().zip(&listed) {
            assert_eq!(
                (&row.prev_hash, &row.hash, &row.canonical),
                (&e.prev_hash, &e.hash, &e.canonical)
            );
        }
        // Pages: after, up to, limit.
        let page = tx.event_rows(1, Some(4), 2).await.unwrap();
        assert_eq!(page.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3]);
        let page = tx.event_rows(3, Some(4), 10).await.unwrap();
        assert_eq!(page.iter().map(|r| r.seq).collect::<Vec<_>>(), [4]);
        assert!(tx.event_rows(5, None, 10).await.unwrap().is_empty());

        let access = tx.access_events("r1", "g1").await.unwrap();
        assert_eq!(
            access.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
            [1, 3, 4]
        );
        assert_eq!(access[2].1, all[3].canonical);
        tx.commit().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn policy_texts_are_archived_once_per_set() {
    each_backend(|store: Store| async move {
        let texts = vec![
            (
                "a".to_string(),
                "permit(principal, action, resource);".to_string(),
            ),
            (
                "b".to_string(),
                "forbid(principal, action, resource);".to_string(),
            ),
        ];
        let mut tx = store.write().await.unwrap();
        tx.archive_policy_texts("sha256:one", &texts).await.unwrap();
        // Archiving again changes nothing, even with other text under the same hash.
        let other = vec![("a".to_string(), "changed".to_string())];
        tx.archive_policy_texts("sha256:one", &other).await.unwrap();
        tx.archive_policy_texts("sha256:two", &other).await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = store.read().await.unwrap();
        let one = tx.policy_texts("sha256:one").await.unwrap();
        assert_eq!(one.len(), 2);
        assert_eq!(one["a"], "permit(principal, action, resource);");
        assert_eq!(tx.policy_texts("sha256:two").await.unwrap()["a"], "changed");
        assert!(tx.policy_texts("sha256:none").await.unwrap().is_empty());
    })
    .await;
}

/// `scan_log` (the verifier's bulk read) gives the same rows as `event_rows`, pages larger
/// logs, honours `up_to`, and reads one snapshot: rows and checkpoints committed after the
/// scan began are not in it, and its chain head agrees with its rows.
#[tokio::test]
async fn scan_log_reads_every_row_verbatim_in_one_snapshot() {
    each_backend(|store: Store| async move {
        let total = jitgate_store::SCAN_PAGE_ROWS as i64 * 2 + 17;
        let events: Vec<_> = (0..total).map(|i| event(i, "r1")).collect();
        let mut tx = store.write().await.unwrap();
        tx.append_events(&events).await.unwrap();
        tx.insert_checkpoint(&cp(5, 100)).await.unwrap();
        tx.commit().await.unwrap();

        let mut scan = store.scan_log(None).await.unwrap();
        // Written after the scan began: must not be seen by it.
        let mut tx = store.write().await.unwrap();
        tx.append_events(&[event(total, "r2")]).await.unwrap();
        tx.insert_checkpoint(&cp(total + 1, 200)).await.unwrap();
        tx.commit().await.unwrap();

        let mut tx = store.read_snapshot().await.unwrap();
        let expected = tx.event_rows(0, Some(total), 100_000).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(scan.head.0, total);
        assert_eq!(scan.head.1, expected.last().unwrap().hash);
        assert_eq!(scan.checkpoints, vec![cp(5, 100)]);
        let mut got = Vec::new();
        let mut pages = 0;
        while let Some(page) = scan.next().await {
            pages += 1;
            for l in page.unwrap().iter() {
                got.push(jitgate_store::EventRow {
                    seq: l.seq,
                    prev_hash: l.prev_hash.to_string(),
                    hash: l.hash.to_string(),
                    canonical: l.canonical.to_string(),
                });
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(got, expected);

        // A bound, and the row written later, in a new scan.
        let mut scan = store.scan_log(Some(3)).await.unwrap();
        let page = scan.next().await.unwrap().unwrap();
        assert_eq!(page.iter().map(|l| l.seq).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(scan.next().await.is_none());
        let mut scan = store.scan_log(None).await.unwrap();
        assert_eq!(scan.head.0, total + 1);
        let mut n = 0;
        while let Some(page) = scan.next().await {
            n += page.unwrap().len() as i64;
        }
        assert_eq!(n, total + 1);

        // Stopping early (a verifier that found a problem) lets go of the snapshot.
        let mut scan = store.scan_log(None).await.unwrap();
        assert!(scan.next().await.is_some());
        drop(scan);
        let mut tx = store.write().await.unwrap();
        tx.append_events(&[event(total + 1, "r3")]).await.unwrap();
        tx.commit().await.unwrap();

        // Rows written behind the store's back, below and far beyond the log: each is read
        // once, in seq order (a forged huge seq must not cost a page per missing seq).
        for seq in [0_i64, 1_000_000_000_000] {
            sqlx::query(
                "INSERT INTO events (seq, prev_hash, hash, kind, actor, at, canonical) \
                 VALUES ($1, 'x', 'y', 'forged', 'nobody', 0, '{}')",
            )
            .bind(seq)
            .execute(store.pool())
            .await
            .unwrap();
        }
        let mut scan = store.scan_log(None).await.unwrap();
        let mut seqs = Vec::new();
        while let Some(page) = scan.next().await {
            seqs.extend(page.unwrap().iter().map(|l| l.seq));
        }
        let mut expected: Vec<i64> = (0..=total + 2).collect();
        expected.push(1_000_000_000_000);
        assert_eq!(seqs, expected);
    })
    .await;
}
