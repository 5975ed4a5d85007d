//! `evidence witness`: a small witness of the evidence log (docs/evidence.md, "Witnesses").
//!
//! Run by someone who does not operate the server (an auditor, a second site, the OT security
//! team), with the log's vkey obtained from the operator through a channel they trust. Each
//! round fetches the latest checkpoint with a consistency proof from the last one this
//! witness cosigned, lets `jitgate_evidence::witness` decide, keeps the new state on disk
//! *before* posting the cosignature, and posts it. A fork or a rollback stops the witness for
//! good (exit 4) with both checkpoints kept in `ALARM.json`, reported to the server as well.

use super::http::CliError;
use super::Ctx;
use crate::output::outln;
use anyhow::Context as _;
use jitgate_core::server_payload::WitnessAlarmKind;
use jitgate_evidence::note::{checkpoint_fields, Note};
use jitgate_evidence::witness::{add_checkpoint, AddCheckpoint, Refusal, WitnessedCheckpoint};
use jitgate_evidence::{EvidenceKey, Vkey};
use jitgate_server::evidence::witness::AlarmReport;
use std::path::{Path, PathBuf};

const KEY_FILE: &str = "witness.key";
const NAME_FILE: &str = "witness.name";
const VKEY_FILE: &str = "witness.vkey";
const STATE_FILE: &str = "state.json";
const ALARM_FILE: &str = "ALARM.json";
/// A cosigned note not yet acknowledged by the server: posted again at the next round.
const PENDING_FILE: &str = "pending.note";

#[derive(Debug, clap::Args)]
pub struct WitnessArgs {
    /// Directory of the witness's key and memory (created on first run; keep it and back it
    /// up: a witness that forgets what it cosigned cannot notice a rollback).
    #[arg(long, value_name = "DIR")]
    pub state: PathBuf,
    /// The witness's name, set on first run and kept, e.g. `audit.example/plant-1` (no spaces
    /// or plus signs).
    #[arg(long)]
    pub name: Option<String>,
    /// The log's vkey, or a file with one per line (after a key rotation, several): from the
    /// operator through a channel you trust (`jitgate evidence public-key --vkey`), never
    /// from the server you are witnessing.
    #[arg(
        long = "log-key",
        value_name = "VKEY|FILE",
        required_unless_present = "init"
    )]
    pub log_key: Option<String>,
    /// Only create the witness's key (needs --name) and print its vkey, then exit: no server
    /// is contacted. Hand the vkey to the operator and to auditors before the first run.
    #[arg(long, requires = "name")]
    pub init: bool,
    /// Cosign once and exit (for cron); without it, run until stopped.
    #[arg(long)]
    pub once: bool,
    /// Time between rounds when running continuously.
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    pub interval: String,
}

/// The witness's key (created on first run) and its name.
fn key_and_name(dir: &Path, name: Option<&str>) -> anyhow::Result<(EvidenceKey, String)> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the state directory {}", dir.display()))?;
    let key_path = dir.join(KEY_FILE);
    let name_path = dir.join(NAME_FILE);
    if key_path.exists() {
        let key = EvidenceKey::from_text(&std::fs::read_to_string(&key_path)?)
            .map_err(|e| CliError::Usage(format!("{}: {e}", key_path.display())))?;
        let stored = std::fs::read_to_string(&name_path)
            .with_context(|| format!("cannot read {}", name_path.display()))?
            .trim()
            .to_string();
        if let Some(n) = name.filter(|n| *n != stored) {
            return Err(CliError::Usage(format!(
                "this witness is named {stored:?} (in {}); --name {n:?} would make its \
                 cosignatures unverifiable with the key auditors were given",
                name_path.display()
            ))
            .into());
        }
        return Ok((key, stored));
    }
    let name = name.ok_or_else(|| {
        CliError::Usage(
            "first run: name the witness with --name (e.g. audit.example/plant-1)".into(),
        )
    })?;
    let key = EvidenceKey::generate().map_err(|e| anyhow::anyhow!("{e}"))?;
    let vkey =
        Vkey::for_cosigner(name, &key.public()).map_err(|e| CliError::Usage(e.to_string()))?;
    crate::server_cmds::write_private(&key_path, &key.to_text())?;
    std::fs::write(&name_path, format!("{name}\n"))?;
    std::fs::write(dir.join(VKEY_FILE), format!("{vkey}\n"))?;
    outln!(
        "new witness {name}: its key is {vkey}\n(also in {}). Give this line to the server's \
         operator (evidence.witnesses) and to auditors (verify-bundle --witness-key).",
        dir.join(VKEY_FILE).display()
    );
    Ok((key, name.to_string()))
}

fn log_keys(arg: &str) -> anyhow::Result<Vec<Vkey>> {
    let text = if Path::new(arg).exists() {
        std::fs::read_to_string(arg).with_context(|| format!("cannot read {arg}"))?
    } else {
        arg.to_string()
    };
    let keys = Vkey::parse_lines(&text).map_err(|e| {
        CliError::Usage(format!(
            "--log-key: {e}; pass the line `jitgate evidence public-key --vkey` prints"
        ))
    })?;
    if keys.is_empty()
        || keys
            .iter()
            .any(|k| k.sig_type != jitgate_evidence::note::TYPE_ED25519)
    {
        return Err(CliError::Usage(
            "--log-key must be the log's vkey(s) (type 0x01), not a witness key".into(),
        )
        .into());
    }
    Ok(keys)
}

fn read_state(dir: &Path) -> anyhow::Result<Option<WitnessedCheckpoint>> {
    let path = dir.join(STATE_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| {
            format!("{} is damaged; restore it from a backup", path.display())
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Write-then-rename, synced: the state is never half written.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// `--init`: create the key (or find it) and print the vkey; no server.
pub fn init(args: &WitnessArgs) -> anyhow::Result<()> {
    let (key, name) = key_and_name(&args.state, args.name.as_deref())?;
    let vkey =
        Vkey::for_cosigner(&name, &key.public()).map_err(|e| CliError::Usage(e.to_string()))?;
    outln!("{vkey}");
    Ok(())
}

pub async fn run(ctx: &Ctx, args: WitnessArgs) -> anyhow::Result<()> {
    let (key, name) = key_and_name(&args.state, args.name.as_deref())?;
    let keys = log_keys(args.log_key.as_deref().unwrap_or_default())?;
    let interval = humantime::parse_duration(&args.interval)
        .map_err(|e| CliError::Usage(format!("--interval {:?}: {e}", args.interval)))?;
    loop {
        match round(ctx, &args.state, &keys, &name, &key).await {
            Ok(line) => outln!("{line}"),
            Err(e) => {
                let alarm = matches!(e.downcast_ref::<CliError>(), Some(CliError::Alarm(_)));
                if alarm || args.once {
                    return Err(e);
                }
                eprintln!(
                    "witness round failed (retrying in {}): {e:#}",
                    args.interval
                );
            }
        }
        if args.once {
            return Ok(());
        }
        tokio::time::sleep(interval).await;
    }
}

/// One round; the line to print on success.
async fn round(
    ctx: &Ctx,
    dir: &Path,
    keys: &[Vkey],
    name: &str,
    key: &EvidenceKey,
) -> anyhow::Result<String> {
    let alarm_path = dir.join(ALARM_FILE);
    if alarm_path.exists() {
        return Err(CliError::Alarm(format!(
            "this witness stopped after an alarm (see {}): it cosigns nothing more for this \
             log. Investigate with the operator; witnessing again from scratch means removing \
             {} and {} — and trusting the log as it is now",
            alarm_path.display(),
            alarm_path.display(),
            dir.join(STATE_FILE).display()
        ))
        .into());
    }
    // A cosignature the server has not acknowledged yet goes first.
    let pending = dir.join(PENDING_FILE);
    if let Ok(note) = std::fs::read_to_string(&pending) {
        ctx.http
            .post_text(&["evidence", "witness", "cosignatures"], note)
            .await?;
        std::fs::remove_file(&pending)?;
    }
    let state = read_state(dir)?;
    let old = state.as_ref().map_or(0, |s| s.tree_size);
    let body = ctx
        .http
        .get_text(&["evidence", "witness"], &[("old", old.to_string())])
        .await?;
    let request = AddCheckpoint::parse(body.as_bytes())
        .map_err(|e| CliError::BadResponse(format!("the server's checkpoint: {e}")))?;
    if request.old_size != old {
        return Err(CliError::BadResponse(format!(
            "asked for a proof from {old} events, got one from {}",
            request.old_size
        ))
        .into());
    }
    let presented = Note::parse(&request.note).ok().and_then(|n| {
        checkpoint_fields(&n.text)
            .ok()
            .map(|f| (f.tree_size, f.time.to_string()))
    });
    // Pulled from the server itself: a smaller tree than the one cosigned is a rollback, and
    // a proof that fails came from the log.
    let decision = match (&state, &presented) {
        (Some(s), Some((size, time))) if *size < s.tree_size => Err(Refusal::Rollback {
            origin: s.origin.clone(),
            size: *size,
            time: time.clone(),
            latest: s.tree_size,
            latest_time: s.time.clone(),
            state: String::new(),
        }),
        _ => add_checkpoint(state.as_ref(), &request, keys, name, key, unix_now())
            .map_err(Refusal::attributed_to_log),
    };
    match decision {
        Ok((record, cosignature)) => {
            let unchanged = state.as_ref().is_some_and(|s| {
                s.tree_size == record.tree_size
                    && s.root_hash == record.root_hash
                    && s.time == record.time
            });
            if unchanged {
                return Ok(format!(
                    "nothing new: checkpoint of {} events already cosigned",
                    record.tree_size
                ));
            }
            // The state moves first (a witness must never cosign two histories); the
            // cosignature waits in `pending.note` until the server has it.
            let cosigned = format!("{}{}", request.note, cosignature.line);
            write_atomically(&pending, cosigned.as_bytes())?;
            write_atomically(
                &dir.join(STATE_FILE),
                serde_json::to_string_pretty(&record)?.as_bytes(),
            )?;
            ctx.http
                .post_text(&["evidence", "witness", "cosignatures"], cosigned)
                .await?;
            std::fs::remove_file(&pending)?;
            Ok(format!(
                "cosigned checkpoint of {} events (root {}, {}) as {name}",
                record.tree_size,
                &record.root_hash[..16],
                record.time
            ))
        }
        Err(refusal) if refusal.is_alarm() => {
            let refusal = refusal.with_state(&alarm_path.display().to_string());
            let kind = match refusal {
                Refusal::Rollback { .. } => WitnessAlarmKind::Rollback,
                _ => WitnessAlarmKind::Fork,
            };
            let cosigned = state.map(|s| s.note).unwrap_or_default();
            let report = AlarmReport {
                witness: name.to_string(),
                alarm: kind,
                message: refusal.to_string(),
                cosigned,
                presented: request.note.clone(),
            };
            write_atomically(
                &alarm_path,
                serde_json::to_string_pretty(&report)?.as_bytes(),
            )?;
            if let Err(e) = ctx
                .http
                .post(&["evidence", "witness", "alarms"], &report)
                .await
            {
                eprintln!("(the alarm could not be reported to the server: {e})");
            }
            Err(CliError::Alarm(refusal.to_string()).into())
        }
        Err(refusal) => Err(CliError::BadResponse(format!(
            "not cosigned: {refusal}{}",
            if matches!(refusal, Refusal::NotSignedByLog(_)) {
                " — if the operator rotated the evidence key, add the new vkey to --log-key \
                 (from the operator, not from this server)"
            } else {
                ""
            }
        ))
        .into()),
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
