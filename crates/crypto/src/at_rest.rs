//! Envelope encryption at rest.
//!
//! Each message gets its own random data key (AES-256-GCM); only the data key
//! is encrypted ("wrapped") under a key derived from the long-lived
//! key-encryption key (KEK). Why: rotating the KEK means rewrapping 60-byte
//! keys instead of re-encrypting all mail, and a deleted message's key can
//! be destroyed on its own.
//!
//! **Wrapping (v2).** Each data key is wrapped under its own wrapping key,
//! HKDF-SHA256 (salt [`WRAP_SALT`], input the KEK, info
//! [`WRAP_INFO`] followed by the caller's *context*), with AES-256-GCM and the
//! context as associated data. The context names what the data key belongs
//! to (a stored message's row, a paper delivery's id): a wrapped key moved to
//! another context does not unwrap. And since every wrapping key wraps one
//! data key, the KEK never meets the random-nonce limit of AES-GCM
//! (about 2³² encryptions under one key) however much mail is stored; the
//! KEK itself only keys HKDF. Decision 0012 says why not AES-KWP or
//! AES-GCM-SIV.

use crate::{CryptoError, digest::random_bytes};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Length of a wrapped data key: `nonce || ciphertext(32) || tag`.
pub const WRAPPED_KEY_LEN: usize = NONCE_LEN + 32 + TAG_LEN;
/// HKDF salt of the per-context wrapping keys: a fixed domain label.
const WRAP_SALT: &[u8] = b"kuvert/data-key-wrap/v2";
/// HKDF salt of the keys of lookup tags ([`KeyEncryptionKey::tag_key`]).
const TAG_SALT: &[u8] = b"kuvert/lookup-tag/v1";
/// HKDF info prefix; the context follows it (a fixed prefix keeps the
/// concatenation unambiguous).
const WRAP_INFO: &[u8] = b"kuvert/data-key-wrap/v2/context:";
/// AAD of the first scheme, which wrapped every data key under the KEK
/// itself and bound it to nothing: only [`KeyEncryptionKey::unwrap_legacy_data_key`]
/// reads it, to upgrade rows written before decision 0012.
const LEGACY_WRAP_AAD: &[u8] = b"kuvert/data-key/v1";

/// AES-256-GCM with a fresh random 96-bit nonce, output `nonce || ct+tag`
/// (also the box format of `sealing`).
pub(crate) fn encrypt_with(
    key: &[u8; 32],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let cipher = Aes256Gcm::new(key.into());
    let nonce = random_bytes::<NONCE_LEN>();
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| CryptoError::Encrypt)?;
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

pub(crate) fn decrypt_with(
    key: &[u8; 32],
    aad: &[u8],
    data: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    if data.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Malformed("ciphertext too short"));
    }
    let (nonce, ct) = data.split_at(NONCE_LEN);
    Aes256Gcm::new(key.into())
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .map_err(|_| CryptoError::Decrypt)
}

/// Long-lived key-encryption key. Zeroized on drop.
pub struct KeyEncryptionKey(Zeroizing<[u8; 32]>);

impl KeyEncryptionKey {
    pub fn generate() -> Self {
        Self(Zeroizing::new(random_bytes()))
    }

    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(Zeroizing::new(*bytes))
    }

    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        self.0.clone()
    }

    /// Fresh data key plus its wrapped form ([`WRAPPED_KEY_LEN`] bytes) to
    /// store next to what it encrypts. `context` must name that one thing
    /// unambiguously (a length-prefixed or JSON encoding, never a bare
    /// concatenation of fields): the wrapped key unwraps under this context
    /// only.
    pub fn new_data_key(&self, context: &[u8]) -> Result<(DataKey, Vec<u8>), CryptoError> {
        let key = DataKey(Zeroizing::new(random_bytes()));
        let wrapped = encrypt_with(&*self.wrapping_key(context)?, context, key.0.as_slice())?;
        Ok((key, wrapped))
    }

    /// The data key wrapped by [`new_data_key`](Self::new_data_key) under
    /// the same `context`; any other context fails with `Decrypt`.
    pub fn unwrap_data_key(&self, context: &[u8], wrapped: &[u8]) -> Result<DataKey, CryptoError> {
        if wrapped.len() != WRAPPED_KEY_LEN {
            return Err(CryptoError::Malformed("wrapped key length"));
        }
        let raw = Zeroizing::new(decrypt_with(
            &*self.wrapping_key(context)?,
            context,
            wrapped,
        )?);
        DataKey::from_slice(&raw)
    }

    /// A data key wrapped by the first scheme (under the KEK itself, bound to
    /// nothing). Only for upgrading rows written before decision 0012: they
    /// are rewrapped with [`new_data_key`](Self::new_data_key) and never
    /// read this way afterwards.
    pub fn unwrap_legacy_data_key(&self, wrapped: &[u8]) -> Result<DataKey, CryptoError> {
        if wrapped.len() != WRAPPED_KEY_LEN {
            return Err(CryptoError::Malformed("wrapped key length"));
        }
        let raw = Zeroizing::new(decrypt_with(&self.0, LEGACY_WRAP_AAD, wrapped)?);
        DataKey::from_slice(&raw)
    }

    /// A key for keyed lookup tags (blind indexes) beside rows this KEK
    /// encrypts, derived with HKDF under its own salt and `label`: the KEK
    /// itself keys nothing but wrapping, and each index has its own key.
    pub fn tag_key(&self, label: &str) -> Result<crate::digest::Pseudonymizer, CryptoError> {
        let mut key = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(Some(TAG_SALT), self.0.as_slice())
            .expand(label.as_bytes(), key.as_mut_slice())
            .map_err(|_| CryptoError::InvalidKey)?;
        Ok(crate::digest::Pseudonymizer::new(*key))
    }

    /// HKDF-SHA256 of the KEK for one context.
    fn wrapping_key(&self, context: &[u8]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        let mut info = Vec::with_capacity(WRAP_INFO.len() + context.len());
        info.extend_from_slice(WRAP_INFO);
        info.extend_from_slice(context);
        let mut key = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(Some(WRAP_SALT), self.0.as_slice())
            .expand(&info, key.as_mut_slice())
            .map_err(|_| CryptoError::InvalidKey)?;
        Ok(key)
    }
}

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyEncryptionKey(<redacted>)")
    }
}

/// Per-message data key. Zeroized on drop.
pub struct DataKey(Zeroizing<[u8; 32]>);

impl DataKey {
    fn from_slice(raw: &[u8]) -> Result<Self, CryptoError> {
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(raw.get(..32).ok_or(CryptoError::Decrypt)?);
        Ok(Self(key))
    }

    /// Random 96-bit nonce prepended: `nonce || ciphertext+tag`. `aad` should
    /// bind the ciphertext to everything its reader relies on, so that rows
    /// (or fields of a row) can't be swapped.
    pub fn encrypt(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        encrypt_with(&self.0, aad, plaintext)
    }

    pub fn decrypt(&self, aad: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        decrypt_with(&self.0, aad, ciphertext)
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};
    use proptest::prelude::*;

    #[test]
    fn data_key_round_trip_and_failures() {
        let kek = KeyEncryptionKey::generate();
        let (dk, wrapped) = kek.new_data_key(b"msg-1").unwrap();
        assert_eq!(wrapped.len(), WRAPPED_KEY_LEN);
        let ct = dk.encrypt(b"msg-1", b"body").unwrap();
        assert_eq!(dk.decrypt(b"msg-1", &ct).unwrap(), b"body");
        assert!(
            matches!(dk.decrypt(b"msg-2", &ct), Err(CryptoError::Decrypt)),
            "wrong aad"
        );
        let mut bad = ct.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(dk.decrypt(b"msg-1", &bad).is_err());
        assert!(dk.decrypt(b"msg-1", &ct[..10]).is_err());

        let dk2 = kek.unwrap_data_key(b"msg-1", &wrapped).unwrap();
        assert_eq!(dk2.decrypt(b"msg-1", &ct).unwrap(), b"body");
        let kek2 = KeyEncryptionKey::from_bytes(&kek.to_bytes());
        assert!(kek2.unwrap_data_key(b"msg-1", &wrapped).is_ok());
        assert!(
            KeyEncryptionKey::generate()
                .unwrap_data_key(b"msg-1", &wrapped)
                .is_err(),
            "other KEK"
        );
        assert!(kek.unwrap_data_key(b"msg-1", &wrapped[1..]).is_err());
        // Nonces are fresh: same plaintext encrypts differently.
        assert_ne!(
            dk.encrypt(b"a", b"x").unwrap(),
            dk.encrypt(b"a", b"x").unwrap()
        );
    }

    /// The attack: a wrapped key copied into another message's row. It
    /// unwraps under its own context only, and a context that is a prefix
    /// or an extension of it is another context.
    #[test]
    fn a_wrapped_key_does_not_unwrap_under_another_context() {
        let kek = KeyEncryptionKey::generate();
        let (_, wrapped_a) = kek.new_data_key(b"[\"message\",\"a\"]").unwrap();
        let (_, wrapped_b) = kek.new_data_key(b"[\"message\",\"b\"]").unwrap();
        for (context, wrapped) in [
            (&b"[\"message\",\"b\"]"[..], &wrapped_a),
            (&b"[\"message\",\"a\"]"[..], &wrapped_b),
            (&b"[\"message\",\"a\""[..], &wrapped_a),
            (&b"[\"message\",\"a\"]x"[..], &wrapped_a),
            (&b""[..], &wrapped_a),
        ] {
            assert!(
                matches!(
                    kek.unwrap_data_key(context, wrapped),
                    Err(CryptoError::Decrypt)
                ),
                "unwrapped under {:?}",
                String::from_utf8_lossy(context)
            );
        }
        assert!(
            kek.unwrap_data_key(b"[\"message\",\"a\"]", &wrapped_a)
                .is_ok()
        );
    }

    /// The wrapping key is HKDF-SHA256 exactly as documented (RFC 5869 done
    /// by hand with HMAC here): stored mail depends on it never changing.
    #[test]
    fn wrapping_key_is_the_documented_hkdf() {
        let kek = KeyEncryptionKey::from_bytes(&[7; 32]);
        let context = b"[\"kuvert-mailbox-row-v2\",\"m\"]";
        let mut extract = <Hmac<Sha256> as KeyInit>::new_from_slice(WRAP_SALT).unwrap();
        extract.update(&[7; 32]);
        let prk = extract.finalize().into_bytes();
        let mut expand = <Hmac<Sha256> as KeyInit>::new_from_slice(&prk).unwrap();
        expand.update(b"kuvert/data-key-wrap/v2/context:");
        expand.update(context);
        expand.update(&[1]);
        let expected = expand.finalize().into_bytes();
        assert_eq!(
            kek.wrapping_key(context).unwrap().as_slice(),
            expected.as_slice()
        );
        assert_ne!(
            kek.wrapping_key(b"other").unwrap().as_slice(),
            expected.as_slice()
        );
    }

    /// Keys of the first scheme unwrap only through the legacy path, and
    /// keys of this one never through it: a row's format marker cannot be
    /// flipped to have a key read under the other scheme.
    #[test]
    fn legacy_and_bound_wraps_do_not_cross() {
        let kek = KeyEncryptionKey::generate();
        let raw = [9u8; 32];
        let legacy = encrypt_with(&kek.0, LEGACY_WRAP_AAD, &raw).unwrap();
        let dk = kek.unwrap_legacy_data_key(&legacy).unwrap();
        assert_eq!(dk.0.as_slice(), &raw);
        assert!(kek.unwrap_data_key(b"any", &legacy).is_err());
        assert!(kek.unwrap_data_key(b"", &legacy).is_err());
        let (_, bound) = kek.new_data_key(b"ctx").unwrap();
        assert!(kek.unwrap_legacy_data_key(&bound).is_err());
    }

    #[test]
    fn debug_hides_secret() {
        let kek = KeyEncryptionKey::from_bytes(&[0xef; 32]);
        let dbg = format!("{kek:?}");
        assert!(!dbg.to_lowercase().contains("efef"));
        assert!(!dbg.contains(&crate::b64_encode(&[0xef; 32])));
        let (dk, _) = kek.new_data_key(b"ctx").unwrap();
        assert_eq!(format!("{dk:?}"), "DataKey(<redacted>)");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn prop_round_trip(context in any::<Vec<u8>>(), aad in any::<Vec<u8>>(), msg in any::<Vec<u8>>()) {
            let kek = KeyEncryptionKey::generate();
            let (dk, wrapped) = kek.new_data_key(&context).unwrap();
            let ct = dk.encrypt(&aad, &msg).unwrap();
            let dk = kek.unwrap_data_key(&context, &wrapped).unwrap();
            prop_assert_eq!(dk.decrypt(&aad, &ct).unwrap(), msg);
        }
    }
}
