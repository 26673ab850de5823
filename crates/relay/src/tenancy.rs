//! Managing tenants: what the platform operator does through `kuvert tenant`
//! and the admin API (both call these functions). Every change is audited,
//! in the transaction that makes it.

use kuvert_crypto::digest::{hash_secret, random_token};
use kuvert_crypto::signing::{PublicKey, SigningKey};
use kuvert_domain::clock::{Clock, format_instant};
use kuvert_domain::identity::OrganisationNumber;
use kuvert_domain::ids::TenantId;
use kuvert_mailbox::certificate::{SenderKeyCertificate, SenderKeyRevocation};
use kuvert_store::audit::AuditEntry;
use kuvert_store::tenants::{MAX_CREDENTIAL_SENDERS, NewSenderKey, SenderRemoval, TenantStatus};
use kuvert_store::{Db, StoreError};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no such tenant")]
    UnknownTenant,
    #[error("the sender does not belong to this tenant")]
    UnknownSender,
    #[error("not a valid Ed25519 public key (base64 of 32 bytes)")]
    BadPublicKey,
    #[error(
        "a credential scoped to senders names 1 to {MAX_CREDENTIAL_SENDERS} of them; omit `senders` for every sender of the tenant"
    )]
    BadSenderScope,
    #[error(
        "this sender was removed from a tenant; only the platform operator brings it back, explicitly (reinstate)"
    )]
    SenderRemoved,
    #[error("the sender belongs to a tenant already")]
    SenderTaken,
    #[error("the sender was changed meanwhile (a key was added); try again")]
    SenderChanged,
    #[error("this person already holds the sender role for this sender")]
    AlreadyGranted,
}

/// A new credential; the token is shown once and never stored.
#[derive(Debug, Clone)]
pub struct NewCredential {
    pub id: String,
    /// `kvt_<id>.<secret>`: paste into `Authorization: Bearer …`.
    pub token: String,
}

pub struct Tenancy {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    /// The register's certificate key: a sender key is added with its
    /// certificate, revoked with a signed revocation.
    pub register_key: Arc<SigningKey>,
}

/// The audit entry of a change to `tenant`.
fn entry<'a>(
    tenant: &'a TenantId,
    actor: &'a str,
    action: &'a str,
    subject: &'a str,
) -> AuditEntry<'a> {
    AuditEntry {
        tenant: Some(tenant),
        actor,
        action,
        subject,
        detail: "{}",
    }
}

impl Tenancy {
    async fn existing(&self, tenant: &TenantId) -> Result<(), TenancyError> {
        match self.db.tenant(tenant).await? {
            Some(_) => Ok(()),
            None => Err(TenancyError::UnknownTenant),
        }
    }

    pub async fn create_tenant(
        &self,
        actor: &str,
        id: &TenantId,
        name: &str,
    ) -> Result<(), TenancyError> {
        let audit = entry(id, actor, "tenant.created", id.as_str());
        self.db
            .create_tenant(id, name, self.clock.now(), &audit)
            .await?;
        Ok(())
    }

    pub async fn set_suspended(
        &self,
        actor: &str,
        id: &TenantId,
        suspended: bool,
    ) -> Result<(), TenancyError> {
        let (status, action) = if suspended {
            (TenantStatus::Suspended, "tenant.suspended")
        } else {
            (TenantStatus::Active, "tenant.resumed")
        };
        let audit = entry(id, actor, action, id.as_str());
        self.db
            .set_tenant_status(id, status, self.clock.now(), &audit)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => TenancyError::UnknownTenant,
                e => e.into(),
            })
    }

    /// Replaces the tenant's quota settings (a dimension left at
    /// `Setting::Default` takes the installation's default).
    pub async fn set_quota(
        &self,
        actor: &str,
        id: &TenantId,
        quota: &kuvert_store::quotas::Quota,
    ) -> Result<(), TenancyError> {
        let detail = serde_json::to_string(quota).unwrap_or_default();
        let audit = AuditEntry {
            detail: &detail,
            ..entry(id, actor, "tenant.quota_set", id.as_str())
        };
        self.db
            .set_quota(id, quota, self.clock.now(), &audit)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => TenancyError::UnknownTenant,
                e => e.into(),
            })
    }

    /// A credential for every sender of the tenant.
    pub async fn create_credential(
        &self,
        actor: &str,
        tenant: &TenantId,
        label: &str,
    ) -> Result<NewCredential, TenancyError> {
        self.create_scoped_credential(actor, tenant, label, None)
            .await
    }

    /// A credential that may act only for `senders` (each a sender of the
    /// tenant, not removed), or for all of them with `None`.
    pub async fn create_scoped_credential(
        &self,
        actor: &str,
        tenant: &TenantId,
        label: &str,
        senders: Option<&[OrganisationNumber]>,
    ) -> Result<NewCredential, TenancyError> {
        self.existing(tenant).await?;
        let senders: Option<Vec<String>> = match senders {
            Some(list) if list.is_empty() || list.len() > MAX_CREDENTIAL_SENDERS => {
                return Err(TenancyError::BadSenderScope);
            }
            Some(list) => {
                let mut ids: Vec<String> = list.iter().map(|s| s.as_str().to_owned()).collect();
                ids.sort_unstable();
                ids.dedup();
                Some(ids)
            }
            None => None,
        };
        let id = random_token(9);
        // Ids are base64url; '.' separates id from secret, so it cannot occur in either.
        let id = id.replace(['-', '_'], "x");
        let secret = random_token(32);
        let detail = serde_json::json!({ "senders": senders }).to_string();
        let audit = AuditEntry {
            detail: &detail,
            ..entry(tenant, actor, "credential.created", &id)
        };
        self.db
            .create_credential(
                tenant,
                &id,
                label,
                &hash_secret(&secret),
                senders.as_deref(),
                self.clock.now(),
                &audit,
            )
            .await
            .map_err(|e| match e {
                // The tenant exists: a named sender is not one of its own.
                StoreError::NotFound => TenancyError::UnknownSender,
                e => e.into(),
            })?;
        Ok(NewCredential {
            token: format!("kvt_{id}.{secret}"),
            id,
        })
    }

    pub async fn revoke_credential(
        &self,
        actor: &str,
        tenant: &TenantId,
        id: &str,
    ) -> Result<(), TenancyError> {
        let audit = entry(tenant, actor, "credential.revoked", id);
        self.db
            .revoke_credential(tenant, id, self.clock.now(), &audit)
            .await?;
        Ok(())
    }

    /// Adds a sender the tenant may send for. A sender id that was removed
    /// from a tenant (this one or another) is refused with `SenderRemoved`
    /// unless `reinstate` says the platform operator means to bring it back
    /// (its old history stays with, and hidden from, the tenant that had
    /// it, unless that is this one).
    pub async fn add_sender(
        &self,
        actor: &str,
        tenant: &TenantId,
        sender: &OrganisationNumber,
        name: &str,
        reinstate: bool,
    ) -> Result<(), TenancyError> {
        self.existing(tenant).await?;
        let now = self.clock.now();
        match self.db.sender_placement(sender.as_str()).await? {
            Some(placed) if placed.removed_at.is_some() => {
                if !reinstate {
                    return Err(TenancyError::SenderRemoved);
                }
                let detail =
                    serde_json::json!({ "reinstated": true, "same_tenant": placed.tenant_id == *tenant })
                        .to_string();
                let audit = AuditEntry {
                    detail: &detail,
                    ..entry(tenant, actor, "sender.added", sender.as_str())
                };
                self.db
                    .reinstate_sender(tenant, sender.as_str(), name, now, &audit)
                    .await
                    .map_err(|e| match e {
                        StoreError::NotFound => TenancyError::SenderChanged,
                        e => e.into(),
                    })
            }
            Some(_) => Err(TenancyError::SenderTaken),
            None => {
                let audit = entry(tenant, actor, "sender.added", sender.as_str());
                self.db
                    .create_sender(tenant, sender.as_str(), name, now, &audit)
                    .await
                    .map_err(|e| match e {
                        StoreError::Conflict => TenancyError::SenderTaken,
                        e => e.into(),
                    })
            }
        }
    }

    /// Removes a sender from the tenant: each of its keys is revoked with
    /// the register's signed revocation (returned, for the mailboxes), new
    /// sends as it are refused, and its history is hidden from the tenant's
    /// reads; its rows are kept. Its deliveries still queued are signed by
    /// a key now revoked: the delivery worker ends them (decision 0016).
    pub async fn remove_sender(
        &self,
        actor: &str,
        tenant: &TenantId,
        sender: &OrganisationNumber,
    ) -> Result<Vec<SenderKeyRevocation>, TenancyError> {
        if self.db.sender(tenant, sender.as_str()).await?.is_none() {
            return Err(TenancyError::UnknownSender);
        }
        let now = self.clock.now();
        let at = format_instant(now);
        let mut statements = Vec::new();
        let mut stored = Vec::new();
        for key_id in self
            .db
            .unrevoked_sender_keys(tenant, sender.as_str())
            .await?
        {
            let revocation =
                SenderKeyRevocation::issue(&self.register_key, sender.as_str(), &key_id, &at);
            let json = serde_json::to_string(&revocation)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            stored.push((key_id, json));
            statements.push(revocation);
        }
        let removal = SenderRemoval {
            tenant,
            sender_id: sender.as_str(),
            revocations: &stored,
            actor,
        };
        self.db
            .remove_sender(&removal, now)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => TenancyError::UnknownSender,
                StoreError::Conflict => TenancyError::SenderChanged,
                e => e.into(),
            })?;
        Ok(statements)
    }

    /// Registers a sender's signing key; returns its key id.
    pub async fn add_key(
        &self,
        actor: &str,
        tenant: &TenantId,
        sender: &OrganisationNumber,
        public_key_base64: &str,
    ) -> Result<String, TenancyError> {
        let key =
            PublicKey::from_base64(public_key_base64).map_err(|_| TenancyError::BadPublicKey)?;
        let Some(registered) = self.db.sender(tenant, sender.as_str()).await? else {
            return Err(TenancyError::UnknownSender);
        };
        let now = self.clock.now();
        // The certificate names the sender as registered: what recipients see.
        let certificate = SenderKeyCertificate::issue(
            &self.register_key,
            sender.as_str(),
            &registered.name,
            &key,
            &format_instant(now),
        );
        let certificate =
            serde_json::to_string(&certificate).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let key_id = key.key_id();
        let audit = entry(tenant, actor, "key.added", &key_id);
        let public_key = key.to_base64();
        let new_key = NewSenderKey {
            tenant,
            sender_id: sender.as_str(),
            key_id: &key_id,
            public_key: &public_key,
            certificate: &certificate,
        };
        self.db.add_sender_key(&new_key, now, &audit).await?;
        Ok(key_id)
    }

    /// Revokes a sender key; returns the register's signed revocation, for
    /// the mailbox operators (who also fetch every revocation from the
    /// register).
    pub async fn revoke_key(
        &self,
        actor: &str,
        tenant: &TenantId,
        key_id: &str,
    ) -> Result<SenderKeyRevocation, TenancyError> {
        let record = self
            .db
            .sender_key(key_id)
            .await?
            .filter(|k| k.tenant_id == *tenant && !k.revoked)
            .ok_or(StoreError::NotFound)?;
        let now = self.clock.now();
        let revocation = SenderKeyRevocation::issue(
            &self.register_key,
            &record.sender_id,
            key_id,
            &format_instant(now),
        );
        let json =
            serde_json::to_string(&revocation).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let audit = entry(tenant, actor, "key.revoked", key_id);
        self.db
            .revoke_sender_key(tenant, key_id, &json, now, &audit)
            .await?;
        Ok(revocation)
    }
}
