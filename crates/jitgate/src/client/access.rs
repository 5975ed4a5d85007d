//! `jitgate connect` (open a local Modbus/TCP port tunnelled through the gateway under an
//! active grant) and `jitgate keys` (the server's token-signing keys).

use super::Ctx;
use clap::{Args, Subcommand};
use jitgate_gateway::connect::{serve_local, Target};
use jitgate_gateway::wire::{TokenRequest, TokenResponse};
use jitgate_server::api::types::KeysInfo;
use serde_json::Value;
use std::net::SocketAddr;

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The active grant to use (yours: only the grant's subject can connect).
    pub grant: String,
    /// Local address where Modbus/TCP clients connect.
    #[arg(long, default_value = "127.0.0.1:5020")]
    pub listen: SocketAddr,
    /// The asset to reach, when the grant covers several.
    #[arg(long)]
    pub asset: Option<String>,
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
}

fn decode<T: serde::de::DeserializeOwned>(raw: Value) -> anyhow::Result<T> {
    serde_json::from_value(raw)
        .map_err(|e| anyhow::anyhow!("unexpected answer from the server: {e}"))
}

pub async fn connect(ctx: &Ctx, args: ConnectArgs) -> anyhow::Result<()> {
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
    // Check the tunnel once before announcing the port, so a refusal is reported at once.
    let target = Target { token, key };
    let (probe, _) = jitgate_gateway::connect::open_tunnel(&target)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    drop(probe);
    eprintln!(
        "Modbus/TCP clients can now connect to {} (Ctrl-C to stop)",
        args.listen
    );
    let json = ctx.json;
    serve_local(args.listen, target, move |line| {
        if json {
            println!("{}", serde_json::json!({ "event": line }));
        } else {
            eprintln!("{line}");
        }
    })
    .await
    .map_err(|e| anyhow::anyhow!(e.to_string()))
}

pub async fn keys(ctx: &Ctx, cmd: KeysCmd) -> anyhow::Result<()> {
    let raw = match cmd {
        KeysCmd::Show => ctx.http.get(&["keys"], &[]).await?,
        KeysCmd::Rotate => ctx.http.post_empty(&["keys", "rotate"]).await?,
    };
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let info: KeysInfo = decode(raw)?;
    println!("current signing key: {}", info.current_kid);
    for k in info.keys {
        let retire = k
            .retire_at
            .map(|t| format!("retires {}", t.format("%Y-%m-%d %H:%M UTC")))
            .unwrap_or_else(|| "current".into());
        println!("  {}  {}", k.kid, retire);
    }
    Ok(())
}
