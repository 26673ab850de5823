//! Time as a dependency: code asks a [`Clock`], so tests can fix "now"
//! (delivery moments, token expiry, a person's age) without sleeping.

use std::sync::Mutex;
use time::OffsetDateTime;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> OffsetDateTime;
    fn today(&self) -> time::Date {
        self.now().date()
    }
}

/// The real clock, in UTC.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that stands still until told to move; for tests.
#[derive(Debug)]
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    pub fn new(at: OffsetDateTime) -> Self {
        Self(Mutex::new(at))
    }
    pub fn advance(&self, by: time::Duration) {
        if let Ok(mut now) = self.0.lock() {
            *now += by;
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        match self.0.lock() {
            Ok(now) => *now,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }
}

/// The one text form of instants in storage and on the wire: RFC 3339, UTC,
/// microseconds, fixed width — so text order is time order.
pub fn format_instant(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.microsecond()
    )
}

/// Parses what [`format_instant`] writes (any RFC 3339 instant, in fact).
pub fn parse_instant(text: &str) -> Result<OffsetDateTime, time::error::Parse> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn instants_round_trip_and_sort_as_text() {
        let a = time::macros::datetime!(2026-11-24 09:05:03.000123 UTC);
        let b = a + time::Duration::seconds(1);
        assert_eq!(format_instant(a), "2026-11-24T09:05:03.000123Z");
        assert_eq!(parse_instant(&format_instant(a)).unwrap(), a);
        assert!(format_instant(a) < format_instant(b));
    }
}
