//! C2SP signed notes (<https://c2sp.org/signed-note>) with Ed25519 keys.
//!
//! A note is UTF-8 text ending in a newline, a blank line, then signature
//! lines `— <key name> <base64(key id || signature)>`. The key id is the first
//! four bytes of `SHA-256(name || 0x0A || 0x01 || public key)`. Keys travel as
//! text: a verifier key is `<name>+<hex key id>+<base64(0x01 || public key)>`
//! and a signer key `PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || seed)>`,
//! the formats of Go's `golang.org/x/mod/sumdb/note`, so any C2SP tool can
//! check what strata signs.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use sha2::{Digest, Sha256};

/// The signature type byte of Ed25519 in C2SP keys.
const ED25519_TYPE: u8 = 0x01;
/// Starts every signature line: an em dash and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";
const SIGNER_PREFIX: &str = "PRIVATE+KEY+";

/// Errors parsing keys or opening notes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// A key string is not in the expected format.
    #[error("malformed key: {0}")]
    MalformedKey(String),
    /// The note is not a well-formed signed note.
    #[error("malformed note: {0}")]
    MalformedNote(String),
    /// No signature line is from the expected key.
    #[error("not signed by key {name}+{id} (signed by: {signers})")]
    UnknownSigner {
        /// The expected key's name.
        name: String,
        /// The expected key's id, hex.
        id: String,
        /// Names on the note's signature lines.
        signers: String,
    },
    /// A signature line from the expected key does not verify.
    #[error("signature by {name} does not match the note's text")]
    BadSignature {
        /// The key's name.
        name: String,
    },
}

fn key_id(name: &str, public_key: &[u8]) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', ED25519_TYPE]);
    hasher.update(public_key);
    let digest = hasher.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '+') {
        return Err(NoteError::MalformedKey(format!(
            "key name {name:?} must be non-empty, without spaces or '+'"
        )));
    }
    Ok(())
}

/// Splits `<name>+<hex id>+<base64(type || key)>` and checks the type byte.
/// The base64 part may itself contain `+`, so only the first two are split on.
fn split_key(text: &str) -> Result<(&str, [u8; 4], Vec<u8>), NoteError> {
    let bad = |why: &str| NoteError::MalformedKey(format!("{why} in {text:?}"));
    let mut parts = text.trim().splitn(3, '+');
    let (Some(name), Some(id), Some(material)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("expected <name>+<key id>+<key>"));
    };
    check_name(name)?;
    let id: [u8; 4] = hex::decode(id)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("the key id is not 8 hex digits"))?;
    let material = BASE64
        .decode(material)
        .map_err(|_| bad("the key is not base64"))?;
    match material.split_first() {
        Some((&ED25519_TYPE, key)) if key.len() == 32 => Ok((name, id, key.to_vec())),
        Some((&ED25519_TYPE, _)) => Err(bad("an Ed25519 key has 32 bytes")),
        _ => Err(bad("only Ed25519 keys (type 0x01) are supported")),
    }
}

fn join_key(name: &str, key: &[u8]) -> String {
    let mut material = vec![ED25519_TYPE];
    material.extend_from_slice(key);
    format!(
        "{name}+{}+{}",
        hex::encode(key_id(name, key)),
        BASE64.encode(material)
    )
}

/// A public key that checks notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: [u8; 4],
    public_key: [u8; 32],
}

impl VerifierKey {
    /// Parses a verifier key `<name>+<hex key id>+<base64(0x01 || public key)>`.
    pub fn parse(text: &str) -> Result<VerifierKey, NoteError> {
        let (name, id, key) = split_key(text)?;
        if key_id(name, &key) != id {
            return Err(NoteError::MalformedKey(format!(
                "key id {} does not match the key in {text:?}",
                hex::encode(id)
            )));
        }
        Ok(VerifierKey {
            name: name.to_string(),
            id,
            public_key: key.try_into().expect("checked length"),
        })
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Hex SHA-256 of the raw public key, for pinning by eye.
    pub fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(self.public_key))
    }

    /// Checks `note` and returns its text (without the blank line and the
    /// signatures) if a signature line from this key verifies.
    pub fn open<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        let malformed = |why: &str| NoteError::MalformedNote(why.to_string());
        if note.chars().any(|c| c.is_ascii_control() && c != '\n') {
            return Err(malformed("contains control characters"));
        }
        let split = note
            .rfind("\n\n")
            .ok_or_else(|| malformed("no blank line before the signatures"))?;
        let (text, signatures) = (&note[..split + 1], &note[split + 2..]);
        if !signatures.ends_with('\n') {
            return Err(malformed(
                "the last signature line does not end in a newline",
            ));
        }
        let mut signers = Vec::new();
        for line in signatures.lines() {
            let rest = line
                .strip_prefix(SIGNATURE_PREFIX)
                .ok_or_else(|| malformed("a signature line does not start with an em dash"))?;
            let (name, signature) = rest
                .split_once(' ')
                .ok_or_else(|| malformed("a signature line has no signature"))?;
            let signature = BASE64
                .decode(signature)
                .map_err(|_| malformed("a signature is not base64"))?;
            if signature.len() < 5 {
                return Err(malformed("a signature is too short"));
            }
            if name == self.name && signature[..4] == self.id {
                return UnparsedPublicKey::new(&ED25519, self.public_key)
                    .verify(text.as_bytes(), &signature[4..])
                    .map(|()| text)
                    .map_err(|_| NoteError::BadSignature {
                        name: name.to_string(),
                    });
            }
            signers.push(name.to_string());
        }
        Err(NoteError::UnknownSigner {
            name: self.name.clone(),
            id: hex::encode(self.id),
            signers: if signers.is_empty() {
                "nobody".to_string()
            } else {
                signers.join(", ")
            },
        })
    }
}

impl std::fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&join_key(&self.name, &self.public_key))
    }
}

/// An Ed25519 private key that signs notes.
pub struct SigningKey {
    name: String,
    seed: [u8; 32],
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the seed.
        write!(f, "SigningKey({})", self.verifier())
    }
}

impl Clone for SigningKey {
    fn clone(&self) -> Self {
        SigningKey::from_seed(&self.name, self.seed).expect("a valid key's seed is valid")
    }
}

impl SigningKey {
    /// The key of `name` made from a 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<SigningKey, NoteError> {
        check_name(name)?;
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed)
            .map_err(|_| NoteError::MalformedKey("invalid Ed25519 seed".to_string()))?;
        Ok(SigningKey {
            name: name.to_string(),
            seed,
            pair,
        })
    }

    /// A new random key named `name`.
    pub fn generate(name: &str) -> Result<SigningKey, NoteError> {
        let mut seed = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed)
            .map_err(|_| NoteError::MalformedKey("no system randomness".to_string()))?;
        SigningKey::from_seed(name, seed)
    }

    /// Parses a signer key `PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 || seed)>`.
    pub fn parse(text: &str) -> Result<SigningKey, NoteError> {
        let rest = text.trim().strip_prefix(SIGNER_PREFIX).ok_or_else(|| {
            NoteError::MalformedKey("a signer key starts with PRIVATE+KEY+".to_string())
        })?;
        let (name, id, seed) = split_key(rest)?;
        let key = SigningKey::from_seed(name, seed.try_into().expect("checked length"))?;
        if key.verifier().id != id {
            return Err(NoteError::MalformedKey(format!(
                "key id {} does not match the signer key of {name}",
                hex::encode(id)
            )));
        }
        Ok(key)
    }

    /// The signer key as text, for storing in a keyring.
    pub fn to_private_text(&self) -> String {
        let public = self.verifier();
        let mut material = vec![ED25519_TYPE];
        material.extend_from_slice(&self.seed);
        format!(
            "{SIGNER_PREFIX}{}+{}+{}",
            self.name,
            hex::encode(public.id),
            BASE64.encode(material)
        )
    }

    /// The matching verifier key.
    pub fn verifier(&self) -> VerifierKey {
        let public_key: [u8; 32] = self
            .pair
            .public_key()
            .as_ref()
            .try_into()
            .expect("Ed25519 public keys have 32 bytes");
        VerifierKey {
            id: key_id(&self.name, &public_key),
            name: self.name.clone(),
            public_key,
        }
    }

    /// Signs `text`, which must end in a newline and contain no blank line,
    /// and returns the signed note.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        let malformed = |why: &str| NoteError::MalformedNote(why.to_string());
        if !text.ends_with('\n') {
            return Err(malformed("the text must end in a newline"));
        }
        if text.contains("\n\n") || text.starts_with('\n') {
            return Err(malformed("the text must not contain a blank line"));
        }
        if text.chars().any(|c| c.is_ascii_control() && c != '\n') {
            return Err(malformed("the text must not contain control characters"));
        }
        let mut signature = self.verifier().id.to_vec();
        signature.extend_from_slice(self.pair.sign(text.as_bytes()).as_ref());
        Ok(format!(
            "{text}\n{SIGNATURE_PREFIX}{} {}\n",
            self.name,
            BASE64.encode(signature)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of golang.org/x/mod/sumdb/note: Ed25519 is deterministic,
    // so signing must reproduce Go's note byte for byte.
    const GO_SIGNER: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_VERIFIER: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                           then you don't know what your problem is.\n";
    const GO_NOTE: &str = "If you think cryptography is the answer to your problem,\n\
         then you don't know what your problem is.\n\
         \n\
         \u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    #[test]
    fn signs_and_opens_like_go_sumdb_note() {
        let signer = SigningKey::parse(GO_SIGNER).unwrap();
        assert_eq!(signer.verifier().to_string(), GO_VERIFIER);
        assert_eq!(signer.to_private_text(), GO_SIGNER);
        assert_eq!(signer.sign(GO_TEXT).unwrap(), GO_NOTE);
        let verifier = VerifierKey::parse(GO_VERIFIER).unwrap();
        assert_eq!(verifier.open(GO_NOTE).unwrap(), GO_TEXT);
    }

    #[test]
    fn edited_text_or_signature_is_refused() {
        let verifier = VerifierKey::parse(GO_VERIFIER).unwrap();
        let edited = GO_NOTE.replace("cryptography", "cryptographY");
        assert!(matches!(
            verifier.open(&edited),
            Err(NoteError::BadSignature { .. })
        ));
        let resigned = GO_NOTE.replace("x08go", "x08gp");
        assert!(verifier.open(&resigned).is_err());
        assert!(matches!(
            verifier.open(GO_TEXT),
            Err(NoteError::MalformedNote(_))
        ));
    }

    #[test]
    fn another_key_is_an_unknown_signer() {
        let other = SigningKey::generate("PeterNeumann").unwrap();
        let note = other.sign(GO_TEXT).unwrap();
        let err = VerifierKey::parse(GO_VERIFIER)
            .unwrap()
            .open(&note)
            .unwrap_err();
        assert!(matches!(err, NoteError::UnknownSigner { .. }), "{err}");
        assert_eq!(other.verifier().open(&note).unwrap(), GO_TEXT);
    }

    #[test]
    fn mangled_keys_are_refused() {
        let good = GO_VERIFIER.as_bytes();
        for i in 0..good.len() {
            let mut bad = good.to_vec();
            bad[i] = b'!';
            let text = std::str::from_utf8(&bad).unwrap();
            assert!(VerifierKey::parse(text).is_err(), "{text} parsed");
        }
        assert!(VerifierKey::parse("name+c74f20a3").is_err());
        assert!(SigningKey::parse(GO_VERIFIER).is_err());
    }

    #[test]
    fn texts_that_would_not_round_trip_are_not_signed() {
        let key = SigningKey::generate("k").unwrap();
        assert!(key.sign("no newline").is_err());
        assert!(key.sign("a\n\nb\n").is_err());
        assert!(key.sign("tab\there\n").is_err());
    }
}
