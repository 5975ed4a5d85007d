//! Ports for child processes and late-bound listeners to listen on; shared by the end-to-end
//! tests, the gateway crate's tests and the benchmarks (each includes this file by path).

/// A TCP port on 127.0.0.1 that nothing listens on, for a child process to bind.
///
/// Taken below the kernel's ephemeral range (`ip_local_port_range`, 32768–60999 by default),
/// never from `bind(…:0)`: such a port comes from that range, which every outgoing connection
/// on the machine also draws its local port from, so between this check and the child's own
/// bind an unrelated connection could take it (seen: a gateway failing to start with
/// "Address already in use" while other tests ran). Ports are handed out in turn from a start
/// that differs per process, so test processes running side by side rarely meet, and each
/// is checked free before it is handed out.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 10_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    if ephemeral_start <= FIRST + 1_000 {
        // No room below the ephemeral range: the kernel's choice is all there is.
        return std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
    }
    let span = ephemeral_start - FIRST;
    let seed = std::process::id().wrapping_mul(7_919)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
    let _ = NEXT.compare_exchange(u32::MAX, seed % span, Ordering::Relaxed, Ordering::Relaxed);
    for _ in 0..span {
        let port = FIRST + NEXT.fetch_add(1, Ordering::Relaxed) % span;
        if std::net::TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
            return port as u16;
        }
    }
    panic!("no free TCP port on 127.0.0.1 between {FIRST} and {ephemeral_start}")
}
