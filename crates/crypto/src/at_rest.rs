//! Envelope encryption at rest.
//!
//! Each message gets its own random data key (AES-256-GCM); only the data key
//! is encrypted ("wrapped") with the long-lived key-encryption key (KEK). Why:
//! rotating the KEK means rewrapping 60-byte keys instead of re-encrypting all
//! mail, a deleted message's key can be destroyed on its own, and no single
//! AES-GCM key encrypts enough messages to approach random-nonce limits.

use crate::{CryptoError, digest::random_bytes};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// AAD for wrapping, so a wrapped key can't be confused with a message
/// ciphertext even if someone used the KEK for something else.
const WRAP_AAD: &[u8] = b"kuvert/data-key/v1";

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

    /// Fresh data key plus its wrapped form (`nonce || ciphertext+tag`, 60
    /// bytes) to store next to the message.
    pub fn new_data_key(&self) -> Result<(DataKey, Vec<u8>), CryptoError> {
        let key = DataKey(Zeroizing::new(random_bytes()));
        let wrapped = encrypt_with(&self.0, WRAP_AAD, key.0.as_slice())?;
        Ok((key, wrapped))
    }

    pub fn unwrap_data_key(&self, wrapped: &[u8]) -> Result<DataKey, CryptoError> {
        if wrapped.len() != NONCE_LEN + 32 + TAG_LEN {
            return Err(CryptoError::Malformed("wrapped key length"));
        }
        let raw = Zeroizing::new(decrypt_with(&self.0, WRAP_AAD, wrapped)?);
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(raw.get(..32).ok_or(CryptoError::Decrypt)?);
        Ok(DataKey(key))
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
    /// Random 96-bit nonce prepended: `nonce || ciphertext+tag`. `aad` should
    /// bind the ciphertext to its message id so rows can't be swapped.
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
    use proptest::prelude::*;

    #[test]
    fn data_key_round_trip_and_failures() {
        let kek = KeyEncryptionKey::generate();
        let (dk, wrapped) = kek.new_data_key().unwrap();
        assert_eq!(wrapped.len(), 60);
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

        let dk2 = kek.unwrap_data_key(&wrapped).unwrap();
        assert_eq!(dk2.decrypt(b"msg-1", &ct).unwrap(), b"body");
        let kek2 = KeyEncryptionKey::from_bytes(&kek.to_bytes());
        assert!(kek2.unwrap_data_key(&wrapped).is_ok());
        assert!(
            KeyEncryptionKey::generate()
                .unwrap_data_key(&wrapped)
                .is_err(),
            "other KEK"
        );
        assert!(kek.unwrap_data_key(&wrapped[1..]).is_err());
        // Nonces are fresh: same plaintext encrypts differently.
        assert_ne!(
            dk.encrypt(b"a", b"x").unwrap(),
            dk.encrypt(b"a", b"x").unwrap()
        );
    }

    #[test]
    fn debug_hides_secret() {
        let kek = KeyEncryptionKey::from_bytes(&[0xef; 32]);
        let dbg = format!("{kek:?}");
        assert!(!dbg.to_lowercase().contains("efef"));
        assert!(!dbg.contains(&crate::b64_encode(&[0xef; 32])));
        let (dk, _) = kek.new_data_key().unwrap();
        assert_eq!(format!("{dk:?}"), "DataKey(<redacted>)");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn prop_round_trip(aad in any::<Vec<u8>>(), msg in any::<Vec<u8>>()) {
            let kek = KeyEncryptionKey::generate();
            let (dk, wrapped) = kek.new_data_key().unwrap();
            let ct = dk.encrypt(&aad, &msg).unwrap();
            let dk = kek.unwrap_data_key(&wrapped).unwrap();
            prop_assert_eq!(dk.decrypt(&aad, &ct).unwrap(), msg);
        }
    }
}
