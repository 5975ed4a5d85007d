//! `recordings list [--grant G]` and `recordings play <session> [--raw]`: the SSH sessions'
//! asciicast recordings the server holds (docs/cli.md, "Recordings").
//!
//! `play` replays the output events with their timing (sped up and with long pauses cut as
//! asked); `--raw` writes the `.cast` file itself, for `asciinema play` or an archive.
//! Playback writes the recorded terminal output as it was sent to the user, escapes
//! included: that is what replaying a terminal means.

use super::http::decode;
use super::text::{table, time};
use super::Ctx;
use crate::output::outln;
use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use jitgate_server::api::types::RecordingView;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum RecordingsCmd {
    /// The recordings you may see (those of the grants whose sessions you may see).
    #[command(
        after_help = "Examples:\n  jitgate recordings list\n  jitgate recordings list --grant grant-7hq2m4x9wd3c"
    )]
    List {
        /// Only the recordings of this grant.
        #[arg(long)]
        grant: Option<String>,
    },
    /// Play a session's recording in this terminal with its timing, or write the cast.
    #[command(after_help = "Examples:\n  \
        jitgate recordings play sess-4hx8c2m9tq3z\n  \
        jitgate recordings play sess-4hx8c2m9tq3z --speed 4 --max-idle 1\n  \
        jitgate recordings play sess-4hx8c2m9tq3z --raw -o session.cast   # then: asciinema play session.cast")]
    Play(PlayArgs),
}

#[derive(Debug, Args)]
pub struct PlayArgs {
    /// The session (`jitgate recordings list`).
    pub session: String,
    /// Write the asciicast v2 file instead of playing it (to stdout, or to --output).
    #[arg(long)]
    pub raw: bool,
    /// With --raw: write the cast to this file instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE", requires = "raw")]
    pub output: Option<PathBuf>,
    /// Playback speed (2 = twice as fast).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Cut pauses longer than this many seconds to this length.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub max_idle: f64,
}

pub async fn run(ctx: &Ctx, cmd: RecordingsCmd) -> anyhow::Result<()> {
    match cmd {
        RecordingsCmd::List { grant } => list(ctx, grant).await,
        RecordingsCmd::Play(args) => play(ctx, args).await,
    }
}

async fn list(ctx: &Ctx, grant: Option<String>) -> anyhow::Result<()> {
    let query: Vec<(&str, String)> = grant.map(|g| ("grant", g)).into_iter().collect();
    let raw = ctx.http.get(&["recordings"], &query).await?;
    if ctx.printed_json(&raw) {
        return Ok(());
    }
    let views: Vec<RecordingView> = decode(raw)?;
    if views.is_empty() {
        outln!("no recordings");
        return Ok(());
    }
    let mut t = table(&[
        "session", "grant", "gateway", "started", "chunks", "bytes", "state",
    ]);
    for v in &views {
        t.add_row(vec![
            v.session_id.clone(),
            v.grant_id.clone(),
            v.gateway.clone(),
            time(v.started_at),
            format!("{}/{}", v.stored_chunks, v.chunks),
            v.bytes.to_string(),
            state_word(v).to_string(),
        ]);
    }
    outln!("{t}");
    Ok(())
}

fn state_word(v: &RecordingView) -> &'static str {
    match (v.complete, v.stored_chunks == v.chunks) {
        (true, true) => "complete",
        (true, false) => "complete, bytes pending",
        (false, _) => "recording or cut",
    }
}

async fn play(ctx: &Ctx, args: PlayArgs) -> anyhow::Result<()> {
    let positive = |x: f64| x.is_finite() && x > 0.0;
    if !(positive(args.speed) && positive(args.max_idle)) {
        bail!(super::http::CliError::Usage(
            "--speed and --max-idle must be positive numbers".into()
        ));
    }
    let (cast, headers) = ctx
        .http
        .get_bytes(&["sessions", &args.session, "recording"])
        .await?;
    let status = headers
        .get("x-jitgate-recording")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("complete")
        .to_string();
    if status != "complete" {
        eprintln!(
            "note: recording of {} is {status} (chunks not yet delivered, or the session was cut)",
            args.session
        );
    }
    if args.raw {
        match &args.output {
            Some(path) => std::fs::write(path, &cast)
                .with_context(|| format!("cannot write {}", path.display()))?,
            None => write_stdout(&cast)?,
        }
        return Ok(());
    }
    let text = String::from_utf8_lossy(&cast);
    let frames = playback(&text, args.speed, args.max_idle)?;
    for (wait, data) in frames {
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        write_stdout(data.as_bytes())?;
    }
    Ok(())
}

fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        other => Ok(other?),
    }
}

/// The output events of an asciicast v2 text as (wait before, data), the waits divided by
/// `speed` and capped at `max_idle` seconds. Input, resize and marker events are skipped.
pub fn playback(cast: &str, speed: f64, max_idle: f64) -> anyhow::Result<Vec<(Duration, String)>> {
    let mut lines = cast.lines().enumerate();
    let Some((_, header)) = lines.next() else {
        bail!("the recording is empty");
    };
    let header: serde_json::Value =
        serde_json::from_str(header).context("line 1: not an asciicast header")?;
    if header.get("version").and_then(|v| v.as_u64()) != Some(2) {
        bail!("line 1: not an asciicast v2 header");
    }
    let mut out = Vec::new();
    let mut last = 0.0f64;
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let (t, code, data): (f64, String, String) = serde_json::from_str(line)
            .with_context(|| format!("line {}: not an asciicast event", i + 1))?;
        if code != "o" {
            continue;
        }
        let wait = ((t - last).max(0.0) / speed).min(max_idle);
        last = t;
        out.push((Duration::from_secs_f64(wait), data));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playback_keeps_output_with_scaled_capped_waits() {
        let cast = "{\"version\": 2, \"width\": 80, \"height\": 24}\n\
                    [0.5, \"o\", \"a\"]\n[0.6, \"i\", \"x\"]\n[1.5, \"o\", \"b\"]\n\
                    [1.5, \"m\", \"exit: 0\"]\n[30.0, \"o\", \"c\"]\n";
        let frames = playback(cast, 2.0, 2.0).unwrap();
        assert_eq!(
            frames,
            vec![
                (Duration::from_millis(250), "a".to_string()),
                (Duration::from_millis(500), "b".to_string()),
                (Duration::from_secs(2), "c".to_string()),
            ]
        );
        assert!(playback("{\"version\": 1}\n", 1.0, 1.0).is_err());
        assert!(playback("{\"version\": 2}\n[1, \"o\"]\n", 1.0, 1.0).is_err());
    }
}
