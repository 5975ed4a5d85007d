use crate::fixtures::t;
use jitgate_core::payload::AuthMethod;
use jitgate_store::{ApiKeyRecord, SessionRecord, Store, StoreError};
use jitgate_testkit::each_backend;

#[tokio::test]
async fn passwords_and_settings() {
    each_backend(|store: Store| async move {
        let mut tx = store.write().await.unwrap();
        assert_eq!(tx.get_password("alice").await.unwrap(), None);
        tx.set_password("alice", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA")
            .await
            .unwrap();
        tx.set_password("alice", "$argon2id$new").await.unwrap();
        assert_eq!(tx.get_setting("bootstrap").await.unwrap(), None);
        tx.set_setting("bootstrap", "done").await.unwrap();
        tx.set_setting("policy_set_hash", "sha256:1").await.unwrap();
        tx.set_setting("policy_set_hash", "sha256:2").await.unwrap();
        tx.commit().await.unwrap();

        let mut tx = store.read().await.unwrap();
        assert_eq!(
            tx.get_password("alice").await.unwrap().as_deref(),
            Some("$argon2id$new")
        );
        assert_eq!(tx.get_password("bob").await.unwrap(), None);
        assert_eq!(
            tx.get_setting("bootstrap").await.unwrap().as_deref(),
            Some("done")
        );
        assert_eq!(
            tx.get_setting("policy_set_hash").await.unwrap().as_deref(),
            Some("sha256:2")
        );
        let err = tx.set_setting("x", "y").await.unwrap_err();
        assert!(matches!(err, StoreError::ReadOnly(_)), "{err:?}");
        assert!(err.to_string().contains("Store::write()"), "{err}");
    })
    .await;
}

#[tokio::test]
async fn totp_steps_cannot_be_replayed() {
    each_backend(|store: Store| async move {
        let mut tx = store.write().await.unwrap();
        assert_eq!(tx.get_totp("alice").await.unwrap(), None);
        let err = tx.use_totp_step("alice", 1).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
        tx.set_totp("alice", "JBSWY3DPEHPK3PXP", false)
            .await
            .unwrap();
        let rec = tx.get_totp("alice").await.unwrap().unwrap();
        assert_eq!(
            (rec.secret_b32.as_str(), rec.confirmed, rec.last_step),
            ("JBSWY3DPEHPK3PXP", false, 0)
        );

        assert!(tx.use_totp_step("alice", 56_666_666).await.unwrap());
        assert!(
            !tx.use_totp_step("alice", 56_666_666).await.unwrap(),
            "same step is a replay"
        );
        assert!(
            !tx.use_totp_step("alice", 56_666_665).await.unwrap(),
            "older step is a replay"
        );
        assert_eq!(
            tx.get_totp("alice").await.unwrap().unwrap().last_step,
            56_666_666
        );
        assert!(tx.use_totp_step("alice", 56_666_667).await.unwrap());

        // Confirming / re-enrolling keeps the replay barrier.
        tx.set_totp("alice", "NEWSECRETNEWSECR", true)
            .await
            .unwrap();
        let rec = tx.get_totp("alice").await.unwrap().unwrap();
        assert_eq!(
            (rec.secret_b32.as_str(), rec.confirmed, rec.last_step),
            ("NEWSECRETNEWSECR", true, 56_666_667)
        );
        assert!(!tx.use_totp_step("alice", 56_666_667).await.unwrap());
        tx.commit().await.unwrap();

        // Two transactions racing with the same code: exactly one wins.
        let (a, b) = tokio::join!(
            async {
                let mut tx = store.write().await.unwrap();
                let ok = tx.use_totp_step("alice", 56_666_700).await.unwrap();
                tx.commit().await.unwrap();
                ok
            },
            async {
                let mut tx = store.write().await.unwrap();
                let ok = tx.use_totp_step("alice", 56_666_700).await.unwrap();
                tx.commit().await.unwrap();
                ok
            }
        );
        assert!(a ^ b, "exactly one use of the step succeeds: {a} {b}");

        let mut tx = store.write().await.unwrap();
        assert!(tx.delete_totp("alice").await.unwrap());
        assert_eq!(tx.get_totp("alice").await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn api_keys() {
    each_backend(|store: Store| async move {
        let k1 = ApiKeyRecord {
            id: "k1".into(),
            identity: "svc-hist".into(),
            name: "historian export".into(),
            key_hash: "aa".repeat(32),
            created_at: t(0),
            revoked: false,
            minted_by: None,
            expires_at: None,
        };
        let k2 = ApiKeyRecord {
            id: "k2".into(),
            key_hash: "bb".repeat(32),
            created_at: t(5),
            ..k1.clone()
        };
        let mut tx = store.write().await.unwrap();
        tx.insert_api_key(&k1).await.unwrap();
        tx.insert_api_key(&k2).await.unwrap();
        let dup_hash = ApiKeyRecord {
            id: "k3".into(),
            ..k1.clone()
        };
        assert!(matches!(
            tx.insert_api_key(&dup_hash).await,
            Err(StoreError::Conflict(_))
        ));
        let dup_id = ApiKeyRecord {
            key_hash: "cc".repeat(32),
            ..k1.clone()
        };
        assert!(matches!(
            tx.insert_api_key(&dup_id).await,
            Err(StoreError::Conflict(_))
        ));
        tx.revoke_api_key("k1").await.unwrap();
        assert!(matches!(
            tx.revoke_api_key("k404").await,
            Err(StoreError::NotFound { .. })
        ));
        tx.commit().await.unwrap();

        let mut tx = store.read().await.unwrap();
        let revoked = ApiKeyRecord {
            revoked: true,
            minted_by: None,
            expires_at: None,
            ..k1.clone()
        };
        assert_eq!(
            tx.find_api_key(&k1.key_hash).await.unwrap(),
            Some(revoked.clone())
        );
        assert_eq!(
            tx.find_api_key(&k2.key_hash).await.unwrap(),
            Some(k2.clone())
        );
        assert_eq!(tx.find_api_key(&"cc".repeat(32)).await.unwrap(), None);
        assert_eq!(
            tx.list_api_keys("svc-hist").await.unwrap(),
            vec![revoked, k2]
        );
        assert_eq!(tx.list_api_keys("alice").await.unwrap(), vec![]);
    })
    .await;
}

#[tokio::test]
async fn sessions_expire() {
    each_backend(|store: Store| async move {
        let s = |h: &str, expires: i64| SessionRecord {
            token_hash: h.repeat(32),
            identity: "alice".into(),
            created_at: t(0),
            expires_at: t(expires),
            method: match h {
                "02" => AuthMethod::FederatedJwt,
                "03" => AuthMethod::Oidc,
                _ => AuthMethod::Password,
            },
            roles: if h == "03" {
                vec!["approver".into(), "oncall".into()]
            } else {
                Vec::new()
            },
        };
        let mut tx = store.write().await.unwrap();
        for rec in [s("01", 1_000), s("02", 2_000), s("03", 3_000)] {
            tx.insert_session(&rec).await.unwrap();
        }
        assert!(matches!(
            tx.insert_session(&s("01", 9)).await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(
            tx.get_session(&"02".repeat(32)).await.unwrap(),
            Some(s("02", 2_000))
        );
        // Expiry is inclusive: a session is gone at its expires_at.
        assert_eq!(tx.delete_expired_sessions(t(2_000)).await.unwrap(), 2);
        assert_eq!(tx.get_session(&"01".repeat(32)).await.unwrap(), None);
        assert_eq!(tx.get_session(&"02".repeat(32)).await.unwrap(), None);
        assert_eq!(
            tx.get_session(&"03".repeat(32)).await.unwrap(),
            Some(s("03", 3_000))
        );
        assert_eq!(tx.delete_expired_sessions(t(2_000)).await.unwrap(), 0);
        tx.delete_session(&"03".repeat(32)).await.unwrap();
        tx.delete_session(&"03".repeat(32)).await.unwrap();
        assert_eq!(tx.get_session(&"03".repeat(32)).await.unwrap(), None);
        tx.commit().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_federated_token_is_taken_once_until_it_expires() {
    each_backend(|store: Store| async move {
        let mut tx = store.write().await.unwrap();
        assert!(tx
            .remember_federated_token("k1", "gitlab", t(1_000), t(0))
            .await
            .unwrap());
        assert!(!tx
            .remember_federated_token("k1", "gitlab", t(1_000), t(10))
            .await
            .unwrap());
        tx.commit().await.unwrap();
        // Another transaction (another node) sees it too.
        let mut tx = store.write().await.unwrap();
        assert!(!tx
            .remember_federated_token("k1", "gitlab", t(1_000), t(999))
            .await
            .unwrap());
        // Once expired it is forgotten (the token's own expiry refuses it by then).
        assert!(tx
            .remember_federated_token("k1", "gitlab", t(2_000), t(1_000))
            .await
            .unwrap());
        tx.commit().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn an_sso_state_and_a_handoff_are_taken_once_and_not_after_expiry() {
    use jitgate_store::{SsoHandoffRecord, SsoLoginRecord};
    each_backend(|store: Store| async move {
        let login = |state: &str, expires: i64| SsoLoginRecord {
            state_hash: state.into(),
            provider: "plant-idp".into(),
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            browser_hash: (state == "s1").then(|| "b".to_string()),
            cli_port: (state == "s2").then_some(45_123),
            cli_challenge: (state == "s2").then(|| "c".to_string()),
            expires_at: t(expires),
        };
        let mut tx = store.write().await.unwrap();
        for l in [login("s1", 600), login("s2", 600), login("s3", 100)] {
            tx.insert_sso_login(&l, t(0)).await.unwrap();
        }
        assert_eq!(
            tx.take_sso_login("s1", t(10)).await.unwrap(),
            Some(login("s1", 600))
        );
        assert_eq!(tx.take_sso_login("s1", t(10)).await.unwrap(), None);
        assert_eq!(
            tx.take_sso_login("s2", t(10)).await.unwrap(),
            Some(login("s2", 600))
        );
        // Expired: gone, and not given out.
        assert_eq!(tx.take_sso_login("s3", t(100)).await.unwrap(), None);
        let h = SsoHandoffRecord {
            code_hash: "h1".into(),
            challenge: "c".into(),
            sign_in: "{}".into(),
            expires_at: t(60),
        };
        tx.insert_sso_handoff(&h, t(0)).await.unwrap();
        assert_eq!(tx.take_sso_handoff("h1", t(1)).await.unwrap(), Some(h));
        assert_eq!(tx.take_sso_handoff("h1", t(1)).await.unwrap(), None);
        tx.commit().await.unwrap();
    })
    .await;
}
