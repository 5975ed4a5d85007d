use jitgate_core::Inventory;
use jitgate_store::Store;
use jitgate_testkit::each_backend;

const INVENTORY: &str = r#"
[[site]]
id = "north"
name = "North plant"
zones = ["cell-1", "dmz"]

[[org]]
id = "acme"
name = "ACME Automation"
vendor = true

[[identity]]
id = "alice"
kind = "human"
name = "Alice"
roles = ["engineer"]
groups = ["controls"]
sites = ["north"]

[[identity]]
id = "vera"
kind = "vendor"
org = "acme"

[[identity]]
id = "svc-hist"
kind = "workload"
owners = ["alice"]

[[asset]]
id = "plc-7"
kind = "plc"
site = "north"
zone = "cell-1"
criticality = "safety"
enforcement = "brokered"
endpoints.modbus = { address = "10.0.0.7:502", unit_ids = [1, 2] }
endpoints.ssh = { host = "10.0.0.7:22" }

[[asset]]
id = "hmi-1"
kind = "hmi"
site = "north"
criticality = "medium"
enforcement = "legacy"
limitation = "local accounts remain"
compensating_controls = ["jump-host-isolation"]
"#;

#[tokio::test]
async fn inventory_round_trips_and_upserts_replace() {
    each_backend(|store: Store| async move {
        let inv = Inventory::from_toml(INVENTORY).unwrap();
        let mut tx = store.write().await.unwrap();
        for s in &inv.sites {
            tx.upsert_site(s).await.unwrap();
        }
        for o in &inv.orgs {
            tx.upsert_org(o).await.unwrap();
        }
        for i in &inv.identities {
            tx.upsert_identity(i).await.unwrap();
        }
        for a in &inv.assets {
            tx.upsert_asset(a).await.unwrap();
        }
        tx.commit().await.unwrap();

        let mut tx = store.read().await.unwrap();
        assert_eq!(tx.list_sites().await.unwrap(), inv.sites);
        assert_eq!(tx.list_orgs().await.unwrap(), inv.orgs);
        let mut identities = inv.identities.clone();
        identities.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(tx.list_identities().await.unwrap(), identities);
        let mut assets = inv.assets.clone();
        assets.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(tx.list_assets().await.unwrap(), assets);
        assert_eq!(
            tx.get_site("north").await.unwrap().as_ref(),
            Some(&inv.sites[0])
        );
        assert_eq!(
            tx.get_org("acme").await.unwrap().as_ref(),
            Some(&inv.orgs[0])
        );
        assert_eq!(
            tx.get_identity("vera").await.unwrap().as_ref(),
            Some(&inv.identities[1])
        );
        assert_eq!(
            tx.get_asset("plc-7").await.unwrap().as_ref(),
            Some(&inv.assets[0])
        );
        assert_eq!(tx.get_asset("nope").await.unwrap(), None);
        drop(tx);

        let mut changed = inv.assets[0].clone();
        changed.lockout = true;
        changed.name = "locked out".into();
        let mut alice = inv.identities[0].clone();
        alice.status = jitgate_core::IdentityStatus::Disabled;
        let mut tx = store.write().await.unwrap();
        tx.upsert_asset(&changed).await.unwrap();
        tx.upsert_identity(&alice).await.unwrap();
        assert!(tx.delete_org("acme").await.unwrap());
        assert!(!tx.delete_org("acme").await.unwrap());
        tx.commit().await.unwrap();

        let mut tx = store.read().await.unwrap();
        assert_eq!(tx.get_asset("plc-7").await.unwrap(), Some(changed));
        assert_eq!(tx.get_identity("alice").await.unwrap(), Some(alice));
        assert_eq!(tx.list_assets().await.unwrap().len(), 2);
        assert_eq!(tx.list_orgs().await.unwrap(), vec![]);
    })
    .await;
}

#[tokio::test]
async fn corrupt_documents_are_reported_with_table_and_id() {
    each_backend(|store: Store| async move {
        sqlx::query("INSERT INTO sites (id, doc) VALUES ('broken', '{\"id\": 5}')")
            .execute(store.pool())
            .await
            .unwrap();
        let mut tx = store.read().await.unwrap();
        let err = tx.get_site("broken").await.unwrap_err();
        assert!(
            matches!(err, jitgate_store::StoreError::Corrupt(_)),
            "{err:?}"
        );
        assert!(err.to_string().contains("sites id=broken"), "{err}");
    })
    .await;
}
