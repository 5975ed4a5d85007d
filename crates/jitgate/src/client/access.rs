//! `jitgate connect` (open a local Modbus/TCP or DNP3 port tunnelled through the gateway
//! under an active grant) and `jitgate keys` (the server's token-signing keys).

use super::Ctx;
use crate::output::outln;
use clap::{Args, Subcommand};
use jitgate_core::scope::Protocol;
use jitgate_gateway::connect::{serve_local, Target};
use jitgate_gateway::wire::{TokenRequest, TokenResponse};
use jitgate_server::api::types::{KeyRetired, KeysInfo, RetireKeyBody};
use serde_json::Value;
use std::net::SocketAddr;

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The active grant to use (yours: only the grant's subject can connect).
    pub grant: String,
    /// Local address where Modbus/TCP clients or DNP3 masters connect. Loopback only,
    /// unless `--allow-remote` is given.
    #[arg(long, default_value = "127.0.0.1:5020")]
    pub listen: SocketAddr,
    /// Accept a non-loopback `--listen` address. The local port has no authentication of
    /// its own: anyone who can reach it uses the grant.
    #[arg(long)]
    pub allow_remote: bool,
    /// The asset to reach, when the grant covers several.
    #[arg(long)]
    pub asset: Option<String>,
    /// `modbus` or `dnp3`, when the grant gives both on the asset (otherwise the one it
    /// gives).
    #[arg(long, value_parser = parse_protocol)]
    pub protocol: Option<Protocol>,
}

fn parse_protocol(word: &str) -> Result<Protocol, String> {
    match word {
        "modbus" => Ok(Protocol::Modbus),
        "dnp3" => Ok(Protocol::Dnp3),
        "ssh" => Err("SSH has its own verb: jitgate ssh <grant>".into()),
        other => Err(format!("{other:?}: expected modbus or dnp3")),
    }
}

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Show the token-signing keys gateways accept.
    #[command(after_help = "Example:\n  jitgate keys show")]
    Show,
    /// Add a new signing key; old keys keep verifying until their tokens have expired (admin).
    #[command(
        after_help = "Example:\n  jitgate keys rotate\n\nGateways pick up the new key within 30 s, or at once when they meet a token signed by it."
    )]
    Rotate,
    /// Retire a token-signing key now, because it leaked (admin).
    #[command(
        long_about = "Retire a token-signing key now, because it leaked (admin).\n\n\
Every connected gateway is told at once: tokens signed by the key are refused (key_retired) \
and live sessions opened with one are cut. A gateway that is not connected refuses the key \
as soon as it reconnects. The current signing key cannot be retired: rotate first.\n\n\
--now is required: there is no delayed variant, because `jitgate keys rotate` already \
retires the previous key once every token it signed has expired (30 days). The flag is \
there so that nobody cuts live sessions by accident.",
        after_help = "Example (a leaked key):\n  jitgate keys rotate\n  jitgate keys retire k4.pid.Xy... --now\n\nSubjects whose sessions are cut get a new token by running `jitgate connect` again."
    )]
    Retire {
        /// The key id (`k4.pid.…`), as `jitgate keys show` lists it.
        kid: String,
        /// Retire it now (required; see above).
        #[arg(long, required = true)]
        now: bool,
    },
}

/// The local port carries the grant to whoever reaches it: loopback only, unless the user
/// says otherwise with `--allow-remote`.
fn check_listen(listen: SocketAddr, allow_remote: bool) -> Result<(), super::http::CliError> {
    if listen.ip().is_loopback() || allow_remote {
        return Ok(());
    }
    Err(super::http::CliError::Usage(format!(
        "--listen {listen} is not a loopback address: the local port has no authentication of \
         its own, so anyone who can reach {listen} would use this grant. Listen on \
         127.0.0.1:{port} (or [::1]:{port}), or pass --allow-remote if the network in front of \
         this port is trusted",
        port = listen.port()
    )))
}

fn decode<T: serde::de::DeserializeOwned>(raw: Value) -> anyhow::Result<T> {
    serde_json::from_value(raw)
        .map_err(|e| anyhow::anyhow!("unexpected answer from the server: {e}"))
}

pub async fn connect(ctx: &Ctx, args: ConnectArgs) -> anyhow::Result<()> {
    check_listen(args.listen, args.allow_remote)?;
    // A fresh key pair for this connection's lifetime: the token is useless without it, and
    // it never leaves this process.
    let key = jitgate_credential::ClientKey::generate();
    let body = TokenRequest {
        public_key: key.public_b64(),
        asset: args.asset.clone(),
    };
    let raw = ctx
        .http
        .post(&["grants", &args.grant, "token"], &body)
        .await?;
    let token: TokenResponse = decode(raw)?;
    eprintln!(
        "grant {} on {} via gateway {} ({}), until {}",
        args.grant,
        token.asset,
        token.gateway_id,
        token.gateway_address,
        token.expires_at.format("%Y-%m-%d %H:%M:%S UTC")
    );
    // The protocol is named to the gateway (it refuses a session that names none where the
    // grant gives two); the one the grant gives when it gives one.
    let protocol = match (args.protocol, token.protocols.as_slice()) {
        (Some(p), _) => p,
        (None, [one]) => *one,
        (None, []) => anyhow::bail!(
            "grant {} gives no Modbus or DNP3 access to {} (for SSH: jitgate ssh {})",
            args.grant,
            token.asset,
            args.grant
        ),
        (None, _) => anyhow::bail!(
            "grant {} gives Modbus and DNP3 access to {}: say which with --protocol modbus|dnp3",
            args.grant,
            token.asset
        ),
    };
    // Check the grant at the gateway once before announcing the port, so a refusal is
    // reported at once. A probe: every check of a session, but no session is opened.
    let target = Target {
        token,
        key,
        protocol: Some(protocol),
    };
    jitgate_gateway::connect::probe(&target)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!(
        "{} clients can now connect to {} (Ctrl-C to stop)",
        match protocol {
            Protocol::Dnp3 => "DNP3 masters",
            _ => "Modbus/TCP",
        },
        args.listen
    );
    let json = ctx.json;
    serve_local(args.listen, target, move |line| {
        if json {
            crate::output::json_line(&serde_json::json!({ "event": line }));
        } else {
            // The lines quote the gateway's refusal messages.
            eprintln!("{}", crate::output::escape_controls(&line, false));
        }
    })
    .await
    .map_err(|e| anyhow::anyhow!(e.to_string()))
}

pub async fn keys(ctx: &Ctx, cmd: KeysCmd) -> anyhow::Result<()> {
    let raw = match cmd {
        KeysCmd::Show => ctx.http.get(&["keys"], &[]).await?,
        KeysCmd::Rotate => ctx.http.post_empty(&["keys", "rotate"]).await?,
        KeysCmd::Retire { kid, now } => {
            let raw = ctx
                .http
                .post(&["keys", &kid, "retire"], &RetireKeyBody { now })
                .await?;
            if ctx.printed_json(&raw) {
                return Ok(());
            }
            let done: KeyRetired = decode(raw)?;
            if done.changed {
                outln!(
                    "retired {}: its tokens are refused from now on",
                    done.retired_kid
                );
            } else {
                outln!("{} was already retired", done.retired_kid);
            }
            if done.gateways_notified.is_empty() {
                outln!("no gateway is connected; each refuses the key when it reconnects");
            } else {
                outln!(
                    "told gateways {} (they cut the sessions opened with it)",
                    done.gateways_notified.join(", ")
                );
            }
            print_keys(&KeysInfo {
                current_kid: done.current_kid,
                keys: done.keys,
            });
            return Ok(());
        }
    };
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let info: KeysInfo = decode(raw)?;
    print_keys(&info);
    Ok(())
}

fn print_keys(info: &KeysInfo) {
    let now = chrono::Utc::now();
    outln!("current signing key: {}", info.current_kid);
    for k in &info.keys {
        let retire = match k.retire_at {
            None => "current".to_string(),
            Some(t) if t <= now => format!("retired {}", t.format("%Y-%m-%d %H:%M UTC")),
            Some(t) => format!("retires {}", t.format("%Y-%m-%d %H:%M UTC")),
        };
        outln!("  {}  {}", k.kid, retire);
    }
}
