//! Tenants, their API credentials, senders and signing keys. Every query on
//! tenant data takes the caller's `TenantId` first and filters by it. Every
//! change takes its audit entry and writes both in one transaction.

use crate::audit::{AuditChain, AuditEntry};
use crate::{
    Db, Result, StoreError, commit_audited, format_instant, inserted_once, instant, opt_instant,
    updated_one,
};
use kuvert_domain::ids::TenantId;
use sqlx::Row;
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantStatus {
    Active,
    Suspended,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }
    fn parse(s: &str) -> Result<Self> {
        match s {
            "active" => Ok(Self::Active),
            "suspended" => Ok(Self::Suspended),
            other => Err(StoreError::Corrupt(format!("tenant status {other:?}"))),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub status: TenantStatus,
    pub created_at: OffsetDateTime,
}

/// What authenticating a credential needs: the stored hash and who it is.
#[derive(Debug, Clone)]
pub struct CredentialRecord {
    pub id: String,
    pub tenant_id: TenantId,
    pub secret_hash: Vec<u8>,
    pub revoked: bool,
    pub tenant_status: TenantStatus,
    /// False for a credential scoped to named senders.
    pub all_senders: bool,
}

#[derive(Debug, Clone)]
pub struct CredentialInfo {
    pub id: String,
    pub label: String,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    /// The senders it may act for; `None` is every sender of the tenant.
    pub senders: Option<Vec<String>>,
}

/// A credential reading its tenant's deliveries. It sees those of the
/// senders it may act for that are still the tenant's: a removed sender's
/// history is hidden from the tenant, not deleted. Every sender-side read of
/// deliveries, status events, batches and statistics filters by it in SQL.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    pub tenant: &'a TenantId,
    pub credential: &'a str,
}

/// The ids of the senders a [`Viewer`] sees, as a subquery; binds the
/// credential, then the tenant. It does not refer to the outer query, so
/// SQLite evaluates it once per statement.
pub(crate) const VISIBLE_SENDERS: &str = "SELECT s.id FROM senders s
      JOIN credentials c ON c.tenant_id = s.tenant_id
     WHERE c.id = ? AND s.tenant_id = ? AND s.removed_at IS NULL
       AND (c.all_senders = 1
            OR s.id IN (SELECT cs.sender_id FROM credential_senders cs WHERE cs.credential_id = c.id))";

/// At most this many named senders per credential; a förmedlare with more
/// gives the credential every sender (the default).
pub const MAX_CREDENTIAL_SENDERS: usize = 100;

#[derive(Debug, Clone)]
pub struct SenderKeyRecord {
    pub key_id: String,
    pub tenant_id: TenantId,
    pub sender_id: String,
    pub public_key: String,
    pub revoked: bool,
    /// The register's certificate (JSON `SenderKeyCertificate`); keys added
    /// before certificates existed have none and are refused.
    pub certificate: Option<String>,
}

/// A sender's signing key as the platform operator adds it.
#[derive(Debug, Clone, Copy)]
pub struct NewSenderKey<'a> {
    pub tenant: &'a TenantId,
    pub sender_id: &'a str,
    pub key_id: &'a str,
    pub public_key: &'a str,
    /// The register's certificate (JSON `SenderKeyCertificate`).
    pub certificate: &'a str,
}

#[derive(Debug, Clone)]
pub struct Sender {
    pub id: String,
    pub name: String,
    /// When it was removed from the tenant; its rows are kept.
    pub removed_at: Option<OffsetDateTime>,
}

/// Where a sender id stands, whichever tenant has it.
#[derive(Debug, Clone)]
pub struct SenderPlacement {
    pub tenant_id: TenantId,
    pub removed_at: Option<OffsetDateTime>,
}

/// A sender's removal: its unrevoked keys, each with the register's signed
/// revocation statement (JSON `SenderKeyRevocation`).
#[derive(Debug, Clone, Copy)]
pub struct SenderRemoval<'a> {
    pub tenant: &'a TenantId,
    pub sender_id: &'a str,
    /// (key id, revocation JSON) of every key not yet revoked.
    pub revocations: &'a [(String, String)],
    pub actor: &'a str,
}

fn sender_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Sender> {
    Ok(Sender {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        removed_at: opt_instant(row, "removed_at")?,
    })
}

fn tenant_id(row: &sqlx::sqlite::SqliteRow, column: &str) -> Result<TenantId> {
    let text: String = row.try_get(column)?;
    TenantId::parse(&text).map_err(|_| StoreError::Corrupt("tenant id".into()))
}

impl Db {
    pub async fn create_tenant(
        &self,
        id: &TenantId,
        name: &str,
        now: OffsetDateTime,
        audit: &AuditEntry<'_>,
    ) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        inserted_once(
            sqlx::query(
                "INSERT INTO tenants (id, name, status, created_at) VALUES (?, ?, 'active', ?)",
            )
            .bind(id.as_str())
            .bind(name)
            .bind(format_instant(now))
            .execute(&mut *tx)
            .await,
        )?;
        commit_audited(tx, now, audit).await
    }

    pub async fn tenant(&self, id: &TenantId) -> Result<Option<Tenant>> {
        let row = sqlx::query("SELECT id, name, status, created_at FROM tenants WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(self.reader())
            .await?;
        row.map(|row| tenant_from_row(&row)).transpose()
    }

    pub async fn tenants(&self) -> Result<Vec<Tenant>> {
        sqlx::query("SELECT id, name, status, created_at FROM tenants ORDER BY id")
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(tenant_from_row)
            .collect()
    }

    pub async fn set_tenant_status(
        &self,
        id: &TenantId,
        status: TenantStatus,
        now: OffsetDateTime,
        audit: &AuditEntry<'_>,
    ) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        updated_one(
            sqlx::query("UPDATE tenants SET status = ? WHERE id = ?")
                .bind(status.as_str())
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?,
        )?;
        commit_audited(tx, now, audit).await
    }

    /// Stores a credential. `senders` names the only senders it may act
    /// for (`None`: all of the tenant's); each must be a sender of the
    /// tenant, not removed, checked in the transaction (else `NotFound`,
    /// nothing stored).
    #[allow(clippy::too_many_arguments)]
    pub async fn create_credential(
        &self,
        tenant: &TenantId,
        id: &str,
        label: &str,
        secret_hash: &[u8],
        senders: Option<&[String]>,
        now: OffsetDateTime,
        audit: &AuditEntry<'_>,
    ) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        sqlx::query(
            "INSERT INTO credentials (id, tenant_id, label, secret_hash, created_at, all_senders) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(tenant.as_str())
        .bind(label)
        .bind(secret_hash)
        .bind(format_instant(now))
        .bind(senders.is_none())
        .execute(&mut *tx)
        .await?;
        let named: std::collections::BTreeSet<&String> =
            senders.unwrap_or_default().iter().collect();
        for sender in named {
            updated_one(
                sqlx::query(
                    "INSERT INTO credential_senders (credential_id, sender_id)
                     SELECT ?, id FROM senders WHERE id = ? AND tenant_id = ? AND removed_at IS NULL",
                )
                .bind(id)
                .bind(sender)
                .bind(tenant.as_str())
                .execute(&mut *tx)
                .await?,
            )?;
        }
        commit_audited(tx, now, audit).await
    }

    /// Looks a credential up by its public id, for authentication. Read from
    /// the writer so that a revocation is seen by the very next request.
    pub async fn credential(&self, id: &str) -> Result<Option<CredentialRecord>> {
        let row = sqlx::query(
            "SELECT c.id, c.tenant_id, c.secret_hash, c.revoked_at, c.all_senders, t.status
             FROM credentials c JOIN tenants t ON t.id = c.tenant_id WHERE c.id = ?",
        )
        .bind(id)
        .fetch_optional(self.reader())
        .await?;
        row.map(|row| {
            Ok(CredentialRecord {
                id: row.try_get("id")?,
                tenant_id: tenant_id(&row, "tenant_id")?,
                secret_hash: row.try_get("secret_hash")?,
                revoked: row.try_get::<Option<String>, _>("revoked_at")?.is_some(),
                tenant_status: TenantStatus::parse(&row.try_get::<String, _>("status")?)?,
                all_senders: row.try_get("all_senders")?,
            })
        })
        .transpose()
    }

    /// A tenant's credentials, oldest first, each with its sender scope.
    pub async fn credentials(&self, tenant: &TenantId) -> Result<Vec<CredentialInfo>> {
        // One query: the named senders come as a JSON list per credential.
        sqlx::query(
            "SELECT c.id, c.label, c.created_at, c.revoked_at, c.all_senders,
                    (SELECT json_group_array(sender_id) FROM
                        (SELECT sender_id FROM credential_senders WHERE credential_id = c.id ORDER BY sender_id)) AS senders
             FROM credentials c WHERE c.tenant_id = ? ORDER BY c.created_at, c.id",
        )
        .bind(tenant.as_str())
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|row| {
            let senders = if row.try_get::<bool, _>("all_senders")? {
                None
            } else {
                let json: String = row.try_get("senders")?;
                Some(
                    serde_json::from_str(&json)
                        .map_err(|e| StoreError::Corrupt(format!("credential senders: {e}")))?,
                )
            };
            Ok(CredentialInfo {
                id: row.try_get("id")?,
                label: row.try_get("label")?,
                created_at: instant(row, "created_at")?,
                revoked_at: opt_instant(row, "revoked_at")?,
                senders,
            })
        })
        .collect()
    }

    /// Whether the credential may act for `sender`: a sender of its tenant,
    /// not removed, and named by the credential unless it has all senders.
    pub async fn may_act_for(&self, viewer: &Viewer<'_>, sender: &str) -> Result<bool> {
        let sql = format!("SELECT ? IN ({VISIBLE_SENDERS})");
        Ok(sqlx::query_scalar(&sql)
            .bind(sender)
            .bind(viewer.credential)
            .bind(viewer.tenant.as_str())
            .fetch_one(self.reader())
            .await?)
    }

    pub async fn revoke_credential(
        &self,
        tenant: &TenantId,
        id: &str,
        now: OffsetDateTime,
        audit: &AuditEntry<'_>,
    ) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        updated_one(sqlx::query(
            "UPDATE credentials SET revoked_at = ? WHERE id = ? AND tenant_id = ? AND revoked_at IS NULL",
        )
        .bind(format_instant(now))
        .bind(id)
        .bind(tenant.as_str())
        .execute(&mut *tx)
        .await?)?;
        commit_audited(tx, now, audit).await
    }

    pub async fn create_sender(
        &self,
        tenant: &TenantId,
        sender_id: &str,
        name: &str,
        now: OffsetDateTime,
        audit: &AuditEntry<'_>,
    ) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        inserted_once(
            sqlx::query(
                "INSERT INTO senders (id, tenant_id, name, created_at) VALUES (?, ?, ?, ?)",
            )
            .bind(sender_id)
            .bind(tenant.as_str())
            .bind(name)
            .bind(format_instant(now))
            .execute(&mut *tx)
            .await,
        )?;
        commit_audited(tx, now, audit).await
    }

    /// The sender, if it belongs to this tenant and was not removed.
    pub async fn sender(&self, tenant: &TenantId, sender_id: &str) -> Result<Option<Sender>> {
        let row = sqlx::query(
            "SELECT id, name, removed_at FROM senders WHERE id = ? AND tenant_id = ? AND removed_at IS NULL",
        )
        .bind(sender_id)
        .bind(tenant.as_str())
        .fetch_optional(self.reader())
        .await?;
        row.map(|row| sender_from_row(&row)).transpose()
    }

    /// The tenant's senders, removed ones included (with `removed_at`).
    pub async fn senders(&self, tenant: &TenantId) -> Result<Vec<Sender>> {
        sqlx::query("SELECT id, name, removed_at FROM senders WHERE tenant_id = ? ORDER BY id")
            .bind(tenant.as_str())
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(sender_from_row)
            .collect()
    }

    /// Which tenant has a sender id, and whether it was removed there.
    pub async fn sender_placement(&self, sender_id: &str) -> Result<Option<SenderPlacement>> {
        let row = sqlx::query("SELECT tenant_id, removed_at FROM senders WHERE id = ?")
            .bind(sender_id)
            .fetch_optional(self.writer())
            .await?;
        row.map(|row| {
            Ok(SenderPlacement {
                tenant_id: tenant_id(&row, "tenant_id")?,
                removed_at: opt_instant(&row, "removed_at")?,
            })
        })
        .transpose()
    }

    /// The ids of a sender's keys not yet revoked.
    pub async fn unrevoked_sender_keys(
        &self,
        tenant: &TenantId,
        sender_id: &str,
    ) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT key_id FROM sender_keys WHERE tenant_id = ? AND sender_id = ? AND revoked_at IS NULL ORDER BY key_id",
        )
        .bind(tenant.as_str())
        .bind(sender_id)
        .fetch_all(self.writer())
        .await?)
    }

    /// Removes a sender from its tenant in one transaction: the sender is
    /// marked removed (its rows stay, for evidence), each of its keys is
    /// revoked with its signed revocation, and the audit entries
    /// (`sender.removed`, one `key.revoked` per key) are appended. `NotFound`
    /// when the sender is not an active sender of the tenant; `Conflict`
    /// when a key was added meanwhile (nothing changed: ask again).
    pub async fn remove_sender(
        &self,
        removal: &SenderRemoval<'_>,
        now: OffsetDateTime,
    ) -> Result<()> {
        let at = format_instant(now);
        let tenant = removal.tenant;
        let mut tx = self.writer().begin().await?;
        updated_one(
            sqlx::query(
                "UPDATE senders SET removed_at = ? WHERE id = ? AND tenant_id = ? AND removed_at IS NULL",
            )
            .bind(&at)
            .bind(removal.sender_id)
            .bind(tenant.as_str())
            .execute(&mut *tx)
            .await?,
        )?;
        for (key_id, revocation) in removal.revocations {
            updated_one(
                sqlx::query(
                    "UPDATE sender_keys SET revoked_at = ?, revocation = ?
                     WHERE key_id = ? AND tenant_id = ? AND sender_id = ? AND revoked_at IS NULL",
                )
                .bind(&at)
                .bind(revocation)
                .bind(key_id)
                .bind(tenant.as_str())
                .bind(removal.sender_id)
                .execute(&mut *tx)
                .await?,
            )
            .map_err(|_| StoreError::Conflict)?;
        }
        let left: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sender_keys WHERE sender_id = ? AND revoked_at IS NULL",
        )
        .bind(removal.sender_id)
        .fetch_one(&mut *tx)
        .await?;
        if left > 0 {
            tx.rollback().await?;
            return Err(StoreError::Conflict);
        }
        let key_ids: Vec<&str> = removal
            .revocations
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        let detail = serde_json::json!({ "revoked_keys": key_ids }).to_string();
        let mut chain = AuditChain::head(&mut tx).await?;
        chain.push(
            now,
            &AuditEntry {
                tenant: Some(tenant),
                actor: removal.actor,
                action: "sender.removed",
                subject: removal.sender_id,
                detail: &detail,
            },
        );
        for key_id in &key_ids {
            chain.push(
                now,
                &AuditEntry {
                    tenant: Some(tenant),
                    actor: removal.actor,
                    action: "key.revoked",
                    subject: key_id,
                    detail: r#"{"reason":"sender_removed"}"#,
                },
            );
        }
        chain.flush(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Brings a removed sender back, under `tenant` (its old one or
    /// another): the platform operator's explicit act. Its old keys stay
    /// revoked and its old deliveries stay with the tenant that sent them.
    /// `NotFound` unless the sender exists and is removed.
    pub async fn reinstate_sender(
        &self,
        tenant: &TenantId,
        sender_id: &str,
        name: &str,
        now: OffsetDateTime,
        audit: &AuditEntry<'_>,
    ) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        updated_one(
            sqlx::query(
                "UPDATE senders SET tenant_id = ?, name = ?, removed_at = NULL WHERE id = ? AND removed_at IS NOT NULL",
            )
            .bind(tenant.as_str())
            .bind(name)
            .bind(sender_id)
            .execute(&mut *tx)
            .await?,
        )?;
        commit_audited(tx, now, audit).await
    }

    pub async fn add_sender_key(
        &self,
        key: &NewSenderKey<'_>,
        now: OffsetDateTime,
        audit: &AuditEntry<'_>,
    ) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        inserted_once(
            sqlx::query(
            "INSERT INTO sender_keys (key_id, tenant_id, sender_id, public_key, certificate, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(key.key_id)
        .bind(key.tenant.as_str())
        .bind(key.sender_id)
        .bind(key.public_key)
        .bind(key.certificate)
        .bind(format_instant(now))
        .execute(&mut *tx)
        .await,
        )?;
        commit_audited(tx, now, audit).await
    }

    /// Revokes a key, keeping the register's signed revocation statement
    /// (JSON `SenderKeyRevocation`) for the mailboxes that fetch it.
    pub async fn revoke_sender_key(
        &self,
        tenant: &TenantId,
        key_id: &str,
        revocation: &str,
        now: OffsetDateTime,
        audit: &AuditEntry<'_>,
    ) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        updated_one(sqlx::query(
            "UPDATE sender_keys SET revoked_at = ?, revocation = ? WHERE key_id = ? AND tenant_id = ? AND revoked_at IS NULL",
        )
        .bind(format_instant(now))
        .bind(revocation)
        .bind(key_id)
        .bind(tenant.as_str())
        .execute(&mut *tx)
        .await?)?;
        commit_audited(tx, now, audit).await
    }

    /// A signing key, read from the writer so revocation applies at once.
    pub async fn sender_key(&self, key_id: &str) -> Result<Option<SenderKeyRecord>> {
        let row = sqlx::query(
            "SELECT key_id, tenant_id, sender_id, public_key, revoked_at, certificate FROM sender_keys WHERE key_id = ?",
        )
        .bind(key_id)
        .fetch_optional(self.reader())
        .await?;
        row.map(|row| {
            Ok(SenderKeyRecord {
                key_id: row.try_get("key_id")?,
                tenant_id: tenant_id(&row, "tenant_id")?,
                sender_id: row.try_get("sender_id")?,
                public_key: row.try_get("public_key")?,
                revoked: row.try_get::<Option<String>, _>("revoked_at")?.is_some(),
                certificate: row.try_get("certificate")?,
            })
        })
        .transpose()
    }

    /// Every signed revocation statement, oldest first: what mailboxes
    /// fetch to learn of revoked sender keys.
    pub async fn sender_key_revocations(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT revocation FROM sender_keys WHERE revocation IS NOT NULL ORDER BY revoked_at, key_id",
        )
        .fetch_all(self.reader())
        .await?)
    }

    /// A sender's key certificates and, for revoked keys, the revocation
    /// statements (JSON), oldest first: public, for anyone to check.
    pub async fn sender_certificates(
        &self,
        sender_id: &str,
    ) -> Result<Vec<(String, Option<String>)>> {
        sqlx::query(
            "SELECT certificate, revocation FROM sender_keys
             WHERE sender_id = ? AND certificate IS NOT NULL ORDER BY created_at, key_id",
        )
        .bind(sender_id)
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
    }
}

fn tenant_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<Tenant> {
    Ok(Tenant {
        id: tenant_id(row, "id")?,
        name: row.try_get("name")?,
        status: TenantStatus::parse(&row.try_get::<String, _>("status")?)?,
        created_at: instant(row, "created_at")?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::{NewSenderKey, SenderRemoval, Viewer};
    use crate::audit::AuditEntry;
    use crate::{Db, Schema, StoreError};
    use kuvert_domain::ids::TenantId;
    use time::OffsetDateTime;

    fn entry(tenant: &TenantId) -> AuditEntry<'_> {
        AuditEntry {
            tenant: Some(tenant),
            actor: "test",
            action: "test",
            subject: "test",
            detail: "{}",
        }
    }

    /// A removal that does not name every unrevoked key (one was added
    /// after the keys were read) changes nothing, and a named sender must be
    /// the tenant's own and not removed.
    #[tokio::test]
    async fn a_removal_is_whole_and_a_scope_names_only_active_senders() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("kuvert.db"), Schema::Core)
            .await
            .unwrap();
        let now = OffsetDateTime::UNIX_EPOCH;
        let tenant = TenantId::parse("formedlare").unwrap();
        let other = TenantId::parse("annan").unwrap();
        for t in [&tenant, &other] {
            db.create_tenant(t, "T", now, &entry(t)).await.unwrap();
        }
        db.create_sender(&tenant, "162021000001", "A", now, &entry(&tenant))
            .await
            .unwrap();
        db.create_sender(&other, "162021000002", "B", now, &entry(&other))
            .await
            .unwrap();
        let key = NewSenderKey {
            tenant: &tenant,
            sender_id: "162021000001",
            key_id: "ed25519:k1",
            public_key: "pk",
            certificate: "{}",
        };
        db.add_sender_key(&key, now, &entry(&tenant)).await.unwrap();
        let removal = SenderRemoval {
            tenant: &tenant,
            sender_id: "162021000001",
            revocations: &[],
            actor: "test",
        };
        let before = db.audit_entries(None, 0, 1000).await.unwrap().len();
        assert!(matches!(
            db.remove_sender(&removal, now).await,
            Err(StoreError::Conflict)
        ));
        assert!(db.sender(&tenant, "162021000001").await.unwrap().is_some());
        assert_eq!(db.audit_entries(None, 0, 1000).await.unwrap().len(), before);

        // Another tenant's sender cannot be named; nothing is stored.
        let named = ["162021000002".to_owned()];
        let refused = db
            .create_credential(&tenant, "c1", "x", b"h", Some(&named), now, &entry(&tenant))
            .await;
        assert!(matches!(refused, Err(StoreError::NotFound)), "{refused:?}");
        assert!(db.credential("c1").await.unwrap().is_none());

        let named = ["162021000001".to_owned()];
        db.create_credential(&tenant, "c2", "x", b"h", Some(&named), now, &entry(&tenant))
            .await
            .unwrap();
        let viewer = Viewer {
            tenant: &tenant,
            credential: "c2",
        };
        assert!(db.may_act_for(&viewer, "162021000001").await.unwrap());
        assert!(!db.may_act_for(&viewer, "162021000002").await.unwrap());
        // The credential of one tenant never sees another's senders, even
        // when asked with the other tenant's id.
        let crossed = Viewer {
            tenant: &other,
            credential: "c2",
        };
        assert!(!db.may_act_for(&crossed, "162021000002").await.unwrap());

        let removal = SenderRemoval {
            revocations: &[("ed25519:k1".to_owned(), "{}".to_owned())],
            ..removal
        };
        db.remove_sender(&removal, now).await.unwrap();
        assert!(!db.may_act_for(&viewer, "162021000001").await.unwrap());
        assert!(db.sender(&tenant, "162021000001").await.unwrap().is_none());
        assert!(db.sender_key("ed25519:k1").await.unwrap().unwrap().revoked);
        db.close().await;
    }
}
