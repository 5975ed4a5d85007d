//! One connection of the simulated outstation: its link layer (reset, test, status, the
//! frame count bit of confirmed data), transport reassembly, responses split into
//! fragments with a confirm each, and unsolicited responses, one at a time.

use super::sim::Shared;
use super::sim_db::{event_blocks, Reply, Selected};
use jitgate_dnp3::header::{control_of, AppControl};
use jitgate_dnp3::link::{encode_frame, function, parse_frame, Control, Frame, LinkHeader};
use jitgate_dnp3::transport::{segment, DEFAULT_MAX_FRAGMENT};
use jitgate_dnp3::{FunctionCode, Reassembler};
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// Object bytes per response fragment: the fragment limit less the response header.
const FRAGMENT_OBJECTS: usize = DEFAULT_MAX_FRAGMENT - 4;
/// Events in one unsolicited response.
const UNSOLICITED_EVENTS: usize = 100;

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
    /// This connection's SELECT awaiting its OPERATE.
    selected: Selected,
}

pub(super) async fn serve(
    mut stream: TcpStream,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
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
        selected: None,
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
        let reply = self.shared.db().handle(fragment, &mut self.selected);
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
