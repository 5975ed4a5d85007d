//! The server-side verbs: `serve`, `up` (quickstart), `check` and `policy test`. They run
//! locally and never talk to a remote server; the client verbs live in `client/`.

use crate::output::outln;
use anyhow::{bail, Context};
use clap::Args;
use jitgate_core::event::Actor;
use jitgate_core::{IdentityKind, Inventory, SystemClock};
use jitgate_server::config::ServerConfig;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The sample plant loaded by `jitgate up` (two sites, PLCs, RTU, HMI, EWS, a vendor, a workload).
pub const SAMPLE_INVENTORY: &str = include_str!("../../../examples/plant.toml");
const CREDENTIALS_FILE: &str = "bootstrap-credentials.toml";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file (TOML); see docs/configuration.md.
    #[arg(long, short, env = "JITGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Listen address, overriding the file and JITGATE_LISTEN.
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Database URL (`sqlite://...` or `postgres://...`), overriding the file and env.
    #[arg(long)]
    pub database_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// The configuration file `jitgate serve` uses (its database and inventory).
    #[arg(long, short, env = "JITGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Database URL, overriding the file and env.
    #[arg(long)]
    pub database_url: Option<String>,
    /// The administrator: a person with the `admin` role in the inventory.
    #[arg(long, value_name = "ID")]
    pub admin: String,
    /// Read the password from stdin instead of generating one.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Data directory for the embedded SQLite database and the bootstrap credentials.
    #[arg(long, default_value = "./jitgate-data")]
    pub data_dir: PathBuf,
    /// Listen address of the API.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Directory of `*.cedar` policies to use instead of the built-in set; edit them and run
    /// `jitgate policy reload` (active grants the new set no longer allows end at once).
    #[arg(long)]
    pub policies: Option<PathBuf>,
    /// Serve HTTPS with a CA and server certificate generated in the data directory (their
    /// fingerprint is printed; clients pin it). Needed to listen off loopback.
    #[arg(long)]
    pub tls: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Configuration file (TOML).
    #[arg(long, short, env = "JITGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Inventory file to validate (default: the one named in the config, if any).
    #[arg(long)]
    pub inventory: Option<PathBuf>,
    /// Policy directory to validate (default: the one in the config, else the built-in set).
    #[arg(long)]
    pub policies: Option<PathBuf>,
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("JITGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn load_config(path: Option<&Path>) -> anyhow::Result<ServerConfig> {
    Ok(ServerConfig::load(path, |k| std::env::var(k).ok())?)
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_tracing();
    let mut config = load_config(args.config.as_deref())?;
    if let Some(l) = args.listen {
        config.listen = l;
    }
    if let Some(u) = args.database_url {
        config.database_url = Some(u);
    }
    config.validate()?;
    let server = jitgate_server::start(config, Arc::new(SystemClock)).await?;
    match &server.tls {
        Some(tls) => {
            eprintln!("jitgate listening on https://{}", server.addr);
            print_tls(tls);
        }
        None => eprintln!("jitgate listening on http://{}", server.addr),
    }
    server.run_until_signal().await;
    Ok(())
}

/// `jitgate bootstrap`: start the server's state on the configured database (migrations,
/// inventory, keys) without serving anyone — on a loopback port of its own, under a node
/// name of its own, so a running node is not disturbed — set the first password, stop.
pub async fn bootstrap(args: BootstrapArgs) -> anyhow::Result<()> {
    init_tracing();
    let mut config = load_config(args.config.as_deref())?;
    if let Some(u) = args.database_url {
        config.database_url = Some(u);
    }
    config.validate()?;
    config.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    config.cluster.node_id = Some(format!(
        "{}/bootstrap",
        config.cluster.node_id(config.listen)
    ));
    let (password, generated) = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        (line.trim_end_matches(['\r', '\n']).to_string(), false)
    } else {
        (jitgate_server::auth::random_password(), true)
    };
    let server = jitgate_server::start(config, Arc::new(SystemClock)).await?;
    let done = jitgate_server::login::bootstrap_admin(&server.state, &args.admin, &password).await;
    server.stop().await.close().await;
    done?;
    if generated {
        outln!("{password}");
        eprintln!(
            "administrator {} can sign in with the password above (shown once): \
             jitgate --server <url> login {}",
            args.admin, args.admin
        );
    } else {
        eprintln!("administrator {} can sign in", args.admin);
    }
    Ok(())
}

/// Passwords of the quickstart's bootstrap users (and the workload's API key), kept in the
/// data directory with owner-only permissions so a second `up` can show them again.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct BootstrapCredentials {
    passwords: std::collections::BTreeMap<String, String>,
    api_keys: std::collections::BTreeMap<String, String>,
}

/// What clients need to pin the server (stderr: the walkthrough goes to stdout).
fn print_tls(tls: &jitgate_server::tls::TlsInfo) {
    eprintln!(
        "TLS certificate {}{}",
        tls.cert_file.display(),
        if tls.generated {
            " (generated now)"
        } else {
            ""
        }
    );
    eprintln!("TLS certificate fingerprint: {}", tls.fingerprint);
    if let Some(ca) = &tls.ca_file {
        eprintln!("TLS CA certificate: {}", ca.display());
    }
    eprintln!(
        "Clients pin it: `jitgate login --server-fingerprint {fp}`, gateways \
         `server_fingerprint = \"{fp}\"` in gateway.toml",
        fp = tls.fingerprint
    );
}

pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    init_tracing();
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create data directory {}", args.data_dir.display()))?;
    let mut config = ServerConfig {
        listen: args.listen,
        data_dir: args.data_dir.clone(),
        policy_dir: args.policies.clone(),
        tls: jitgate_server::tls::TlsConfig {
            enabled: args.tls,
            ..Default::default()
        },
        ..ServerConfig::default()
    };
    // `[limits]` from `JITGATE_LIMITS_*`, as `serve` takes them (the quickstart has no file).
    config.limits.apply_env(&|k: &str| std::env::var(k).ok())?;
    // Witnesses of the evidence log (docs/evidence.md), as `serve` takes them.
    if let Ok(v) = std::env::var("JITGATE_EVIDENCE_WITNESSES") {
        config.evidence.witnesses = v.split_whitespace().map(str::to_string).collect();
        config
            .evidence
            .validate()
            .map_err(|m| anyhow::anyhow!("JITGATE_EVIDENCE_WITNESSES: {m}"))?;
    }
    let inventory = Inventory::from_toml(SAMPLE_INVENTORY)
        .context("the embedded sample inventory is invalid")?;
    let server = jitgate_server::start(config, Arc::new(SystemClock)).await?;
    // The sample plant goes only into an empty data directory. Loading it again on every
    // start would undo what the plant's people changed since: an identity security disabled
    // would come back active, an asset an admin moved would point back at its sample address.
    let stored = {
        let mut tx = server.state.store.read().await?;
        tx.list_identities().await?.len()
    };
    if stored == 0 {
        jitgate_server::service::load_inventory(&server.state, Actor::system(), &inventory).await?;
    } else {
        eprintln!(
            "keeping the inventory in {} ({stored} identities); the sample plant is loaded only into an empty data directory",
            args.data_dir.display()
        );
    }
    let creds = bootstrap_credentials(&server.state, &inventory, &args.data_dir).await?;
    if let Some(tls) = &server.tls {
        print_tls(tls);
    }
    print_walkthrough(
        &server.addr.to_string(),
        server.tls.as_ref().map(|t| t.fingerprint.as_str()),
        &creds,
        &args.data_dir,
    );
    server.run_until_signal().await;
    Ok(())
}

async fn bootstrap_credentials(
    state: &jitgate_server::state::AppState,
    inventory: &Inventory,
    data_dir: &Path,
) -> anyhow::Result<BootstrapCredentials> {
    let path = data_dir.join(CREDENTIALS_FILE);
    let pending = data_dir.join(format!("{CREDENTIALS_FILE}.new"));
    // A `.new` file left by an interrupted start holds passwords that may be committed:
    // it is a superset of the final file, so prefer it.
    let source = if pending.exists() { &pending } else { &path };
    let mut creds: BootstrapCredentials = match std::fs::read_to_string(source) {
        Ok(text) => toml::from_str(&text).with_context(|| {
            format!(
                "{} is damaged; delete it and the data directory to start afresh",
                source.display()
            )
        })?,
        Err(_) => BootstrapCredentials::default(),
    };
    let mut tx = state.store.write().await?;
    for identity in &inventory.identities {
        match identity.kind {
            IdentityKind::Workload => {
                if !creds.api_keys.contains_key(&identity.id) {
                    let key = jitgate_server::auth::new_token(jitgate_server::auth::API_KEY_PREFIX);
                    tx.insert_api_key(&jitgate_store::ApiKeyRecord {
                        id: jitgate_server::service::new_id("key"),
                        identity: identity.id.clone(),
                        name: "quickstart".into(),
                        key_hash: jitgate_server::auth::token_hash(&key),
                        created_at: chrono::Utc::now(),
                        revoked: false,
                        // Minted by the quickstart itself, for its own sample workload.
                        minted_by: None,
                        expires_at: Some(
                            chrono::Utc::now()
                                + chrono::Duration::days(
                                    jitgate_server::api::api_keys::DEFAULT_LIFETIME_DAYS,
                                ),
                        ),
                    })
                    .await?;
                    creds.api_keys.insert(identity.id.clone(), key);
                }
            }
            _ => {
                if tx.get_password(&identity.id).await?.is_none() {
                    let password = jitgate_server::auth::random_password();
                    tx.set_password(
                        &identity.id,
                        &jitgate_server::auth::hash_password(&password)?,
                    )
                    .await?;
                    creds.passwords.insert(identity.id.clone(), password);
                }
            }
        }
    }
    // Write the passwords down before committing them (a password nobody can read back is
    // worse than none), and publish the file under its final name only once they are
    // committed, so whoever reads it can log in with what it says.
    write_private(&pending, &toml::to_string(&creds)?)?;
    tx.commit().await?;
    std::fs::rename(&pending, &path)
        .with_context(|| format!("cannot move {} to {}", pending.display(), path.display()))?;
    Ok(creds)
}

pub(crate) fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

fn print_walkthrough(
    addr: &str,
    fingerprint: Option<&str>,
    creds: &BootstrapCredentials,
    data_dir: &Path,
) {
    let scheme = if fingerprint.is_some() {
        "https"
    } else {
        "http"
    };
    // Over TLS, a non-interactive login names the certificate it trusts.
    let pin = fingerprint
        .map(|fp| format!(" --server-fingerprint {fp}"))
        .unwrap_or_default();
    let pw = |id: &str| {
        creds
            .passwords
            .get(id)
            .cloned()
            .unwrap_or_else(|| "<see credentials file>".into())
    };
    outln!(
        r#"
jitgate is running at {scheme}://{addr} (SQLite in {dir}; Ctrl-C stops it).
Web console: {scheme}://{addr}/console/ (sign in with the passwords below).

Sample plant loaded: sites north and south, safety PLC plc-7, RTU, HMI, engineering
workstation, a legacy asset, vendor vera (acme-automation), workload svc-historian.
Bootstrap passwords are in {dir}/{CREDENTIALS_FILE} (owner-only).

Walkthrough — in another terminal:

  export JITGATE_SERVER={scheme}://{addr}

  # 1. alice (engineer, site north) asks to read PLC-7's holding registers for an hour
  echo '{alice}' | jitgate --profile alice.toml login --identity alice --password-stdin{pin}
  jitgate --profile alice.toml request --asset plc-7 --modbus 'read holding 0-99 unit 1' \
      --for 1h --reason "check valve positions" --ref WO-1234

  # 2. bob, a second engineer at the site, sees it waiting and approves it
  echo '{bob}' | jitgate --profile bob.toml login --identity bob --password-stdin{pin}
  jitgate --profile bob.toml requests --awaiting-me
  jitgate --profile bob.toml approve <request-id> --comment "ok for WO-1234"

  # 3. the grant is active
  jitgate --profile alice.toml grants

  # 4. sam (security) revokes it; the event log shows every step
  echo '{sam}' | jitgate --profile sam.toml login --identity sam --password-stdin{pin}
  jitgate --profile sam.toml revoke <grant-id> --reason "walkthrough finished"
  jitgate --profile sam.toml events --request <request-id>

  # DNP3: alice reads rtu-12's static data, carol (engineer, site south) approves; with
  # `jitgate gateway` running for gw-north and a DNP3 outstation at 127.0.0.1:20000
  # (cargo run -p jitgate-gateway --features sim --example sim_rtu), any DNP3 master polls
  # class 0 on 127.0.0.1:20001 (README.md, "Walkthrough")
  jitgate --profile alice.toml request --asset rtu-12 --dnp3 'read class 0' --for 1h \
      --reason "check feeder readings" --ref WO-2001
  echo '{carol}' | jitgate --profile carol.toml login --identity carol --password-stdin{pin}
  jitgate --profile carol.toml approve <request-id>
  jitgate --profile alice.toml connect <grant-id> --protocol dnp3 --listen 127.0.0.1:20001
"#,
        dir = data_dir.display(),
        alice = pw("alice"),
        bob = pw("bob"),
        sam = pw("sam"),
        carol = pw("carol"),
    );
}

pub async fn check(args: CheckArgs) -> anyhow::Result<()> {
    let config = load_config(args.config.as_deref())?;
    outln!(
        "config: ok ({})",
        args.config
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "defaults".into())
    );
    let policy_dir = args.policies.or(config.policy_dir.clone());
    let loaded = jitgate_server::policy::load(policy_dir.as_deref())?;
    outln!(
        "policies: ok — {} policies from {}, hash {}",
        loaded.set.len(),
        loaded.source,
        loaded.set.hash()
    );
    for w in loaded.set.warnings() {
        outln!("  warning: {w}");
    }
    match args.inventory.or(config.inventory.clone()) {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read inventory {}", path.display()))?;
            let inv = Inventory::from_toml(&text)
                .with_context(|| format!("inventory {}", path.display()))?;
            outln!(
                "inventory: ok — {} sites, {} orgs, {} identities, {} assets ({})",
                inv.sites.len(),
                inv.orgs.len(),
                inv.identities.len(),
                inv.assets.len(),
                path.display()
            );
            if !config.federation.issuers.is_empty() {
                config
                    .federation
                    .check_identities(&inv.identities)
                    .map_err(anyhow::Error::msg)?;
                outln!(
                    "federation: ok — {} trusted issuer(s), every binding names a workload",
                    config.federation.issuers.len()
                );
            }
            if !config.sso.providers.is_empty() || !config.sso.sso_only.is_empty() {
                config
                    .sso
                    .check_identities(&inv.identities)
                    .map_err(anyhow::Error::msg)?;
                outln!(
                    "sso: ok — {} provider(s), every mapping rule names a person and no two                      can map one login to different identities",
                    config.sso.providers.len()
                );
            }
        }
        None => outln!("inventory: none configured (pass --inventory to check a file)"),
    }
    Ok(())
}

/// `jitgate policy test`: evaluate scenarios against a policy set and an inventory, locally.
pub fn policy_test(
    scenarios: &Path,
    policies: Option<&Path>,
    inventory: Option<&Path>,
    json: bool,
) -> anyhow::Result<()> {
    let loaded = jitgate_server::policy::load(policies)?;
    let inv_text = match inventory {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("cannot read inventory {}", p.display()))?,
        None => SAMPLE_INVENTORY.to_string(),
    };
    let inv = Inventory::from_toml(&inv_text)?;
    let text = std::fs::read_to_string(scenarios)
        .with_context(|| format!("cannot read scenarios {}", scenarios.display()))?;
    let results = jitgate_policy::run_scenarios(&loaded.set, &inv, &text)?;
    let failed = results.iter().filter(|r| !r.passed).count();
    if json {
        let out: Vec<_> = results
            .iter()
            .map(|r| serde_json::json!({"name": r.name, "passed": r.passed, "decision": r.decision, "message": r.message}))
            .collect();
        crate::output::json(&serde_json::Value::Array(out));
    } else {
        let mut table = comfy_table::Table::new();
        table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
        table.set_header([
            "result",
            "scenario",
            "decision",
            "determining policies",
            "obligations / reasons",
        ]);
        for r in &results {
            let d = &r.decision;
            let detail = if d.allowed {
                let o = &d.obligations;
                format!(
                    "{} approval(s){}{}, max {}{}{}",
                    o.approvals,
                    if o.approver_roles.is_empty() {
                        String::new()
                    } else {
                        format!(" by {}", o.approver_roles.join("+"))
                    },
                    match &o.approver_site {
                        Some(jitgate_core::ApproverSite::Asset) =>
                            " of the asset's site".to_string(),
                        Some(jitgate_core::ApproverSite::Named(s)) => format!(" of site {s}"),
                        None => String::new(),
                    },
                    jitgate_policy::format_duration(o.max_duration_secs),
                    if o.step_up { ", step-up" } else { "" },
                    if o.review { ", review" } else { "" },
                )
            } else {
                d.reasons.join("; ")
            };
            let detail = match &r.message {
                Some(m) => format!("{detail}\n✗ {m}"),
                None => detail,
            };
            table.add_row([
                if r.passed { "pass" } else { "FAIL" }.to_string(),
                r.name.clone(),
                if d.allowed { "allow" } else { "deny" }.to_string(),
                d.determining_policies.join(", "),
                detail,
            ]);
        }
        outln!("{table}");
        outln!("{} passed, {} failed", results.len() - failed, failed);
    }
    if failed > 0 {
        bail!("{failed} scenario(s) did not decide as expected");
    }
    Ok(())
}
