//! Sending by hand from the web (decision 0020): the platform operator
//! grants a person the sender role for one sender and gives the sender a
//! web sending key; the sender pages then sign with that key and submit
//! through [`Relay::submit`], the intake the sender API calls, as the
//! grant's credential. Nothing here checks a signature or a sender of its
//! own: the relay does, exactly as for an API delivery.

use crate::compose;
use crate::intake::{Accepted, Caller, IntakeError, Relay, Submission};
use crate::tenancy::{Tenancy, TenancyError};
use kuvert_crypto::CryptoError;
use kuvert_crypto::at_rest::KeyEncryptionKey;
use kuvert_crypto::digest::{hash_secret, random_token};
use kuvert_crypto::signing::SigningKey;
use kuvert_domain::clock::format_instant;
use kuvert_domain::delivery::SecureDelivery;
use kuvert_domain::identity::{OrganisationNumber, PersonalIdentityNumber};
use kuvert_domain::ids::TenantId;
use kuvert_mailbox::certificate::SenderKeyCertificate;
use kuvert_store::StoreError;
use kuvert_store::audit::AuditEntry;
use kuvert_store::tenants::NewSenderKey;
use kuvert_store::web_senders::{NewWebKey, NewWebSenderGrant, StoredWebKey, WebSenderGrant};

/// The label of a grant's backing credential (`kuvert tenant show` lists it).
pub const GRANT_CREDENTIAL_LABEL: &str = "web sender (e-ID)";

/// Why a web send did not happen. Nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum WebSendError {
    #[error(
        "the sender has no web sending key; the platform operator creates one (`kuvert tenant web-key create`)"
    )]
    NoKey,
    #[error("the web sending key cannot be opened: {0}")]
    KeyUnreadable(#[from] CryptoError),
    #[error(transparent)]
    Intake(#[from] IntakeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The context a web key's data key is wrapped under and its private half
/// encrypted with: the key id, which names this one key.
fn key_context(key_id: &str) -> Vec<u8> {
    format!("kuvert/web-sender-key/v1:{key_id}").into_bytes()
}

/// Opens a stored web sending key with the installation's web-sender KEK.
pub fn open_web_key(
    kek: &KeyEncryptionKey,
    stored: &StoredWebKey,
) -> Result<SigningKey, CryptoError> {
    let context = key_context(&stored.key_id);
    let data_key = kek.unwrap_data_key(&context, &stored.wrapped_key)?;
    let secret = zeroize::Zeroizing::new(data_key.decrypt(&context, &stored.private_key)?);
    let bytes: &[u8; 32] = secret
        .as_slice()
        .try_into()
        .map_err(|_| CryptoError::Malformed("web sending key length"))?;
    let key = SigningKey::from_bytes(bytes);
    // A row whose private half was swapped for another key's is refused:
    // the relay would refuse its signature anyway, but say why here.
    if key.public_key().key_id() != stored.key_id {
        return Err(CryptoError::Malformed(
            "web sending key does not match its id",
        ));
    }
    Ok(key)
}

impl Tenancy {
    /// Grants `person` the sender role for `sender` of `tenant`; returns the
    /// grant's id (its credential's). The audit entry names the grant and
    /// the person's pseudonym (never the number), so the log ties each
    /// delivery the grant's credential sends to the person.
    pub async fn grant_web_sender(
        &self,
        actor: &str,
        tenant: &TenantId,
        sender: &OrganisationNumber,
        person: &PersonalIdentityNumber,
        person_pseudonym: &str,
    ) -> Result<String, TenancyError> {
        if self.db.tenant(tenant).await?.is_none() {
            return Err(TenancyError::UnknownTenant);
        }
        // Like an API credential's id: base64url without '-' and '_'.
        let id = format!("web{}", random_token(9).replace(['-', '_'], "x"));
        let secret = random_token(32);
        let detail = serde_json::json!({
            "sender": sender.as_str(),
            "person": person_pseudonym,
        })
        .to_string();
        let audit = AuditEntry {
            tenant: Some(tenant),
            actor,
            action: "web_sender.granted",
            subject: &id,
            detail: &detail,
        };
        let grant = NewWebSenderGrant {
            tenant,
            sender_id: sender.as_str(),
            person: person.as_str(),
            credential_id: &id,
            secret_hash: &hash_secret(&secret),
        };
        self.db
            .grant_web_sender(&grant, GRANT_CREDENTIAL_LABEL, self.clock.now(), &audit)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => TenancyError::UnknownSender,
                StoreError::Conflict => TenancyError::AlreadyGranted,
                e => e.into(),
            })?;
        Ok(id)
    }

    /// Revokes a grant (by its id): the person's next request is refused.
    pub async fn revoke_web_sender(
        &self,
        actor: &str,
        tenant: &TenantId,
        grant: &str,
    ) -> Result<(), TenancyError> {
        let audit = AuditEntry {
            tenant: Some(tenant),
            actor,
            action: "web_sender.revoked",
            subject: grant,
            detail: "{}",
        };
        self.db
            .revoke_web_sender(tenant, grant, self.clock.now(), &audit)
            .await?;
        Ok(())
    }

    /// Generates the sender's web sending key: an Ed25519 key pair whose
    /// public half is registered as a sender key with the register's
    /// certificate (decision 0009, like any other) and whose private half
    /// is stored encrypted under `kek`. Returns the key id. An older web key
    /// of the sender stays valid until revoked (`kuvert tenant key revoke`);
    /// the newest is the one used.
    pub async fn create_web_key(
        &self,
        actor: &str,
        tenant: &TenantId,
        sender: &OrganisationNumber,
        kek: &KeyEncryptionKey,
    ) -> Result<String, TenancyError> {
        let Some(registered) = self.db.sender(tenant, sender.as_str()).await? else {
            return Err(TenancyError::UnknownSender);
        };
        let key = SigningKey::generate();
        let public = key.public_key();
        let key_id = public.key_id();
        let now = self.clock.now();
        let certificate = SenderKeyCertificate::issue(
            &self.register_key,
            sender.as_str(),
            &registered.name,
            &public,
            &format_instant(now),
        );
        let certificate =
            serde_json::to_string(&certificate).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let context = key_context(&key_id);
        let seal = |e: CryptoError| StoreError::Corrupt(format!("sealing the web key: {e}"));
        let (data_key, wrapped_key) = kek.new_data_key(&context).map_err(seal)?;
        let private_key = data_key
            .encrypt(&context, key.to_bytes().as_slice())
            .map_err(seal)?;
        let public_key = public.to_base64();
        let detail = serde_json::json!({ "sender": sender.as_str(), "web": true }).to_string();
        let audit = AuditEntry {
            tenant: Some(tenant),
            actor,
            action: "key.added",
            subject: &key_id,
            detail: &detail,
        };
        let new_key = NewWebKey {
            sender_key: NewSenderKey {
                tenant,
                sender_id: sender.as_str(),
                key_id: &key_id,
                public_key: &public_key,
                certificate: &certificate,
            },
            wrapped_key: &wrapped_key,
            private_key: &private_key,
        };
        self.db.add_web_sender_key(&new_key, now, &audit).await?;
        Ok(key_id)
    }
}

impl Relay {
    /// Signs `delivery` with the sender's web sending key and submits it
    /// through [`Relay::submit`] as the grant's credential: the same
    /// checks (sender scope, key certified and not revoked, signature,
    /// quotas, authority at commit) and the same audit entries as an API
    /// delivery. `idempotency_key` makes a form sent twice one delivery.
    pub async fn submit_by_hand(
        &self,
        grant: &WebSenderGrant,
        kek: &KeyEncryptionKey,
        delivery: SecureDelivery,
        idempotency_key: String,
    ) -> Result<Accepted, WebSendError> {
        let stored = self
            .db
            .web_sender_key(&grant.tenant_id, &grant.sender_id)
            .await?
            .ok_or(WebSendError::NoKey)?;
        let key = open_web_key(kek, &stored)?;
        let signed = compose::sign(delivery, &key);
        let caller = Caller {
            tenant: grant.tenant_id.clone(),
            credential: grant.credential_id.clone(),
        };
        let (_, mut results) = self
            .submit(
                &caller,
                vec![Submission {
                    signed,
                    idempotency_key: Some(idempotency_key),
                }],
                false,
            )
            .await?;
        let answer = results
            .pop()
            .ok_or_else(|| IntakeError::Interrupted("no answer for the delivery".to_owned()))?;
        Ok(answer?)
    }
}
