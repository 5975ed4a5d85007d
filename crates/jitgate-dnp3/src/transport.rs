//! Transport function (IEEE 1815 clause 8): one header byte per link frame — FIN, FIR and a
//! 6-bit sequence — joining segments into application fragments.
//!
//! The reassembler is stricter than the standard's receiver, which discards a partial
//! fragment when a new first segment arrives and drops segments out of sequence. An inline
//! gateway must not do that: if it dropped a segment the outstation accepted (or the other
//! way round) the two would assemble different fragments, and the gateway would decide on
//! bytes the outstation never sees. Every irregularity is therefore an error that ends the
//! session. One reassembler per direction.

#![deny(clippy::indexing_slicing)]

use crate::Error;

/// Default largest fragment accepted, in bytes (IEEE 1815's recommended minimum buffer).
pub const DEFAULT_MAX_FRAGMENT: usize = 2048;
/// Transport payload of one link frame: 250 bytes of user data less the header byte.
pub const MAX_SEGMENT_PAYLOAD: usize = crate::link::MAX_USER_DATA - 1;

/// The transport header byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransportHeader {
    pub fin: bool,
    pub fir: bool,
    /// 0-63.
    pub seq: u8,
}

impl TransportHeader {
    pub fn from_byte(b: u8) -> TransportHeader {
        TransportHeader {
            fin: b & 0x80 != 0,
            fir: b & 0x40 != 0,
            seq: b & 0x3F,
        }
    }

    pub fn to_byte(self) -> u8 {
        u8::from(self.fin) << 7 | u8::from(self.fir) << 6 | (self.seq & 0x3F)
    }

    /// A segment that is a whole fragment on its own.
    pub fn single(seq: u8) -> TransportHeader {
        TransportHeader {
            fin: true,
            fir: true,
            seq: seq & 0x3F,
        }
    }
}

/// The sequence number that follows `seq`.
pub fn next_seq(seq: u8) -> u8 {
    seq.wrapping_add(1) & 0x3F
}

/// Joins the segments of one direction into fragments.
#[derive(Debug, Clone)]
pub struct Reassembler {
    max_fragment: usize,
    buf: Vec<u8>,
    /// `Some(seq expected next)` while a fragment is being assembled.
    next: Option<u8>,
}

impl Default for Reassembler {
    fn default() -> Self {
        Reassembler::new(DEFAULT_MAX_FRAGMENT)
    }
}

impl Reassembler {
    pub fn new(max_fragment: usize) -> Reassembler {
        Reassembler {
            max_fragment,
            buf: Vec::new(),
            next: None,
        }
    }

    /// True while a fragment has started and not finished (a master that never sends FIN
    /// leaves it so; the gateway's idle timer ends such a session).
    pub fn is_assembling(&self) -> bool {
        self.next.is_some()
    }

    /// Feed the user data of one link frame (transport header first). Returns the fragment
    /// when this segment completes one. After an error the reassembler is idle again, but
    /// the caller is expected to close the session, not to continue.
    pub fn push(&mut self, segment: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let result = self.push_inner(segment);
        if result.is_err() {
            self.reset();
        }
        result
    }

    fn push_inner(&mut self, segment: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let Some((&first, payload)) = segment.split_first() else {
            return Err(Error::EmptySegment);
        };
        let header = TransportHeader::from_byte(first);
        match (self.next, header.fir) {
            (None, false) => return Err(Error::NoFirstSegment { seq: header.seq }),
            (Some(_), true) => return Err(Error::UnfinishedFragment { seq: header.seq }),
            (Some(expected), false) if expected != header.seq => {
                return Err(Error::TransportSequence {
                    expected,
                    found: header.seq,
                })
            }
            _ => {}
        }
        if self.buf.len() + payload.len() > self.max_fragment {
            return Err(Error::FragmentTooLarge {
                limit: self.max_fragment,
            });
        }
        self.buf.extend_from_slice(payload);
        if header.fin {
            self.next = None;
            Ok(Some(std::mem::take(&mut self.buf)))
        } else {
            self.next = Some(next_seq(header.seq));
            Ok(None)
        }
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.next = None;
    }
}

/// Split `fragment` into transport segments (each at most 249 bytes of payload after its
/// header byte), numbered from `first_seq`. Returns the segments and the next sequence.
pub fn segment(fragment: &[u8], first_seq: u8) -> (Vec<Vec<u8>>, u8) {
    let mut seq = first_seq & 0x3F;
    let mut out = Vec::new();
    let chunks: Vec<&[u8]> = if fragment.is_empty() {
        vec![&[]]
    } else {
        fragment.chunks(MAX_SEGMENT_PAYLOAD).collect()
    };
    let last = chunks.len().saturating_sub(1);
    for (i, chunk) in chunks.into_iter().enumerate() {
        let header = TransportHeader {
            fin: i == last,
            fir: i == 0,
            seq,
        };
        let mut s = Vec::with_capacity(chunk.len() + 1);
        s.push(header.to_byte());
        s.extend_from_slice(chunk);
        out.push(s);
        seq = next_seq(seq);
    }
    (out, seq)
}

#[cfg(test)]
#[path = "transport_tests.rs"]
mod tests;
