//! Recording chunk frames are untrusted input (the server receives them from gateways, the
//! gateway reads them back from its spool): `parse_frame` on any bytes must return an error
//! or a frame, never panic, never read past its input, and never accept more than
//! `MAX_CHUNK_BYTES`.
//!
//! Properties, beyond "never panics":
//! - an accepted frame's bytes match its header (length and hash), and re-encoding its
//!   metadata with its bytes gives back exactly the bytes consumed;
//! - a chain of accepted frames, fed to `ChainState`, is accepted only in order: the same
//!   frames checked again from the start reach the same state.

#![no_main]

use jitgate_core::recording::{parse_frame, ChainState, MAX_CHUNK_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    let mut metas = Vec::new();
    while let Ok((meta, bytes, used)) = parse_frame(rest) {
        assert!(used <= rest.len());
        assert!(bytes.len() <= MAX_CHUNK_BYTES);
        assert!(meta.matches(bytes));
        assert_eq!(meta.frame(bytes), &rest[..used]);
        rest = &rest[used..];
        metas.push(meta);
        if rest.is_empty() {
            break;
        }
    }
    if let Some(first) = metas.first() {
        let mut a = ChainState::new(&first.session_id);
        let ok_a: Vec<bool> = metas.iter().map(|m| a.push(m).is_ok()).collect();
        let mut b = ChainState::new(&first.session_id);
        let ok_b: Vec<bool> = metas.iter().map(|m| b.push(m).is_ok()).collect();
        assert_eq!(ok_a, ok_b);
        assert_eq!(a, b);
    }
});
