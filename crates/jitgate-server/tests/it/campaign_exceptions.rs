//! Standing exceptions in a review campaign, on SQLite and PostgreSQL: an active exception
//! is listed; its owner may not decide it (their re-validation is what is reviewed); "end"
//! by another security person ends the exception at once and revokes its grant.

use super::exceptions::{active_exception, add_people, exception_body};
use super::*;
use jitgate_core::Clock;
use jitgate_testkit::each_backend;

#[tokio::test]
async fn a_campaign_lists_standing_exceptions_and_end_ends_them() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        add_people(&mut h).await;
        // uma: security staff who owns the exception under review.
        let body = json!({"id": "uma", "kind": "human", "name": "uma", "org": "plant",
            "roles": ["security"], "sites": ["north"]});
        let (s, v) = h
            .call("sam", "PUT", "/api/v1/identities/uma", Some(body))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        {
            let mut tx = h.state().store.write().await.unwrap();
            tx.set_password(
                "uma",
                &jitgate_server::auth::hash_password(&password("uma")).unwrap(),
            )
            .await
            .unwrap();
            tx.commit().await.unwrap();
        }
        let from = h.clock.now() - chrono::Duration::seconds(1);
        let (s, filed) = h
            .call(
                "alice",
                "POST",
                "/api/v1/exceptions",
                Some({
                    let mut b = exception_body("90d", "30d");
                    b["owner"] = json!("uma");
                    b
                }),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{filed}");
        let (_, req) = h
            .call(
                "sam",
                "GET",
                &format!("/api/v1/requests/{}", filed["request_id"].as_str().unwrap()),
                None,
            )
            .await;
        for who in ["sam", "sofia"] {
            let (s, v) = h.approve(who, &req, None).await;
            assert_eq!(s, StatusCode::OK, "{who}: {v}");
        }
        // A second one, owned by oscar, that nobody ends.
        let kept = active_exception(&mut h, "90d", "30d").await;
        let ex = filed["id"].as_str().unwrap().to_string();
        let (_, shown) = h
            .call("uma", "GET", &format!("/api/v1/exceptions/{ex}"), None)
            .await;
        assert_eq!(shown["state"], "active", "{shown}");
        let grant = shown["grant_id"].as_str().unwrap().to_string();

        h.clock.advance(chrono::Duration::minutes(5));
        let to = h.clock.now();
        let (s, c) = h
            .call(
                "sam",
                "POST",
                "/api/v1/campaigns",
                Some(json!({"period_start": from, "period_end": to})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{c:#}");
        let keys: Vec<&str> = c["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["key"].as_str().unwrap())
            .collect();
        let key = format!("exception:{ex}");
        let kept_key = format!("exception:{}", kept["id"].as_str().unwrap());
        assert!(
            keys.contains(&key.as_str()) && keys.contains(&kept_key.as_str()),
            "{c:#}"
        );
        let campaign = c["id"].as_str().unwrap().to_string();
        let decide = |who: &'static str, k: String, d: &'static str| {
            (
                who,
                format!("/api/v1/campaigns/{campaign}/items/{k}/decision"),
                json!({"decision": d, "note": "checked against the asset register"}),
            )
        };

        // The owner reviews someone else's exceptions, never their own.
        let (who, path, body) = decide("uma", key.clone(), "keep");
        let (s, v) = h.call(who, "POST", &path, Some(body)).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        assert!(
            v["message"].as_str().unwrap().contains("owns exception"),
            "{v}"
        );
        // sofia ends it: the exception ends at once and its grant is revoked.
        let (who, path, body) = decide("sofia", key, "end");
        let (s, v) = h.call(who, "POST", &path, Some(body)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (_, shown) = h
            .call("sam", "GET", &format!("/api/v1/exceptions/{ex}"), None)
            .await;
        assert_eq!(shown["state"], "ended", "{shown}");
        let (_, g) = h
            .call("sam", "GET", &format!("/api/v1/grants/{grant}"), None)
            .await;
        assert_ne!(g["state"], "active", "{g}");
        assert_eq!(g["end_reason"]["kind"], "revoked", "{g}");
        assert!(
            g["end_reason"]["reason"]
                .as_str()
                .unwrap()
                .contains(&campaign),
            "{g}"
        );
        // Narrowing the other is recorded; it stays in force until a narrower one is filed.
        let (who, path, body) = decide("sam", kept_key, "narrow");
        let (s, v) = h.call(who, "POST", &path, Some(body)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (_, still) = h
            .call(
                "sam",
                "GET",
                &format!("/api/v1/exceptions/{}", kept["id"].as_str().unwrap()),
                None,
            )
            .await;
        assert_eq!(still["state"], "active", "{still}");
        let kinds: Vec<String> = events_of(&mut h, "exception.ended")
            .await
            .iter()
            .map(|e| e["request_id"].to_string())
            .collect();
        assert_eq!(kinds.len(), 1, "{kinds:?}");
        h.stop().await;
    })
    .await;
}
