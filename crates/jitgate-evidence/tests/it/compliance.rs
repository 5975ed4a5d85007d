//! The compliance report: exact figures from a small log with grants across the period's
//! edges, the site filter, the signature, and the page that verifies itself (any byte).

use chrono::TimeZone;
use jitgate_core::lifecycle::{AccessPath, EndReason, ReviewReason};
use jitgate_core::payload::{
    GrantEnded, GrantIssued, RequestDecided, RequestSubmitted, TeardownVerdictData,
};
use jitgate_core::server_payload::{GatewayReport, ReviewOpened};
use jitgate_core::teardown::TeardownVerdict;
use jitgate_core::{Actor, Event, EventKind, Obligations, Timestamp};
use jitgate_evidence::compliance::signed::SignedReport;
use jitgate_evidence::compliance::{
    sign_report, verify_report, verify_report_html, Accumulator, ComplianceReport, ExtraSections,
    Framework, ReportError, Section,
};
use jitgate_evidence::{EvidenceKey, SignedCheckpoint};
use serde_json::json;
use std::collections::BTreeSet;

fn at(d: u32, h: u32) -> Timestamp {
    chrono::Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0).unwrap()
}

fn scope(asset: &str) -> String {
    format!("jitgate-scope/v1\n{asset} modbus unit=1 read holding 0-99\n")
}

fn submitted(req: &str, asset: &str, path: AccessPath, t: Timestamp) -> Event {
    Event::with_payload(
        Actor::identity("eng-1"),
        t,
        &RequestSubmitted {
            requester: "eng-1".into(),
            subject: "eng-1".into(),
            scope_digest: "sha256:00".into(),
            scope: scope(asset),
            window_start: t,
            duration_secs: 14_400,
            reason: "work order".into(),
            reference: "WO-1".into(),
            path,
        },
    )
    .unwrap()
    .request(req)
}

fn decided(req: &str, allowed: bool, t: Timestamp) -> Event {
    Event::with_payload(
        Actor::system(),
        t,
        &RequestDecided {
            allowed,
            determining_policies: vec![],
            policy_set_hash: "sha256:00".into(),
            obligations: Obligations::default(),
            reasons: vec![],
        },
    )
    .unwrap()
    .request(req)
}

fn issued(req: &str, grant: &str, from: Timestamp, to: Timestamp, emergency: bool) -> Event {
    Event::with_payload(
        Actor::scheduler(),
        from,
        &GrantIssued {
            subject: "eng-1".into(),
            scope_digest: "sha256:00".into(),
            not_before: from,
            expires_at: to,
            emergency,
            review_required: emergency,
        },
    )
    .unwrap()
    .request(req)
    .grant(grant)
}

fn ended(grant: &str, reason: EndReason, t: Timestamp, expires: Timestamp) -> Event {
    Event::with_payload(
        Actor::scheduler(),
        t,
        &GrantEnded {
            end_reason: reason,
            ended_at: t,
            expires_at: expires,
        },
    )
    .unwrap()
    .grant(grant)
}

fn teardown(grant: &str, verdict: TeardownVerdict, t: Timestamp) -> Event {
    Event::with_payload(
        Actor::system(),
        t,
        &TeardownVerdictData {
            verdict,
            is_final: true,
            session_ended_events: vec![],
        },
    )
    .unwrap()
    .grant(grant)
}

fn gateway(kind: EventKind, grant: &str, t: Timestamp, detail: serde_json::Value) -> Event {
    GatewayReport {
        gseq: 1,
        session_id: Some("s-1".into()),
        detail,
        claimed_grant_id: None,
    }
    .event(kind, Actor::identity("gw-1"), t)
    .unwrap()
    .grant(grant)
}

/// The log of the scenario; its comments give the expected figures.
fn log() -> Vec<Event> {
    vec![
        // a: before the period, ends inside it after 2 h: 1 h of exposure in the period.
        submitted("req-a", "plc-7", AccessPath::Planned, at(1, 22)),
        issued("req-a", "grant-a", at(1, 23), at(2, 3), false),
        ended(
            "grant-a",
            EndReason::Completed { by: "eng-1".into() },
            at(2, 1),
            at(2, 3),
        ),
        teardown("grant-a", TeardownVerdict::Verified, at(2, 1)),
        // b: inside the period on rtu-12, 4 h, two allowed and one denied operation, partial.
        submitted("req-b", "rtu-12", AccessPath::Routine, at(2, 10)),
        decided("req-b", true, at(2, 10)),
        issued("req-b", "grant-b", at(2, 10), at(2, 14), false),
        gateway(
            EventKind::SessionStarted,
            "grant-b",
            at(2, 11),
            json!({"subject": "eng-1", "asset": "rtu-12"}),
        ),
        gateway(
            EventKind::Operation,
            "grant-b",
            at(2, 11),
            json!({"allowed": true}),
        ),
        gateway(
            EventKind::Operation,
            "grant-b",
            at(2, 12),
            json!({"allowed": true}),
        ),
        gateway(
            EventKind::Operation,
            "grant-b",
            at(2, 12),
            json!({"allowed": false}),
        ),
        ended("grant-b", EndReason::Expired, at(2, 14), at(2, 14)),
        teardown("grant-b", TeardownVerdict::Partial, at(2, 14)),
        // d: denied by policy.
        submitted("req-d", "plc-7", AccessPath::Planned, at(3, 5)),
        decided("req-d", false, at(3, 5)),
        // c: break-glass, still open at the end of the period: 2 h inside, review open.
        submitted("req-c", "plc-7", AccessPath::Emergency, at(3, 22)),
        issued("req-c", "grant-c", at(3, 22), at(4, 2), true),
        Event::with_payload(
            Actor::system(),
            at(3, 22),
            &ReviewOpened {
                reason: ReviewReason::BreakGlass,
                subject: "eng-1".into(),
                due_at: at(5, 22),
                detail: json!({}),
            },
        )
        .unwrap()
        .grant("grant-c"),
        // e: after the period: not counted.
        submitted("req-e", "plc-7", AccessPath::Planned, at(5, 8)),
        issued("req-e", "grant-e", at(5, 8), at(5, 9), false),
    ]
}

fn key_and_checkpoint(events: usize) -> (EvidenceKey, SignedCheckpoint) {
    let key = EvidenceKey::generate().unwrap();
    let cp = key
        .sign_checkpoint("jitgate.test/plant-1", events as u64, &[7u8; 32], at(6, 0))
        .unwrap();
    (key, cp)
}

fn report(site: Option<(&str, &[&str])>) -> (ComplianceReport, EvidenceKey) {
    let events = log();
    let site = site.map(|(s, assets)| {
        (
            s.to_string(),
            assets
                .iter()
                .map(|a| a.to_string())
                .collect::<BTreeSet<_>>(),
        )
    });
    let mut acc = Accumulator::new(at(2, 0), at(4, 0), site);
    for (i, e) in events.iter().enumerate() {
        acc.observe(i as i64 + 1, e);
    }
    assert_eq!(acc.events_read(), events.len() as u64);
    let (key, cp) = key_and_checkpoint(events.len());
    (
        acc.finish(
            "jitgate.test/plant-1",
            cp,
            at(6, 0),
            ExtraSections::default(),
        ),
        key,
    )
}

#[test]
fn figures_over_every_site_are_exact() {
    let (r, _) = report(None);
    let g = &r.grants;
    assert_eq!((g.requests_submitted, g.requests_denied), (3, 1));
    assert_eq!(g.issued, 2);
    let paths: Vec<(&str, u64)> = g
        .issued_by_path
        .iter()
        .map(|p| (p.name.as_str(), p.count))
        .collect();
    assert_eq!(paths, vec![("emergency", 1), ("routine", 1)]);
    let reasons: Vec<(&str, u64)> = g
        .ended_by_reason
        .iter()
        .map(|p| (p.name.as_str(), p.count))
        .collect();
    assert_eq!(reasons, vec![("completed", 1), ("expired", 1)]);
    assert_eq!((g.ended, g.open_at_end), (2, 1));
    assert_eq!(g.median_duration_secs, Some(7_200));
    assert_eq!(g.exposure_secs, 3_600 + 14_400 + 7_200);
    assert_eq!(g.cited.events, vec![7, 17]);
    assert_eq!(
        (
            r.teardowns.verified,
            r.teardowns.partial,
            r.teardowns.failed
        ),
        (1, 1, 0)
    );
    assert_eq!(r.teardowns.not_verified.len(), 1);
    assert_eq!(r.teardowns.not_verified[0].grant_id, "grant-b");
    assert_eq!(r.teardowns.not_verified[0].event, 13);
    let b = &r.break_glass;
    assert_eq!((b.grants, b.reviews_open, b.reviews_completed), (1, 1, 0));
    let o = &r.operations;
    assert_eq!(
        (o.sessions, o.operations_allowed, o.operations_denied),
        (1, 2, 1)
    );
    assert_eq!(o.cited.events, vec![11]);
    let by_asset: Vec<(&str, u64, i64)> = r
        .exposure_by_asset
        .iter()
        .map(|a| (a.asset.as_str(), a.grants, a.exposure_secs))
        .collect();
    assert_eq!(by_asset, vec![("rtu-12", 1, 14_400), ("plc-7", 2, 10_800)]);
    let trend: Vec<(&str, i64, u64)> = r
        .exposure_trend
        .iter()
        .map(|p| (p.day.as_str(), p.exposure_secs, p.grants_issued))
        .collect();
    assert_eq!(
        trend,
        vec![("2026-11-02", 18_000, 1), ("2026-11-03", 7_200, 1)]
    );
    assert_eq!(r.timeline[0].asset, "rtu-12");
    assert_eq!(r.timeline[0].grants[0].from, "2026-11-02T10:00:00.000Z");
    assert_eq!(r.timeline[1].grants.len(), 2);
    assert!(
        r.timeline[1].grants[1].emergency,
        "grant-c is drawn as break-glass"
    );
}

#[test]
fn a_site_report_counts_only_the_sites_assets() {
    let (r, _) = report(Some(("north", &["plc-7"])));
    assert_eq!(r.site.as_deref(), Some("north"));
    let g = &r.grants;
    assert_eq!(
        (g.requests_submitted, g.requests_denied, g.issued, g.ended),
        (2, 1, 1, 1)
    );
    assert_eq!(g.exposure_secs, 3_600 + 7_200);
    assert_eq!((r.teardowns.verified, r.teardowns.partial), (1, 0));
    assert_eq!(
        r.operations.operations_allowed + r.operations.operations_denied,
        0
    );
    assert_eq!(r.exposure_by_asset.len(), 1);
}

#[test]
fn every_framework_is_mapped_and_each_mapping_cites_its_sections_events() {
    let (r, _) = report(None);
    for fw in [
        Framework::NistCsf2,
        Framework::NistSp800_207,
        Framework::OwaspNhi2025,
    ] {
        assert!(r.mappings.iter().any(|m| m.framework == fw), "{fw:?}");
    }
    let teardown = r
        .mappings
        .iter()
        .find(|m| m.section == Section::Teardowns)
        .unwrap();
    assert_eq!(teardown.cited, r.teardowns.cited);
    assert!(!teardown.cited.events.is_empty());
    // Sections the report does not carry are not claimed; a section without events says so.
    assert!(r.mappings.iter().all(|m| m.section != Section::Findings));
    let exceptions = r
        .mappings
        .iter()
        .find(|m| m.section == Section::Exceptions)
        .unwrap();
    assert_eq!(exceptions.cited.total, 0);
}

#[test]
fn a_signed_report_verifies_and_any_change_or_other_key_is_refused() {
    let (r, key) = report(None);
    let signed = sign_report(r, &key).unwrap();
    let json = signed.to_json();
    let keys = vec![key.public()];
    assert_eq!(verify_report(&json, &keys).unwrap(), signed);

    let mut changed: SignedReport = serde_json::from_str(&json).unwrap();
    changed.report.grants.exposure_secs -= 1;
    assert_eq!(
        verify_report(&changed.to_json(), &keys),
        Err(ReportError::BadSignature(key.public().key_id))
    );
    let other = EvidenceKey::generate().unwrap();
    assert!(matches!(
        verify_report(&json, &[other.public()]),
        Err(ReportError::Checkpoint(_))
    ));
    assert!(matches!(
        verify_report("{", &keys),
        Err(ReportError::Malformed(_))
    ));
}

#[test]
fn the_page_verifies_and_a_change_of_any_byte_is_found() {
    let (r, key) = report(None);
    let signed = sign_report(r, &key).unwrap();
    let html = signed.to_html();
    let keys = vec![key.public()];
    assert_eq!(verify_report_html(&html, &keys).unwrap(), signed);
    assert!(html.contains("<svg"), "charts are drawn");
    assert!(!html.contains("<script>"), "no executable script");
    let bytes = html.as_bytes();
    // Every 97th byte across the whole page (text, charts, data block) changed in turn.
    let mut checked = 0;
    for i in (0..bytes.len()).step_by(97) {
        let mut b = bytes.to_vec();
        b[i] = if b[i] == b'x' { b'y' } else { b'x' };
        let Ok(page) = String::from_utf8(b) else {
            continue;
        };
        assert!(
            verify_report_html(&page, &keys).is_err(),
            "byte {i} changed and still verified"
        );
        checked += 1;
    }
    assert!(checked > 50, "{checked} positions checked");
    assert_eq!(
        verify_report_html("<!DOCTYPE html><html></html>", &keys),
        Err(ReportError::NoDataBlock)
    );
}

#[test]
fn markup_in_the_log_is_escaped_on_the_page() {
    let mut events = log();
    events.push(submitted("req-x", "plc-7", AccessPath::Planned, at(2, 6)));
    events.push(issued(
        "req-x",
        "<script>alert(1)</script>",
        at(2, 6),
        at(2, 7),
        false,
    ));
    let mut acc = Accumulator::new(at(2, 0), at(4, 0), None);
    for (i, e) in events.iter().enumerate() {
        acc.observe(i as i64 + 1, e);
    }
    let (key, cp) = key_and_checkpoint(events.len());
    let signed = sign_report(
        acc.finish(
            "jitgate.test/plant-1",
            cp,
            at(6, 0),
            ExtraSections::default(),
        ),
        &key,
    )
    .unwrap();
    let html = signed.to_html();
    assert!(!html.contains("<script>alert"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    verify_report_html(&html, &[key.public()]).unwrap();
}

#[test]
fn standing_exceptions_are_counted_from_their_grants_and_revalidations() {
    use jitgate_core::payload::ExceptionRevalidated;
    let revalidated = |grant: &str, t: Timestamp| {
        Event::with_payload(
            Actor::identity("sam"),
            t,
            &ExceptionRevalidated {
                exception_id: format!("exc-{grant}"),
                note: "still needed".into(),
                previous_due: t,
                next_revalidation: t + chrono::Duration::days(7),
            },
        )
        .unwrap()
        .grant(grant)
    };
    let events = [
        // Still standing at the end of the period, re-validated inside it.
        submitted("req-s1", "plc-7", AccessPath::Standing, at(1, 6)),
        issued("req-s1", "grant-s1", at(1, 6), at(20, 6), false),
        revalidated("grant-s1", at(3, 6)),
        // Ended inside the period because nobody re-validated it.
        submitted("req-s2", "rtu-12", AccessPath::Standing, at(1, 7)),
        issued("req-s2", "grant-s2", at(1, 7), at(20, 7), false),
        ended(
            "grant-s2",
            EndReason::RevalidationOverdue,
            at(2, 7),
            at(20, 7),
        ),
    ];
    let mut acc = Accumulator::new(at(2, 0), at(4, 0), None);
    for (i, e) in events.iter().enumerate() {
        acc.observe(i as i64 + 1, e);
    }
    let (_, cp) = key_and_checkpoint(events.len());
    let r = acc.finish(
        "jitgate.test/plant-1",
        cp,
        at(6, 0),
        ExtraSections::default(),
    );
    let e = r.exceptions.unwrap();
    assert_eq!(
        (
            e.active,
            e.revalidated_in_period,
            e.ended_in_period,
            e.overdue_or_ended_unrevalidated
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(e.cited.events, vec![3]);
    // Their access counts as exposure like any grant's: 48 h + 7 h inside the period.
    assert_eq!(r.grants.exposure_secs, (48 + 7) * 3600);
}

#[test]
fn required_attestations_are_counted_recorded_or_missing() {
    use jitgate_core::attestation::{AttestationRecorded, AttestedAs};
    let decided_attest = |req: &str, t: Timestamp| {
        Event::with_payload(
            Actor::system(),
            t,
            &RequestDecided {
                allowed: true,
                determining_policies: vec![],
                policy_set_hash: "sha256:00".into(),
                obligations: Obligations {
                    attestation: true,
                    ..Obligations::default()
                },
                reasons: vec![],
            },
        )
        .unwrap()
        .request(req)
    };
    let attested = |grant: &str, t: Timestamp| {
        Event::with_payload(
            Actor::identity("eng-1"),
            t,
            &AttestationRecorded {
                subject: "eng-1".into(),
                attested_as: AttestedAs::Subject,
                task_done: true,
                changes: vec![],
                note: "done".into(),
                required: true,
                ended_at: t,
            },
        )
        .unwrap()
        .grant(grant)
    };
    let events = vec![
        submitted("req-1", "plc-7", AccessPath::Planned, at(2, 8)),
        decided_attest("req-1", at(2, 8)),
        issued("req-1", "grant-1", at(2, 8), at(2, 9), false),
        ended("grant-1", EndReason::Expired, at(2, 9), at(2, 9)),
        attested("grant-1", at(2, 10)),
        submitted("req-2", "plc-7", AccessPath::Planned, at(2, 11)),
        decided_attest("req-2", at(2, 11)),
        issued("req-2", "grant-2", at(2, 11), at(2, 12), false),
        ended("grant-2", EndReason::Expired, at(2, 12), at(2, 12)),
        // Not required: never counted.
        submitted("req-3", "plc-7", AccessPath::Planned, at(2, 13)),
        decided("req-3", true, at(2, 13)),
        issued("req-3", "grant-3", at(2, 13), at(2, 14), false),
        ended("grant-3", EndReason::Expired, at(2, 14), at(2, 14)),
    ];
    let mut acc = Accumulator::new(at(2, 0), at(4, 0), None);
    for (i, e) in events.iter().enumerate() {
        acc.observe(i as i64 + 1, e);
    }
    let (_, cp) = key_and_checkpoint(events.len());
    let r = acc.finish(
        "jitgate.test/plant-1",
        cp,
        at(6, 0),
        ExtraSections::default(),
    );
    let a = r.attestations.unwrap();
    assert_eq!((a.recorded, a.missing), (1, 1));
    assert_eq!(a.cited.events, vec![5]);
}

#[test]
fn reading_the_stored_text_gives_the_same_report_as_reading_events() {
    let events = log();
    let mut by_event = Accumulator::new(at(2, 0), at(4, 0), None);
    let mut by_text = Accumulator::new(at(2, 0), at(4, 0), None);
    for (i, e) in events.iter().enumerate() {
        by_event.observe(i as i64 + 1, e);
        let text = String::from_utf8(e.canonical_bytes()).unwrap();
        by_text.observe_canonical(i as i64 + 1, &text).unwrap();
    }
    assert_eq!(by_text.events_read(), events.len() as u64);
    let (_, cp) = key_and_checkpoint(events.len());
    let a = by_event.finish(
        "jitgate.test/plant-1",
        cp.clone(),
        at(6, 0),
        ExtraSections::default(),
    );
    let b = by_text.finish(
        "jitgate.test/plant-1",
        cp,
        at(6, 0),
        ExtraSections::default(),
    );
    assert_eq!(a, b);
    assert_eq!(b.operations.operations_denied, 1);
    let mut other = Accumulator::new(at(2, 0), at(4, 0), None);
    assert!(other.observe_canonical(1, "not json").is_err());
}
