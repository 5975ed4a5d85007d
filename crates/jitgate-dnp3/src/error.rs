//! Why bytes are not acceptable DNP3, at every layer, with one stable code per reason.
//!
//! Most of these mean *malformed*: the gateway closes the session and records the code.
//! Two are answerable instead ([`Error::refusal_iin2`]): a function code or an object the
//! parser does not know is what a real outstation answers with an IIN bit, so the master
//! gets that answer and the outstation never sees the request.

use crate::header::iin2;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    // ---- data link layer ----
    #[error(
        "link frame must start with 05 64; found {found:02X} at byte {offset} (is this DNP3?)"
    )]
    BadStart { offset: usize, found: u8 },
    #[error("link length field is {found}; it must be 5-255 (control, addresses and up to 250 bytes of user data)")]
    BadLength { found: u8 },
    #[error(
        "link header CRC is {found:04X}, the header's CRC is {expected:04X}: corrupted or not DNP3"
    )]
    BadHeaderCrc { expected: u16, found: u16 },
    #[error("CRC of user data block {block} is {found:04X}, the block's CRC is {expected:04X}: corrupted frame")]
    BadBlockCrc {
        block: usize,
        expected: u16,
        found: u16,
    },
    #[error("{len} bytes of user data do not fit in one link frame (at most 250)")]
    UserDataTooLong { len: usize },
    #[error("frame from the {side} goes from {from} to {to}; this session is from {expected_from} to {expected_to} only")]
    WrongAddress {
        side: &'static str,
        from: u16,
        to: u16,
        expected_from: u16,
        expected_to: u16,
    },
    #[error("frame from the {side} has the other side's direction bit (DIR)")]
    WrongDirection { side: &'static str },

    // ---- transport layer ----
    #[error("a user data frame must carry at least the transport header byte")]
    EmptySegment,
    #[error("transport segment {seq} is not the first of a fragment (FIR clear) and no fragment is being assembled")]
    NoFirstSegment { seq: u8 },
    #[error(
        "transport segment {seq} starts a new fragment (FIR set) before the previous one finished"
    )]
    UnfinishedFragment { seq: u8 },
    #[error("transport sequence is {found}; the next segment of this fragment must be {expected}")]
    TransportSequence { expected: u8, found: u8 },
    #[error("fragment exceeds {limit} bytes before its final segment (FIN)")]
    FragmentTooLarge { limit: usize },

    // ---- application layer ----
    #[error("fragment ends inside {what}")]
    Truncated { what: &'static str },
    #[error("application control {control:#04x} is not valid for {what}")]
    BadAppControl { control: u8, what: &'static str },
    #[error("function code {function:#04x} is a response; a master sends requests (0x00-0x21)")]
    NotARequest { function: u8 },
    #[error("function code {function:#04x} is not a response (0x81 response, 0x82 unsolicited, 0x83 authenticate)")]
    NotAResponse { function: u8 },
    #[error("function code {function:#04x} is not defined by IEEE 1815")]
    UnknownFunction { function: u8 },
    #[error("{function} carries no objects, but object headers follow")]
    UnexpectedObjects { function: &'static str },
    #[error("qualifier {qualifier:#04x} on group {group} variation {variation} is {why}")]
    BadQualifier {
        group: u8,
        variation: u8,
        qualifier: u8,
        why: &'static str,
    },
    #[error("group {group} variation {variation}: range stop {stop} is before start {start}")]
    RangeOverflow {
        group: u8,
        variation: u8,
        start: u32,
        stop: u32,
    },
    #[error("group {group} variation {variation} names {count} points; at most {limit} per object header")]
    TooManyPoints {
        group: u8,
        variation: u8,
        count: u64,
        limit: u32,
    },
    #[error("fragment has more than {limit} object headers")]
    TooManyObjects { limit: usize },
    #[error("group {group} variation {variation} announces {needed} bytes of objects; only {remaining} bytes remain in the fragment")]
    CountMismatch {
        group: u8,
        variation: u8,
        needed: u64,
        remaining: usize,
    },
    #[error("group {group} variation {variation} is not an object jitgate understands here")]
    UnknownObject { group: u8, variation: u8 },
}

impl Error {
    /// Stable code for logs and evidence events.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadStart { .. } => "bad_start",
            Error::BadLength { .. } => "bad_length",
            Error::BadHeaderCrc { .. } => "bad_header_crc",
            Error::BadBlockCrc { .. } => "bad_block_crc",
            Error::UserDataTooLong { .. } => "user_data_too_long",
            Error::WrongAddress { .. } => "wrong_address",
            Error::WrongDirection { .. } => "wrong_direction",
            Error::EmptySegment => "empty_segment",
            Error::NoFirstSegment { .. } => "no_first_segment",
            Error::UnfinishedFragment { .. } => "unfinished_fragment",
            Error::TransportSequence { .. } => "transport_sequence",
            Error::FragmentTooLarge { .. } => "fragment_too_large",
            Error::Truncated { .. } => "truncated",
            Error::BadAppControl { .. } => "bad_app_control",
            Error::NotARequest { .. } => "not_a_request",
            Error::NotAResponse { .. } => "not_a_response",
            Error::UnknownFunction { .. } => "unknown_function",
            Error::UnexpectedObjects { .. } => "unexpected_objects",
            Error::BadQualifier { .. } => "bad_qualifier",
            Error::RangeOverflow { .. } => "range_overflow",
            Error::TooManyPoints { .. } => "too_many_points",
            Error::TooManyObjects { .. } => "too_many_objects",
            Error::CountMismatch { .. } => "count_mismatch",
            Error::UnknownObject { .. } => "unknown_object",
        }
    }

    /// For a request the parser could not accept but that a real outstation would answer:
    /// the IIN2 bit to answer with. `None` means the request is malformed: close the session.
    pub fn refusal_iin2(&self) -> Option<u8> {
        match self {
            Error::UnknownFunction { .. } => Some(iin2::NO_FUNC_CODE_SUPPORT),
            Error::UnknownObject { .. } => Some(iin2::OBJECT_UNKNOWN),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_snake_case() {
        let all = [
            Error::BadStart {
                offset: 0,
                found: 0,
            },
            Error::BadLength { found: 0 },
            Error::BadHeaderCrc {
                expected: 0,
                found: 0,
            },
            Error::BadBlockCrc {
                block: 0,
                expected: 0,
                found: 0,
            },
            Error::UserDataTooLong { len: 0 },
            Error::WrongAddress {
                side: "x",
                from: 0,
                to: 0,
                expected_from: 0,
                expected_to: 0,
            },
            Error::WrongDirection { side: "x" },
            Error::EmptySegment,
            Error::NoFirstSegment { seq: 0 },
            Error::UnfinishedFragment { seq: 0 },
            Error::TransportSequence {
                expected: 0,
                found: 0,
            },
            Error::FragmentTooLarge { limit: 0 },
            Error::Truncated { what: "x" },
            Error::BadAppControl {
                control: 0,
                what: "x",
            },
            Error::NotARequest { function: 0 },
            Error::NotAResponse { function: 0 },
            Error::UnknownFunction { function: 0 },
            Error::UnexpectedObjects { function: "x" },
            Error::BadQualifier {
                group: 0,
                variation: 0,
                qualifier: 0,
                why: "x",
            },
            Error::RangeOverflow {
                group: 0,
                variation: 0,
                start: 0,
                stop: 0,
            },
            Error::TooManyPoints {
                group: 0,
                variation: 0,
                count: 0,
                limit: 0,
            },
            Error::TooManyObjects { limit: 0 },
            Error::CountMismatch {
                group: 0,
                variation: 0,
                needed: 0,
                remaining: 0,
            },
            Error::UnknownObject {
                group: 0,
                variation: 0,
            },
        ];
        let mut codes: Vec<&str> = all.iter().map(Error::code).collect();
        assert!(codes
            .iter()
            .all(|c| c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_')));
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        let answerable: Vec<&str> = all
            .iter()
            .filter(|e| e.refusal_iin2().is_some())
            .map(Error::code)
            .collect();
        assert_eq!(answerable, ["unknown_function", "unknown_object"]);
    }
}
