//! The CPU layout of a benchmark run: everything sharing the machine's CPUs, or the server
//! on a CPU of its own (`JITGATE_BENCH_SERVER_APART=1`). Shared by the gateway benchmarks
//! (`support`) and the SSH benchmark (`ssh.rs`), which include this file by path.

use std::process::{Command, Stdio};

/// `JITGATE_BENCH_SERVER_APART=1`: model a server on a host of its own (how a plant deploys
/// it: the gateway in the OT network, the server in the DMZ) on this one machine by giving
/// it a CPU of its own. [`set_cpus`] puts this process (load generator and device) on CPU 0,
/// which every child inherits — both paths' relays, `jitgate connect`, the gateway and
/// socat alike — and the benchmark starts `jitgate up` on CPU 1 alone (`support::deploy`, `ssh.rs`). The data path of every
/// route then shares one core; only where the evidence is stored differs from the shared
/// layout. Needs `taskset` (util-linux) and at least 2 CPUs.
pub fn server_apart() -> bool {
    std::env::var("JITGATE_BENCH_SERVER_APART").is_ok_and(|v| v == "1")
}

/// Pin this process (all its threads) to CPU 0 when [`server_apart`]; say which layout runs.
pub fn set_cpus() {
    if !server_apart() {
        println!("layout: every process shares all CPUs");
        return;
    }
    let pid = std::process::id().to_string();
    let ok = Command::new("taskset")
        .args(["-a", "-p", "-c", "0", &pid])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "taskset could not pin the benchmark to CPU 0");
    println!("layout: server apart (jitgate up on CPU 1; clients, device, relays, connect and gateway on CPU 0)");
}

