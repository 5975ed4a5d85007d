//! Each detector on hand-made event sequences: what it finds, the evidence it cites, what it
//! must not find (normal use), and that its state empties as sessions and grants end.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use super::*;
use crate::event::Actor;
use crate::inventory::{Asset, AssetKind, Criticality, Endpoints, SshEndpoint, SshTargetAuth};
use crate::lifecycle::{AccessPath, ApprovalVerdict, EndReason};
use crate::payload::{ApprovalRecorded, GrantEnded, GrantIssued, RequestSubmitted};
use crate::server_payload::{CredentialIssued, GatewayReport, InventoryChanged};
use chrono::{Duration, TimeZone};
use serde_json::json;

fn t0() -> Timestamp {
    chrono::Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
}
fn h(hours: i64) -> Timestamp {
    t0() + Duration::hours(hours)
}
fn month() -> Period {
    Period::new(t0(), t0() + Duration::days(30)).unwrap()
}

fn kinds() -> HashMap<String, IdentityKind> {
    [
        ("alice", IdentityKind::Human),
        ("bob", IdentityKind::Human),
        ("carol", IdentityKind::Human),
        ("vera", IdentityKind::Vendor),
        ("svc-historian", IdentityKind::Workload),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Builds a log: each pushed event gets the next seq.
struct Log {
    events: Vec<(i64, Event)>,
}

impl Log {
    fn new() -> Self {
        Log { events: Vec::new() }
    }
    fn push(&mut self, e: Event) -> i64 {
        let seq = self.events.len() as i64 + 1;
        self.events.push((seq, e));
        seq
    }
    fn submit(
        &mut self,
        req: &str,
        requester: &str,
        subject: &str,
        asset: &str,
        at: Timestamp,
    ) -> i64 {
        let p = RequestSubmitted {
            requester: requester.into(),
            subject: subject.into(),
            scope_digest: "sha256:00".into(),
            scope: format!("jitgate-scope/v1\n{asset} modbus read holding 0-9 unit 1\n"),
            window_start: at,
            duration_secs: 3600,
            reason: "r".into(),
            reference: "WO-1".into(),
            path: AccessPath::Planned,
        };
        self.push(
            Event::with_payload(Actor::identity(requester), at, &p)
                .unwrap()
                .request(req),
        )
    }
    fn approve(&mut self, req: &str, approver: &str, at: Timestamp) -> i64 {
        let p = ApprovalRecorded {
            verdict: ApprovalVerdict::Approve,
            scope_digest: "sha256:00".into(),
            comment: String::new(),
            step_up: false,
            step_up_method: None,
            approvals: 1,
            required: 1,
        };
        self.push(
            Event::with_payload(Actor::identity(approver), at, &p)
                .unwrap()
                .request(req),
        )
    }
    fn issue(
        &mut self,
        req: &str,
        grant: &str,
        subject: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> i64 {
        let p = GrantIssued {
            subject: subject.into(),
            scope_digest: "sha256:00".into(),
            not_before: from,
            expires_at: to,
            emergency: false,
            review_required: false,
        };
        self.push(
            Event::with_payload(Actor::scheduler(), from, &p)
                .unwrap()
                .request(req)
                .grant(grant),
        )
    }
    fn end(&mut self, grant: &str, at: Timestamp) -> i64 {
        let p = GrantEnded {
            end_reason: EndReason::Expired,
            ended_at: at,
            expires_at: at,
        };
        self.push(
            Event::with_payload(Actor::scheduler(), at, &p)
                .unwrap()
                .grant(grant),
        )
    }
    /// request → approval by `approver` → grant `[from, to)`, ended at `to`.
    fn grant(
        &mut self,
        n: &str,
        subject: &str,
        approver: &str,
        asset: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> i64 {
        let req = format!("req-{n}");
        self.submit(&req, subject, subject, asset, from - Duration::minutes(5));
        self.approve(&req, approver, from - Duration::minutes(1));
        let issued = self.issue(&req, &format!("grant-{n}"), subject, from, to);
        self.end(&format!("grant-{n}"), to);
        issued
    }
    fn credential(&mut self, grant: &str, token: &str, key: &str, at: Timestamp) -> i64 {
        let p = CredentialIssued {
            token_fingerprint: "sha256:ff".into(),
            token_id: token.into(),
            asset: "plc-7".into(),
            gateway: "gw-north".into(),
            client_key: key.into(),
            expires_at: at + Duration::hours(8),
        };
        self.push(
            Event::with_payload(Actor::identity("alice"), at, &p)
                .unwrap()
                .grant(grant),
        )
    }
    #[allow(clippy::too_many_arguments, reason = "a test builder")]
    fn session(
        &mut self,
        grant: &str,
        id: &str,
        subject: &str,
        peer: &str,
        token: Option<&str>,
        at: Timestamp,
    ) -> i64 {
        let r = GatewayReport {
            gseq: 1,
            session_id: Some(id.into()),
            detail: json!({"subject": subject, "asset": "plc-7", "peer": peer, "token_id": token}),
            claimed_grant_id: None,
        };
        self.push(
            r.event(EventKind::SessionStarted, Actor::identity("gw-north"), at)
                .unwrap()
                .grant(grant),
        )
    }
    fn session_end(&mut self, grant: &str, id: &str, at: Timestamp) -> i64 {
        let r = GatewayReport {
            gseq: 2,
            session_id: Some(id.into()),
            detail: json!({"reason": "client_closed"}),
            claimed_grant_id: None,
        };
        self.push(
            r.event(EventKind::SessionEnded, Actor::identity("gw-north"), at)
                .unwrap()
                .grant(grant),
        )
    }
    fn run(&self, config: FindingsConfig, inputs: &StandingInputs<'_>) -> PeriodReport {
        let mut scan = FindingsScan::new(month(), config, kinds());
        for (seq, e) in &self.events {
            // Through the canonical text, as the server feeds it.
            let text = String::from_utf8(e.canonical_bytes()).unwrap();
            scan.observe_canonical(*seq, &text);
        }
        scan.finish(inputs)
    }
}

fn only(report: &PeriodReport) -> Vec<(FindingKind, Vec<String>, Vec<i64>)> {
    report
        .findings
        .iter()
        .map(|f| (f.kind, f.subjects.clone(), f.evidence.seqs.clone()))
        .collect()
}

#[test]
fn overlapping_sessions_from_two_hosts_are_a_shared_identity() {
    let mut log = Log::new();
    log.grant("1", "alice", "bob", "plc-7", h(10), h(12));
    // The grant is ended in the log above; sessions belong to a second, live grant.
    let req = "req-2";
    log.submit(req, "alice", "alice", "plc-7", h(20));
    log.approve(req, "bob", h(20));
    log.issue(req, "grant-2", "alice", h(21), h(23));
    let a = log.session("grant-2", "s1", "alice", "10.0.0.5:50000", None, h(21));
    let b = log.session(
        "grant-2",
        "s2",
        "alice",
        "10.9.9.9:40000",
        None,
        h(21) + Duration::minutes(10),
    );
    log.session_end("grant-2", "s1", h(22));
    log.session_end("grant-2", "s2", h(22));
    // Same host again, not overlapping anything different: nothing more.
    log.session(
        "grant-2",
        "s3",
        "alice",
        "10.0.0.5:50001",
        None,
        h(22) + Duration::minutes(1),
    );
    let r = log.run(FindingsConfig::default(), &StandingInputs::default());
    assert_eq!(
        only(&r),
        vec![(
            FindingKind::SharedIdentity,
            vec!["alice".to_string()],
            vec![a, b]
        )]
    );
    let f = &r.findings[0];
    assert_eq!(f.id, "shared_identity:alice");
    assert_eq!(f.severity, Severity::High);
    assert!(
        f.summary.contains("10.0.0.5") && f.summary.contains("10.9.9.9"),
        "{}",
        f.summary
    );
}

#[test]
fn overlapping_sessions_with_two_client_keys_are_a_shared_identity_too() {
    let mut log = Log::new();
    log.submit("req-1", "alice", "alice", "plc-7", h(1));
    log.approve("req-1", "bob", h(1));
    log.issue("req-1", "grant-1", "alice", h(2), h(4));
    log.credential("grant-1", "tok-a", "key-a", h(2));
    log.credential("grant-1", "tok-b", "key-b", h(2));
    let a = log.session("grant-1", "s1", "alice", "10.0.0.5:1", Some("tok-a"), h(2));
    let b = log.session("grant-1", "s2", "alice", "10.0.0.5:2", Some("tok-b"), h(3));
    let r = log.run(FindingsConfig::default(), &StandingInputs::default());
    assert_eq!(
        only(&r),
        vec![(
            FindingKind::SharedIdentity,
            vec!["alice".into()],
            vec![a, b]
        )]
    );
    assert!(
        r.findings[0].summary.contains("key-a and key-b"),
        "{}",
        r.findings[0].summary
    );
}

#[test]
fn a_vendor_used_from_two_places_at_once_and_a_workload_from_changing_hosts() {
    let mut log = Log::new();
    log.submit("req-1", "vera", "vera", "plc-7", h(1));
    log.approve("req-1", "bob", h(1));
    log.issue("req-1", "grant-1", "vera", h(2), h(4));
    let a = log.session("grant-1", "v1", "vera", "198.51.100.7:1000", None, h(2));
    let b = log.session(
        "grant-1",
        "v2",
        "vera",
        "203.0.113.9:2000",
        None,
        h(2) + Duration::minutes(1),
    );
    log.submit("req-2", "alice", "svc-historian", "plc-7", h(5));
    log.approve("req-2", "bob", h(5));
    log.issue("req-2", "grant-2", "svc-historian", h(6), h(100));
    let w1 = log.session("grant-2", "w1", "svc-historian", "10.1.0.1:1", None, h(6));
    log.session_end("grant-2", "w1", h(7));
    log.session("grant-2", "w2", "svc-historian", "10.1.0.1:2", None, h(8));
    log.session_end("grant-2", "w2", h(9));
    let w3 = log.session("grant-2", "w3", "svc-historian", "10.7.7.7:3", None, h(10));
    log.session_end("grant-2", "w3", h(11));
    let r = log.run(FindingsConfig::default(), &StandingInputs::default());
    assert_eq!(
        only(&r),
        vec![
            (
                FindingKind::VendorConcurrentUse,
                vec!["vera".into()],
                vec![a, b]
            ),
            (
                FindingKind::WorkloadChangingSources,
                vec!["svc-historian".into()],
                vec![w1, w3]
            ),
        ]
    );
    // Two sources are allowed when configured so: the workload finding goes.
    let relaxed = FindingsConfig {
        workload_max_sources: 2,
        ..FindingsConfig::default()
    };
    let r = log.run(relaxed, &StandingInputs::default());
    assert_eq!(r.findings.len(), 1);
    assert_eq!(r.findings[0].kind, FindingKind::VendorConcurrentUse);
}

#[test]
fn approvers_who_approve_each_other_are_found_only_above_the_threshold() {
    let mut log = Log::new();
    let mut cited = Vec::new();
    for i in 0..3 {
        let at = h(24 * i + 1);
        log.submit(&format!("a{i}"), "alice", "alice", "plc-7", at);
        cited.push(log.approve(&format!("a{i}"), "bob", at));
        log.submit(&format!("b{i}"), "bob", "bob", "plc-3", at);
        cited.push(log.approve(&format!("b{i}"), "alice", at));
    }
    // carol approves alice three times, alice never approves carol: not mutual.
    for i in 0..3 {
        let at = h(24 * i + 2);
        log.submit(&format!("c{i}"), "alice", "alice", "hmi-1", at);
        log.approve(&format!("c{i}"), "carol", at);
    }
    let r = log.run(FindingsConfig::default(), &StandingInputs::default());
    assert_eq!(
        only(&r),
        vec![(
            FindingKind::MutualApproval,
            vec!["alice".into(), "bob".into()],
            cited.clone()
        )]
    );
    assert!(
        r.findings[0].summary.contains("3 times"),
        "{}",
        r.findings[0].summary
    );
    let strict = FindingsConfig {
        mutual_approvals: 4,
        ..FindingsConfig::default()
    };
    assert!(log
        .run(strict, &StandingInputs::default())
        .findings
        .is_empty());
    // A cap of 2 lists two events and counts the other four.
    let capped = FindingsConfig {
        evidence_cap: 2,
        ..FindingsConfig::default()
    };
    let r = log.run(capped, &StandingInputs::default());
    assert_eq!(r.findings[0].evidence.seqs, cited[..2].to_vec());
    assert_eq!(r.findings[0].evidence.more, 4);
}

#[test]
fn grants_covering_most_of_the_period_are_standing_and_short_ones_are_not() {
    let mut log = Log::new();
    let mut grants = Vec::new();
    // 19 days of 24 h grants with an hour's gap between each: 19*23/720 = 60.7 %.
    for d in 0..19 {
        grants.push(log.grant(
            &format!("d{d}"),
            "bob",
            "alice",
            "plc-3",
            h(24 * d),
            h(24 * d + 23),
        ));
    }
    // alice: a two-hour grant a week: normal use.
    for w in 0..4 {
        log.grant(
            &format!("w{w}"),
            "alice",
            "carol",
            "plc-7",
            h(24 * 7 * w + 9),
            h(24 * 7 * w + 11),
        );
    }
    let r = log.run(FindingsConfig::default(), &StandingInputs::default());
    // An hour between grants is more than the 30-minute renewal gap: coverage only.
    assert_eq!(
        only(&r),
        vec![(
            FindingKind::StandingCoverage,
            vec!["bob".to_string()],
            grants.clone()
        )]
    );
    let coverage = &r.findings[0];
    assert_eq!(coverage.asset.as_deref(), Some("plc-3"));
    assert!(
        coverage.summary.contains("60% (437 h)"),
        "{}",
        coverage.summary
    );
    let jit: Vec<_> = r
        .standing
        .iter()
        .map(|s| (s.id.clone(), s.exposure_hours))
        .collect();
    assert_eq!(
        jit,
        vec![("jit_became_standing:covered:bob@plc-3".to_string(), 437.0)]
    );
    // At 61 % it is not standing.
    let strict = FindingsConfig {
        standing_coverage_percent: 61,
        ..FindingsConfig::default()
    };
    assert!(log
        .run(strict, &StandingInputs::default())
        .findings
        .is_empty());
}

#[test]
fn overlapping_grants_count_once_toward_coverage() {
    let mut log = Log::new();
    // Two grants over the same 400 h, one inside the other, plus 100 h later: 500 h = 69 %.
    log.submit("r1", "bob", "bob", "plc-3", h(0));
    log.approve("r1", "alice", h(0));
    log.issue("r1", "g1", "bob", h(0), h(400));
    log.submit("r2", "bob", "bob", "plc-3", h(10));
    log.approve("r2", "alice", h(10));
    log.issue("r2", "g2", "bob", h(10), h(20));
    log.end("g2", h(20));
    log.end("g1", h(400));
    log.grant("3", "bob", "alice", "plc-3", h(500), h(600));
    let r = log.run(
        FindingsConfig {
            back_to_back_renewals: 5,
            ..FindingsConfig::default()
        },
        &StandingInputs::default(),
    );
    assert_eq!(r.findings.len(), 1, "{:?}", r.findings);
    assert!(
        r.findings[0].summary.contains("69% (500 h)"),
        "{}",
        r.findings[0].summary
    );
}

#[test]
fn back_to_back_renewals_need_the_run_and_the_gap() {
    let mut log = Log::new();
    let mut issued = Vec::new();
    // Four 2-hour grants, each starting 20 min after the previous ended: 3 renewals.
    let mut start = h(100);
    for i in 0..4 {
        issued.push(log.grant(
            &format!("{i}"),
            "alice",
            "bob",
            "ews-1",
            start,
            start + Duration::hours(2),
        ));
        start = start + Duration::hours(2) + Duration::minutes(20);
    }
    let r = log.run(FindingsConfig::default(), &StandingInputs::default());
    assert_eq!(
        only(&r),
        vec![(
            FindingKind::BackToBackRenewal,
            vec!["alice".into()],
            issued.clone()
        )]
    );
    assert_eq!(r.findings[0].asset.as_deref(), Some("ews-1"));
    // Capped at two: the other two grants of the run are counted once each.
    let capped = FindingsConfig {
        evidence_cap: 2,
        ..FindingsConfig::default()
    };
    let r = log.run(capped, &StandingInputs::default());
    assert_eq!(r.findings[0].evidence.seqs, issued[..2].to_vec());
    assert_eq!(r.findings[0].evidence.more, 2);
    // With a 15-minute gap allowed, none of them is a renewal.
    let tight = FindingsConfig {
        back_to_back_gap_minutes: 15,
        ..FindingsConfig::default()
    };
    assert!(log
        .run(tight, &StandingInputs::default())
        .findings
        .is_empty());
}

#[test]
fn normal_use_finds_nothing_and_leaves_no_state_behind() {
    let mut log = Log::new();
    for d in 0..20 {
        let n = format!("n{d}");
        let from = h(24 * d + 8);
        let (who, approver) = if d % 2 == 0 {
            ("alice", "carol")
        } else {
            ("bob", "carol")
        };
        log.grant(&n, who, approver, "plc-7", from, from + Duration::hours(2));
        // sessions of the grant are logged between issue and end in reality; order is kept
        // simple here: each session ends before the next starts.
        log.session(
            &format!("grant-{n}"),
            &format!("s{d}"),
            who,
            "10.0.0.5:1",
            None,
            from,
        );
        log.session_end(
            &format!("grant-{n}"),
            &format!("s{d}"),
            from + Duration::hours(1),
        );
    }
    let mut scan = FindingsScan::new(month(), FindingsConfig::default(), kinds());
    for (seq, e) in &log.events {
        scan.observe(*seq, e);
    }
    assert!(scan.requests.is_empty(), "every request was granted");
    let r = scan.finish(&StandingInputs::default());
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    assert!(r.standing.is_empty(), "{:?}", r.standing);
    assert_eq!(r.events_read, log.events.len() as u64);
}

#[test]
fn events_outside_the_period_do_not_make_findings() {
    let mut log = Log::new();
    log.submit("r", "alice", "alice", "plc-7", h(-48));
    log.approve("r", "bob", h(-48));
    log.issue("r", "g", "alice", h(-47), h(-40));
    log.session("g", "s1", "alice", "10.0.0.5:1", None, h(-47));
    log.session("g", "s2", "alice", "10.0.0.6:1", None, h(-46));
    let r = log.run(FindingsConfig::default(), &StandingInputs::default());
    assert!(r.findings.is_empty(), "{:?}", r.findings);
}

fn asset(id: &str, legacy: bool, vaulted: bool) -> Asset {
    Asset {
        id: id.into(),
        name: String::new(),
        kind: AssetKind::Plc,
        site: "north".into(),
        zone: None,
        criticality: Criticality::High,
        enforcement: if legacy {
            Enforcement::Legacy
        } else {
            Enforcement::Brokered
        },
        endpoints: Endpoints {
            ssh: vaulted.then(|| SshEndpoint {
                host: "10.0.0.9:22".into(),
                account: Some("maint".into()),
                host_key: None,
                auth: SshTargetAuth::VaultedKey,
            }),
            ..Endpoints::default()
        },
        limitation: legacy.then(|| "keeps a local maintenance account".to_string()),
        compensating_controls: vec!["post-session-review".into()],
        lockout: false,
        gateway: Some("gw-north".into()),
    }
}

use crate::inventory::Enforcement;

#[test]
fn the_standing_inventory_lists_every_kind_with_its_exposure() {
    let mut log = Log::new();
    // plc-legacy-1 first listed ten days into the period; vaulted asset from before it.
    log.push(
        Event::with_payload(
            Actor::system(),
            h(-100),
            &InventoryChanged {
                sites: vec![],
                orgs: vec![],
                identities: vec![],
                assets: vec!["hmi-9".into()],
            },
        )
        .unwrap(),
    );
    log.push(
        Event::with_payload(
            Actor::system(),
            h(240),
            &InventoryChanged {
                sites: vec![],
                orgs: vec![],
                identities: vec![],
                assets: vec!["plc-legacy-1".into()],
            },
        )
        .unwrap(),
    );
    // svc-historian acts in the period; svc-backup (an API key holder) does not.
    log.submit("r", "svc-historian", "svc-historian", "hmi-9", h(300));
    let assets = vec![
        asset("plc-legacy-1", true, false),
        asset("hmi-9", false, true),
        asset("plc-7", false, false),
    ];
    let keys = vec![
        ApiKeyInput {
            id: "key-1".into(),
            identity: "svc-historian".into(),
            name: "collector".into(),
            created_at: h(-1000),
            expires_at: None,
            revoked: false,
        },
        ApiKeyInput {
            id: "key-2".into(),
            identity: "svc-backup".into(),
            name: "backup".into(),
            created_at: h(120),
            expires_at: Some(h(2000)),
            revoked: false,
        },
        ApiKeyInput {
            id: "key-3".into(),
            identity: "svc-old".into(),
            name: "old".into(),
            created_at: h(-1000),
            expires_at: None,
            revoked: true,
        },
    ];
    let exceptions = vec![StandingExceptionInput {
        id: "exc-1".into(),
        subject: "carol".into(),
        assets: vec!["plc-7".into()],
        owner: "sam".into(),
        since: Some(h(-10)),
        expires_at: h(360),
        revalidation_due: h(200),
        last_used: None,
    }];
    let inputs = StandingInputs {
        assets: &assets,
        api_keys: &keys,
        exceptions: &exceptions,
    };
    let r = log.run(FindingsConfig::default(), &inputs);
    let got: Vec<(&str, f64)> = r
        .standing
        .iter()
        .map(|s| (s.id.as_str(), s.exposure_hours))
        .collect();
    assert_eq!(
        got,
        vec![
            ("api_key_without_expiry:key-1", 720.0),
            ("legacy_local_accounts:plc-legacy-1", 480.0),
            ("standing_exception:exc-1", 360.0),
            ("unused_access:carol", 360.0),
            ("unused_access:svc-backup", 600.0),
            ("vaulted_gateway_key:hmi-9", 720.0),
        ]
    );
    let exc = r
        .standing
        .iter()
        .find(|s| s.kind == StandingKind::StandingException)
        .unwrap();
    assert!(
        exc.detail.contains("re-validation overdue"),
        "{}",
        exc.detail
    );
    let legacy = &r.standing[1];
    assert_eq!(legacy.since, Some(h(240)));
}

#[test]
fn a_workload_filing_for_its_owner_does_not_hide_rubber_stamping() {
    let mut log = Log::new();
    let mut cited = Vec::new();
    for i in 0..3 {
        let at = h(24 * i + 1);
        // bob's workload files with its own key; alice approves it.
        log.submit(
            &format!("w{i}"),
            "svc-historian",
            "svc-historian",
            "plc-7",
            at,
        );
        cited.push(log.approve(&format!("w{i}"), "alice", at));
        log.submit(&format!("a{i}"), "alice", "alice", "plc-7", at);
        cited.push(log.approve(&format!("a{i}"), "bob", at));
    }
    let owners: HashMap<String, Vec<String>> =
        [("svc-historian".to_string(), vec!["bob".to_string()])]
            .into_iter()
            .collect();
    let mut scan =
        FindingsScan::new(month(), FindingsConfig::default(), kinds()).with_owners(owners);
    for (seq, e) in &log.events {
        scan.observe(*seq, e);
    }
    let r = scan.finish(&StandingInputs::default());
    assert_eq!(
        only(&r),
        vec![(
            FindingKind::MutualApproval,
            vec!["alice".into(), "bob".into()],
            cited
        )]
    );
    // Without the owners known, the workload's requests are nobody else's.
    let r = log.run(FindingsConfig::default(), &StandingInputs::default());
    assert!(r.findings.is_empty(), "{:?}", r.findings);
}
