//! Sessions seen through gateways: one identity used from several hosts or client keys at
//! overlapping times (vendors: from several places at once), and workloads used from
//! changing sources over the period.
//!
//! State: the live sessions (removed at `session.ended`, or when their grant ends), the
//! client keys of live grants' credentials, and per workload at most a few dozen source
//! hosts — bounded by what is live and by the subjects, not by the events.

use super::{Ctx, FindingKind, Gathered};
use crate::event::Event;
use crate::inventory::IdentityKind;
use crate::server_payload::{
    CredentialIssued, GatewayReport, IssuedCredential, SessionStartedDetail,
};
use crate::Timestamp;
use std::collections::{BTreeMap, HashMap};

/// Source hosts remembered per workload (more are counted, not kept).
const MAX_SOURCES_KEPT: usize = 64;

#[derive(Debug, Clone)]
struct LiveSession {
    id: String,
    grant: Option<String>,
    host: Option<String>,
    key: Option<String>,
    seq: i64,
}

#[derive(Debug, Default)]
struct Sources {
    /// host → (first seq, first time) in the period.
    hosts: BTreeMap<String, (i64, Timestamp)>,
    /// Distinct hosts beyond [`MAX_SOURCES_KEPT`].
    beyond: u64,
    last: Option<Timestamp>,
}

#[derive(Debug, Default)]
pub(crate) struct SessionDetector {
    /// subject → its live sessions.
    live: HashMap<String, Vec<LiveSession>>,
    /// session id → subject.
    session_subject: HashMap<String, String>,
    /// token id → (grant, client key) of live grants' grant tokens.
    keys: HashMap<String, (Option<String>, String)>,
    /// workload → the hosts its sessions came from in the period.
    workloads: HashMap<String, Sources>,
    found: Vec<Occurrence>,
}

#[derive(Debug)]
struct Occurrence {
    kind: FindingKind,
    subject: String,
    at: Timestamp,
    seqs: [i64; 2],
    detail: String,
}

/// The host part of a peer address (`10.0.0.5:51000` → `10.0.0.5`, `[::1]:22` → `::1`).
pub fn peer_host(peer: &str) -> String {
    if let Some(rest) = peer.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest).to_string();
    }
    match peer.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host.to_string()
        }
        _ => peer.to_string(),
    }
}

impl SessionDetector {
    /// `credential.issued`: remember the client key a grant token is bound to.
    pub fn credential(&mut self, e: &Event) {
        if let Some(IssuedCredential::Token(CredentialIssued {
            token_id,
            client_key,
            ..
        })) = e.payload::<IssuedCredential>()
        {
            self.keys.insert(token_id, (e.grant_id.clone(), client_key));
        }
    }

    /// `session.started`: compare with the subject's other live sessions. Returns the
    /// session's subject and asset.
    pub fn started(&mut self, seq: i64, e: &Event, ctx: &Ctx<'_>) -> Option<(String, String)> {
        let report = GatewayReport::of(e)?;
        let detail: SessionStartedDetail = report.detail_as()?;
        let host = detail.peer.as_deref().map(peer_host);
        let key = detail
            .token_id
            .as_ref()
            .and_then(|t| self.keys.get(t))
            .map(|(_, k)| k.clone());
        let subject = detail.subject.clone();
        let id = report.session_id.unwrap_or_else(|| format!("seq-{seq}"));
        let in_period = ctx.period.contains(e.at);
        let vendor = ctx.kind_of(&subject) == Some(IdentityKind::Vendor);
        let live = self.live.entry(subject.clone()).or_default();
        if in_period {
            for other in live.iter() {
                let other_host = differs(&host, &other.host);
                let other_key = differs(&key, &other.key);
                if !(other_host || other_key) {
                    continue;
                }
                let (kind, what) = if vendor && other_host {
                    (FindingKind::VendorConcurrentUse, "hosts")
                } else if other_host {
                    (FindingKind::SharedIdentity, "hosts")
                } else {
                    (FindingKind::SharedIdentity, "client keys")
                };
                let pair = |a: &Option<String>, b: &Option<String>| {
                    format!(
                        "{} and {}",
                        b.as_deref().unwrap_or("?"),
                        a.as_deref().unwrap_or("?")
                    )
                };
                let detail = if what == "hosts" {
                    format!("last: hosts {}", pair(&host, &other.host))
                } else {
                    format!("last: client keys {}", pair(&key, &other.key))
                };
                self.found.push(Occurrence {
                    kind,
                    subject: subject.clone(),
                    at: e.at,
                    seqs: [other.seq, seq],
                    detail,
                });
            }
            if ctx.kind_of(&subject) == Some(IdentityKind::Workload) {
                if let Some(h) = &host {
                    let s = self.workloads.entry(subject.clone()).or_default();
                    s.last = Some(e.at);
                    if !s.hosts.contains_key(h) {
                        if s.hosts.len() < MAX_SOURCES_KEPT {
                            s.hosts.insert(h.clone(), (seq, e.at));
                        } else {
                            s.beyond += 1;
                        }
                    }
                }
            }
        }
        live.push(LiveSession {
            id: id.clone(),
            grant: e.grant_id.clone(),
            host,
            key,
            seq,
        });
        self.session_subject.insert(id, subject.clone());
        Some((subject, detail.asset))
    }

    /// `session.ended`.
    pub fn ended(&mut self, e: &Event) {
        let Some(id) = GatewayReport::of(e).and_then(|r| r.session_id) else {
            return;
        };
        if let Some(subject) = self.session_subject.remove(&id) {
            if let Some(live) = self.live.get_mut(&subject) {
                live.retain(|s| s.id != id);
                if live.is_empty() {
                    self.live.remove(&subject);
                }
            }
        }
    }

    /// `grant.ended`: its sessions and credentials are over, whether or not the gateway's
    /// `session.ended` arrives.
    pub fn grant_ended(&mut self, subject: &str, grant: &str) {
        if let Some(live) = self.live.get_mut(subject) {
            let ended: Vec<String> = live
                .iter()
                .filter(|s| s.grant.as_deref() == Some(grant))
                .map(|s| s.id.clone())
                .collect();
            live.retain(|s| s.grant.as_deref() != Some(grant));
            for id in ended {
                self.session_subject.remove(&id);
            }
            if live.is_empty() {
                self.live.remove(subject);
            }
        }
        self.keys.retain(|_, (g, _)| g.as_deref() != Some(grant));
    }

    pub fn finish(self, out: &mut Gathered, ctx: &Ctx<'_>) {
        for o in self.found {
            out.add(
                o.kind,
                (vec![o.subject], None),
                (o.at, o.at),
                &o.seqs,
                o.detail,
                ctx.cap,
            );
        }
        for (workload, s) in self.workloads {
            let distinct = s.hosts.len() + s.beyond as usize;
            if distinct <= ctx.config.workload_max_sources {
                continue;
            }
            let mut firsts: Vec<(i64, Timestamp)> = s.hosts.values().copied().collect();
            firsts.sort();
            let seqs: Vec<i64> = firsts.iter().map(|f| f.0).collect();
            let from = firsts.iter().map(|f| f.1).min().unwrap_or(ctx.period.from);
            let to = s.last.unwrap_or(from);
            let hosts: Vec<&str> = s.hosts.keys().map(String::as_str).collect();
            let detail = format!(
                "{distinct} source hosts, at most {} allowed: {}",
                ctx.config.workload_max_sources,
                hosts.join(", ")
            );
            out.add(
                FindingKind::WorkloadChangingSources,
                (vec![workload], None),
                (from, to),
                &seqs,
                detail,
                ctx.cap,
            );
        }
    }
}

fn differs(a: &Option<String>, b: &Option<String>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a != b)
}
