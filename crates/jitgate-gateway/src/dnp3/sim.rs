//! A simulated DNP3 outstation over TCP (feature `sim`), for tests and the quickstart: the
//! device behind `rtu-12`.
//!
//! It answers like a device (its application layer is in `sim_db`): class 0 polls, reads
//! of points by range or index, event polls, select-before-operate and direct operate of
//! binary and analog outputs, unsolicited responses when the master enables them (one at a
//! time, each waiting for its confirm), multi-fragment responses with a confirm per
//! fragment, the link layer's reset, test and status requests, and the frame count bit of
//! link-confirmed data (a repeated frame is acknowledged and dropped, as IEEE 1815 says).
//! It is strict like the gateway: a frame with other link addresses, a bad CRC or a
//! transport sequence error closes the connection.
//!
//! Framing, reassembly and request parsing reuse `jitgate-dnp3`; that it is a real
//! outstation is shown by dnp3py's master polling and operating it (the integration tests).

use super::sim_conn;
use super::sim_db::Db;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

pub(super) struct Shared {
    db: Mutex<Db>,
    /// Bumped on every new event, so connections look for unsolicited work.
    pub(super) changed: watch::Sender<u64>,
    pub(super) outstation: u16,
    pub(super) master: u16,
}

impl Shared {
    pub(super) fn db(&self) -> MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running simulated outstation. Dropping it stops it without waiting.
pub struct SimOutstation {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

/// Listen on `addr` as outstation `outstation` for master `master`, with `points` points
/// of each type (all zero, IIN1.7 "restart" set until the master clears it).
pub async fn start(
    addr: SocketAddr,
    outstation: u16,
    master: u16,
    points: u16,
) -> io::Result<SimOutstation> {
    let listener = TcpListener::bind(addr).await?;
    let local_addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        db: Mutex::new(Db::new(points)),
        changed: watch::channel(0).0,
        outstation,
        master,
    });
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared), stopped));
    Ok(SimOutstation {
        local_addr,
        shared,
        stop,
        task: Some(task),
    })
}

impl SimOutstation {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Recognisable values, without events: analog input `n` = 100 + n, counter `n` =
    /// 1000 + n, binary input `n` on when `n` is odd.
    pub fn preset_values(&self) {
        let mut db = self.shared.db();
        for (n, v) in db.ai.iter_mut().enumerate() {
            *v = 100 + n as i32;
        }
        for (n, v) in db.counters.iter_mut().enumerate() {
            *v = 1000 + n as u32;
        }
        for (n, v) in db.bi.iter_mut().enumerate() {
            *v = n % 2 == 1;
        }
    }

    /// Set binary input `i`; a change is a class 1 event (g2v1).
    pub fn set_binary_input(&self, i: u16, value: bool) {
        let mut db = self.shared.db();
        let Some(v) = db.bi.get_mut(usize::from(i)) else {
            return;
        };
        if *v != value {
            *v = value;
            db.event(1, 2, i, vec![0x01 | u8::from(value) << 7]);
            drop(db);
            self.shared.changed.send_modify(|n| *n += 1);
        }
    }

    /// Set analog input `i`; a change is a class 2 event (g32v1).
    pub fn set_analog_input(&self, i: u16, value: i32) {
        let mut db = self.shared.db();
        let Some(v) = db.ai.get_mut(usize::from(i)) else {
            return;
        };
        if *v != value {
            *v = value;
            let mut data = vec![0x01];
            data.extend(value.to_le_bytes());
            db.event(2, 32, i, data);
            drop(db);
            self.shared.changed.send_modify(|n| *n += 1);
        }
    }

    pub fn set_counter(&self, i: u16, value: u32) {
        if let Some(v) = self.shared.db().counters.get_mut(usize::from(i)) {
            *v = value;
        }
    }

    pub fn set_analog_output(&self, i: u16, value: i32) {
        if let Some(v) = self.shared.db().ao.get_mut(usize::from(i)) {
            *v = value;
        }
    }

    pub fn binary_output(&self, i: u16) -> bool {
        self.shared
            .db()
            .bo
            .get(usize::from(i))
            .copied()
            .unwrap_or(false)
    }

    pub fn analog_output(&self, i: u16) -> i32 {
        self.shared
            .db()
            .ao
            .get(usize::from(i))
            .copied()
            .unwrap_or(0)
    }

    /// Every application fragment the outstation received, in order (confirms included).
    pub fn received(&self) -> Vec<Vec<u8>> {
        self.shared.db().received.clone()
    }

    pub fn unsolicited_enabled(&self, class: u8) -> bool {
        self.shared.db().unsolicited.get(usize::from(class)) == Some(&true)
    }

    /// Events not yet confirmed by a master.
    pub fn events(&self) -> usize {
        self.shared.db().events.len()
    }

    /// IIN1.7 (device restart) as the outstation reports it.
    pub fn restart_flag(&self) -> bool {
        self.shared.db().restart
    }

    /// Stop accepting, close every connection, and wait until done.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimOutstation {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(sim_conn::serve(stream, Arc::clone(&shared), stopped.clone()));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}
