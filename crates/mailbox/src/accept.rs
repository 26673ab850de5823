//! Accepting sealed deliveries: check the relay's seal, open the content,
//! check the sender's signature, store encrypted, sign the receipt.

use crate::at_rest::{AtRestError, RowBinding, StoredContent, Summary, encrypt_row};
use crate::certificate::{SenderKeyCertificate, SenderKeyRevocation, TrustedRegisters};
use crate::protocol::{
    DeliveryResult, HPKE_INFO, RECEIPT_FORMAT, REJECTION_FORMAT, Receipt, Rejection, SEAL_DOMAIN,
    SealedContent, SealedDelivery,
};
use kuvert_crypto::at_rest::KeyEncryptionKey;
use kuvert_crypto::digest::sha256_hex;
use kuvert_crypto::sealing::{Opener, SealingPrivateKey};
use kuvert_crypto::signing::{PublicKey, Signature, SigningKey, verify_many};
use kuvert_domain::clock::{Clock, format_instant, parse_instant};
use kuvert_domain::content::sanitize_html;
use kuvert_domain::delivery::{BodyContentType, DeliveryLimits, SIGNED_DELIVERY_DOMAIN};
use kuvert_domain::ids::{MailboxMessageId, OperatorId};
use kuvert_store::mailbox::{NewMailboxDelivery, NewMailboxMessage};
use kuvert_store::revocations::LearnedRevocation;
use kuvert_store::{Db, StoreError};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("not found")]
    NotFound,
    #[error("stored content could not be decrypted")]
    Decrypt,
    /// A stored row does not decrypt with its own fields (decision 0012).
    #[error(transparent)]
    AtRest(#[from] AtRestError),
    /// A relay's request holds more deliveries than one request may.
    #[error("a request holds at most {max} deliveries")]
    TooManyDeliveries { max: usize },
}

/// Why one sealed delivery was refused. Every one is permanent: the same
/// bytes will be refused again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The signed delivery breaks this operator's own limits or content
    /// rules (the relay's check is not this operator's trust anchor); the
    /// code is the rule's, as the intake would have named it.
    InvalidContent(&'static str),
    WrongOperator,
    UnknownRelay,
    BadSeal,
    CannotOpen,
    ContentHashMismatch,
    MalformedContent,
    HeaderMismatch,
    DigestMismatch,
    BadSenderSignature,
    SenderKeyNotCertified,
    SenderKeyRevoked,
}

impl Refusal {
    fn code(self) -> &'static str {
        match self {
            Self::InvalidContent(code) => code,
            Self::WrongOperator => "wrong_operator",
            Self::UnknownRelay => "unknown_relay",
            Self::BadSeal => "bad_seal",
            Self::CannotOpen => "cannot_open",
            Self::ContentHashMismatch => "content_hash_mismatch",
            Self::MalformedContent => "malformed_content",
            Self::HeaderMismatch => "header_mismatch",
            Self::DigestMismatch => "delivery_digest_mismatch",
            Self::BadSenderSignature => "bad_sender_signature",
            Self::SenderKeyNotCertified => "sender_key_not_certified",
            Self::SenderKeyRevoked => "sender_key_revoked",
        }
    }
    fn message(self) -> &'static str {
        match self {
            Self::InvalidContent(_) => {
                "the signed delivery breaks this operator's limits or content rules (see the code)"
            }
            Self::WrongOperator => "the delivery is sealed for another operator",
            Self::UnknownRelay => "the seal is by a relay this operator does not trust",
            Self::BadSeal => "the relay's seal signature does not verify",
            Self::CannotOpen => "the content cannot be opened with this operator's key",
            Self::ContentHashMismatch => "the content does not match the sealed hash",
            Self::MalformedContent => "the sealed content is not a signed delivery",
            Self::HeaderMismatch => "the sealed routing fields differ from the signed delivery",
            Self::DigestMismatch => {
                "the sealed delivery digest is not the digest of the signed delivery"
            }
            Self::BadSenderSignature => "the sender's signature does not verify",
            Self::SenderKeyNotCertified => {
                "the sender's key has no certificate by a register this operator trusts, or the certificate is for another sender or key"
            }
            Self::SenderKeyRevoked => "the register has revoked the key the sender signed with",
        }
    }
}

/// The most deliveries a relay may hand over in one request (the relay's
/// worker sends at most 500 per pass); the body is at most 40 MiB.
pub const MAX_DELIVERIES_PER_REQUEST: usize = 1000;

/// The mailbox operator's keys and store.
pub struct Mailbox {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub operator_id: OperatorId,
    pub sealing_key: SealingPrivateKey,
    pub receipt_key: SigningKey,
    pub kek: KeyEncryptionKey,
    /// Relay seal keys this operator accepts deliveries from.
    pub trusted_relays: Vec<PublicKey>,
    /// Register keys whose sender-key certificates and revocations this
    /// operator accepts: its own trust anchor for who a sender is.
    pub trusted_registers: TrustedRegisters,
    /// Sender keys the register revoked (key ids), as learned; loaded from
    /// the store at start ([`Mailbox::load_revocations`]).
    pub revoked_keys: RwLock<HashSet<String>>,
    /// SHA-256 of each relay's credential (`kvm_…`): the delivery endpoint
    /// reads no body from a caller without one.
    pub relay_credentials: Vec<[u8; 32]>,
    /// The limits and content rules this operator holds deliveries to,
    /// checked here again (a relay's word is not this operator's anchor).
    pub limits: DeliveryLimits,
}

struct Opened {
    sealed: SealedDelivery,
    content: SealedContent,
    /// The register's name for the sender: what the recipient is shown.
    sender_name: String,
    /// SHA-256 (hex) of the canonical bytes the sender signed, computed
    /// here from the opened delivery: what the receipt is bound to.
    delivery_digest: String,
    /// The length of those canonical bytes, for this operator's size limit.
    canonical_len: usize,
}

impl Mailbox {
    /// Loads the revocations this operator has learned (at start).
    pub async fn load_revocations(&self) -> Result<(), MailboxError> {
        let known = self.db.revoked_sender_keys().await?;
        self.revoked()?.extend(known);
        Ok(())
    }

    /// Takes revocation statements from the register (pushed in one
    /// process, fetched otherwise): each is checked against the register
    /// keys this operator trusts; one that does not verify is ignored and
    /// logged. From now on deliveries signed with those keys are refused.
    /// Returns how many were new.
    pub async fn learn_revocations(
        &self,
        statements: &[SenderKeyRevocation],
    ) -> Result<u64, MailboxError> {
        let mut valid = Vec::new();
        let mut json = Vec::new();
        for statement in statements {
            match statement.verify(&self.trusted_registers) {
                Ok(()) => {
                    valid.push(statement);
                    json.push(
                        serde_json::to_string(statement)
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    );
                }
                Err(e) => {
                    tracing::warn!(key_id = %statement.key_id, error = %e, "ignored a revocation that does not verify");
                }
            }
        }
        let learned: Vec<LearnedRevocation<'_>> = valid
            .iter()
            .zip(&json)
            .map(|(r, statement)| LearnedRevocation {
                key_id: &r.key_id,
                sender_id: &r.sender_id,
                revoked_at: &r.revoked_at,
                statement,
            })
            .collect();
        // Refused in memory first: from the moment the statement is seen.
        self.revoked()?
            .extend(valid.iter().map(|r| r.key_id.clone()));
        Ok(self
            .db
            .learn_revocations(&learned, self.clock.now())
            .await?)
    }

    fn is_revoked(&self, key_id: &str) -> bool {
        // A poisoned lock (a panic elsewhere) must not let a revoked key
        // through: treat it as revoked.
        self.revoked_keys
            .read()
            .map_or(true, |revoked| revoked.contains(key_id))
    }

    fn revoked(&self) -> Result<std::sync::RwLockWriteGuard<'_, HashSet<String>>, MailboxError> {
        self.revoked_keys
            .write()
            .map_err(|_| MailboxError::Store(StoreError::Corrupt("revocation set poisoned".into())))
    }

    /// Accepts a batch. Deliveries seen before get their first receipt back;
    /// new ones are stored in one transaction, then every receipt is read
    /// back from the store, so a concurrent duplicate cannot get a second one.
    pub async fn accept(
        &self,
        batch: Vec<SealedDelivery>,
    ) -> Result<Vec<DeliveryResult>, MailboxError> {
        if batch.len() > MAX_DELIVERIES_PER_REQUEST {
            return Err(MailboxError::TooManyDeliveries {
                max: MAX_DELIVERIES_PER_REQUEST,
            });
        }
        let now = self.clock.now();
        let mut results: Vec<Option<DeliveryResult>> = Vec::with_capacity(batch.len());
        // The seal is the relay's credential: checked before anything is
        // answered from the store, since a known delivery id is answered
        // with its receipt (recipient, moment of delivery), which must go to
        // the relay only.
        let mut candidates = Vec::with_capacity(batch.len());
        for sealed in batch {
            match self.seal_signature(&sealed) {
                Ok(pending) => {
                    candidates.push((results.len(), sealed, pending));
                    results.push(None);
                }
                Err(refusal) => results.push(Some(self.refused(sealed.delivery_id, refusal))),
            }
        }
        // All seal signatures of the request at once, on every core.
        let seals_valid = verify_all(SEAL_DOMAIN, candidates.iter().map(|(_, _, p)| p));
        let mut sealed_ok = Vec::with_capacity(candidates.len());
        for ((index, sealed, _), valid) in candidates.into_iter().zip(seals_valid) {
            if valid {
                sealed_ok.push((index, sealed));
            } else {
                results[index] = Some(self.refused(sealed.delivery_id, Refusal::BadSeal));
            }
        }
        let ids: Vec<&str> = sealed_ok
            .iter()
            .map(|(_, s)| s.delivery_id.as_str())
            .collect();
        let seen = self.db.mailbox_receipts(&ids).await?;
        let mut opened = Vec::new();
        let mut cache = RequestCache::default();
        for (index, sealed) in sealed_ok {
            if let Some(receipt) = seen.get(&sealed.delivery_id) {
                results[index] = Some(parse_receipt(receipt)?);
                continue;
            }
            match self.open(sealed, &mut cache) {
                Ok((content, signature)) => opened.push((index, content, signature)),
                Err((delivery_id, refusal)) => {
                    results[index] = Some(self.refused(delivery_id, refusal));
                }
            }
        }
        // The senders' own signatures, end to end, again all at once.
        let signatures_valid = verify_all(SIGNED_DELIVERY_DOMAIN, opened.iter().map(|(_, _, p)| p));
        let mut genuine = Vec::with_capacity(opened.len());
        for ((index, content, _), valid) in opened.into_iter().zip(signatures_valid) {
            if valid {
                genuine.push((index, content));
            } else {
                results[index] =
                    Some(self.refused(content.sealed.delivery_id, Refusal::BadSenderSignature));
            }
        }
        // This operator's own limits and content rules, after the
        // signatures (nothing unauthenticated is analysed), on every core.
        let today = now.date();
        let content_checks: Vec<Result<(), Refusal>> = genuine
            .par_iter()
            .with_min_len(32)
            .map(|(_, content)| {
                content
                    .content
                    .signed
                    .delivery
                    .check_content(&self.limits, today, content.canonical_len)
                    .map_err(|e| Refusal::InvalidContent(e.code()))
            })
            .collect();
        let mut genuine_valid = Vec::with_capacity(genuine.len());
        for ((index, content), check) in genuine.into_iter().zip(content_checks) {
            match check {
                Ok(()) => genuine_valid.push((index, content)),
                Err(refusal) => {
                    results[index] = Some(self.refused(content.sealed.delivery_id, refusal));
                }
            }
        }
        let genuine = genuine_valid;
        // Encryption at rest and the signed receipts, on every core.
        let to_store = genuine
            .par_iter()
            .with_min_len(32)
            .map(|(_, content)| self.prepare(content, now))
            .collect::<Result<Vec<_>, _>>()?;
        let pending: Vec<(usize, String)> = genuine
            .into_iter()
            .map(|(index, content)| (index, content.sealed.delivery_id))
            .collect();
        if !to_store.is_empty() {
            self.db.insert_mailbox_deliveries(&to_store, now).await?;
        }
        // Read back what is stored: a concurrent duplicate that won the race
        // is answered with the receipt it got, not a second one.
        let ids: Vec<&str> = pending.iter().map(|(_, id)| id.as_str()).collect();
        let stored = self.db.mailbox_receipts(&ids).await?;
        for (index, delivery_id) in &pending {
            let receipt = stored.get(delivery_id).ok_or(MailboxError::NotFound)?;
            results[*index] = Some(parse_receipt(receipt)?);
        }
        Ok(results.into_iter().flatten().collect())
    }

    /// A refusal, as a statement signed by the receipt key: the relay
    /// fails a delivery for good only on that signature (decision 0011).
    fn refused(&self, delivery_id: String, refusal: Refusal) -> DeliveryResult {
        tracing::warn!(code = refusal.code(), "refused a sealed delivery");
        let mut rejection = Rejection {
            format: REJECTION_FORMAT.to_owned(),
            delivery_id,
            operator_id: self.operator_id.to_string(),
            code: refusal.code().to_owned(),
            message: refusal.message().to_owned(),
            rejected_at: format_instant(self.clock.now()),
            key_id: String::new(),
            signature: String::new(),
        };
        rejection.sign(&self.receipt_key);
        DeliveryResult::Rejected { rejection }
    }

    /// Sealed for this operator, by a relay it trusts: the seal signature
    /// to check (the caller checks a whole request's at once).
    fn seal_signature(&self, sealed: &SealedDelivery) -> Result<PendingSignature, Refusal> {
        if sealed.operator_id != self.operator_id.as_str() {
            return Err(Refusal::WrongOperator);
        }
        let relay = self
            .trusted_relays
            .iter()
            .find(|k| k.key_id() == sealed.relay_key_id)
            .ok_or(Refusal::UnknownRelay)?;
        let signature =
            Signature::from_base64(&sealed.seal_signature).map_err(|_| Refusal::BadSeal)?;
        Ok(PendingSignature {
            key: *relay,
            message: sealed.seal_bytes(),
            signature,
        })
    }

    /// Opens a delivery whose seal verified, and returns the sender's
    /// signature still to check.
    fn open(
        &self,
        sealed: SealedDelivery,
        cache: &mut RequestCache,
    ) -> Result<(Opened, PendingSignature), (String, Refusal)> {
        let id = sealed.delivery_id.clone();
        let fail = |r| (id.clone(), r);
        let sealed_box = sealed.sealed_box().map_err(|_| fail(Refusal::CannotOpen))?;
        let opener = cache
            .openers
            .entry(sealed.encapsulated_key.clone())
            .or_insert_with(|| {
                Opener::new(&self.sealing_key, HPKE_INFO, &sealed_box.encapsulated_key).ok()
            })
            .as_ref()
            .ok_or_else(|| fail(Refusal::CannotOpen))?;
        let plaintext = opener
            .open(&sealed.seal_bytes(), &sealed_box)
            .map_err(|_| fail(Refusal::CannotOpen))?;
        if sha256_hex(&plaintext) != sealed.content_hash {
            return Err(fail(Refusal::ContentHashMismatch));
        }
        let content: SealedContent =
            serde_json::from_slice(&plaintext).map_err(|_| fail(Refusal::MalformedContent))?;
        // The routing fields in the clear must be those of the signed delivery.
        let header = &content.signed.delivery.header;
        // Signed deliveries name the recipient in the canonical 12-digit
        // form, so relay and mailbox never each pick a century.
        let recipient_matches =
            kuvert_domain::identity::RecipientId::parse_canonical(&header.recipient)
                .is_ok_and(|r| r.as_str() == sealed.recipient);
        let sender_matches = kuvert_domain::identity::OrganisationNumber::parse(&header.sender.id)
            .is_ok_and(|s| s.as_str() == sealed.sender_id);
        if !recipient_matches || !sender_matches {
            return Err(fail(Refusal::HeaderMismatch));
        }
        // The sender's own signature, end to end, with a key the register
        // certified for this sender: neither the relay nor a database
        // writer of the core can make one up.
        let certificate = &content.sender_certificate;
        let key = cache
            .certified(certificate, &self.trusted_registers)
            .ok_or_else(|| fail(Refusal::SenderKeyNotCertified))?;
        if certificate.sender_id != sealed.sender_id
            || certificate.key_id != content.signed.signature.key_id
        {
            return Err(fail(Refusal::SenderKeyNotCertified));
        }
        if self.is_revoked(&certificate.key_id) {
            return Err(fail(Refusal::SenderKeyRevoked));
        }
        let signature = Signature::from_base64(&content.signed.signature.value)
            .map_err(|_| fail(Refusal::BadSenderSignature))?;
        let canonical = content.signed.delivery.canonical_bytes();
        let delivery_digest = sha256_hex(&canonical);
        let canonical_len = canonical.len();
        if delivery_digest != sealed.delivery_digest {
            return Err(fail(Refusal::DigestMismatch));
        }
        let pending = PendingSignature {
            key,
            message: canonical,
            signature,
        };
        let sender_name = content.sender_certificate.sender_name.clone();
        Ok((
            Opened {
                sealed,
                content,
                sender_name,
                delivery_digest,
                canonical_len,
            },
            pending,
        ))
    }

    fn prepare(
        &self,
        opened: &Opened,
        now: time::OffsetDateTime,
    ) -> Result<NewMailboxDelivery, MailboxError> {
        let delivery = &opened.content.signed.delivery;
        // The register's name for the sender (its certificate), never the
        // delivery's own `header.sender.name`.
        let sender_name = opened.sender_name.clone();
        let received_at = parse_instant(&opened.sealed.received_at).unwrap_or(now);
        let delivered_at = format_instant(now);
        let mut messages = Vec::with_capacity(delivery.messages.len());
        for (position, message) in delivery.messages.iter().enumerate() {
            let id = MailboxMessageId::new();
            let message_id = id.to_string();
            // Every plain column the reader relies on, exactly as
            // `insert_mailbox_deliveries` writes it.
            let binding = RowBinding {
                message_id: &message_id,
                delivery_id: &opened.sealed.delivery_id,
                position: i64::try_from(position).unwrap_or(i64::MAX),
                recipient_id: &opened.sealed.recipient,
                sender_id: &opened.sealed.sender_id,
                delivered_at: &delivered_at,
            };
            let summary = Summary {
                subject: message.header.subject.clone(),
                sender_id: opened.sealed.sender_id.clone(),
                sender_name: sender_name.clone(),
                delivered_at: delivered_at.clone(),
                received_at: opened.sealed.received_at.clone(),
                official_matter: message
                    .header
                    .official_matter
                    .as_ref()
                    .map(|m| m.id.clone()),
            };
            let matter_tag = match &message.header.official_matter {
                Some(matter) => Some(crate::reading::matter_tag(
                    &self.kek,
                    &opened.sealed.recipient,
                    &opened.sealed.sender_id,
                    &matter.id,
                )?),
                None => None,
            };
            // Sanitised once, here, not on every read.
            let mut message = message.clone();
            if message.body.content_type == BodyContentType::TextHtml {
                message.body.body = sanitize_html(&message.body.body);
            }
            let content = StoredContent {
                sender_name: sender_name.clone(),
                message,
                reference: delivery.header.reference.clone(),
                received_at: opened.sealed.received_at.clone(),
                body_sanitised: true,
            };
            let row = encrypt_row(&self.kek, &binding, &summary, &content)?;
            messages.push(NewMailboxMessage {
                id,
                wrapped_key: row.wrapped_key,
                summary: row.summary,
                content: row.content,
                matter_tag,
            });
        }
        let mut receipt = Receipt {
            format: RECEIPT_FORMAT.to_owned(),
            delivery_id: opened.sealed.delivery_id.clone(),
            recipient: opened.sealed.recipient.clone(),
            sender_id: opened.sealed.sender_id.clone(),
            operator_id: self.operator_id.to_string(),
            delivered_at: delivered_at.clone(),
            delivery_digest: opened.delivery_digest.clone(),
            message_ids: delivery
                .messages
                .iter()
                .map(|m| m.header.id.clone())
                .collect(),
            key_id: String::new(),
            signature: String::new(),
        };
        receipt.sign(&self.receipt_key);
        Ok(NewMailboxDelivery {
            delivery_id: opened.sealed.delivery_id.clone(),
            recipient_id: opened.sealed.recipient.clone(),
            sender_id: opened.sealed.sender_id.clone(),
            relay_key_id: opened.sealed.relay_key_id.clone(),
            received_at,
            delivered_at: now,
            receipt: serde_json::to_string(&receipt).map_err(|_| MailboxError::Decrypt)?,
            messages,
        })
    }
}

/// What one request's deliveries share, worked out once per request: the
/// relay seals a request's deliveries to one operator under one
/// encapsulated key (one decapsulation here), and a sender's certificate is
/// checked once (a signature check and a curve point decompression). One
/// that fails is remembered as such, so a request full of bad boxes costs
/// one attempt per key.
#[derive(Default)]
struct RequestCache {
    openers: HashMap<String, Option<Opener>>,
    /// Each sender-key certificate checked once per request, keyed by its
    /// whole content (never by its signature alone: a copy with one field
    /// changed must be checked on its own).
    certificates: HashMap<Vec<u8>, Option<PublicKey>>,
}

impl RequestCache {
    fn certified(
        &mut self,
        certificate: &SenderKeyCertificate,
        trusted: &TrustedRegisters,
    ) -> Option<PublicKey> {
        let mut whole = certificate.signed_bytes();
        whole.extend_from_slice(certificate.signature.as_bytes());
        *self
            .certificates
            .entry(whole)
            .or_insert_with(|| certificate.verify(trusted).ok())
    }
}

/// A signature still to be checked for one item of a request.
struct PendingSignature {
    key: PublicKey,
    message: Vec<u8>,
    signature: Signature,
}

/// Checks many signatures on every core (each as strictly as one alone,
/// the cost of one by one); one flag per signature, in order.
fn verify_all<'a>(domain: &[u8], pending: impl Iterator<Item = &'a PendingSignature>) -> Vec<bool> {
    let pending: Vec<&PendingSignature> = pending.collect();
    let items: Vec<(&PublicKey, &[u8], &[u8], &Signature)> = pending
        .iter()
        .map(|p| (&p.key, domain, p.message.as_slice(), &p.signature))
        .collect();
    verify_many(&items).iter().map(Result::is_ok).collect()
}

fn parse_receipt(json: &str) -> Result<DeliveryResult, MailboxError> {
    let receipt: Receipt = serde_json::from_str(json)
        .map_err(|e| MailboxError::Store(StoreError::Corrupt(e.to_string())))?;
    Ok(DeliveryResult::Delivered { receipt })
}
