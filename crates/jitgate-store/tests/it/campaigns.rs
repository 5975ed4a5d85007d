//! Attestations (owed at issue, given once, missing after the cutoff) and campaigns (items
//! fixed at open, each decided once, closed once), on both backends.

use crate::fixtures::{grant, request, t};
use jitgate_core::campaign::{CampaignState, DecisionEffect, ItemDecision, ItemKind};
use jitgate_core::GrantState;
use jitgate_store::{
    AttestationFilter, AttestationRecord, CampaignItemRecord, CampaignRecord, Store, StoreError,
};
use jitgate_testkit::each_backend;

fn given(grant_id: &str, at: i64) -> AttestationRecord {
    AttestationRecord {
        grant_id: grant_id.into(),
        request_id: format!("r-{grant_id}"),
        subject: "vera".into(),
        required: false,
        attester: Some("vera".into()),
        task_done: Some(true),
        changes: vec!["HR 40: 80 -> 75".into()],
        note: Some("done".into()),
        attested_at: Some(t(at)),
    }
}

#[tokio::test]
async fn attestations_are_owed_given_once_and_missing_after_the_cutoff() {
    each_backend(|store: Store| async move {
        let mut tx = store.write().await.unwrap();
        for g in ["g1", "g2", "g3"] {
            tx.insert_request(&request(&format!("r-{g}"), "vera", "vera", 0, 0, 1800))
                .await
                .unwrap();
            tx.insert_grant(&grant(g, &format!("r-{g}"), "vera", 0, 1_800_000))
                .await
                .unwrap();
        }
        // g1 and g2 owe one; g3 does not.
        tx.require_attestation("g1", "r-g1", "vera").await.unwrap();
        tx.require_attestation("g1", "r-g1", "vera").await.unwrap();
        tx.require_attestation("g2", "r-g2", "vera").await.unwrap();
        // g1 and g2 end at 10 s and 20 s.
        for (g, end) in [("g1", 10_000), ("g2", 20_000)] {
            let mut row = tx.get_grant(g).await.unwrap().unwrap();
            row.state = GrantState::Ending;
            row.ended_at = Some(t(end));
            tx.update_grant(&row).await.unwrap();
        }
        let missing = |cutoff: i64| AttestationFilter {
            missing_before: Some(t(cutoff)),
            ..Default::default()
        };
        let ids = |rows: Vec<AttestationRecord>| -> Vec<String> {
            rows.into_iter().map(|a| a.grant_id).collect()
        };
        assert!(tx
            .list_attestations(&missing(9_999))
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            ids(tx.list_attestations(&missing(15_000)).await.unwrap()),
            ["g1"]
        );
        assert_eq!(
            ids(tx.list_attestations(&missing(30_000)).await.unwrap()),
            ["g2", "g1"]
        );
        let in_period = AttestationFilter {
            ended_in: Some((t(15_000), t(25_000))),
            ..missing(30_000)
        };
        assert_eq!(ids(tx.list_attestations(&in_period).await.unwrap()), ["g2"]);
        let after = AttestationFilter {
            after: Some("g2".into()),
            ..missing(30_000)
        };
        assert_eq!(ids(tx.list_attestations(&after).await.unwrap()), ["g1"]);

        // g1 attested: no longer missing; it stays required; a second one is refused.
        tx.record_attestation(&given("g1", 40_000)).await.unwrap();
        let err = tx
            .record_attestation(&given("g1", 41_000))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        let a = tx.get_attestation("g1").await.unwrap().unwrap();
        assert!(a.required, "the obligation recorded at issue is kept");
        assert_eq!(a.changes, ["HR 40: 80 -> 75"]);
        assert_eq!(a.attested_at, Some(t(40_000)));
        assert_eq!(
            ids(tx.list_attestations(&missing(50_000)).await.unwrap()),
            ["g2"]
        );
        // g3 was not required: attesting adds a row, required false.
        tx.record_attestation(&given("g3", 42_000)).await.unwrap();
        assert!(!tx.get_attestation("g3").await.unwrap().unwrap().required);
        let all_given = tx
            .list_attestations(&AttestationFilter::default())
            .await
            .unwrap();
        assert_eq!(ids(all_given), ["g3", "g1"]);
        tx.commit().await.unwrap();
    })
    .await;
}

fn item(campaign: &str, kind: ItemKind) -> CampaignItemRecord {
    CampaignItemRecord {
        campaign_id: campaign.into(),
        key: kind.key(),
        kind,
        subject: "oscar".into(),
        summary: "break-glass".into(),
        decision: None,
        note: None,
        effect: None,
        reviewer: None,
        decided_at: None,
    }
}

#[tokio::test]
async fn campaign_items_are_decided_once_and_the_campaign_closes_once() {
    each_backend(|store: Store| async move {
        let mut tx = store.write().await.unwrap();
        let c = CampaignRecord {
            id: "c1".into(),
            period_start: t(0),
            period_end: t(86_400_000),
            site: Some("north".into()),
            state: CampaignState::Open,
            opened_by: "sam".into(),
            opened_at: t(90_000_000),
            closed_by: None,
            closed_at: None,
        };
        let items = [
            item(
                "c1",
                ItemKind::BreakGlass {
                    grant_id: "g1".into(),
                },
            ),
            item("c1", ItemKind::Exception { id: "exc-1".into() }),
        ];
        tx.insert_campaign(&c, &items).await.unwrap();
        assert_eq!(tx.get_campaign("c1").await.unwrap().unwrap(), c);
        let stored = tx.list_campaign_items("c1").await.unwrap();
        assert_eq!(stored, items);
        let decided = CampaignItemRecord {
            decision: Some(ItemDecision::End),
            note: Some("no ticket".into()),
            effect: Some(DecisionEffect::RevokeGrant {
                grant_id: "g1".into(),
            }),
            reviewer: Some("sam".into()),
            decided_at: Some(t(90_100_000)),
            ..items[0].clone()
        };
        tx.decide_campaign_item(&decided).await.unwrap();
        let err = tx.decide_campaign_item(&decided).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        let unknown = CampaignItemRecord {
            key: "finding:nope".into(),
            ..decided.clone()
        };
        assert!(matches!(
            tx.decide_campaign_item(&unknown).await.unwrap_err(),
            StoreError::NotFound { .. }
        ));
        assert_eq!(tx.list_campaign_items("c1").await.unwrap()[0], decided);
        tx.close_campaign("c1", "sam", t(90_200_000)).await.unwrap();
        assert!(matches!(
            tx.close_campaign("c1", "sam", t(90_300_000))
                .await
                .unwrap_err(),
            StoreError::Conflict(_)
        ));
        let closed = tx.get_campaign("c1").await.unwrap().unwrap();
        assert_eq!(closed.state, CampaignState::Closed);
        assert_eq!(closed.closed_by.as_deref(), Some("sam"));
        let c2 = CampaignRecord {
            id: "c2".into(),
            ..c.clone()
        };
        tx.insert_campaign(&c2, &[]).await.unwrap();
        let ids: Vec<String> = tx
            .list_campaigns(None, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(ids, ["c2", "c1"]);
        let after: Vec<String> = tx
            .list_campaigns(Some("c2"), 10)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(after, ["c1"]);
        tx.commit().await.unwrap();
    })
    .await;
}
