//! Who you are: `login`, `logout`, `whoami`, `totp enroll|confirm`, `apikey create`.

use super::http::{decode, CliError};
use super::profile::{self, Source};
use super::text::{self, list_or_dash, Detail};
use super::{prompt, settings_summary, usage, Ctx};
use crate::output::{out, outln};
use clap::{Args, Subcommand};
use jitgate_gateway::server_trust::ServerTrust;
use jitgate_server::api::api_keys::{ApiKeyView, RevokeApiKeyBody};
use jitgate_server::api::types::{
    ApiKeyCreateBody, ApiKeyCreated, FederateBody, LoginBody, LoginResponse, TotpCodeBody,
    TotpEnrollResponse, WhoAmI,
};

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Identity to log in as, e.g. alice (default: the identity saved in the profile).
    #[arg(long, value_name = "ID")]
    pub identity: Option<String>,

    /// Read the password from the first line of stdin instead of asking on the terminal.
    #[arg(long)]
    pub password_stdin: bool,

    /// Current TOTP code; asked for on the terminal when the server requires one.
    #[arg(long, value_name = "CODE", value_parser = text::parse_totp)]
    pub totp: Option<String>,

    /// For workloads: exchange the JWT in this file, issued by a platform the server trusts
    /// (CI job token, Kubernetes projected service-account token, SPIFFE JWT-SVID), for a
    /// short-lived session of the workload its claims are bound to. No password and no API
    /// key; each token is taken once (docs/federation.md).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["identity", "password_stdin", "totp", "federated_token_env"])]
    pub federated_token_file: Option<std::path::PathBuf>,

    /// Like --federated-token-file, with the JWT in this environment variable (e.g.
    /// CI_JOB_JWT_V2 or a variable your pipeline sets from the platform's id_token).
    #[arg(long, value_name = "VAR", conflicts_with_all = ["identity", "password_stdin", "totp"])]
    pub federated_token_env: Option<String>,

    /// For people: sign in through the server's OpenID provider (single sign-on). The CLI
    /// listens on 127.0.0.1 (a free port), prints the provider's sign-in URL to open in a
    /// browser on this machine, and saves the session once the browser comes back. No
    /// password is sent to jitgate (docs/sso.md).
    #[arg(long, conflicts_with_all = ["identity", "password_stdin", "totp", "federated_token_file", "federated_token_env"])]
    pub sso: bool,

    /// With --sso: which provider (`[[sso.providers]]` name); needed only when the server
    /// has several.
    #[arg(long, value_name = "NAME", requires = "sso")]
    pub provider: Option<String>,
}

impl LoginArgs {
    /// The federated token, when one of the two options is given.
    fn federated_token(&self) -> Result<Option<String>, CliError> {
        let token = if let Some(path) = &self.federated_token_file {
            std::fs::read_to_string(path).map_err(|e| {
                CliError::Usage(format!(
                    "--federated-token-file {}: {e}; point it at the file your platform \
                     writes the token to",
                    path.display()
                ))
            })?
        } else if let Some(var) = &self.federated_token_env {
            std::env::var(var).map_err(|_| {
                CliError::Usage(format!(
                    "--federated-token-env {var}: the variable is not set (or not UTF-8); \
                     have the platform put its token there"
                ))
            })?
        } else {
            return Ok(None);
        };
        let token = token.trim().to_string();
        if token.is_empty() {
            return Err(CliError::Usage(
                "the federated token is empty; the platform has not written it yet".into(),
            ));
        }
        Ok(Some(token))
    }
}

#[derive(Debug, Subcommand)]
pub enum TotpCmd {
    /// Start enrolment: prints a secret and an otpauth:// URL for your authenticator app.
    #[command(after_help = "Example:\n  jitgate totp enroll")]
    Enroll,
    /// Finish enrolment with the code your app now shows.
    #[command(after_help = "Example:\n  jitgate totp confirm 123456")]
    Confirm {
        /// The 6-digit code your authenticator app shows.
        #[arg(value_parser = text::parse_totp)]
        code: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCmd {
    /// Create an API key for a workload; the key is printed once.
    #[command(
        after_help = "Example:\n  jitgate apikey create --identity svc-historian --name nightly-export"
    )]
    Create {
        /// The workload identity the key authenticates.
        #[arg(long, value_name = "ID")]
        identity: String,
        /// A name for the key, saying where it is used.
        #[arg(long)]
        name: String,
        /// How long the key works, e.g. 30d (default 90d, at most 365d). A key also stops
        /// working when its workload or you (its minter) are disabled.
        #[arg(long, value_name = "DURATION")]
        expires_in: Option<String>,
    },
    /// List API keys (never their secrets): yours, your workloads', or all for admins,
    /// security and auditors.
    #[command(
        after_help = "Examples:\n  jitgate apikey list\n  jitgate apikey list --identity svc-historian"
    )]
    List {
        /// Only the keys of this workload.
        #[arg(long, value_name = "ID")]
        identity: Option<String>,
        #[command(flatten)]
        page: super::PageArgs,
    },
    /// Revoke an API key at once. Requests filed with it that are still pending or approved
    /// lapse, and grants issued from them end.
    #[command(
        after_help = "Example:\n  jitgate apikey revoke key-k3m9x2p7qa4d --reason \"laptop lost\""
    )]
    Revoke {
        /// The key's id (from `jitgate apikey list`), not the key itself.
        id: String,
        /// Why (recorded in the evidence log).
        #[arg(long)]
        reason: String,
    },
}

pub async fn login(ctx: &Ctx, args: LoginArgs) -> anyhow::Result<()> {
    let federated = args.federated_token()?;
    let identity = match &federated {
        Some(_) => String::new(),
        None if args.sso => String::new(),
        None => args
            .identity
            .clone()
            .or_else(|| ctx.settings.profile.identity.clone())
            .ok_or_else(|| usage("which identity? pass --identity NAME, e.g. --identity alice"))?,
    };
    let path = ctx.settings.profile_path.clone().ok_or_else(|| {
        usage("no place to save the profile: pass --profile PATH or set HOME / XDG_CONFIG_HOME")
    })?;
    // Over TLS, decide which certificate to trust before anything secret is sent.
    // A CA file pins by itself (the chain and name are checked at every connection); a
    // fingerprint is shown and confirmed.
    let ca_file = match &ctx.settings.server_ca_file {
        Some(ca) => Some(
            std::path::absolute(ca)
                .map_err(|e| CliError::Usage(format!("--server-ca-file {}: {e}", ca.display())))?,
        ),
        None => None,
    };
    let pinned = match ca_file {
        Some(_) => None,
        None => confirm_server_certificate(ctx).await?,
    };
    let trust = match (&pinned, &ca_file) {
        (Some(fp), _) => Some(ServerTrust::Fingerprint(fp.clone())),
        (None, Some(ca)) => Some(ServerTrust::CaFile(ca.clone())),
        (None, None) => None,
    };
    let http = super::http::Client::with_trust(&ctx.http.server(), None, trust)?;
    if args.sso {
        let raw = super::sso::login(&http, args.provider.clone()).await?;
        return save_session(ctx, &http, &path, pinned, ca_file, raw, false);
    }
    if let Some(token) = federated {
        let raw = http
            .post(&["auth", "federate"], &FederateBody { token })
            .await?;
        return save_session(ctx, &http, &path, pinned, ca_file, raw, true);
    }
    let password = prompt::password(
        args.password_stdin,
        &format!("Password for {identity}: "),
        false,
    )?;
    let mut body = LoginBody {
        identity: identity.clone(),
        password,
        totp: args.totp,
    };
    let raw = match http.post(&["auth", "login"], &body).await {
        Err(e)
            if e.api_code() == Some(jitgate_core::Code::TotpRequired.as_str())
                && body.totp.is_none() =>
        {
            // Every failed sign-in without a code is answered this way, so the server has
            // not said the identity has TOTP: ask, and let the person say they have none.
            if !prompt::can_prompt() {
                return Err(e
                    .with_hint(
                        "check the identity and password; if the identity has TOTP, pass \
                         --totp CODE",
                    )
                    .into());
            }
            match prompt::optional_totp("TOTP code (press Enter if you have no TOTP): ")? {
                Some(code) => {
                    body.totp = Some(code);
                    http.post(&["auth", "login"], &body).await?
                }
                None => {
                    return Err(CliError::Api {
                        status: 401,
                        code: jitgate_core::Code::Unauthenticated.as_str().into(),
                        message: "sign-in refused: the identity or password is wrong".into(),
                        hint: None,
                    }
                    .into())
                }
            }
        }
        other => other?,
    };
    save_session(ctx, &http, &path, pinned, ca_file, raw, false)
}

/// Save a session (password sign-in or federated token) in the profile and say so.
fn save_session(
    ctx: &Ctx,
    http: &super::http::Client,
    path: &std::path::Path,
    pinned: Option<String>,
    ca_file: Option<std::path::PathBuf>,
    raw: serde_json::Value,
    federated: bool,
) -> anyhow::Result<()> {
    let resp: LoginResponse = decode(raw.clone())?;
    let saved = profile::Profile {
        server: Some(http.server()),
        token: Some(resp.token.clone()),
        identity: Some(resp.identity.id.clone()),
        server_fingerprint: pinned,
        server_ca_file: ca_file,
    };
    profile::save(path, &saved)?;
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    outln!(
        "logged in as {} ({}) at {}; the session expires {}",
        resp.identity.id,
        resp.identity.kind.as_str(),
        ctx.http.server(),
        text::time(resp.expires_at)
    );
    outln!("token saved in {}", path.display());
    if matches!(ctx.settings.token_source, Some(Source::Env | Source::Flag)) {
        eprintln!(
            "note: a token from --token or JITGATE_TOKEN takes precedence over the profile; \
             drop it to use this session"
        );
    }
    if federated {
        outln!("authenticated with a federated token; run the command again for a new session once it expires");
    } else if !resp.totp_enrolled {
        outln!(
            "TOTP is not enrolled: approvals that require step-up need it. Run `jitgate totp enroll`."
        );
    }
    Ok(())
}

/// For an `https://` server: the fingerprint of the certificate it presents, shown, then
/// checked against `--server-fingerprint` / `JITGATE_SERVER_FINGERPRINT` / the profile's pin,
/// or confirmed by the person at the terminal. Without a terminal and without a pin, refused:
/// a script must say which certificate it trusts. `None` for plain `http://`.
async fn confirm_server_certificate(ctx: &Ctx) -> Result<Option<String>, CliError> {
    let url = super::http::normalise_server(&ctx.http.server())?;
    if url.scheme() != "https" {
        return Ok(None);
    }
    let host = url.host_str().unwrap_or_default().to_string();
    let port = url.port_or_known_default().unwrap_or(443);
    let presented = jitgate_gateway::server_trust::peer_fingerprint(&host, port)
        .await
        .map_err(|detail| CliError::Unreachable {
            url: ctx.http.server(),
            detail,
        })?;
    eprintln!(
        "server {} presents the TLS certificate {presented}",
        ctx.http.server()
    );
    if let Some(expected) = &ctx.settings.server_fingerprint {
        if *expected == presented {
            return Ok(Some(presented));
        }
        let from = ctx
            .settings
            .fingerprint_source
            .map(Source::label)
            .unwrap_or("settings");
        return Err(CliError::Untrusted(format!(
            "refusing the server at {}: it presents the certificate {presented}, but {expected} \
             is pinned (from {from}); nothing was sent. This is another server, or its \
             certificate was replaced: check the fingerprint with its operator before logging \
             in with --server-fingerprint set to the new one",
            ctx.http.server()
        )));
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Err(CliError::Usage(format!(
            "the server's certificate is not pinned yet and there is no terminal to confirm it \
             on: compare {presented} with the fingerprint `jitgate serve` printed, then pass \
             --server-fingerprint {presented}"
        )));
    }
    eprint!(
        "Compare it with the fingerprint the server's operator gave you (`jitgate serve` \
         prints it). Trust this certificate and pin it in the profile? [y/N] "
    );
    let mut answer = String::new();
    std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut answer)
        .map_err(|e| CliError::Usage(format!("cannot read the answer: {e}")))?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(Some(presented))
    } else {
        Err(CliError::Usage(
            "not confirmed: nothing was sent to the server".into(),
        ))
    }
}

pub async fn logout(ctx: &Ctx) -> anyhow::Result<()> {
    if ctx.settings.token.is_none() {
        return Err(usage("not logged in: there is no token to end"));
    }
    let result = ctx.http.post_empty(&["auth", "logout"]).await;
    // An expired session is as good as ended: still forget the token locally.
    let already_gone = matches!(&result, Err(CliError::Api { status: 401, .. }));
    let raw = match result {
        Err(_) if already_gone => serde_json::Value::Null,
        other => other?,
    };
    let mut cleared = None;
    if ctx.settings.token_source == Some(Source::Profile) {
        if let Some(path) = &ctx.settings.profile_path {
            let mut p = ctx.settings.profile.clone();
            p.token = None;
            profile::save(path, &p)?;
            cleared = Some(path.clone());
        }
    }
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    outln!(
        "{}",
        if already_gone {
            "the session had already ended"
        } else {
            "logged out"
        }
    );
    if let Some(path) = cleared {
        outln!("token removed from {}", path.display());
    }
    Ok(())
}

pub async fn whoami(ctx: &Ctx) -> anyhow::Result<()> {
    let raw = ctx.http.get(&["auth", "whoami"], &[]).await?;
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let me: WhoAmI = decode(raw)?;
    out!("{}", render_whoami(&me, &settings_summary(&ctx.settings)));
    Ok(())
}

pub fn render_whoami(me: &WhoAmI, settings: &[(String, String)]) -> String {
    let i = &me.identity;
    let mut d = Detail::new();
    d.row("identity", format!("{} ({})", i.id, i.kind.as_str()));
    if !i.name.is_empty() {
        d.row("name", i.name.clone());
    }
    d.row("org", i.org.clone().unwrap_or_else(|| "-".into()))
        .row("roles", list_or_dash(&i.roles))
        .row("groups", list_or_dash(&i.groups))
        .row("sites", list_or_dash(&i.sites))
        .row("status", if i.is_active() { "active" } else { "disabled" })
        .row(
            "auth",
            match (me.auth.as_str(), me.auth_method.as_str()) {
                ("api_key", _) => "workload API key".to_string(),
                ("session", "federated_jwt") => {
                    "session (federated token of the workload's platform)".to_string()
                }
                ("session", "oidc") => "session (single sign-on)".to_string(),
                ("session", _) => "session (password login)".to_string(),
                (other, _) => other.to_string(),
            },
        )
        .row(
            "totp",
            if me.totp_enrolled {
                "enrolled"
            } else {
                "not enrolled (run `jitgate totp enroll`)"
            },
        );
    for (k, v) in settings {
        d.row(k, v.clone());
    }
    d.render()
}

pub async fn totp(ctx: &Ctx, cmd: TotpCmd) -> anyhow::Result<()> {
    match cmd {
        TotpCmd::Enroll => {
            let raw = ctx.http.post_empty(&["auth", "totp", "enroll"]).await?;
            if ctx.printed_json(&raw) {
                return Ok(());
            }
            let e: TotpEnrollResponse = decode(raw)?;
            let mut d = Detail::new();
            d.row("secret", e.secret).row("otpauth URL", e.otpauth_url);
            out!("{}", d.render());
            outln!(
                "\nAdd the secret to your authenticator app (type it in, or turn the otpauth URL \
                 into a QR code),\nthen prove it works with: jitgate totp confirm <code>"
            );
        }
        TotpCmd::Confirm { code } => {
            let raw = ctx
                .http
                .post(&["auth", "totp", "confirm"], &TotpCodeBody { code })
                .await?;
            if ctx.printed_json(&raw) {
                return Ok(());
            }
            outln!("TOTP confirmed: approvals that require step-up will ask for a code");
        }
    }
    Ok(())
}

pub async fn apikey(ctx: &Ctx, cmd: ApiKeyCmd) -> anyhow::Result<()> {
    let (identity, name, expires_in) = match cmd {
        ApiKeyCmd::Create {
            identity,
            name,
            expires_in,
        } => (identity, name, expires_in),
        ApiKeyCmd::List { identity, page } => {
            let query: Vec<(&str, String)> =
                identity.into_iter().map(|id| ("identity", id)).collect();
            let raw = ctx.list(&["api-keys"], &query, &page).await?;
            if ctx.printed_json(&raw) {
                return Ok(());
            }
            let keys: Vec<ApiKeyView> = decode(raw)?;
            out!("{}", render_api_keys(&keys));
            return Ok(());
        }
        ApiKeyCmd::Revoke { id, reason } => {
            let raw = ctx
                .http
                .post(&["api-keys", &id, "revoke"], &RevokeApiKeyBody { reason })
                .await?;
            if ctx.printed_json(&raw) {
                return Ok(());
            }
            let k: ApiKeyView = decode(raw)?;
            outln!(
                "API key {} of {} is {}; requests filed with it no longer stand",
                k.id,
                k.identity,
                k.status
            );
            return Ok(());
        }
    };
    let body = ApiKeyCreateBody {
        identity: identity.clone(),
        name: name.clone(),
        expires_in,
    };
    let raw = ctx.http.post(&["api-keys"], &body).await?;
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let created: ApiKeyCreated = decode(raw)?;
    out!(
        "{}",
        render_api_key(&created, &identity, &name, &ctx.http.server())
    );
    Ok(())
}

/// The key list as a table (control characters are escaped when it is printed).
pub fn render_api_keys(keys: &[ApiKeyView]) -> String {
    if keys.is_empty() {
        return "no API keys you can see\n".into();
    }
    let mut out = format!(
        "{:<18} {:<18} {:<20} {:<12} {:<16} {}\n",
        "ID", "WORKLOAD", "NAME", "MINTED BY", "EXPIRES", "STATUS"
    );
    for k in keys {
        out.push_str(&format!(
            "{:<18} {:<18} {:<20} {:<12} {:<16} {}\n",
            k.id,
            k.identity,
            k.name,
            k.minted_by.as_deref().unwrap_or("-"),
            k.expires_at
                .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_else(|| "never".into()),
            k.status
        ));
    }
    out
}

pub fn render_api_key(k: &ApiKeyCreated, identity: &str, name: &str, server: &str) -> String {
    let expiry = k
        .expires_at
        .map(|t| format!(" It works until {}.", t.format("%Y-%m-%d %H:%M UTC")))
        .unwrap_or_default();
    format!(
        "API key {name} (id {id}) for {identity}.{expiry} It is shown only this once: store it now.\n\n  \
         {key}\n\nThe workload uses it as its token:\n  \
         export JITGATE_SERVER={server}\n  \
         export JITGATE_TOKEN='{key}'\n  \
         jitgate whoami\n",
        id = k.id,
        key = k.key
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::testdata;

    #[test]
    fn whoami_shows_identity_and_sources() {
        let me = WhoAmI {
            identity: testdata::identity("alice"),
            auth: "session".into(),
            auth_method: "password".into(),
            totp_enrolled: false,
        };
        let out = render_whoami(
            &me,
            &[("server".into(), "http://h:1 (from profile file)".into())],
        );
        assert!(out.contains("identity  alice (human)"), "{out}");
        assert!(out.contains("roles     engineer"), "{out}");
        assert!(out.contains("jitgate totp enroll"), "{out}");
        assert!(out.contains("http://h:1 (from profile file)"), "{out}");
    }

    #[test]
    fn api_key_is_shown_with_how_to_use_it() {
        let k = ApiKeyCreated {
            id: "key-1".into(),
            key: "jgk_secret".into(),
            expires_at: None,
        };
        let out = render_api_key(&k, "svc-historian", "nightly-export", "http://h:1");
        assert!(out.contains("export JITGATE_TOKEN='jgk_secret'"), "{out}");
        assert!(out.contains("only this once"), "{out}");
        assert!(out.contains("svc-historian"), "{out}");
    }
}

#[cfg(test)]
mod federated_tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrap {
        #[command(flatten)]
        login: LoginArgs,
    }

    #[test]
    fn a_federated_token_comes_from_a_file_or_a_variable_never_with_a_password() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "  header.payload.sig\n").unwrap();
        let w =
            Wrap::try_parse_from(["x", "--federated-token-file", file.to_str().unwrap()]).unwrap();
        assert_eq!(
            w.login.federated_token().unwrap().as_deref(),
            Some("header.payload.sig")
        );
        for clash in [
            vec!["--identity", "alice"],
            vec!["--password-stdin"],
            vec!["--federated-token-env", "V"],
        ] {
            let mut args = vec!["x", "--federated-token-file", "f"];
            args.extend(clash);
            assert!(Wrap::try_parse_from(&args).is_err(), "{args:?}");
        }
        let w =
            Wrap::try_parse_from(["x", "--federated-token-env", "JITGATE_NO_SUCH_VAR_X"]).unwrap();
        let err = w.login.federated_token().unwrap_err().to_string();
        assert!(err.contains("not set"), "{err}");
        std::fs::write(&file, "\n").unwrap();
        let w =
            Wrap::try_parse_from(["x", "--federated-token-file", file.to_str().unwrap()]).unwrap();
        assert!(
            w.login.federated_token().is_err(),
            "an empty token is refused"
        );
        let w = Wrap::try_parse_from(["x", "--identity", "alice"]).unwrap();
        assert_eq!(w.login.federated_token().unwrap(), None);
    }
}
