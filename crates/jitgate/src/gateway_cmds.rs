//! `jitgate gateway`: run an enforcement point from `gateway.toml` (see docs/gateway.md).

use anyhow::Context;
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    jitgate gateway --config gateway.toml                      # run the gateway\n  \
    jitgate gateway --config gateway.toml vault-key hmi-old    # key for an asset that cannot trust a CA")]
pub struct GatewayArgs {
    /// Gateway configuration file (TOML).
    #[arg(long, short, env = "JITGATE_GATEWAY_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub cmd: Option<GatewayCmd>,
}

#[derive(Debug, Subcommand)]
pub enum GatewayCmd {
    /// Make (once) the key this gateway logs in to ASSET with, for an asset whose inventory
    /// entry says `endpoints.ssh.auth = "vaulted_key"` (it cannot trust jitgate's CA), and
    /// print its public half: add that line to the account's `authorized_keys` on the
    /// asset. The key stays in `state_dir/ssh-vault/` (0600) and is never replaced; such a
    /// key stands on the asset between grants, so their teardown is `partial`.
    #[command(after_help = "Example:\n  \
        jitgate gateway --config gateway.toml vault-key hmi-old > hmi-old.pub\n  \
        # on hmi-old, as the inventory's account: cat hmi-old.pub >> ~/.ssh/authorized_keys")]
    VaultKey {
        /// The asset id, as in the inventory.
        asset: String,
    },
}

pub async fn run(args: GatewayArgs) -> anyhow::Result<()> {
    let Some(path) = args.config else {
        anyhow::bail!("say which gateway: --config gateway.toml (or JITGATE_GATEWAY_CONFIG)");
    };
    let config = jitgate_gateway::config::GatewayConfig::load(&path)?;
    if let Some(GatewayCmd::VaultKey { asset }) = args.cmd {
        return vault_key(&config, &asset);
    }
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

/// `jitgate gateway vault-key ASSET`: the public line on stdout (for `authorized_keys`),
/// what happened on stderr.
fn vault_key(config: &jitgate_gateway::config::GatewayConfig, asset: &str) -> anyhow::Result<()> {
    jitgate_gateway::private::state_dir(&config.state_dir)
        .with_context(|| format!("state_dir {}", config.state_dir.display()))?;
    let (key, created) = jitgate_gateway::ssh::keys::create_vault_key(&config.state_dir, asset)
        .map_err(|e| anyhow::anyhow!("vaulted key for {asset}: {e}"))?;
    let mut public = key.public_key().clone();
    public.set_comment(format!("jitgate-vault {asset}"));
    let line = public
        .to_openssh()
        .map_err(|e| anyhow::anyhow!("encoding the public key: {e}"))?;
    crate::output::outln!("{line}");
    eprintln!(
        "{} vaulted key for {asset} ({}); add the line above to the account's authorized_keys on {asset}",
        if created { "made the" } else { "this gateway already holds a" },
        jitgate_gateway::ssh::keys::fingerprint(&public),
    );
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
