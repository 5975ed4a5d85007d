//! Relay lanes: every tunnel session runs from start to end on one thread.
//!
//! A lane is a thread driving a current-thread Tokio runtime of its own. The accept loop
//! hands each accepted connection to the next lane in turn ([`Lanes::serve`]); the session's
//! TLS, handshake, reads, checks, writes and timers then stay on that thread. Everything the
//! sessions share ([`crate::runtime::Gateway`]: keys, the live-session registry, the event
//! file) is the same across lanes; the control channel, the event delivery and the other
//! periodic work stay on the process's multi-threaded runtime.
//!
//! Why not the multi-threaded runtime for sessions: its work stealing moved a session's task
//! between worker threads on nearly every frame — measured on a DNP3 poll at one master,
//! 1.35 thread migrations per poll at the gateway against about none for a socat relay —
//! and each move is a wake-up of another CPU on the data path (docs/BENCHMARKS.md, DNP3,
//! "2026-12-05, later"). With one lane per CPU the sessions still use every core, but a
//! frame is handled by the thread that read it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::runtime::Gateway;

/// The lanes of one gateway; stopping them (drop) cancels what still runs on them, so the
/// owner keeps them until its sessions have ended ([`crate::runtime::RunningGateway::stop`]).
pub struct Lanes {
    lanes: Vec<Lane>,
    next: AtomicUsize,
}

struct Lane {
    handle: Handle,
    /// Dropped (or sent) to end the lane's thread.
    _stop: oneshot::Sender<()>,
}

impl Lanes {
    /// One lane per CPU this process may use (at least one).
    pub fn per_cpu() -> std::io::Result<Self> {
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Self::start(cpus)
    }

    /// Start `count` lanes (at least one).
    pub fn start(count: usize) -> std::io::Result<Self> {
        let mut lanes = Vec::with_capacity(count.max(1));
        for i in 0..count.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let handle = runtime.handle().clone();
            let (stop, stopped) = oneshot::channel::<()>();
            std::thread::Builder::new()
                .name(format!("relay-lane-{i}"))
                .spawn(move || {
                    runtime.block_on(async {
                        let _ = stopped.await;
                    });
                    // Sessions still running are dropped with the runtime; blocking work
                    // they started (a disk flush) is not waited for here.
                    runtime.shutdown_background();
                })?;
            lanes.push(Lane {
                handle,
                _stop: stop,
            });
        }
        Ok(Self {
            lanes,
            next: AtomicUsize::new(0),
        })
    }

    /// How many lanes there are.
    pub fn len(&self) -> usize {
        self.lanes.len()
    }

    /// Never true: there is always a lane.
    pub fn is_empty(&self) -> bool {
        self.lanes.is_empty()
    }

    /// Serve an accepted tunnel connection on the next lane ([`crate::session::serve`]).
    pub fn serve(&self, gw: Arc<Gateway>, tcp: TcpStream, peer: SocketAddr) {
        // The socket moves to the lane's reactor: out of this runtime's, into the lane's.
        let tcp = match tcp.into_std() {
            Ok(tcp) => tcp,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "cannot hand the connection to a relay lane; closed");
                return;
            }
        };
        self.next_lane().spawn(async move {
            match TcpStream::from_std(tcp) {
                Ok(tcp) => crate::session::serve(gw, tcp, peer).await,
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "a relay lane cannot take the connection; closed");
                }
            }
        });
    }

    /// Run a future on the next lane (what [`Lanes::serve`] does with a session), for the
    /// tests of the lanes themselves.
    #[cfg(test)]
    fn spawn<F>(&self, work: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.next_lane().spawn(work)
    }

    /// The lanes in turn (round robin).
    fn next_lane(&self) -> &Handle {
        &self.lanes[self.next.fetch_add(1, Ordering::Relaxed) % self.lanes.len()].handle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thread_name() -> String {
        std::thread::current()
            .name()
            .unwrap_or_default()
            .to_string()
    }

    #[tokio::test]
    async fn work_goes_to_the_lanes_in_turn_and_stays_on_its_thread() {
        let lanes = Lanes::start(2).unwrap();
        assert_eq!(lanes.len(), 2);
        let mut seen = Vec::new();
        for _ in 0..4 {
            let names = lanes
                .spawn(async {
                    let before = thread_name();
                    // Across awaits (a timer, a yield) the task stays on its lane's thread.
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    tokio::task::yield_now().await;
                    (before, thread_name())
                })
                .await
                .unwrap();
            assert_eq!(names.0, names.1, "a task moved between threads");
            seen.push(names.0);
        }
        assert_eq!(
            seen,
            [
                "relay-lane-0",
                "relay-lane-1",
                "relay-lane-0",
                "relay-lane-1"
            ]
        );
    }

    #[tokio::test]
    async fn a_connection_accepted_here_is_served_on_a_lane() {
        // The socket must move reactors: a stream accepted on this runtime is read on the lane.
        let lanes = Lanes::start(1).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let mut c = TcpStream::connect(addr).await.unwrap();
            c.write_all(b"ping").await.unwrap();
        });
        let (tcp, _) = listener.accept().await.unwrap();
        let tcp = tcp.into_std().unwrap();
        let got = lanes
            .spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut tcp = TcpStream::from_std(tcp).unwrap();
                let mut buf = [0u8; 4];
                tcp.read_exact(&mut buf).await.unwrap();
                (buf, thread_name())
            })
            .await
            .unwrap();
        client.await.unwrap();
        assert_eq!(got, (*b"ping", "relay-lane-0".to_string()));
    }

    #[tokio::test]
    async fn dropping_the_lanes_ends_what_runs_on_them() {
        let lanes = Lanes::start(1).unwrap();
        let forever = lanes.spawn(std::future::pending::<()>());
        drop(lanes);
        let ended = forever.await.unwrap_err();
        assert!(ended.is_cancelled(), "{ended}");
    }
}
