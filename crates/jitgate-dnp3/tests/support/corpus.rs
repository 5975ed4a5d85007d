//! The frames the oracle test shows tshark: hand-built ones from the standard's examples,
//! then requests and responses generated from a fixed seed, some of them corrupted.

use jitgate_dnp3::link::{encode_frame, Control, LinkHeader};
use jitgate_dnp3::transport::segment;

pub struct Case {
    pub name: String,
    /// One TCP payload: one or more link frames.
    pub payload: Vec<u8>,
}

/// xorshift64*: deterministic, so a failure names a case that can be rebuilt.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len() as u64) as usize]
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// The link frames carrying `fragment`, from the master (`dir`) or the outstation.
/// Every case gets its own master address (`case`): tshark reassembles fragments per
/// address pair, across TCP streams, so shared addresses would let one case's segments
/// complete another's fragment.
pub fn frames(dir: bool, fragment: &[u8], tseq: u8, case: usize) -> Vec<u8> {
    let master = 1000 + case as u16;
    let header = LinkHeader {
        control: Control {
            dir,
            prm: true,
            fcb: false,
            fcv: false,
            function: 4,
        },
        destination: if dir { 10 } else { master },
        source: if dir { master } else { 10 },
    };
    let (segments, _) = segment(fragment, tseq);
    let mut out = Vec::new();
    for s in segments {
        encode_frame(&header, &s, &mut out).unwrap();
    }
    out
}

fn range(rng: &mut Rng, q: u8, out: &mut Vec<u8>) -> Vec<u32> {
    let mut indexes = Vec::new();
    match q {
        0x00 => {
            let s = rng.below(200) as u8;
            let e = s.saturating_add(rng.below(40) as u8);
            out.extend([s, e]);
            indexes.extend(u32::from(s)..=u32::from(e));
        }
        0x01 => {
            let s = rng.below(60_000) as u16;
            let e = s.saturating_add(rng.below(30) as u16);
            out.extend(s.to_le_bytes());
            out.extend(e.to_le_bytes());
            indexes.extend(u32::from(s)..=u32::from(e));
        }
        0x07 => out.push(1 + rng.below(5) as u8),
        0x08 => out.extend((1 + rng.below(5) as u16).to_le_bytes()),
        0x17 => {
            let n = 1 + rng.below(4) as u8;
            out.push(n);
            for _ in 0..n {
                let i = rng.below(256) as u8;
                indexes.push(u32::from(i));
            }
        }
        0x28 => {
            let n = 1 + rng.below(4) as u16;
            out.extend(n.to_le_bytes());
            for _ in 0..n {
                indexes.push(rng.below(65_536) as u32);
            }
        }
        _ => {}
    }
    indexes
}

/// One object header of a READ (no data): index prefixes written, nothing else.
fn read_header(rng: &mut Rng, out: &mut Vec<u8>) {
    const POINTS: &[(u8, u8)] = &[
        (1, 0),
        (1, 1),
        (1, 2),
        (2, 0),
        (2, 1),
        (2, 2),
        (2, 3),
        (3, 0),
        (10, 0),
        (10, 1),
        (10, 2),
        (20, 0),
        (20, 1),
        (20, 2),
        (20, 5),
        (21, 0),
        (21, 1),
        (22, 0),
        (22, 1),
        (30, 0),
        (30, 1),
        (30, 2),
        (30, 3),
        (30, 4),
        (30, 5),
        (30, 6),
        (32, 0),
        (32, 1),
        (40, 0),
        (40, 1),
        (40, 2),
    ];
    if rng.below(4) == 0 {
        let class = 1 + rng.below(4) as u8;
        out.extend([60, class, 0x06]);
        return;
    }
    let (g, v) = rng.pick(POINTS);
    let q = rng.pick(&[0x00u8, 0x01, 0x06, 0x07, 0x08, 0x17, 0x28]);
    out.extend([g, v, q]);
    let indexes = range(rng, q, out);
    for i in indexes.iter().filter(|_| q == 0x17 || q == 0x28) {
        if q == 0x17 {
            out.push(*i as u8);
        } else {
            out.extend((*i as u16).to_le_bytes());
        }
    }
}

/// A control header: CROBs or analog output blocks, index-prefixed or over a range.
fn command_header(rng: &mut Rng, out: &mut Vec<u8>) {
    let (g, v, size) = rng.pick(&[
        (12u8, 1u8, 11usize),
        (41, 1, 5),
        (41, 2, 3),
        (41, 3, 5),
        (41, 4, 9),
    ]);
    let q = rng.pick(&[0x00u8, 0x01, 0x17, 0x28]);
    out.extend([g, v, q]);
    let indexes = range(rng, q, out);
    for i in indexes.iter().take(6) {
        match q {
            0x17 => out.push(*i as u8),
            0x28 => out.extend((*i as u16).to_le_bytes()),
            _ => {}
        }
        let mut object = rng.bytes(size);
        if g == 12 {
            object[0] = rng.pick(&[0x01, 0x02, 0x03, 0x04, 0x41, 0x81]);
            object[1] = 1;
        }
        object[size - 1] = 0;
        out.extend(object);
    }
    if indexes.len() > 6 {
        // Keep range headers short: rewrite the range to cover what was written.
        out.clear();
        command_header(rng, out);
    }
}

pub fn request(rng: &mut Rng) -> Vec<u8> {
    let seq = rng.below(16) as u8;
    let mut f = vec![0xC0 | seq];
    match rng.below(10) {
        0..=3 => {
            f.push(0x01);
            for _ in 0..1 + rng.below(4) {
                read_header(rng, &mut f);
            }
        }
        4..=6 => {
            f.push(rng.pick(&[0x03u8, 0x04, 0x05, 0x06]));
            let mut h = Vec::new();
            command_header(rng, &mut h);
            f.extend(h);
        }
        7 => {
            f.push(0x02);
            if rng.below(2) == 0 {
                f.extend([50, 1, 0x07, 1]);
                f.extend(rng.bytes(6));
            } else {
                f.extend([80, 1, 0x00, 7, 7, 0]);
            }
        }
        8 => {
            let function = rng.pick(&[0x14u8, 0x15, 0x07, 0x09]);
            f.push(function);
            if function >= 0x14 {
                f.extend([60, 2 + rng.below(3) as u8, 0x06]);
            } else {
                f.extend([20, 0, 0x06]);
            }
        }
        _ => f.push(rng.pick(&[0x0Du8, 0x0E, 0x17, 0x18])),
    }
    f
}

pub fn response(rng: &mut Rng) -> Vec<u8> {
    let seq = rng.below(16) as u8;
    let unsolicited = rng.below(4) == 0;
    let mut f = if unsolicited {
        vec![0xF0 | seq, 0x82]
    } else {
        vec![0xC0 | seq, 0x81]
    };
    f.extend([rng.below(256) as u8 & 0x9F, rng.below(8) as u8]);
    for _ in 0..rng.below(3) {
        match rng.below(4) {
            0 => {
                let s = rng.below(100) as u16;
                let n = 1 + rng.below(8) as u16;
                f.extend([30, 1, 0x01]);
                f.extend(s.to_le_bytes());
                f.extend((s + n - 1).to_le_bytes());
                f.extend(rng.bytes(5 * n as usize));
            }
            1 => {
                let n = 1 + rng.below(20) as u8;
                f.extend([1, 2, 0x00, 0, n - 1]);
                f.extend(rng.bytes(n as usize));
            }
            2 => {
                let n = 1 + rng.below(3) as u16;
                f.extend([2, 2, 0x28]);
                f.extend(n.to_le_bytes());
                for _ in 0..n {
                    f.extend((rng.below(500) as u16).to_le_bytes());
                    f.extend(rng.bytes(7));
                }
            }
            _ => {
                let n = 1 + rng.below(4) as u16;
                f.extend([20, 1, 0x00, 0, (n - 1) as u8]);
                f.extend(rng.bytes(5 * n as usize));
            }
        }
    }
    f
}

/// Corrupt one byte of a link frame's CRC-protected area (never the start bytes, which
/// would make it "not DNP3" rather than "corrupted DNP3").
pub fn corrupt(rng: &mut Rng, payload: &mut [u8]) {
    let at = 2 + rng.below(payload.len() as u64 - 2) as usize;
    payload[at] ^= 1 << rng.below(8);
}

/// Requests and responses written out by hand from the standard's examples.
fn hand_built() -> Vec<(&'static str, bool, Vec<u8>)> {
    let mut crob = vec![0xC1, 0x03, 12, 1, 0x28, 1, 0, 3, 0];
    crob.extend([0x41, 1, 0xE8, 0x03, 0, 0, 0, 0, 0, 0, 0]);
    vec![
        ("read class 0", true, vec![0xC0, 0x01, 60, 1, 0x06]),
        (
            "integrity poll",
            true,
            vec![
                0xC1, 0x01, 60, 2, 0x06, 60, 3, 0x06, 60, 4, 0x06, 60, 1, 0x06,
            ],
        ),
        (
            "read ai 0-65535",
            true,
            vec![0xC2, 0x01, 30, 0, 0x01, 0, 0, 0xFF, 0xFF],
        ),
        (
            "read events limited",
            true,
            vec![0xC3, 0x01, 60, 2, 0x07, 10],
        ),
        ("select crob 3", true, crob.clone()),
        ("operate crob 3", true, {
            let mut c = crob.clone();
            c[0] = 0xC2;
            c[1] = 0x04;
            c
        }),
        (
            "direct operate ao",
            true,
            vec![0xC4, 0x05, 41, 2, 0x17, 1, 7, 0x10, 0, 0],
        ),
        (
            "clear restart",
            true,
            vec![0xC5, 0x02, 80, 1, 0x00, 7, 7, 0],
        ),
        (
            "write time",
            true,
            vec![0xC6, 0x02, 50, 1, 0x07, 1, 1, 2, 3, 4, 5, 6],
        ),
        ("cold restart", true, vec![0xC7, 0x0D]),
        ("delay measure", true, vec![0xC8, 0x17]),
        (
            "enable unsolicited",
            true,
            vec![0xC9, 0x14, 60, 2, 0x06, 60, 3, 0x06, 60, 4, 0x06],
        ),
        ("confirm unsolicited", true, vec![0xD0, 0x00]),
        ("immediate freeze", true, vec![0xCA, 0x07, 20, 0, 0x06]),
        ("refusal: no func", false, vec![0xC1, 0x81, 0x00, 0x01]),
        (
            "refusal: object unknown",
            false,
            vec![0xC2, 0x81, 0x00, 0x02],
        ),
        (
            "refusal: parameter error",
            false,
            vec![0xC3, 0x81, 0x00, 0x04],
        ),
        (
            "null response after restart",
            false,
            vec![0xC4, 0x81, 0x80, 0x00],
        ),
        ("unsolicited null", false, vec![0xF0, 0x82, 0x80, 0x00]),
        // Malformed at the application layer (CRCs right).
        (
            "malformed: stop before start",
            true,
            vec![0xC0, 0x01, 30, 1, 0x00, 9, 3],
        ),
        ("malformed: crob list short", true, {
            let mut c = crob.clone();
            c[5] = 2;
            c
        }),
        ("malformed: header cut", true, vec![0xC0, 0x01, 60, 1]),
        (
            "malformed: range cut",
            true,
            vec![0xC0, 0x01, 30, 1, 0x01, 0, 0],
        ),
        (
            "malformed: time cut",
            true,
            vec![0xC6, 0x02, 50, 1, 0x07, 1, 1, 2, 3],
        ),
        (
            "malformed: response data cut",
            false,
            vec![0xC0, 0x81, 0, 0, 30, 1, 0x00, 0, 1, 1, 2, 3, 4, 5, 6],
        ),
        ("unknown object", true, vec![0xC0, 0x01, 120, 1, 0x06]),
        ("unknown function", true, vec![0xC0, 0x30]),
    ]
}

pub fn all(rng: &mut Rng) -> Vec<Case> {
    let mut cases = Vec::new();
    for (name, dir, fragment) in hand_built() {
        cases.push(Case {
            name: name.into(),
            payload: frames(dir, &fragment, 0, cases.len()),
        });
    }
    for i in 0..400 {
        let (dir, fragment) = if i % 3 == 2 {
            (false, response(rng))
        } else {
            (true, request(rng))
        };
        let mut payload = frames(dir, &fragment, rng.below(64) as u8, cases.len());
        let mut name = format!(
            "generated {i} ({})",
            if dir { "request" } else { "response" }
        );
        if i % 8 == 7 {
            corrupt(rng, &mut payload);
            name.push_str(", corrupted");
        }
        cases.push(Case { name, payload });
    }
    // A fragment of three segments each way, last: tshark's reassembly is keyed by more
    // than the link addresses, and a multi-segment fragment early in the capture was seen
    // to swallow later single-segment fragments with the same transport sequence.
    let mut big_read = vec![0xC5, 0x01];
    for i in 0..120u8 {
        big_read.extend([1, 2, 0x00, i, i]);
    }
    cases.push(Case {
        name: "read in 3 segments".into(),
        payload: frames(true, &big_read, 62, cases.len()),
    });
    let mut big_response = vec![0xC5, 0x81, 0, 0, 30, 1, 0x01, 0, 0, 99, 0];
    big_response.extend(rng.bytes(500));
    cases.push(Case {
        name: "response in 3 segments".into(),
        payload: frames(false, &big_response, 9, cases.len()),
    });
    cases
}
