//! Finding and running the external Modbus peers.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output};

/// CI sets `JITGATE_REQUIRE_PEERS=1` so a missing peer fails instead of skipping.
pub fn required() -> bool {
    std::env::var("JITGATE_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

/// Skip loudly, or fail when peers are required. Returns so the caller can `return`.
pub fn missing(what: &str, install: &str) {
    if required() {
        panic!("{what} is required (JITGATE_REQUIRE_PEERS=1) but missing; install it: {install}");
    }
    // Written to the real stderr, not through `eprintln!`, which the test harness captures
    // and hides for a passing test: a skip must be seen.
    let bar = "!".repeat(72);
    let _ = writeln!(
        std::io::stderr().lock(),
        "\n{bar}\n!!! SKIPPED: {what} is not available ({install})\n!!! set JITGATE_REQUIRE_PEERS=1 to make this a failure\n{bar}"
    );
}

pub fn python() -> String {
    std::env::var("JITGATE_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// True when python3 can import pymodbus; otherwise reports it as missing.
pub fn have_pymodbus() -> bool {
    let ok = Command::new(python())
        .args(["-c", "import pymodbus"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        missing("python3 with pymodbus", "pip install pymodbus");
    }
    ok
}

pub fn have_mbpoll() -> bool {
    // `mbpoll -V` prints its version and exits 0.
    let ok = Command::new("mbpoll")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        missing("mbpoll", "apt-get install -y mbpoll");
    }
    ok
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/modbus_peer.py")
}

/// Run the pymodbus scenario against `port` (blocking: call from `spawn_blocking`).
pub fn pymodbus(port: u16, scenario: &str) -> serde_json::Value {
    let out = Command::new(python())
        .arg(script())
        .arg(port.to_string())
        .arg(scenario)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "pymodbus scenario {scenario} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("scenario prints JSON")
}

/// Run mbpoll once against 127.0.0.1:`port` with `args` (blocking).
pub fn mbpoll(port: u16, args: &[&str]) -> Output {
    Command::new("mbpoll")
        .args(["-m", "tcp", "-p", &port.to_string(), "-1", "-0", "-o", "3"])
        .args(args)
        .output()
        .expect("run mbpoll")
}

/// Values mbpoll printed, from lines like `[10]: 1234` (a tab after the colon).
pub fn mbpoll_values(out: &Output) -> Vec<(u32, i64)> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix('[')?;
            let (reference, value) = rest.split_once("]:")?;
            Some((reference.parse().ok()?, value.trim().parse().ok()?))
        })
        .collect()
}
