use crate::fixtures::{approval, grant, request, t};
use jitgate_core::{EndReason, GrantState, RequestState};
use jitgate_store::{GrantFilter, RequestFilter, Store, StoreError};
use jitgate_testkit::each_backend;

fn ids<T>(items: &[T], id: impl Fn(&T) -> &str) -> Vec<String> {
    items.iter().map(|i| id(i).to_string()).collect()
}

#[tokio::test]
async fn requests_round_trip_update_and_filter() {
    each_backend(|store: Store| async move {
        let r1 = request("r1", "alice", "alice", 0, 1_000, 3600);
        let r2 = request("r2", "bob", "svc-hist", 10, 1_000, 600);
        let mut r3 = request("r3", "alice", "svc-hist", 20, 5_000, 60);
        r3.state = RequestState::Approved;
        // Same creation instant as r3: insertion order breaks the tie.
        let r4 = request("r4", "carol", "carol", 20, 5_000, 60);

        let mut tx = store.write().await.unwrap();
        for r in [&r1, &r2, &r3, &r4] {
            tx.insert_request(r).await.unwrap();
        }
        let err = tx.insert_request(&r1).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        // A duplicate must not poison the transaction (PostgreSQL aborts on a failed
        // statement): the rest of it still commits.
        tx.set_setting("after-conflict", "yes").await.unwrap();
        tx.commit().await.unwrap();

        let mut tx = store.read().await.unwrap();
        assert_eq!(tx.get_request("r1").await.unwrap(), Some(r1.clone()));
        assert_eq!(tx.get_request("r3").await.unwrap(), Some(r3.clone()));
        assert_eq!(tx.get_request("missing").await.unwrap(), None);
        assert_eq!(tx.get_setting("after-conflict").await.unwrap().as_deref(), Some("yes"));

        let all = tx.list_requests(&RequestFilter::default()).await.unwrap();
        assert_eq!(ids(&all, |r| &r.id), ["r4", "r3", "r2", "r1"]);
        let f = RequestFilter { state: Some(RequestState::Pending), ..Default::default() };
        assert_eq!(ids(&tx.list_requests(&f).await.unwrap(), |r| &r.id), ["r4", "r2", "r1"]);
        let f = RequestFilter { requester: Some("alice".into()), ..Default::default() };
        assert_eq!(ids(&tx.list_requests(&f).await.unwrap(), |r| &r.id), ["r3", "r1"]);
        let f = RequestFilter { subject: Some("svc-hist".into()), ..Default::default() };
        assert_eq!(ids(&tx.list_requests(&f).await.unwrap(), |r| &r.id), ["r3", "r2"]);
        let f = RequestFilter { involving: Some("bob".into()), ..Default::default() };
        assert_eq!(ids(&tx.list_requests(&f).await.unwrap(), |r| &r.id), ["r2"]);
        let f = RequestFilter { involving: Some("svc-hist".into()), ..Default::default() };
        assert_eq!(ids(&tx.list_requests(&f).await.unwrap(), |r| &r.id), ["r3", "r2"]);
        let f = RequestFilter {
            involving: Some("alice".into()),
            state: Some(RequestState::Approved),
            ..Default::default()
        };
        assert_eq!(ids(&tx.list_requests(&f).await.unwrap(), |r| &r.id), ["r3"]);
        let f = RequestFilter { limit: 2, ..Default::default() };
        assert_eq!(ids(&tx.list_requests(&f).await.unwrap(), |r| &r.id), ["r4", "r3"]);
        drop(tx);

        let mut r1b = r1.clone();
        r1b.state = RequestState::Denied;
        r1b.state_reason = Some("denied by bob: not now".into());
        r1b.grant_id = Some("g1".into());
        r1b.updated_at = t(99);
        r1b.window_start = t(2_000);
        let mut tx = store.write().await.unwrap();
        tx.update_request(&r1b).await.unwrap();
        let missing = request("nope", "x", "x", 0, 0, 1);
        let err = tx.update_request(&missing).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound { ref what, ref id } if what == "request" && id == "nope"), "{err:?}");
        tx.commit().await.unwrap();
        let mut tx = store.read().await.unwrap();
        assert_eq!(tx.get_request("r1").await.unwrap(), Some(r1b));
    })
    .await;
}

#[tokio::test]
async fn approvals_are_unique_per_approver_and_listed_oldest_first() {
    each_backend(|store: Store| async move {
        let mut tx = store.write().await.unwrap();
        tx.insert_request(&request("r1", "alice", "alice", 0, 0, 3600))
            .await
            .unwrap();
        let a2 = approval("a2", "r1", "dave", 50);
        let mut a1 = approval("a1", "r1", "bob", 50);
        a1.verdict = jitgate_core::ApprovalVerdict::Deny;
        a1.step_up = false;
        a1.comment = String::new();
        let a0 = approval("a0", "r1", "carol", 10);
        for a in [&a2, &a1, &a0] {
            tx.insert_approval(a).await.unwrap();
        }
        let err = tx
            .insert_approval(&approval("a9", "r1", "bob", 60))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        assert!(
            err.to_string().contains("bob has already recorded"),
            "{err}"
        );
        let err = tx
            .insert_approval(&approval("a0", "r1", "erin", 60))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        assert!(
            err.to_string().contains("approval a0 already exists"),
            "{err}"
        );
        // The transaction is still usable after both conflicts.
        assert_eq!(
            tx.list_approvals("r1").await.unwrap(),
            vec![a0.clone(), a2.clone(), a1.clone()]
        );
        tx.commit().await.unwrap();

        let mut tx = store.read().await.unwrap();
        assert_eq!(tx.list_approvals("r1").await.unwrap(), vec![a0, a2, a1]);
        assert_eq!(tx.list_approvals("r2").await.unwrap(), vec![]);
        drop(tx);

        let mut tx = store.write().await.unwrap();
        let err = tx
            .insert_approval(&approval("a5", "ghost", "bob", 60))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::NotFound { ref id, .. } if id == "ghost"),
            "{err:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn grants_round_trip_update_and_filter() {
    each_backend(|store: Store| async move {
        let mut tx = store.write().await.unwrap();
        for (id, subject) in [("r1", "alice"), ("r2", "bob"), ("r3", "alice")] {
            tx.insert_request(&request(id, subject, subject, 0, 0, 3600))
                .await
                .unwrap();
        }
        let g1 = grant("g1", "r1", "alice", 100, 3_600_000);
        let g2 = grant("g2", "r2", "bob", 200, 3_600_000);
        let mut g3 = grant("g3", "r3", "alice", 300, 60_000);
        g3.emergency = true;
        g3.review_required = false;
        for g in [&g1, &g2, &g3] {
            tx.insert_grant(g).await.unwrap();
        }
        let err = tx.insert_grant(&g1).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        let err = tx
            .insert_grant(&grant("g9", "ghost", "x", 0, 1))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::NotFound { ref id, .. } if id == "ghost"),
            "{err:?}"
        );
        drop(tx); // the foreign-key failure aborted the PostgreSQL transaction; start over

        let mut tx = store.write().await.unwrap();
        for (id, subject) in [("r1", "alice"), ("r2", "bob"), ("r3", "alice")] {
            tx.insert_request(&request(id, subject, subject, 0, 0, 3600))
                .await
                .unwrap();
        }
        for g in [&g1, &g2, &g3] {
            tx.insert_grant(g).await.unwrap();
        }
        let mut g1b = g1.clone();
        g1b.state = GrantState::Ending;
        g1b.ended_at = Some(t(500));
        g1b.end_reason = Some(EndReason::Revoked {
            by: "sec".into(),
            reason: "incident".into(),
        });
        tx.update_grant(&g1b).await.unwrap();
        let err = tx
            .update_grant(&grant("g404", "r1", "x", 0, 1))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
        tx.commit().await.unwrap();

        let mut tx = store.read().await.unwrap();
        assert_eq!(tx.get_grant("g1").await.unwrap(), Some(g1b.clone()));
        assert_eq!(tx.get_grant("g3").await.unwrap(), Some(g3.clone()));
        assert_eq!(tx.get_grant("g0").await.unwrap(), None);
        let all = tx.list_grants(&GrantFilter::default()).await.unwrap();
        assert_eq!(ids(&all, |g| &g.id), ["g3", "g2", "g1"]);
        let f = GrantFilter {
            state: Some(GrantState::Active),
            ..Default::default()
        };
        assert_eq!(
            ids(&tx.list_grants(&f).await.unwrap(), |g| &g.id),
            ["g3", "g2"]
        );
        let f = GrantFilter {
            subject: Some("alice".into()),
            ..Default::default()
        };
        assert_eq!(
            ids(&tx.list_grants(&f).await.unwrap(), |g| &g.id),
            ["g3", "g1"]
        );
        let f = GrantFilter {
            state: Some(GrantState::Active),
            subject: Some("alice".into()),
            limit: 1,
            ..Default::default()
        };
        assert_eq!(ids(&tx.list_grants(&f).await.unwrap(), |g| &g.id), ["g3"]);
        // Every end reason survives the JSON column.
        drop(tx);
        for reason in [
            EndReason::Expired,
            EndReason::Completed { by: "alice".into() },
            EndReason::ContextChanged {
                what: "asset plc-7 locked out".into(),
            },
        ] {
            let mut g = g2.clone();
            g.state = GrantState::Closed;
            g.ended_at = Some(t(700));
            g.end_reason = Some(reason);
            let mut tx = store.write().await.unwrap();
            tx.update_grant(&g).await.unwrap();
            assert_eq!(tx.get_grant("g2").await.unwrap(), Some(g));
            tx.commit().await.unwrap();
        }
    })
    .await;
}

#[tokio::test]
async fn due_queries_and_next_deadline() {
    each_backend(|store: Store| async move {
        let mut tx = store.read().await.unwrap();
        assert_eq!(tx.next_deadline().await.unwrap(), None);
        assert_eq!(tx.requests_due(t(0)).await.unwrap(), vec![]);
        assert_eq!(tx.grants_expired(t(0)).await.unwrap(), vec![]);
        drop(tx);

        // Windows in seconds from t(0).
        let pending_open = request("pending-open", "a", "a", 0, 0, 100); // ends t(100s)
        let mut approved_future = request("approved-future", "a", "a", 0, 50_000, 100); // opens t(50s)
        approved_future.state = RequestState::Approved;
        let mut approved_open = request("approved-open", "a", "a", 0, 0, 1_000);
        approved_open.state = RequestState::Approved;
        let mut active = request("active", "a", "a", 0, 0, 10);
        active.state = RequestState::Active;
        let mut lapsed = request("lapsed", "a", "a", 0, 0, 10);
        lapsed.state = RequestState::Lapsed;
        let mut tx = store.write().await.unwrap();
        for r in [
            &pending_open,
            &approved_future,
            &approved_open,
            &active,
            &lapsed,
        ] {
            tx.insert_request(r).await.unwrap();
        }
        let g_soon = grant("g-soon", "active", "a", 0, 30_000);
        let g_late = grant("g-late", "active", "a", 0, 400_000);
        let mut g_ended = grant("g-ended", "active", "a", 0, 1_000);
        g_ended.state = GrantState::Ending;
        for g in [&g_soon, &g_late, &g_ended] {
            tx.insert_grant(g).await.unwrap();
        }
        tx.commit().await.unwrap();

        let mut tx = store.read().await.unwrap();
        // approved-open's window opened at t(0): work is due now.
        assert_eq!(tx.next_deadline().await.unwrap(), Some(t(0)));
        let due = |v: Vec<jitgate_core::Request>| ids(&v, |r| &r.id);
        // At t(10s): approved-open is due for activation only.
        assert_eq!(
            due(tx.requests_due(t(10_000)).await.unwrap()),
            ["approved-open"]
        );
        // At t(50s): approved-future opens too.
        assert_eq!(
            due(tx.requests_due(t(50_000)).await.unwrap()),
            ["approved-open", "approved-future"]
        );
        // At t(100s): pending-open's window closed (lapse candidate).
        assert_eq!(
            due(tx.requests_due(t(100_000)).await.unwrap()),
            ["pending-open", "approved-open", "approved-future"]
        );
        assert_eq!(
            ids(&tx.grants_expired(t(29_999)).await.unwrap(), |g| &g.id),
            Vec::<String>::new()
        );
        assert_eq!(
            ids(&tx.grants_expired(t(30_000)).await.unwrap(), |g| &g.id),
            ["g-soon"]
        );
        assert_eq!(
            ids(&tx.grants_expired(t(500_000)).await.unwrap(), |g| &g.id),
            ["g-soon", "g-late"]
        );
        drop(tx);

        // Without approved-open, the earliest is g-soon's expiry at t(30s) (g-ended's earlier
        // expiry does not count: it is no longer active).
        let mut tx = store.write().await.unwrap();
        let mut r = approved_open.clone();
        r.state = RequestState::Withdrawn;
        tx.update_request(&r).await.unwrap();
        assert_eq!(tx.next_deadline().await.unwrap(), Some(t(30_000)));
        // Without active grants: approved-future opens at t(50s).
        for g in [&g_soon, &g_late] {
            let mut g = g.clone();
            g.state = GrantState::Closed;
            tx.update_grant(&g).await.unwrap();
        }
        assert_eq!(tx.next_deadline().await.unwrap(), Some(t(50_000)));
        // A pending request's deadline is its window end: pending-open closes at t(100s).
        let mut r = approved_future.clone();
        r.state = RequestState::Withdrawn;
        tx.update_request(&r).await.unwrap();
        assert_eq!(tx.next_deadline().await.unwrap(), Some(t(100_000)));
        tx.commit().await.unwrap();
    })
    .await;
}
