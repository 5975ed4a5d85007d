//! `evidence chain`: has anyone tampered with the evidence log?

use super::http::{decode, CliError};
use super::Ctx;
use clap::Subcommand;
use jitgate_server::api::types::ChainStatus;

#[derive(Debug, Subcommand)]
pub enum EvidenceCmd {
    /// Recompute the hash chain over every event; exits 1 if it is broken.
    #[command(after_help = "Example:\n  jitgate evidence chain")]
    Chain,
}

pub async fn run(ctx: &Ctx, cmd: EvidenceCmd) -> anyhow::Result<()> {
    let EvidenceCmd::Chain = cmd;
    let raw = ctx.http.get(&["evidence", "chain"], &[]).await?;
    let ok = raw.get("ok").and_then(serde_json::Value::as_bool) == Some(true);
    if !ctx.printed_json(&raw) {
        let status: ChainStatus = decode(raw)?;
        let (line, ok) = render_chain(&status);
        if ok {
            println!("{line}");
        } else {
            eprintln!("{line}");
        }
    }
    if ok {
        Ok(())
    } else {
        Err(CliError::Reported.into())
    }
}

/// One line saying whether the chain holds, and whether that is good news.
pub fn render_chain(s: &ChainStatus) -> (String, bool) {
    if s.ok {
        return (
            format!("evidence chain ok: {} events, head {}", s.events, s.head),
            true,
        );
    }
    let at = s
        .first_bad_seq
        .map(|n| format!(" at event {n}"))
        .unwrap_or_default();
    let why = s.problem.clone().unwrap_or_else(|| "hash mismatch".into());
    (
        format!(
            "evidence chain BROKEN{at}: {why} ({} events checked)",
            s.events
        ),
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_status_lines() {
        let mut s = ChainStatus {
            events: 42,
            head: "sha256:ff".into(),
            ok: true,
            first_bad_seq: None,
            problem: None,
        };
        assert_eq!(
            render_chain(&s),
            ("evidence chain ok: 42 events, head sha256:ff".into(), true)
        );
        s.ok = false;
        s.first_bad_seq = Some(17);
        s.problem = Some("prev_hash does not match event 16".into());
        let (line, ok) = render_chain(&s);
        assert!(!ok);
        assert_eq!(line, "evidence chain BROKEN at event 17: prev_hash does not match event 16 (42 events checked)");
    }
}
