//! Arbitrary bytes as the two directions of an `sftp` channel the gateway follows
//! (`jitgate_gateway::ssh::sftp`): the input is cut into pieces, each given to the client
//! or the asset side as its first byte says, as channel messages arrive.
//!
//! Properties, beyond "never panics": once the stream is declared unfollowable nothing
//! more is reported for it, and every transfer's size is at most the bytes fed.

#![no_main]

use jitgate_gateway::ssh::sftp::{SftpEvent, SftpLog};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut log = SftpLog::new();
    let mut fed = 0u64;
    let mut broken = false;
    let mut rest = data;
    while let Some((&head, tail)) = rest.split_first() {
        let len = usize::from(head >> 1).min(tail.len());
        let (piece, after) = tail.split_at(len);
        rest = after;
        fed += piece.len() as u64;
        let events = if head & 1 == 0 {
            log.client_bytes(piece)
        } else {
            log.asset_bytes(piece)
        };
        for e in &events {
            assert!(!broken, "an event after the stream was unfollowable: {e:?}");
            if let SftpEvent::Transfer { size, .. } = e {
                assert!(*size <= fed);
            }
        }
        broken |= events
            .iter()
            .any(|e| matches!(e, SftpEvent::Unfollowable(_)));
    }
    for e in log.finish() {
        if let SftpEvent::Transfer { size, .. } = e {
            assert!(size <= fed);
        }
    }
});
