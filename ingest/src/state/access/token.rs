//! An API key's text: `citytel_<id>_<secret>`, where the id is 12 lowercase hex digits (public:
//! it names the key in lists and the audit log) and the secret 64 (256 random bits). Only the
//! SHA-256 of the secret is stored; checking a key hashes what was presented and compares the
//! hashes in constant time.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What every key starts with.
pub const KEY_PREFIX: &str = "citytel_";
/// Hex digits of a key id.
const ID_LEN: usize = 12;
/// Hex digits of a secret.
const SECRET_LEN: usize = 64;

/// A key's public id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(String);

impl KeyId {
    /// The id of a valid text (12 lowercase hex digits).
    pub fn parse(text: &str) -> Result<KeyId, TokenError> {
        if text.len() == ID_LEN && is_hex(text) {
            Ok(KeyId(text.to_string()))
        } else {
            Err(TokenError::Malformed)
        }
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A text that is not a citytel key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not of the form `citytel_<12 hex digits>_<64 hex digits>`.
    #[error("not a citytel API key (expected citytel_<id>_<secret>)")]
    Malformed,
}

fn is_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A new key: its id, its full text (shown once) and the hash to store.
pub fn generate() -> (KeyId, String, [u8; 32]) {
    use rand::RngCore as _;
    let mut id = [0u8; ID_LEN / 2];
    let mut secret = [0u8; SECRET_LEN / 2];
    // ThreadRng is a CSPRNG seeded from the operating system.
    let mut rng = rand::rng();
    rng.fill_bytes(&mut id);
    rng.fill_bytes(&mut secret);
    let (id, secret) = (hex::encode(id), hex::encode(secret));
    let text = format!("{KEY_PREFIX}{id}_{secret}");
    (KeyId(id), text, hash(&secret))
}

/// SHA-256 of a secret's text.
pub fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Splits a key's text into its id and secret.
pub fn parse(text: &str) -> Result<(KeyId, &str), TokenError> {
    let rest = text.strip_prefix(KEY_PREFIX).ok_or(TokenError::Malformed)?;
    let (id, secret) = rest.split_once('_').ok_or(TokenError::Malformed)?;
    if secret.len() != SECRET_LEN || !is_hex(secret) {
        return Err(TokenError::Malformed);
    }
    Ok((KeyId::parse(id)?, secret))
}

/// Whether `secret` hashes to `stored`, compared in constant time.
pub fn matches(secret: &str, stored: &[u8; 32]) -> bool {
    hash(secret).ct_eq(stored).into()
}
