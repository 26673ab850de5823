//! Tenants, their API credentials, senders and signing keys. Every query on
//! tenant data takes the caller's `TenantId` first and filters by it. Every
//! change takes its audit entry and writes both in one transaction.

use crate::audit::AuditEntry;
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
}

#[derive(Debug, Clone)]
pub struct CredentialInfo {
    pub id: String,
    pub label: String,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

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

    /// How many audit entries of `action` a tenant has on a day (UTC), e.g.
    /// reachability lookups for the statistics.
    pub async fn count_actions(
        &self,
        tenant: &TenantId,
        action: &str,
        day: time::Date,
    ) -> Result<i64> {
        let prefix = format!("{day}%");
        Ok(sqlx::query(
            "SELECT COUNT(*) FROM audit_log WHERE tenant_id = ? AND action = ? AND at LIKE ?",
        )
        .bind(tenant.as_str())
        .bind(action)
        .bind(prefix)
        .fetch_one(self.reader())
        .await?
        .try_get(0)?)
    }

    pub async fn create_credential(
        &self,
        tenant: &TenantId,
        id: &str,
        label: &str,
        secret_hash: &[u8],
        now: OffsetDateTime,
        audit: &AuditEntry<'_>,
    ) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        sqlx::query(
            "INSERT INTO credentials (id, tenant_id, label, secret_hash, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(tenant.as_str())
        .bind(label)
        .bind(secret_hash)
        .bind(format_instant(now))
        .execute(&mut *tx)
        .await?;
        commit_audited(tx, now, audit).await
    }

    /// Looks a credential up by its public id, for authentication. Read from
    /// the writer so that a revocation is seen by the very next request.
    pub async fn credential(&self, id: &str) -> Result<Option<CredentialRecord>> {
        let row = sqlx::query(
            "SELECT c.id, c.tenant_id, c.secret_hash, c.revoked_at, t.status
             FROM credentials c JOIN tenants t ON t.id = c.tenant_id WHERE c.id = ?",
        )
        .bind(id)
        .fetch_optional(self.writer())
        .await?;
        row.map(|row| {
            Ok(CredentialRecord {
                id: row.try_get("id")?,
                tenant_id: tenant_id(&row, "tenant_id")?,
                secret_hash: row.try_get("secret_hash")?,
                revoked: row.try_get::<Option<String>, _>("revoked_at")?.is_some(),
                tenant_status: TenantStatus::parse(&row.try_get::<String, _>("status")?)?,
            })
        })
        .transpose()
    }

    pub async fn credentials(&self, tenant: &TenantId) -> Result<Vec<CredentialInfo>> {
        sqlx::query(
            "SELECT id, label, created_at, revoked_at FROM credentials WHERE tenant_id = ? ORDER BY created_at",
        )
        .bind(tenant.as_str())
        .fetch_all(self.reader())
        .await?
        .iter()
        .map(|row| {
            Ok(CredentialInfo {
                id: row.try_get("id")?,
                label: row.try_get("label")?,
                created_at: instant(row, "created_at")?,
                revoked_at: opt_instant(row, "revoked_at")?,
            })
        })
        .collect()
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

    /// The sender, if it belongs to this tenant.
    pub async fn sender(&self, tenant: &TenantId, sender_id: &str) -> Result<Option<Sender>> {
        let row = sqlx::query("SELECT id, name FROM senders WHERE id = ? AND tenant_id = ?")
            .bind(sender_id)
            .bind(tenant.as_str())
            .fetch_optional(self.reader())
            .await?;
        row.map(|row| {
            Ok(Sender {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
            })
        })
        .transpose()
    }

    pub async fn senders(&self, tenant: &TenantId) -> Result<Vec<Sender>> {
        sqlx::query("SELECT id, name FROM senders WHERE tenant_id = ? ORDER BY id")
            .bind(tenant.as_str())
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(|row| {
                Ok(Sender {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                })
            })
            .collect()
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
        .fetch_optional(self.writer())
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
