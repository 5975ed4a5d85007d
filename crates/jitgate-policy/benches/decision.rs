//! Policy decision latency: `cargo bench -p jitgate-policy --bench decision`.
//!
//! Decides the same stream of realistic requests with (a) the default policy set — the
//! baseline, measured in the same run — and (b) the default set plus 500 generated
//! policies of the kinds plants write (per person, per team, per asset, per supplier,
//! forbids with reasons), then prints p50/p90/p99/p99.9/max as a markdown table. Results go
//! in docs/BENCHMARKS.md ("Policy decision latency"). No assertion on time: shared
//! machines make absolute times noisy; the ratio to the baseline is the figure to watch.

use jitgate_core::inventory::{Dnp3Endpoint, Endpoints, ModbusEndpoint, SshEndpoint};
use jitgate_core::scope::{parse_request, ScopeRequest};
use jitgate_core::{
    AccessPath, Asset, AssetKind, Criticality, Enforcement, Identity, IdentityKind, IdentityStatus,
    Org, OrgStatus, Scope,
};
use jitgate_policy::{default_sources, DecisionInput, PolicySet};
use std::error::Error;
use std::time::{Duration, Instant};

const SITES: usize = 6;
const ZONES_PER_SITE: usize = 4;
const ASSETS: usize = 240;
const PEOPLE: usize = 120;
const GENERATED: usize = 500;
const DECISIONS: usize = 20_000;
const WARMUP: usize = 2_000;

/// xorshift64*: deterministic, so every run decides the same requests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const CRITICALITIES: [Criticality; 4] = [
    Criticality::Low,
    Criticality::Medium,
    Criticality::High,
    Criticality::Safety,
];
const KINDS: [AssetKind; 5] = [
    AssetKind::Plc,
    AssetKind::Rtu,
    AssetKind::Hmi,
    AssetKind::Historian,
    AssetKind::EngineeringWorkstation,
];

struct Plant {
    orgs: Vec<Org>,
    identities: Vec<Identity>,
    assets: Vec<Asset>,
}

fn plant(rng: &mut Rng) -> Plant {
    let orgs: Vec<Org> = (0..8)
        .map(|i| Org {
            id: format!("org-{i}"),
            name: String::new(),
            vendor: i > 0,
            status: if i == 7 {
                OrgStatus::Suspended
            } else {
                OrgStatus::Active
            },
        })
        .collect();
    let roles = [
        "engineer",
        "operator",
        "oncall",
        "security",
        "maintenance",
        "quality",
    ];
    let identities = (0..PEOPLE)
        .map(|i| {
            let kind = match i % 10 {
                0..=5 => IdentityKind::Human,
                6..=8 => IdentityKind::Vendor,
                _ => IdentityKind::Workload,
            };
            let org = match kind {
                IdentityKind::Vendor => Some(format!("org-{}", 1 + i % 7)),
                IdentityKind::Human => Some("org-0".to_string()),
                IdentityKind::Workload => None,
            };
            let mut r = vec![rng.pick(&roles).to_string()];
            if rng.below(3) == 0 {
                r.push(rng.pick(&roles).to_string());
            }
            Identity {
                id: format!("user-{i}"),
                kind,
                name: String::new(),
                org,
                roles: r,
                groups: vec![format!("team-{}", i % 25)],
                sites: vec![format!("site-{}", i % SITES)],
                owners: if kind == IdentityKind::Workload {
                    vec!["user-0".into()]
                } else {
                    vec![]
                },
                status: if i % 53 == 52 {
                    IdentityStatus::Disabled
                } else {
                    IdentityStatus::Active
                },
            }
        })
        .collect();
    let assets = (0..ASSETS)
        .map(|i| {
            let kind = KINDS[i % KINDS.len()];
            let endpoints = match kind {
                AssetKind::Plc => Endpoints {
                    modbus: Some(ModbusEndpoint {
                        address: "127.0.0.1:502".into(),
                        unit_ids: vec![1],
                    }),
                    ..Default::default()
                },
                AssetKind::Rtu => Endpoints {
                    dnp3: Some(Dnp3Endpoint {
                        address: "127.0.0.1:20000".into(),
                        outstation: 10,
                        master: 1,
                    }),
                    ..Default::default()
                },
                AssetKind::Historian => Endpoints {
                    modbus: Some(ModbusEndpoint {
                        address: "127.0.0.1:502".into(),
                        unit_ids: vec![1],
                    }),
                    ssh: Some(SshEndpoint {
                        host: "127.0.0.1:22".into(),
                        account: None,
                        host_key: None,
                        auth: Default::default(),
                    }),
                    ..Default::default()
                },
                _ => Endpoints {
                    ssh: Some(SshEndpoint {
                        host: "127.0.0.1:22".into(),
                        account: None,
                        host_key: None,
                        auth: Default::default(),
                    }),
                    ..Default::default()
                },
            };
            let site = i % SITES;
            let legacy = i % 17 == 0;
            Asset {
                id: format!("asset-{i}"),
                name: String::new(),
                kind,
                site: format!("site-{site}"),
                zone: Some(format!("zone-{site}-{}", i % ZONES_PER_SITE)),
                criticality: CRITICALITIES[rng.below(4)],
                enforcement: if legacy {
                    Enforcement::Legacy
                } else {
                    Enforcement::Brokered
                },
                endpoints,
                limitation: legacy.then(|| "local accounts".to_string()),
                compensating_controls: vec![],
                lockout: i % 41 == 40,
                gateway: None,
            }
        })
        .collect();
    Plant {
        orgs,
        identities,
        assets,
    }
}

/// 500 policies in 10 files, of the kinds a plant's security team writes.
fn generated_sources(rng: &mut Rng) -> Vec<(String, String)> {
    let ops = [
        "modbus:read",
        "modbus:write",
        "dnp3:read",
        "dnp3:operate",
        "ssh:shell",
        "ssh:command",
    ];
    let roles = ["engineer", "operator", "maintenance", "quality"];
    let mut files = Vec::new();
    for f in 0..10 {
        let mut text = format!("// generated policies, file {f}\n\n");
        for k in 0..GENERATED / 10 {
            let n = f * (GENERATED / 10) + k;
            let site = rng.below(SITES);
            let zone = rng.below(ZONES_PER_SITE);
            let policy = match n % 6 {
                // One person, one site, read-only.
                0 => format!(
                    "@id(\"gen-{n}-person\")\n@approvals(\"1\")\n@approver_role(\"engineer\")\n@approver_site(\"asset\")\n@max_duration(\"4h\")\n\
                     permit (principal == Jitgate::Identity::\"user-{}\", action == Jitgate::Action::\"request\", resource)\n\
                     when {{ resource.site == \"site-{site}\" && !context.writes && context.path == \"planned\" }};\n",
                    rng.below(PEOPLE)
                ),
                // A team on a zone up to some criticality.
                1 => format!(
                    "@id(\"gen-{n}-team\")\n@approvals(\"2\")\n@approver_group(\"team-{}\")\n@step_up(\"true\")\n@max_duration(\"2h\")\n\
                     permit (principal, action == Jitgate::Action::\"request\", resource)\n\
                     when {{ principal.groups.contains(\"team-{}\") && resource.zone == \"zone-{site}-{zone}\" && resource.criticality_rank <= {} && context.path == \"routine\" }};\n",
                    rng.below(25),
                    rng.below(25),
                    rng.below(4)
                ),
                // One asset, one role, one operation.
                2 => format!(
                    "@id(\"gen-{n}-asset\")\n@approvals(\"2\")\n@approver_role(\"engineer, {}\")\n@approver_site(\"site-{site}\")\n@max_duration(\"1h30m\")\n@review(\"true\")\n\
                     permit (principal, action == Jitgate::Action::\"request\", resource == Jitgate::Asset::\"asset-{}\")\n\
                     when {{ principal.roles.contains(\"{}\") && context.operations.contains(\"{}\") && context.duration_minutes <= 90 }};\n",
                    rng.pick(&roles),
                    rng.below(ASSETS),
                    rng.pick(&roles),
                    rng.pick(&ops)
                ),
                // A supplier on a kind of asset over one protocol.
                3 => format!(
                    "@id(\"gen-{n}-supplier\")\n@approvals(\"1\")\n@approver_role(\"engineer\")\n@approver_site(\"asset\")\n@max_duration(\"2h\")\n@step_up(\"true\")\n@review(\"true\")\n\
                     permit (principal, action == Jitgate::Action::\"request\", resource)\n\
                     when {{ principal.kind == \"vendor\" && principal.org == \"org-{}\" && principal.org_active && resource.kind == \"{}\" && context.path == \"planned\" }};\n",
                    1 + rng.below(7),
                    rng.pick(&KINDS).as_str()
                ),
                // A zone that refuses long vendor sessions.
                4 => format!(
                    "@id(\"gen-{n}-forbid-long\")\n@reason(\"zone-{site}-{zone} allows vendor sessions of at most {} minutes\")\n\
                     forbid (principal, action, resource)\n\
                     when {{ principal.kind == \"vendor\" && resource.zone == \"zone-{site}-{zone}\" && context.duration_minutes > {} }};\n",
                    60 + 30 * rng.below(4),
                    60 + 30 * rng.below(4)
                ),
                // Shift staff at their own site, routine writes to low assets.
                _ => format!(
                    "@id(\"gen-{n}-shift\")\n@approvals(\"1\")\n@approver_role(\"{}\")\n@max_duration(\"8h\")\n\
                     permit (principal, action == Jitgate::Action::\"request\", resource)\n\
                     when {{ principal.kind == \"human\" && principal.sites.contains(resource.site) && principal.roles.contains(\"{}\") && resource.criticality_rank == 0 && context.protocols.contains(\"modbus\") }};\n",
                    rng.pick(&roles),
                    rng.pick(&roles)
                ),
            };
            text.push_str(&policy);
            text.push('\n');
        }
        files.push((format!("50-generated-{f:02}.cedar"), text));
    }
    files
}

struct Req {
    requester: usize,
    subject: usize,
    assets: Vec<usize>,
    scope: Scope,
    path: AccessPath,
    duration_secs: i64,
}

fn rules_for(asset: &Asset, rng: &mut Rng) -> ScopeRequest {
    let mut r = ScopeRequest {
        asset: asset.id.clone(),
        ..Default::default()
    };
    if asset.endpoints.modbus.is_some() {
        r.modbus = match rng.below(4) {
            0 => vec!["read holding 0-99".into()],
            1 => vec!["read holding 0-99".into(), "write coil 10-20".into()],
            2 => vec!["readonly".into()],
            _ => vec!["write holding 100-110".into()],
        };
    } else if asset.endpoints.dnp3.is_some() {
        r.dnp3 = match rng.below(2) {
            0 => vec!["read class 0-3".into()],
            _ => vec!["read class 0-3".into(), "operate binary-output 3-5".into()],
        };
    } else {
        r.ssh = match rng.below(2) {
            0 => vec!["shell".into()],
            _ => vec!["command systemctl status historian".into()],
        };
    }
    r
}

fn requests(plant: &Plant, rng: &mut Rng) -> Result<Vec<Req>, Box<dyn Error>> {
    let mut out = Vec::with_capacity(1000);
    while out.len() < 1000 {
        let subject = rng.below(plant.identities.len());
        let requester = if plant.identities[subject].kind == IdentityKind::Workload {
            0
        } else {
            subject
        };
        // One request in five names two assets.
        let n = if rng.below(5) == 0 { 2 } else { 1 };
        let mut assets: Vec<usize> = (0..n).map(|_| rng.below(plant.assets.len())).collect();
        assets.dedup();
        let mut items = Vec::new();
        for &a in &assets {
            let asset = &plant.assets[a];
            items.extend(parse_request(asset, &rules_for(asset, rng))?);
        }
        let path = *rng.pick(&[
            AccessPath::Planned,
            AccessPath::Planned,
            AccessPath::Routine,
            AccessPath::Emergency,
        ]);
        let duration_secs = *rng.pick(&[900, 1800, 3600, 7200, 14_400]);
        out.push(Req {
            requester,
            subject,
            assets,
            scope: Scope::new(items)?,
            path,
            duration_secs,
        });
    }
    Ok(out)
}

struct Stats {
    p50: Duration,
    p90: Duration,
    p99: Duration,
    p999: Duration,
    max: Duration,
    mean: Duration,
    allowed: usize,
}

fn input<'a>(plant: &'a Plant, r: &'a Req, assets: &'a [Asset]) -> DecisionInput<'a> {
    DecisionInput {
        requester: &plant.identities[r.requester],
        subject: &plant.identities[r.subject],
        orgs: &plant.orgs,
        assets,
        scope: &r.scope,
        path: r.path,
        duration_secs: r.duration_secs,
    }
}

/// The pre-filter must not change a single decision; checked here on the benchmark's own
/// requests and policies before anything is timed.
fn verify(set: &PolicySet, plant: &Plant, reqs: &[Req]) -> Result<(), Box<dyn Error>> {
    for r in reqs {
        let assets: Vec<Asset> = r.assets.iter().map(|&a| plant.assets[a].clone()).collect();
        let i = input(plant, r, &assets);
        if set.decide(&i) != set.decide_without_prefilter(&i) {
            return Err(format!(
                "pre-filter changed the decision for {:?}",
                r.scope.canonical()
            )
            .into());
        }
    }
    Ok(())
}

fn measure(set: &PolicySet, plant: &Plant, reqs: &[Req], prefilter: bool) -> Stats {
    let mut times = Vec::with_capacity(DECISIONS);
    let mut allowed = 0;
    for i in 0..WARMUP + DECISIONS {
        let r = &reqs[i % reqs.len()];
        let assets: Vec<Asset> = r.assets.iter().map(|&a| plant.assets[a].clone()).collect();
        let input = input(plant, r, &assets);
        let start = Instant::now();
        let d = if prefilter {
            set.decide(std::hint::black_box(&input))
        } else {
            set.decide_without_prefilter(std::hint::black_box(&input))
        };
        let d = std::hint::black_box(d);
        let t = start.elapsed();
        if i >= WARMUP {
            times.push(t);
            allowed += usize::from(d.allowed);
        }
    }
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    Stats {
        p50: at(0.50),
        p90: at(0.90),
        p99: at(0.99),
        p999: at(0.999),
        max: times[times.len() - 1],
        mean: times.iter().sum::<Duration>() / times.len() as u32,
        allowed,
    }
}

fn us(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let plant = plant(&mut rng);
    let reqs = requests(&plant, &mut rng)?;

    let t = Instant::now();
    let base = PolicySet::from_sources(default_sources())?;
    let base_load = t.elapsed();
    let mut sources = default_sources();
    sources.extend(generated_sources(&mut rng));
    let t = Instant::now();
    let big = PolicySet::from_sources(sources)?;
    let big_load = t.elapsed();

    verify(&base, &plant, &reqs)?;
    verify(&big, &plant, &reqs)?;

    let a_full = measure(&base, &plant, &reqs, false);
    let a = measure(&base, &plant, &reqs, true);
    let b_full = measure(&big, &plant, &reqs, false);
    let b = measure(&big, &plant, &reqs, true);

    println!("Decisions per row: {DECISIONS} (after {WARMUP} warm-up) over 1000 distinct requests, 20% naming two assets.");
    println!("Pre-filter verified: all 1000 requests decide identically with and without it, on both sets.\n");
    println!("| policy set | policies | evaluation | load | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | mean µs | allowed |");
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, set, mode, load, s) in [
        (
            "default (baseline)",
            &base,
            "all policies",
            base_load,
            &a_full,
        ),
        ("default", &base, "pre-filtered", base_load, &a),
        (
            "default + 500 generated",
            &big,
            "all policies",
            big_load,
            &b_full,
        ),
        (
            "default + 500 generated",
            &big,
            "pre-filtered",
            big_load,
            &b,
        ),
    ] {
        println!(
            "| {name} | {} | {mode} | {:.1} ms | {} | {} | {} | {} | {} | {} | {:.0}% |",
            set.len(),
            load.as_secs_f64() * 1e3,
            us(s.p50),
            us(s.p90),
            us(s.p99),
            us(s.p999),
            us(s.max),
            us(s.mean),
            100.0 * s.allowed as f64 / DECISIONS as f64
        );
    }
    let ratio = |x: &Stats, y: &Stats| {
        format!(
            "p50 ×{:.2}, p99 ×{:.2}",
            x.p50.as_secs_f64() / y.p50.as_secs_f64(),
            x.p99.as_secs_f64() / y.p99.as_secs_f64()
        )
    };
    println!("\nRatios to the baseline (default set, all policies evaluated):");
    println!("- default, pre-filtered: {}", ratio(&a, &a_full));
    println!("- default + 500, all policies: {}", ratio(&b_full, &a_full));
    println!("- default + 500, pre-filtered: {}", ratio(&b, &a_full));
    Ok(())
}
