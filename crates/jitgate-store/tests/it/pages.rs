//! Keyset pages of the lists: a list read page by page, with rows inserted between pages,
//! is exactly the list (no row twice, none left out among those that existed when the
//! reading began), ties of the time column broken by insertion order; a cursor naming no
//! row is `UnknownCursor`.

use crate::fixtures::{grant, request, t};
use jitgate_store::{
    ApiKeyRecord, CheckpointRecord, GrantFilter, Notification, NotificationFilter, RequestFilter,
    ReviewFilter, ReviewRecord, Store, StoreError, TeardownRecord,
};
use jitgate_testkit::each_backend;
use serde_json::json;

fn is_unknown_cursor<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::UnknownCursor { .. }))
}

#[tokio::test]
async fn requests_and_grants_page_by_keyset_across_inserts() {
    each_backend(|store: Store| async move {
        // Ten requests, in pairs created in the same millisecond, each with a grant.
        let mut tx = store.write().await.unwrap();
        for i in 0..10 {
            let id = format!("r{i:02}");
            tx.insert_request(&request(&id, "alice", "alice", (i / 2) * 10, 0, 60))
                .await
                .unwrap();
            tx.insert_grant(&grant(
                &format!("g{i:02}"),
                &id,
                "alice",
                (i / 2) * 10,
                9_999,
            ))
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        let newest_first: Vec<String> = (0..10).rev().map(|i| format!("r{i:02}")).collect();

        let mut seen = Vec::new();
        let mut after = None;
        let mut inserted = false;
        loop {
            let mut tx = store.read().await.unwrap();
            let page = tx
                .list_requests(&RequestFilter {
                    after: after.clone(),
                    limit: 3,
                    ..Default::default()
                })
                .await
                .unwrap();
            drop(tx);
            if page.is_empty() {
                break;
            }
            after = page.last().map(|r| r.id.clone());
            seen.extend(page.into_iter().map(|r| r.id));
            if !inserted {
                // A newer request arrives after the first page: it belongs before the
                // cursor and never shows up in the following pages.
                let mut tx = store.write().await.unwrap();
                tx.insert_request(&request("r-new", "bob", "bob", 1_000, 0, 60))
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                inserted = true;
            }
        }
        assert_eq!(seen, newest_first, "every request once, newest first");

        let mut tx = store.read().await.unwrap();
        let mut grants = Vec::new();
        let mut after = None;
        loop {
            let page = tx
                .list_grants(&GrantFilter {
                    after: after.clone(),
                    limit: 4,
                    ..Default::default()
                })
                .await
                .unwrap();
            if page.is_empty() {
                break;
            }
            after = page.last().map(|g| g.id.clone());
            grants.extend(page.into_iter().map(|g| g.id));
        }
        let expected: Vec<String> = (0..10).rev().map(|i| format!("g{i:02}")).collect();
        assert_eq!(grants, expected);

        let unknown = RequestFilter {
            after: Some("no-such-request".into()),
            ..Default::default()
        };
        assert!(is_unknown_cursor(tx.list_requests(&unknown).await));
        let unknown = GrantFilter {
            after: Some("no-such-grant".into()),
            ..Default::default()
        };
        assert!(is_unknown_cursor(tx.list_grants(&unknown).await));
        // A request id is no cursor of the grants.
        let other = GrantFilter {
            after: Some("r03".into()),
            ..Default::default()
        };
        assert!(is_unknown_cursor(tx.list_grants(&other).await));
    })
    .await;
}

#[tokio::test]
async fn the_other_lists_page_by_keyset() {
    each_backend(|store: Store| async move {
        let mut tx = store.write().await.unwrap();
        tx.insert_request(&request("r1", "alice", "alice", 0, 0, 60))
            .await
            .unwrap();
        for i in 0..7i64 {
            let g = format!("g{i}");
            tx.insert_grant(&grant(&g, "r1", "alice", i, 9_999))
                .await
                .unwrap();
            tx.enqueue_notification(&Notification {
                id: format!("n{i}"),
                webhook: "soc".into(),
                kind: "grant.active".into(),
                payload: json!({"delivery": i}),
                // Pairs share a creation time.
                created_at: t(i / 2),
                attempts: 0,
                next_attempt_at: t(i),
                delivered_at: None,
                last_error: None,
            })
            .await
            .unwrap();
            tx.open_review(&ReviewRecord {
                grant_id: g.clone(),
                request_id: "r1".into(),
                subject: "alice".into(),
                reason: "break_glass".into(),
                detail: json!({}),
                opened_at: t(i / 2),
                due_at: t(100),
                overdue_notified: false,
                reviewer: None,
                outcome: None,
                note: None,
                completed_at: None,
            })
            .await
            .unwrap();
            tx.insert_api_key(&ApiKeyRecord {
                id: format!("k{}", 6 - i),
                identity: "svc-hist".into(),
                name: "export".into(),
                key_hash: format!("{i:064}"),
                created_at: t(i / 2),
                revoked: false,
                minted_by: None,
                expires_at: None,
            })
            .await
            .unwrap();
            tx.put_teardown(&TeardownRecord {
                grant_id: g.clone(),
                verdict: "failed".into(),
                report: json!({"checks": []}),
                attempts: 1,
                next_attempt_at: Some(t(50)),
                started_at: t(i / 3),
                updated_at: t(i),
            })
            .await
            .unwrap();
            tx.insert_checkpoint(&CheckpointRecord {
                log_id: "jitgate.test/plant-1".into(),
                tree_size: i / 2,
                root_hash: format!("{i:064x}"),
                at: t(i),
                key_id: "0123456789abcdef".into(),
                signature: format!("sig-{i}"),
            })
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();

        let mut tx = store.read().await.unwrap();
        // Notifications, newest first, two at a time.
        let whole: Vec<String> = tx
            .list_notifications(&NotificationFilter::default())
            .await
            .unwrap()
            .into_iter()
            .map(|n| n.id)
            .collect();
        let (mut paged, mut after) = (Vec::new(), None);
        loop {
            let f = NotificationFilter {
                after: after.clone(),
                limit: 2,
                ..Default::default()
            };
            let page = tx.list_notifications(&f).await.unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            paged.extend(page.into_iter().map(|n| n.id));
        }
        assert_eq!(whole.len(), 7);
        assert_eq!(paged, whole);

        // Reviews, named by grant and reason.
        let whole: Vec<String> = tx
            .list_reviews(&ReviewFilter::default())
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.grant_id)
            .collect();
        let (mut paged, mut after) = (Vec::new(), None);
        loop {
            let f = ReviewFilter {
                after: after.clone(),
                limit: 3,
                ..Default::default()
            };
            let page = tx.list_reviews(&f).await.unwrap();
            let Some(last) = page.last() else { break };
            after = Some((last.grant_id.clone(), last.reason.clone()));
            paged.extend(page.into_iter().map(|r| r.grant_id));
        }
        assert_eq!(whole.len(), 7);
        assert_eq!(paged, whole);

        // API keys, oldest first (ties by id).
        let (mut paged, mut after) = (Vec::new(), None::<String>);
        loop {
            let page = tx
                .list_api_keys_after(Some("svc-hist"), after.as_deref(), 2)
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            paged.extend(page.into_iter().map(|k| k.id));
        }
        assert_eq!(paged, ["k5", "k6", "k3", "k4", "k1", "k2", "k0"]);

        // Failed teardowns, oldest first.
        let (mut paged, mut after) = (Vec::new(), None::<String>);
        loop {
            let page = tx
                .list_teardowns_after("failed", after.as_deref(), 2)
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.grant_id.clone());
            paged.extend(page.into_iter().map(|t| t.grant_id));
        }
        assert_eq!(paged, ["g0", "g1", "g2", "g3", "g4", "g5", "g6"]);

        // Checkpoints, by tree size, with their positions.
        let whole = tx.list_checkpoints().await.unwrap();
        let (mut paged, mut after) = (Vec::new(), None);
        loop {
            let page = tx.list_checkpoints_after(after, 3).await.unwrap();
            let Some((pos, _)) = page.last() else { break };
            after = Some(*pos);
            paged.extend(page.into_iter().map(|(_, c)| c));
        }
        assert_eq!(paged, whole);

        let f = NotificationFilter {
            after: Some("nope".into()),
            ..Default::default()
        };
        assert!(is_unknown_cursor(tx.list_notifications(&f).await));
        let f = ReviewFilter {
            after: Some(("g1".into(), "policy".into())),
            ..Default::default()
        };
        assert!(is_unknown_cursor(tx.list_reviews(&f).await));
        assert!(is_unknown_cursor(
            tx.list_api_keys_after(None, Some("nope"), 2).await
        ));
        assert!(is_unknown_cursor(
            tx.list_teardowns_after("failed", Some("nope"), 2).await
        ));
        assert!(is_unknown_cursor(
            tx.list_checkpoints_after(Some(1_000_000), 2).await
        ));
    })
    .await;
}
