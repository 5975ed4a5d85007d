//! tshark for the DNP3 corpus tests, both ways: captures read into what each master sent,
//! payload by payload, and byte streams written as a pcap for tshark to dissect.
//!
//! tshark is the independent party here: it decides which side of a capture is the master
//! only through the raw payloads it hands over (the DIR bits are read below, not by our
//! parser), and it dissects what reached the outstation and the requests the evidence
//! describes with its own DNP3 dissector.

use crate::peers;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// True when tshark runs; otherwise reports it missing (a failure under
/// `JITGATE_REQUIRE_PEERS=1`).
pub fn have_tshark() -> bool {
    let ok = Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        peers::missing("tshark", "apt-get install -y tshark");
    }
    ok
}

/// The captures to replay: every `.pcap`, `.pcapng` and `.cap` under
/// `JITGATE_DNP3_CORPUS_DIR` when it is set, else under the vendored corpus
/// (`tests/corpus/dnp3`), sorted by path.
pub fn corpus_files() -> (PathBuf, Vec<PathBuf>) {
    let dir = std::env::var_os("JITGATE_DNP3_CORPUS_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/dnp3"),
        PathBuf::from,
    );
    let mut files = Vec::new();
    let mut dirs = vec![dir.clone()];
    while let Some(d) = dirs.pop() {
        let entries = std::fs::read_dir(&d)
            .unwrap_or_else(|e| panic!("cannot read the corpus directory {}: {e}", d.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path
                .extension()
                .is_some_and(|e| e == "pcap" || e == "pcapng" || e == "cap")
            {
                files.push(path);
            }
        }
    }
    files.sort();
    (dir, files)
}

/// One conversation of a capture: what its master sent, payload by payload (the capture's
/// segment boundaries), and the link addresses it used.
#[derive(Debug)]
pub struct Stream {
    /// `tcp 0`, `udp 3`: tshark's stream number.
    pub name: String,
    pub master: u16,
    pub outstation: u16,
    /// (capture frame number, payload).
    pub payloads: Vec<(u32, Vec<u8>)>,
}

/// Every conversation of `capture` in which the master sent something. Retransmissions
/// are left out (a master sends those bytes once).
pub fn read_capture(capture: &Path) -> Vec<Stream> {
    let fields = [
        "frame.number",
        "tcp.stream",
        "udp.stream",
        "ip.src",
        "ipv6.src",
        "tcp.srcport",
        "udp.srcport",
        "tcp.dstport",
        "udp.dstport",
        "tcp.payload",
        "udp.payload",
    ];
    let filter = "(tcp.len > 0 and not tcp.analysis.retransmission) or udp.length > 8";
    let lines = tshark(capture, &fields, Some(filter));
    // (stream) -> endpoints in order of appearance, payloads per endpoint
    let mut streams: Vec<(String, Vec<Side>)> = Vec::new();
    for f in lines {
        let get = |i: usize| f.get(i).map(String::as_str).unwrap_or_default();
        let (name, sport, dport, hex) = if get(1).is_empty() {
            (format!("udp {}", get(2)), get(6), get(8), get(10))
        } else {
            (format!("tcp {}", get(1)), get(5), get(7), get(9))
        };
        if hex.is_empty() {
            continue;
        }
        let host = if get(3).is_empty() { get(4) } else { get(3) };
        let endpoint = format!("{}:{sport}", first(host));
        let frame: u32 = get(0).parse().unwrap();
        let bytes = hex_bytes(hex);
        let at = match streams.iter().position(|(n, _)| *n == name) {
            Some(at) => at,
            None => {
                streams.push((name.clone(), Vec::new()));
                streams.len() - 1
            }
        };
        let sides = &mut streams[at].1;
        let side = match sides.iter().position(|s| s.endpoint == endpoint) {
            Some(i) => i,
            None => {
                sides.push(Side {
                    endpoint,
                    to_dnp3_port: matches!(first(dport), "20000" | "20001"),
                    from_dnp3_port: matches!(first(sport), "20000" | "20001"),
                    payloads: Vec::new(),
                });
                sides.len() - 1
            }
        };
        sides[side].payloads.push((frame, bytes));
    }
    streams
        .into_iter()
        .filter_map(|(name, sides)| {
            let master = master_side(sides)?;
            let (outstation, master_addr) = addresses(&master.payloads)
                .unwrap_or_else(|| (10, sources(&master.payloads).unwrap_or(1)));
            Some(Stream {
                name,
                master: master_addr,
                outstation,
                payloads: master.payloads,
            })
        })
        .collect()
}

struct Side {
    endpoint: String,
    to_dnp3_port: bool,
    from_dnp3_port: bool,
    payloads: Vec<(u32, Vec<u8>)>,
}

/// The master's side of a conversation. First by port: the side that sends to port
/// 20000/20001 (where DNP3 outstations listen) and not from it; a side sending from it is
/// an outstation, so a conversation in which only the outstation spoke has no master.
/// Where the ports do not tell (another port, or 20000 on both sides over UDP): the side
/// whose link frames mostly carry DIR=1 (from the master, IEEE 1815).
fn master_side(sides: Vec<Side>) -> Option<Side> {
    let port = |s: &Side| i64::from(s.to_dnp3_port) - i64::from(s.from_dnp3_port);
    let dir = |s: &Side| -> i64 {
        s.payloads
            .iter()
            .filter(|(_, p)| p.starts_with(&[0x05, 0x64]) && p.len() > 3)
            .map(|(_, p)| if p[3] & 0x80 != 0 { 1 } else { -1 })
            .sum()
    };
    let best = sides.into_iter().max_by_key(|s| (port(s), dir(s)))?;
    match port(&best) {
        1 => Some(best),
        0 if dir(&best) > 0 => Some(best),
        _ => None,
    }
}

/// The (destination, source) pair most link frames at the start of a payload name, among
/// those that are not reserved (0xFFF0 and above: broadcast and special addresses, which no
/// inventory should bind; frames sent to them are then replayed against the pair found,
/// and refused).
fn addresses(payloads: &[(u32, Vec<u8>)]) -> Option<(u16, u16)> {
    let mut seen: Vec<((u16, u16), usize)> = Vec::new();
    for (_, p) in payloads {
        if p.len() >= 8 && p.starts_with(&[0x05, 0x64]) {
            let pair = (
                u16::from_le_bytes([p[4], p[5]]),
                u16::from_le_bytes([p[6], p[7]]),
            );
            if pair.0 >= 0xFFF0 || pair.1 >= 0xFFF0 {
                continue;
            }
            match seen.iter_mut().find(|(k, _)| *k == pair) {
                Some((_, n)) => *n += 1,
                None => seen.push((pair, 1)),
            }
        }
    }
    // The first of the most frequent: `max_by_key` would keep the last.
    let most = seen.iter().map(|(_, n)| *n).max()?;
    seen.iter().find(|(_, n)| *n == most).map(|(k, _)| *k)
}

/// The first source address, not reserved, of a link frame at the start of a payload.
fn sources(payloads: &[(u32, Vec<u8>)]) -> Option<u16> {
    payloads
        .iter()
        .filter(|(_, p)| p.len() >= 8 && p.starts_with(&[0x05, 0x64]))
        .map(|(_, p)| u16::from_le_bytes([p[6], p[7]]))
        .find(|&a| a < 0xFFF0)
}

fn first(field: &str) -> &str {
    field.split('\u{1f}').next().unwrap_or_default()
}

pub fn hex_bytes(hex: &str) -> Vec<u8> {
    let hex: String = hex.chars().filter(char::is_ascii_hexdigit).collect();
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// Separates the occurrences of one field in a packet (`-E aggregator`): a character no
/// field value of interest contains.
pub const AGG: char = '\u{1f}';

/// `fields` of every packet of `capture` (optionally only those matching `filter`), one
/// vector per packet; a field that occurs several times has its values joined by [`AGG`].
pub fn tshark(capture: &Path, fields: &[&str], filter: Option<&str>) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-n").arg("-r").arg(capture).args([
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        &format!("aggregator={AGG}"),
        "-E",
        "separator=/t",
    ]);
    if let Some(f) = filter {
        cmd.args(["-Y", f]);
    }
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("run tshark");
    assert!(
        out.status.success(),
        "tshark failed on {}: {}",
        capture.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// Write `streams` as a pcap (each a TCP conversation from its own port to port 20000,
/// sequence numbers continuous so tshark reassembles across packets) and dissect it.
/// Each stream is given as its chunks; a chunk over 60000 bytes is split.
pub fn dissect_streams(streams: &[Vec<Vec<u8>>], fields: &[&str]) -> Vec<Vec<String>> {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("dissect-{call}.pcap"));
    std::fs::write(&file, pcap(streams)).unwrap();
    tshark(&file, fields, None)
}

/// Values of one aggregated field as numbers (decimal or 0x-hex).
pub fn numbers(field: &str) -> Vec<i64> {
    field
        .split(AGG)
        .filter(|s| !s.is_empty())
        .map(|s| match s.strip_prefix("0x") {
            Some(hex) => i64::from_str_radix(hex, 16).unwrap(),
            None => s.parse().unwrap_or_else(|_| panic!("not a number: {s:?}")),
        })
        .collect()
}

/// Values of one aggregated field as floating point numbers.
pub fn floats(field: &str) -> Vec<f64> {
    field
        .split(AGG)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap_or_else(|_| panic!("not a number: {s:?}")))
        .collect()
}

/// Named access to one packet's fields.
pub struct Row<'a> {
    pub names: &'a [&'a str],
    pub values: &'a [String],
}

impl Row<'_> {
    pub fn get(&self, name: &str) -> &str {
        let i = self
            .names
            .iter()
            .position(|n| *n == name)
            .unwrap_or_else(|| panic!("field {name} was not asked for"));
        self.values.get(i).map(String::as_str).unwrap_or_default()
    }
    pub fn nums(&self, name: &str) -> Vec<i64> {
        numbers(self.get(name))
    }
}

const LINKTYPE_ETHERNET: u32 = 1;
const CHUNK: usize = 60_000;

fn pcap(streams: &[Vec<Vec<u8>>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xA1B2_C3D4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    let mut number = 0u32;
    for (i, chunks) in streams.iter().enumerate() {
        // Source ports stay above 20000: tshark tries the dissector of the lower port first.
        let sport = 40_000 + u16::try_from(i % 25_000).unwrap();
        let mut seq = 1u32;
        for chunk in chunks {
            for piece in chunk.chunks(CHUNK) {
                let packet = packet(number, sport, seq, piece);
                out.extend_from_slice(&number.to_le_bytes());
                out.extend_from_slice(&0u32.to_le_bytes());
                out.extend_from_slice(&(packet.len() as u32).to_le_bytes());
                out.extend_from_slice(&(packet.len() as u32).to_le_bytes());
                out.extend_from_slice(&packet);
                seq = seq.wrapping_add(piece.len() as u32);
                number += 1;
            }
        }
    }
    out
}

fn packet(id: u32, sport: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut tcp = Vec::new();
    tcp.extend_from_slice(&sport.to_be_bytes());
    tcp.extend_from_slice(&20000u16.to_be_bytes());
    tcp.extend_from_slice(&seq.to_be_bytes());
    tcp.extend_from_slice(&1u32.to_be_bytes()); // ack
    tcp.extend_from_slice(&[0x50, 0x18]); // 20-byte header, PSH+ACK
    tcp.extend_from_slice(&65535u16.to_be_bytes());
    tcp.extend_from_slice(&[0, 0, 0, 0]); // checksum (unverified), urgent pointer
    let total = u16::try_from(20 + tcp.len() + payload.len()).unwrap();
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&(id as u16).to_be_bytes());
    ip.extend_from_slice(&[0, 0, 64, 6, 0, 0, 127, 0, 0, 1, 127, 0, 0, 2]);
    let sum = checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let mut frame = vec![0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0x08, 0x00];
    frame.extend(ip);
    frame.extend(tcp);
    frame.extend_from_slice(payload);
    frame
}

fn checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}
