//! Known-answer tests against the reference vectors of the certificate-transparency
//! implementations.
//!
//! Source: `proof/verify_test.go` in github.com/transparency-dev/merkle (Apache-2.0),
//! the Go successor of the certificate-transparency-go / C++ CT test data. There the
//! inclusion vectors number leaves from 1; they are converted to 0-based indices here.

use strata_integrity::{
    Hash, MerkleLog, ProofError, empty_root, leaf_hash, node_hash, root, verify_consistency,
    verify_inclusion,
};

/// The eight leaf inputs of the reference tree.
const LEAVES: [&[u8]; 8] = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
];

const EMPTY_ROOT: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Roots of the reference tree for sizes 1..=8 (`ROOTS[n - 1]` is the root of size `n`).
const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// (0-based leaf index, tree size, proof).
const INCLUSION: [(u64, u64, &[&str]); 5] = [
    (0, 1, &[]),
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

/// (old size, new size, proof).
const CONSISTENCY: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

fn h(hex_str: &str) -> Hash {
    hex::decode(hex_str)
        .expect("valid hex")
        .try_into()
        .expect("32 bytes")
}

fn hashes(hex_strs: &[&str]) -> Vec<Hash> {
    hex_strs.iter().map(|s| h(s)).collect()
}

fn reference_log() -> MerkleLog {
    LEAVES.iter().map(|entry| leaf_hash(entry)).collect()
}

fn reference_root(size: u64) -> Hash {
    h(ROOTS[size as usize - 1])
}

#[test]
fn empty_tree_hash() {
    assert_eq!(empty_root(), h(EMPTY_ROOT));
    assert_eq!(root(&[]), h(EMPTY_ROOT));
    assert_eq!(MerkleLog::new().root(), h(EMPTY_ROOT));
    assert_eq!(MerkleLog::new().root_at(0), Ok(h(EMPTY_ROOT)));
}

#[test]
fn leaf_and_node_hashes() {
    // The tree of one leaf is that leaf: SHA-256(0x00).
    assert_eq!(leaf_hash(b""), h(ROOTS[0]));
    // The tree of two leaves is their node: SHA-256(0x01 || leaf("") || leaf("\x00")).
    assert_eq!(
        node_hash(&leaf_hash(LEAVES[0]), &leaf_hash(LEAVES[1])),
        h(ROOTS[1])
    );
}

#[test]
fn roots_for_every_size() {
    let leaves: Vec<Hash> = LEAVES.iter().map(|entry| leaf_hash(entry)).collect();
    let mut log = MerkleLog::new();
    for (n, leaf) in leaves.iter().enumerate() {
        log.push(*leaf);
        let size = n as u64 + 1;
        assert_eq!(
            log.root(),
            reference_root(size),
            "incremental root, size {size}"
        );
        assert_eq!(
            root(&leaves[..=n]),
            reference_root(size),
            "root(), size {size}"
        );
    }
    for size in 1..=8 {
        assert_eq!(
            log.root_at(size),
            Ok(reference_root(size)),
            "root_at({size})"
        );
    }
    assert_eq!(log.root(), h(ROOTS[7]));
}

#[test]
fn inclusion_vectors() {
    let log = reference_log();
    for (index, size, proof) in INCLUSION {
        let proof = hashes(proof);
        assert_eq!(
            log.inclusion_proof(index, size).unwrap(),
            proof,
            "generated proof, index {index} size {size}"
        );
        let leaf = leaf_hash(LEAVES[index as usize]);
        assert_eq!(
            verify_inclusion(&leaf, index, size, &proof, &reference_root(size)),
            Ok(()),
            "index {index} size {size}"
        );
    }
}

#[test]
fn consistency_vectors() {
    let log = reference_log();
    for (old_size, new_size, proof) in CONSISTENCY {
        let proof = hashes(proof);
        assert_eq!(
            log.consistency_proof(old_size, new_size).unwrap(),
            proof,
            "generated proof, {old_size} -> {new_size}"
        );
        assert_eq!(
            verify_consistency(
                old_size,
                new_size,
                &reference_root(old_size),
                &reference_root(new_size),
                &proof
            ),
            Ok(()),
            "{old_size} -> {new_size}"
        );
    }
}

#[test]
fn rejections_with_clear_errors() {
    let root8 = reference_root(8);
    let leaf0 = leaf_hash(LEAVES[0]);
    let proof = hashes(INCLUSION[1].2);

    assert_eq!(
        verify_inclusion(&leaf0, 7, 5, &proof, &root8),
        Err(ProofError::IndexOutOfRange { index: 7, size: 5 })
    );
    assert_eq!(
        verify_inclusion(&leaf0, 0, 0, &[], &empty_root()),
        Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
    );
    let err = verify_inclusion(&leaf0, 0, 16, &proof, &root8).unwrap_err();
    assert_eq!(
        err,
        ProofError::InclusionProofLength {
            got: 3,
            expected: 4
        }
    );
    assert_eq!(err.to_string(), "inclusion proof has 3 hashes, expected 4");
    assert!(matches!(
        verify_inclusion(&leaf_hash(LEAVES[1]), 0, 8, &proof, &root8),
        Err(ProofError::RootMismatch { expected, .. }) if expected == root8
    ));

    let proof = hashes(CONSISTENCY[2].2);
    let root6 = reference_root(6);
    assert_eq!(
        verify_consistency(8, 6, &root8, &root6, &proof),
        Err(ProofError::OldSizeExceedsNewSize {
            old_size: 8,
            new_size: 6
        })
    );
    assert_eq!(
        verify_consistency(6, 8, &root6, &root8, &proof[..2]),
        Err(ProofError::ConsistencyProofLength {
            got: 2,
            expected: 3
        })
    );
    assert!(matches!(
        verify_consistency(6, 8, &root8, &root8, &proof),
        Err(ProofError::OldRootMismatch { .. })
    ));
    assert!(matches!(
        verify_consistency(6, 8, &root6, &root6, &proof),
        Err(ProofError::NewRootMismatch { .. })
    ));
    // Same size: empty proof and equal roots.
    assert_eq!(verify_consistency(8, 8, &root8, &root8, &[]), Ok(()));
    assert!(verify_consistency(8, 8, &root8, &root6, &[]).is_err());
    assert!(verify_consistency(8, 8, &root8, &root8, &proof[..1]).is_err());
    // From the empty tree: empty proof and the empty root.
    assert_eq!(verify_consistency(0, 8, &empty_root(), &root8, &[]), Ok(()));
    assert_eq!(
        verify_consistency(0, 0, &empty_root(), &empty_root(), &[]),
        Ok(())
    );
    assert!(verify_consistency(0, 8, &root6, &root8, &[]).is_err());
    assert!(verify_consistency(0, 8, &empty_root(), &root8, &proof[..1]).is_err());
    assert!(verify_consistency(0, 0, &empty_root(), &root8, &[]).is_err());

    let log = reference_log();
    assert_eq!(
        log.inclusion_proof(0, 9),
        Err(ProofError::SizeBeyondLog { size: 9, len: 8 })
    );
    assert_eq!(
        log.inclusion_proof(5, 5),
        Err(ProofError::IndexOutOfRange { index: 5, size: 5 })
    );
    assert_eq!(
        log.consistency_proof(3, 9),
        Err(ProofError::SizeBeyondLog { size: 9, len: 8 })
    );
    assert_eq!(
        log.consistency_proof(5, 4),
        Err(ProofError::OldSizeExceedsNewSize {
            old_size: 5,
            new_size: 4
        })
    );
    assert_eq!(
        log.root_at(9),
        Err(ProofError::SizeBeyondLog { size: 9, len: 8 })
    );
    assert_eq!(log.consistency_proof(0, 8), Ok(vec![]));
    assert_eq!(log.consistency_proof(8, 8), Ok(vec![]));
}
