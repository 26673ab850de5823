//! HPKE (RFC 9180) base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256:
//! content sealed by the relay to a mailbox operator's public key.
//!
//! Why HPKE: a standard, analysed construction instead of a home-made
//! ECDH+AEAD. `info` binds the context (protocol version), `aad` binds the
//! metadata that travels in clear next to the box.
//!
//! **One key encapsulation for many boxes** (decision 0006). The X25519 work
//! of an encapsulation (~95 µs to seal, ~75 µs to open) was the largest
//! single cost per delivery, so a [`Sealer`] encapsulates once to an
//! operator and seals every box of a request with it: each box gets its own
//! AES-256-GCM key from HPKE's secret export (RFC 9180 §5.3), with the box's
//! `aad` as the exporter context, and a random nonce. The receiving
//! [`Opener`] decapsulates once per distinct encapsulated key. A box still
//! opens on its own (encapsulated key + aad + ciphertext); boxes that share
//! an encapsulation are bound to their own `aad`, so one cannot be swapped
//! for another. The `aad` must name the box uniquely (kuvert's seal bytes
//! hold the delivery id); the random nonce keeps even a repeated `aad` safe.

use crate::at_rest::{decrypt_with, encrypt_with};
use crate::{CryptoError, b64_decode_array, b64_encode, digest};
use hpke::{Deserializable as _, Kem as _, OpModeR, OpModeS, Serializable as _};
use rand_core::OsRng;
use zeroize::Zeroizing;

type Kem = hpke::kem::X25519HkdfSha256;
type Kdf = hpke::kdf::HkdfSha256;
/// The HPKE context only exports secrets; the boxes are AES-256-GCM under
/// exported keys.
type ExportOnly = hpke::aead::ExportOnlyAead;

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

    /// `"x25519:"` + the first 16 hex digits of SHA-256(public key bytes),
    /// derived like [`crate::signing::PublicKey::key_id`].
    pub fn key_id(&self) -> String {
        let mut hex = crate::digest::sha256_hex(&self.0);
        hex.truncate(16);
        format!("x25519:{hex}")
    }
}

/// HPKE output: the encapsulated ephemeral public key (32 bytes) and the AEAD
/// ciphertext with its 16-byte tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedBox {
    pub encapsulated_key: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// Seals any number of boxes to one public key with one key encapsulation.
pub struct Sealer {
    encapsulated_key: Vec<u8>,
    context: hpke::aead::AeadCtxS<ExportOnly, Kdf, Kem>,
}

impl Sealer {
    pub fn new(to: &SealingPublicKey, info: &[u8]) -> Result<Self, CryptoError> {
        let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(&to.0)
            .map_err(|_| CryptoError::InvalidKey)?;
        let (enc, context) =
            hpke::setup_sender::<ExportOnly, Kdf, Kem, _>(&OpModeS::Base, &pk, info, &mut OsRng)
                .map_err(|_| CryptoError::Encrypt)?;
        Ok(Self {
            encapsulated_key: enc.to_bytes().to_vec(),
            context,
        })
    }

    /// One box; `aad` must name it (see the module documentation).
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<SealedBox, CryptoError> {
        let mut key = Zeroizing::new([0u8; 32]);
        self.context
            .export(aad, key.as_mut_slice())
            .map_err(|_| CryptoError::Encrypt)?;
        let ciphertext = encrypt_with(&key, aad, plaintext)?;
        Ok(SealedBox {
            encapsulated_key: self.encapsulated_key.clone(),
            ciphertext,
        })
    }
}

/// Opens boxes sealed under one encapsulated key, decapsulating once.
pub struct Opener {
    encapsulated_key: Vec<u8>,
    context: hpke::aead::AeadCtxR<ExportOnly, Kdf, Kem>,
}

impl Opener {
    pub fn new(
        key: &SealingPrivateKey,
        info: &[u8],
        encapsulated_key: &[u8],
    ) -> Result<Self, CryptoError> {
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(encapsulated_key)
            .map_err(|_| CryptoError::Malformed("encapsulated key"))?;
        let sk = key.hpke_key()?;
        let context = hpke::setup_receiver::<ExportOnly, Kdf, Kem>(&OpModeR::Base, &sk, &enc, info)
            .map_err(|_| CryptoError::Decrypt)?;
        Ok(Self {
            encapsulated_key: encapsulated_key.to_vec(),
            context,
        })
    }

    /// Fails with `Decrypt` for a box under another encapsulated key, a
    /// changed aad or ciphertext.
    pub fn open(&self, aad: &[u8], sealed: &SealedBox) -> Result<Vec<u8>, CryptoError> {
        if sealed.encapsulated_key != self.encapsulated_key {
            return Err(CryptoError::Decrypt);
        }
        let mut key = Zeroizing::new([0u8; 32]);
        self.context
            .export(aad, key.as_mut_slice())
            .map_err(|_| CryptoError::Decrypt)?;
        decrypt_with(&key, aad, &sealed.ciphertext)
    }
}

/// One box with an encapsulation of its own (a [`Sealer`] of one).
pub fn seal(
    to: &SealingPublicKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<SealedBox, CryptoError> {
    Sealer::new(to, info)?.seal(aad, plaintext)
}

/// Opens one box; fails with `Decrypt` for a wrong key, or any change to
/// info, aad or the box.
pub fn open(
    key: &SealingPrivateKey,
    info: &[u8],
    aad: &[u8],
    sealed: &SealedBox,
) -> Result<Vec<u8>, CryptoError> {
    Opener::new(key, info, &sealed.encapsulated_key)?.open(aad, sealed)
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
    fn one_encapsulation_many_boxes() {
        let sk = SealingPrivateKey::generate();
        let sealer = Sealer::new(&sk.public_key(), INFO).unwrap();
        let a = sealer.seal(b"delivery-a", b"letter a").unwrap();
        let b = sealer.seal(b"delivery-b", b"letter b").unwrap();
        assert_eq!(a.encapsulated_key, b.encapsulated_key);
        // Each opens on its own, and with one opener.
        assert_eq!(open(&sk, INFO, b"delivery-b", &b).unwrap(), b"letter b");
        let opener = Opener::new(&sk, INFO, &a.encapsulated_key).unwrap();
        assert_eq!(opener.open(b"delivery-a", &a).unwrap(), b"letter a");
        assert_eq!(opener.open(b"delivery-b", &b).unwrap(), b"letter b");
        // A box cannot pass for its sibling: its key is bound to its aad.
        let swapped = SealedBox {
            encapsulated_key: a.encapsulated_key.clone(),
            ciphertext: b.ciphertext.clone(),
        };
        assert!(matches!(
            opener.open(b"delivery-a", &swapped),
            Err(CryptoError::Decrypt)
        ));
        // Each box has a key of its own: a box made with the right aad but
        // under the key exported for another box does not open.
        let mut other_key = Zeroizing::new([0u8; 32]);
        sealer
            .context
            .export(b"delivery-b", other_key.as_mut_slice())
            .unwrap();
        let ciphertext = encrypt_with(&other_key, b"delivery-a", b"letter a").unwrap();
        let under_sibling_key = SealedBox {
            encapsulated_key: a.encapsulated_key.clone(),
            ciphertext,
        };
        assert!(matches!(
            opener.open(b"delivery-a", &under_sibling_key),
            Err(CryptoError::Decrypt)
        ));
        // The same aad twice still gives two different boxes (random nonce).
        let again = sealer.seal(b"delivery-a", b"letter a").unwrap();
        assert_ne!(again.ciphertext, a.ciphertext);
        assert_eq!(opener.open(b"delivery-a", &again).unwrap(), b"letter a");
        // A box of another encapsulation is refused by this opener.
        let other = seal(&sk.public_key(), INFO, b"delivery-a", b"letter a").unwrap();
        assert!(opener.open(b"delivery-a", &other).is_err());
        // Truncated ciphertext: a clear error, no panic.
        let short = SealedBox {
            encapsulated_key: a.encapsulated_key.clone(),
            ciphertext: vec![0; 20],
        };
        assert!(matches!(
            opener.open(b"delivery-a", &short),
            Err(CryptoError::Malformed(_))
        ));
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
