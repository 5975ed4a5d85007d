//! Findings and the standing inventory over a month of activity driven through the real API
//! with a controlled clock, on SQLite and PostgreSQL: requests, approvals, grants that expire
//! on the scheduler's tick, and gateway session reports with client peers as a gateway posts
//! them. The findings and standing items, and the evidence events each cites, are asserted
//! exactly — and a month of normal use finds nothing.

use super::lifecycle::enroll_totp;
use super::*;
use jitgate_core::Clock;
use jitgate_testkit::each_backend;

const HOUR: i64 = 3600;

/// The month under test starts at the harness's start.
struct Month {
    h: Harness,
    t0: Timestamp,
    gw_key: String,
    gseq: i64,
    svc_key: String,
}

impl Month {
    async fn start(store: Store) -> Month {
        // Sign-ins last the month: the test moves the clock by weeks.
        let clock = Arc::new(ManualClock::new(start_time()));
        // No gateway answers teardown probes here, so ended grants stay `ending` and count
        // as open: allow more than a month of oscar's renewals.
        let mut h = Harness::start_configured(store, clock, |c| {
            c.session_ttl = "40d".into();
            c.limits.max_open_requests = 100;
        })
        .await;
        let t0 = h.clock.now();
        let (s, v) = h
            .call(
                "sam",
                "POST",
                "/api/v1/api-keys",
                Some(json!({"identity": "gw-north", "name": "gateway", "expires_in": "90d"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let gw_key = v["key"].as_str().unwrap().to_string();
        let (s, v) = h
            .call(
                "alice",
                "POST",
                "/api/v1/api-keys",
                Some(json!({"identity": "svc-historian", "name": "export", "expires_in": "90d"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let svc_key = v["key"].as_str().unwrap().to_string();
        h.set_token("svc-historian", &svc_key);
        Month {
            h,
            t0,
            gw_key,
            gseq: 0,
            svc_key,
        }
    }

    /// Move the clock to `hours` after the start and let the scheduler run.
    async fn at(&mut self, hours: f64) {
        let t = self.t0 + chrono::Duration::seconds((hours * HOUR as f64) as i64);
        self.h.clock.set(t);
        self.h.tick().await;
    }

    /// `who` files `body`; `approver` approves (with a TOTP code when given). Returns
    /// (request id, grant id).
    async fn granted(
        &mut self,
        who: &str,
        body: Value,
        approver: &str,
        totp: Option<&str>,
    ) -> (String, String) {
        let req = self.h.request(who, body).await;
        let code = totp
            .map(|secret| jitgate_server::auth::totp_code_at(secret, self.h.clock.now()).unwrap());
        let (s, v) = self.h.approve(approver, &req, code).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["state"], "active", "{v}");
        (
            req["id"].as_str().unwrap().to_string(),
            v["grant"]["id"].as_str().unwrap().to_string(),
        )
    }

    /// The gateway reports a session of `subject` under `grant` from `peer`, starting
    /// `offset_min` minutes from now and, with `minutes`, ending that much later (the clock
    /// moves along: a gateway reports what already happened).
    #[allow(
        clippy::too_many_arguments,
        reason = "a test helper: each is one fact of the report"
    )]
    async fn session(
        &mut self,
        grant: &str,
        id: &str,
        subject: &str,
        asset: &str,
        peer: &str,
        offset_min: i64,
        minutes: Option<i64>,
    ) {
        let start = self.h.clock.now() + chrono::Duration::minutes(offset_min);
        self.h.clock.set(start);
        self.gseq += 1;
        let events = json!({"events": [{"gseq": self.gseq, "kind": "session.started", "at": start,
            "grant_id": grant, "session_id": id,
            "data": {"subject": subject, "asset": asset, "protocol": "modbus", "peer": peer,
                     "device": "127.0.0.1:5020"}}]});
        let (s, v) = self
            .h
            .raw(
                "POST",
                "/api/v1/gateway/events",
                Some(&self.gw_key),
                Some(events),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        if let Some(m) = minutes {
            self.h.clock.set(start + chrono::Duration::minutes(m));
            self.end_session(grant, id).await;
        }
    }

    async fn end_session(&mut self, grant: &str, id: &str) {
        self.gseq += 1;
        let at = self.h.clock.now();
        let events = json!({"events": [{"gseq": self.gseq, "kind": "session.ended", "at": at,
            "grant_id": grant, "session_id": id, "data": {"reason": "client_closed"}}]});
        let (s, v) = self
            .h
            .raw(
                "POST",
                "/api/v1/gateway/events",
                Some(&self.gw_key),
                Some(events),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }

    fn period(&self) -> String {
        let from = jitgate_core::event::rfc3339(self.t0);
        let to = jitgate_core::event::rfc3339(self.t0 + chrono::Duration::days(30));
        format!("from={from}&to={to}")
    }

    /// Every item of a paged list, following `x-next-cursor`, asking `limit` at a time.
    async fn all(&mut self, list: &str, limit: usize) -> Vec<Value> {
        let token = self.h.login("sam").await;
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!(
                "{}/api/v1/{list}?{}&limit={limit}",
                self.h.base,
                self.period()
            );
            if let Some(c) = &cursor {
                url.push_str(&format!("&cursor={c}"));
            }
            let resp = self
                .h
                .http
                .get(url)
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            cursor = resp
                .headers()
                .get("x-next-cursor")
                .map(|v| v.to_str().unwrap().to_string());
            let page: Vec<Value> = resp.json().await.unwrap();
            assert!(page.len() <= limit);
            out.extend(page);
            if cursor.is_none() {
                return out;
            }
        }
    }

    /// Every event of the log, as `sam` reads it.
    async fn events(&mut self) -> Vec<Value> {
        let mut out: Vec<Value> = Vec::new();
        loop {
            let after = out.last().map_or(0, |e| e["seq"].as_i64().unwrap());
            let (s, page) = self
                .h
                .call(
                    "sam",
                    "GET",
                    &format!("/api/v1/events?after={after}&limit=1000"),
                    None,
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{page}");
            let page = page.as_array().unwrap().clone();
            if page.is_empty() {
                return out;
            }
            out.extend(page);
        }
    }
}

fn read(asset: &str, duration: &str, path: &str) -> Value {
    json!({
        "scope": [{"asset": asset, "modbus": ["read holding 0-99 unit 1"]}],
        "duration": duration, "reason": "check values", "reference": "WO-77", "path": path
    })
}

fn seqs_where(events: &[Value], pred: impl Fn(&Value) -> bool) -> Vec<i64> {
    events
        .iter()
        .filter(|e| pred(e))
        .map(|e| e["seq"].as_i64().unwrap())
        .collect()
}

fn session_started(events: &[Value], id: &str) -> i64 {
    let s = seqs_where(events, |e| {
        e["kind"] == "session.started" && e["data"]["session_id"] == id
    });
    assert_eq!(s.len(), 1, "session {id}");
    s[0]
}

/// (id, kind, subjects, asset, evidence seqs, more) of a finding.
type Summary = (String, String, Vec<String>, Option<String>, Vec<i64>, u64);

fn summarise(findings: &[Value]) -> Vec<Summary> {
    findings
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_string(),
                f["kind"].as_str().unwrap().to_string(),
                f["subjects"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_string())
                    .collect(),
                f["asset"].as_str().map(String::from),
                f["evidence"]["seqs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_i64().unwrap())
                    .collect(),
                f["evidence"]["more"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_month_of_activity_gives_exactly_its_findings_and_standing_items() {
    each_backend(|store| async move {
        let mut m = Month::start(store.clone()).await;
        // A workload key minted before keys had an expiry: it never expires.
        {
            let mut tx = store.write().await.unwrap();
            tx.insert_api_key(&jitgate_store::ApiKeyRecord {
                id: "key-legacy-export".into(),
                identity: "svc-historian".into(),
                name: "old export job".into(),
                key_hash: "0".repeat(64),
                created_at: m.t0 - chrono::Duration::days(400),
                revoked: false,
                minted_by: None,
                expires_at: None,
            })
            .await
            .unwrap();
            tx.commit().await.unwrap();
        }
        let bob_totp = enroll_totp(&mut m.h, "bob").await;

        // Days 0-2: alice and bob approve each other's reads, three times each way. On day
        // 1 alice's account is used from a second host while her session is open.
        let mut mutual_requests = Vec::new();
        for day in 0..3 {
            m.at(24.0 * day as f64 + 2.0).await;
            let (req, grant) = m
                .granted("alice", read("plc-7", "1h", "planned"), "bob", None)
                .await;
            mutual_requests.push(req);
            m.session(
                &grant,
                &format!("alice-{day}"),
                "alice",
                "plc-7",
                "10.0.0.5:50100",
                1,
                None,
            )
            .await;
            if day == 1 {
                m.session(
                    &grant,
                    "alice-1-other",
                    "alice",
                    "plc-7",
                    "10.20.0.99:41000",
                    10,
                    Some(5),
                )
                .await;
            }
            m.at(24.0 * day as f64 + 2.5).await;
            m.end_session(&grant, &format!("alice-{day}")).await;
            m.at(24.0 * day as f64 + 4.0).await;
            let (req, grant) = m
                .granted("bob", read("plc-7", "1h", "planned"), "alice", None)
                .await;
            mutual_requests.push(req);
            m.session(
                &grant,
                &format!("bob-{day}"),
                "bob",
                "plc-7",
                "10.0.0.6:50200",
                1,
                Some(20),
            )
            .await;
        }
        // Days 4-5: the historian workload, from one host and then another.
        for (day, peer) in [(4.0, "10.1.0.1:7000"), (5.0, "10.1.0.2:7000")] {
            m.at(24.0 * day + 3.0).await;
            // alice owns the workload: bob's approvals of it count as approving alice.
            let (req, grant) = m
                .granted(
                    "svc-historian",
                    read("plc-7", "30m", "routine"),
                    "bob",
                    None,
                )
                .await;
            mutual_requests.push(req);
            m.session(
                &grant,
                &format!("svc-{day}"),
                "svc-historian",
                "plc-7",
                peer,
                1,
                Some(10),
            )
            .await;
        }
        // Day 6: vera's account used from two places at once.
        m.at(24.0 * 6.0 + 9.0).await;
        let (_, grant) = m
            .granted(
                "vera",
                read("plc-3", "2h", "planned"),
                "bob",
                Some(&bob_totp),
            )
            .await;
        m.session(
            &grant,
            "vera-a",
            "vera",
            "plc-3",
            "198.51.100.7:3100",
            1,
            None,
        )
        .await;
        m.session(
            &grant,
            "vera-b",
            "vera",
            "plc-3",
            "203.0.113.9:52000",
            20,
            None,
        )
        .await;
        m.at(24.0 * 6.0 + 10.0).await;
        m.end_session(&grant, "vera-a").await;
        m.end_session(&grant, "vera-b").await;
        // From day 8: oscar's reads of plc-3 renewed back to back, 56 grants of 8 h.
        for i in 0..56 {
            m.at(192.0 + 8.0 * i as f64).await;
            m.granted("oscar", read("plc-3", "8h", "planned"), "bob", None)
                .await;
        }
        m.at(192.0 + 8.0 * 56.0 + 1.0).await;

        let events = m.events().await;
        let mut mutual = seqs_where(&events, |e| {
            e["kind"] == "approval.recorded"
                && mutual_requests
                    .iter()
                    .any(|r| e["request_id"] == r.as_str())
        });
        mutual.sort();
        assert_eq!(mutual.len(), 8);
        let oscar_grants = seqs_where(&events, |e| {
            e["kind"] == "grant.issued" && e["data"]["subject"] == "oscar"
        });
        assert_eq!(oscar_grants.len(), 56);
        let first20 = oscar_grants[..20].to_vec();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let expected = vec![
            (
                "back_to_back_renewal:oscar@plc-3".to_string(),
                "back_to_back_renewal".to_string(),
                s(&["oscar"]),
                Some("plc-3".to_string()),
                first20.clone(),
                36,
            ),
            (
                "mutual_approval:alice+bob".into(),
                "mutual_approval".into(),
                s(&["alice", "bob"]),
                None,
                mutual.clone(),
                0,
            ),
            (
                "shared_identity:alice".into(),
                "shared_identity".into(),
                s(&["alice"]),
                None,
                vec![
                    session_started(&events, "alice-1"),
                    session_started(&events, "alice-1-other"),
                ],
                0,
            ),
            (
                "standing_coverage:oscar@plc-3".into(),
                "standing_coverage".into(),
                s(&["oscar"]),
                Some("plc-3".into()),
                first20.clone(),
                36,
            ),
            (
                "vendor_concurrent_use:vera".into(),
                "vendor_concurrent_use".into(),
                s(&["vera"]),
                None,
                vec![
                    session_started(&events, "vera-a"),
                    session_started(&events, "vera-b"),
                ],
                0,
            ),
            (
                "workload_changing_sources:svc-historian".into(),
                "workload_changing_sources".into(),
                s(&["svc-historian"]),
                None,
                vec![
                    session_started(&events, "svc-4"),
                    session_started(&events, "svc-5"),
                ],
                0,
            ),
        ];
        // Pages of two, following the cursor: the same list as one page.
        let findings = m.all("findings", 2).await;
        assert_eq!(summarise(&findings), expected);
        assert_eq!(summarise(&m.all("findings", 100).await), expected);
        let coverage = &findings[3];
        assert!(
            coverage["summary"]
                .as_str()
                .unwrap()
                .contains("62% (448 h)"),
            "{coverage}"
        );

        let standing = m.all("standing", 3).await;
        let got: Vec<(String, f64)> = standing
            .iter()
            .map(|s| {
                (
                    s["id"].as_str().unwrap().to_string(),
                    s["exposure_hours"].as_f64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "api_key_without_expiry:key-legacy-export".to_string(),
                    720.0
                ),
                ("jit_became_standing:covered:oscar@plc-3".to_string(), 448.0),
                ("jit_became_standing:renewed:oscar@plc-3".to_string(), 448.0),
                ("legacy_local_accounts:plc-legacy-1".to_string(), 720.0),
            ]
        );
        assert_eq!(
            standing[3]["since"],
            json!(jitgate_core::event::rfc3339(m.t0))
        );
        // The legacy export key's holder acted in the period: it is not unused access.
        assert!(standing[0]["last_used"].is_string(), "{}", standing[0]);
        let _ = &m.svc_key;

        // Only those who see everything may list findings; a bad period is explained.
        let (s, v) = m.h.call("alice", "GET", "/api/v1/findings", None).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden")),
            "{v}"
        );
        let (s, v) =
            m.h.call(
                "sam",
                "GET",
                "/api/v1/findings?from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z",
                None,
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains("end after it starts"),
            "{v}"
        );
        let (s, v) =
            m.h.call("sam", "GET", "/api/v1/standing?from=last-week", None)
                .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(v["message"].as_str().unwrap().contains("RFC 3339"), "{v}");
        m.h.stop().await.close().await;
    })
    .await;
}

#[tokio::test]
async fn a_month_of_normal_use_finds_nothing() {
    each_backend(|store| async move {
        let mut m = Month::start(store).await;
        // Twice a week alice reads plc-7 for an hour from her workstation, approved by bob;
        // bob's own reads are approved by nobody he approves for (he files none).
        for week in 0..4 {
            for day in [1.0, 3.0] {
                m.at(24.0 * (7.0 * week as f64 + day) + 8.0).await;
                let (_, grant) = m
                    .granted("alice", read("plc-7", "1h", "planned"), "bob", None)
                    .await;
                let id = format!("w{week}-{day}");
                m.session(&grant, &id, "alice", "plc-7", "10.0.0.5:50100", 1, Some(40))
                    .await;
            }
        }
        // The workload from its one host.
        for day in [2.0, 9.0, 16.0] {
            m.at(24.0 * day + 3.0).await;
            let (_, grant) = m
                .granted(
                    "svc-historian",
                    read("plc-7", "30m", "routine"),
                    "bob",
                    None,
                )
                .await;
            m.session(
                &grant,
                &format!("svc-{day}"),
                "svc-historian",
                "plc-7",
                "10.1.0.1:7000",
                1,
                Some(10),
            )
            .await;
        }
        m.at(24.0 * 29.0).await;
        let findings = m.all("findings", 100).await;
        assert_eq!(findings, Vec::<Value>::new());
        // What stands is what the plant's inventory keeps standing, nothing from the use.
        let standing = m.all("standing", 100).await;
        let ids: Vec<&str> = standing.iter().map(|s| s["id"].as_str().unwrap()).collect();
        assert_eq!(ids, vec!["legacy_local_accounts:plc-legacy-1"]);
        m.h.stop().await.close().await;
    })
    .await;
}
