//! Swedish civil time (Europe/Stockholm) without a time-zone database: CET
//! (UTC+1) in winter, CEST (UTC+2) in summer, by the EU rule Sweden follows
//! (summer time from 01:00 UTC on the last Sunday of March to 01:00 UTC on
//! the last Sunday of October, Directive 2000/84/EC). For dates people give
//! ("until 31 December") that end at the end of that day where they live.

use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

const WINTER: i8 = 1;
const SUMMER: i8 = 2;

fn last_sunday(year: i32, month: Month) -> Option<Date> {
    let last = Date::from_calendar_date(year, month, month.length(year)).ok()?;
    let back = last.weekday().number_days_from_sunday();
    last.checked_sub(Duration::days(i64::from(back)))
}

/// The instant summer time starts and ends in `year` (both 01:00 UTC).
fn summer_time(year: i32) -> Option<(OffsetDateTime, OffsetDateTime)> {
    let one = Time::from_hms(1, 0, 0).ok()?;
    let at_one = |date: Date| PrimitiveDateTime::new(date, one).assume_utc();
    let start = last_sunday(year, Month::March)?;
    let end = last_sunday(year, Month::October)?;
    Some((at_one(start), at_one(end)))
}

/// Sweden's offset from UTC at the instant `at`.
pub fn offset_at(at: OffsetDateTime) -> UtcOffset {
    let at = at.to_offset(UtcOffset::UTC);
    let hours = match summer_time(at.year()) {
        Some((start, end)) if at >= start && at < end => SUMMER,
        _ => WINTER,
    };
    UtcOffset::from_hms(hours, 0, 0).unwrap_or(UtcOffset::UTC)
}

/// The date in Sweden at the instant `at`.
pub fn date_at(at: OffsetDateTime) -> Date {
    at.to_offset(offset_at(at)).date()
}

/// The instant day `date` ends in Sweden: midnight, Swedish time, at the
/// start of the next day (no clock change happens at midnight, so the
/// offset an hour before is the one that applies).
pub fn end_of_day(date: Date) -> Option<OffsetDateTime> {
    let next = date.next_day()?.midnight();
    let as_winter = next.assume_offset(UtcOffset::from_hms(WINTER, 0, 0).ok()?);
    let offset = offset_at(as_winter);
    Some(next.assume_offset(offset).to_offset(UtcOffset::UTC))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn summer_time_runs_from_the_last_sunday_of_march_to_that_of_october() {
        assert_eq!(last_sunday(2026, Month::March), Some(date!(2026 - 03 - 29)));
        assert_eq!(
            last_sunday(2026, Month::October),
            Some(date!(2026 - 10 - 25))
        );
        assert_eq!(
            offset_at(datetime!(2026-03-29 00:59:59 UTC)).whole_hours(),
            1
        );
        assert_eq!(
            offset_at(datetime!(2026-03-29 01:00:00 UTC)).whole_hours(),
            2
        );
        assert_eq!(
            offset_at(datetime!(2026-10-25 00:59:59 UTC)).whole_hours(),
            2
        );
        assert_eq!(
            offset_at(datetime!(2026-10-25 01:00:00 UTC)).whole_hours(),
            1
        );
    }

    #[test]
    fn a_day_ends_at_swedish_midnight() {
        // Winter: 31 December ends at 23:00 UTC.
        assert_eq!(
            end_of_day(date!(2026 - 12 - 31)),
            Some(datetime!(2026-12-31 23:00 UTC))
        );
        // Summer: 30 June ends at 22:00 UTC.
        assert_eq!(
            end_of_day(date!(2026 - 06 - 30)),
            Some(datetime!(2026-06-30 22:00 UTC))
        );
        // The day summer time starts ends in summer time, the day it ends in winter time.
        assert_eq!(
            end_of_day(date!(2026 - 03 - 29)),
            Some(datetime!(2026-03-29 22:00 UTC))
        );
        assert_eq!(
            end_of_day(date!(2026 - 10 - 25)),
            Some(datetime!(2026-10-25 23:00 UTC))
        );
        // The day before a change: still the old offset at midnight.
        assert_eq!(
            end_of_day(date!(2026 - 03 - 28)),
            Some(datetime!(2026-03-28 23:00 UTC))
        );
        assert_eq!(
            end_of_day(date!(2026 - 10 - 24)),
            Some(datetime!(2026-10-24 22:00 UTC))
        );
    }

    #[test]
    fn the_swedish_date_turns_at_swedish_midnight() {
        assert_eq!(
            date_at(datetime!(2026-12-01 22:59 UTC)),
            date!(2026 - 12 - 01)
        );
        assert_eq!(
            date_at(datetime!(2026-12-01 23:00 UTC)),
            date!(2026 - 12 - 02)
        );
        assert_eq!(
            date_at(datetime!(2026-07-01 21:59 UTC)),
            date!(2026 - 07 - 01)
        );
        assert_eq!(
            date_at(datetime!(2026-07-01 22:00 UTC)),
            date!(2026 - 07 - 02)
        );
    }
}
