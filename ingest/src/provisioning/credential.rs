//! Device secrets: random tokens stored as their SHA-256, passwords stored as argon2id hashes,
//! both compared in constant time. Nothing here keeps a secret; only hashes go to the
//! provisioning file.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Bytes of randomness in a generated token (256 bits), shown as 64 hex digits.
const TOKEN_BYTES: usize = 32;

/// Bytes of random salt in a password hash (128 bits, argon2's recommendation).
const SALT_BYTES: usize = 16;

/// A new random token: what the device presents as its MQTT password (shown once).
pub fn generate_token() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The SHA-256 of `secret`, as lowercase hex (what is stored for a token, and a certificate's
/// fingerprint).
pub fn sha256_hex(secret: &[u8]) -> String {
    hex::encode(Sha256::digest(secret))
}

/// Whether `secret` hashes to `stored` (lowercase hex), in constant time.
pub fn token_matches(secret: &[u8], stored: &str) -> bool {
    let Ok(stored) = hex::decode(stored) else {
        return false;
    };
    Sha256::digest(secret).as_slice().ct_eq(&stored).into()
}

/// Whether two fingerprints (lowercase hex) are equal, in constant time.
pub fn fingerprint_matches(presented: &str, stored: &str) -> bool {
    presented.len() == stored.len() && bool::from(presented.as_bytes().ct_eq(stored.as_bytes()))
}

/// An argon2id hash of `password` with a fresh salt, as a PHC string (`$argon2id$v=19$...`).
pub fn hash_password(password: &[u8]) -> Result<String, String> {
    use argon2::password_hash::{PasswordHasher as _, SaltString};
    use rand::RngCore as _;
    let mut bytes = [0u8; SALT_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let salt = SaltString::encode_b64(&bytes).map_err(|e| e.to_string())?;
    argon2::Argon2::default()
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches the argon2id PHC string `stored` (constant time inside argon2).
/// Slow on purpose (tens of milliseconds): call it off the async workers.
pub fn password_matches(password: &[u8], stored: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier as _};
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    argon2::Argon2::default()
        .verify_password(password, &parsed)
        .is_ok()
}

/// Whether `stored` is an argon2id PHC string.
pub fn is_argon2id(stored: &str) -> bool {
    stored.starts_with("$argon2id$") && argon2::password_hash::PasswordHash::new(stored).is_ok()
}

/// Whether `text` is 64 lowercase hex digits (a SHA-256).
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_their_hash_only() {
        let token = generate_token();
        assert_eq!(token.len(), 64);
        let stored = sha256_hex(token.as_bytes());
        assert!(is_sha256_hex(&stored));
        assert!(token_matches(token.as_bytes(), &stored));
        assert!(!token_matches(b"wrong", &stored));
        assert!(!token_matches(token.as_bytes(), "not hex"));
        assert_ne!(generate_token(), token);
    }

    #[test]
    fn passwords_are_argon2id_and_verify() {
        let stored = hash_password(b"hunter2").unwrap();
        assert!(is_argon2id(&stored), "{stored}");
        assert!(!stored.contains("hunter2"));
        assert!(password_matches(b"hunter2", &stored));
        assert!(!password_matches(b"hunter3", &stored));
        assert!(!password_matches(b"hunter2", "$argon2id$garbage"));
    }
}
