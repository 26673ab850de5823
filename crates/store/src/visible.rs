//! What a sender-side credential may read of its tenant's deliveries: one
//! delivery, the status feed, a batch's progress and the day's statistics,
//! each filtered in SQL to the senders the [`Viewer`] sees (its named
//! senders, or all of the tenant's; never a removed sender's history).

use crate::relay::{BatchRecord, DeliveryRecord, StatusEvent, delivery_from_row};
use crate::tenants::{VISIBLE_SENDERS, Viewer};
use crate::{Db, Result, instant};
use kuvert_domain::ids::{BatchId, DeliveryId};
use kuvert_domain::status::{DeliveryStatus, StatusCounts};
use sqlx::Row;

/// `[day 00:00, next day 00:00)` as text bounds for the stored RFC 3339
/// instants: a range an index on the instant serves (a `LIKE` does not).
impl Db {
    /// One delivery, only if the viewer sees it; otherwise `None`, as for
    /// one that does not exist. From the read side (in WAL mode it sees
    /// every commit made before it), so a busy writer does not hold it up.
    pub async fn visible_delivery(
        &self,
        viewer: &Viewer<'_>,
        id: &DeliveryId,
    ) -> Result<Option<DeliveryRecord>> {
        let sql = format!(
            "SELECT * FROM deliveries WHERE id = ? AND tenant_id = ? AND sender_id IN ({VISIBLE_SENDERS})"
        );
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .bind(viewer.tenant.as_str())
            .bind(viewer.credential)
            .bind(viewer.tenant.as_str())
            .fetch_optional(self.reader())
            .await?;
        row.map(|row| delivery_from_row(&row)).transpose()
    }

    /// Status changes after `after` of the deliveries the viewer sees,
    /// oldest first. The cursor is the tenant's sequence: a page skips what
    /// the viewer does not see.
    pub async fn status_events(
        &self,
        viewer: &Viewer<'_>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<StatusEvent>> {
        let sql = format!(
            "SELECT e.seq, e.delivery_id, e.status, e.at
               FROM status_events e JOIN deliveries d ON d.id = e.delivery_id AND d.tenant_id = e.tenant_id
              WHERE e.tenant_id = ? AND e.seq > ? AND d.sender_id IN ({VISIBLE_SENDERS})
              ORDER BY e.seq LIMIT ?"
        );
        sqlx::query(&sql)
            .bind(viewer.tenant.as_str())
            .bind(after)
            .bind(viewer.credential)
            .bind(viewer.tenant.as_str())
            .bind(limit)
            .fetch_all(self.reader())
            .await?
            .iter()
            .map(|row| {
                Ok(StatusEvent {
                    seq: row.try_get("seq")?,
                    delivery_id: row.try_get("delivery_id")?,
                    status: DeliveryStatus::parse(&row.try_get::<String, _>("status")?)?,
                    at: row.try_get("at")?,
                })
            })
            .collect()
    }

    /// A batch's progress as the viewer may see it, or `None` (as for a
    /// batch that does not exist). `counts` are of the deliveries it sees.
    /// The credential that submitted the batch, and a credential with every
    /// sender, get its submitted and rejected totals; another credential
    /// sees the batch only if it sees one of its deliveries, and only those
    /// (`submitted` is their number, `rejected` 0: rejected items name no
    /// sender it could be shown).
    pub async fn batch(&self, viewer: &Viewer<'_>, id: &BatchId) -> Result<Option<BatchRecord>> {
        let Some(row) = sqlx::query(
            "SELECT b.created_at, b.submitted, b.rejected,
                    (b.credential_id IS NOT NULL AND b.credential_id = c.id) OR c.all_senders = 1 AS whole
               FROM batches b JOIN credentials c ON c.id = ? AND c.tenant_id = b.tenant_id
              WHERE b.id = ? AND b.tenant_id = ?",
        )
        .bind(viewer.credential)
        .bind(id.to_string())
        .bind(viewer.tenant.as_str())
        .fetch_optional(self.reader())
        .await?
        else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT status, COUNT(*) AS n FROM deliveries
              WHERE tenant_id = ? AND batch_id = ? AND sender_id IN ({VISIBLE_SENDERS}) GROUP BY status"
        );
        let mut counts = StatusCounts::default();
        let mut seen = 0_i64;
        for count in sqlx::query(&sql)
            .bind(viewer.tenant.as_str())
            .bind(id.to_string())
            .bind(viewer.credential)
            .bind(viewer.tenant.as_str())
            .fetch_all(self.reader())
            .await?
        {
            let n: i64 = count.try_get("n")?;
            seen += n;
            counts.add(
                DeliveryStatus::parse(&count.try_get::<String, _>("status")?)?,
                n,
            );
        }
        let whole: bool = row.try_get("whole")?;
        let (submitted, rejected) = if whole {
            (row.try_get("submitted")?, row.try_get("rejected")?)
        } else if seen > 0 {
            (seen, 0)
        } else {
            return Ok(None);
        };
        Ok(Some(BatchRecord {
            id: *id,
            created_at: instant(&row, "created_at")?,
            submitted,
            rejected,
            counts,
        }))
    }

    /// Current statuses of the deliveries the viewer sees that were
    /// received on `day` (UTC).
    pub async fn visible_daily_counts(
        &self,
        viewer: &Viewer<'_>,
        day: time::Date,
    ) -> Result<StatusCounts> {
        let (from, to) = crate::day_range(day);
        let sql = format!(
            "SELECT status, COUNT(*) AS n FROM deliveries
              WHERE tenant_id = ? AND received_at >= ? AND received_at < ? AND sender_id IN ({VISIBLE_SENDERS})
              GROUP BY status"
        );
        let mut counts = StatusCounts::default();
        for row in sqlx::query(&sql)
            .bind(viewer.tenant.as_str())
            .bind(from)
            .bind(to)
            .bind(viewer.credential)
            .bind(viewer.tenant.as_str())
            .fetch_all(self.reader())
            .await?
        {
            counts.add(
                DeliveryStatus::parse(&row.try_get::<String, _>("status")?)?,
                row.try_get("n")?,
            );
        }
        Ok(counts)
    }

    /// Reachability lookups made on `day` (UTC) for the senders the viewer
    /// sees (each lookup's audit entry names its sender as the subject).
    pub async fn visible_lookups(&self, viewer: &Viewer<'_>, day: time::Date) -> Result<i64> {
        let (from, to) = crate::day_range(day);
        let sql = format!(
            "SELECT COUNT(*) FROM audit_log
              WHERE tenant_id = ? AND action = 'register.lookup' AND at >= ? AND at < ?
                AND subject IN ({VISIBLE_SENDERS})"
        );
        Ok(sqlx::query_scalar(&sql)
            .bind(viewer.tenant.as_str())
            .bind(from)
            .bind(to)
            .bind(viewer.credential)
            .bind(viewer.tenant.as_str())
            .fetch_one(self.reader())
            .await?)
    }
}
