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

use super::sim_db::{event_blocks, Db, Reply};
use jitgate_dnp3::header::{control_of, AppControl};
use jitgate_dnp3::link::{encode_frame, function, parse_frame, Control, Frame, LinkHeader};
use jitgate_dnp3::transport::{segment, DEFAULT_MAX_FRAGMENT};
use jitgate_dnp3::{FunctionCode, Reassembler};
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// Object bytes per response fragment: the fragment limit less the response header.
const FRAGMENT_OBJECTS: usize = DEFAULT_MAX_FRAGMENT - 4;
/// Events in one unsolicited response.
const UNSOLICITED_EVENTS: usize = 100;

struct Shared {
    db: Mutex<Db>,
    /// Bumped on every new event, so connections look for unsolicited work.
    changed: watch::Sender<u64>,
    outstation: u16,
    master: u16,
}

impl Shared {
    fn db(&self) -> MutexGuard<'_, Db> {
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
                    connections.spawn(serve(stream, Arc::clone(&shared), stopped.clone()));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

/// One connection's link, transport and response state.
struct Conn {
    shared: Arc<Shared>,
    reassembler: Reassembler,
    /// Transport sequence of the next segment sent.
    tx_seq: u8,
    /// The frame count bit the next confirmed frame must carry; `None` before a reset.
    expected_fcb: Option<bool>,
    /// Fragments of a response still to send, each after the master confirms the last.
    pending: VecDeque<Vec<u8>>,
    /// The sequence of the fragment awaiting its confirm, and the events the response
    /// carries (removed once its last fragment is confirmed).
    awaiting: Option<(u8, Vec<u64>)>,
    /// The unsolicited response awaiting its confirm: sequence, events.
    unsolicited: Option<(u8, Vec<u64>)>,
    uns_seq: u8,
}

async fn serve(mut stream: TcpStream, shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let mut changed = shared.changed.subscribe();
    let mut conn = Conn {
        shared,
        reassembler: Reassembler::default(),
        tx_seq: 0,
        expected_fcb: None,
        pending: VecDeque::new(),
        awaiting: None,
        unsolicited: None,
        uns_seq: 0,
    };
    let mut inbuf = Vec::new();
    let mut chunk = vec![0u8; 4096];
    loop {
        let out = conn.unsolicited();
        if !out.is_empty() && stream.write_all(&out).await.is_err() {
            return;
        }
        tokio::select! {
            _ = stopped.changed() => return,
            r = changed.changed() => if r.is_err() { return },
            r = stream.read(&mut chunk) => {
                let n = match r {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                inbuf.extend_from_slice(chunk.get(..n).unwrap_or_default());
                let mut out = Vec::new();
                loop {
                    match parse_frame(&inbuf) {
                        Ok(Some((frame, used))) => {
                            inbuf.drain(..used);
                            if conn.frame(&frame, &mut out).is_err() {
                                let _ = stream.write_all(&out).await;
                                return;
                            }
                        }
                        Ok(None) => break,
                        Err(_) => return,
                    }
                }
                if stream.write_all(&out).await.is_err() {
                    return;
                }
            }
        }
    }
}

impl Conn {
    fn link(&self, prm: bool, function: u8) -> LinkHeader {
        LinkHeader {
            control: Control {
                dir: false,
                prm,
                fcb: false,
                fcv: false,
                function,
            },
            destination: self.shared.master,
            source: self.shared.outstation,
        }
    }

    fn secondary(&self, function: u8, out: &mut Vec<u8>) {
        let _ = encode_frame(&self.link(false, function), &[], out);
    }

    /// One frame from the master; `Err` closes the connection.
    fn frame(&mut self, frame: &Frame, out: &mut Vec<u8>) -> Result<(), ()> {
        let h = frame.header;
        if !h.control.dir
            || h.source != self.shared.master
            || h.destination != self.shared.outstation
        {
            return Err(());
        }
        let c = h.control;
        if !c.prm {
            return Ok(());
        }
        match c.function {
            function::RESET_LINK_STATES => {
                self.expected_fcb = Some(true);
                self.secondary(function::ACK, out);
            }
            function::TEST_LINK_STATES => {
                if c.fcv && self.expected_fcb == Some(c.fcb) {
                    self.expected_fcb = Some(!c.fcb);
                }
                self.secondary(function::ACK, out);
            }
            function::REQUEST_LINK_STATUS => self.secondary(function::LINK_STATUS, out),
            function::CONFIRMED_USER_DATA => {
                self.secondary(function::ACK, out);
                match self.expected_fcb {
                    // A repeat of the frame before: acknowledged again, not processed twice.
                    Some(expected) if c.fcv && expected != c.fcb => return Ok(()),
                    _ => self.expected_fcb = Some(!c.fcb),
                }
                self.user_data(frame.user_data(), out)?;
            }
            function::UNCONFIRMED_USER_DATA => self.user_data(frame.user_data(), out)?,
            _ => self.secondary(function::NOT_SUPPORTED, out),
        }
        Ok(())
    }

    fn user_data(&mut self, segment: &[u8], out: &mut Vec<u8>) -> Result<(), ()> {
        match self.reassembler.push(segment) {
            Ok(Some(fragment)) => {
                self.request(&fragment, out);
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(_) => Err(()),
        }
    }

    fn request(&mut self, fragment: &[u8], out: &mut Vec<u8>) {
        let Some(ac) = control_of(fragment) else {
            return;
        };
        let reply = self.shared.db().handle(fragment);
        if fragment.get(1) == Some(&FunctionCode::Confirm.code()) {
            self.confirm(ac, out);
            return;
        }
        // A new request ends whatever response was still going.
        self.pending.clear();
        self.awaiting = None;
        if reply.respond {
            self.respond(ac.seq, reply, out);
        }
    }

    fn confirm(&mut self, ac: AppControl, out: &mut Vec<u8>) {
        if ac.uns {
            if let Some((seq, events)) = self.unsolicited.take() {
                if seq == ac.seq {
                    self.shared.db().remove_events(&events);
                    self.uns_seq = (self.uns_seq + 1) & 0x0F;
                } else {
                    self.unsolicited = Some((seq, events));
                }
            }
            return;
        }
        let Some((seq, events)) = self.awaiting.take() else {
            return;
        };
        if seq != ac.seq {
            self.awaiting = Some((seq, events));
            return;
        }
        match self.pending.pop_front() {
            Some(next) => {
                let next_seq = (seq + 1) & 0x0F;
                if next.first().is_some_and(|c| c & 0x20 != 0) {
                    self.awaiting = Some((next_seq, events));
                }
                self.send(&next, out);
            }
            None => self.shared.db().remove_events(&events),
        }
    }

    /// Pack `reply` into fragments; send the first, keep the rest for the confirms.
    fn respond(&mut self, seq: u8, reply: Reply, out: &mut Vec<u8>) {
        let mut fragments: Vec<Vec<u8>> = vec![Vec::new()];
        for block in reply.blocks {
            if fragments
                .last()
                .is_some_and(|f| !f.is_empty() && f.len() + block.len() > FRAGMENT_OBJECTS)
            {
                fragments.push(Vec::new());
            }
            if let Some(f) = fragments.last_mut() {
                f.extend(block);
            }
        }
        let count = fragments.len();
        let carries_events = !reply.events.is_empty();
        let iin1 = self.shared.db().iin1();
        let mut built = fragments.into_iter().enumerate().map(|(i, objects)| {
            let last = i + 1 == count;
            let control = AppControl {
                fir: i == 0,
                fin: last,
                con: !last || carries_events,
                uns: false,
                seq: (seq + i as u8) & 0x0F,
            };
            let mut app = vec![
                control.to_byte(),
                FunctionCode::Response.code(),
                iin1,
                reply.iin2,
            ];
            app.extend(objects);
            app
        });
        let Some(first) = built.next() else {
            return;
        };
        self.pending = built.collect();
        if count > 1 || carries_events {
            self.awaiting = Some((seq, reply.events));
        }
        self.send(&first, out);
    }

    /// The unsolicited response to send now, if reporting is enabled, events are waiting
    /// and nothing else is in progress.
    fn unsolicited(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.unsolicited.is_some() || self.awaiting.is_some() {
            return out;
        }
        let (blocks, ids, iin1) = {
            let db = self.shared.db();
            let events: Vec<_> = db
                .unsolicited_events()
                .into_iter()
                .take(UNSOLICITED_EVENTS)
                .collect();
            if events.is_empty() {
                return out;
            }
            (
                event_blocks(&events),
                events.iter().map(|e| e.id).collect::<Vec<_>>(),
                db.iin1(),
            )
        };
        let control = AppControl {
            fir: true,
            fin: true,
            con: true,
            uns: true,
            seq: self.uns_seq,
        };
        let mut app = vec![
            control.to_byte(),
            FunctionCode::UnsolicitedResponse.code(),
            iin1,
            0,
        ];
        app.extend(blocks.concat());
        self.unsolicited = Some((self.uns_seq, ids));
        self.send(&app, &mut out);
        out
    }

    fn send(&mut self, app: &[u8], out: &mut Vec<u8>) {
        let (segments, next) = segment(app, self.tx_seq);
        self.tx_seq = next;
        let header = self.link(true, function::UNCONFIRMED_USER_DATA);
        for s in segments {
            let _ = encode_frame(&header, &s, out);
        }
    }
}
