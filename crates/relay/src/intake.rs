//! Intake: from a signed delivery to a durable, routed, sealed row.

use base64::Engine as _;
use kuvert_crypto::at_rest::KeyEncryptionKey;
use kuvert_crypto::digest::sha256_hex;
use kuvert_crypto::sealing::{Sealer, SealingPublicKey};
use kuvert_crypto::signing::{PublicKey, Signature, SigningKey, verify_many};
use kuvert_domain::clock::{Clock, format_instant};
use kuvert_domain::delivery::{
    CheckedDelivery, DeliveryError, DeliveryLimits, SIGNED_DELIVERY_DOMAIN, SignedDelivery,
};
use kuvert_domain::identity::{OrganisationNumber, RecipientId};
use kuvert_domain::ids::{BatchId, DeliveryId, TenantId};
use kuvert_mailbox::certificate::{
    OperatorCertificate, OperatorFields, SenderKeyCertificate, TrustedRegisters,
};
use kuvert_mailbox::protocol::{HPKE_INFO, SealedContentRef, SealedDelivery};
use kuvert_register::{Register, RegisterError, Route as RegisterRoute};
use kuvert_store::relay::{
    Authority, DeliveryStatus, Intake, NewBatch, NewDelivery, Route, Withdrawn,
};
use kuvert_store::tenants::{SenderKeyRecord, Viewer};
use kuvert_store::{Db, StoreError};
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Notify;

/// Why a delivery was not accepted. Nothing of it was stored.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("{0}")]
    Invalid(#[from] DeliveryError),
    #[error("this credential may not send for sender {0}")]
    SenderNotAllowed(String),
    #[error("the signing key {0:?} is not registered")]
    UnknownKey(String),
    #[error("the signing key {0:?} is not registered for this sender")]
    KeyNotForSender(String),
    #[error("the signing key {0:?} has been revoked")]
    KeyRevoked(String),
    #[error(
        "the signing key {0:?} has no valid register certificate; the platform operator must add it again"
    )]
    KeyNotCertified(String),
    #[error("the signature does not verify over the delivery's canonical form")]
    BadSignature,
    #[error("an idempotency key is required: send an Idempotency-Key header or a header.reference")]
    MissingIdempotencyKey,
    #[error("the idempotency key must be 1 to 255 characters, not only white space")]
    BadIdempotencyKey,
    #[error("the idempotency key was already used for a different delivery ({0})")]
    IdempotencyKeyReused(DeliveryId),
    #[error(
        "this signed delivery was already accepted as delivery {0}; to send the same letter again, sign a new delivery with new message ids"
    )]
    DuplicateDelivery(DeliveryId),
    #[error("the relay cannot seal for the mailbox operator: {0}")]
    Sealing(String),
    #[error(
        "the recipient's mailbox operator {0:?} has no valid register certificate; nothing was sealed to it (the platform operator is alerted)"
    )]
    OperatorNotCertified(String),
    #[error("quota exceeded: {what}")]
    QuotaExceeded {
        what: String,
        retry_after_seconds: u64,
    },
    /// A batch item that is not a readable delivery (its own error; the
    /// other items go on).
    #[error("this item is not a valid delivery: {0}")]
    Unreadable(String),
    /// The credential or tenant stopped being valid while the request was
    /// checked (the deliveries of a key revoked meanwhile get `KeyRevoked`).
    #[error("{0}; nothing was stored")]
    Withdrawn(Withdrawn),
    /// The blocking task that checks a request's shape panicked or was cancelled.
    #[error("the check of the request stopped: {0}")]
    Interrupted(String),
    #[error(transparent)]
    Register(#[from] RegisterError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl IntakeError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(e) => e.code(),
            Self::SenderNotAllowed(_) => "sender_not_allowed",
            Self::UnknownKey(_) => "signature_key_unknown",
            Self::KeyNotForSender(_) => "signature_key_not_for_sender",
            Self::KeyRevoked(_) => "signature_key_revoked",
            Self::KeyNotCertified(_) => "signature_key_not_certified",
            Self::BadSignature => "signature_invalid",
            Self::MissingIdempotencyKey => "idempotency_key_missing",
            Self::BadIdempotencyKey => "idempotency_key_invalid",
            Self::IdempotencyKeyReused(_) => "idempotency_key_reused",
            Self::DuplicateDelivery(_) => "duplicate_delivery",
            Self::Sealing(_) => "sealing_failed",
            Self::OperatorNotCertified(_) => "operator_not_certified",
            Self::QuotaExceeded { .. } => "quota_exceeded",
            Self::Unreadable(_) => "invalid_request",
            Self::Withdrawn(Withdrawn::TenantSuspended) => "tenant_suspended",
            Self::Withdrawn(_) => "credential_revoked",
            Self::Register(_) | Self::Store(_) | Self::Interrupted(_) => "internal",
        }
    }
}

/// Who is submitting: the tenant comes from the credential, never the body.
#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: TenantId,
    /// The credential id, for the audit log.
    pub credential: String,
}

#[derive(Debug, Clone)]
pub struct Submission {
    pub signed: SignedDelivery,
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub delivery_id: DeliveryId,
    pub status: DeliveryStatus,
    /// True when this answers a retry with an idempotency key seen before.
    pub replayed: bool,
}

pub struct Relay {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub register: Arc<Register>,
    pub limits: DeliveryLimits,
    /// Signs seals; its public key is what mailbox operators trust.
    pub seal_key: SigningKey,
    /// The register keys whose certificates this relay accepts for sender
    /// keys and mailbox operators (its own trust anchor, not a database row).
    pub trusted_registers: TrustedRegisters,
    /// Encrypts paper-mail content at rest until the print service takes it.
    pub paper_kek: KeyEncryptionKey,
    /// Wakes the delivery worker when something was queued.
    pub wake: Arc<Notify>,
    /// The quotas of a tenant that set none (decision 0015).
    pub quota_defaults: kuvert_store::quotas::QuotaDefaults,
}

/// What identifies a bulk submission: each item's idempotency key (as
/// given) and signature, in order. The same batch sent again (say, after
/// its answer was lost) has the same fingerprint, and is answered with the
/// first batch id.
fn batch_fingerprint(submissions: &[Result<Submission, IntakeError>]) -> String {
    // An unreadable item counts by its place alone.
    let items: Vec<Option<(Option<&str>, &str)>> = submissions
        .iter()
        .map(|s| {
            s.as_ref().ok().map(|s| {
                (
                    s.idempotency_key.as_deref(),
                    s.signed.signature.value.as_str(),
                )
            })
        })
        .collect();
    sha256_hex(serde_json::json!(items).to_string().as_bytes())
}

/// Senders and keys already looked up in this request: a batch of 10 000
/// from one sender costs two lookups, not 20 000.
#[derive(Default)]
struct Lookups {
    senders: HashMap<String, bool>,
    keys: HashMap<String, Option<SenderKeyRecord>>,
    /// Each key's certificate, checked once per request.
    certificates: HashMap<String, Option<(SenderKeyCertificate, PublicKey)>>,
}

impl Lookups {
    /// Whether the caller's credential may act for `sender`: a sender of
    /// its tenant, not removed, within the credential's scope (one query).
    async fn sender_allowed(
        &mut self,
        db: &Db,
        caller: &Caller,
        sender: &str,
    ) -> Result<bool, StoreError> {
        if let Some(allowed) = self.senders.get(sender) {
            return Ok(*allowed);
        }
        let viewer = Viewer {
            tenant: &caller.tenant,
            credential: &caller.credential,
        };
        let allowed = db.may_act_for(&viewer, sender).await?;
        self.senders.insert(sender.to_owned(), allowed);
        Ok(allowed)
    }

    async fn key(&mut self, db: &Db, key_id: &str) -> Result<Option<SenderKeyRecord>, StoreError> {
        if let Some(key) = self.keys.get(key_id) {
            return Ok(key.clone());
        }
        let key = db.sender_key(key_id).await?;
        self.keys.insert(key_id.to_owned(), key.clone());
        Ok(key)
    }

    /// The key's certificate, if it is by a register this relay trusts and
    /// states exactly this key for this sender: a row a database writer
    /// added or changed has none that verifies.
    fn certified(
        &mut self,
        key: &SenderKeyRecord,
        trusted: &TrustedRegisters,
    ) -> Option<(SenderKeyCertificate, PublicKey)> {
        self.certificates
            .entry(key.key_id.clone())
            .or_insert_with(|| {
                let certificate: SenderKeyCertificate =
                    serde_json::from_str(key.certificate.as_deref()?).ok()?;
                let public_key = certificate.verify(trusted).ok()?;
                (certificate.key_id == key.key_id
                    && certificate.public_key == key.public_key
                    && certificate.sender_id == key.sender_id)
                    .then_some((certificate, public_key))
            })
            .clone()
    }
}

/// A submission whose sender and key check out; its signature is checked
/// with the rest of the request's.
struct Authorized {
    submission: Submission,
    valid: CheckedDelivery,
    /// Carried to the mailbox, which checks it against its own trust anchor.
    certificate: SenderKeyCertificate,
    public_key: PublicKey,
    signature: Signature,
}

/// One HPKE encapsulation per operator and request: the deliveries of a
/// request to one operator share it, each sealed under its own exported key.
/// Keyed by operator id; only an operator whose row a register this relay
/// trusts certified gets one.
struct Sealers(HashMap<String, Result<Sealer, IntakeError>>);

/// Whether the register certified exactly this operator row.
pub fn operator_certified(
    operator: &kuvert_store::register::Operator,
    trusted: &TrustedRegisters,
) -> bool {
    let fields = OperatorFields::from(operator);
    operator
        .certificate
        .as_deref()
        .and_then(|json| serde_json::from_str::<OperatorCertificate>(json).ok())
        .is_some_and(|c| c.verify_for(trusted, fields).is_ok())
}

impl Sealers {
    /// A sealer for every operator the request's deliveries are routed to
    /// (an operator whose key or certificate does not work fails its
    /// deliveries only).
    fn for_routes<'a>(
        routes: impl Iterator<Item = &'a RegisterRoute>,
        trusted: &TrustedRegisters,
    ) -> Self {
        let mut sealers = HashMap::new();
        for route in routes {
            if let RegisterRoute::Mailbox(operator) = route {
                sealers
                    .entry(operator.id.to_string())
                    .or_insert_with(|| {
                        if !operator_certified(operator, trusted) {
                            tracing::error!(
                                operator = %operator.id,
                                "the mailbox operator's row has no valid register certificate: nothing is sealed to it"
                            );
                            return Err(IntakeError::OperatorNotCertified(operator.id.to_string()));
                        }
                        SealingPublicKey::from_base64(&operator.sealing_key)
                            .and_then(|key| Sealer::new(&key, HPKE_INFO))
                            .map_err(|e| IntakeError::Sealing(e.to_string()))
                    });
            }
        }
        Self(sealers)
    }

    fn for_operator(
        &self,
        operator: &kuvert_store::register::Operator,
    ) -> Result<&Sealer, IntakeError> {
        match self.0.get(operator.id.as_str()) {
            Some(Ok(sealer)) => Ok(sealer),
            Some(Err(IntakeError::OperatorNotCertified(id))) => {
                Err(IntakeError::OperatorNotCertified(id.clone()))
            }
            Some(Err(e)) => Err(IntakeError::Sealing(e.to_string())),
            None => Err(IntakeError::Sealing(
                "no sealer for the operator".to_owned(),
            )),
        }
    }
}

/// The fields of a delivery the seal names in the clear.
struct Routing<'a> {
    id: &'a DeliveryId,
    recipient: &'a str,
    sender: &'a str,
    delivery_digest: &'a str,
}

/// The checked deliveries waiting for the transaction: the rows as the
/// store takes them (not copied: each holds a sealed blob), and beside each
/// its place in the request. Each row names the key its signature verified
/// with (`sender_key_id`), checked again when it is stored.
#[derive(Default)]
struct Prepared {
    rows: Vec<NewDelivery>,
    places: Vec<usize>,
}

impl Relay {
    /// Checks every submission, stores the accepted ones in one transaction,
    /// and answers per submission. A `batch` gets a batch id for progress.
    pub async fn submit(
        &self,
        caller: &Caller,
        submissions: Vec<Submission>,
        batch: bool,
    ) -> Result<(Option<BatchId>, Vec<Result<Accepted, IntakeError>>), IntakeError> {
        self.submit_items(caller, submissions.into_iter().map(Ok).collect(), batch)
            .await
    }

    /// [`submit`](Self::submit), with the items a caller could not read
    /// already answered (each keeps its place and counts as rejected).
    pub async fn submit_items(
        &self,
        caller: &Caller,
        submissions: Vec<Result<Submission, IntakeError>>,
        batch: bool,
    ) -> Result<(Option<BatchId>, Vec<Result<Accepted, IntakeError>>), IntakeError> {
        let now = self.clock.now();
        // Quotas first (decision 0015): the request's counts are reserved
        // before any check, seal or insert, or it is refused whole; what
        // was not accepted is given back afterwards.
        let held = self.reserve_quota(caller, &submissions, batch, now).await?;
        let outcome = self.submit_reserved(caller, submissions, batch, now).await;
        let results = outcome.as_ref().ok().map(|(_, results)| results.as_slice());
        self.settle_quota(held, results).await;
        outcome
    }

    /// [`submit`](Self::submit) once the request's quota is reserved.
    async fn submit_reserved(
        &self,
        caller: &Caller,
        submissions: Vec<Result<Submission, IntakeError>>,
        batch: bool,
        now: time::OffsetDateTime,
    ) -> Result<(Option<BatchId>, Vec<Result<Accepted, IntakeError>>), IntakeError> {
        let fingerprint = batch.then(|| batch_fingerprint(&submissions));
        let mut results: Vec<Option<Result<Accepted, IntakeError>>> =
            Vec::with_capacity(submissions.len());
        // Each submission is checked on its own; a bad one is answered and
        // the others go on. Shape and limits first (no database), off the
        // async runtime's threads and on every core: an HTML body is parsed
        // three times and a PDF attachment once, which for a large request
        // would otherwise hold up every other request on that thread...
        let limits = self.limits.clone();
        let today = now.date();
        let validated = tokio::task::spawn_blocking(move || {
            submissions
                .into_par_iter()
                .with_min_len(16)
                .map(|submission| {
                    submission.and_then(|submission| {
                        match submission.signed.delivery.check(&limits, today) {
                            Ok(valid) => Ok((submission, valid)),
                            Err(e) => Err(e.into()),
                        }
                    })
                })
                .collect::<Vec<_>>()
        })
        .await
        .map_err(|e| IntakeError::Interrupted(e.to_string()))?;
        let mut checked = Vec::with_capacity(validated.len());
        for (index, item) in validated.into_iter().enumerate() {
            match item {
                Ok((submission, valid)) => {
                    results.push(None);
                    checked.push((index, submission, valid));
                }
                Err(e) => results.push(Some(Err(e))),
            }
        }
        // ...then the whole request is routed at once, per sender...
        let routes = self.routes(&checked).await?;
        // ...then sender and key, item by item (each looked up once)...
        let mut lookups = Lookups::default();
        let mut authorized = Vec::with_capacity(checked.len());
        for (index, submission, valid) in checked {
            match self
                .authorize(caller, submission, valid, &mut lookups)
                .await
            {
                Ok(item) => authorized.push((index, item)),
                Err(e @ (IntakeError::Store(_) | IntakeError::Register(_))) => return Err(e),
                Err(e) => results[index] = Some(Err(e)),
            }
        }
        // ...then every signature of the request, on every core...
        let items: Vec<(&PublicKey, &[u8], &[u8], &Signature)> = authorized
            .iter()
            .map(|(_, a)| {
                (
                    &a.public_key,
                    SIGNED_DELIVERY_DOMAIN,
                    a.valid.canonical.as_slice(),
                    &a.signature,
                )
            })
            .collect();
        let verified = verify_many(&items);
        drop(items);
        // ...then routing and sealing, on every core, with one key
        // encapsulation per operator for the whole request (decision 0006).
        let sealers = Sealers::for_routes(routes.values(), &self.trusted_registers);
        let finished: Vec<(usize, Result<NewDelivery, IntakeError>)> = authorized
            .into_par_iter()
            .zip(verified)
            .with_min_len(32)
            .map(|((index, item), signature)| {
                let row = match signature {
                    Ok(()) => self.finish(item, &routes, &sealers, now),
                    Err(_) => Err(IntakeError::BadSignature),
                };
                (index, row)
            })
            .collect();
        let mut prepared = Prepared::default();
        for (index, row) in finished {
            match row {
                Ok(row) => {
                    prepared.rows.push(row);
                    prepared.places.push(index);
                }
                Err(e) => results[index] = Some(Err(e)),
            }
        }
        self.store(caller, prepared, results, fingerprint, now)
            .await
    }

    /// Stores the prepared deliveries in one transaction and answers each
    /// submission. Should a key be revoked while the request was checked,
    /// the transaction refuses; its deliveries are answered `KeyRevoked`
    /// and the rest stored (once more, without them).
    async fn store(
        &self,
        caller: &Caller,
        mut prepared: Prepared,
        mut results: Vec<Option<Result<Accepted, IntakeError>>>,
        fingerprint: Option<String>,
        now: time::OffsetDateTime,
    ) -> Result<(Option<BatchId>, Vec<Result<Accepted, IntakeError>>), IntakeError> {
        loop {
            match self
                .store_once(caller, &prepared, &mut results, fingerprint.as_deref(), now)
                .await
            {
                Err(IntakeError::Store(StoreError::Withdrawn(Withdrawn::KeysRevoked(keys)))) => {
                    // Each pass removes at least one key, so this ends.
                    let Prepared { rows, places } = std::mem::take(&mut prepared);
                    for (row, index) in rows.into_iter().zip(places) {
                        if keys.contains(&row.sender_key_id) {
                            results[index] = Some(Err(IntakeError::KeyRevoked(row.sender_key_id)));
                        } else {
                            prepared.rows.push(row);
                            prepared.places.push(index);
                        }
                    }
                }
                Err(IntakeError::Store(StoreError::Withdrawn(withdrawn))) => {
                    return Err(IntakeError::Withdrawn(withdrawn));
                }
                Err(e) => return Err(e),
                Ok(batch_id) => {
                    return Ok((batch_id, results.into_iter().flatten().collect()));
                }
            }
        }
    }

    async fn store_once(
        &self,
        caller: &Caller,
        prepared: &Prepared,
        results: &mut [Option<Result<Accepted, IntakeError>>],
        fingerprint: Option<&str>,
        now: time::OffsetDateTime,
    ) -> Result<Option<BatchId>, IntakeError> {
        let rejected = results.iter().filter(|r| r.is_some()).count();
        let new_batch = fingerprint.map(|fingerprint| NewBatch {
            id: BatchId::new(),
            rejected: i64::try_from(rejected).unwrap_or(i64::MAX),
            fingerprint: fingerprint.to_owned(),
        });
        let rows = &prepared.rows;
        let mut keys: Vec<&str> = rows.iter().map(|row| row.sender_key_id.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        let authority = Authority {
            credential: &caller.credential,
            keys: &keys,
        };
        let mut batch_id = None;
        if !rows.is_empty() || new_batch.is_some() {
            let stored = self
                .db
                .insert_deliveries(&caller.tenant, &authority, new_batch.as_ref(), rows, now)
                .await?;
            batch_id = stored.batch;
            for ((row, index), intake) in rows.iter().zip(&prepared.places).zip(stored.intakes) {
                results[*index] = Some(self.answer(&caller.tenant, row, intake).await);
            }
            if rows
                .iter()
                .any(|r| matches!(r.route, Route::Operator { .. }))
            {
                self.wake.notify_one();
            }
        }
        Ok(batch_id)
    }

    async fn answer(
        &self,
        tenant: &TenantId,
        row: &NewDelivery,
        intake: Intake,
    ) -> Result<Accepted, IntakeError> {
        match intake {
            Intake::Created(id) => Ok(Accepted {
                delivery_id: id,
                status: match row.route {
                    Route::Operator { .. } => DeliveryStatus::Accepted,
                    Route::Paper { .. } => DeliveryStatus::Paper,
                    Route::NotDelivered { .. } => DeliveryStatus::NotDelivered,
                },
                replayed: false,
            }),
            Intake::Existing {
                id,
                same_request: true,
            } => {
                let status = self
                    .db
                    .delivery(tenant, &id)
                    .await?
                    .map_or(DeliveryStatus::Accepted, |d| d.status);
                Ok(Accepted {
                    delivery_id: id,
                    status,
                    replayed: true,
                })
            }
            Intake::Existing {
                id,
                same_request: false,
            } => Err(IntakeError::IdempotencyKeyReused(id)),
            Intake::Duplicate { id } => Err(IntakeError::DuplicateDelivery(id)),
        }
    }

    /// Routes of every checked submission, keyed by (sender, recipient).
    async fn routes(
        &self,
        checked: &[(usize, Submission, CheckedDelivery)],
    ) -> Result<HashMap<(String, String), RegisterRoute>, IntakeError> {
        let mut by_sender: HashMap<&str, (&OrganisationNumber, Vec<RecipientId>)> = HashMap::new();
        for (_, _, valid) in checked {
            by_sender
                .entry(valid.sender.as_str())
                .or_insert_with(|| (&valid.sender, Vec::new()))
                .1
                .push(valid.recipient);
        }
        let mut routes = HashMap::with_capacity(checked.len());
        for (sender, (organisation, recipients)) in by_sender {
            for (recipient, route) in self.register.routes(&recipients, organisation).await? {
                routes.insert((sender.to_owned(), recipient), route);
            }
        }
        Ok(routes)
    }

    /// The sender is one the tenant may send for, and the key is the
    /// sender's, registered and not revoked; the signature is parsed, not yet
    /// checked.
    async fn authorize(
        &self,
        caller: &Caller,
        submission: Submission,
        valid: CheckedDelivery,
        lookups: &mut Lookups,
    ) -> Result<Authorized, IntakeError> {
        let sender = valid.sender.as_str();
        // A sender of another tenant, one removed from this tenant and one
        // outside the credential's scope all get the same answer as one
        // that does not exist.
        if !lookups.sender_allowed(&self.db, caller, sender).await? {
            return Err(IntakeError::SenderNotAllowed(sender.to_owned()));
        }
        let key_id = &submission.signed.signature.key_id;
        let key = lookups
            .key(&self.db, key_id)
            .await?
            .filter(|k| k.tenant_id == caller.tenant)
            .ok_or_else(|| IntakeError::UnknownKey(key_id.clone()))?;
        if key.sender_id != sender {
            return Err(IntakeError::KeyNotForSender(key_id.clone()));
        }
        if key.revoked {
            return Err(IntakeError::KeyRevoked(key_id.clone()));
        }
        let (certificate, public_key) = lookups
            .certified(&key, &self.trusted_registers)
            .ok_or_else(|| IntakeError::KeyNotCertified(key_id.clone()))?;
        let signature = Signature::from_base64(&submission.signed.signature.value)
            .map_err(|_| IntakeError::BadSignature)?;
        Ok(Authorized {
            submission,
            valid,
            certificate,
            public_key,
            signature,
        })
    }

    /// A delivery whose signature verified: its idempotency key, route and
    /// sealed (or paper) form, ready for the transaction.
    fn finish(
        &self,
        item: Authorized,
        routes: &HashMap<(String, String), RegisterRoute>,
        sealers: &Sealers,
        now: time::OffsetDateTime,
    ) -> Result<NewDelivery, IntakeError> {
        let Authorized {
            submission,
            valid:
                CheckedDelivery {
                    recipient,
                    sender,
                    canonical,
                },
            certificate,
            ..
        } = item;
        let signed = submission.signed;
        let delivery = &signed.delivery;
        let sender_key_id = signed.signature.key_id.clone();

        let valid_key = |k: &String| !k.trim().is_empty() && k.len() <= 255;
        let idempotency_key = match submission.idempotency_key {
            Some(key) if valid_key(&key) => key,
            Some(_) => return Err(IntakeError::BadIdempotencyKey),
            None => delivery
                .header
                .reference
                .clone()
                .filter(valid_key)
                .ok_or(IntakeError::MissingIdempotencyKey)?,
        };

        let id = DeliveryId::new();
        // What the sender signed: the request's identity (a retry under the
        // same key must carry it), delivered once whatever idempotency key
        // it comes with, and what the receipt is bound to.
        let delivery_digest = sha256_hex(&canonical);
        let message_ids = delivery
            .messages
            .iter()
            .map(|m| m.header.id.clone())
            .collect();
        let routed = routes
            .get(&(sender.as_str().to_owned(), recipient.as_str().to_owned()))
            .cloned()
            .unwrap_or(RegisterRoute::Unreachable {
                reason: "not_registered",
            });
        let route = match routed {
            RegisterRoute::Mailbox(operator) => {
                let sealed = self.seal(
                    &Routing {
                        id: &id,
                        recipient: recipient.as_str(),
                        sender: sender.as_str(),
                        delivery_digest: &delivery_digest,
                    },
                    &operator,
                    &signed,
                    &certificate,
                    sealers,
                    now,
                )?;
                Route::Operator {
                    operator: operator.id,
                    sealed,
                }
            }
            RegisterRoute::Unreachable { reason } if delivery.paper_fallback => {
                // Bound to its delivery: a wrapped key copied to another
                // paper row does not unwrap there.
                let (data_key, wrapped_key) = self
                    .paper_kek
                    .new_data_key(id.to_string().as_bytes())
                    .map_err(|e| IntakeError::Sealing(e.to_string()))?;
                let json =
                    serde_json::to_vec(&signed).map_err(|e| IntakeError::Sealing(e.to_string()))?;
                let content = data_key
                    .encrypt(id.to_string().as_bytes(), &json)
                    .map_err(|e| IntakeError::Sealing(e.to_string()))?;
                Route::Paper {
                    wrapped_key,
                    content,
                    reason: reason.to_owned(),
                }
            }
            RegisterRoute::Unreachable { reason } => Route::NotDelivered {
                reason: reason.to_owned(),
            },
        };
        Ok(NewDelivery {
            id,
            sender_id: sender.as_str().to_owned(),
            recipient_id: recipient.as_str().to_owned(),
            idempotency_key,
            delivery_digest,
            message_ids,
            sender_key_id,
            route,
        })
    }

    /// Seals for the operator: content HPKE-encrypted to its key with the
    /// routing fields as associated data, and the relay's seal signature.
    fn seal(
        &self,
        routing: &Routing<'_>,
        operator: &kuvert_store::register::Operator,
        signed: &SignedDelivery,
        certificate: &SenderKeyCertificate,
        sealers: &Sealers,
        now: time::OffsetDateTime,
    ) -> Result<Vec<u8>, IntakeError> {
        let content = SealedContentRef {
            signed,
            sender_certificate: certificate,
        };
        let plaintext =
            serde_json::to_vec(&content).map_err(|e| IntakeError::Sealing(e.to_string()))?;
        let mut sealed = SealedDelivery {
            delivery_id: routing.id.to_string(),
            recipient: routing.recipient.to_owned(),
            sender_id: routing.sender.to_owned(),
            operator_id: operator.id.to_string(),
            received_at: format_instant(now),
            relay_key_id: self.seal_key.public_key().key_id(),
            delivery_digest: routing.delivery_digest.to_owned(),
            content_hash: sha256_hex(&plaintext),
            encapsulated_key: String::new(),
            ciphertext: String::new(),
            seal_signature: String::new(),
        };
        let sealed_box = sealers
            .for_operator(operator)?
            .seal(&sealed.seal_bytes(), &plaintext)
            .map_err(|e| IntakeError::Sealing(e.to_string()))?;
        let b64 = base64::engine::general_purpose::STANDARD;
        sealed.encapsulated_key = b64.encode(&sealed_box.encapsulated_key);
        sealed.ciphertext = b64.encode(&sealed_box.ciphertext);
        sealed.sign(&self.seal_key);
        serde_json::to_vec(&sealed).map_err(|e| IntakeError::Sealing(e.to_string()))
    }
}
