//! The intake's side of the quotas (decision 0015): what a request asks
//! for, measured from the request as it came (deliveries, messages, canonical
//! bytes), reserved before any verification, sealing or insert, and settled
//! afterwards to what was accepted. The counts and buckets live in the
//! database (`kuvert_store::quotas`).

use crate::intake::{Accepted, Caller, IntakeError, Relay, Submission};
use kuvert_domain::delivery::SecureDelivery;
use kuvert_store::StoreError;
use kuvert_store::quotas::{Ask, Bucket, Counter, Dimension, Reservation};

/// The size of a delivery's canonical form without building it: the
/// canonical form is serde's JSON of the same value with its object keys
/// sorted, so its length is that of the compact JSON serde writes.
pub fn canonical_size(delivery: &SecureDelivery) -> i64 {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a plain struct to a counter cannot fail.
    let _ = serde_json::to_writer(&mut count, delivery);
    i64::try_from(count.0).unwrap_or(i64::MAX)
}

/// One submission's share of the daily counts.
#[derive(Debug, Clone, Copy)]
struct Size {
    messages: i64,
    bytes: i64,
}

/// What a request reserved, per submission, for the settlement.
pub(crate) struct Held {
    reservation: Reservation,
    sizes: Vec<Size>,
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Relay {
    /// Refuses a request over any quota of its tenant, whole and before any
    /// work, and otherwise reserves all it asks for.
    pub(crate) async fn reserve_quota(
        &self,
        caller: &Caller,
        submissions: &[Result<Submission, IntakeError>],
        batch: bool,
        now: time::OffsetDateTime,
    ) -> Result<Held, IntakeError> {
        // An item the caller could not read costs no quota (it is refused
        // whatever the quota), but keeps its place.
        let readable = || submissions.iter().filter_map(|s| s.as_ref().ok());
        let quota = self.db.quota(&caller.tenant).await?;
        let limit = |dimension| quota.limit(dimension, &self.quota_defaults);
        let deliveries = count(submissions.len());
        if batch
            && let Some(max) = limit(Dimension::BatchSize)
            && deliveries > max
        {
            // Retrying the same batch cannot succeed: no Retry-After.
            return Err(IntakeError::QuotaExceeded {
                what: format!("{} for this tenant", Dimension::BatchSize.describe(max)),
                retry_after_seconds: 0,
            });
        }
        // A replay (a key this sender stored a delivery under) reserves
        // nothing; should it turn out new after all, the settlement counts it.
        let keys: Vec<(&str, &str)> = readable()
            .filter_map(|s| {
                let key = s.idempotency_key.as_deref().or(s
                    .signed
                    .delivery
                    .header
                    .reference
                    .as_deref())?;
                Some((s.signed.delivery.header.sender.id.as_str(), key))
            })
            .collect();
        let known = self
            .db
            .known_idempotency_keys(&caller.tenant, &keys)
            .await?;
        let sizes: Vec<Size> = submissions
            .iter()
            .map(|s| match s {
                Ok(s) => Size {
                    messages: count(s.signed.delivery.messages.len()),
                    bytes: canonical_size(&s.signed.delivery),
                },
                Err(_) => Size {
                    messages: 0,
                    bytes: 0,
                },
            })
            .collect();
        let is_new = |s: &Submission| {
            let key =
                s.idempotency_key
                    .as_deref()
                    .or(s.signed.delivery.header.reference.as_deref());
            key.is_none_or(|key| {
                !known.contains(&(s.signed.delivery.header.sender.id.clone(), key.to_owned()))
            })
        };
        let new: Vec<&Size> = submissions
            .iter()
            .zip(&sizes)
            .filter(|(s, _)| s.as_ref().is_ok_and(is_new))
            .map(|(_, size)| size)
            .collect();
        let sum = |f: fn(&Size) -> i64| new.iter().copied().map(f).fold(0_i64, i64::saturating_add);
        let ask = Ask {
            daily: vec![
                (
                    Counter::Deliveries,
                    count(new.len()),
                    limit(Dimension::DeliveriesPerDay),
                ),
                (
                    Counter::Messages,
                    sum(|s| s.messages),
                    limit(Dimension::MessagesPerDay),
                ),
                (
                    Counter::Bytes,
                    sum(|s| s.bytes),
                    limit(Dimension::BytesPerDay),
                ),
            ],
            rate: Some((
                Bucket::Deliveries,
                deliveries,
                limit(Dimension::DeliveriesPerSecond),
            )),
        };
        let reservation =
            self.db
                .reserve(&caller.tenant, now, &ask)
                .await
                .map_err(|e| match e {
                    StoreError::QuotaExceeded(refusal) => IntakeError::QuotaExceeded {
                        what: refusal.to_string(),
                        retry_after_seconds: refusal.retry_after_seconds,
                    },
                    other => other.into(),
                })?;
        Ok(Held { reservation, sizes })
    }

    /// Gives back what was reserved and not accepted: refused items, and
    /// replays and duplicates (counted when they were first accepted). A
    /// request that failed as a whole stored nothing and gives back all.
    /// A failure here is logged, not answered: the deliveries are stored,
    /// and the tenant is only charged too much (never too little).
    pub(crate) async fn settle_quota(
        &self,
        held: Held,
        results: Option<&[Result<Accepted, IntakeError>]>,
    ) {
        let mut used = [
            (Counter::Deliveries, 0),
            (Counter::Messages, 0),
            (Counter::Bytes, 0),
        ];
        for (result, size) in results.unwrap_or_default().iter().zip(&held.sizes) {
            if matches!(
                result,
                Ok(Accepted {
                    replayed: false,
                    ..
                })
            ) {
                used[0].1 += 1;
                used[1].1 += size.messages;
                used[2].1 += size.bytes;
            }
        }
        if let Err(e) = self.db.settle(&held.reservation, &used).await {
            tracing::warn!(error = %e, tenant = %held.reservation.tenant.as_str(), "a quota reservation was not settled: the tenant keeps the whole request counted");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_canonical_size_is_the_length_of_the_canonical_form() {
        let mut delivery: SecureDelivery = serde_json::from_value(serde_json::json!({
            "header": {
                "sender": { "id": "162120009998", "name": "Demo kommun" },
                "recipient": "198001012384",
                "reference": "ref-1"
            },
            "messages": [{
                "header": {
                    "id": "m1", "subject": "Beslut", "language": "sv",
                    "support_info": { "text": "Ring oss" },
                    "metadata": [{ "tag": "t", "value": "v" }]
                },
                "body": { "content_type": "text/plain", "body": "Hej" }
            }]
        }))
        .unwrap();
        assert_eq!(
            canonical_size(&delivery),
            count(delivery.canonical_bytes().len())
        );
        delivery.messages[0].body.body = "Åäö \"citat\" \u{1F600} <p>\n".repeat(50);
        delivery.paper_fallback = true;
        assert_eq!(
            canonical_size(&delivery),
            count(delivery.canonical_bytes().len())
        );
    }
}
