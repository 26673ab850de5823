//! The recipient register (förmedlingsadressregister): who is reachable
//! digitally, through which mailbox operator, and whether they accept mail
//! from a given sender.

use kuvert_crypto::digest::Pseudonymizer;
use kuvert_domain::clock::Clock;
use kuvert_domain::identity::{OrganisationNumber, RecipientId};
use kuvert_domain::ids::{OperatorId, TenantId};
use kuvert_store::audit::AuditEntry;
use kuvert_store::register::{Operator, OperatorChange, RecipientStatus};
use kuvert_store::{Db, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use utoipa::ToSchema;

/// At most this many recipients per lookup, as in Mina meddelanden.
pub const MAX_LOOKUP: usize = 1000;
/// The most senders one recipient may refuse (a list the register reads on
/// every lookup for that recipient).
pub const MAX_REFUSED_SENDERS: i64 = 1000;
/// The most senders listed to a recipient to refuse or accept (by name);
/// one further down can still be refused through the API.
pub const MAX_LISTED_SENDERS: i64 = 1000;
/// The age from which a person may hold a mailbox.
pub const MIN_AGE: u32 = 18;

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a lookup holds at most {max} recipients, this one {count}")]
    TooManyRecipients { count: usize, max: usize },
    #[error("a person must be {min} or older to hold a mailbox")]
    TooYoung { min: u32 },
    #[error("unknown mailbox operator")]
    UnknownOperator,
    #[error("the recipient is not registered")]
    NotRegistered,
    /// Over the tenant's lookup quota: nothing was looked up.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(kuvert_store::quotas::Refusal),
}

/// Mina meddelanden's AccountStatus type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountType {
    /// Registered with a secure mailbox.
    Secure,
    /// Not registered (or deregistered).
    Not,
    /// The id given is not a valid identity number.
    Invalid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ServiceSupplier {
    /// The mailbox operator's id; receipts name it as `operator_id`.
    pub id: String,
    pub name: String,
    pub service_address: String,
    pub ui_address: String,
    /// The operator's published keys document (receipt and sealing keys,
    /// current and past), relative to the register's base URL.
    pub keys_url: String,
}

/// The answer for one recipient of a lookup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReachabilityAnswer {
    /// The id as asked.
    pub recipient: String,
    /// Canonical 12-digit form, when the id is valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient_id: Option<String>,
    #[serde(rename = "type")]
    pub account_type: AccountType,
    /// An organisation whose registration awaits more signatories.
    pub pending: bool,
    /// Registered and has not refused this sender: mail can be delivered.
    pub sender_accepted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_supplier: Option<ServiceSupplier>,
    /// Why the id is invalid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Where a delivery for one recipient can go.
#[derive(Debug, Clone)]
pub enum Route {
    Mailbox(Operator),
    Unreachable { reason: &'static str },
}

/// Registers (or updates) a mailbox operator with a certificate by the
/// register's key. A certificate already stored that still states the
/// same values under this key is kept; otherwise a new one is issued. A
/// change of address or keys is audited (by the store) and logged as a
/// warning for the platform operator: it is never taken silently.
pub async fn register_operator(
    db: &Db,
    register_key: &kuvert_crypto::signing::SigningKey,
    mut operator: Operator,
    now: time::OffsetDateTime,
) -> Result<OperatorChange, RegisterError> {
    use kuvert_mailbox::certificate::{OperatorCertificate, OperatorFields, TrustedRegisters};
    let fields = OperatorFields::from(&operator);
    let own = TrustedRegisters::new(vec![register_key.public_key()]);
    let stored = db.operator(&operator.id).await?.and_then(|o| o.certificate);
    let still_valid = stored.as_deref().and_then(|json| {
        serde_json::from_str::<OperatorCertificate>(json)
            .ok()
            .filter(|c| c.verify_for(&own, fields).is_ok())
            .map(|_| json.to_owned())
    });
    let certificate = match still_valid {
        Some(json) => json,
        None => serde_json::to_string(&OperatorCertificate::issue(
            register_key,
            fields,
            &kuvert_domain::clock::format_instant(now),
        ))
        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
    };
    operator.certificate = Some(certificate);
    let change = db.upsert_operator(&operator, now).await?;
    if let OperatorChange::Changed { previous } = &change {
        tracing::warn!(
            operator = %operator.id,
            delivery_url = %operator.delivery_url,
            previous_delivery_url = %previous.delivery_url,
            receipt_key_changed = previous.receipt_key != operator.receipt_key,
            sealing_key_changed = previous.sealing_key != operator.sealing_key,
            "mailbox operator's address or keys changed: certified again and audited (operator.changed)"
        );
    }
    Ok(change)
}

pub struct Register {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub pseudonyms: Arc<Pseudonymizer>,
    /// The lookup quotas of a tenant that set none (decision 0015).
    pub quota_defaults: kuvert_store::quotas::QuotaDefaults,
}

impl Register {
    /// Reachability of up to [`MAX_LOOKUP`] recipients as seen by `sender`.
    /// An invalid id gets its own answer; it does not fail the batch.
    pub async fn lookup(
        &self,
        tenant: &TenantId,
        sender: &OrganisationNumber,
        ids: &[String],
    ) -> Result<Vec<ReachabilityAnswer>, RegisterError> {
        if ids.len() > MAX_LOOKUP {
            return Err(RegisterError::TooManyRecipients {
                count: ids.len(),
                max: MAX_LOOKUP,
            });
        }
        self.meter_lookup(tenant, ids.len()).await?;
        let today = self.clock.today();
        let parsed: Vec<Result<RecipientId, _>> =
            ids.iter().map(|id| RecipientId::parse(id, today)).collect();
        let canonical: Vec<String> = parsed
            .iter()
            .filter_map(|p| p.as_ref().ok().map(|r| r.as_str().to_owned()))
            .collect();
        let found = self.db.reachability(&canonical, sender.as_str()).await?;
        let operators = self.db.operators().await?;
        let answers = ids
            .iter()
            .zip(parsed)
            .map(|(asked, parsed)| match parsed {
                Err(e) => ReachabilityAnswer {
                    recipient: asked.clone(),
                    recipient_id: None,
                    account_type: AccountType::Invalid,
                    pending: false,
                    sender_accepted: false,
                    service_supplier: None,
                    error: Some(e.to_string()),
                },
                Ok(id) => {
                    let entry = found.get(id.as_str());
                    let status = entry.map(|e| e.record.status);
                    let supplier = entry
                        .and_then(|e| e.record.operator.as_ref())
                        .and_then(|op| operators.iter().find(|o| &o.id == op))
                        .filter(|_| status != Some(RecipientStatus::Deregistered))
                        .map(|o| ServiceSupplier {
                            id: o.id.to_string(),
                            name: o.name.clone(),
                            service_address: o.delivery_url.clone(),
                            ui_address: o.ui_url.clone(),
                            keys_url: format!("/register/v1/operators/{}/keys", o.id.as_str()),
                        });
                    let secure = status == Some(RecipientStatus::Registered) && supplier.is_some();
                    ReachabilityAnswer {
                        recipient: asked.clone(),
                        recipient_id: Some(id.as_str().to_owned()),
                        account_type: if secure {
                            AccountType::Secure
                        } else {
                            AccountType::Not
                        },
                        pending: status == Some(RecipientStatus::Pending),
                        sender_accepted: secure && !entry.is_some_and(|e| e.refuses_sender),
                        service_supplier: supplier,
                        error: None,
                    }
                }
            })
            .collect();
        let detail =
            serde_json::json!({ "sender": sender.as_str(), "count": ids.len() }).to_string();
        self.db
            .append_audit(
                self.clock.now(),
                &AuditEntry {
                    tenant: Some(tenant),
                    actor: "sender",
                    action: "register.lookup",
                    subject: sender.as_str(),
                    detail: &detail,
                },
            )
            .await?;
        Ok(answers)
    }

    /// Counts `ids` recipient ids against the tenant's lookup quotas (per
    /// day and per second) before anything is looked up, or refuses: every
    /// id asked counts, an invalid one too, since the answer is per id. A
    /// lookup is never given back: its answer was given.
    async fn meter_lookup(&self, tenant: &TenantId, ids: usize) -> Result<(), RegisterError> {
        use kuvert_store::quotas::{Ask, Bucket, Counter, Dimension};
        let quota = self.db.quota(tenant).await?;
        let limit = |dimension| quota.limit(dimension, &self.quota_defaults);
        let ids = i64::try_from(ids).unwrap_or(i64::MAX);
        let ask = Ask {
            daily: vec![(Counter::LookupIds, ids, limit(Dimension::LookupIdsPerDay))],
            rate: Some((Bucket::LookupIds, ids, limit(Dimension::LookupIdsPerSecond))),
        };
        match self.db.reserve(tenant, self.clock.now(), &ask).await {
            Ok(_) => Ok(()),
            Err(StoreError::QuotaExceeded(refusal)) => Err(RegisterError::QuotaExceeded(refusal)),
            Err(e) => Err(e.into()),
        }
    }

    /// Where deliveries from `sender` to each of `recipients` go, keyed by
    /// canonical recipient id: a few queries for the whole list instead of
    /// several per recipient (a batch of 10 000 is routed in ~20 queries).
    pub async fn routes(
        &self,
        recipients: &[RecipientId],
        sender: &OrganisationNumber,
    ) -> Result<HashMap<String, Route>, RegisterError> {
        let mut routes = HashMap::with_capacity(recipients.len());
        let mut operators: HashMap<OperatorId, Option<Operator>> = HashMap::new();
        let ids: Vec<String> = recipients.iter().map(|r| r.as_str().to_owned()).collect();
        for chunk in ids.chunks(MAX_LOOKUP) {
            let found = self.db.reachability(chunk, sender.as_str()).await?;
            for id in chunk {
                let route = match found.get(id) {
                    None => Route::Unreachable {
                        reason: "not_registered",
                    },
                    Some(entry) if entry.record.status != RecipientStatus::Registered => {
                        Route::Unreachable {
                            reason: "not_registered",
                        }
                    }
                    Some(entry) if entry.refuses_sender => Route::Unreachable {
                        reason: "sender_refused",
                    },
                    Some(entry) => match &entry.record.operator {
                        None => Route::Unreachable {
                            reason: "no_mailbox",
                        },
                        Some(operator_id) => {
                            if !operators.contains_key(operator_id) {
                                let operator = self.db.operator(operator_id).await?;
                                operators.insert(operator_id.clone(), operator);
                            }
                            match operators.get(operator_id) {
                                Some(Some(operator)) => Route::Mailbox(operator.clone()),
                                _ => Route::Unreachable {
                                    reason: "no_mailbox",
                                },
                            }
                        }
                    },
                };
                routes.insert(id.clone(), route);
            }
        }
        Ok(routes)
    }

    /// Registers a recipient with a mailbox operator (accepting digital mail).
    /// An organisation may be registered `pending` until enough signatories
    /// have signed; a person must be of age.
    pub async fn register(
        &self,
        recipient: &RecipientId,
        operator: &OperatorId,
        pending: bool,
    ) -> Result<(), RegisterError> {
        let now = self.clock.now();
        // Judged from the latest possible birth date: a number whose day or
        // month is unknown (a samordningsnummer) is of age only if the
        // latest date it allows is.
        if let RecipientId::Person(person) = recipient
            && !person.certainly_at_least(MIN_AGE, now.date())
        {
            return Err(RegisterError::TooYoung { min: MIN_AGE });
        }
        if self.db.operator(operator).await?.is_none() {
            return Err(RegisterError::UnknownOperator);
        }
        let status = if pending && !recipient.is_person() {
            RecipientStatus::Pending
        } else {
            RecipientStatus::Registered
        };
        let detail =
            serde_json::json!({ "operator": operator.as_str(), "status": status.as_str() });
        let (subject, detail) = self.audit_fields(recipient, &detail);
        self.db
            .set_recipient(
                recipient.as_str(),
                status,
                Some(operator),
                now,
                &entry("register.registered", &subject, &detail),
            )
            .await?;
        Ok(())
    }

    pub async fn deregister(&self, recipient: &RecipientId) -> Result<(), RegisterError> {
        if self.db.recipient(recipient.as_str()).await?.is_none() {
            return Err(RegisterError::NotRegistered);
        }
        let (subject, detail) = self.audit_fields(recipient, &serde_json::json!({}));
        self.db
            .set_recipient(
                recipient.as_str(),
                RecipientStatus::Deregistered,
                None,
                self.clock.now(),
                &entry("register.deregistered", &subject, &detail),
            )
            .await?;
        Ok(())
    }

    /// The mailbox operators a recipient may choose.
    pub async fn operators(&self) -> Result<Vec<Operator>, RegisterError> {
        Ok(self.db.operators().await?)
    }

    /// The senders a recipient may refuse: every sender not removed, by
    /// name, at most [`MAX_LISTED_SENDERS`].
    pub async fn listed_senders(
        &self,
    ) -> Result<Vec<kuvert_store::recipient_settings::ListedSender>, RegisterError> {
        Ok(self.db.listed_senders(MAX_LISTED_SENDERS).await?)
    }

    /// Refuses (or accepts again) digital mail from one sender.
    pub async fn set_sender_refused(
        &self,
        recipient: &RecipientId,
        sender: &OrganisationNumber,
        refuse: bool,
    ) -> Result<(), RegisterError> {
        if self.db.recipient(recipient.as_str()).await?.is_none() {
            return Err(RegisterError::NotRegistered);
        }
        let action = if refuse {
            "register.sender_refused"
        } else {
            "register.sender_accepted"
        };
        let (subject, detail) =
            self.audit_fields(recipient, &serde_json::json!({ "sender": sender.as_str() }));
        self.db
            .set_sender_refused(
                recipient.as_str(),
                sender.as_str(),
                refuse,
                MAX_REFUSED_SENDERS,
                self.clock.now(),
                &entry(action, &subject, &detail),
            )
            .await?;
        Ok(())
    }

    /// The subject and detail of a change's audit entry. The subject is a
    /// keyed pseudonym: the log can be followed per person without holding
    /// identity numbers.
    fn audit_fields(
        &self,
        recipient: &RecipientId,
        detail: &serde_json::Value,
    ) -> (String, String) {
        (
            self.pseudonyms.pseudonym(recipient.as_str()),
            detail.to_string(),
        )
    }
}

/// The audit entry of a recipient's change to their registration.
fn entry<'a>(action: &'a str, subject: &'a str, detail: &'a str) -> AuditEntry<'a> {
    AuditEntry {
        tenant: None,
        actor: "recipient",
        action,
        subject,
        detail,
    }
}
