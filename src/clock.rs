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

/// `2024-01-15T15:30:00.123Z`: RFC 3339, UTC, milliseconds. Every answer carries a few:
/// years 0–9999 are written digit by digit (through `time`'s format description it cost
/// ~2k instructions each, a few percent of a level read), any other the slow way.
pub fn rfc3339_ms(ms: i64) -> String {
    let Ok(t) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) else {
        return String::new();
    };
    let year = match u32::try_from(t.year()) {
        Ok(year) if year <= 9999 => year,
        _ => return rfc3339_ms_slow(t),
    };
    let mut out = String::with_capacity(24);
    push_digits(&mut out, year, 4);
    for (sep, value, width) in [
        ('-', u32::from(u8::from(t.month())), 2),
        ('-', u32::from(t.day()), 2),
        ('T', u32::from(t.hour()), 2),
        (':', u32::from(t.minute()), 2),
        (':', u32::from(t.second()), 2),
        ('.', u32::from(t.millisecond()), 3),
    ] {
        out.push(sep);
        push_digits(&mut out, value, width);
    }
    out.push('Z');
    out
}

/// `value` as exactly `width` decimal digits (zero-padded; higher digits dropped).
fn push_digits(out: &mut String, value: u32, width: u32) {
    for i in (0..width).rev() {
        let digit = (value / 10u32.pow(i)) % 10;
        out.push(char::from(b'0' + digit as u8));
    }
}

fn rfc3339_ms_slow(t: OffsetDateTime) -> String {
    let fmt = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.format(&fmt).unwrap_or_default()
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

    /// The digit-by-digit rendering is the format description's, year 0 to 9999 and past.
    #[test]
    fn fast_rendering_is_the_format_descriptions() {
        let slow = |ms: i64| {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .map(rfc3339_ms_slow)
                .unwrap_or_default()
        };
        let day_ms = 86_400_000i64;
        let mut cases = vec![
            0,
            1,
            999,
            1_705_332_600_123,
            951_782_400_000,     // 2000-02-29
            253_402_300_799_999, // 9999-12-31T23:59:59.999
            253_402_300_800_000, // 10000-01-01: the slow way
            -62_167_219_200_000, // 0000-01-01
            -62_167_219_200_001, // -0001-12-31: the slow way
            i64::MAX,
            i64::MIN,
        ];
        // A day of milliseconds at odd steps, and days across four centuries.
        cases.extend((0..2000).map(|i| 1_700_000_000_000 + i * 43_201));
        cases.extend((0..1500).map(|i| -1_000 * day_ms + i * 97 * day_ms + i * 7));
        for ms in cases {
            assert_eq!(rfc3339_ms(ms), slow(ms), "{ms}");
        }
    }

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
