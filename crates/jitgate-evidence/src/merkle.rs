//! The Merkle tree of RFC 9162 §2.1 over the evidence log.
//!
//! Leaves are the canonical bytes of events, in sequence order: the event with `seq` N is the
//! leaf with index N − 1. Hashes are domain-separated so a leaf can never pass for an interior
//! node: `leaf = SHA-256(0x00 || bytes)`, `node = SHA-256(0x01 || left || right)`. For a tree
//! of n > 1 leaves the split is at k, the largest power of two smaller than n (not the
//! midpoint): that is what makes our roots and proofs agree with every other RFC 9162 / RFC
//! 6962 implementation, so an auditor can check them with tools we did not write.
//!
//! [`MerkleLog`] keeps every *complete* subtree hash (about 2n hashes in all). Complete
//! subtrees never change once the log has grown past them, and every left child in the RFC's
//! recursion is one of them, so a root at any size or any proof costs O(log n) hash
//! operations. [`RootBuilder`] is the streaming form (a stack of O(log n) subtree hashes) used
//! to recompute a whole log's root in one pass without keeping the leaves.

use sha2::{Digest, Sha256};
use thiserror::Error;

/// A SHA-256 output: leaf, node or root hash.
pub type Hash = [u8; 32];

/// The root of the empty tree: SHA-256 of nothing (RFC 9162 §2.1.1).
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// `SHA-256(0x00 || data)`: the hash of a leaf.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`: the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 65];
    buf[0] = 0x01;
    buf[1..33].copy_from_slice(left);
    buf[33..].copy_from_slice(right);
    Sha256::digest(buf).into()
}

/// The leaf index of the event with sequence number `seq` (events count from 1, leaves from 0).
pub fn leaf_index(seq: u64) -> Option<u64> {
    seq.checked_sub(1)
}

/// Why a proof could not be produced or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MerkleError {
    #[error("leaf index {index} is outside a tree of size {tree_size}")]
    IndexOutOfRange { index: u64, tree_size: u64 },
    #[error("tree size {tree_size} is larger than the log ({log_size} leaves)")]
    SizeBeyondLog { tree_size: u64, log_size: u64 },
    #[error(
        "a consistency proof goes from a smaller tree to a larger one; got {old_size} -> {new_size}"
    )]
    SizesOutOfOrder { old_size: u64, new_size: u64 },
    #[error("the proof has {got} hashes; a tree of this shape needs {want}")]
    WrongProofLength { got: usize, want: usize },
    #[error("the proof does not lead to the expected root hash")]
    RootMismatch,
    #[error("leaf indices must be strictly increasing")]
    NotIncreasing,
}

/// Largest power of two strictly smaller than `n` (n ≥ 2): the RFC 9162 split point.
pub(crate) fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// An append-only in-memory Merkle tree: append leaves, ask for the root or a proof at any
/// size up to the current one.
#[derive(Debug, Clone, Default)]
pub struct MerkleLog {
    /// `levels[h][i]` is the hash of the complete subtree over leaves
    /// `[i·2^h, (i+1)·2^h)`; `levels[0]` are the leaf hashes.
    levels: Vec<Vec<Hash>>,
}

impl MerkleLog {
    pub fn new() -> Self {
        MerkleLog { levels: Vec::new() }
    }

    /// A log of these leaves (canonical event bytes, in sequence order).
    pub fn from_leaves<I, B>(leaves: I) -> Self
    where
        I: IntoIterator<Item = B>,
        B: AsRef<[u8]>,
    {
        let mut log = MerkleLog::new();
        for leaf in leaves {
            log.push(leaf.as_ref());
        }
        log
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Append a leaf (its canonical bytes); returns its index.
    pub fn push(&mut self, data: &[u8]) -> u64 {
        self.push_leaf_hash(leaf_hash(data))
    }

    /// Append a leaf whose hash the caller already has; returns its index.
    pub fn push_leaf_hash(&mut self, hash: Hash) -> u64 {
        let index = self.size();
        let mut level = 0;
        let mut carry = hash;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let row = &mut self.levels[level];
            row.push(carry);
            // A row of even length just completed a pair: their parent is complete too.
            if row.len() % 2 == 1 {
                break;
            }
            let n = row.len();
            carry = node_hash(&row[n - 2], &row[n - 1]);
            level += 1;
        }
        index
    }

    /// The hash of leaf `index`.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        self.levels
            .first()
            .and_then(|l| usize::try_from(index).ok().and_then(|i| l.get(i)))
            .copied()
    }

    /// The root of the whole log.
    pub fn root(&self) -> Hash {
        self.subtree(0, self.size())
    }

    /// The root of the tree of the first `tree_size` leaves.
    pub fn root_at(&self, tree_size: u64) -> Result<Hash, MerkleError> {
        self.check_size(tree_size)?;
        Ok(self.subtree(0, tree_size))
    }

    fn check_size(&self, tree_size: u64) -> Result<(), MerkleError> {
        if tree_size > self.size() {
            return Err(MerkleError::SizeBeyondLog {
                tree_size,
                log_size: self.size(),
            });
        }
        Ok(())
    }

    /// MTH of leaves `[start, end)`, where `start` is a multiple of the largest power of two
    /// ≤ `end − start` — true of every subtree the RFC's recursion visits.
    pub(crate) fn subtree(&self, start: u64, end: u64) -> Hash {
        let n = end - start;
        if n == 0 {
            return empty_root();
        }
        if n.is_power_of_two() && start.is_multiple_of(n) {
            let h = n.trailing_zeros() as usize;
            if let Some(hash) = self
                .levels
                .get(h)
                .and_then(|row| row.get((start >> h) as usize))
            {
                return *hash;
            }
        }
        if n == 1 {
            // Unreachable for an in-range request (level 0 holds every leaf); an empty hash
            // can only make a proof fail, never pass.
            return empty_root();
        }
        let k = split(n);
        node_hash(
            &self.subtree(start, start + k),
            &self.subtree(start + k, end),
        )
    }

    /// The audit path of leaf `index` in the tree of the first `tree_size` leaves
    /// (RFC 9162 §2.1.3.1), ordered from the leaf's sibling up to the root's child.
    pub fn inclusion_proof(&self, index: u64, tree_size: u64) -> Result<Vec<Hash>, MerkleError> {
        self.check_size(tree_size)?;
        if index >= tree_size {
            return Err(MerkleError::IndexOutOfRange { index, tree_size });
        }
        let mut path = Vec::new();
        self.path(index, 0, tree_size, &mut path);
        Ok(path)
    }

    /// PATH(m, D[start:end]) appended to `out`, deepest sibling first.
    fn path(&self, m: u64, start: u64, end: u64, out: &mut Vec<Hash>) {
        let n = end - start;
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m < k {
            self.path(m, start, start + k, out);
            out.push(self.subtree(start + k, end));
        } else {
            self.path(m - k, start + k, end, out);
            out.push(self.subtree(start, start + k));
        }
    }

    /// The consistency proof that the tree of `old_size` leaves is a prefix of the tree of
    /// `new_size` leaves (RFC 9162 §2.1.4.1). Empty when `old_size` is 0 or equals `new_size`.
    pub fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<Vec<Hash>, MerkleError> {
        self.check_size(new_size)?;
        if old_size > new_size {
            return Err(MerkleError::SizesOutOfOrder { old_size, new_size });
        }
        let mut proof = Vec::new();
        if old_size > 0 && old_size < new_size {
            self.subproof(old_size, 0, new_size, true, &mut proof);
        }
        Ok(proof)
    }

    /// SUBPROOF(m, D[start:end], b) appended to `out`.
    fn subproof(&self, m: u64, start: u64, end: u64, whole: bool, out: &mut Vec<Hash>) {
        let n = end - start;
        if m == n {
            if !whole {
                out.push(self.subtree(start, end));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, start, start + k, whole, out);
            out.push(self.subtree(start + k, end));
        } else {
            self.subproof(m - k, start + k, end, false, out);
            out.push(self.subtree(start, start + k));
        }
    }
}

/// Computes the root of a log in one pass, keeping only the O(log n) hashes of the complete
/// subtrees seen so far — the way to verify millions of events without holding them.
#[derive(Debug, Clone, Default)]
pub struct RootBuilder {
    /// Complete subtrees, largest (leftmost) first: `(height, hash)`.
    stack: Vec<(u32, Hash)>,
    size: u64,
}

impl RootBuilder {
    pub fn new() -> Self {
        RootBuilder::default()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Append a leaf by its canonical bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.push_leaf_hash(leaf_hash(data));
    }

    pub fn push_leaf_hash(&mut self, hash: Hash) {
        let mut height = 0u32;
        let mut carry = hash;
        while let Some(&(h, left)) = self.stack.last() {
            if h != height {
                break;
            }
            self.stack.pop();
            carry = node_hash(&left, &carry);
            height += 1;
        }
        self.stack.push((height, carry));
        self.size += 1;
    }

    /// The root of the leaves pushed so far: the complete subtrees folded right to left,
    /// which is exactly MTH's recursion unrolled (each split point is a subtree boundary).
    pub fn root(&self) -> Hash {
        let mut iter = self.stack.iter().rev();
        let Some(&(_, last)) = iter.next() else {
            return empty_root();
        };
        iter.fold(last, |acc, (_, left)| node_hash(left, &acc))
    }
}

/// RFC 9162 §2.1.3.2: does `proof` show that `leaf` is leaf `index` of the tree of
/// `tree_size` leaves whose root is `root`?
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    tree_size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), MerkleError> {
    if index >= tree_size {
        return Err(MerkleError::IndexOutOfRange { index, tree_size });
    }
    let mut f_n = index;
    let mut s_n = tree_size - 1;
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return Err(MerkleError::WrongProofLength {
                got: proof.len(),
                want: inclusion_proof_len(index, tree_size),
            });
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(MerkleError::WrongProofLength {
            got: proof.len(),
            want: inclusion_proof_len(index, tree_size),
        });
    }
    if &r != root {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}

/// How many hashes the audit path of `index` in a tree of `tree_size` has (for messages).
fn inclusion_proof_len(index: u64, tree_size: u64) -> usize {
    let mut len = 0;
    let (mut m, mut n) = (index, tree_size);
    while n > 1 {
        let k = split(n);
        if m < k {
            n = k;
        } else {
            m -= k;
            n -= k;
        }
        len += 1;
    }
    len
}

/// RFC 9162 §2.1.4.2: does `proof` show that the tree of `old_size` leaves with root
/// `old_root` is a prefix of the tree of `new_size` leaves with root `new_root`?
///
/// The two degenerate cases the RFC leaves to the caller: equal sizes need an empty proof and
/// equal roots; an empty old tree is a prefix of everything (empty proof, `old_root` must be
/// the empty-tree hash).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), MerkleError> {
    if old_size > new_size {
        return Err(MerkleError::SizesOutOfOrder { old_size, new_size });
    }
    if old_size == new_size || old_size == 0 {
        if !proof.is_empty() {
            return Err(MerkleError::WrongProofLength {
                got: proof.len(),
                want: 0,
            });
        }
        let ok = if old_size == 0 {
            *old_root == empty_root()
        } else {
            old_root == new_root
        };
        return if ok {
            Ok(())
        } else {
            Err(MerkleError::RootMismatch)
        };
    }
    let want = consistency_proof_len(old_size, new_size);
    if proof.len() != want {
        return Err(MerkleError::WrongProofLength {
            got: proof.len(),
            want,
        });
    }
    // Step 2: when the old tree is a complete subtree, it is itself the first node.
    let mut nodes: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        nodes.push(*old_root);
    }
    nodes.extend_from_slice(proof);
    let mut f_n = old_size - 1;
    let mut s_n = new_size - 1;
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let Some((first, rest)) = nodes.split_first() else {
        return Err(MerkleError::WrongProofLength { got: 0, want });
    };
    let mut fr = *first;
    let mut sr = *first;
    for c in rest {
        if s_n == 0 {
            return Err(MerkleError::WrongProofLength {
                got: proof.len(),
                want,
            });
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    if s_n != 0 {
        return Err(MerkleError::WrongProofLength {
            got: proof.len(),
            want,
        });
    }
    if &fr != old_root || &sr != new_root {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}

/// Length of the consistency proof between two sizes, 0 < old < new (for messages and to
/// refuse over-long proofs before hashing).
fn consistency_proof_len(old_size: u64, new_size: u64) -> usize {
    fn sub(m: u64, n: u64, whole: bool) -> usize {
        if m == n {
            return usize::from(!whole);
        }
        let k = split(n);
        if m <= k {
            sub(m, k, whole) + 1
        } else {
            sub(m - k, n - k, false) + 1
        }
    }
    sub(old_size, new_size, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RFC's definition, written as literally as possible, to check the fast paths against.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
            .collect()
    }

    #[test]
    fn split_is_the_largest_power_of_two_below() {
        for (n, k) in [(2, 1), (3, 2), (4, 2), (5, 4), (8, 4), (9, 8), (1000, 512)] {
            assert_eq!(split(n), k, "n={n}");
        }
        assert_eq!(split(u64::MAX), 1 << 63);
    }

    #[test]
    fn roots_match_the_definition_for_every_size() {
        let l = leaves(130);
        let log = {
            let mut log = MerkleLog::new();
            for h in &l {
                log.push_leaf_hash(*h);
            }
            log
        };
        let mut streaming = RootBuilder::new();
        assert_eq!(streaming.root(), empty_root());
        for n in 0..=l.len() {
            let want = mth(&l[..n]);
            assert_eq!(log.root_at(n as u64).unwrap(), want, "log root at {n}");
            if n > 0 {
                streaming.push_leaf_hash(l[n - 1]);
            }
            assert_eq!(streaming.root(), want, "streaming root at {n}");
        }
        assert!(log.root_at(131).is_err());
    }

    #[test]
    fn proof_lengths_match_what_is_generated() {
        let log = MerkleLog::from_leaves((0..40).map(|i| vec![i as u8]));
        for n in 1..=40 {
            for m in 0..n {
                assert_eq!(
                    log.inclusion_proof(m, n).unwrap().len(),
                    inclusion_proof_len(m, n)
                );
                if m > 0 {
                    assert_eq!(
                        log.consistency_proof(m, n).unwrap().len(),
                        consistency_proof_len(m, n)
                    );
                }
            }
        }
    }
}
