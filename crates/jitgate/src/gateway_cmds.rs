//! `jitgate gateway`: run an enforcement point from `gateway.toml` (see docs/gateway.md).

use anyhow::Context;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// Gateway configuration file (TOML).
    #[arg(long, short, env = "JITGATE_GATEWAY_CONFIG")]
    pub config: PathBuf,
}

pub async fn run(args: GatewayArgs) -> anyhow::Result<()> {
    let config = jitgate_gateway::config::GatewayConfig::load(&args.config)?;
    let running = jitgate_gateway::runtime::start(config)
        .await
        .context("gateway did not start")?;
    eprintln!(
        "jitgate gateway {} listening on {}",
        running.gateway.id, running.addr
    );
    shutdown_signal().await;
    eprintln!("stopping: ending sessions and spooling undelivered events");
    running.stop().await;
    Ok(())
}

/// Ctrl-C or SIGTERM (what service managers send).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
