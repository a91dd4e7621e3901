//! SCRAM-SHA-256 (RFC 5802, RFC 7677), how PostgreSQL clients prove they
//! know a password without sending it: a principal's token is its
//! password on the PostgreSQL wire.
//!
//! The catalog keeps a PostgreSQL-style verifier per principal
//! (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`), which
//! checks a proof but cannot make one: reading the catalog does not let
//! anyone log in. Channel binding (`-PLUS`) is not offered.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::{digest, hmac, pbkdf2};
use std::num::NonZeroU32;

/// The mechanism's name as clients ask for it.
pub const MECHANISM: &str = "SCRAM-SHA-256";
/// PBKDF2 rounds of a new verifier: PostgreSQL's default.
const ITERATIONS: u32 = 4096;
/// Bytes of salt and of the server's nonce.
const RANDOM_BYTES: usize = 18;

/// What a verifier holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    iterations: u32,
    salt: Vec<u8>,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

fn random(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .expect("system randomness");
    bytes
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&key, data).as_ref().to_vec()
}

fn sha256(data: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, data).as_ref().to_vec()
}

impl Verifier {
    /// A new verifier of `password` with a random salt.
    pub fn new(password: &str) -> Verifier {
        Verifier::with_salt(password, random(RANDOM_BYTES), ITERATIONS)
    }

    fn with_salt(password: &str, salt: Vec<u8>, iterations: u32) -> Verifier {
        let mut salted = [0u8; 32];
        let rounds = NonZeroU32::new(iterations).expect("iterations > 0");
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            rounds,
            &salt,
            password.as_bytes(),
            &mut salted,
        );
        let client_key = hmac_sha256(&salted, b"Client Key");
        Verifier {
            iterations,
            salt,
            stored_key: sha256(&client_key),
            server_key: hmac_sha256(&salted, b"Server Key"),
        }
    }

    /// The verifier as PostgreSQL writes it.
    pub fn encode(&self) -> String {
        format!(
            "{MECHANISM}${}:{}${}:{}",
            self.iterations,
            BASE64.encode(&self.salt),
            BASE64.encode(&self.stored_key),
            BASE64.encode(&self.server_key)
        )
    }

    /// A verifier written by [`Verifier::encode`].
    pub fn decode(text: &str) -> Option<Verifier> {
        let rest = text.strip_prefix(MECHANISM)?.strip_prefix('$')?;
        let (params, keys) = rest.split_once('$')?;
        let (iterations, salt) = params.split_once(':')?;
        let (stored_key, server_key) = keys.split_once(':')?;
        Some(Verifier {
            iterations: iterations.parse().ok().filter(|&i| i > 0)?,
            salt: BASE64.decode(salt).ok()?,
            stored_key: BASE64.decode(stored_key).ok()?,
            server_key: BASE64.decode(server_key).ok()?,
        })
    }
}

/// The server's side of one exchange, between its two messages.
#[derive(Debug)]
pub struct Exchange {
    verifier: Verifier,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

/// Why an exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    /// A message that does not follow the protocol.
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    /// The client asked for channel binding, which is not offered.
    #[error("SCRAM channel binding is not offered")]
    ChannelBinding,
    /// The proof is wrong: not the password.
    #[error("the password is wrong")]
    WrongProof,
}

impl Exchange {
    /// Answers the client's first message (`n,,n=…,r=…`) for `verifier`:
    /// the exchange and the server's first message.
    pub fn start(verifier: Verifier, client_first: &str) -> Result<(Exchange, String), ScramError> {
        let bare = match client_first.split_once(",,") {
            Some(("n" | "y", bare)) => bare,
            Some((header, _)) if header.starts_with("p=") => {
                return Err(ScramError::ChannelBinding);
            }
            _ => return Err(ScramError::Malformed("no GS2 header")),
        };
        let client_nonce = (bare.split(','))
            .find_map(|part| part.strip_prefix("r="))
            .filter(|n| !n.is_empty())
            .ok_or(ScramError::Malformed("no client nonce"))?;
        let nonce = format!("{client_nonce}{}", BASE64.encode(random(RANDOM_BYTES)));
        let server_first = format!(
            "r={nonce},s={},i={}",
            BASE64.encode(&verifier.salt),
            verifier.iterations
        );
        let exchange = Exchange {
            verifier,
            client_first_bare: bare.to_string(),
            server_first: server_first.clone(),
            nonce,
        };
        Ok((exchange, server_first))
    }

    /// Checks the client's final message (`c=…,r=…,p=…`): the server's
    /// final message when its proof holds.
    pub fn finish(self, client_final: &str) -> Result<String, ScramError> {
        let (without_proof, proof) = client_final
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("no proof"))?;
        let mut parts = without_proof.split(',');
        let binding = parts.next().and_then(|c| c.strip_prefix("c="));
        // Without channel binding the client echoes its GS2 header.
        if !matches!(binding, Some("biws" | "eSws")) {
            return Err(ScramError::ChannelBinding);
        }
        if parts.next().and_then(|r| r.strip_prefix("r=")) != Some(self.nonce.as_str()) {
            return Err(ScramError::Malformed("the nonce does not match"));
        }
        let proof = BASE64
            .decode(proof)
            .map_err(|_| ScramError::Malformed("the proof is not base64"))?;
        let auth_message = format!(
            "{},{},{without_proof}",
            self.client_first_bare, self.server_first
        );
        let signature = hmac_sha256(&self.verifier.stored_key, auth_message.as_bytes());
        if proof.len() != signature.len() {
            return Err(ScramError::WrongProof);
        }
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
        if !same_bytes(&sha256(&client_key), &self.verifier.stored_key) {
            return Err(ScramError::WrongProof);
        }
        let server_signature = hmac_sha256(&self.verifier.server_key, auth_message.as_bytes());
        Ok(format!("v={}", BASE64.encode(server_signature)))
    }
}

/// Whether `a` and `b` are equal, in time that does not depend on where
/// they differ.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's example exchange (user "user", password "pencil").
    #[test]
    fn the_rfc_example_exchange_verifies() {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let verifier = Verifier::with_salt("pencil", salt, 4096);
        let decoded = Verifier::decode(&verifier.encode()).unwrap();
        assert_eq!(decoded, verifier);
        let client_first = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
        let (mut exchange, _) = Exchange::start(verifier, client_first).unwrap();
        // The RFC's server nonce, so that its proof applies.
        exchange.nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into();
        exchange.server_first = format!("r={},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", exchange.nonce);
        let client_final = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                            p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        assert_eq!(
            exchange.finish(client_final).unwrap(),
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn a_wrong_password_or_channel_binding_is_refused() {
        let verifier = Verifier::new("right");
        let wrong = Verifier::new("wrong");
        let (exchange, server_first) = Exchange::start(verifier.clone(), "n,,n=,r=abc").unwrap();
        let nonce = server_first
            .split(',')
            .next()
            .unwrap()
            .strip_prefix("r=")
            .unwrap();
        // A proof made with another password's keys.
        let without_proof = format!("c=biws,r={nonce}");
        let auth = format!("n=,r=abc,{server_first},{without_proof}");
        let forged = hmac_sha256(&wrong.stored_key, auth.as_bytes());
        let proof = format!("{without_proof},p={}", BASE64.encode(forged));
        assert_eq!(exchange.finish(&proof), Err(ScramError::WrongProof));
        assert_eq!(
            Exchange::start(verifier, "p=tls-server-end-point,,n=,r=abc").unwrap_err(),
            ScramError::ChannelBinding
        );
        assert!(Verifier::decode("SCRAM-SHA-256$0:AA==$AA==:AA==").is_none());
    }
}
