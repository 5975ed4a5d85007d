//! Findings and the standing-privilege inventory over a month of a large plant:
//! **1,000,000 evidence events**, against reading the same log once in the same run.
//!
//! `cargo bench -p jitgate-server --bench findings` (PostgreSQL from JITGATE_TEST_PG,
//! default postgres://postgres@127.0.0.1:5432/test; skipped loudly when unreachable).
//!
//! The log is generated straight into the store in batches (`append_events`, one
//! transaction per batch): 400 identities (300 people, 50 vendors, 50 workloads), 500
//! assets (25 legacy), 20,000 grants over 30 days, each with its request, decision,
//! approval, credential, a gateway session of 38 operations and its teardown — with a few
//! shared accounts, approvers approving each other and renewals back to back among them, so
//! every detector has work.
//!
//! Each measured thing is one function taking the store (`read_once`, `findings_and_standing`,
//! `compliance_report`, `findings_and_report`) and is timed over [`ROUNDS`] runs (median) with
//! its peak memory: the process's peak RSS is reset before each run (`/proc/self/clear_refs`)
//! and the growth of `VmHWM` over the RSS at the start is reported.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{Duration as Span, TimeZone, Utc};
use jitgate_core::event::{Actor, Event, EventKind};
use jitgate_core::findings::{FindingsConfig, Period};
use jitgate_core::inventory::{
    Asset, AssetKind, Criticality, Endpoints, Enforcement, Identity, IdentityKind, IdentityStatus,
    ModbusEndpoint,
};
use jitgate_core::lifecycle::{AccessPath, ApprovalVerdict, EndReason};
use jitgate_core::payload::{ApprovalRecorded, GrantEnded, GrantIssued, RequestSubmitted};
use jitgate_core::server_payload::{CredentialIssued, GatewayReport};
use jitgate_core::Timestamp;
use jitgate_store::Store;
use serde_json::json;
use std::time::{Duration, Instant};

const EVENTS: usize = 1_000_000;
const GRANTS: usize = 20_000;
const OPS_PER_SESSION: usize = 38;
const PEOPLE: usize = 300;
const VENDORS: usize = 50;
const WORKLOADS: usize = 50;
const ASSETS: usize = 500;
const ROUNDS: usize = 3;

fn month_start() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
}

fn identity(i: usize) -> (String, IdentityKind) {
    if i < PEOPLE {
        (format!("person-{i}"), IdentityKind::Human)
    } else if i < PEOPLE + VENDORS {
        (format!("vendor-{}", i - PEOPLE), IdentityKind::Vendor)
    } else {
        (
            format!("svc-{}", i - PEOPLE - VENDORS),
            IdentityKind::Workload,
        )
    }
}

async fn load_inventory(store: &Store) {
    let mut tx = store.write().await.unwrap();
    tx.upsert_site(&jitgate_core::Site {
        id: "north".into(),
        name: String::new(),
        zones: vec![],
    })
    .await
    .unwrap();
    for i in 0..PEOPLE + VENDORS + WORKLOADS {
        let (id, kind) = identity(i);
        tx.upsert_identity(&Identity {
            id,
            kind,
            name: String::new(),
            org: None,
            roles: vec!["engineer".into()],
            groups: vec![],
            sites: vec!["north".into()],
            owners: vec![],
            status: IdentityStatus::Active,
        })
        .await
        .unwrap();
    }
    for a in 0..ASSETS {
        let legacy = a.is_multiple_of(20);
        tx.upsert_asset(&Asset {
            id: format!("asset-{a}"),
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
                modbus: Some(ModbusEndpoint {
                    address: "127.0.0.1:5020".into(),
                    unit_ids: vec![1],
                }),
                ..Endpoints::default()
            },
            limitation: legacy.then(|| "local accounts".to_string()),
            compensating_controls: vec![],
            lockout: false,
            gateway: Some("gw-north".into()),
        })
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

/// The events of grant `g`, dated from its start.
fn grant_events(g: usize, out: &mut Vec<Event>) {
    let step = Span::seconds(30 * 24 * 3600 / GRANTS as i64);
    let start = month_start() + step * g as i32;
    // Most grants: anyone on any asset. Every 50th: person-7 on asset-3 (renewed back to
    // back); persons 1 and 2 approve each other.
    let who = if g.is_multiple_of(50) {
        7
    } else {
        (g * 7919) % (PEOPLE + VENDORS + WORKLOADS)
    };
    let (subject, _) = identity(who);
    let asset = if g.is_multiple_of(50) {
        3
    } else {
        (g * 104_729) % ASSETS
    };
    let approver = match who {
        1 => "person-2".to_string(),
        2 => "person-1".to_string(),
        _ => format!("person-{}", (who + 11) % PEOPLE),
    };
    let (req, grant) = (format!("req-{g}"), format!("grant-{g}"));
    let hour = Span::hours(1);
    let submitted = RequestSubmitted {
        requester: subject.clone(),
        subject: subject.clone(),
        scope_digest: "sha256:00".into(),
        scope: format!("jitgate-scope/v1\nasset-{asset} modbus read holding 0-99 unit 1\n"),
        window_start: start,
        duration_secs: 3600,
        reason: "maintenance".into(),
        reference: format!("WO-{g}"),
        path: AccessPath::Planned,
    };
    out.push(
        Event::with_payload(Actor::identity(&subject), start, &submitted)
            .unwrap()
            .request(&req),
    );
    out.push(
        Event::new(EventKind::RequestDecided, Actor::system(), start)
            .request(&req)
            .data(json!({"allowed": true, "determining_policies": ["human-read"], "policy_set_hash": "sha256:11", "obligations": {"approvals": 1}})),
    );
    let approval = ApprovalRecorded {
        verdict: ApprovalVerdict::Approve,
        scope_digest: "sha256:00".into(),
        comment: "ok".into(),
        step_up: false,
        step_up_method: None,
        approvals: 1,
        required: 1,
    };
    out.push(
        Event::with_payload(Actor::identity(&approver), start, &approval)
            .unwrap()
            .request(&req),
    );
    out.push(
        Event::new(
            EventKind::RequestApproved,
            Actor::identity(&approver),
            start,
        )
        .request(&req),
    );
    let issued = GrantIssued {
        subject: subject.clone(),
        scope_digest: "sha256:00".into(),
        not_before: start,
        expires_at: start + hour,
        emergency: false,
        review_required: false,
    };
    out.push(
        Event::with_payload(Actor::scheduler(), start, &issued)
            .unwrap()
            .request(&req)
            .grant(&grant),
    );
    let credential = CredentialIssued {
        token_fingerprint: format!("sha256:{g:064x}"),
        token_id: format!("tok-{g}"),
        asset: format!("asset-{asset}"),
        gateway: "gw-north".into(),
        client_key: format!("key-{who}"),
        expires_at: start + hour,
    };
    out.push(
        Event::with_payload(Actor::identity(&subject), start, &credential)
            .unwrap()
            .grant(&grant)
            .request(&req),
    );
    // Every 1000th grant of person-5 comes from a second host too, overlapping.
    let peers: &[&str] = if g % 1000 == 5 {
        &["10.0.0.5:40000", "10.9.0.5:40001"]
    } else {
        &["10.0.0.5:40000"]
    };
    let mut gseq = (g * 100) as i64;
    for (n, peer) in peers.iter().enumerate() {
        gseq += 1;
        let report = GatewayReport {
            gseq,
            session_id: Some(format!("sess-{g}-{n}")),
            detail: json!({"subject": subject, "asset": format!("asset-{asset}"), "protocol": "modbus",
                           "peer": peer, "device": "127.0.0.1:5020", "token_id": format!("tok-{g}")}),
            claimed_grant_id: None,
        };
        out.push(
            report
                .event(
                    EventKind::SessionStarted,
                    Actor::identity("gw-north"),
                    start + Span::minutes(1),
                )
                .unwrap()
                .grant(&grant)
                .request(&req),
        );
    }
    for i in 0..OPS_PER_SESSION + 1 - peers.len() {
        gseq += 1;
        let report = GatewayReport {
            gseq,
            session_id: Some(format!("sess-{g}-0")),
            detail: json!({"function": "read holding registers", "unit": 1, "address": i % 100,
                           "count": 10, "verdict": "allowed", "asset": format!("asset-{asset}")}),
            claimed_grant_id: None,
        };
        out.push(
            report
                .event(
                    EventKind::Operation,
                    Actor::identity("gw-north"),
                    start + Span::minutes(2),
                )
                .unwrap()
                .grant(&grant)
                .request(&req),
        );
    }
    for n in 0..peers.len() {
        gseq += 1;
        let report = GatewayReport {
            gseq,
            session_id: Some(format!("sess-{g}-{n}")),
            detail: json!({"reason": "client_closed", "operations": OPS_PER_SESSION}),
            claimed_grant_id: None,
        };
        out.push(
            report
                .event(
                    EventKind::SessionEnded,
                    Actor::identity("gw-north"),
                    start + Span::minutes(40),
                )
                .unwrap()
                .grant(&grant)
                .request(&req),
        );
    }
    let ended = GrantEnded {
        end_reason: EndReason::Expired,
        ended_at: start + hour,
        expires_at: start + hour,
    };
    out.push(
        Event::with_payload(Actor::scheduler(), start + hour, &ended)
            .unwrap()
            .grant(&grant)
            .request(&req),
    );
    for check in ["sessions_closed", "credential_refused"] {
        out.push(
            Event::new(EventKind::TeardownCheck, Actor::system(), start + hour)
                .grant(&grant)
                .data(json!({"attempt": 1, "check": check, "target": "gw-north", "outcome": "ok", "detail": "ok", "evidence": {}})),
        );
    }
    out.push(
        Event::new(EventKind::TeardownVerdict, Actor::system(), start + hour)
            .grant(&grant)
            .data(json!({"verdict": "verified", "final": true, "attempt": 1, "checks": 2, "failed": 0, "partial": 0})),
    );
}

/// Write the month: batches of grants, each batch's events in time order.
async fn generate(store: &Store) -> usize {
    load_inventory(store).await;
    let mut written = 0;
    let mut batch = Vec::with_capacity(20_000);
    let mut g = 0;
    while g < GRANTS {
        batch.clear();
        for _ in 0..200 {
            if g < GRANTS {
                grant_events(g, &mut batch);
                g += 1;
            }
        }
        batch.sort_by_key(|e| e.at);
        let mut tx = store.write().await.unwrap();
        tx.append_events(&batch).await.unwrap();
        tx.commit().await.unwrap();
        written += batch.len();
    }
    // Fill up to exactly EVENTS with operations of the last grant (a long session).
    let last = month_start() + Span::days(30) - Span::minutes(1);
    while written < EVENTS {
        let n = (EVENTS - written).min(10_000);
        let ops: Vec<Event> = (0..n)
            .map(|i| {
                Event::new(EventKind::Operation, Actor::identity("gw-north"), last)
                    .grant(&format!("grant-{}", GRANTS - 1))
                    .data(json!({"gseq": i, "session_id": "sess-last", "detail": {"function": "read holding registers", "unit": 1, "address": i % 100, "count": 10, "verdict": "allowed"}}))
            })
            .collect();
        let mut tx = store.write().await.unwrap();
        tx.append_events(&ops).await.unwrap();
        tx.commit().await.unwrap();
        written += n;
    }
    written
}

fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(key)
                .map(|v| v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

/// Time and peak memory growth (MiB) of one run of `f`.
async fn measured<F, Fut, T>(f: F) -> (Duration, f64, T)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let rss = status_kib("VmRSS:");
    let t = Instant::now();
    let out = f().await;
    let took = t.elapsed();
    let peak = status_kib("VmHWM:").saturating_sub(rss);
    (took, peak as f64 / 1024.0, out)
}

// ------------------------------------------------------------ the measured things

/// Baseline: the store's scan of the whole log, touching every row and doing nothing.
async fn read_once(store: &Store) -> usize {
    let mut scan = store.scan_log(None).await.unwrap();
    tokio::task::spawn_blocking(move || {
        let mut bytes = 0usize;
        while let Some(page) = scan.blocking_next() {
            for leaf in page.unwrap().iter() {
                bytes += leaf.canonical.len();
            }
        }
        bytes
    })
    .await
    .unwrap()
}

/// The findings and the standing inventory of the month, as `/findings` computes them.
async fn findings_and_standing(store: &Store) -> (usize, usize, u64) {
    let period = Period::new(month_start(), month_start() + Span::days(30)).unwrap();
    let r =
        jitgate_server::findings::findings_in_store(store, &FindingsConfig::default(), period, &[])
            .await
            .unwrap();
    (r.findings.len(), r.standing.len(), r.events_read)
}

/// The compliance report's figures of the month (every site), as `/reports/compliance`
/// computes them before signing: one read of the log through the report's accumulator.
async fn compliance_report(store: &Store) -> u64 {
    let acc = jitgate_evidence::compliance::Accumulator::new(
        month_start(),
        month_start() + Span::days(30),
        None,
    );
    let acc = jitgate_server::compliance::read_into(store, acc, None)
        .await
        .unwrap();
    acc.events_read()
}

/// The same, one read decoded for both on one thread (`log_scan::read_log` over the pair).
async fn findings_and_report_one_thread(store: &Store) -> u64 {
    let period = Period::new(month_start(), month_start() + Span::days(30)).unwrap();
    let (scan, inputs) =
        jitgate_server::findings::prepare(store, &FindingsConfig::default(), period, &[])
            .await
            .unwrap();
    let acc = jitgate_evidence::compliance::Accumulator::new(period.from, period.to, None);
    let (acc, scan) = jitgate_server::log_scan::read_log(store, (acc, scan), None)
        .await
        .unwrap();
    let found = inputs.finish(scan);
    assert!(found.events_read == acc.events_read());
    acc.events_read()
}

/// The same two results the way they were computed before: two reads of the log.
async fn findings_then_report(store: &Store) -> u64 {
    let (_, _, read) = findings_and_standing(store).await;
    read + compliance_report(store).await
}

/// What the target is about: the findings and the report of the month, as
/// `/reports/compliance` computes them — one read of the log feeding both.
async fn findings_and_report(store: &Store) -> u64 {
    let period = Period::new(month_start(), month_start() + Span::days(30)).unwrap();
    let findings =
        jitgate_server::findings::prepare(store, &FindingsConfig::default(), period, &[])
            .await
            .unwrap();
    let acc = jitgate_evidence::compliance::Accumulator::new(period.from, period.to, None);
    let (acc, found) = jitgate_server::compliance::figures_and_findings(store, acc, findings)
        .await
        .unwrap();
    assert!(found.events_read == acc.events_read());
    acc.events_read()
}

async fn bench(label: &str, store: Store) {
    let t = Instant::now();
    let written = generate(&store).await;
    println!(
        "\n### {label}: {written} events generated in {:.1?}\n",
        t.elapsed()
    );
    // One warm-up of each (page cache, connections).
    let _ = read_once(&store).await;
    let (_, _, (f, s, read)) = measured(|| findings_and_standing(&store)).await;
    assert!(
        read as usize >= written,
        "findings read every event: {read} < {written}"
    );
    println!("findings: {f}, standing items: {s}\n");
    let mut rows: Vec<(&str, Vec<Duration>, f64)> = Vec::new();
    let mut base = (Vec::new(), 0f64);
    let mut fin = (Vec::new(), 0f64);
    let mut rep = (Vec::new(), 0f64);
    let mut both = (Vec::new(), 0f64);
    let mut two_reads = (Vec::new(), 0f64);
    let mut one_thread = (Vec::new(), 0f64);
    for _ in 0..ROUNDS {
        let (d, m, _) = measured(|| read_once(&store)).await;
        base.0.push(d);
        base.1 = base.1.max(m);
        let (d, m, _) = measured(|| findings_and_standing(&store)).await;
        fin.0.push(d);
        fin.1 = fin.1.max(m);
        let (d, m, read) = measured(|| compliance_report(&store)).await;
        assert!(read as usize >= written, "the report read every event");
        rep.0.push(d);
        rep.1 = rep.1.max(m);
        let (d, m, _) = measured(|| findings_then_report(&store)).await;
        two_reads.0.push(d);
        two_reads.1 = two_reads.1.max(m);
        let (d, m, _) = measured(|| findings_and_report_one_thread(&store)).await;
        one_thread.0.push(d);
        one_thread.1 = one_thread.1.max(m);
        let (d, m, _) = measured(|| findings_and_report(&store)).await;
        both.0.push(d);
        both.1 = both.1.max(m);
    }
    rows.push((
        "read the log once (`Store::scan_log`, baseline)",
        base.0,
        base.1,
    ));
    rows.push((
        "findings + standing inventory (`findings_in_store`)",
        fin.0,
        fin.1,
    ));
    rows.push((
        "compliance report figures (`compliance::read_into`)",
        rep.0,
        rep.1,
    ));
    rows.push((
        "findings, then the report: two reads (as before)",
        two_reads.0,
        two_reads.1,
    ));
    rows.push((
        "both, one read decoded on one thread (`log_scan::read_log`)",
        one_thread.0,
        one_thread.1,
    ));
    rows.push((
        "both, one read decoded on two threads (`read_log_pair`, what the server does; target ≤ 3× read)",
        both.0,
        both.1,
    ));
    let median = |mut d: Vec<Duration>| {
        d.sort();
        d[d.len() / 2]
    };
    let b = median(rows[0].1.clone());
    println!("| {label} | median of {ROUNDS} | events/s | × read | peak memory growth |");
    println!("|---|---:|---:|---:|---:|");
    for (name, d, mem) in rows {
        let d = median(d);
        println!(
            "| {name} | {d:.2?} | {:.0} | {:.2} | {mem:.1} MiB |",
            written as f64 / d.as_secs_f64(),
            d.as_secs_f64() / b.as_secs_f64()
        );
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        println!(
            "machine: {} CPUs; load {}",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .trim()
        );
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_data_dir(&dir.path().join("data"))
            .await
            .unwrap();
        bench("SQLite", store.clone()).await;
        store.close().await;
        if let Some(pg) = jitgate_testkit::postgres_store().await {
            bench("PostgreSQL", pg.store.clone()).await;
            pg.cleanup().await;
        }
    });
}
