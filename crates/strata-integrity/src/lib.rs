//! Tamper evidence for the Strata archive.
//!
//! The archive's catalog is an append-only log of entries. This crate makes that
//! log tamper-evident: every entry's bytes are a leaf of an RFC 6962 / RFC 9162
//! Merkle tree ([`merkle`]), so one 32-byte root commits to the whole history.
//! From the tree the archive can hand out
//!
//! - inclusion proofs: entry `i` is part of the tree of size `n` with root `r`;
//! - consistency proofs: the tree of size `n` only appended to the tree of size `m`,
//!   nothing earlier was rewritten or removed.
//!
//! An auditor checks both with [`verify_inclusion`] and [`verify_consistency`], using
//! nothing but hashes. The archive signs its tree heads as C2SP checkpoints
//! ([`checkpoint`]) in the C2SP signed-note format ([`note`]), with Ed25519 keys
//! that any C2SP tool can check.
//!
//! ```
//! use strata_integrity::{MerkleLog, leaf_hash, verify_consistency, verify_inclusion};
//!
//! let mut log = MerkleLog::new();
//! for entry in [&b"commit 1"[..], b"commit 2", b"commit 3"] {
//!     log.push_entry(entry);
//! }
//! let old_root = log.root();
//! log.push_entry(b"commit 4");
//!
//! // Entry 1 is in the current tree...
//! let proof = log.inclusion_proof(1, log.len()).unwrap();
//! verify_inclusion(&leaf_hash(b"commit 2"), 1, log.len(), &proof, &log.root()).unwrap();
//!
//! // ...and the current tree extends the one of size 3.
//! let proof = log.consistency_proof(3, log.len()).unwrap();
//! verify_consistency(3, log.len(), &old_root, &log.root(), &proof).unwrap();
//! ```

#![warn(missing_docs)]

pub mod checkpoint;
pub mod merkle;
pub mod note;

pub use checkpoint::Checkpoint;
pub use merkle::{
    Frontier, Hash, MerkleLog, ProofError, empty_root, leaf_hash, node_hash, root,
    verify_consistency, verify_inclusion,
};
pub use note::{NoteError, SigningKey, VerifierKey};
