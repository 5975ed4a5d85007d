//! A corpus of requests generated from a fixed seed, across function codes, object
//! groups and variations, qualifiers, CROBs and analog output blocks, as link frames from
//! master 1 to outstation 10: every function IEEE 1815 defines for a master at least once,
//! then random reads, controls, writes and freezes. All well-formed, so that one session
//! takes them all and every one gets a record; under the scope of [`scope`] some are
//! allowed and some refused.

use crate::dnp3_rig::rule;
use jitgate_core::scope::Dnp3Op::{AssignClass, File, Freeze, Operate, Read, Restart, TimeSync};
use jitgate_core::scope::Dnp3Target::{
    AnalogInput, AnalogOutput, BinaryInput, BinaryOutput, Class, Counter, Device,
};
use jitgate_core::scope::ScopeItem;
use jitgate_dnp3::link::{encode_frame, function, Control, LinkHeader};
use jitgate_dnp3::transport::segment;

/// The grant the generated corpus is replayed under.
pub fn scope() -> Vec<ScopeItem> {
    vec![
        rule(Read, Class, 0, 3),
        rule(Read, AnalogInput, 0, 15),
        rule(Read, BinaryInput, 0, 65535),
        rule(Read, Counter, 0, 7),
        rule(Operate, BinaryOutput, 0, 7),
        rule(Operate, AnalogOutput, 0, 3),
        rule(Freeze, Counter, 0, 7),
        rule(AssignClass, AnalogInput, 0, 15),
        rule(TimeSync, Device, 0, 0),
        rule(Restart, Device, 0, 0),
        rule(File, Device, 0, 0),
    ]
}

/// xorshift64*: deterministic, so a failure names a case that can be rebuilt.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len() as u64) as usize]
    }
}

/// The master's side of one session: transport and application sequence numbers, the
/// frame count bit of link-confirmed data.
struct Master {
    rng: Rng,
    tseq: u8,
    aseq: u8,
    fcb: bool,
    out: Vec<Vec<u8>>,
}

impl Master {
    fn header(&self, function: u8, fcb: bool) -> LinkHeader {
        LinkHeader {
            control: Control {
                dir: true,
                prm: true,
                fcb,
                fcv: function == function::CONFIRMED_USER_DATA,
                function,
            },
            destination: 10,
            source: 1,
        }
    }

    fn link(&mut self, function: u8) {
        if function == function::RESET_LINK_STATES {
            self.fcb = true;
        }
        let mut bytes = Vec::new();
        encode_frame(&self.header(function, false), &[], &mut bytes).unwrap();
        self.out.push(bytes);
    }

    /// A request: `function` and `objects` after the application control byte, with the
    /// next sequence number; link-confirmed when `confirmed` (one frame only).
    fn request(&mut self, function: u8, objects: &[u8], confirmed: bool) {
        self.aseq = (self.aseq + 1) & 0x0F;
        let mut fragment = vec![0xC0 | self.aseq, function];
        fragment.extend_from_slice(objects);
        self.send(&fragment, confirmed);
    }

    fn send(&mut self, fragment: &[u8], confirmed: bool) {
        let (segments, next) = segment(fragment, self.tseq);
        self.tseq = next;
        let confirmed = confirmed && segments.len() == 1;
        let link = if confirmed {
            function::CONFIRMED_USER_DATA
        } else {
            function::UNCONFIRMED_USER_DATA
        };
        let header = self.header(link, confirmed && self.fcb);
        if confirmed {
            self.fcb = !self.fcb;
        }
        let mut bytes = Vec::new();
        for s in segments {
            encode_frame(&header, &s, &mut bytes).unwrap();
        }
        self.out.push(bytes);
    }
}

/// Index ranges and lists for qualifier `q`, written after the qualifier byte; the number
/// of points named.
fn range(rng: &mut Rng, q: u8, max: u16, out: &mut Vec<u8>) -> Vec<u16> {
    let start = rng.below(u64::from(max) + 1) as u16;
    let stop = start.saturating_add(rng.below(6) as u16);
    match q {
        0x00 => {
            let (s, e) = (start.min(250) as u8, stop.min(255) as u8);
            out.extend([s, e]);
            (u16::from(s)..=u16::from(e)).collect()
        }
        0x01 => {
            out.extend(start.to_le_bytes());
            out.extend(stop.to_le_bytes());
            (start..=stop).collect()
        }
        0x07 | 0x08 => {
            let n = 1 + rng.below(4) as u16;
            if q == 0x07 {
                out.push(n as u8);
            } else {
                out.extend(n.to_le_bytes());
            }
            (0..n).collect()
        }
        0x17 | 0x28 => {
            let n = 1 + rng.below(4) as u16;
            let list: Vec<u16> = (0..n)
                .map(|_| rng.below(u64::from(max) + 1) as u16)
                .map(|i| if q == 0x17 { i.min(255) } else { i })
                .collect();
            if q == 0x17 {
                out.push(n as u8);
            } else {
                out.extend(n.to_le_bytes());
            }
            list
        }
        _ => Vec::new(),
    }
}

fn index(q: u8, i: u16, out: &mut Vec<u8>) {
    match q {
        0x17 => out.push(i as u8),
        0x28 => out.extend(i.to_le_bytes()),
        _ => {}
    }
}

/// One READ header of static points, events or class data.
fn read_header(rng: &mut Rng, out: &mut Vec<u8>) {
    const POINTS: &[(u8, &[u8])] = &[
        (1, &[0, 1, 2]),
        (2, &[0, 1, 2, 3]),
        (3, &[0, 1, 2]),
        (10, &[0, 1, 2]),
        (11, &[0, 1, 2]),
        (20, &[0, 1, 2, 5, 6]),
        (21, &[0, 1, 2, 5, 6]),
        (22, &[0, 1, 2, 5, 6]),
        (30, &[0, 1, 2, 3, 4, 5, 6]),
        (32, &[0, 1, 2, 3, 4]),
        (40, &[0, 1, 2, 3, 4]),
        (42, &[0, 1, 2]),
        (80, &[1]),
    ];
    if rng.below(5) == 0 {
        let class = 1 + rng.below(4) as u8;
        let q = rng.pick(&[0x06u8, 0x06, 0x07]);
        out.extend([60, class, q]);
        if q == 0x07 {
            out.push(1 + rng.below(20) as u8);
        }
        return;
    }
    let (g, variations) = rng.pick(POINTS);
    let mut v = rng.pick(variations);
    let q = rng.pick(&[0x00u8, 0x01, 0x06, 0x07, 0x08, 0x17, 0x28]);
    // Variation 0 by index list is left to one case of its own (tshark's empty-object rule).
    if v == 0 && (q == 0x17 || q == 0x28) {
        v = variations[variations.len() - 1];
    }
    out.extend([g, v, q]);
    let indexes = range(rng, q, 40, out);
    for i in indexes {
        index(q, i, out);
    }
}

/// A control header: CROBs or analog output blocks, by range or index list.
fn command_header(rng: &mut Rng, out: &mut Vec<u8>) {
    let (g, v) = rng.pick(&[(12u8, 1u8), (12, 1), (41, 1), (41, 2), (41, 3), (41, 4)]);
    let q = rng.pick(&[0x00u8, 0x01, 0x17, 0x28]);
    out.extend([g, v, q]);
    let max = if g == 12 { 9 } else { 5 };
    for i in range(rng, q, max, out) {
        index(q, i, out);
        if g == 12 {
            let code = rng.pick(&[0x01u8, 0x02, 0x03, 0x04, 0x41, 0x81, 0x23, 0x13, 0x00]);
            out.extend([code, 1 + rng.below(3) as u8]);
            out.extend((rng.below(5000) as u32).to_le_bytes());
            out.extend((rng.below(5000) as u32).to_le_bytes());
        } else {
            let x = rng.below(200_000) as i64 - 100_000;
            match v {
                1 => out.extend((x as i32).to_le_bytes()),
                2 => out.extend((x as i16).to_le_bytes()),
                3 => out.extend((x as f32 / 8.0).to_le_bytes()),
                _ => out.extend((x as f64 / 1024.0).to_le_bytes()),
            }
        }
        out.push(0);
    }
}

fn file_open(name: &str) -> Vec<u8> {
    let mut o = vec![70, 3, 0x5B, 1, 26 + name.len() as u8, 0];
    o.extend(26u16.to_le_bytes());
    o.extend((name.len() as u16).to_le_bytes());
    o.extend([0; 6]); // created
    o.extend(0o644u16.to_le_bytes());
    o.extend(0u32.to_le_bytes()); // authentication key
    o.extend(0u32.to_le_bytes()); // file size
    o.extend(1u16.to_le_bytes()); // mode: read
    o.extend(1024u16.to_le_bytes());
    o.extend(7u16.to_le_bytes()); // request id
    o.extend(name.as_bytes());
    o
}

fn file_handle(handle: u32) -> Vec<u8> {
    let mut o = vec![70, 4, 0x5B, 1, 13, 0]; // 0x5B: a count of 1 octet, sizes of 2
    o.extend(handle.to_le_bytes());
    o.extend(0u32.to_le_bytes());
    o.extend(1024u16.to_le_bytes());
    o.extend(8u16.to_le_bytes());
    o.push(0);
    o
}

/// The corpus: payloads (each one request's link frames, or one link frame).
pub fn corpus() -> Vec<Vec<u8>> {
    let mut m = Master {
        rng: Rng(0x5EED_0D1A_3000_0002),
        tseq: 0,
        aseq: 0,
        fcb: true,
        out: Vec::new(),
    };
    m.link(function::RESET_LINK_STATES);
    m.link(function::REQUEST_LINK_STATUS);
    // Every function a master sends, with objects that fit it.
    let crob = |index: u8, code: u8| {
        let mut o = vec![12, 1, 0x17, 1, index, code, 1];
        o.extend(250u32.to_le_bytes());
        o.extend(750u32.to_le_bytes());
        o.push(0);
        o
    };
    m.request(
        0x01,
        &[60, 1, 0x06, 60, 2, 0x06, 60, 3, 0x06, 60, 4, 0x06],
        false,
    );
    m.request(0x01, &[30, 0, 0x00, 0, 15], true);
    m.request(0x01, &[30, 0, 0x17, 2, 3, 9], false); // variation 0 by index list
    m.request(0x02, &[80, 1, 0x00, 7, 7, 0], false);
    m.request(0x02, &[50, 1, 0x07, 1, 1, 2, 3, 4, 5, 6], true);
    m.request(0x02, &[50, 3, 0x07, 1, 1, 2, 3, 4, 5, 6], false);
    m.request(0x03, &crob(3, 0x41), false);
    m.request(0x04, &crob(3, 0x41), false);
    m.request(0x05, &crob(9, 0x03), true);
    m.request(0x06, &crob(2, 0x81), false);
    m.request(0x07, &[20, 0, 0x06], false);
    m.request(0x08, &[20, 0, 0x00, 0, 3], false);
    m.request(0x09, &[20, 1, 0x00, 0, 9], false);
    m.request(0x0A, &[20, 0, 0x06], false);
    m.request(
        0x0B,
        &[
            50, 2, 0x07, 1, 1, 2, 3, 4, 5, 6, 0x10, 0x27, 0, 0, 20, 0, 0x06,
        ],
        false,
    );
    m.request(0x0C, &[20, 0, 0x06], false);
    for f in [0x0D, 0x0E, 0x0F, 0x10, 0x12, 0x13, 0x17, 0x18, 0x1F] {
        m.request(f, &[], false);
    }
    m.request(0x11, &[], false);
    m.request(0x14, &[60, 2, 0x06, 60, 3, 0x06, 60, 4, 0x06], false);
    m.request(0x15, &[60, 2, 0x06], false);
    m.request(0x16, &[60, 2, 0x06, 30, 0, 0x00, 0, 7], false);
    m.request(0x19, &file_open("/log/events.txt"), false);
    m.request(0x1A, &file_handle(0x0102_0304), false);
    m.request(0x1B, &file_open("old.cfg"), false);
    m.request(0x1E, &file_handle(9), false);
    m.request(0x20, &[], false);
    m.request(0x30, &[], false);
    m.request(0x01, &[120, 1, 0x06], false);
    m.request(0x01, &[0, 254, 0x06], false);
    m.request(0x01, &[34, 1, 0x00, 0, 3], false);
    m.request(0x01, &[50, 1, 0x07, 1], false);
    // One index list longer than the record lists (64).
    let mut long = vec![30, 1, 0x28, 100, 0];
    for i in 0..100u16 {
        long.extend((i % 16).to_le_bytes());
    }
    m.request(0x01, &long, false);
    // A read of 600 bytes: three link frames.
    let mut big = Vec::new();
    for i in 0..120u8 {
        big.extend([1, 2, 0x00, i, i]);
    }
    m.request(0x01, &big, false);
    // Unsolicited and solicited confirms.
    m.send(&[0xD3, 0x00], false);
    m.send(&[0xC4, 0x00], false);
    // Then random requests.
    for n in 0..240 {
        let confirmed = n % 9 == 4;
        match m.rng.below(12) {
            0..=4 => {
                let mut o = Vec::new();
                for _ in 0..1 + m.rng.below(3) {
                    read_header(&mut m.rng, &mut o);
                }
                m.request(0x01, &o, confirmed);
            }
            5..=8 => {
                let mut o = Vec::new();
                command_header(&mut m.rng, &mut o);
                let f = m.rng.pick(&[0x03u8, 0x05, 0x06, 0x03]);
                m.request(f, &o, confirmed);
                // Half the SELECTs are followed by their OPERATE (same objects, next sequence).
                if f == 0x03 && m.rng.below(2) == 0 {
                    m.request(0x04, &o, false);
                }
            }
            9 => {
                let f = m.rng.pick(&[0x07u8, 0x08, 0x09, 0x0A]);
                let mut o = vec![20, m.rng.pick(&[0u8, 1, 2])];
                let q = m.rng.pick(&[0x00u8, 0x01, 0x06, 0x17]);
                o.push(q);
                for i in range(&mut m.rng, q, 12, &mut o) {
                    index(q, i, &mut o);
                }
                m.request(f, &o, confirmed);
            }
            10 => {
                let objects: &[u8] = if m.rng.below(2) == 0 {
                    &[80, 1, 0x00, 7, 7, 0]
                } else {
                    &[50, 1, 0x07, 1, 9, 8, 7, 6, 5, 4]
                };
                m.request(0x02, objects, confirmed);
            }
            _ => {
                let f = m.rng.pick(&[0x17u8, 0x18, 0x0D, 0x0E, 0x14, 0x15]);
                // Class 2 objects: what ENABLE/DISABLE_UNSOLICITED take, and what
                // DELAY_MEASURE and RECORD_CURRENT_TIME do not (refused, parameter error).
                let o: &[u8] = if f >= 0x14 { &[60, 3, 0x06] } else { &[] };
                m.request(f, o, confirmed);
            }
        }
    }
    m.link(function::REQUEST_LINK_STATUS);
    m.out
}
