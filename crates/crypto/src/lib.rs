//! Cryptographic building blocks for kuvert.
//!
//! Everything security-relevant lives here so the rest of the tree never touches
//! raw primitives: Ed25519 signatures with domain separation ([`signing`]), HPKE
//! sealing from relay to mailbox operator ([`sealing`]), envelope encryption at
//! rest ([`at_rest`]), key files on disk ([`keyfile`]) and hashing / pseudonyms /
//! randomness ([`digest`]).

pub mod at_rest;
pub mod digest;
mod error;
pub mod jws;
pub mod keyfile;
pub mod sealing;
pub mod signing;

pub use error::CryptoError;

use base64::Engine as _;

/// Standard base64 with padding: the one text encoding for keys and signatures.
pub(crate) fn b64_encode(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes standard base64 into exactly `N` bytes.
pub(crate) fn b64_decode_array<const N: usize>(text: &str) -> Result<[u8; N], CryptoError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| CryptoError::Malformed("invalid base64"))?;
    let bytes = zeroize::Zeroizing::new(bytes);
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| CryptoError::Malformed("wrong length"))
}
