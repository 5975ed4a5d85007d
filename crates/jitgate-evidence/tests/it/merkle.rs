//! The tree against the standard: the Certificate Transparency reference vectors (RFC 6962,
//! unchanged in RFC 9162), the worked examples of RFC 9162 §2.1.5, and every proof of every
//! tree of 1..=64 leaves.

use jitgate_evidence::merkle::*;

fn h(s: &str) -> Hash {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).unwrap();
    out
}

/// Leaves of the CT reference tree, and its roots for sizes 0..=8.
const CT_LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];
const CT_ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn ct_log() -> MerkleLog {
    MerkleLog::from_leaves(CT_LEAVES.iter().map(|l| hex::decode(l).unwrap()))
}

#[test]
fn roots_match_the_certificate_transparency_reference() {
    let log = ct_log();
    let mut streaming = RootBuilder::new();
    for (n, want) in CT_ROOTS.iter().enumerate() {
        assert_eq!(
            hex::encode(log.root_at(n as u64).unwrap()),
            *want,
            "size {n}"
        );
        assert_eq!(hex::encode(streaming.root()), *want, "streaming, size {n}");
        if n < CT_LEAVES.len() {
            streaming.push(&hex::decode(CT_LEAVES[n]).unwrap());
        }
    }
}

#[test]
fn proofs_match_the_certificate_transparency_reference() {
    let log = ct_log();
    let inclusion = [
        (
            0,
            8,
            vec![
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            vec![
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
    ];
    for (index, size, want) in inclusion {
        let got: Vec<String> = log
            .inclusion_proof(index, size)
            .unwrap()
            .iter()
            .map(hex::encode)
            .collect();
        assert_eq!(got, want, "inclusion {index}/{size}");
        let proof: Vec<Hash> = want.iter().map(|s| h(s)).collect();
        verify_inclusion(
            &log.leaf(index).unwrap(),
            index,
            size,
            &proof,
            &h(CT_ROOTS[size as usize]),
        )
        .unwrap();
    }
    let consistency = [
        (
            2,
            8,
            vec![
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            vec![
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            vec![
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (old, new, want) in consistency {
        let got: Vec<String> = log
            .consistency_proof(old, new)
            .unwrap()
            .iter()
            .map(hex::encode)
            .collect();
        assert_eq!(got, want, "consistency {old}->{new}");
        let proof: Vec<Hash> = want.iter().map(|s| h(s)).collect();
        verify_consistency(
            old,
            new,
            &h(CT_ROOTS[old as usize]),
            &h(CT_ROOTS[new as usize]),
            &proof,
        )
        .unwrap();
    }
}

/// RFC 9162 §2.1.5: the tree of seven leaves d0..d6 with nodes a..l, and the proofs the RFC
/// spells out for it.
#[test]
fn rfc9162_worked_examples() {
    let d: Vec<Hash> = (0..7u8).map(|i| leaf_hash(&[b'd', i])).collect();
    let (a, b, c, dd, e, f, j) = (d[0], d[1], d[2], d[3], d[4], d[5], d[6]);
    let g = node_hash(&a, &b);
    let hh = node_hash(&c, &dd);
    let i = node_hash(&e, &f);
    let k = node_hash(&g, &hh);
    let l = node_hash(&i, &j);
    let root = node_hash(&k, &l);
    let log = MerkleLog::from_leaves((0..7u8).map(|i| vec![b'd', i]));
    assert_eq!(log.root(), root);
    assert_eq!(
        log.inclusion_proof(0, 7).unwrap(),
        vec![b, hh, l],
        "PATH(d0) = [b, h, l]"
    );
    assert_eq!(
        log.inclusion_proof(3, 7).unwrap(),
        vec![c, g, l],
        "PATH(d3) = [c, g, l]"
    );
    assert_eq!(
        log.inclusion_proof(4, 7).unwrap(),
        vec![f, j, k],
        "PATH(d4) = [f, j, k]"
    );
    assert_eq!(
        log.inclusion_proof(6, 7).unwrap(),
        vec![i, k],
        "PATH(d6) = [i, k]"
    );
    assert_eq!(
        log.consistency_proof(3, 7).unwrap(),
        vec![c, dd, g, l],
        "PROOF(3) = [c, d, g, l]"
    );
    assert_eq!(
        log.consistency_proof(4, 7).unwrap(),
        vec![l],
        "PROOF(4) = [l]"
    );
    assert_eq!(
        log.consistency_proof(6, 7).unwrap(),
        vec![i, j, k],
        "PROOF(6) = [i, j, k]"
    );
}

fn flipped(p: &[Hash], at: usize) -> Vec<Hash> {
    let mut p = p.to_vec();
    p[at][7] ^= 1;
    p
}

#[test]
fn every_proof_of_every_tree_up_to_64_verifies_and_tampering_fails() {
    const N: u64 = 64;
    let log = MerkleLog::from_leaves((0..N).map(|i| format!("event {i}").into_bytes()));
    let roots: Vec<Hash> = (0..=N).map(|n| log.root_at(n).unwrap()).collect();
    let mut checked = 0;
    for n in 1..=N {
        let root = roots[n as usize];
        for m in 0..n {
            let leaf = log.leaf(m).unwrap();
            let proof = log.inclusion_proof(m, n).unwrap();
            verify_inclusion(&leaf, m, n, &proof, &root).unwrap();
            checked += 1;
            // A changed leaf, a wrong index or a wrong size must fail.
            let other = leaf_hash(b"not this event");
            assert!(verify_inclusion(&other, m, n, &proof, &root).is_err());
            for wrong in [m + 1, m ^ 1, m.wrapping_sub(1)] {
                if wrong != m && wrong < n && log.inclusion_proof(wrong, n).unwrap() != proof {
                    assert!(
                        verify_inclusion(&leaf, wrong, n, &proof, &root).is_err(),
                        "index {wrong} for {m}/{n}"
                    );
                }
            }
            assert!(
                verify_inclusion(&leaf, m, n, &proof, &roots[n as usize - 1]).is_err() || n == 1
            );
            // The proof claimed for a tree of another size (against that tree's root). The
            // size itself is bound by the signed checkpoint, not by the proof.
            for size in [n + 1, n - 1, n * 2] {
                if size > m
                    && size != n
                    && size <= N
                    && log.inclusion_proof(m, size).unwrap() != proof
                {
                    let other_root = roots[size as usize];
                    assert!(
                        verify_inclusion(&leaf, m, size, &proof, &other_root).is_err(),
                        "size {size} for {m}/{n}"
                    );
                }
            }
            assert!(verify_inclusion(&leaf, n, n, &proof, &root).is_err());
            if !proof.is_empty() {
                for at in 0..proof.len() {
                    assert!(verify_inclusion(&leaf, m, n, &flipped(&proof, at), &root).is_err());
                }
                assert!(verify_inclusion(&leaf, m, n, &proof[..proof.len() - 1], &root).is_err());
            }
            let mut longer = proof.clone();
            longer.push([0xab; 32]);
            assert!(verify_inclusion(&leaf, m, n, &longer, &root).is_err());
        }
        for old in 0..=n {
            let proof = log.consistency_proof(old, n).unwrap();
            verify_consistency(old, n, &roots[old as usize], &root, &proof).unwrap();
            checked += 1;
            if old == 0 || old == n {
                assert!(proof.is_empty());
                continue;
            }
            // A changed old or new root, wrong sizes, or a touched proof must fail.
            assert!(verify_consistency(old, n, &roots[old as usize - 1], &root, &proof).is_err());
            assert!(
                verify_consistency(old, n, &roots[old as usize], &roots[old as usize], &proof)
                    .is_err()
            );
            for at in 0..proof.len() {
                assert!(verify_consistency(
                    old,
                    n,
                    &roots[old as usize],
                    &root,
                    &flipped(&proof, at)
                )
                .is_err());
            }
            assert!(verify_consistency(
                old,
                n,
                &roots[old as usize],
                &root,
                &proof[..proof.len() - 1]
            )
            .is_err());
            if n < N {
                assert!(
                    verify_consistency(
                        old,
                        n + 1,
                        &roots[old as usize],
                        &roots[n as usize + 1],
                        &proof
                    )
                    .is_err()
                        || log.consistency_proof(old, n + 1).unwrap() == proof
                );
            }
            assert!(verify_consistency(n, old, &root, &roots[old as usize], &proof).is_err());
        }
    }
    assert_eq!(checked, (1..=N).map(|n| n + n + 1).sum::<u64>());
    // Degenerate cases.
    assert!(verify_consistency(4, 4, &roots[4], &roots[4], &[]).is_ok());
    assert!(verify_consistency(4, 4, &roots[4], &roots[5], &[]).is_err());
    assert!(verify_consistency(0, 8, &roots[1], &roots[8], &[]).is_err());
    assert!(log.inclusion_proof(0, N + 1).is_err());
    assert!(log.consistency_proof(5, 3).is_err());
}

#[test]
fn streaming_root_equals_the_log_root_on_a_large_log() {
    let log = MerkleLog::from_leaves((0..10_007u32).map(|i| i.to_be_bytes()));
    let mut b = RootBuilder::new();
    for i in 0..10_007u32 {
        b.push(&i.to_be_bytes());
        if i % 997 == 0 {
            assert_eq!(b.root(), log.root_at(u64::from(i) + 1).unwrap());
        }
    }
    assert_eq!(b.root(), log.root());
    // Proofs in a large tree against roots at several sizes.
    for (m, n) in [
        (0, 10_007),
        (5000, 10_007),
        (10_006, 10_007),
        (1234, 4096),
        (4095, 4097),
    ] {
        let p = log.inclusion_proof(m, n).unwrap();
        verify_inclusion(&log.leaf(m).unwrap(), m, n, &p, &log.root_at(n).unwrap()).unwrap();
    }
    let p = log.consistency_proof(3000, 10_007).unwrap();
    verify_consistency(3000, 10_007, &log.root_at(3000).unwrap(), &log.root(), &p).unwrap();
}

#[test]
fn multiproofs_prove_any_set_of_leaves_and_nothing_else() {
    use jitgate_evidence::{multiproof_root, verify_multiproof};
    let log = MerkleLog::from_leaves((0..37u32).map(|i| i.to_be_bytes()));
    for size in [1u64, 2, 3, 7, 8, 9, 31, 32, 37] {
        let root = log.root_at(size).unwrap();
        let sets: Vec<Vec<u64>> = vec![
            vec![0],
            vec![size - 1],
            (0..size).collect(),
            (0..size).step_by(3).collect(),
            (size / 2..size).collect(),
        ];
        for set in sets {
            let proof = log.multiproof(&set, size).unwrap();
            let leaves: Vec<_> = set.iter().map(|&i| (i, log.leaf(i).unwrap())).collect();
            verify_multiproof(size, &leaves, &proof, &root).unwrap();
            // One leaf proven: the multi-proof is its inclusion proof's length.
            if set.len() == 1 {
                assert_eq!(
                    proof.len(),
                    log.inclusion_proof(set[0], size).unwrap().len()
                );
            }
            // A changed leaf, a leaf at another index, a missing or extra hash: refused.
            let mut changed = leaves.clone();
            changed[0].1[0] ^= 1;
            assert!(verify_multiproof(size, &changed, &proof, &root).is_err());
            if set.len() < size as usize && set[0] + 1 < size && !set.contains(&(set[0] + 1)) {
                let mut moved = leaves.clone();
                moved[0].0 += 1;
                assert!(verify_multiproof(size, &moved, &proof, &root).is_err());
            }
            if !proof.is_empty() {
                assert!(verify_multiproof(size, &leaves, &proof[1..], &root).is_err());
            }
            let mut extra = proof.clone();
            extra.push([0; 32]);
            assert!(verify_multiproof(size, &leaves, &extra, &root).is_err());
            assert_eq!(multiproof_root(size, &leaves, &proof).unwrap(), root);
        }
    }
    // Contiguous leaves share their upper nodes: 1,000 leaves of 100,000 need few hashes.
    let big = MerkleLog::from_leaves((0..100_000u32).map(|i| i.to_be_bytes()));
    let range: Vec<u64> = (40_000..41_000).collect();
    let proof = big.multiproof(&range, 100_000).unwrap();
    assert!(proof.len() < 40, "{}", proof.len());
    assert!(big.multiproof(&[5, 5], 10).is_err());
    assert!(big.multiproof(&[10], 10).is_err());
}
