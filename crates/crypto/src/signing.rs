//! Ed25519 signatures with domain separation.
//!
//! What is signed is `domain || 0x00 || message`. Why: the same key signs
//! several kinds of objects (receipts, tokens, ...). Binding the signature to a
//! domain means a signature made for one purpose can never be replayed as a
//! valid signature for another, even if the byte strings happen to coincide.
//! The 0x00 separator keeps `("ab", "c")` and `("a", "bc")` apart; domains are
//! ASCII labels and must not contain 0x00.

use crate::{CryptoError, b64_decode_array, b64_encode, digest};
use rand_core::OsRng;
use zeroize::Zeroizing;

fn framed(domain: &[u8], message: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(domain.len() + 1 + message.len());
    m.extend_from_slice(domain);
    m.push(0);
    m.extend_from_slice(message);
    m
}

/// Ed25519 signing key. Zeroized on drop (ed25519-dalek `zeroize` feature);
/// `Debug` prints only the public key id.
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    pub fn generate() -> Self {
        Self(ed25519_dalek::SigningKey::generate(&mut OsRng))
    }

    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(bytes))
    }

    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    pub fn sign(&self, domain: &[u8], message: &[u8]) -> Signature {
        use ed25519_dalek::Signer as _;
        Signature(self.0.sign(&framed(domain, message)))
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.public_key().key_id())
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// Rejects bytes that are not a curve point, weak (small-order) keys —
    /// such a key could "verify" signatures nobody made with a private key —
    /// and keys that are not canonically encoded or have a small-order
    /// component: on such keys batch and strict verification can disagree
    /// (see [`prime_order_point`]). A key from `SigningKey` never has one.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, CryptoError> {
        let key =
            ed25519_dalek::VerifyingKey::from_bytes(bytes).map_err(|_| CryptoError::InvalidKey)?;
        if key.is_weak() || !prime_order_point(bytes) {
            return Err(CryptoError::InvalidKey);
        }
        Ok(Self(key))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    pub fn to_base64(&self) -> String {
        b64_encode(self.as_bytes())
    }

    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        Self::from_bytes(&b64_decode_array::<32>(text)?)
    }

    /// `"ed25519:"` + first 16 hex chars of SHA-256(public key bytes): short,
    /// stable name for logs and key rotation, never confused with the key itself.
    pub fn key_id(&self) -> String {
        let mut hex = digest::sha256_hex(self.as_bytes());
        hex.truncate(16);
        format!("ed25519:{hex}")
    }

    /// Uses `verify_strict`: plain Ed25519 verification accepts malleable
    /// edge cases (small-order keys/R points), which would let one message have
    /// several valid signatures. Receipts are evidence, so we want exactly one.
    pub fn verify(
        &self,
        domain: &[u8],
        message: &[u8],
        sig: &Signature,
    ) -> Result<(), CryptoError> {
        self.0
            .verify_strict(&framed(domain, message), &sig.0)
            .map_err(|_| CryptoError::InvalidSignature)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Signature(ed25519_dalek::Signature);

impl Signature {
    pub fn to_base64(&self) -> String {
        b64_encode(&self.to_bytes())
    }

    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        Ok(Self::from_bytes(&b64_decode_array::<64>(text)?))
    }

    pub fn from_bytes(bytes: &[u8; 64]) -> Self {
        Self(ed25519_dalek::Signature::from_bytes(bytes))
    }

    pub fn to_bytes(&self) -> [u8; 64] {
        self.0.to_bytes()
    }
}

/// Whether 32 bytes are the canonical encoding of a curve point in the
/// prime-order subgroup, other than the identity (no small-order component).
///
/// Why: `ed25519_dalek::verify_batch` checks a random combination of the
/// cofactorless equations, so a small-order component in a key cancels out
/// whenever the random factor is a multiple of its order — for an order-2
/// component, half the time — while `verify_strict` refuses the same
/// signatures: one verifier would accept what the next refuses. Keys are
/// parsed once per request, so the check (a scalar multiplication, ~65 µs)
/// is cheap there. Signatures are no longer batch-checked at all (see
/// [`verify_many`]); refusing such keys still keeps them out of the
/// register, where any verifier would meet them.
fn prime_order_point(bytes: &[u8; 32]) -> bool {
    let compressed = curve25519_dalek::edwards::CompressedEdwardsY(*bytes);
    compressed.decompress().is_some_and(|point| {
        point.compress() == compressed && !point.is_small_order() && point.is_torsion_free()
    })
}

/// Public keys parsed from base64, each once: parsing decompresses a curve
/// point (~10 µs), and a request of 1000 deliveries usually has one sender
/// key. A key that does not parse is remembered as such.
#[derive(Default)]
pub struct ParsedKeys(std::collections::HashMap<String, Option<PublicKey>>);

impl ParsedKeys {
    pub fn get(&mut self, base64: &str) -> Option<PublicKey> {
        if let Some(key) = self.0.get(base64) {
            return *key;
        }
        let key = PublicKey::from_base64(base64).ok();
        self.0.insert(base64.to_owned(), key);
        key
    }
}

/// Items each rayon task checks: enough to amortise the task, few enough
/// to spread a request over every core.
const VERIFY_CHUNK: usize = 16;

/// Verifies many `(key, domain, message, signature)`, one result per item,
/// in order, spread over every core (rayon).
///
/// Each item gets the same check as [`PublicKey::verify`] (RFC 8032's
/// cofactorless equation, `verify_strict`): one rule for intake, the
/// mailbox, receipts and any outside verifier (OpenSSL's command line
/// applies the same equation). Batch verification (a random linear
/// combination of the equations, about half the cost) was used here until
/// issue 16: it passes a signature whose R has a small-order component
/// whenever its random factor cancels the component (half the time for
/// order 2), which a strict check later refuses: a sender could make a
/// delivery the relay accepts and the mailbox refuses, an operator a
/// receipt the relay records and an auditor rejects. Ruling such R out
/// before batching costs a scalar multiplication per signature, more than
/// the batch saves. Decision 0009.
pub fn verify_many(
    items: &[(&PublicKey, &[u8], &[u8], &Signature)],
) -> Vec<Result<(), CryptoError>> {
    use rayon::prelude::*;
    items
        .par_iter()
        .with_min_len(VERIFY_CHUNK)
        .map(|(key, domain, message, signature)| key.verify(domain, message, signature))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const D: &[u8] = b"kuvert/receipt/v1";

    #[test]
    fn round_trip_and_failures() {
        let k = SigningKey::generate();
        let pk = k.public_key();
        let sig = k.sign(D, b"hello");
        pk.verify(D, b"hello", &sig).unwrap();
        assert!(pk.verify(D, b"hellp", &sig).is_err(), "changed message");
        assert!(
            pk.verify(b"kuvert/other/v1", b"hello", &sig).is_err(),
            "changed domain"
        );
        assert!(
            SigningKey::generate()
                .public_key()
                .verify(D, b"hello", &sig)
                .is_err(),
            "other key"
        );
        let mut bad = sig.to_bytes();
        bad[5] ^= 1;
        assert!(
            pk.verify(D, b"hello", &Signature::from_bytes(&bad))
                .is_err(),
            "tampered"
        );
        // Separator prevents shifting bytes between domain and message.
        let s2 = k.sign(b"ab", b"c");
        assert!(pk.verify(b"a", b"bc", &s2).is_err());
    }

    #[test]
    fn encodings_round_trip() {
        let k = SigningKey::generate();
        let k2 = SigningKey::from_bytes(&k.to_bytes());
        assert_eq!(k.public_key(), k2.public_key());
        let pk = k.public_key();
        assert_eq!(PublicKey::from_base64(&pk.to_base64()).unwrap(), pk);
        assert_eq!(PublicKey::from_bytes(pk.as_bytes()).unwrap(), pk);
        let sig = k.sign(D, b"m");
        assert_eq!(Signature::from_base64(&sig.to_base64()).unwrap(), sig);
        assert!(
            pk.to_base64().ends_with('='),
            "standard base64 with padding"
        );
        assert!(PublicKey::from_base64("not base64!").is_err());
        assert!(PublicKey::from_base64("AAAA").is_err());
        // Identity point is a weak key.
        let mut ident = [0u8; 32];
        ident[0] = 1;
        assert!(PublicKey::from_bytes(&ident).is_err());
    }

    #[test]
    fn key_id_format_is_stable() {
        let k = SigningKey::from_bytes(&[1u8; 32]);
        let id = k.public_key().key_id();
        assert!(id.starts_with("ed25519:"));
        assert_eq!(id.len(), 8 + 16);
        let hex = &digest::sha256_hex(k.public_key().as_bytes())[..16];
        assert_eq!(id, format!("ed25519:{hex}"));
        assert_eq!(id, SigningKey::from_bytes(&[1u8; 32]).public_key().key_id());
    }

    #[test]
    fn debug_hides_secret() {
        let k = SigningKey::from_bytes(&[0xab; 32]);
        let dbg = format!("{k:?}");
        assert_eq!(dbg, format!("SigningKey({})", k.public_key().key_id()));
        assert!(!dbg.contains(&digest::to_hex(&[0xab; 32])));
        assert!(!dbg.contains(&b64_encode(&[0xab; 32])));
        assert!(!dbg.to_lowercase().contains("abab"));
    }

    #[test]
    fn verify_many_reports_per_item() {
        let keys: Vec<SigningKey> = (0..5).map(|_| SigningKey::generate()).collect();
        let pks: Vec<PublicKey> = keys.iter().map(SigningKey::public_key).collect();
        let msgs: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 10]).collect();
        let mut sigs: Vec<Signature> = keys.iter().zip(&msgs).map(|(k, m)| k.sign(D, m)).collect();
        let items = |sigs: &[Signature]| -> Vec<Result<(), CryptoError>> {
            let v: Vec<_> = (0..5)
                .map(|i| (&pks[i], D, msgs[i].as_slice(), &sigs[i]))
                .collect();
            verify_many(&v)
        };
        assert!(items(&sigs).iter().all(Result::is_ok));
        sigs[2] = keys[2].sign(D, b"something else");
        let res = items(&sigs);
        for (i, r) in res.iter().enumerate() {
            assert_eq!(r.is_ok(), i != 2, "item {i}");
        }
        assert!(verify_many(&[]).is_empty());
    }

    /// Across several parallel chunks, every result stays at its item.
    #[test]
    fn verify_many_keeps_order_across_chunks() {
        let key = SigningKey::generate();
        let pk = key.public_key();
        let n = 3 * VERIFY_CHUNK + 5;
        let msgs: Vec<Vec<u8>> = (0..n).map(|i| i.to_le_bytes().to_vec()).collect();
        let bad = [
            0,
            VERIFY_CHUNK - 1,
            VERIFY_CHUNK,
            2 * VERIFY_CHUNK + 7,
            n - 1,
        ];
        let sigs: Vec<Signature> = (0..n)
            .map(|i| {
                if bad.contains(&i) {
                    key.sign(D, b"not this message")
                } else {
                    key.sign(D, &msgs[i])
                }
            })
            .collect();
        let items: Vec<_> = (0..n)
            .map(|i| (&pk, D, msgs[i].as_slice(), &sigs[i]))
            .collect();
        let results = verify_many(&items);
        assert_eq!(results.len(), n);
        for (i, r) in results.iter().enumerate() {
            assert_eq!(r.is_ok(), !bad.contains(&i), "item {i}");
        }
    }

    /// The point (0, -1) of order 2.
    fn order_two_point() -> curve25519_dalek::EdwardsPoint {
        let mut bytes = [0xffu8; 32];
        bytes[0] = 0xec;
        bytes[31] = 0x7f;
        let t = curve25519_dalek::edwards::CompressedEdwardsY(bytes)
            .decompress()
            .unwrap();
        use curve25519_dalek::traits::IsIdentity as _;
        assert!(t.is_small_order() && !t.is_identity());
        assert!((t + t).is_identity());
        t
    }

    /// A key with a small-order component is refused when parsed (a key a
    /// sender registers, or an operator's receipt key).
    #[test]
    fn a_key_with_a_small_order_component_is_refused() {
        let key = SigningKey::generate().public_key();
        let mixed = (key.0.to_edwards() + order_two_point()).compress();
        assert!(PublicKey::from_bytes(mixed.as_bytes()).is_err());
        assert!(PublicKey::from_bytes(key.as_bytes()).is_ok());
    }

    /// A signature made with the private key but with an order-2 point
    /// added to its R: `R' = [r]B + T`, `S = r + H(R' || A || M)·a`. The
    /// cofactorless equation (RFC 8032, `verify_strict`, OpenSSL) refuses
    /// it; a random-linear-combination batch check passes it whenever its
    /// random factor is even.
    fn signature_with_torsion_in_r(seed: &[u8; 32], domain: &[u8], message: &[u8]) -> Signature {
        use curve25519_dalek::{EdwardsPoint, Scalar};
        use sha2::{Digest as _, Sha512};
        let expanded = Sha512::digest(seed);
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&expanded[..32]);
        secret[0] &= 248;
        secret[31] &= 127;
        secret[31] |= 64;
        let a = Scalar::from_bytes_mod_order(secret);
        let public = SigningKey::from_bytes(seed).public_key();
        let r = Scalar::from_bytes_mod_order_wide(&crate::digest::random_bytes::<64>());
        let big_r: EdwardsPoint = EdwardsPoint::mul_base(&r) + order_two_point();
        let big_r = big_r.compress();
        let mut h = Sha512::new();
        h.update(big_r.as_bytes());
        h.update(public.as_bytes());
        h.update(framed(domain, message));
        let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
        let s = r + k * a;
        let mut bytes = [0u8; 64];
        bytes[..32].copy_from_slice(big_r.as_bytes());
        bytes[32..].copy_from_slice(s.as_bytes());
        Signature::from_bytes(&bytes)
    }

    /// One rule everywhere: a signature whose R has a small-order
    /// component is refused by the batch path as by the single check,
    /// every time, wherever it sits among genuine ones (issue 16: before,
    /// it passed about half the time and a later strict check refused it).
    #[test]
    fn a_signature_with_a_small_order_r_is_refused_by_every_path() {
        let seed = [7u8; 32];
        let key = SigningKey::from_bytes(&seed);
        let public = key.public_key();
        let crafted = signature_with_torsion_in_r(&seed, D, b"crafted");
        assert!(
            public.verify(D, b"crafted", &crafted).is_err(),
            "strict check"
        );
        let messages: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 8]).collect();
        let genuine: Vec<Signature> = messages.iter().map(|m| key.sign(D, m)).collect();
        for trial in 0..32 {
            let at = trial % (messages.len() + 1);
            let mut items: Vec<(&PublicKey, &[u8], &[u8], &Signature)> = messages
                .iter()
                .zip(&genuine)
                .map(|(m, s)| (&public, D, m.as_slice(), s))
                .collect();
            items.insert(at, (&public, D, b"crafted", &crafted));
            let results = verify_many(&items);
            for (i, result) in results.iter().enumerate() {
                assert_eq!(result.is_ok(), i != at, "trial {trial}, item {i}");
            }
        }
    }

    proptest! {
        #[test]
        fn prop_sign_verify(seed in any::<[u8; 32]>(), domain in "[a-z/]{1,20}", msg in any::<Vec<u8>>(), flip in any::<usize>()) {
            let k = SigningKey::from_bytes(&seed);
            let sig = k.sign(domain.as_bytes(), &msg);
            prop_assert!(k.public_key().verify(domain.as_bytes(), &msg, &sig).is_ok());
            if !msg.is_empty() {
                let mut m = msg.clone();
                let i = flip % m.len();
                m[i] ^= 0x80;
                prop_assert!(k.public_key().verify(domain.as_bytes(), &m, &sig).is_err());
            }
        }
    }
}
