//! The relay → mailbox-operator delivery contract (`POST /mailbox/v1/deliveries`).
//!
//! A relay sends [`SealedDelivery`]s. Each carries, in the clear, only what
//! routing needs (ids, times, a content hash) and the relay's **seal**: an
//! Ed25519 signature over [`SealedDelivery::seal_bytes`], like the `Seal`
//! {ReceivedTime, SignaturesOK} of Mina meddelanden. The content — the
//! sender's [`SignedDelivery`] and the public key the relay verified it with —
//! is HPKE-encrypted to the operator's sealing key, with the seal bytes as
//! associated data, so nothing between relay and mailbox can read or re-route it.
//!
//! The operator answers each with a [`Receipt`] or a [`Rejection`], both
//! signed by its receipt key: nothing on the path can make a delivery
//! succeed or fail for good (decision 0011).

use crate::certificate::SenderKeyCertificate;
use base64::Engine as _;
use kuvert_crypto::CryptoError;
use kuvert_crypto::signing::{PublicKey, Signature, SigningKey};
use kuvert_domain::delivery::SignedDelivery;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Domain of the relay's seal signature (v2: the seal names the digest of
/// what the sender signed).
pub const SEAL_DOMAIN: &[u8] = b"kuvert/v2/seal";
/// Domain of the operator's receipt signature (v2: bound to what the sender
/// signed, see [`Receipt::signed_bytes`]).
pub const RECEIPT_DOMAIN: &[u8] = b"kuvert/v2/delivery-receipt";
/// Domain of the operator's signature on a [`Rejection`].
pub const REJECTION_DOMAIN: &[u8] = b"kuvert/v1/delivery-rejection";
/// HPKE `info` for content sealed to an operator. v2: one encapsulation
/// for the deliveries of a request to one operator, each box under its own
/// exported key (decision 0006); a v1 box does not open.
pub const HPKE_INFO: &[u8] = b"kuvert/v2/sealed-content";

/// A delivery sealed by the relay for one mailbox operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SealedDelivery {
    pub delivery_id: String,
    /// Canonical 12-digit recipient id.
    pub recipient: String,
    pub sender_id: String,
    pub operator_id: String,
    /// When the relay accepted the delivery (RFC 3339).
    pub received_at: String,
    /// The relay's seal key id.
    pub relay_key_id: String,
    /// SHA-256 (lowercase hex) of the canonical bytes the sender signed:
    /// the mailbox recomputes it from the opened delivery and signs it
    /// into the receipt.
    pub delivery_digest: String,
    /// SHA-256 (hex) of the sealed plaintext.
    pub content_hash: String,
    /// Base64: HPKE encapsulated key; deliveries sealed in one request to
    /// one operator share it.
    pub encapsulated_key: String,
    /// Base64: nonce and AES-256-GCM ciphertext of a [`SealedContent`] JSON,
    /// under a key exported from the HPKE context for this delivery's seal bytes.
    pub ciphertext: String,
    /// Base64: the relay's signature over the seal bytes.
    pub seal_signature: String,
}

/// What is inside the HPKE ciphertext.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedContent {
    pub signed: SignedDelivery,
    /// The register's certificate of the key the sender signed with: the
    /// mailbox checks it against the register keys it pins (never the
    /// relay's word), and shows the certified sender name.
    pub sender_certificate: SenderKeyCertificate,
}

/// [`SealedContent`] by reference, for the relay to serialise without
/// copying a delivery of up to 2 MiB: the same fields, the same JSON.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct SealedContentRef<'a> {
    pub signed: &'a SignedDelivery,
    pub sender_certificate: &'a SenderKeyCertificate,
}

impl SealedDelivery {
    /// The bytes the relay signs and uses as HPKE associated data: a JSON
    /// array of the routing fields in a fixed order.
    pub fn seal_bytes(&self) -> Vec<u8> {
        serde_json::json!([
            "kuvert-seal-v2",
            self.delivery_id,
            self.recipient,
            self.sender_id,
            self.operator_id,
            self.received_at,
            self.relay_key_id,
            self.delivery_digest,
            self.content_hash,
        ])
        .to_string()
        .into_bytes()
    }

    pub fn sign(&mut self, key: &SigningKey) {
        self.seal_signature = key.sign(SEAL_DOMAIN, &self.seal_bytes()).to_base64();
    }

    pub fn verify_seal(&self, key: &PublicKey) -> Result<(), CryptoError> {
        let signature = Signature::from_base64(&self.seal_signature)?;
        key.verify(SEAL_DOMAIN, &self.seal_bytes(), &signature)
    }

    pub fn sealed_box(&self) -> Result<kuvert_crypto::sealing::SealedBox, CryptoError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        Ok(kuvert_crypto::sealing::SealedBox {
            encapsulated_key: b64
                .decode(&self.encapsulated_key)
                .map_err(|_| CryptoError::Malformed("encapsulated key"))?,
            ciphertext: b64
                .decode(&self.ciphertext)
                .map_err(|_| CryptoError::Malformed("ciphertext"))?,
        })
    }
}

/// The operator's signed statement that a delivery is in the recipient's
/// mailbox: `delivered_at` is the legal moment of delivery. Everything in it
/// can be checked by the sender alone, against the delivery they signed and
/// the operator's published keys (`kuvert receipt verify`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// Always `kuvert-receipt-v2`.
    pub format: String,
    /// The relay's id of the delivery (the `delivery_id` of the send answer).
    pub delivery_id: String,
    /// The recipient's canonical 12-digit identity number.
    pub recipient: String,
    /// The sender's canonical organisation number (12 digits, `16` + 10).
    pub sender_id: String,
    /// The mailbox operator that signs; its keys document is
    /// `/register/v1/operators/{operator_id}/keys`.
    pub operator_id: String,
    /// The legal moment of delivery, RFC 3339 UTC with microseconds.
    pub delivered_at: String,
    /// SHA-256, lowercase hex, of the canonical bytes the sender signed
    /// (the RFC 8785 form of the delivery, without domain prefix).
    pub delivery_digest: String,
    /// The sender's `header.id` of each message, in delivery order.
    pub message_ids: Vec<String>,
    /// The operator's receipt key id: `ed25519:` + the first 16 hex digits
    /// of SHA-256 of the 32-byte public key.
    pub key_id: String,
    /// Standard base64 of the Ed25519 signature over the receipt's signed bytes.
    pub signature: String,
}

/// The `format` of a [`Receipt`].
pub const RECEIPT_FORMAT: &str = "kuvert-receipt-v2";

impl Receipt {
    /// What the operator signs (after `kuvert/v2/delivery-receipt` and a
    /// 0x00 byte): the RFC 8785 (JCS) form of the JSON array
    /// `[format, delivery_id, recipient, sender_id, operator_id,
    /// delivered_at, delivery_digest, [message_ids…], key_id]`. For an
    /// array of strings that is the JSON text with no whitespace, strings
    /// escaped as JSON.stringify does (`"` `\\` and control characters;
    /// everything else as UTF-8).
    pub fn signed_bytes(&self) -> Vec<u8> {
        serde_json::json!([
            self.format,
            self.delivery_id,
            self.recipient,
            self.sender_id,
            self.operator_id,
            self.delivered_at,
            self.delivery_digest,
            self.message_ids,
            self.key_id,
        ])
        .to_string()
        .into_bytes()
    }

    pub fn sign(&mut self, key: &SigningKey) {
        self.key_id = key.public_key().key_id();
        self.signature = key.sign(RECEIPT_DOMAIN, &self.signed_bytes()).to_base64();
    }

    pub fn verify(&self, key: &PublicKey) -> Result<(), CryptoError> {
        if self.key_id != key.key_id() {
            return Err(CryptoError::InvalidSignature);
        }
        let signature = Signature::from_base64(&self.signature)?;
        key.verify(RECEIPT_DOMAIN, &self.signed_bytes(), &signature)
    }

    /// Verifies many receipts by one operator, on every core; one flag per
    /// receipt, in order (the same answer as [`verify`](Self::verify)).
    pub fn verify_all(receipts: &[&Receipt], key: &PublicKey) -> Vec<bool> {
        let key_id = key.key_id();
        let parsed: Vec<Option<(Vec<u8>, Signature)>> = receipts
            .iter()
            .map(|r| {
                let signature = Signature::from_base64(&r.signature).ok()?;
                (r.key_id == key_id).then(|| (r.signed_bytes(), signature))
            })
            .collect();
        let items: Vec<(&PublicKey, &[u8], &[u8], &Signature)> = parsed
            .iter()
            .flatten()
            .map(|(bytes, signature)| (key, RECEIPT_DOMAIN, bytes.as_slice(), signature))
            .collect();
        let mut checked = kuvert_crypto::signing::verify_many(&items).into_iter();
        parsed
            .iter()
            .map(|p| p.is_some() && checked.next().is_some_and(|r| r.is_ok()))
            .collect()
    }
}

/// The operator's signed statement that it refuses a delivery for good
/// (retrying the same bytes cannot succeed). A relay records a delivery as
/// failed only on a rejection whose signature verifies against the
/// operator's registered receipt key and that names that delivery and
/// operator; anything less is retried like a transport error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rejection {
    /// Always `kuvert-rejection-v1`.
    pub format: String,
    /// The relay's id of the refused delivery.
    pub delivery_id: String,
    /// The mailbox operator that signs.
    pub operator_id: String,
    /// Why, for programs: `bad_seal`, `cannot_open`, `bad_sender_signature`, …
    pub code: String,
    /// Why, for people (signed too, so the words are the operator's).
    pub message: String,
    /// When the operator refused it, RFC 3339 UTC with microseconds.
    pub rejected_at: String,
    /// The operator's receipt key id (as in [`Receipt::key_id`]).
    pub key_id: String,
    /// Standard base64 of the Ed25519 signature over [`Rejection::signed_bytes`].
    pub signature: String,
}

/// The `format` of a [`Rejection`].
pub const REJECTION_FORMAT: &str = "kuvert-rejection-v1";

impl Rejection {
    /// What the operator signs (after `kuvert/v1/delivery-rejection` and a
    /// 0x00 byte): the RFC 8785 (JCS) form of the JSON array of strings
    /// `[format, delivery_id, operator_id, code, message, rejected_at,
    /// key_id]`, that is the JSON text with no whitespace, strings escaped
    /// as JSON.stringify does (as [`Receipt::signed_bytes`]).
    pub fn signed_bytes(&self) -> Vec<u8> {
        serde_json::json!([
            self.format,
            self.delivery_id,
            self.operator_id,
            self.code,
            self.message,
            self.rejected_at,
            self.key_id,
        ])
        .to_string()
        .into_bytes()
    }

    pub fn sign(&mut self, key: &SigningKey) {
        self.key_id = key.public_key().key_id();
        self.signature = key.sign(REJECTION_DOMAIN, &self.signed_bytes()).to_base64();
    }

    /// The signature is `key`'s, over exactly these fields.
    pub fn verify(&self, key: &PublicKey) -> Result<(), CryptoError> {
        if self.format != REJECTION_FORMAT || self.key_id != key.key_id() {
            return Err(CryptoError::InvalidSignature);
        }
        let signature = Signature::from_base64(&self.signature)?;
        key.verify(REJECTION_DOMAIN, &self.signed_bytes(), &signature)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliverRequest {
    pub deliveries: Vec<SealedDelivery>,
}

/// One answer per delivery. Each names its delivery id; a relay matches
/// them by that id, not by position.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeliverResponse {
    pub results: Vec<DeliveryResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum DeliveryResult {
    Delivered {
        receipt: Receipt,
    },
    /// Refused for good, in a statement signed by the operator.
    Rejected {
        rejection: Rejection,
    },
}

impl DeliveryResult {
    /// The delivery this result is for.
    pub fn delivery_id(&self) -> &str {
        match self {
            Self::Delivered { receipt } => &receipt.delivery_id,
            Self::Rejected { rejection } => &rejection.delivery_id,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn receipt(n: usize, key: &SigningKey) -> Receipt {
        let mut receipt = Receipt {
            format: RECEIPT_FORMAT.to_owned(),
            delivery_id: format!("delivery-{n}"),
            recipient: "198001012387".to_owned(),
            sender_id: "162120002411".to_owned(),
            operator_id: "kuvert-brevlada".to_owned(),
            delivered_at: "2026-11-24T12:00:00.000000Z".to_owned(),
            delivery_digest: "00".repeat(32),
            message_ids: vec![format!("m{n}")],
            key_id: String::new(),
            signature: String::new(),
        };
        receipt.sign(key);
        receipt
    }

    fn rejection(key: &SigningKey) -> Rejection {
        let mut rejection = Rejection {
            format: REJECTION_FORMAT.to_owned(),
            delivery_id: "01a23190-99cf-7215-9372-2b16b135f9ca".to_owned(),
            operator_id: "kuvert-brevlada".to_owned(),
            code: "bad_seal".to_owned(),
            message: "the relay's seal signature does not verify".to_owned(),
            rejected_at: "2026-12-01T10:00:00.000000Z".to_owned(),
            key_id: String::new(),
            signature: String::new(),
        };
        rejection.sign(key);
        rejection
    }

    /// The byte form is the documented one: a JSON array of strings with
    /// no whitespace, in the documented order, JSON escapes for `"`.
    #[test]
    fn rejection_signed_bytes_are_the_documented_array() {
        let mut rejection = rejection(&SigningKey::generate());
        rejection.key_id = "ed25519:0123456789abcdef".to_owned();
        rejection.message = "\"brevlådan\" säger nej".to_owned();
        assert_eq!(
            String::from_utf8(rejection.signed_bytes()).unwrap(),
            r#"["kuvert-rejection-v1","01a23190-99cf-7215-9372-2b16b135f9ca","kuvert-brevlada","bad_seal","\"brevlådan\" säger nej","2026-12-01T10:00:00.000000Z","ed25519:0123456789abcdef"]"#
        );
    }

    /// A rejection verifies only with the operator's key, unchanged, and
    /// not as a receipt (its own domain).
    #[test]
    fn a_rejection_verifies_only_unchanged_and_by_its_key() {
        let key = SigningKey::generate();
        let public = key.public_key();
        let genuine = rejection(&key);
        assert!(genuine.verify(&public).is_ok());
        type Change = fn(&mut Rejection);
        let changes: [(&str, Change); 8] = [
            ("format", |r| r.format = "kuvert-rejection-v2".to_owned()),
            ("delivery_id", |r| r.delivery_id = "another".to_owned()),
            ("operator_id", |r| r.operator_id = "annan".to_owned()),
            ("code", |r| r.code = "cannot_open".to_owned()),
            ("message", |r| r.message = "något annat".to_owned()),
            ("rejected_at", |r| {
                r.rejected_at = "2026-12-02T10:00:00.000000Z".to_owned()
            }),
            ("key_id", |r| {
                r.key_id = "ed25519:0000000000000000".to_owned()
            }),
            ("signature", |r| r.signature = "A".repeat(86) + "=="),
        ];
        for (field, change) in changes {
            let mut changed = genuine.clone();
            change(&mut changed);
            assert!(changed.verify(&public).is_err(), "{field}");
        }
        // Signed by another key, naming that key: not the operator's.
        let forged = rejection(&SigningKey::generate());
        assert!(forged.verify(&public).is_err());
        // The same signature over the same bytes in the receipt domain
        // does not verify: a rejection cannot pass as anything else.
        let signature = Signature::from_base64(&genuine.signature).unwrap();
        assert!(
            public
                .verify(RECEIPT_DOMAIN, &genuine.signed_bytes(), &signature)
                .is_err()
        );
    }

    #[test]
    fn batch_verification_of_receipts_agrees_with_one_by_one() {
        let key = SigningKey::generate();
        let other = SigningKey::generate();
        let mut receipts: Vec<Receipt> = (0..6).map(|n| receipt(n, &key)).collect();
        receipts[1].delivered_at = "2026-11-25T12:00:00.000000Z".to_owned(); // altered after signing
        receipts[3] = receipt(3, &other); // signed by another key
        receipts[4].signature = "not base64!".to_owned();
        let refs: Vec<&Receipt> = receipts.iter().collect();
        let public = key.public_key();
        let batch = Receipt::verify_all(&refs, &public);
        let single: Vec<bool> = receipts.iter().map(|r| r.verify(&public).is_ok()).collect();
        assert_eq!(batch, single);
        assert_eq!(batch, [true, false, true, false, false, true]);
        let all_good: Vec<Receipt> = (0..4).map(|n| receipt(n, &key)).collect();
        let refs: Vec<&Receipt> = all_good.iter().collect();
        assert_eq!(Receipt::verify_all(&refs, &public), [true; 4]);
    }
}
