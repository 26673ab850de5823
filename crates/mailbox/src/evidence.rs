//! Evidence a sender (or a court) can check alone: the published keys
//! documents and the check of a receipt against the delivery the sender
//! signed.
//!
//! A keys document lists every key an owner (a mailbox operator, or the
//! installation's relay and audit log) has signed or sealed with, including
//! keys rotated out, each with its validity period, so an old receipt keeps
//! verifying after a rotation. The register serves them at
//! `/register/v1/operators/{id}/keys` and `/register/v1/keys`.

use crate::protocol::{RECEIPT_FORMAT, Receipt};
use kuvert_crypto::digest::sha256_hex;
use kuvert_crypto::signing::PublicKey;
use kuvert_domain::clock::{Clock as _, SystemClock, parse_instant};
use kuvert_domain::delivery::SecureDelivery;
use kuvert_domain::identity::{OrganisationNumber, RecipientId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The `format` of a [`KeysDocument`].
pub const KEYS_FORMAT: &str = "kuvert-keys-v1";

/// Every public key one owner uses or has used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeysDocument {
    /// Always `kuvert-keys-v1`.
    pub format: String,
    pub owner: KeyOwner,
    /// Newest first within each purpose; rotated-out keys stay listed.
    pub keys: Vec<PublishedKey>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyOwner {
    pub kind: OwnerKind,
    /// The operator id, or `installation`.
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OwnerKind {
    /// A mailbox operator: receipt and sealing keys.
    Operator,
    /// This installation: the relay's seal key, the audit checkpoint key
    /// and the register's certificate key.
    Installation,
}

/// What a key is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyPurpose {
    /// Ed25519: an operator signs delivery receipts.
    Receipt,
    /// X25519 (HPKE): relays seal content to an operator.
    Sealing,
    /// Ed25519: the relay signs the seal of each delivery it forwards.
    RelaySeal,
    /// Ed25519: signs audit-log checkpoints.
    AuditCheckpoint,
    /// Ed25519: the register certifies sender keys and mailbox operators
    /// with it (see `kuvert_mailbox::certificate`). Distribute its key id
    /// out of band too: it is the anchor the other roles pin.
    RegisterCertificate,
}

impl KeyPurpose {
    pub const ALL: [KeyPurpose; 5] = [
        Self::Receipt,
        Self::Sealing,
        Self::RelaySeal,
        Self::AuditCheckpoint,
        Self::RegisterCertificate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Receipt => "receipt",
            Self::Sealing => "sealing",
            Self::RelaySeal => "relay_seal",
            Self::AuditCheckpoint => "audit_checkpoint",
            Self::RegisterCertificate => "register_certificate",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == text)
    }

    /// `ed25519` or `x25519`.
    pub fn algorithm(self) -> &'static str {
        match self {
            Self::Sealing => "x25519",
            Self::Receipt | Self::RelaySeal | Self::AuditCheckpoint | Self::RegisterCertificate => {
                "ed25519"
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PublishedKey {
    pub purpose: KeyPurpose,
    /// `ed25519` or `x25519`.
    pub algorithm: String,
    /// `<algorithm>:` + the first 16 lowercase hex digits of SHA-256 of the
    /// 32 raw public-key bytes.
    pub key_id: String,
    /// Standard base64 (with padding) of the 32 raw public-key bytes.
    pub public_key: String,
    /// From when the key is (was) in use, RFC 3339 UTC.
    pub valid_from: String,
    /// Until when it was in use; absent while it is the current key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
}

impl PublishedKey {
    /// Whether the key was in use at `at` (RFC 3339): valid_from ≤ at <
    /// valid_until. Unparsable instants count as not in use.
    pub fn in_use_at(&self, at: &str) -> bool {
        let (Ok(at), Ok(from)) = (parse_instant(at), parse_instant(&self.valid_from)) else {
            return false;
        };
        let before_end = match &self.valid_until {
            None => true,
            Some(until) => parse_instant(until).is_ok_and(|until| at < until),
        };
        from <= at && before_end
    }
}

impl KeysDocument {
    /// The listed key of `purpose` whose id is `key_id`.
    pub fn find(&self, purpose: KeyPurpose, key_id: &str) -> Option<&PublishedKey> {
        self.keys
            .iter()
            .find(|k| k.purpose == purpose && k.key_id == key_id)
    }
}

/// One named check of a receipt and whether it held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    /// What was compared, or what is wrong.
    pub detail: String,
}

fn check(name: &'static str, ok: bool, detail: impl Into<String>) -> Check {
    Check {
        name,
        ok,
        detail: detail.into(),
    }
}

/// Checks a receipt against the delivery the sender signed and the
/// operator's published keys document, using nothing the relay or the
/// operator hands over besides the receipt itself. Every check is reported,
/// so a failure says exactly what differs.
pub fn check_receipt(
    receipt: &Receipt,
    delivery: &SecureDelivery,
    keys: &KeysDocument,
) -> Vec<Check> {
    let mut checks = Vec::new();
    checks.push(check(
        "format",
        receipt.format == RECEIPT_FORMAT,
        format!("receipt format {:?}", receipt.format),
    ));
    let owner_ok = keys.format == KEYS_FORMAT
        && keys.owner.kind == OwnerKind::Operator
        && keys.owner.id == receipt.operator_id;
    checks.push(check(
        "keys document",
        owner_ok,
        format!(
            "{} of {:?} {:?}; the receipt names operator {:?}",
            keys.format, keys.owner.kind, keys.owner.id, receipt.operator_id
        ),
    ));
    let listed = keys.find(KeyPurpose::Receipt, &receipt.key_id);
    let key = listed.and_then(|k| PublicKey::from_base64(&k.public_key).ok());
    let key_ok = key.is_some_and(|k| k.key_id() == receipt.key_id);
    checks.push(check(
        "receipt key",
        key_ok,
        if listed.is_none() {
            format!("{} is not a published receipt key", receipt.key_id)
        } else if key_ok {
            format!("{} is published", receipt.key_id)
        } else {
            format!(
                "the published key does not derive to {} (or is not an Ed25519 key)",
                receipt.key_id
            )
        },
    ));
    let in_use = listed.is_some_and(|k| k.in_use_at(&receipt.delivered_at));
    checks.push(check(
        "key in use at delivery",
        in_use,
        match listed {
            Some(k) => format!(
                "delivered_at {} within {} – {}",
                receipt.delivered_at,
                k.valid_from,
                k.valid_until.as_deref().unwrap_or("now")
            ),
            None => "no published key to compare with".to_owned(),
        },
    ));
    let signature_ok = key_ok && key.is_some_and(|k| receipt.verify(&k).is_ok());
    checks.push(check(
        "signature",
        signature_ok,
        if signature_ok {
            "verifies over the receipt's signed bytes".to_owned()
        } else {
            "does not verify over the receipt's signed bytes with the published key".to_owned()
        },
    ));
    let digest = sha256_hex(&delivery.canonical_bytes());
    checks.push(check(
        "delivery digest",
        digest == receipt.delivery_digest,
        format!(
            "SHA-256 of the signed delivery is {digest}, the receipt says {}",
            receipt.delivery_digest
        ),
    ));
    // The recipient as kuvert canonicalised it on the day of delivery.
    let day = parse_instant(&receipt.delivered_at)
        .map(|at| at.date())
        .unwrap_or_else(|_| SystemClock.today());
    let recipient = RecipientId::parse(&delivery.header.recipient, day)
        .map(|r| r.as_str().to_owned())
        .unwrap_or_default();
    checks.push(check(
        "recipient",
        !recipient.is_empty() && recipient == receipt.recipient,
        format!(
            "delivery to {recipient:?}, receipt for {:?}",
            receipt.recipient
        ),
    ));
    let sender = OrganisationNumber::parse(&delivery.header.sender.id)
        .map(|s| s.as_str().to_owned())
        .unwrap_or_default();
    checks.push(check(
        "sender",
        !sender.is_empty() && sender == receipt.sender_id,
        format!(
            "delivery from {sender:?}, receipt names {:?}",
            receipt.sender_id
        ),
    ));
    let message_ids: Vec<&str> = delivery
        .messages
        .iter()
        .map(|m| m.header.id.as_str())
        .collect();
    checks.push(check(
        "message ids",
        message_ids == receipt.message_ids,
        format!(
            "delivery {message_ids:?}, receipt {:?}",
            receipt.message_ids
        ),
    ));
    checks
}
