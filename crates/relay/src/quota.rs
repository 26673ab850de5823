//! Per-tenant rate limiting (messages per second) as a token bucket that may
//! go into debt: a bulk request larger than one second's allowance is let
//! through when the bucket is positive, and the tenant then waits until the
//! debt is paid off. So the average rate holds and big batches still work.
//!
//! The bucket lives in the process: with several nodes each enforces the
//! rate on its own (the daily quota, in the database, is exact everywhere).

use kuvert_domain::ids::TenantId;
use std::collections::HashMap;
use std::sync::Mutex;
use time::OffsetDateTime;

#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<TenantId, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: OffsetDateTime,
}

impl RateLimiter {
    /// Takes `count` messages from the tenant's allowance of `per_second`.
    /// `Err(seconds)` says how long to wait before trying again.
    pub fn take(
        &self,
        tenant: &TenantId,
        count: usize,
        per_second: i64,
        now: OffsetDateTime,
    ) -> Result<(), u64> {
        let rate = per_second.max(1) as f64;
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let bucket = buckets.entry(tenant.clone()).or_insert(Bucket {
            tokens: rate,
            at: now,
        });
        let elapsed = (now - bucket.at).as_seconds_f64().max(0.0);
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
        bucket.at = now;
        if bucket.tokens <= 0.0 {
            return Err(((-bucket.tokens) / rate).ceil().max(1.0) as u64);
        }
        bucket.tokens -= count as f64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_average_rate_holds_and_a_big_batch_pays_its_debt() {
        let limiter = RateLimiter::default();
        let tenant = TenantId::parse("t1").unwrap();
        let t0 = time::macros::datetime!(2026-11-24 12:00 UTC);
        assert_eq!(limiter.take(&tenant, 10, 10, t0), Ok(()));
        assert_eq!(
            limiter.take(&tenant, 1, 10, t0),
            Err(1),
            "allowance used up"
        );
        // A batch of 50 at 10/s with 10 in hand: allowed, then 4 seconds of debt.
        let t1 = t0 + time::Duration::seconds(1);
        assert_eq!(limiter.take(&tenant, 50, 10, t1), Ok(()));
        assert_eq!(
            limiter.take(&tenant, 1, 10, t1 + time::Duration::seconds(2)),
            Err(2)
        );
        assert_eq!(
            limiter.take(&tenant, 1, 10, t1 + time::Duration::milliseconds(3900)),
            Err(1)
        );
        assert_eq!(
            limiter.take(&tenant, 1, 10, t1 + time::Duration::milliseconds(4100)),
            Ok(())
        );
    }

    #[test]
    fn tenants_have_separate_allowances() {
        let limiter = RateLimiter::default();
        let now = time::macros::datetime!(2026-11-24 12:00 UTC);
        let (a, b) = (
            TenantId::parse("aa").unwrap(),
            TenantId::parse("bb").unwrap(),
        );
        assert_eq!(limiter.take(&a, 5, 5, now), Ok(()));
        assert!(limiter.take(&a, 1, 5, now).is_err());
        assert_eq!(limiter.take(&b, 5, 5, now), Ok(()));
    }
}
