//! HPKE (RFC 9180) base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
//! AES-256-GCM: content sealed by the relay to a mailbox operator's public key.
//!
//! Why HPKE: a standard, analysed construction (fresh ephemeral key per
//! message, so each delivery gets its own key) instead of a home-made
//! ECDH+AEAD. `info` binds the context (e.g. protocol version / recipient
//! operator), `aad` binds metadata that travels in clear next to the box.

use crate::{CryptoError, b64_decode_array, b64_encode, digest};
use hpke::{Deserializable as _, Kem as _, OpModeR, OpModeS, Serializable as _};
use rand_core::OsRng;
use zeroize::Zeroizing;

type Kem = hpke::kem::X25519HkdfSha256;
type Kdf = hpke::kdf::HkdfSha256;
type Aead = hpke::aead::AesGcm256;

/// X25519 private key. Kept as raw bytes in a zeroizing buffer; the hpke key
/// object (itself zeroize-on-drop) is built only for the duration of a call.
pub struct SealingPrivateKey(Zeroizing<[u8; 32]>);

impl SealingPrivateKey {
    pub fn generate() -> Self {
        Self(Zeroizing::new(digest::random_bytes::<32>()))
    }

    /// Every 32-byte string is a valid X25519 secret (it is clamped on use);
    /// the `Result` leaves room for other KEMs.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, CryptoError> {
        Ok(Self(Zeroizing::new(*bytes)))
    }

    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        self.0.clone()
    }

    pub fn public_key(&self) -> SealingPublicKey {
        match self.hpke_key() {
            Ok(sk) => {
                let mut out = [0u8; 32];
                out.copy_from_slice(&Kem::sk_to_pk(&sk).to_bytes());
                SealingPublicKey(out)
            }
            // Unreachable for X25519 (any 32 bytes parse); an all-zero key
            // would make every seal fail rather than panic.
            Err(_) => SealingPublicKey([0u8; 32]),
        }
    }

    fn hpke_key(&self) -> Result<<Kem as hpke::Kem>::PrivateKey, CryptoError> {
        <Kem as hpke::Kem>::PrivateKey::from_bytes(self.0.as_slice())
            .map_err(|_| CryptoError::InvalidKey)
    }
}

impl std::fmt::Debug for SealingPrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingPrivateKey(<redacted>)")
    }
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SealingPublicKey([u8; 32]);

impl SealingPublicKey {
    /// Checks the length only; small-order points are caught when sealing
    /// (hpke rejects an all-zero shared secret).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        <[u8; 32]>::try_from(bytes)
            .map(Self)
            .map_err(|_| CryptoError::InvalidKey)
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    pub fn to_base64(&self) -> String {
        b64_encode(&self.0)
    }

    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        b64_decode_array::<32>(text).map(Self)
    }
}

/// HPKE output: the encapsulated ephemeral public key (32 bytes) and the AEAD
/// ciphertext with its 16-byte tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedBox {
    pub encapsulated_key: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

pub fn seal(
    to: &SealingPublicKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<SealedBox, CryptoError> {
    let pk =
        <Kem as hpke::Kem>::PublicKey::from_bytes(&to.0).map_err(|_| CryptoError::InvalidKey)?;
    let (enc, ciphertext) = hpke::single_shot_seal::<Aead, Kdf, Kem, _>(
        &OpModeS::Base,
        &pk,
        info,
        plaintext,
        aad,
        &mut OsRng,
    )
    .map_err(|_| CryptoError::Encrypt)?;
    Ok(SealedBox {
        encapsulated_key: enc.to_bytes().to_vec(),
        ciphertext,
    })
}

/// Fails with `Decrypt` for a wrong key, or any change to info, aad or the box.
pub fn open(
    key: &SealingPrivateKey,
    info: &[u8],
    aad: &[u8],
    sealed: &SealedBox,
) -> Result<Vec<u8>, CryptoError> {
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&sealed.encapsulated_key)
        .map_err(|_| CryptoError::Malformed("encapsulated key"))?;
    let sk = key.hpke_key()?;
    hpke::single_shot_open::<Aead, Kdf, Kem>(
        &OpModeR::Base,
        &sk,
        &enc,
        info,
        &sealed.ciphertext,
        aad,
    )
    .map_err(|_| CryptoError::Decrypt)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const INFO: &[u8] = b"kuvert/delivery/v1";

    #[test]
    fn round_trip_and_failures() {
        let sk = SealingPrivateKey::generate();
        let pk = sk.public_key();
        let sealed = seal(&pk, INFO, b"aad", b"secret letter").unwrap();
        assert_eq!(sealed.encapsulated_key.len(), 32);
        assert_eq!(open(&sk, INFO, b"aad", &sealed).unwrap(), b"secret letter");

        let other = SealingPrivateKey::generate();
        assert!(matches!(
            open(&other, INFO, b"aad", &sealed),
            Err(CryptoError::Decrypt)
        ));
        assert!(open(&sk, INFO, b"aae", &sealed).is_err(), "changed aad");
        assert!(
            open(&sk, b"kuvert/delivery/v2", b"aad", &sealed).is_err(),
            "changed info"
        );
        let mut flipped = sealed.clone();
        flipped.ciphertext[0] ^= 1;
        assert!(
            open(&sk, INFO, b"aad", &flipped).is_err(),
            "flipped ciphertext"
        );
        let mut bad_enc = sealed.clone();
        bad_enc.encapsulated_key.pop();
        assert!(open(&sk, INFO, b"aad", &bad_enc).is_err());
    }

    #[test]
    fn keys_round_trip() {
        let sk = SealingPrivateKey::generate();
        let sk2 = SealingPrivateKey::from_bytes(&sk.to_bytes()).unwrap();
        assert_eq!(sk.public_key(), sk2.public_key());
        let pk = sk.public_key();
        assert_eq!(SealingPublicKey::from_base64(&pk.to_base64()).unwrap(), pk);
        assert_eq!(SealingPublicKey::from_bytes(&pk.to_bytes()).unwrap(), pk);
        assert!(SealingPublicKey::from_bytes(&[1u8; 31]).is_err());
        // Low-order public key: sealing must fail, not produce a weak box.
        assert!(seal(&SealingPublicKey([0u8; 32]), INFO, b"", b"x").is_err());
    }

    #[test]
    fn debug_hides_secret() {
        let sk = SealingPrivateKey::from_bytes(&[0xcd; 32]).unwrap();
        let dbg = format!("{sk:?}");
        assert!(!dbg.contains(&digest::to_hex(&[0xcd; 32])));
        assert!(!dbg.contains(&b64_encode(&[0xcd; 32])));
        assert!(!dbg.to_lowercase().contains("cdcd"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn prop_seal_open(seed in any::<[u8; 32]>(), aad in any::<Vec<u8>>(), msg in any::<Vec<u8>>()) {
            let sk = SealingPrivateKey::from_bytes(&seed).unwrap();
            let sealed = seal(&sk.public_key(), INFO, &aad, &msg).unwrap();
            prop_assert_eq!(open(&sk, INFO, &aad, &sealed).unwrap(), msg);
        }
    }
}
