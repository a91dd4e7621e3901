//! C2SP tlog checkpoints (<https://c2sp.org/tlog-checkpoint>): the signed
//! statement "the log named `origin` has `size` entries and Merkle root `root`".
//!
//! The text is three lines, the origin, the tree size in decimal and the
//! base64 root hash, signed as a [note](crate::note).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::merkle::Hash;
use crate::note::{NoteError, SigningKey, VerifierKey};

/// A tree head: which log, how many entries, which root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's unique name.
    pub origin: String,
    /// Number of entries covered.
    pub size: u64,
    /// Merkle root of those entries.
    pub root: Hash,
}

impl Checkpoint {
    /// The checkpoint's text (the part that is signed).
    pub fn text(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        )
    }

    /// Parses checkpoint text; extension lines after the root are ignored.
    pub fn parse(text: &str) -> Result<Checkpoint, NoteError> {
        let bad = |why: &str| NoteError::MalformedNote(format!("checkpoint {why}"));
        let mut lines = text.lines();
        let origin = lines.next().filter(|o| !o.is_empty());
        let (Some(origin), Some(size), Some(root)) = (origin, lines.next(), lines.next()) else {
            return Err(bad("needs an origin, a tree size and a root hash"));
        };
        let size_is_canonical = !size.is_empty()
            && size.bytes().all(|b| b.is_ascii_digit())
            && (size == "0" || !size.starts_with('0'));
        let size = size
            .parse()
            .ok()
            .filter(|_| size_is_canonical)
            .ok_or_else(|| bad(&format!("tree size {size:?} is not a decimal number")))?;
        let root = BASE64
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| bad("root is not 32 base64-encoded bytes"))?;
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
        })
    }

    /// The checkpoint as a note signed by `key`.
    pub fn sign(&self, key: &SigningKey) -> String {
        key.sign(&self.text())
            .expect("checkpoint text is a single block of newline-terminated lines")
    }

    /// A heartbeat: the checkpoint with an extension line `time <at>`, signed
    /// by `key`, showing the log was this at `at` even if nothing was committed.
    pub fn sign_heartbeat(&self, key: &SigningKey, at: &str) -> Result<String, NoteError> {
        key.sign(&format!("{}time {at}\n", self.text()))
    }

    /// The `time` extension line of a heartbeat's text, if any.
    pub fn heartbeat_time(text: &str) -> Option<&str> {
        text.lines().skip(3).find_map(|l| l.strip_prefix("time "))
    }

    /// Checks the signature of `note` with `key` and parses the checkpoint.
    pub fn open(note: &str, key: &VerifierKey) -> Result<Checkpoint, NoteError> {
        Checkpoint::parse(key.open(note)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_parses_and_checks() {
        let key = SigningKey::generate("strata.test/log").unwrap();
        let checkpoint = Checkpoint {
            origin: "strata.test/log".into(),
            size: 42,
            root: [7; 32],
        };
        let note = checkpoint.sign(&key);
        assert!(note.starts_with("strata.test/log\n42\nBwcH"), "{note}");
        assert_eq!(
            Checkpoint::open(&note, &key.verifier()).unwrap(),
            checkpoint
        );

        let forged = note.replace("\n42\n", "\n43\n");
        assert!(matches!(
            Checkpoint::open(&forged, &key.verifier()),
            Err(NoteError::BadSignature { .. })
        ));
    }

    #[test]
    fn malformed_text_is_refused() {
        for text in [
            "",
            "origin\n",
            "origin\n01\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
            "origin\n-1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n",
            "origin\n1\nBwcH\n",
        ] {
            assert!(Checkpoint::parse(text).is_err(), "{text:?}");
        }
        let key = SigningKey::generate("k").unwrap();
        let checkpoint =
            Checkpoint::parse("o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n").unwrap();
        let beat = checkpoint
            .sign_heartbeat(&key, "2026-01-01T00:00:00Z")
            .unwrap();
        let text = key.verifier().open(&beat).unwrap();
        assert_eq!(Checkpoint::parse(text).unwrap(), checkpoint);
        assert_eq!(
            Checkpoint::heartbeat_time(text),
            Some("2026-01-01T00:00:00Z")
        );
        let with_extension = "o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\nTimestamp: 1\n";
        assert_eq!(Checkpoint::parse(with_extension).unwrap().size, 0);
    }
}
