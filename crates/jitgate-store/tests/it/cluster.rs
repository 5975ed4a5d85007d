//! What several nodes share: leases, gateway links, acknowledgements, heartbeats, and the
//! NOTIFY wake-up (PostgreSQL only; SQLite has one node and no listener).

use crate::fixtures::t;
use jitgate_store::{Backend, Store};
use jitgate_testkit::{each_backend, postgres_store};

#[tokio::test]
async fn a_lease_has_one_holder_until_it_expires_or_is_released() {
    each_backend(|store: Store| async move {
        assert!(store
            .try_lease("checkpoints", "a", t(0), t(1000))
            .await
            .unwrap());
        // Another node cannot take it while it runs; the holder renews.
        assert!(!store
            .try_lease("checkpoints", "b", t(500), t(1500))
            .await
            .unwrap());
        assert!(store
            .try_lease("checkpoints", "a", t(900), t(1900))
            .await
            .unwrap());
        assert!(!store
            .try_lease("checkpoints", "b", t(1899), t(2899))
            .await
            .unwrap());
        assert_eq!(
            store.lease_holder("checkpoints").await.unwrap(),
            Some(("a".to_string(), t(1900)))
        );
        // Expired (the holder died): the next node takes it.
        assert!(store
            .try_lease("checkpoints", "b", t(1900), t(2900))
            .await
            .unwrap());
        assert!(!store
            .try_lease("checkpoints", "a", t(2000), t(3000))
            .await
            .unwrap());
        // Released by someone else than the holder: nothing happens.
        store.release_lease("checkpoints", "a").await.unwrap();
        assert!(!store
            .try_lease("checkpoints", "a", t(2000), t(3000))
            .await
            .unwrap());
        store.release_lease("checkpoints", "b").await.unwrap();
        assert!(store
            .try_lease("checkpoints", "a", t(2000), t(3000))
            .await
            .unwrap());
        // Jobs are independent.
        assert!(store
            .try_lease("teardown:g1", "b", t(2000), t(3000))
            .await
            .unwrap());
    })
    .await;
}

#[tokio::test]
async fn concurrent_lease_requests_have_one_winner() {
    each_backend(|store: Store| async move {
        let tries = (0..8).map(|i| {
            let store = store.clone();
            async move {
                store
                    .try_lease("siem:main", &format!("node-{i}"), t(0), t(1000))
                    .await
                    .unwrap()
            }
        });
        let won = futures_util::future::join_all(tries).await;
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    })
    .await;
}

#[tokio::test]
async fn links_acks_and_heartbeats() {
    each_backend(|store: Store| async move {
        store.link_gateway("gw-north", "a", t(0)).await.unwrap();
        store.link_gateway("gw-south", "a", t(1)).await.unwrap();
        // gw-north reconnects to b before a notices it left: a's unlink must not undo b's.
        store.link_gateway("gw-north", "b", t(2)).await.unwrap();
        store.unlink_gateway("gw-north", "a").await.unwrap();
        assert_eq!(
            store.gateway_links().await.unwrap(),
            vec![
                ("gw-north".to_string(), "b".to_string(), t(2)),
                ("gw-south".to_string(), "a".to_string(), t(1)),
            ]
        );
        store.unlink_node("a").await.unwrap();
        assert_eq!(store.gateway_links().await.unwrap().len(), 1);

        assert_eq!(store.revocation_ack("gw-north", "g1").await.unwrap(), None);
        store
            .put_revocation_ack("gw-north", "g1", "{\"v\":1}", t(5))
            .await
            .unwrap();
        store
            .put_revocation_ack("gw-north", "g1", "{\"v\":2}", t(6))
            .await
            .unwrap();
        store
            .put_revocation_ack("gw-south", "g1", "{\"v\":3}", t(6))
            .await
            .unwrap();
        assert_eq!(
            store
                .revocation_ack("gw-north", "g1")
                .await
                .unwrap()
                .as_deref(),
            Some("{\"v\":2}")
        );
        store.forget_revocation_acks("g1").await.unwrap();
        assert_eq!(store.revocation_ack("gw-south", "g1").await.unwrap(), None);

        store.heartbeat("a", "http://a", t(0), t(10)).await.unwrap();
        store.heartbeat("b", "http://b", t(0), t(20)).await.unwrap();
        store.heartbeat("a", "http://a", t(0), t(30)).await.unwrap();
        let nodes = store.nodes().await.unwrap();
        assert_eq!(
            nodes
                .iter()
                .map(|n| (n.id.as_str(), n.seen_at))
                .collect::<Vec<_>>(),
            vec![("a", t(30)), ("b", t(20))]
        );
    })
    .await;
}

#[tokio::test]
async fn sqlite_has_no_listener_and_notify_is_a_no_op() {
    let (store, _dir) = jitgate_testkit::sqlite_store().await;
    assert!(store.listen(&["jitgate_test"]).await.unwrap().is_none());
    let mut tx = store.write().await.unwrap();
    tx.notify("jitgate_test", "x").await.unwrap();
    tx.commit().await.unwrap();
}

/// A notification sent in a write transaction arrives when it commits, not before, and not
/// at all when it rolls back.
#[tokio::test]
async fn notifications_are_delivered_on_commit_only() {
    let Some(pg) = postgres_store().await else {
        return;
    };
    let store = pg.store.clone();
    assert_eq!(store.backend(), Backend::Postgres);
    let mut listener = store.listen(&["jitgate_test"]).await.unwrap().unwrap();

    let mut rolled_back = store.write().await.unwrap();
    rolled_back.notify("jitgate_test", "never").await.unwrap();
    drop(rolled_back);

    let mut tx = store.write().await.unwrap();
    tx.notify("jitgate_test", "g-1").await.unwrap();
    tx.commit().await.unwrap();
    let mut plain = store.read().await.unwrap();
    plain.notify("jitgate_test", "g-2").await.unwrap();
    drop(plain);

    let first = listener.recv().await.unwrap().unwrap();
    assert_eq!(
        (first.channel.as_str(), first.payload.as_str()),
        ("jitgate_test", "g-1")
    );
    let second = listener.recv().await.unwrap().unwrap();
    assert_eq!(second.payload, "g-2");

    let mut tx = store.read().await.unwrap();
    let err = tx
        .notify("jitgate_test", &"x".repeat(8000))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("fewer than 8000"), "{err}");
    drop(tx);
    drop(listener);
    pg.cleanup().await;
}
