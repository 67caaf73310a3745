//! Time: the clock, RFC 3339 rendering and the date parsing of query parameters.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};

pub const MS_PER_DAY: i64 = 86_400_000;

/// Milliseconds since the Unix epoch, UTC.
pub fn now_ms() -> i64 {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    (nanos / 1_000_000) as i64
}

/// `2024-01-15T15:30:00.123Z`: RFC 3339, UTC, milliseconds.
pub fn rfc3339_ms(ms: i64) -> String {
    let fmt = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default()
}

/// Which end of a range a date-only value stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Start,
    /// A date-only end includes that whole UTC day.
    End,
}

/// Parses an RFC 3339 date-time or a `YYYY-MM-DD` date into milliseconds (inclusive).
pub fn parse_date_param(text: &str, bound: Bound) -> Option<i64> {
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    // A date-time without an offset (Python's `isoformat()` of a naive datetime) is UTC.
    let naive = format_description!(
        version = 2,
        "[year]-[month]-[day][first [T] [ ]][hour]:[minute][optional [:[second][optional [.[subsecond]]]]]"
    );
    if let Ok(t) = PrimitiveDateTime::parse(text, &naive) {
        return Some((t.assume_utc().unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let date = Date::parse(text, format_description!("[year]-[month]-[day]")).ok()?;
    let start = PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_utc();
    let start_ms = (start.unix_timestamp_nanos() / 1_000_000) as i64;
    Some(match bound {
        Bound::Start => start_ms,
        Bound::End => start_ms + MS_PER_DAY - 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_parses() {
        assert_eq!(rfc3339_ms(1_705_332_600_123), "2024-01-15T15:30:00.123Z");
        assert_eq!(
            parse_date_param("2024-01-15T15:30:00.123Z", Bound::Start),
            Some(1_705_332_600_123)
        );
        let day = parse_date_param("2024-01-15", Bound::Start).unwrap_or_default();
        assert_eq!(parse_date_param("2024-01-15", Bound::End), Some(day + MS_PER_DAY - 1));
        assert_eq!(parse_date_param("yesterday", Bound::Start), None);
        // Without an offset: UTC, as Python's `isoformat()` of a naive datetime sends it.
        assert_eq!(
            parse_date_param("2024-01-15T15:30:00", Bound::Start),
            Some(1_705_332_600_000)
        );
        assert_eq!(
            parse_date_param("2024-01-15T15:30:00.123456", Bound::End),
            Some(1_705_332_600_123)
        );
        assert_eq!(parse_date_param("2024-01-15T25:30:00", Bound::Start), None);
    }
}
