//! The simulated outstation's points and its application layer: what it answers to each
//! request fragment. The link and transport layers and the connections are in `sim`.
//!
//! Points: binary inputs (g1v2), binary outputs (g10v2), counters (g20v1), analog inputs
//! (g30v1) and analog outputs (g40v1), `points` of each. Changing a binary input makes a
//! class 1 event (g2v1), changing an analog input a class 2 event (g32v1). Controls: CROBs
//! (g12v1) and analog output blocks (g41v1-4) by SELECT + OPERATE (the OPERATE must repeat
//! the SELECT with the next sequence on the same connection within [`SELECT_TIMEOUT`]), DIRECT_OPERATE and
//! DIRECT_OPERATE_NR, echoed with a status per object as IEEE 1815 says.

use jitgate_dnp3::header::iin2;
use jitgate_dnp3::parse::{parse_request, Indexes, Limits, ObjectHeader};
use jitgate_dnp3::FunctionCode;
use std::time::{Duration, Instant};

/// How long the simulated outstation keeps a SELECT operable.
pub const SELECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Points per object header in a response, so each block stays well under a fragment.
const BLOCK_POINTS: usize = 100;

/// One buffered event.
#[derive(Debug, Clone)]
pub(super) struct Event {
    pub id: u64,
    pub class: u8,
    group: u8,
    index: u16,
    data: Vec<u8>,
}

/// A connection's pending SELECT: its application sequence, its objects, when. Kept per
/// connection (per master association), so masters on other connections cannot cancel it.
pub(super) type Selected = Option<(u8, Vec<u8>, Instant)>;

/// What one request is answered with (before it is packed into fragments).
#[derive(Debug, Default)]
pub(super) struct Reply {
    pub respond: bool,
    pub iin2: u8,
    /// Object blocks (header and objects), in order.
    pub blocks: Vec<Vec<u8>>,
    /// Events the blocks carry: removed once the master confirms the response.
    pub events: Vec<u64>,
}

/// The outstation's database and control state.
#[derive(Debug)]
pub(super) struct Db {
    pub bi: Vec<bool>,
    pub bo: Vec<bool>,
    pub counters: Vec<u32>,
    pub ai: Vec<i32>,
    pub ao: Vec<i32>,
    pub events: Vec<Event>,
    next_event: u64,
    /// Unsolicited reporting enabled, by class (1-3).
    pub unsolicited: [bool; 4],
    /// IIN1.7, set at start until the master clears it.
    pub restart: bool,
    /// Every application fragment received, in order: what tests check the gateway let by.
    pub received: Vec<Vec<u8>>,
}

fn flags(on: bool) -> u8 {
    0x01 | u8::from(on) << 7
}

impl Db {
    pub fn new(points: u16) -> Db {
        let n = usize::from(points);
        Db {
            bi: vec![false; n],
            bo: vec![false; n],
            counters: vec![0; n],
            ai: vec![0; n],
            ao: vec![0; n],
            events: Vec::new(),
            next_event: 0,
            unsolicited: [false; 4],
            restart: true,
            received: Vec::new(),
        }
    }

    pub fn iin1(&self) -> u8 {
        let mut iin1 = u8::from(self.restart) << 7;
        for e in &self.events {
            iin1 |= 1 << e.class;
        }
        iin1
    }

    pub fn event(&mut self, class: u8, group: u8, index: u16, data: Vec<u8>) {
        self.next_event += 1;
        self.events.push(Event {
            id: self.next_event,
            class,
            group,
            index,
            data,
        });
    }

    /// Events of the classes unsolicited reporting is enabled for.
    pub fn unsolicited_events(&self) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|e| self.unsolicited.get(usize::from(e.class)) == Some(&true))
            .collect()
    }

    pub fn remove_events(&mut self, ids: &[u64]) {
        self.events.retain(|e| !ids.contains(&e.id));
    }

    /// Answer one request fragment that arrived on the connection whose SELECT is `selected`.
    pub fn handle(&mut self, fragment: &[u8], selected: &mut Selected) -> Reply {
        self.received.push(fragment.to_vec());
        let mut reply = Reply {
            respond: true,
            ..Reply::default()
        };
        let req = match parse_request(fragment, &Limits::default()) {
            Ok(req) => req,
            Err(e) => {
                reply.iin2 = e.refusal_iin2().unwrap_or(iin2::PARAMETER_ERROR);
                return reply;
            }
        };
        use FunctionCode::*;
        reply.respond = req.function.expects_response();
        match req.function {
            Read => {
                for h in &req.headers {
                    self.read(h, &mut reply);
                }
            }
            Write => self.write(req.objects, &req.headers, &mut reply),
            Select | Operate | DirectOperate | DirectOperateNoAck => {
                match self.controls(req.function, req.control.seq, req.objects, selected) {
                    Ok(echo) => reply.blocks.push(echo),
                    Err(iin) => reply.iin2 = iin,
                }
            }
            EnableUnsolicited | DisableUnsolicited => {
                for h in &req.headers {
                    match (h.group, h.variation) {
                        (60, v @ 2..=4) => {
                            if let Some(c) = self.unsolicited.get_mut(usize::from(v - 1)) {
                                *c = req.function == EnableUnsolicited;
                            }
                        }
                        _ => reply.iin2 |= iin2::OBJECT_UNKNOWN,
                    }
                }
            }
            ColdRestart | WarmRestart | DelayMeasurement => {
                // Time delay fine (g52v2), one object: 0 ms.
                reply.blocks.push(vec![52, 2, 0x07, 1, 0, 0]);
                if req.function != DelayMeasurement {
                    self.restart = true;
                }
            }
            ImmediateFreeze | ImmediateFreezeNoAck => {}
            Confirm => reply.respond = false,
            _ => reply.iin2 = iin2::NO_FUNC_CODE_SUPPORT,
        }
        reply
    }

    fn read(&self, h: &ObjectHeader, reply: &mut Reply) {
        let (default, values): (u8, Vec<Vec<u8>>) = match h.group {
            60 => {
                self.read_class(h.variation, reply);
                return;
            }
            1 => (2, self.bi.iter().map(|v| vec![flags(*v)]).collect()),
            10 => (2, self.bo.iter().map(|v| vec![flags(*v)]).collect()),
            20 => (1, with_flags(self.counters.iter().map(|v| v.to_le_bytes()))),
            30 => (1, with_flags(self.ai.iter().map(|v| v.to_le_bytes()))),
            40 => (1, with_flags(self.ao.iter().map(|v| v.to_le_bytes()))),
            _ => {
                reply.iin2 |= iin2::OBJECT_UNKNOWN;
                return;
            }
        };
        if h.variation != 0 && h.variation != default {
            reply.iin2 |= iin2::OBJECT_UNKNOWN;
            return;
        }
        let n = values.len() as u32;
        let indexes: Vec<u32> = match &h.indexes {
            Indexes::All | Indexes::Count(_) => (0..n).collect(),
            Indexes::Range { start, stop } if *stop < n => (*start..=*stop).collect(),
            Indexes::List(list) if list.iter().all(|i| *i < n) => list.clone(),
            _ => {
                reply.iin2 |= iin2::PARAMETER_ERROR;
                return;
            }
        };
        for chunk in indexes.chunks(BLOCK_POINTS) {
            let (Some(&first), Some(&last)) = (chunk.first(), chunk.last()) else {
                continue;
            };
            let contiguous = last - first + 1 == chunk.len() as u32;
            let mut block = vec![h.group, default];
            if contiguous {
                block.push(0x01);
                block.extend((first as u16).to_le_bytes());
                block.extend((last as u16).to_le_bytes());
            } else {
                block.push(0x28);
                block.extend((chunk.len() as u16).to_le_bytes());
            }
            for &i in chunk {
                if !contiguous {
                    block.extend((i as u16).to_le_bytes());
                }
                block.extend(values.get(i as usize).map_or(&[][..], Vec::as_slice));
            }
            reply.blocks.push(block);
        }
    }

    fn read_class(&self, variation: u8, reply: &mut Reply) {
        if variation == 1 {
            for group in [1, 10, 20, 30, 40] {
                let all = ObjectHeader {
                    group,
                    variation: 0,
                    qualifier: 0x06,
                    kind: jitgate_dnp3::PointKind::Other,
                    role: jitgate_dnp3::Role::Static,
                    indexes: Indexes::All,
                    commands: Vec::new(),
                };
                self.read(&all, reply);
            }
            return;
        }
        let class = variation - 1;
        let events: Vec<&Event> = self.events.iter().filter(|e| e.class == class).collect();
        reply.blocks.extend(event_blocks(&events));
        reply.events.extend(events.iter().map(|e| e.id));
    }

    fn write(&mut self, objects: &[u8], headers: &[ObjectHeader], reply: &mut Reply) {
        if jitgate_dnp3::allow::words::CLEAR_RESTART.contains(&objects) {
            self.restart = false;
            return;
        }
        // A time write is taken (the simulated clock is the host's); nothing else is.
        if !headers.iter().all(|h| h.group == 50) {
            reply.iin2 |= iin2::OBJECT_UNKNOWN;
        }
    }

    /// SELECT, OPERATE, DIRECT_OPERATE(_NR): the objects echoed with a status each.
    fn controls(
        &mut self,
        f: FunctionCode,
        seq: u8,
        objects: &[u8],
        selected: &mut Selected,
    ) -> Result<Vec<u8>, u8> {
        let paired = selected.take().is_some_and(|(s, o, at)| {
            (s + 1) & 0x0F == seq && o == objects && at.elapsed() < SELECT_TIMEOUT
        });
        let mut echo = objects.to_vec();
        let mut pos = 0;
        while pos < echo.len() {
            let (Some(&g), Some(&v), Some(&q)) =
                (echo.get(pos), echo.get(pos + 1), echo.get(pos + 2))
            else {
                return Err(iin2::PARAMETER_ERROR);
            };
            let size = match (g, v) {
                (12, 1) => 11,
                (41, 1) | (41, 3) => 5,
                (41, 2) => 3,
                (41, 4) => 9,
                _ => return Err(iin2::OBJECT_UNKNOWN),
            };
            let (count, width, start) = match q {
                0x17 => (
                    usize::from(*echo.get(pos + 3).ok_or(iin2::PARAMETER_ERROR)?),
                    1,
                    None,
                ),
                0x28 => (usize::from(le16(&echo, pos + 3)?), 2, None),
                0x00 => {
                    let (a, b) = (echo.get(pos + 3), echo.get(pos + 4));
                    let (Some(&a), Some(&b)) = (a, b) else {
                        return Err(iin2::PARAMETER_ERROR);
                    };
                    (usize::from(b.saturating_sub(a)) + 1, 0, Some(u16::from(a)))
                }
                _ => return Err(iin2::PARAMETER_ERROR),
            };
            pos += match q {
                0x17 => 4,
                0x28 => 5,
                _ => 5,
            };
            for i in 0..count {
                let index = match start {
                    Some(s) => s + i as u16,
                    None if width == 1 => u16::from(*echo.get(pos).ok_or(iin2::PARAMETER_ERROR)?),
                    None => le16(&echo, pos)?,
                };
                pos += width;
                let data = echo
                    .get(pos..pos + size)
                    .ok_or(iin2::PARAMETER_ERROR)?
                    .to_vec();
                let status = match f {
                    FunctionCode::Select => self.check(g, index),
                    FunctionCode::Operate if !paired => 2,
                    _ => self.execute(g, v, index, &data),
                };
                if let Some(s) = echo.get_mut(pos + size - 1) {
                    *s = status;
                }
                pos += size;
            }
        }
        if f == FunctionCode::Select {
            *selected = Some((seq, objects.to_vec(), Instant::now()));
        }
        Ok(echo)
    }

    /// 0 (success) when the point exists, 4 (not supported) otherwise.
    fn check(&self, group: u8, index: u16) -> u8 {
        let n = if group == 12 {
            self.bo.len()
        } else {
            self.ao.len()
        };
        if usize::from(index) < n {
            0
        } else {
            4
        }
    }

    fn execute(&mut self, group: u8, variation: u8, index: u16, data: &[u8]) -> u8 {
        if self.check(group, index) != 0 {
            return 4;
        }
        let i = usize::from(index);
        if group == 12 {
            let code = data.first().copied().unwrap_or(0);
            let on = match (code >> 6, code & 0x0F) {
                (1, _) | (0, 1 | 3) => true,
                (2, _) | (0, 2 | 4) => false,
                _ => return 4,
            };
            if let Some(o) = self.bo.get_mut(i) {
                *o = on;
            }
            return 0;
        }
        let value = match (variation, data) {
            (1, [a, b, c, d, ..]) => i32::from_le_bytes([*a, *b, *c, *d]),
            (2, [a, b, ..]) => i32::from(i16::from_le_bytes([*a, *b])),
            (3, [a, b, c, d, ..]) => f32::from_le_bytes([*a, *b, *c, *d]) as i32,
            (4, [a, b, c, d, e, f, g, h, ..]) => {
                f64::from_le_bytes([*a, *b, *c, *d, *e, *f, *g, *h]) as i32
            }
            _ => return 3,
        };
        if let Some(o) = self.ao.get_mut(i) {
            *o = value;
        }
        0
    }
}

fn le16(b: &[u8], at: usize) -> Result<u16, u8> {
    match (b.get(at), b.get(at + 1)) {
        (Some(&lo), Some(&hi)) => Ok(u16::from_le_bytes([lo, hi])),
        _ => Err(iin2::PARAMETER_ERROR),
    }
}

fn with_flags(values: impl Iterator<Item = [u8; 4]>) -> Vec<Vec<u8>> {
    values
        .map(|v| {
            let mut o = vec![0x01];
            o.extend(v);
            o
        })
        .collect()
}

/// Events as index-prefixed blocks (qualifier 0x28), one block per group in order of
/// occurrence within it.
pub(super) fn event_blocks(events: &[&Event]) -> Vec<Vec<u8>> {
    let mut blocks = Vec::new();
    for (group, variation) in [(2u8, 1u8), (32, 1)] {
        let of: Vec<&&Event> = events.iter().filter(|e| e.group == group).collect();
        for chunk in of.chunks(BLOCK_POINTS) {
            let mut block = vec![group, variation, 0x28];
            block.extend((chunk.len() as u16).to_le_bytes());
            for e in chunk {
                block.extend(e.index.to_le_bytes());
                block.extend(&e.data);
            }
            blocks.push(block);
        }
    }
    blocks
}
