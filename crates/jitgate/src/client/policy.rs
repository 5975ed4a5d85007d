//! `policy show`, `policy reload` (server) and `policy test` (local scenarios).

use super::http::decode;
use super::text::Detail;
use super::Ctx;
use crate::output::{out, outln};
use clap::Subcommand;
use jitgate_server::api::types::PolicyInfo;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum PolicyCmd {
    /// Show the policy set in force: its hash, where it came from and its policies.
    #[command(after_help = "Example:\n  jitgate policy show")]
    Show,
    /// Reload the policy set from its directory; refused if it does not validate.
    #[command(after_help = "Example:\n  jitgate policy reload")]
    Reload,
    /// Run policy scenarios (expected decisions) against a policy set, without a server.
    #[command(after_help = "Example:\n  \
        jitgate policy test scenarios.toml --policies ./policies --inventory inventory.toml\n\n\
        Exits with 1 if any scenario's decision differs from what it expects.")]
    Test {
        /// Scenario file (TOML, [[scenario]] tables).
        scenarios: PathBuf,
        /// Policy directory (default: the built-in policy set).
        #[arg(long)]
        policies: Option<PathBuf>,
        /// Inventory file the scenarios' identities and assets come from (default: the
        /// sample plant that `jitgate up` loads).
        #[arg(long)]
        inventory: Option<PathBuf>,
    },
}

pub async fn run(ctx: &Ctx, cmd: PolicyCmd) -> anyhow::Result<()> {
    let (raw, reloaded) = match cmd {
        PolicyCmd::Show => (ctx.http.get(&["policies"], &[]).await?, false),
        PolicyCmd::Reload => (ctx.http.post_empty(&["policies", "reload"]).await?, true),
        PolicyCmd::Test {
            scenarios,
            policies,
            inventory,
        } => {
            return test(scenarios, policies, inventory, ctx.json);
        }
    };
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let info: PolicyInfo = decode(raw)?;
    if reloaded {
        outln!("policy set reloaded");
    }
    out!("{}", render_policy_info(&info));
    Ok(())
}

pub fn render_policy_info(info: &PolicyInfo) -> String {
    let mut d = Detail::new();
    d.row("hash", info.hash.clone())
        .row("source", info.source.clone())
        .lines("policies", &info.policies);
    d.render()
}

/// `policy test`: runs locally, so it is dispatched before any server settings are read.
pub fn test(
    scenarios: PathBuf,
    policies: Option<PathBuf>,
    inventory: Option<PathBuf>,
    json: bool,
) -> anyhow::Result<()> {
    crate::server_cmds::policy_test(&scenarios, policies.as_deref(), inventory.as_deref(), json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_info_lists_policies() {
        let info = PolicyInfo {
            hash: "sha256:ab".into(),
            policies: vec!["guardrail-safety".into(), "humans-planned".into()],
            source: "builtin".into(),
        };
        let out = render_policy_info(&info);
        assert_eq!(
            out,
            "hash      sha256:ab\nsource    builtin\npolicies  guardrail-safety\n          humans-planned\n"
        );
    }
}
