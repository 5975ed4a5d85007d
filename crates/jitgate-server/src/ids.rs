//! Ids of the things the server creates (requests, grants, keys, notices, …).

use rand::Rng;

/// A short random id with a type prefix, e.g. `req-k3m9x2p7qa4d`: easy to type, ~62 bits.
pub fn new_id(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::thread_rng();
    let tail: String = (0..12)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}-{tail}")
}
