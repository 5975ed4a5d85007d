//! The compliance report through the API on SQLite and PostgreSQL: exact figures of a
//! period with one grant and its gateway operations, the site filter, offline verification
//! of the JSON and of the page with the evidence public key file, and every refusal.

use super::*;
use jitgate_core::Clock;
use jitgate_evidence::compliance::{verify_report, verify_report_html, ReportError};
use jitgate_evidence::EvidencePublicKey;
use jitgate_testkit::each_backend;

async fn get_text(h: &mut Harness, who: &str, query: &str) -> (StatusCode, String) {
    let token = h.login(who).await;
    let resp = h
        .http
        .get(format!("{}/api/v1/reports/compliance?{query}", h.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.text().await.unwrap())
}

fn at(t: Timestamp) -> String {
    jitgate_core::event::rfc3339(t).replace(':', "%3A")
}

#[tokio::test]
async fn a_period_report_has_exact_figures_and_verifies_offline_page_and_json() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        let from = h.clock.now() - chrono::Duration::hours(1);
        // One read grant on plc-7 (north), approved by bob, with gateway operations.
        let req = h.request("alice", read_plc7()).await;
        let (s, v) = h.approve("bob", &req, None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let grant = v["grant"]["id"].as_str().unwrap().to_string();
        let issued_at = h.clock.now();
        let (_, key) = h
            .call("sam", "POST", "/api/v1/api-keys", Some(json!({"identity": "gw-north", "name": "report"})))
            .await;
        let key = key["key"].as_str().unwrap().to_string();
        let t = h.clock.now() + chrono::Duration::seconds(1);
        let session = format!("sess-{grant}");
        let mut events = vec![json!({"gseq": 1, "kind": "session.started", "at": t, "grant_id": grant,
            "session_id": session, "data": {"subject": "alice", "asset": "plc-7", "protocol": "modbus"}})];
        for i in 0..5 {
            events.push(json!({"gseq": 2 + i, "kind": "operation", "at": t, "grant_id": grant,
                "session_id": session, "data": {"function": "read holding registers", "allowed": i != 4}}));
        }
        let (s, v) = h
            .raw("POST", "/api/v1/gateway/events", Some(&key), Some(json!({"events": events})))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        // 20 minutes of access, then the subject completes it.
        h.clock.advance(chrono::Duration::minutes(20));
        let (s, v) = h
            .call("alice", "POST", &format!("/api/v1/grants/{grant}/complete"), Some(json!({})))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        h.clock.advance(chrono::Duration::hours(2));
        let to = h.clock.now() - chrono::Duration::minutes(1);
        let period = format!("from={}&to={}", at(from), at(to));

        let (s, body) = get_text(&mut h, "sam", &period).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let (_, keys) = h.call("sam", "GET", "/api/v1/evidence/keys", None).await;
        let keys = EvidencePublicKey::parse_file(keys["key_file"].as_str().unwrap()).unwrap();
        let signed = verify_report(&body, &keys).expect("the report verifies offline");
        let r = &signed.report;
        assert_eq!(r.site, None);
        assert_eq!((r.grants.requests_submitted, r.grants.issued, r.grants.ended), (1, 1, 1));
        assert_eq!(r.grants.ended_by_reason[0].name, "completed");
        // The grant ran from its issue to completion: exactly 20 minutes.
        assert_eq!(issued_at, from + chrono::Duration::hours(1));
        assert_eq!(r.grants.median_duration_secs, Some(20 * 60));
        assert_eq!(r.grants.exposure_secs, 20 * 60);
        assert_eq!((r.operations.sessions, r.operations.operations_allowed, r.operations.operations_denied), (1, 4, 1));
        assert_eq!(r.exposure_by_asset.len(), 1);
        assert_eq!(r.exposure_by_asset[0].asset, "plc-7");
        assert_eq!(r.checkpoint.checkpoint.tree_size as i64, h.event_count().await);

        // The page carries the same signed report and verifies as a whole.
        let (s, page) = get_text(&mut h, "sam", &format!("{period}&format=html")).await;
        assert_eq!(s, StatusCode::OK);
        let from_page = verify_report_html(&page, &keys).expect("the page verifies");
        assert_eq!(from_page.report.grants, r.grants);
        let altered = page.replacen("Grants issued", "Grants lssued", 1);
        assert!(matches!(verify_report_html(&altered, &keys), Err(ReportError::PageAltered(_))));

        // A site restricts the figures to its assets.
        let (s, body) = get_text(&mut h, "sam", &format!("{period}&site=south")).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        let south = verify_report(&body, &keys).unwrap().report;
        assert_eq!(south.site.as_deref(), Some("south"));
        assert_eq!((south.grants.issued, south.grants.exposure_secs), (0, 0));
        let (_, body) = get_text(&mut h, "sam", &format!("{period}&site=north")).await;
        assert_eq!(verify_report(&body, &keys).unwrap().report.grants.issued, 1);
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn bad_periods_unknown_sites_and_other_roles_are_refused_with_what_to_do() {
    each_backend(|store| async move {
        let mut h = Harness::start(store).await;
        let now = h.clock.now();
        let day = chrono::Duration::days(1);
        let cases = [
            (
                format!("from={}&to={}", at(now - day), at(now + day)),
                StatusCode::BAD_REQUEST,
                "ends in the future",
            ),
            (
                format!("from={}&to={}", at(now - day), at(now - day)),
                StatusCode::BAD_REQUEST,
                "the period is empty",
            ),
            (
                format!("from={}&to={}", at(now - day * 400), at(now - day)),
                StatusCode::BAD_REQUEST,
                "at most 366 days",
            ),
            (
                format!("from={}&to={}&site=atlantis", at(now - day), at(now)),
                StatusCode::NOT_FOUND,
                "site atlantis",
            ),
            (
                "from=yesterday&to=today".to_string(),
                StatusCode::BAD_REQUEST,
                "",
            ),
            (
                format!("from={}", at(now - day)),
                StatusCode::BAD_REQUEST,
                "to",
            ),
            (
                format!("from={}&to={}&format=pdf", at(now - day), at(now)),
                StatusCode::BAD_REQUEST,
                "",
            ),
        ];
        for (query, status, says) in cases {
            let (s, body) = get_text(&mut h, "sam", &query).await;
            assert_eq!(s, status, "{query}: {body}");
            assert!(body.contains(says), "{query}: {body}");
        }
        let (s, body) = get_text(
            &mut h,
            "alice",
            &format!("from={}&to={}", at(now - day), at(now)),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
        assert!(body.contains("security, audit and admin"), "{body}");
        h.stop().await;
    })
    .await;
}
