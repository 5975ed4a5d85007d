//! Server memory (RSS) during a 128-way concurrent burst of wrong sign-ins.
//!
//! Run: `cargo bench -p jitgate-server --bench login_burst`. Each configuration runs in a
//! child process of its own (the peak RSS, VmHWM, is per process), on a real server on
//! port 0 with SQLite in a temporary data directory:
//!
//! - `bounded`:   the default `[login]` pool (one password check per core, 64 waiting,
//!   the rest `503 server_busy`);
//! - `unbounded`: `hash_concurrency = 128`, i.e. one argon2 check per request at once, as
//!   before the pool (every check on its own blocking thread).
//!
//! Per-source limits are raised so that every attempt reaches the password check: the
//! burst measures the hashing, not the lockout. Prints RSS before, peak, the answers and the
//! burst's wall time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jitgate_core::SystemClock;
use jitgate_server::config::ServerConfig;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

const BURST: usize = 128;

fn status_kib(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn child(mode: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let data = tempfile::tempdir().unwrap();
        let mut config = ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data.path().to_path_buf(),
            ..ServerConfig::default()
        };
        config.login.source.free_failures = 10_000;
        config.login.source.lockout_after = 10_001;
        if mode == "unbounded" {
            config.login.hash_concurrency = Some(BURST);
        }
        let server = jitgate_server::start(config, Arc::new(SystemClock))
            .await
            .unwrap();
        let url = format!("http://{}/api/v1/auth/login", server.addr);
        let http = reqwest::Client::new();
        // Warm up: one check, so the dummy hash and the pools exist before measuring.
        let _ = http
            .post(&url)
            .json(&json!({"identity": "warm-up", "password": "wrong-password-0"}))
            .send()
            .await
            .unwrap();
        let before = status_kib("VmRSS:");
        let started = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..BURST {
            let http = http.clone();
            let url = url.clone();
            tasks.push(tokio::spawn(async move {
                http.post(url)
                    .json(&json!({"identity": format!("guess-{i}"), "password": "wrong-password-x"}))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }));
        }
        let (mut refused, mut busy) = (0, 0);
        for t in tasks {
            match t.await.unwrap() {
                401 => refused += 1,
                503 => busy += 1,
                other => panic!("unexpected status {other}"),
            }
        }
        let took = started.elapsed();
        let peak = status_kib("VmHWM:");
        println!(
            "{mode:>9}: RSS before {:>5} MiB, peak {:>5} MiB; {refused} answered 401, {busy} answered 503 server_busy; burst {:.2} s",
            before / 1024,
            peak / 1024,
            took.as_secs_f64()
        );
        server.stop().await.close().await;
    });
}

fn main() {
    if let Ok(mode) = std::env::var("JITGATE_LOGIN_BURST_MODE") {
        child(&mode);
        return;
    }
    println!(
        "{BURST} concurrent wrong sign-ins, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let exe = std::env::current_exe().unwrap();
    for mode in ["bounded", "unbounded"] {
        let out = std::process::Command::new(&exe)
            .env("JITGATE_LOGIN_BURST_MODE", mode)
            .output()
            .unwrap();
        print!("{}", String::from_utf8_lossy(&out.stdout));
        if !out.status.success() {
            eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        }
    }
}
