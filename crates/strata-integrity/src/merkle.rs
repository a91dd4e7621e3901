//! The RFC 6962 / RFC 9162 Merkle tree over catalog entries.
//!
//! Hashing follows RFC 6962 section 2.1: a leaf is `SHA-256(0x00 || entry)`, an
//! interior node is `SHA-256(0x01 || left || right)`, and the distinct prefixes keep
//! a leaf from ever being passed off as an interior node. The tree over `n` leaves
//! splits at the largest power of two below `n`, so the left part is always a
//! perfect subtree and appending never changes an existing perfect subtree.
//!
//! [`MerkleLog`] is the archive side: it builds the tree and produces proofs.
//! [`verify_inclusion`] and [`verify_consistency`] are the auditor side: they need
//! only hashes and implement the RFC 9162 verification algorithms step by step.

use sha2::{Digest, Sha256};

/// A SHA-256 digest: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// Domain separation prefixes from RFC 6962 section 2.1.
const LEAF_PREFIX: u8 = 0x00;
const NODE_PREFIX: u8 = 0x01;

/// The hash of a leaf: `SHA-256(0x00 || data)`, where `data` is one catalog entry's bytes.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([LEAF_PREFIX]);
    hasher.update(data);
    hasher.finalize().into()
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([NODE_PREFIX]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of the empty tree: `SHA-256("")`
/// (`e3b0c442...7852b855`).
pub fn empty_root() -> Hash {
    Sha256::digest(b"").into()
}

/// The Merkle Tree Hash (MTH, RFC 6962 section 2.1) of a list of leaf hashes.
///
/// Runs in O(n); [`MerkleLog::root`] gives the same value in O(log n) for a log
/// that is built incrementally.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The largest power of two strictly smaller than `n` (RFC 6962's `k`), for `n >= 2`.
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// Why a proof could not be produced or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// The leaf index asked for.
        index: u64,
        /// The tree size it was asked for in.
        size: u64,
    },
    /// A tree size larger than the log was asked for.
    #[error("tree size {size} exceeds the {len} leaves in the log")]
    SizeBeyondLog {
        /// The tree size asked for.
        size: u64,
        /// The number of leaves in the log.
        len: u64,
    },
    /// A consistency proof was asked for "backwards".
    #[error("old tree size {old_size} is larger than new tree size {new_size}")]
    OldSizeExceedsNewSize {
        /// The older tree size.
        old_size: u64,
        /// The newer tree size.
        new_size: u64,
    },
    /// The inclusion proof has the wrong number of hashes for its index and tree size.
    #[error("inclusion proof has {got} hashes, expected {expected}")]
    InclusionProofLength {
        /// Hashes in the proof given.
        got: usize,
        /// Hashes a proof for this index and size has.
        expected: usize,
    },
    /// The consistency proof has the wrong number of hashes for its two tree sizes.
    #[error("consistency proof has {got} hashes, expected {expected}")]
    ConsistencyProofLength {
        /// Hashes in the proof given.
        got: usize,
        /// Hashes a proof between these sizes has.
        expected: usize,
    },
    /// The root recomputed from the leaf and the inclusion proof is not the expected root.
    #[error("root mismatch: the proof yields {}, expected {}", hex::encode(.computed), hex::encode(.expected))]
    RootMismatch {
        /// The root the proof leads to.
        computed: Hash,
        /// The root the caller trusts.
        expected: Hash,
    },
    /// The old root recomputed from a consistency proof is not the expected old root.
    #[error("old root mismatch: the proof yields {}, expected {}", hex::encode(.computed), hex::encode(.expected))]
    OldRootMismatch {
        /// The old root the proof leads to.
        computed: Hash,
        /// The old root the caller trusts.
        expected: Hash,
    },
    /// The new root recomputed from a consistency proof is not the expected new root.
    #[error("new root mismatch: the proof yields {}, expected {}", hex::encode(.computed), hex::encode(.expected))]
    NewRootMismatch {
        /// The new root the proof leads to.
        computed: Hash,
        /// The new root the caller trusts.
        expected: Hash,
    },
}

/// The compact range of a Merkle tree: the roots of the perfect subtrees that
/// cover all its leaves, one per set bit of the leaf count, largest first.
///
/// It is all a writer needs to append leaves and compute the root in O(log n)
/// without keeping the leaves, so the catalog stores one in each snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    subtrees: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a frontier from its parts, checking there is one subtree per
    /// set bit of `size`.
    pub fn from_parts(size: u64, subtrees: Vec<Hash>) -> Option<Self> {
        (size.count_ones() as usize == subtrees.len()).then_some(Frontier { size, subtrees })
    }

    /// The number of leaves covered.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The perfect subtree roots, largest (leftmost) first.
    pub fn subtrees(&self) -> &[Hash] {
        &self.subtrees
    }

    /// Appends a leaf hash (see [`leaf_hash`]).
    pub fn push(&mut self, leaf: Hash) {
        // Like incrementing a binary counter: every trailing 1 bit of the old
        // size is a perfect subtree as large as the carry, so the two merge.
        let mut carry = leaf;
        let mut n = self.size;
        while n & 1 == 1 {
            let left = self
                .subtrees
                .pop()
                .expect("the frontier has one root per set bit of the leaf count");
            carry = node_hash(&left, &carry);
            n >>= 1;
        }
        self.subtrees.push(carry);
        self.size += 1;
    }

    /// The root of the tree, in O(log n).
    pub fn root(&self) -> Hash {
        // The MTH splits at the largest perfect subtree, which is subtrees[0];
        // the rest splits the same way, so folding from the right reproduces it.
        let mut subtrees = self.subtrees.iter().rev();
        match subtrees.next() {
            None => empty_root(),
            Some(last) => subtrees.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }
}

/// An append-only Merkle tree over catalog entries.
///
/// It keeps every leaf hash, so it can produce proofs for any earlier tree size,
/// and the [`Frontier`] of the current tree, which makes [`push`](Self::push) and
/// [`root`](Self::root) O(log n).
#[derive(Debug, Clone, Default)]
pub struct MerkleLog {
    leaves: Vec<Hash>,
    frontier: Frontier,
}

impl MerkleLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a leaf hash (see [`leaf_hash`]) and returns its index.
    pub fn push(&mut self, leaf: Hash) -> u64 {
        self.frontier.push(leaf);
        self.leaves.push(leaf);
        self.frontier.size - 1
    }

    /// Appends one entry's bytes (hashed with [`leaf_hash`]) and returns its index.
    pub fn push_entry(&mut self, entry: &[u8]) -> u64 {
        self.push(leaf_hash(entry))
    }

    /// The number of leaves, i.e. the current tree size.
    pub fn len(&self) -> u64 {
        self.leaves.len() as u64
    }

    /// Whether the log has no leaves.
    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    /// All leaf hashes, in order.
    pub fn leaf_hashes(&self) -> &[Hash] {
        &self.leaves
    }

    /// The root of the current tree, in O(log n).
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// The root of the tree made of the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, ProofError> {
        if size == self.len() {
            return Ok(self.root());
        }
        Ok(root(self.prefix(size)?))
    }

    /// The inclusion proof (RFC 6962 section 2.1.1, `PATH(m, D[n])`) for leaf `index`
    /// in the tree of the first `size` leaves, from the leaf's sibling up to the root.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        let leaves = self.prefix(size)?;
        if index >= size {
            return Err(ProofError::IndexOutOfRange { index, size });
        }
        let mut proof = Vec::new();
        // `index < size <= leaves.len()`, so it fits in usize.
        path(index as usize, leaves, &mut proof);
        Ok(proof)
    }

    /// The consistency proof (RFC 6962 section 2.1.2, `PROOF(m, D[n])`) that the tree
    /// of size `new_size` extends the tree of size `old_size`.
    ///
    /// The RFC defines proofs for `0 < old_size < new_size`; for `old_size == 0` and
    /// `old_size == new_size` the proof is empty, which is what [`verify_consistency`]
    /// expects in those cases.
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<Hash>, ProofError> {
        let leaves = self.prefix(new_size)?;
        if old_size > new_size {
            return Err(ProofError::OldSizeExceedsNewSize { old_size, new_size });
        }
        let mut proof = Vec::new();
        if old_size > 0 && old_size < new_size {
            // `old_size < new_size <= leaves.len()`, so it fits in usize.
            subproof(old_size as usize, leaves, true, &mut proof);
        }
        Ok(proof)
    }

    /// The first `size` leaves, or an error if the log is shorter.
    fn prefix(&self, size: u64) -> Result<&[Hash], ProofError> {
        let len = self.len();
        if size > len {
            return Err(ProofError::SizeBeyondLog { size, len });
        }
        // `size <= len`, which came from a usize.
        Ok(&self.leaves[..size as usize])
    }
}

impl Extend<Hash> for MerkleLog {
    fn extend<I: IntoIterator<Item = Hash>>(&mut self, leaves: I) {
        for leaf in leaves {
            self.push(leaf);
        }
    }
}

impl FromIterator<Hash> for MerkleLog {
    fn from_iter<I: IntoIterator<Item = Hash>>(leaves: I) -> Self {
        let mut log = Self::new();
        log.extend(leaves);
        log
    }
}

/// `PATH(m, D[n])` from RFC 6962 section 2.1.1, appended to `out`.
fn path(m: usize, leaves: &[Hash], out: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(m, &leaves[..k], out);
        out.push(root(&leaves[k..]));
    } else {
        path(m - k, &leaves[k..], out);
        out.push(root(&leaves[..k]));
    }
}

/// `SUBPROOF(m, D[n], b)` from RFC 6962 section 2.1.2, appended to `out`.
/// `b` says whether `D[0:m]` is the old tree itself, whose root the verifier has.
fn subproof(m: usize, leaves: &[Hash], b: bool, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !b {
            out.push(root(leaves));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &leaves[..k], b, out);
        out.push(root(&leaves[k..]));
    } else {
        subproof(m - k, &leaves[k..], false, out);
        out.push(root(&leaves[..k]));
    }
}

/// Checks that `proof` shows the leaf with hash `leaf` at `index` in the tree of
/// `size` leaves whose root is `root` (RFC 9162 section 2.1.3.2).
///
/// `leaf` should be computed by the auditor with [`leaf_hash`] from the entry
/// bytes, and `size` and `root` should come from a checkpoint the auditor trusts:
/// the proof binds the leaf to the root, but, as in the RFC, it does not pin the
/// tree size beyond the shape of the path (the path for index 0 in a tree of 3
/// is computed exactly like the one for index 0 in a tree of 4).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    // Step 1.
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // The RFC loop rejects any other length too; checking first gives a clearer error.
    let expected = inclusion_proof_len(index, size);
    let length_error = ProofError::InclusionProofLength {
        got: proof.len(),
        expected,
    };
    if proof.len() != expected {
        return Err(length_error);
    }
    let computed = inclusion_root_rfc9162(leaf, index, size, proof).ok_or(length_error)?;
    if computed != *root {
        return Err(ProofError::RootMismatch {
            computed,
            expected: *root,
        });
    }
    Ok(())
}

/// Checks that `proof` shows the tree of `new_size` leaves with root `new_root`
/// extends the tree of `old_size` leaves with root `old_root`
/// (RFC 9162 section 2.1.4.2).
///
/// The RFC algorithm covers `0 < old_size < new_size`. The cases it leaves out:
/// - `old_size > new_size` is rejected;
/// - `old_size == new_size`: the trees are the same, so the proof must be empty
///   and the roots equal;
/// - `old_size == 0`: every tree extends the empty one, so the proof must be empty
///   and `old_root` must be [`empty_root`]; `new_root` cannot be checked.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::OldSizeExceedsNewSize { old_size, new_size });
    }
    if old_size == 0 || old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::ConsistencyProofLength {
                got: proof.len(),
                expected: 0,
            });
        }
        if old_size == 0 && *old_root != empty_root() {
            return Err(ProofError::OldRootMismatch {
                computed: empty_root(),
                expected: *old_root,
            });
        }
        if old_size == new_size && old_root != new_root {
            return Err(ProofError::NewRootMismatch {
                computed: *old_root,
                expected: *new_root,
            });
        }
        return Ok(());
    }
    // The RFC loop rejects any other length too; checking first gives a clearer error.
    let expected = consistency_proof_len(old_size, new_size);
    let length_error = ProofError::ConsistencyProofLength {
        got: proof.len(),
        expected,
    };
    if proof.len() != expected {
        return Err(length_error);
    }
    let (old_computed, new_computed) =
        consistency_roots_rfc9162(old_size, new_size, old_root, proof).ok_or(length_error)?;
    // Step 7.
    if old_computed != *old_root {
        return Err(ProofError::OldRootMismatch {
            computed: old_computed,
            expected: *old_root,
        });
    }
    if new_computed != *new_root {
        return Err(ProofError::NewRootMismatch {
            computed: new_computed,
            expected: *new_root,
        });
    }
    Ok(())
}

/// RFC 9162 section 2.1.3.2 steps 2 to 5, for `index < size`: the root `proof`
/// leads to, or `None` when the algorithm fails (the proof has the wrong length).
/// `f_n` and `s_n` are the RFC's `fn` and `sn`.
fn inclusion_root_rfc9162(leaf: &Hash, index: u64, size: u64, proof: &[Hash]) -> Option<Hash> {
    let mut f_n = index;
    let mut s_n = size - 1;
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return None;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            // A no-op when LSB(fn) is set, as the RFC's "if LSB(fn) is not set" says.
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    (s_n == 0).then_some(r)
}

/// RFC 9162 section 2.1.4.2 steps 1 to 6 and the `sn == 0` check of step 7, for
/// `0 < old_size < new_size`: the old and new roots `proof` leads to, or `None`
/// when the algorithm fails. The caller compares the roots (rest of step 7).
fn consistency_roots_rfc9162(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    proof: &[Hash],
) -> Option<(Hash, Hash)> {
    // Step 1: an empty proof fails.
    let (first, rest) = proof.split_first()?;
    // Step 2: when old_size is a power of two the old tree is a perfect subtree of
    // the new one and its root starts the path; otherwise the proof's first hash does.
    let (seed, rest) = if old_size.is_power_of_two() {
        (old_root, proof)
    } else {
        (first, rest)
    };
    // Step 3.
    let mut f_n = old_size - 1;
    let mut s_n = new_size - 1;
    // Step 4.
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    // Step 5.
    let mut fr = *seed;
    let mut sr = *seed;
    // Step 6.
    for c in rest {
        if s_n == 0 {
            return None;
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            // A no-op when LSB(fn) is set, as the RFC's "if LSB(fn) is not set" says.
            while f_n & 1 == 0 && f_n != 0 {
                f_n >>= 1;
                s_n >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    // Step 7, first part.
    (s_n == 0).then_some((fr, sr))
}

/// How many hashes the inclusion proof for `index < size` has: the levels below
/// the point where the paths to `index` and to the last leaf `size - 1` diverge
/// (one sibling each), plus one left sibling per set bit of `index` above that
/// point (higher up, right siblings would lie beyond the last leaf).
fn inclusion_proof_len(index: u64, size: u64) -> usize {
    let inner = u64::BITS - (index ^ (size - 1)).leading_zeros();
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner + border) as usize
}

/// How many hashes the consistency proof for `0 < old_size < new_size` has: the
/// inclusion proof of the old tree's last leaf, minus the levels inside the
/// perfect subtree of `2^trailing_zeros(old_size)` leaves that ends the old tree
/// (its root replaces them), plus that root itself unless it is the old root.
fn consistency_proof_len(old_size: u64, new_size: u64) -> usize {
    let last = old_size - 1;
    let inner = u64::BITS - (last ^ (new_size - 1)).leading_zeros();
    let border = last.checked_shr(inner).unwrap_or(0).count_ones();
    // `inner > shift`: `last` has its low `shift` bits set and bit `shift` clear,
    // and `new_size - 1 > last`, so the two differ at bit `shift` or above.
    let shift = old_size.trailing_zeros();
    let seed = u32::from(!old_size.is_power_of_two());
    (inner - shift + border + seed) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which proof lengths up to `max` the RFC loops accept. The `fn`/`sn` bookkeeping
    /// never looks at hash values, so proofs of zero hashes find the accepted lengths.
    fn accepted_inclusion_lengths(index: u64, size: u64, max: usize) -> Vec<usize> {
        let zeros = vec![[0u8; 32]; max];
        (0..=max)
            .filter(|&len| inclusion_root_rfc9162(&[0; 32], index, size, &zeros[..len]).is_some())
            .collect()
    }

    fn accepted_consistency_lengths(old_size: u64, new_size: u64, max: usize) -> Vec<usize> {
        let zeros = vec![[0u8; 32]; max];
        (0..=max)
            .filter(|&len| {
                consistency_roots_rfc9162(old_size, new_size, &[0; 32], &zeros[..len]).is_some()
            })
            .collect()
    }

    #[test]
    fn rfc_loops_accept_exactly_the_expected_length() {
        // Proofs in trees of up to 70 leaves have at most 2 * 7 hashes; try a few more.
        for size in 1..=70u64 {
            for index in 0..size {
                assert_eq!(
                    accepted_inclusion_lengths(index, size, 20),
                    vec![inclusion_proof_len(index, size)],
                    "inclusion index {index} size {size}"
                );
            }
        }
        for new_size in 2..=70u64 {
            for old_size in 1..new_size {
                assert_eq!(
                    accepted_consistency_lengths(old_size, new_size, 20),
                    vec![consistency_proof_len(old_size, new_size)],
                    "consistency {old_size} -> {new_size}"
                );
            }
        }
    }

    #[test]
    fn expected_lengths_hold_for_huge_trees() {
        // Exercise the shifts at the top of the u64 range (no overflow panics).
        let huge = [
            (0, u64::MAX),
            (u64::MAX - 1, u64::MAX),
            (1 << 63, u64::MAX),
            ((1 << 63) - 1, 1 << 63),
            (0, 1 << 63),
            (12345, u64::MAX),
        ];
        for (index, size) in huge {
            assert_eq!(
                accepted_inclusion_lengths(index, size, 130),
                vec![inclusion_proof_len(index, size)],
                "inclusion index {index} size {size}"
            );
        }
        assert_eq!(inclusion_proof_len(0, u64::MAX), 64);
        assert_eq!(inclusion_proof_len(u64::MAX - 1, u64::MAX), 63);
        let huge = [
            (1, u64::MAX),
            (u64::MAX - 1, u64::MAX),
            (1 << 63, u64::MAX),
            ((1 << 63) + 1, u64::MAX),
            (3, 1 << 63),
        ];
        for (old_size, new_size) in huge {
            assert_eq!(
                accepted_consistency_lengths(old_size, new_size, 130),
                vec![consistency_proof_len(old_size, new_size)],
                "consistency {old_size} -> {new_size}"
            );
        }
    }

    #[test]
    fn frontier_has_one_root_per_set_bit() {
        let mut log = MerkleLog::new();
        for i in 0..300u32 {
            log.push_entry(&i.to_be_bytes());
            assert_eq!(log.frontier.subtrees.len() as u32, (i + 1).count_ones());
        }
    }

    #[test]
    fn split_is_largest_power_of_two_below() {
        assert_eq!(split(2), 1);
        assert_eq!(split(3), 2);
        assert_eq!(split(4), 2);
        assert_eq!(split(5), 4);
        assert_eq!(split(8), 4);
        assert_eq!(split(9), 8);
        assert_eq!(split(usize::MAX), 1 << (usize::BITS - 1));
    }

    #[test]
    fn error_messages() {
        let msg = |e: ProofError| e.to_string();
        assert_eq!(
            msg(ProofError::InclusionProofLength {
                got: 3,
                expected: 4
            }),
            "inclusion proof has 3 hashes, expected 4"
        );
        assert_eq!(
            msg(ProofError::IndexOutOfRange { index: 7, size: 5 }),
            "index 7 is not below tree size 5"
        );
        assert_eq!(
            msg(ProofError::RootMismatch {
                computed: [0xab; 32],
                expected: [0x01; 32]
            }),
            format!(
                "root mismatch: the proof yields {}, expected {}",
                "ab".repeat(32),
                "01".repeat(32)
            )
        );
        assert_eq!(
            msg(ProofError::OldSizeExceedsNewSize {
                old_size: 9,
                new_size: 4
            }),
            "old tree size 9 is larger than new tree size 4"
        );
    }
}
