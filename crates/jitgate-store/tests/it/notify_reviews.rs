//! The notification outbox (claim, deliver, reschedule) and post-session reviews (idempotent
//! open, overdue, complete once), on both backends.

use crate::fixtures::{grant, request, t};
use jitgate_store::{
    Notification, NotificationFilter, ReviewFilter, ReviewRecord, ReviewState, Store, StoreError,
};
use jitgate_testkit::each_backend;
use serde_json::json;

fn notification(id: &str, webhook: &str, created: i64) -> Notification {
    Notification {
        id: id.into(),
        webhook: webhook.into(),
        kind: "grant.active".into(),
        payload: json!({"delivery": id, "data": {"grant_id": "g1"}}),
        created_at: t(created),
        attempts: 0,
        next_attempt_at: t(created),
        delivered_at: None,
        last_error: None,
    }
}

#[tokio::test]
async fn outbox_claims_delivers_and_reschedules() {
    each_backend(|store: Store| async move {
        let mut tx = store.write().await.unwrap();
        tx.enqueue_notification(&notification("n1", "soc", 0))
            .await
            .unwrap();
        tx.enqueue_notification(&notification("n2", "chat", 10))
            .await
            .unwrap();
        let err = tx
            .enqueue_notification(&notification("n1", "soc", 0))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        tx.commit().await.unwrap();

        // Read transactions cannot claim.
        let mut tx = store.read().await.unwrap();
        assert!(matches!(
            tx.claim_notifications(t(0), t(60_000), 10).await,
            Err(StoreError::ReadOnly(_))
        ));
        assert_eq!(tx.next_notification_at().await.unwrap(), Some(t(0)));
        drop(tx);

        // Only n1 is due at t(5); claiming counts the attempt and leases it.
        let mut tx = store.write().await.unwrap();
        let claimed = tx.claim_notifications(t(5), t(60_005), 10).await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].id, "n1");
        assert_eq!(claimed[0].attempts, 1);
        assert_eq!(claimed[0].payload["data"]["grant_id"], "g1");
        // Claimed rows are not due again during the lease.
        assert!(tx
            .notifications_due(t(59_000), 10)
            .await
            .unwrap()
            .iter()
            .all(|n| n.id != "n1"));
        tx.reschedule_notification("n1", t(1_005), "HTTP 500: down")
            .await
            .unwrap();
        tx.mark_notification_delivered("n2", t(20)).await.unwrap();
        // Rescheduling a delivered row changes nothing.
        tx.reschedule_notification("n2", t(99), "late")
            .await
            .unwrap();
        assert!(matches!(
            tx.mark_notification_delivered("nope", t(0)).await,
            Err(StoreError::NotFound { .. })
        ));
        tx.commit().await.unwrap();

        let mut tx = store.read().await.unwrap();
        let n1 = tx.get_notification("n1").await.unwrap().unwrap();
        assert_eq!(n1.attempts, 1);
        assert_eq!(n1.next_attempt_at, t(1_005));
        assert_eq!(n1.last_error.as_deref(), Some("HTTP 500: down"));
        let n2 = tx.get_notification("n2").await.unwrap().unwrap();
        assert_eq!(n2.delivered_at, Some(t(20)));
        assert_eq!(n2.last_error, None);
        assert_eq!(tx.next_notification_at().await.unwrap(), Some(t(1_005)));
        let pending = tx
            .list_notifications(&NotificationFilter {
                delivered: Some(false),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].id, "n1");
        let all = tx
            .list_notifications(&NotificationFilter::default())
            .await
            .unwrap();
        assert_eq!(
            all.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(),
            ["n2", "n1"],
            "newest first"
        );
        let chat = tx
            .list_notifications(&NotificationFilter {
                webhook: Some("chat".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(chat.len(), 1);
    })
    .await;
}

fn review(grant_id: &str, reason: &str, due: i64) -> ReviewRecord {
    ReviewRecord {
        grant_id: grant_id.into(),
        request_id: "r1".into(),
        subject: "oscar".into(),
        reason: reason.into(),
        detail: json!({"why": "break-glass"}),
        opened_at: t(0),
        due_at: t(due),
        overdue_notified: false,
        reviewer: None,
        outcome: None,
        note: None,
        completed_at: None,
    }
}

#[tokio::test]
async fn reviews_open_once_go_overdue_and_complete_once() {
    each_backend(|store: Store| async move {
        let mut tx = store.write().await.unwrap();
        tx.insert_request(&request("r1", "oscar", "oscar", 0, 0, 1800))
            .await
            .unwrap();
        tx.insert_grant(&grant("g1", "r1", "oscar", 0, 1_800_000))
            .await
            .unwrap();
        assert!(tx
            .open_review(&review("g1", "break_glass", 1_000))
            .await
            .unwrap());
        // Idempotent per grant and reason; another reason is another review. An unknown
        // grant is refused without spoiling the transaction (PostgreSQL aborts on errors).
        assert!(!tx
            .open_review(&review("g1", "break_glass", 9_000))
            .await
            .unwrap());
        assert!(tx
            .open_review(&review("g1", "legacy_asset", 5_000))
            .await
            .unwrap());
        assert!(matches!(
            tx.open_review(&review("missing", "break_glass", 1)).await,
            Err(StoreError::NotFound { .. })
        ));
        tx.commit().await.unwrap();

        let mut tx = store.write().await.unwrap();
        let kept = tx.get_review("g1", "break_glass").await.unwrap().unwrap();
        assert_eq!(kept.due_at, t(1_000), "the first opening is kept");
        let overdue = tx.reviews_overdue_unnotified(t(2_000)).await.unwrap();
        assert_eq!(overdue.len(), 1);
        assert_eq!(overdue[0].reason, "break_glass");
        tx.mark_review_overdue_notified("g1", "break_glass")
            .await
            .unwrap();
        assert!(tx
            .reviews_overdue_unnotified(t(2_000))
            .await
            .unwrap()
            .is_empty());
        let listed = |state| ReviewFilter {
            state: Some(state),
            ..Default::default()
        };
        assert_eq!(
            tx.list_reviews(&listed(ReviewState::Overdue(t(2_000))))
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            tx.list_reviews(&listed(ReviewState::Open))
                .await
                .unwrap()
                .len(),
            2
        );

        tx.complete_review(
            "g1",
            "break_glass",
            "sam",
            "finding",
            "coil forced",
            t(3_000),
        )
        .await
        .unwrap();
        let again = tx
            .complete_review("g1", "break_glass", "sam", "ok", "", t(4_000))
            .await
            .unwrap_err();
        assert!(matches!(again, StoreError::Conflict(_)), "{again:?}");
        assert!(matches!(
            tx.complete_review("g1", "nope", "sam", "ok", "", t(4_000))
                .await,
            Err(StoreError::NotFound { .. })
        ));
        tx.commit().await.unwrap();

        let mut tx = store.read().await.unwrap();
        let done = tx.list_reviews(&listed(ReviewState::Done)).await.unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].reviewer.as_deref(), Some("sam"));
        assert_eq!(done[0].outcome.as_deref(), Some("finding"));
        assert_eq!(done[0].note.as_deref(), Some("coil forced"));
        assert_eq!(done[0].completed_at, Some(t(3_000)));
        assert_eq!(done[0].detail, json!({"why": "break-glass"}));
        assert!(!done[0].is_open());
        let of_grant = tx
            .list_reviews(&ReviewFilter {
                grant_id: Some("g1".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(of_grant.len(), 2);
    })
    .await;
}
