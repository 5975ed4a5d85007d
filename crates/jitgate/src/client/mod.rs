//! The client verbs: everything `jitgate` does by talking to a server's HTTP API.
//!
//! ## Layout
//! - [`http`]      — the only HTTP code: `/api/v1` URLs, bearer token, errors → exit codes.
//! - [`profile`]   — server/token/profile resolution (flag > env > profile file) and the
//!   0600 profile file `jitgate login` writes.
//! - [`text`]      — parsing of typed values (start times, durations, TOTP codes) and shared
//!   formatting (UTC times, humane durations, obligations in words, tables).
//! - [`prompt`]    — reading passwords and TOTP codes from the terminal or stdin.
//! - one module per area, each holding its clap arguments, handlers and views:
//!   [`auth`] (login, logout, whoami, totp, apikey), [`requests`] (request, requests, show,
//!   approve, deny, withdraw), [`grants`], [`events`], [`directory`] (identities, assets,
//!   sites, orgs, inventory), [`policy`], [`evidence`], [`campaigns`] (attest, attestations, campaign), [`reviews`] (review, reviews,
//!   notifications), [`exceptions`] (standing exceptions), [`findings`] (findings, standing), [`ssh`] (an OpenSSH certificate per run and the system `ssh`), [`recordings`]
//!   (list and play session recordings).
//!
//! Every handler fetches the raw JSON first, prints it as-is under `--json`, and otherwise
//! decodes it into the shared `jitgate_server::api::types` and renders it for people.

pub mod access;
pub mod account;
pub mod auth;
pub mod campaigns;
pub mod compliance;
pub mod directory;
pub mod events;
pub mod evidence;
pub mod exceptions;
pub mod findings;
pub mod grants;
pub mod http;
pub mod policy;
pub mod profile;
pub mod prompt;
pub mod recordings;
pub mod requests;
pub mod reviews;
pub mod ssh;
pub mod sso;
pub mod teardown;
pub mod text;
pub mod witness;

#[cfg(test)]
mod testdata;

use clap::{Args, Subcommand};
use http::{CliError, Client};
use profile::{Overrides, Settings, Source};
use serde_json::Value;
use std::path::PathBuf;

/// Options every verb accepts, before or after the verb.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Print the server's raw JSON response (pretty) instead of tables and text.
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,

    /// Server URL, e.g. http://127.0.0.1:8080 [env: JITGATE_SERVER; else the profile's]
    #[arg(
        long,
        global = true,
        value_name = "URL",
        help_heading = "Global options"
    )]
    pub server: Option<String>,

    /// Bearer token: a session token or a workload API key [env: JITGATE_TOKEN; else the
    /// profile's]
    #[arg(
        long,
        global = true,
        value_name = "TOKEN",
        help_heading = "Global options"
    )]
    pub token: Option<String>,

    /// Profile file [env: JITGATE_PROFILE; default: $XDG_CONFIG_HOME/jitgate/profile.toml,
    /// else ~/.config/jitgate/profile.toml]
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        help_heading = "Global options"
    )]
    pub profile: Option<PathBuf>,

    /// SHA-256 fingerprint of an https:// server's certificate (`sha256:…`, as `jitgate
    /// serve` prints it); a server presenting another certificate is refused [env:
    /// JITGATE_SERVER_FINGERPRINT; else the profile's, saved by `jitgate login`]
    #[arg(
        long,
        global = true,
        value_name = "SHA256",
        help_heading = "Global options"
    )]
    pub server_fingerprint: Option<String>,

    /// Or: a PEM CA certificate the https:// server's certificate must chain to (the plant's
    /// CA, or the server's data_dir/tls/ca-cert.pem); the server's name must match [env:
    /// JITGATE_SERVER_CA_FILE; else the profile's, saved by `jitgate login`]
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        help_heading = "Global options"
    )]
    pub server_ca_file: Option<PathBuf>,
}

impl GlobalArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            server: self.server.clone(),
            token: self.token.clone(),
            profile: self.profile.clone(),
            server_fingerprint: self.server_fingerprint.clone(),
            server_ca_file: self.server_ca_file.clone(),
        }
    }
}

/// `jitgate gateways ...`
#[derive(Subcommand, Debug)]
pub enum GatewaysAction {
    /// List gateways (the default).
    #[command(
        after_help = "Examples:\n  jitgate gateways list --json\n  jitgate gateways list --limit 20"
    )]
    List(PageArgs),
    /// Forget a gateway's client certificate (admins). Its calls are refused until it enrols
    /// again: delete `client-cert.pem` and `client-key.pem` in its state directory (or give it
    /// a new one) and restart it; it then enrols with its API key. Use this when a gateway
    /// host was replaced or its state directory lost, or to cut off a copied certificate.
    #[command(
        after_help = "Example:\n  jitgate gateways reset-enrolment gw-north --reason 'cabinet PC replaced'"
    )]
    ResetEnrolment {
        /// The gateway identity.
        gateway: String,
        /// Why (recorded in the evidence log).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Log in with your password (and TOTP code once enrolled), through the server's
    /// OpenID provider (--sso), or as a workload with a platform-issued JWT
    /// (--federated-token-file / --federated-token-env); saves the session token in the
    /// profile.
    #[command(after_help = "Examples:\n  \
        jitgate --server http://127.0.0.1:8080 login --identity alice\n  \
        jitgate login --sso                      # prints a URL to open in your browser\n  \
        jitgate login --sso --provider plant-idp\n  \
        printf '%s' \"$PW\" | jitgate login --identity alice --password-stdin --totp 123456\n  \
        jitgate login --federated-token-file /var/run/secrets/tokens/jitgate\n  \
        jitgate login --federated-token-env JITGATE_ID_TOKEN")]
    Login(auth::LoginArgs),

    /// End the session and remove its token from the profile (`--everywhere`: every
    /// session of yours).
    #[command(after_help = "Examples:\n  jitgate logout\n  jitgate logout --everywhere")]
    Logout(account::LogoutArgs),

    /// Change your password (the current one is needed, and your TOTP code once enrolled);
    /// your other sessions end.
    #[command(after_help = "Examples:\n  jitgate password\n  \
        printf '%s\\n%s\\n' \"$OLD\" \"$NEW\" | jitgate password --password-stdin --totp 123456")]
    Password(account::PasswordArgs),

    /// Show who the current token authenticates, and where server and token came from.
    #[command(after_help = "Example:\n  jitgate whoami")]
    Whoami,

    /// Enrol or confirm a TOTP authenticator (needed for step-up approvals).
    #[command(after_help = "Examples:\n  jitgate totp enroll\n  jitgate totp confirm 123456")]
    Totp {
        #[command(subcommand)]
        cmd: auth::TotpCmd,
    },

    /// Create API keys for workloads (service accounts, scripts, CI jobs).
    #[command(
        name = "apikey",
        after_help = "Example:\n  jitgate apikey create --identity svc-historian --name nightly-export"
    )]
    ApiKey {
        #[command(subcommand)]
        cmd: auth::ApiKeyCmd,
    },

    /// Ask for access to exact assets, protocols and operations, for a bounded time.
    #[command(after_help = "Examples:\n  \
        jitgate request --asset plc-7 --modbus 'read holding 0-99 unit 1' \\\n      \
        --modbus 'write coil 10-20 unit 1' --for 2h --reason 'replace valve positioner' \\\n      \
        --ref WO-1234 --start 2026-12-01T06:00Z\n  \
        jitgate request --asset rtu-3 --dnp3 'operate binary-output 3-5' --for 30m \\\n      \
        --reason 'breaker stuck open' --ref INC-88 --path emergency\n  \
        jitgate request --asset historian-1 --ssh 'command systemctl restart export' \\\n      \
        --for 15m --reason 'nightly export hung' --subject svc-historian\n\n\
        Exits with 1 when policy denies the request, so scripts notice.")]
    Request(requests::RequestArgs),

    /// List requests.
    #[command(after_help = "Examples:\n  jitgate requests --awaiting-me\n  \
        jitgate requests --state pending --mine")]
    Requests(requests::ListArgs),

    /// Show one request in full: scope, decision, approvals and grant.
    #[command(after_help = "Example:\n  jitgate show req-k3m9x2p7qa4d")]
    Show {
        /// Request id.
        request: String,
    },

    /// Approve a request: shows what you approve, then binds your approval to its scope digest.
    #[command(
        after_help = "Examples:\n  jitgate approve req-k3m9x2p7qa4d --comment 'checked WO-1234'\n  \
        jitgate approve req-k3m9x2p7qa4d --totp 123456\n\n\
        If the decision requires step-up and --totp is missing, you are asked for a code on \
        the terminal. Step-up with a passkey instead of a TOTP code is done in the web \
        console (Inbox, Use passkey; docs/passkeys.md)."
    )]
    Approve(requests::ApproveArgs),

    /// Deny a request, saying why.
    #[command(
        after_help = "Example:\n  jitgate deny req-k3m9x2p7qa4d --comment 'no work order for this'"
    )]
    Deny(requests::DenyArgs),

    /// Withdraw your own request before it is used.
    #[command(after_help = "Example:\n  jitgate withdraw req-k3m9x2p7qa4d")]
    Withdraw {
        /// Request id.
        request: String,
    },

    /// List grants (issued access) with their remaining time.
    #[command(after_help = "Examples:\n  jitgate grants --state active\n  jitgate grants --mine")]
    Grants(grants::ListArgs),

    /// Show one grant in full.
    #[command(after_help = "Example:\n  jitgate grant grant-7hq2m4x9wd3c")]
    Grant {
        /// Grant id.
        grant: String,
    },

    /// Revoke a grant now: it ends, and gateways refuse new sessions under it.
    #[command(
        after_help = "Example:\n  jitgate revoke grant-7hq2m4x9wd3c --reason 'work finished early'"
    )]
    Revoke {
        /// Grant id.
        grant: String,
        /// Why it is revoked (recorded in the evidence log).
        #[arg(long)]
        reason: String,
    },

    /// Show a grant's teardown: sessions closed, credential refused, downstream authorization
    /// gone — each check with its evidence, and the verdict (verified, partial, failed).
    #[command(
        after_help = "Examples:\n  jitgate teardown grant-7hq2m4x9wd3c\n  jitgate grants --state failed   # teardowns that failed (retried)"
    )]
    Teardown {
        /// Grant id.
        grant: String,
    },

    /// Gateways: whether their control channel (revocations) is up, their client
    /// certificate; reset a gateway's enrolment.
    #[command(
        after_help = "Examples:\n  jitgate gateways\n  jitgate gateways reset-enrolment gw-north --reason 'cabinet PC replaced'"
    )]
    Gateways {
        #[command(subcommand)]
        action: Option<GatewaysAction>,
    },

    /// Withdraw your approval of a request: it stops counting; if the grant is active it ends
    /// at once.
    #[command(
        after_help = "Example:\n  jitgate unapprove req-k3m9x2p7qa4d --reason 'work order cancelled'"
    )]
    Unapprove {
        /// Request id.
        request: String,
        /// Why (recorded in the evidence log).
        #[arg(long)]
        reason: String,
    },

    /// Say the task is done: ends your grant before it expires.
    #[command(after_help = "Example:\n  jitgate complete grant-7hq2m4x9wd3c")]
    Complete {
        /// Grant id.
        grant: String,
    },

    /// Complete a post-session review of a grant (break-glass, legacy asset): not as its
    /// subject or requester.
    #[command(after_help = "Examples:\n  \
        jitgate review grant-7hq2m4x9wd3c --outcome ok --note 'checked the session log with oscar'\n  \
        jitgate review grant-7hq2m4x9wd3c --outcome finding \\\n      \
        --note 'setpoint changed outside the incident; follow-up CH-231'\n\n\
        Security staff, admins and approvers of the request may complete reviews.")]
    Review(reviews::ReviewArgs),

    /// List post-session reviews: open, overdue or done.
    #[command(
        after_help = "Examples:\n  jitgate reviews --overdue\n  jitgate reviews --open\n  \
        jitgate reviews --done --grant grant-7hq2m4x9wd3c"
    )]
    Reviews(reviews::ReviewsArgs),

    /// Standing exceptions: access that must stay standing (batch jobs, break-glass
    /// accounts), owned, with compensating controls, re-validated, ending by itself.
    #[command(after_help = "Examples:\n  \
        jitgate exception request --subject svc-historian --asset historian \\\n      \
        --modbus 'read holding 0-999' --expires-in 180d --revalidate-every 30d \\\n      \
        --owner sam --control 'sessions recorded, reviewed weekly' --reason 'nightly export'\n  \
        jitgate exception list --state active\n  \
        jitgate exception revalidate exc-k3m9x2p7qa4d --note 'still feeds the QA report'\n  \
        jitgate exception end exc-k3m9x2p7qa4d --reason 'job retired'\n\n\
        See docs/exceptions.md.")]
    Exception {
        #[command(subcommand)]
        cmd: exceptions::ExceptionCmd,
    },

    /// Attest what was done under an ended grant (its subject, or a workload's owner; once).
    #[command(after_help = "Examples:\n  \
        jitgate attest grant-7hq2m4x9wd3c --done --change 'HR 40 setpoint 80 -> 75' \\\n      \
        --note 'valve positioner replaced'\n  \
        jitgate attest grant-7hq2m4x9wd3c --not-done --note 'part missing; WO-1234 stays open'")]
    Attest(campaigns::AttestArgs),

    /// List attestations given, or with --missing the required ones not given in time.
    #[command(
        after_help = "Examples:\n  jitgate attestations --missing\n  jitgate attestations --limit 20"
    )]
    Attestations(campaigns::AttestationsArgs),

    /// Review campaigns: open one over a period, decide its items (keep, narrow, end), close.
    #[command(after_help = "Examples:\n  \
        jitgate campaign open --from 2026-11-01T00:00Z --to 2026-12-01T00:00Z --site north\n  \
        jitgate campaign show campaign-k3m9x2p7qa4d\n  \
        jitgate campaign decide campaign-k3m9x2p7qa4d break_glass:grant-7hq2m4x9wd3c \\\n      \
        --decision end --note 'no incident number; access still open'\n  \
        jitgate campaign close campaign-k3m9x2p7qa4d\n\n\
        Security staff and admins run campaigns; nobody decides an item about their own access.")]
    Campaign {
        #[command(subcommand)]
        cmd: campaigns::CampaignCmd,
    },

    /// List outgoing webhook notifications and their delivery state (security, admin).
    #[command(after_help = "Examples:\n  jitgate notifications --pending\n  \
        jitgate notifications --webhook soc --limit 20 --json")]
    Notifications(reviews::NotificationsArgs),

    /// Findings of a period from the evidence: shared accounts, vendors used from two places
    /// at once, workloads used from changing sources, approvers who approve each other, and
    /// JIT access that became standing (security staff and auditors).
    #[command(
        after_help = "Examples:\n  jitgate findings                                  # the last 30 days\n  \
        jitgate findings --from 2026-11-01 --to 2026-12-01 --json\n\n\
        Each finding cites the evidence events that support it (#seq): show one with\n  \
        jitgate events --after 41 --limit 1      # event #42\n\
        Thresholds are the server's [findings] settings; see docs/findings.md."
    )]
    Findings(findings::PeriodArgs),

    /// The standing-privilege inventory of a period: everything that grants access outside
    /// a just-in-time grant (legacy local accounts, vaulted gateway keys, API keys without
    /// expiry, unused access, exceptions, JIT that became standing), with its exposure.
    #[command(after_help = "Examples:\n  jitgate standing\n  \
        jitgate standing --from 2026-11-01 --to 2026-12-01 --json\n\n\
        hours = hours of the period the access stood; see docs/findings.md for what to do\n\
        about each kind.")]
    Standing(findings::PeriodArgs),

    /// List evidence events (the hash-linked log of every transition).
    #[command(
        after_help = "Examples:\n  jitgate events --request req-k3m9x2p7qa4d\n  \
        jitgate events --after 120 --limit 50   # one page; the next: --cursor as printed"
    )]
    Events(events::EventsArgs),

    /// List, show, disable and enable identities; set passwords.
    #[command(
        after_help = "Examples:\n  jitgate identities\n  jitgate identities show alice\n  \
        jitgate identities disable vendor-bob --reason 'contract ended'\n  \
        jitgate identities set-password alice"
    )]
    Identities {
        #[command(subcommand)]
        cmd: Option<directory::IdentitiesCmd>,
    },

    /// List and show assets (PLCs, RTUs, HMIs, historians, jump hosts).
    #[command(after_help = "Examples:\n  jitgate assets\n  jitgate assets show plc-7")]
    Assets {
        #[command(subcommand)]
        cmd: Option<directory::AssetsCmd>,
    },

    /// List sites and their zones.
    #[command(after_help = "Example:\n  jitgate sites")]
    Sites(PageArgs),

    /// List organisations (the plant's own and suppliers).
    #[command(after_help = "Example:\n  jitgate orgs")]
    Orgs(PageArgs),

    /// Load an inventory file (sites, orgs, identities, assets) into the server.
    #[command(after_help = "Example:\n  jitgate inventory load inventory.toml")]
    Inventory {
        #[command(subcommand)]
        cmd: directory::InventoryCmd,
    },

    /// Show or reload the server's policy set, or test policies against scenarios.
    #[command(
        after_help = "Examples:\n  jitgate policy show\n  jitgate policy reload\n  \
        jitgate policy test scenarios.toml --policies ./policies --inventory inventory.toml"
    )]
    Policy {
        #[command(subcommand)]
        cmd: policy::PolicyCmd,
    },

    /// The tamper-evident log: verify it, sign checkpoints, manage the evidence key, export
    /// a grant's bundle; verify bundles and render reports offline.
    #[command(after_help = "Examples:\n  \
        jitgate evidence verify\n  \
        jitgate evidence export grant-7hq2m4x9wd3c -o bundle.json\n  \
        jitgate evidence public-key -o plant-1-evidence.pub\n  \
        jitgate evidence verify-bundle bundle.json --key plant-1-evidence.pub   # offline\n  \
        jitgate evidence report bundle.json --key plant-1-evidence.pub -o report.html\n\n\
        verify, chain and verify-bundle exit with 1 when something does not verify.")]
    Evidence {
        #[command(subcommand)]
        cmd: evidence::EvidenceCmd,
    },

    /// Open a local Modbus/TCP port tunnelled to an asset under your active grant.
    #[command(after_help = "Examples:\n  \
        jitgate connect grant-k3m9x2p7qa4d --listen 127.0.0.1:5020\n  \
        mbpoll -m tcp -p 5020 -a 1 -r 1 -c 10 127.0.0.1    # in another terminal\n\n\
        The token is bound to a key made for this run; it ends when the grant does.")]
    Connect(access::ConnectArgs),

    /// SSH to an asset under your active grant: a fresh key pair, an OpenSSH certificate
    /// from the server, then the system `ssh` through the gateway.
    #[command(after_help = "Examples:
          jitgate ssh grant-k3m9x2p7qa4d --gateway gw.plant.example:2222
          jitgate ssh grant-k3m9x2p7qa4d --asset ews-1 --gateway gw.plant.example:2222 -- -v
          jitgate ssh grant-k3m9x2p7qa4d --gateway gw.plant.example:2222 -- systemctl status plc-bridge
          jitgate ssh cert grant-k3m9x2p7qa4d --asset hmi-1 --out ./hmi-1-ssh
          jitgate ssh ca

        The key pair lives in a private temporary directory (0700, files 0600) removed when ssh exits.         The certificate names the grant (key id) and you (principal), lasts at most an hour and never past         the grant, and permits a terminal only for `shell` scope and forwarding only for `forward` scope;         never agent or X11 forwarding. `--gateway` (or JITGATE_SSH_GATEWAY) is the gateway's SSH listener;         ssh logs in as <asset>@<gateway host>. ssh's exit status is jitgate's.")]
    Ssh(ssh::SshArgs),

    /// Session recordings (asciicast v2): list them, play one in this terminal or write it.
    #[command(after_help = "Examples:\n  \
        jitgate recordings list --grant grant-k3m9x2p7qa4d\n  \
        jitgate recordings play sess-4hx8c2m9tq3z\n  \
        jitgate recordings play sess-4hx8c2m9tq3z --raw -o session.cast   # asciinema play session.cast")]
    Recordings {
        #[command(subcommand)]
        cmd: recordings::RecordingsCmd,
    },

    /// The server's token-signing keys: show them, rotate, or retire a leaked one (admin).
    #[command(
        after_help = "Examples:\n  jitgate keys show\n  jitgate keys rotate\n  jitgate keys retire k4.pid.Xy... --now"
    )]
    Keys {
        #[command(subcommand)]
        cmd: access::KeysCmd,
    },
}

/// What every handler needs: the HTTP client, the output mode and the settings in force.
#[derive(Debug)]
pub struct Ctx {
    pub http: Client,
    pub json: bool,
    pub settings: Settings,
}

/// `--limit` / `--cursor` of a list command. Without `--limit` the whole list is fetched,
/// page after page, so nothing is left out.
#[derive(Debug, Clone, Default, Args)]
pub struct PageArgs {
    /// Print one page of at most N items (and, on stderr, how to get the next) instead of
    /// the whole list.
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,

    /// Start after the page that printed this cursor.
    #[arg(long, value_name = "CURSOR")]
    pub cursor: Option<String>,
}

impl Ctx {
    /// GET a list: every page from `--cursor` (or the start) to the end, or with `--limit`
    /// one page, and on stderr the command line's flags for the next.
    pub async fn list(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        page: &PageArgs,
    ) -> Result<Value, CliError> {
        let mut q = query.to_vec();
        if let Some(c) = &page.cursor {
            q.push(("cursor", c.clone()));
        }
        let Some(n) = page.limit else {
            return self.http.get(segments, &q).await;
        };
        q.push(("limit", n.to_string()));
        let (items, next) = self.http.get_page(segments, &q).await?;
        if let Some(c) = next {
            eprintln!("more: run again with --limit {n} --cursor {c} for the next page");
        }
        Ok(items)
    }

    /// Under `--json`, print the raw response (pretty) and return `true`.
    pub fn printed_json(&self, raw: &Value) -> bool {
        if !self.json {
            return false;
        }
        if !raw.is_null() {
            crate::output::json(raw);
        }
        true
    }
}

/// Run one client verb.
pub async fn run(global: &GlobalArgs, cmd: ClientCommand) -> anyhow::Result<()> {
    // `policy test` works on local files and needs no server.
    let cmd = match cmd {
        ClientCommand::Policy {
            cmd:
                policy::PolicyCmd::Test {
                    scenarios,
                    policies,
                    inventory,
                },
        } => {
            return policy::test(scenarios, policies, inventory, global.json);
        }
        other => other,
    };
    // `evidence verify-bundle` and `evidence report` are for auditors: local files only,
    // no server, no profile.
    let cmd = match cmd {
        ClientCommand::Evidence { cmd } if cmd.is_offline() => {
            return evidence::offline(cmd, global.json);
        }
        other => other,
    };
    let settings = profile::resolve(&global.overrides(), &|k| std::env::var(k).ok())?;
    if settings.token_source == Some(Source::Profile) {
        if let Some(w) = settings
            .profile_path
            .as_deref()
            .and_then(profile::permission_warning)
        {
            eprintln!("warning: {w}");
        }
    }
    let http = Client::with_trust(
        &settings.server,
        settings.token.clone(),
        settings.server_trust(),
    )?;
    let ctx = Ctx {
        http,
        json: global.json,
        settings,
    };
    match cmd {
        ClientCommand::Login(args) => auth::login(&ctx, args).await,
        ClientCommand::Logout(a) if a.everywhere => account::logout_everywhere(&ctx).await,
        ClientCommand::Logout(_) => auth::logout(&ctx).await,
        ClientCommand::Password(a) => account::change_password(&ctx, a).await,
        ClientCommand::Whoami => auth::whoami(&ctx).await,
        ClientCommand::Totp { cmd } => auth::totp(&ctx, cmd).await,
        ClientCommand::ApiKey { cmd } => auth::apikey(&ctx, cmd).await,
        ClientCommand::Request(args) => requests::create(&ctx, args).await,
        ClientCommand::Requests(args) => requests::list(&ctx, args).await,
        ClientCommand::Show { request } => requests::show(&ctx, &request).await,
        ClientCommand::Approve(args) => requests::approve(&ctx, args).await,
        ClientCommand::Deny(args) => requests::deny(&ctx, args).await,
        ClientCommand::Withdraw { request } => requests::withdraw(&ctx, &request).await,
        ClientCommand::Grants(args) => grants::list(&ctx, args).await,
        ClientCommand::Grant { grant } => grants::show(&ctx, &grant).await,
        ClientCommand::Revoke { grant, reason } => grants::revoke(&ctx, &grant, reason).await,
        ClientCommand::Complete { grant } => grants::complete(&ctx, &grant).await,
        ClientCommand::Teardown { grant } => teardown::show(&ctx, &grant).await,
        ClientCommand::Gateways { action: None } => {
            teardown::gateways(&ctx, &PageArgs::default()).await
        }
        ClientCommand::Gateways {
            action: Some(GatewaysAction::List(page)),
        } => teardown::gateways(&ctx, &page).await,
        ClientCommand::Gateways {
            action: Some(GatewaysAction::ResetEnrolment { gateway, reason }),
        } => teardown::reset_enrolment(&ctx, &gateway, reason).await,
        ClientCommand::Unapprove { request, reason } => {
            teardown::unapprove(&ctx, &request, reason).await
        }
        ClientCommand::Events(args) => events::list(&ctx, args).await,
        ClientCommand::Review(args) => reviews::review(&ctx, args).await,
        ClientCommand::Reviews(args) => reviews::list(&ctx, args).await,
        ClientCommand::Exception { cmd } => exceptions::run(&ctx, cmd).await,
        ClientCommand::Notifications(args) => reviews::notifications(&ctx, args).await,
        ClientCommand::Attest(args) => campaigns::attest(&ctx, args).await,
        ClientCommand::Attestations(args) => campaigns::attestations(&ctx, args).await,
        ClientCommand::Campaign { cmd } => campaigns::campaign(&ctx, cmd).await,
        ClientCommand::Findings(args) => findings::findings(&ctx, args).await,
        ClientCommand::Standing(args) => findings::standing(&ctx, args).await,
        ClientCommand::Identities { cmd } => directory::identities(&ctx, cmd).await,
        ClientCommand::Assets { cmd } => directory::assets(&ctx, cmd).await,
        ClientCommand::Sites(page) => directory::sites(&ctx, &page).await,
        ClientCommand::Orgs(page) => directory::orgs(&ctx, &page).await,
        ClientCommand::Inventory { cmd } => directory::inventory(&ctx, cmd).await,
        ClientCommand::Policy { cmd } => policy::run(&ctx, cmd).await,
        ClientCommand::Evidence { cmd } => evidence::run(&ctx, cmd).await,
        ClientCommand::Connect(args) => access::connect(&ctx, args).await,
        ClientCommand::Keys { cmd } => access::keys(&ctx, cmd).await,
        ClientCommand::Ssh(args) => ssh::run(&ctx, args).await,
        ClientCommand::Recordings { cmd } => recordings::run(&ctx, cmd).await,
    }
}

/// Where the server and token in force came from, for `whoami`.
pub fn settings_summary(settings: &Settings) -> Vec<(String, String)> {
    let mut rows = vec![(
        "server".to_string(),
        format!(
            "{} (from {})",
            settings.server,
            settings.server_source.label()
        ),
    )];
    if let Some(source) = settings.token_source {
        rows.push(("token".into(), format!("from {}", source.label())));
    }
    if let (Some(fp), Some(source)) = (&settings.server_fingerprint, settings.fingerprint_source) {
        rows.push((
            "server certificate".into(),
            format!("{fp} (pinned, from {})", source.label()),
        ));
    }
    if let (Some(ca), Some(source)) = (&settings.server_ca_file, settings.ca_file_source) {
        rows.push((
            "server certificate".into(),
            format!(
                "chains to the CA in {} (from {})",
                ca.display(),
                source.label()
            ),
        ));
    }
    if let Some(path) = &settings.profile_path {
        rows.push(("profile".into(), path.display().to_string()));
    }
    rows
}

/// Map a local problem to the usage exit code.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    CliError::Usage(message.into()).into()
}
