//! `evidence …`: the tamper-evident log and the bundles auditors check.
//!
//! Server verbs: `chain`, `verify`, `checkpoint`, `checkpoints`, `public-key`, `rotate-key`,
//! `export`. Offline verbs, which never read a profile or touch the network — an auditor runs
//! them with nothing but a bundle and the public key file: `verify-bundle`, `report`.

use super::http::{decode, CliError};
use super::Ctx;
use crate::output::{out, outln};
use anyhow::Context;
use clap::Subcommand;
use jitgate_evidence::{Bundle, EvidencePublicKey, SignedCheckpoint, VerifiedBundle};
use jitgate_server::api::evidence::{EvidenceKeysView, LogVerifyView, SignedCheckpointView};
use jitgate_server::api::types::ChainStatus;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum EvidenceCmd {
    /// Recompute the hash chain over every event; exits 1 if it is broken.
    #[command(after_help = "Example:\n  jitgate evidence chain")]
    Chain,

    /// Verify the whole log in the server's database — hash chain, Merkle tree and every
    /// signed checkpoint — and name the first altered, deleted, inserted or reordered event or
    /// bad checkpoint. Exits 1 if anything is wrong.
    #[command(
        after_help = "Examples:\n  jitgate evidence verify\n  jitgate evidence verify --json"
    )]
    Verify,

    /// Sign a checkpoint of the whole log now (the server also signs them periodically).
    #[command(after_help = "Example:\n  jitgate evidence checkpoint")]
    Checkpoint,

    /// List the signed checkpoints, or save them (JSON) to keep a copy outside the server.
    #[command(after_help = "Examples:\n  jitgate evidence checkpoints\n  \
        jitgate evidence checkpoints -o checkpoints-2026-11.json")]
    Checkpoints {
        /// Write every checkpoint (or the page, with --limit) as a JSON array to this file.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        page: super::PageArgs,
    },

    /// Write the evidence public key file (every key, old ones included) for auditors.
    #[command(
        name = "public-key",
        after_help = "Examples:\n  jitgate evidence public-key -o plant-1-evidence.pub\n  \
        jitgate evidence public-key            # print it\n  \
        jitgate evidence public-key --vkey -o plant-1.vkey   # for witnesses\n\n\
        Hand the file to auditors through a channel they trust (not inside a bundle)."
    )]
    PublicKey {
        /// Write the key file here instead of printing it.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// The log's keys as signed-note vkeys instead (`<log id>+<key hash>+<key>`), one per
        /// line: what witnesses take with --log-key.
        #[arg(long)]
        vkey: bool,
    },

    /// Add a new evidence signing key and make it current (admin). Old public keys stay in
    /// the key file, so everything signed before keeps verifying.
    #[command(
        name = "rotate-key",
        after_help = "Example:\n  jitgate evidence rotate-key\n  \
        jitgate evidence public-key -o plant-1-evidence.pub   # then re-issue the key file"
    )]
    RotateKey,

    /// Export a grant's evidence bundle: every event from request to teardown with inclusion
    /// proofs against a signed checkpoint, the determining policies' text, and the exporter's
    /// signature.
    #[command(
        after_help = "Example:\n  jitgate evidence export grant-7hq2m4x9wd3c -o bundle.json"
    )]
    Export {
        /// Grant id.
        grant: String,
        /// Where to write the bundle.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
    },

    /// Verify a bundle fully offline (no server, no login) against the evidence public key
    /// file, and print its timeline. Exits 1, naming what and where, if any check fails.
    #[command(
        name = "verify-bundle",
        after_help = "Example:\n  jitgate evidence verify-bundle bundle.json --key plant-1-evidence.pub\n\n\
        Needs no server, profile or network: give it the bundle and the key file you obtained \
        from the operator. See docs/evidence.md for every check and what each failure means."
    )]
    VerifyBundle {
        /// The bundle (`jitgate evidence export` wrote it).
        bundle: PathBuf,
        /// Evidence public key file (`jitgate evidence public-key` wrote it).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// A witness you trust: its vkey (the line `jitgate evidence witness` printed), or a
        /// file of them. Repeat for several witnesses.
        #[arg(long = "witness-key", value_name = "VKEY|FILE")]
        witness_key: Vec<String>,
        /// How many of those witnesses must have cosigned the bundle's checkpoint (default:
        /// 1 when --witness-key is given).
        #[arg(long = "min-witnesses", value_name = "N", requires = "witness_key")]
        min_witnesses: Option<usize>,
    },

    /// Run a witness of this server's evidence log: fetch each new checkpoint with a
    /// consistency proof from the last one cosigned, cosign it only if consistent, and post
    /// the cosignature. A forked or rolled-back log stops the witness (exit 4) and is
    /// reported. Run it where the operator cannot reach: an auditor's or a second site's host.
    #[command(after_help = "Examples:\n  \
        jitgate evidence witness --state ~/plant-1-witness --name audit.example/plant-1 \\\n      \
        --log-key plant-1.vkey            # runs every minute until stopped\n  \
        jitgate evidence witness --state ~/plant-1-witness --log-key plant-1.vkey --once\n\n\
        The first run creates the witness key in --state and prints its vkey: the operator adds \
        it to evidence.witnesses, auditors pass it to verify-bundle --witness-key. Get the log's \
        vkey from the operator through a channel you trust. Exit codes: 0 cosigned (or nothing \
        new), 1 a check failed, 3 server unreachable, 4 ALARM (fork or rollback; see ALARM.json \
        in --state). See docs/evidence.md, \"Witnesses\".")]
    Witness(super::witness::WitnessArgs),

    /// Make the signed compliance report of a period (and a site): grants, exposure per
    /// asset and per day, teardowns, break-glass reviews, enforcement, mapped to NIST CSF 2.0,
    /// NIST SP 800-207 and the OWASP NHI Top 10. Security, audit and admin roles.
    #[command(
        name = "compliance-report",
        after_help = "Examples:\n  \
        jitgate evidence compliance-report --month 2026-11 --site north --html -o north-2026-11.html\n  \
        jitgate evidence compliance-report --from 2026-11-01 --to 2026-11-15 -o report.json\n\n\
        The page (--html) is printable, with charts; it carries its own signed report, so an \
        auditor verifies the page itself: jitgate evidence verify-report north-2026-11.html \
        --key plant-1-evidence.pub. The period must be over. See docs/compliance-report.md."
    )]
    ComplianceReport(super::compliance::ComplianceArgs),

    /// Verify a compliance report (its JSON or its page) fully offline against the evidence
    /// public key file. Exits 1, saying what is wrong, if any byte was changed.
    #[command(
        name = "verify-report",
        after_help = "Example:\n  jitgate evidence verify-report north-2026-11.html --key plant-1-evidence.pub"
    )]
    VerifyReport {
        /// The report (`compliance-report` wrote it): JSON or HTML.
        file: PathBuf,
        /// Evidence public key file (`jitgate evidence public-key` wrote it).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
    },

    /// Verify a bundle offline and render it as one self-contained HTML audit report
    /// (timeline, approval → grant → session → operations chain, teardown checks, controls).
    #[command(after_help = "Example:\n  \
        jitgate evidence report bundle.json --key plant-1-evidence.pub -o report.html\n\n\
        Offline like verify-bundle; a bundle that fails verification gets no report.")]
    Report {
        /// The bundle.
        bundle: PathBuf,
        /// Evidence public key file.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Where to write the HTML page.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
    },
}

impl EvidenceCmd {
    /// Verbs that run on local files only (no server, no profile).
    pub fn is_offline(&self) -> bool {
        match self {
            EvidenceCmd::VerifyBundle { .. }
            | EvidenceCmd::Report { .. }
            | EvidenceCmd::VerifyReport { .. } => true,
            EvidenceCmd::Witness(args) => args.init,
            _ => false,
        }
    }
}

pub async fn run(ctx: &Ctx, cmd: EvidenceCmd) -> anyhow::Result<()> {
    match cmd {
        EvidenceCmd::Chain => chain(ctx).await,
        EvidenceCmd::Verify => verify(ctx).await,
        EvidenceCmd::Checkpoint => {
            let raw = ctx.http.post_empty(&["evidence", "checkpoints"]).await?;
            if !ctx.printed_json(&raw) {
                let view: SignedCheckpointView = decode(raw)?;
                let signed: SignedCheckpoint = view.into();
                let c = &signed.checkpoint;
                outln!(
                    "checkpoint signed: {} events, root {}, {} by key {}\n",
                    c.tree_size,
                    c.root_hash,
                    c.time,
                    c.key_id
                );
                // The standard signed-note form (C2SP), which transparency-log tools read.
                let keys: EvidenceKeysView =
                    decode(ctx.http.get(&["evidence", "keys"], &[]).await?)?;
                let note = keys
                    .vkeys
                    .iter()
                    .filter_map(|v| jitgate_evidence::Vkey::parse(v).ok())
                    .filter(|v| v.public.key_id == c.key_id)
                    .find_map(|v| signed.to_signed_note(&v.public).ok());
                out!("{}", note.unwrap_or_default());
            }
            Ok(())
        }
        EvidenceCmd::Checkpoints { output, page } => {
            let raw = ctx.list(&["evidence", "checkpoints"], &[], &page).await?;
            if let Some(path) = output {
                let views: Vec<SignedCheckpointView> = decode(raw.clone())?;
                write_file(&path, serde_json::to_string_pretty(&raw)?.as_bytes())?;
                outln!("wrote {} checkpoints to {}", views.len(), path.display());
                return Ok(());
            }
            if !ctx.printed_json(&raw) {
                let views: Vec<SignedCheckpointView> = decode(raw)?;
                let mut table = super::text::table(&["events", "time", "key", "root", "witnesses"]);
                for v in &views {
                    let c = &v.checkpoint;
                    table.add_row([
                        c.tree_size.to_string(),
                        c.time.clone(),
                        c.key_id.clone(),
                        c.root_hash.clone(),
                        v.witnesses.join(", "),
                    ]);
                }
                outln!("{table}");
            }
            Ok(())
        }
        EvidenceCmd::PublicKey { output, vkey: true } => {
            let raw = ctx.http.get(&["evidence", "keys"], &[]).await?;
            let keys: EvidenceKeysView = decode(raw)?;
            let text: String = keys.vkeys.iter().map(|v| format!("{v}\n")).collect();
            match output {
                Some(path) => {
                    write_file(&path, text.as_bytes())?;
                    outln!(
                        "wrote {} vkey(s) of log {} to {}: give it to witnesses (--log-key)",
                        keys.vkeys.len(),
                        keys.log_id,
                        path.display()
                    );
                }
                None => out!("{text}"),
            }
            Ok(())
        }
        EvidenceCmd::PublicKey { output, .. } => {
            let raw = ctx.http.get(&["evidence", "keys"], &[]).await?;
            let keys: EvidenceKeysView = decode(raw.clone())?;
            match output {
                Some(path) => {
                    write_file(&path, keys.key_file.as_bytes())?;
                    outln!(
                        "wrote {} evidence public key(s) of log {} to {} (current key {})",
                        keys.keys.len(),
                        keys.log_id,
                        path.display(),
                        keys.current_key_id
                    );
                }
                None => {
                    if !ctx.printed_json(&raw) {
                        out!("{}", keys.key_file);
                    }
                }
            }
            Ok(())
        }
        EvidenceCmd::RotateKey => {
            let raw = ctx.http.post_empty(&["evidence", "keys", "rotate"]).await?;
            if !ctx.printed_json(&raw) {
                let keys: EvidenceKeysView = decode(raw)?;
                outln!(
                    "evidence key rotated: new checkpoints and bundles are signed with {}; the \
                     key file now lists {} keys — give auditors the new one: jitgate evidence \
                     public-key -o <file>",
                    keys.current_key_id,
                    keys.keys.len()
                );
            }
            Ok(())
        }
        EvidenceCmd::Export { grant, output } => {
            let raw = ctx.http.get(&["grants", &grant, "evidence"], &[]).await?;
            let bundle: Bundle = serde_json::from_value(raw).map_err(|e| {
                CliError::BadResponse(format!("the server's bundle does not parse: {e}"))
            })?;
            write_file(&output, bundle.to_json().as_bytes())?;
            let c = &bundle.checkpoint.checkpoint;
            let line = format!(
                "wrote {}: {} events of grant {}, checkpoint of {} events signed {} by key {}",
                output.display(),
                bundle.events.len(),
                bundle.grant_id,
                c.tree_size,
                c.time,
                c.key_id
            );
            if ctx.json {
                outln!(
                    "{}",
                    json!({"file": output.display().to_string(), "grant_id": bundle.grant_id,
                           "events": bundle.events.len(), "tree_size": c.tree_size, "key_id": c.key_id})
                );
            } else {
                outln!("{line}\nverify offline: jitgate evidence verify-bundle {} --key <evidence public key file>", output.display());
            }
            Ok(())
        }
        EvidenceCmd::Witness(args) => super::witness::run(ctx, args).await,
        EvidenceCmd::ComplianceReport(args) => super::compliance::fetch(ctx, args).await,
        EvidenceCmd::VerifyBundle { .. }
        | EvidenceCmd::Report { .. }
        | EvidenceCmd::VerifyReport { .. } => offline(cmd, ctx.json),
    }
}

async fn chain(ctx: &Ctx) -> anyhow::Result<()> {
    let raw = ctx.http.get(&["evidence", "chain"], &[]).await?;
    let ok = raw.get("ok").and_then(Value::as_bool) == Some(true);
    if !ctx.printed_json(&raw) {
        let status: ChainStatus = decode(raw)?;
        let (line, ok) = render_chain(&status);
        if ok {
            outln!("{line}");
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

async fn verify(ctx: &Ctx) -> anyhow::Result<()> {
    let raw = ctx.http.get(&["evidence", "verify"], &[]).await?;
    let ok = raw.get("ok").and_then(Value::as_bool) == Some(true);
    if !ctx.printed_json(&raw) {
        let view: LogVerifyView = decode(raw)?;
        let (line, ok) = render_verify(&view);
        if ok {
            outln!("{line}");
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

/// What `evidence verify` prints, and whether the log holds.
pub fn render_verify(v: &LogVerifyView) -> (String, bool) {
    match &v.problem {
        None => {
            let covered = match v.latest_checkpoint {
                Some(n) if n as i64 == v.chain_head => "every event is under a signed checkpoint".to_string(),
                Some(n) => format!(
                    "the latest checkpoint covers events 1..{n}; later events are chain-protected until the next one"
                ),
                None => "no checkpoint yet: events are chain-protected only (`jitgate evidence checkpoint`)".to_string(),
            };
            (
                format!(
                    "evidence log ok: {} events, {} of {} checkpoints verified, root {} (log {}); {covered}",
                    v.events, v.checkpoints_verified, v.checkpoints, v.root_hash, v.log_id
                ),
                true,
            )
        }
        Some(p) => (
            format!(
                "evidence log BROKEN at seq {} ({}): {} [{} events read, {} verified]",
                p.seq, p.kind, p.message, v.events, v.verified
            ),
            false,
        ),
    }
}

// ---------------------------------------------------------------- offline verbs

/// `verify-bundle` and `report`: local files only.
pub fn offline(cmd: EvidenceCmd, json: bool) -> anyhow::Result<()> {
    match cmd {
        EvidenceCmd::VerifyBundle {
            bundle,
            key,
            witness_key,
            min_witnesses,
        } => {
            let witnesses = witness_policy(&witness_key, min_witnesses)?;
            let verified = match check_bundle(&bundle, &key, &witnesses, json)? {
                Some(v) => v,
                None => return Err(CliError::Reported.into()),
            };
            if json {
                crate::output::json(&bundle_json(&verified));
            } else {
                out!("{}", render_verified(&verified, &bundle));
            }
            Ok(())
        }
        EvidenceCmd::Report {
            bundle,
            key,
            output,
        } => {
            let none = jitgate_evidence::WitnessPolicy::default();
            let Some(verified) = check_bundle(&bundle, &key, &none, json)? else {
                return Err(CliError::Reported.into());
            };
            let html = jitgate_evidence::report_html(&verified);
            write_file(&output, html.as_bytes())?;
            if json {
                outln!(
                    "{}",
                    json!({"ok": true, "file": output.display().to_string(), "grant_id": verified.grant_id})
                );
            } else {
                outln!(
                    "bundle verified; report of grant {} written to {}",
                    verified.grant_id,
                    output.display()
                );
            }
            Ok(())
        }
        EvidenceCmd::VerifyReport { file, key } => {
            super::compliance::verify_file(&file, &key, json)
        }
        EvidenceCmd::Witness(args) if args.init => super::witness::init(&args),
        _ => Err(CliError::Usage("not an offline verb".into()).into()),
    }
}

/// The witnesses `--witness-key` names (vkeys, or files of them) and how many must cosign.
fn witness_policy(
    args: &[String],
    min: Option<usize>,
) -> anyhow::Result<jitgate_evidence::WitnessPolicy> {
    let mut keys = Vec::new();
    for arg in args {
        let text = if Path::new(arg).exists() {
            std::fs::read_to_string(arg)
                .map_err(|e| CliError::Usage(format!("cannot read {arg}: {e}")))?
        } else {
            arg.clone()
        };
        keys.extend(
            jitgate_evidence::Vkey::parse_lines(&text)
                .map_err(|e| CliError::Usage(format!("--witness-key {arg}: {e}")))?,
        );
    }
    let min = min.unwrap_or(usize::from(!keys.is_empty()));
    Ok(jitgate_evidence::WitnessPolicy::new(keys, min).map_err(CliError::Usage)?)
}

/// Read the key file and the bundle and verify. A bundle that fails is reported (stderr, or
/// JSON on stdout) and gives `None`; unreadable files are usage errors (exit 2).
fn check_bundle(
    bundle: &Path,
    key: &Path,
    witnesses: &jitgate_evidence::WitnessPolicy,
    json: bool,
) -> anyhow::Result<Option<VerifiedBundle>> {
    let key_text = std::fs::read_to_string(key)
        .map_err(|e| CliError::Usage(format!("cannot read key file {}: {e}", key.display())))?;
    let keys = EvidencePublicKey::parse_file(&key_text).map_err(|e| {
        CliError::Usage(format!(
            "{} is not an evidence public key file: {e}",
            key.display()
        ))
    })?;
    let bytes = std::fs::read(bundle)
        .map_err(|e| CliError::Usage(format!("cannot read bundle {}: {e}", bundle.display())))?;
    let limits = jitgate_evidence::Limits::default();
    match jitgate_evidence::verify_bundle_witnessed(&bytes, &keys, &limits, witnesses) {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            if json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(
                        &json!({"ok": false, "kind": e.kind(), "error": e.to_string()})
                    )?
                );
            } else {
                eprintln!("bundle REJECTED: {}: {e}", bundle.display());
            }
            Ok(None)
        }
    }
}

fn render_verified(v: &VerifiedBundle, path: &Path) -> String {
    let c = &v.checkpoint;
    let mut out = format!(
        "bundle OK: {} — grant {} (request {}), {} events, every one proven in log {}\n\
         checkpoint: {} events, root {}, signed {} by key {}; bundle attested by key {}\n\n",
        path.display(),
        v.grant_id,
        v.request_id,
        v.events.len(),
        v.log_id,
        c.tree_size,
        c.root_hash,
        c.time,
        c.key_id,
        v.attested_by
    );
    for w in &v.witnesses {
        out.push_str(&format!(
            "witnessed: cosigned by {} at {} (unix {})\n",
            w.witness,
            chrono::DateTime::from_timestamp(w.timestamp as i64, 0)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default(),
            w.timestamp
        ));
    }
    if !v.witnesses.is_empty() {
        out.push('\n');
    }
    out.push_str(&v.timeline_text());
    if !out.ends_with('\n') {
        out.push('\n');
    }
    if !v.recordings.is_empty() {
        out.push_str("\nrecordings (every chunk checked against its logged hash):\n");
        for r in &v.recordings {
            out.push_str(&format!(
                "  {}: {} chunks, {} bytes, {} with bytes in the bundle{}\n",
                r.session_id,
                r.chunks,
                r.bytes,
                r.chunks_with_bytes,
                if r.complete {
                    ", complete"
                } else {
                    ", INCOMPLETE"
                }
            ));
        }
    }
    if !v.notes.is_empty() {
        out.push_str("\nnotes:\n");
        for n in &v.notes {
            out.push_str(&format!("  - {n}\n"));
        }
    }
    out
}

fn bundle_json(v: &VerifiedBundle) -> Value {
    json!({
        "ok": true,
        "log_id": v.log_id,
        "grant_id": v.grant_id,
        "request_id": v.request_id,
        "checkpoint": v.checkpoint,
        "attested_by": v.attested_by,
        "events": v.events.len(),
        "timeline": v.timeline().iter().map(|t| json!({
            "seq": t.seq, "at": jitgate_evidence::rfc3339(t.at), "kind": t.kind,
            "actor": t.actor, "summary": t.summary,
        })).collect::<Vec<_>>(),
        "notes": v.notes,
        "recordings": v.recordings.iter().map(|r| json!({
            "session_id": r.session_id, "chunks": r.chunks, "bytes": r.bytes,
            "chunks_with_bytes": r.chunks_with_bytes, "complete": r.complete,
        })).collect::<Vec<_>>(),
        "witnesses": v.witnesses.iter().map(|w| json!({
            "witness": w.witness, "cosigned_at": w.timestamp,
        })).collect::<Vec<_>>(),
    })
}

fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
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

    #[test]
    fn verify_lines_name_the_problem() {
        let mut v = LogVerifyView {
            ok: true,
            log_id: "jitgate/plant-1".into(),
            events: 10,
            verified: 10,
            chain_head: 10,
            root_hash: "ab".into(),
            head_hash: "cd".into(),
            checkpoints: 2,
            checkpoints_verified: 2,
            latest_checkpoint: Some(10),
            problem: None,
        };
        let (line, ok) = render_verify(&v);
        assert!(
            ok && line.contains("every event is under a signed checkpoint"),
            "{line}"
        );
        v.problem = Some(jitgate_server::api::evidence::LogProblemView {
            kind: "altered".into(),
            seq: 4,
            message: "the stored bytes do not hash to the stored hash".into(),
        });
        let (line, ok) = render_verify(&v);
        assert!(!ok);
        assert!(
            line.starts_with("evidence log BROKEN at seq 4 (altered)"),
            "{line}"
        );
    }
}
