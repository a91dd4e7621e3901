//! Exhaustive cross-checks against a naive reference written here, independently of
//! the crate: hashing straight from `sha2`, roots and inclusion paths built level by
//! level (an odd node at the end of a level moves up unchanged, which gives the same
//! tree as RFC 6962's split at the largest power of two), and consistency proofs by
//! the RFC's `SUBPROOF` recursion over those roots.

use sha2::{Digest, Sha256};
use strata_integrity::{Hash, MerkleLog, leaf_hash, root, verify_consistency, verify_inclusion};

const MAX_SIZE: usize = 64;

fn ref_leaf(data: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([0u8])
        .chain_update(data)
        .finalize()
        .into()
}

fn ref_node(left: &Hash, right: &Hash) -> Hash {
    Sha256::new()
        .chain_update([1u8])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// One level up: pair neighbours, carry a lone last node up unchanged.
fn level_up(level: &[Hash]) -> Vec<Hash> {
    level
        .chunks(2)
        .map(|pair| match pair {
            [left, right] => ref_node(left, right),
            [lone] => *lone,
            _ => unreachable!(),
        })
        .collect()
}

fn ref_root(leaves: &[Hash]) -> Hash {
    if leaves.is_empty() {
        return Sha256::digest(b"").into();
    }
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        level = level_up(&level);
    }
    level[0]
}

/// Siblings from the leaf up; a node without a sibling adds nothing at its level.
fn ref_inclusion(index: usize, leaves: &[Hash]) -> Vec<Hash> {
    let mut proof = Vec::new();
    let mut level = leaves.to_vec();
    let mut i = index;
    while level.len() > 1 {
        if let Some(sibling) = level.get(i ^ 1) {
            proof.push(*sibling);
        }
        level = level_up(&level);
        i /= 2;
    }
    proof
}

/// RFC 6962 section 2.1.2 `SUBPROOF(m, D[n], b)`.
fn ref_subproof(m: usize, leaves: &[Hash], b: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if b { vec![] } else { vec![ref_root(leaves)] };
    }
    let k = (1..n).rev().find(|k| k.is_power_of_two()).unwrap();
    if m <= k {
        let mut proof = ref_subproof(m, &leaves[..k], b);
        proof.push(ref_root(&leaves[k..]));
        proof
    } else {
        let mut proof = ref_subproof(m - k, &leaves[k..], false);
        proof.push(ref_root(&leaves[..k]));
        proof
    }
}

fn ref_consistency(old_size: usize, leaves: &[Hash]) -> Vec<Hash> {
    if old_size == 0 || old_size == leaves.len() {
        return vec![];
    }
    ref_subproof(old_size, leaves, true)
}

/// Distinct entries of varying length, including the empty one.
fn entries(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            (0..i % 7)
                .map(|j| (i * 31 + j) as u8)
                .chain([i as u8])
                .collect()
        })
        .collect()
}

fn build() -> (Vec<Hash>, MerkleLog) {
    let leaves: Vec<Hash> = entries(MAX_SIZE).iter().map(|e| ref_leaf(e)).collect();
    let mut log = MerkleLog::new();
    for (i, (entry, leaf)) in entries(MAX_SIZE).iter().zip(&leaves).enumerate() {
        assert_eq!(leaf_hash(entry), *leaf, "leaf hash of entry {i}");
        assert_eq!(log.push_entry(entry), i as u64);
        // The O(log n) root after every push.
        assert_eq!(log.root(), ref_root(&leaves[..=i]), "root after push {i}");
        assert_eq!(log.len(), i as u64 + 1);
    }
    (leaves, log)
}

#[test]
fn roots_match_reference() {
    let (leaves, log) = build();
    for k in 0..=MAX_SIZE {
        let expected = ref_root(&leaves[..k]);
        assert_eq!(root(&leaves[..k]), expected, "root() size {k}");
        assert_eq!(log.root_at(k as u64), Ok(expected), "root_at({k})");
    }
}

#[test]
fn every_inclusion_proof_matches_and_verifies() {
    let (leaves, log) = build();
    for size in 1..=MAX_SIZE {
        let tree_root = log.root_at(size as u64).unwrap();
        assert_eq!(tree_root, ref_root(&leaves[..size]));
        for index in 0..size {
            let proof = log.inclusion_proof(index as u64, size as u64).unwrap();
            assert_eq!(
                proof,
                ref_inclusion(index, &leaves[..size]),
                "index {index} size {size}"
            );
            assert_eq!(
                verify_inclusion(
                    &leaves[index],
                    index as u64,
                    size as u64,
                    &proof,
                    &tree_root
                ),
                Ok(()),
                "index {index} size {size}"
            );
            // The leaf's sibling must not verify in its place (unless it is the leaf).
            let other = leaves[(index + 1) % size];
            if other != leaves[index] {
                assert!(
                    verify_inclusion(&other, index as u64, size as u64, &proof, &tree_root)
                        .is_err()
                );
            }
        }
    }
}

#[test]
fn every_consistency_proof_matches_and_verifies() {
    let (leaves, log) = build();
    for new_size in 1..=MAX_SIZE {
        let new_root = log.root_at(new_size as u64).unwrap();
        for old_size in 0..=new_size {
            let old_root = log.root_at(old_size as u64).unwrap();
            let proof = log
                .consistency_proof(old_size as u64, new_size as u64)
                .unwrap();
            assert_eq!(
                proof,
                ref_consistency(old_size, &leaves[..new_size]),
                "{old_size} -> {new_size}"
            );
            assert_eq!(
                verify_consistency(
                    old_size as u64,
                    new_size as u64,
                    &old_root,
                    &new_root,
                    &proof
                ),
                Ok(()),
                "{old_size} -> {new_size}"
            );
        }
    }
}

#[test]
fn log_proofs_do_not_depend_on_later_leaves() {
    // A proof for size n must be the same whether the log holds n or more leaves.
    let (leaves, full) = build();
    for size in 1..=MAX_SIZE {
        let short: MerkleLog = leaves[..size].iter().copied().collect();
        assert_eq!(short.root(), full.root_at(size as u64).unwrap());
        for index in 0..size as u64 {
            assert_eq!(
                short.inclusion_proof(index, size as u64),
                full.inclusion_proof(index, size as u64)
            );
        }
        for old_size in 0..=size as u64 {
            assert_eq!(
                short.consistency_proof(old_size, size as u64),
                full.consistency_proof(old_size, size as u64)
            );
        }
    }
}
