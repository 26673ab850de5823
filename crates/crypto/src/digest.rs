//! Hashing, keyed pseudonyms, secret comparison and randomness.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Lowercase hex of SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    to_hex(&sha256(data))
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    s
}

/// Keyed pseudonym (HMAC-SHA256, hex) — used to put a stable, non-reversible
/// reference to an identity number into the audit log.
///
/// Why keyed: a Swedish personal identity number has so little entropy that a
/// plain hash is reversed by enumerating all of them; without the key that is
/// impossible, yet the same person still maps to the same pseudonym.
pub struct Pseudonymizer(Zeroizing<[u8; 32]>);

impl Pseudonymizer {
    pub fn new(key: [u8; 32]) -> Self {
        Self(Zeroizing::new(key))
    }

    pub fn pseudonym(&self, value: &str) -> String {
        // HMAC zero-pads keys shorter than the block size (RFC 2104), so padding
        // ourselves gives the identical MAC through the infallible `KeyInit::new`
        // (no unwrap on `new_from_slice`).
        let mut block = Zeroizing::new([0u8; 64]);
        block[..32].copy_from_slice(self.0.as_slice());
        let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new(block.as_slice().into());
        mac.update(value.as_bytes());
        to_hex(&mac.finalize().into_bytes())
    }
}

/// The id of a symmetric key (a key-encryption or HMAC key, which have no
/// public half): `<algorithm>:` + the first 16 hex digits of
/// HMAC-SHA256(key, "kuvert/key-id"). Logs, token headers and rotation can
/// name the key without revealing anything that helps to guess it.
pub fn secret_key_id(algorithm: &str, key: &[u8; 32]) -> String {
    let mut hex = Pseudonymizer::new(*key).pseudonym("kuvert/key-id");
    hex.truncate(16);
    format!("{algorithm}:{hex}")
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymizer(<redacted>)")
    }
}

/// API secrets are stored as SHA-256. They are random high-entropy tokens (see
/// [`random_token`]), so a fast hash suffices; a slow password KDF would only
/// add latency. Compare with [`constant_time_eq`].
pub fn hash_secret(secret: &str) -> [u8; 32] {
    sha256(secret.as_bytes())
}

/// Constant-time equality (for the contents; lengths are not secret). Prevents
/// timing attacks that learn a stored hash byte by byte.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // black_box keeps the optimiser from turning the fold into an early exit.
    std::hint::black_box(diff) == 0
}

/// Random bytes from the OS CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    OsRng.fill_bytes(&mut out);
    out
}

/// `bytes` random bytes as URL-safe base64 without padding (fits URLs and headers).
pub fn random_token(bytes: usize) -> String {
    let mut buf = Zeroizing::new(vec![0u8; bytes]);
    OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf.as_slice())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn secret_key_id_names_the_key_not_the_secret() {
        let a = secret_key_id("hmac-sha256", &[1u8; 32]);
        assert_eq!(a, secret_key_id("hmac-sha256", &[1u8; 32]));
        assert_ne!(a, secret_key_id("hmac-sha256", &[2u8; 32]));
        assert!(a.starts_with("hmac-sha256:") && a.len() == "hmac-sha256:".len() + 16);
        // Not the start of the key's plain hash (which would help nobody, but
        // the id is derived under its own label).
        assert!(!sha256_hex(&[1u8; 32]).starts_with(&a["hmac-sha256:".len()..]));
    }

    #[test]
    fn sha256_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn pseudonym_matches_plain_hmac_and_is_keyed() {
        let key = [7u8; 32];
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(b"199001011234");
        let expected = to_hex(&mac.finalize().into_bytes());
        let p = Pseudonymizer::new(key);
        assert_eq!(p.pseudonym("199001011234"), expected);
        assert_eq!(p.pseudonym("199001011234"), p.pseudonym("199001011234"));
        assert_ne!(
            Pseudonymizer::new([8u8; 32]).pseudonym("199001011234"),
            expected
        );
        assert!(!format!("{p:?}").contains("0707"));
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert_eq!(hash_secret("x"), sha256(b"x"));
    }

    #[test]
    fn random_values() {
        let a: [u8; 32] = random_bytes();
        let b: [u8; 32] = random_bytes();
        assert_ne!(a, b);
        let t = random_token(32);
        assert_eq!(t.len(), 43);
        assert!(
            t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }
}
