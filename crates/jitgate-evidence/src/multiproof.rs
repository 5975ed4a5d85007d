//! One proof for many leaves: the hashes of the maximal subtrees that hold none of them.
//!
//! A grant's events sit close together in the log, so their separate inclusion proofs repeat
//! the same upper nodes thousands of times (three quarters of a bundle's bytes). The
//! multi-proof gives each needed node once. Its definition is the RFC 9162 recursion itself,
//! so it is short to specify and to implement independently (docs/evidence.md §2):
//!
//! ```text
//! ROOT(lo, hi):                       # the subtree over leaves [lo, hi)
//!   if no proven leaf is in [lo, hi):  take the next proof hash (in order)
//!   elif hi − lo = 1:                  the proven leaf's hash
//!   else: k = largest power of two < hi − lo
//!         SHA-256(0x01 ‖ ROOT(lo, lo+k) ‖ ROOT(lo+k, hi))
//! ```
//!
//! evaluated depth first, left before right, from `ROOT(0, tree size)`; every proof hash must
//! be used exactly once. The result equals the checkpoint's root exactly when every proven
//! leaf is at its index in that tree — the guarantee of separate inclusion proofs.

use crate::merkle::{node_hash, split, Hash, MerkleError, MerkleLog};

impl MerkleLog {
    /// The multi-proof of the leaves at `indices` (strictly increasing) in the tree of the
    /// first `tree_size` leaves.
    pub fn multiproof(&self, indices: &[u64], tree_size: u64) -> Result<Vec<Hash>, MerkleError> {
        if tree_size > self.size() {
            return Err(MerkleError::SizeBeyondLog {
                tree_size,
                log_size: self.size(),
            });
        }
        check_indices(indices, tree_size)?;
        let mut out = Vec::new();
        self.collect(indices, 0, tree_size, &mut out);
        Ok(out)
    }

    fn collect(&self, indices: &[u64], lo: u64, hi: u64, out: &mut Vec<Hash>) {
        if indices.is_empty() {
            out.push(self.subtree(lo, hi));
            return;
        }
        if hi - lo == 1 {
            return;
        }
        let mid = lo + split(hi - lo);
        let cut = indices.partition_point(|&i| i < mid);
        self.collect(&indices[..cut], lo, mid, out);
        self.collect(&indices[cut..], mid, hi, out);
    }
}

fn check_indices(indices: &[u64], tree_size: u64) -> Result<(), MerkleError> {
    if let Some(&last) = indices.last() {
        if last >= tree_size {
            return Err(MerkleError::IndexOutOfRange {
                index: last,
                tree_size,
            });
        }
    }
    if indices.windows(2).any(|w| w[0] >= w[1]) {
        return Err(MerkleError::NotIncreasing);
    }
    Ok(())
}

/// The root that `leaves` (index, leaf hash; strictly increasing indices) and `proof` give
/// for a tree of `tree_size` leaves; an error when the proof has hashes too few or too many.
pub fn multiproof_root(
    tree_size: u64,
    leaves: &[(u64, Hash)],
    proof: &[Hash],
) -> Result<Hash, MerkleError> {
    if leaves.is_empty() || tree_size == 0 {
        return Err(MerkleError::IndexOutOfRange {
            index: 0,
            tree_size,
        });
    }
    let indices: Vec<u64> = leaves.iter().map(|(i, _)| *i).collect();
    check_indices(&indices, tree_size)?;
    let mut next = 0usize;
    let root =
        fold(leaves, 0, tree_size, proof, &mut next).ok_or(MerkleError::WrongProofLength {
            got: proof.len(),
            want: proof.len() + 1,
        })?;
    if next != proof.len() {
        return Err(MerkleError::WrongProofLength {
            got: proof.len(),
            want: next,
        });
    }
    Ok(root)
}

fn fold(
    leaves: &[(u64, Hash)],
    lo: u64,
    hi: u64,
    proof: &[Hash],
    next: &mut usize,
) -> Option<Hash> {
    if leaves.is_empty() {
        let h = proof.get(*next).copied();
        *next += 1;
        return h;
    }
    if hi - lo == 1 {
        return Some(leaves[0].1);
    }
    let mid = lo + split(hi - lo);
    let cut = leaves.partition_point(|(i, _)| *i < mid);
    let left = fold(&leaves[..cut], lo, mid, proof, next)?;
    let right = fold(&leaves[cut..], mid, hi, proof, next)?;
    Some(node_hash(&left, &right))
}

/// Check a multi-proof against the expected root.
pub fn verify_multiproof(
    tree_size: u64,
    leaves: &[(u64, Hash)],
    proof: &[Hash],
    root: &Hash,
) -> Result<(), MerkleError> {
    if multiproof_root(tree_size, leaves, proof)? != *root {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}
