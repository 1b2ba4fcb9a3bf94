//! Time as the core sees it: UTC milliseconds since the Unix epoch, passed in by the caller.
//!
//! The core never reads the wall clock; the shell supplies "now" through [`Clock`].

use jiff::{Timestamp, civil::Date, tz::TimeZone};

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Millis = i64;

pub const MILLIS_PER_DAY: Millis = 86_400_000;

/// The source of "now" for everything that depends on it.
pub trait Clock: Send + Sync {
    fn now(&self) -> Millis;
}

/// A clock that always answers the same instant (tests, replays, the demo generator).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub Millis);

impl Clock for FixedClock {
    fn now(&self) -> Millis {
        self.0
    }
}

/// Parses an ISO-8601 / RFC 3339 instant as Segment libraries send it
/// (`2024-05-01T12:00:00.123Z`, `2024-05-01T12:00:00+02:00`). A date alone, or a date-time
/// without an offset, is read as UTC.
pub fn parse_instant(text: &str) -> Option<Millis> {
    let text = text.trim();
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Some(ts.as_millisecond());
    }
    if let Ok(dt) = text.parse::<jiff::civil::DateTime>() {
        return dt
            .to_zoned(TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp().as_millisecond());
    }
    if let Ok(date) = text.parse::<Date>() {
        return date
            .to_zoned(TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp().as_millisecond());
    }
    None
}

/// Formats an instant as RFC 3339 with milliseconds, UTC (`2024-05-01T12:00:00.123Z`).
pub fn format_instant(ms: Millis) -> String {
    match Timestamp::from_millisecond(ms) {
        Ok(ts) => format!("{ts:.3}"),
        Err(_) => ms.to_string(),
    }
}

/// The UTC day number (days since the epoch) an instant falls in.
pub fn day_of(ms: Millis) -> i32 {
    ms.div_euclid(MILLIS_PER_DAY) as i32
}

/// Adds whole calendar months (clamping the day: Jan 31 + 1 month = Feb 28/29), in UTC.
pub fn add_months(ms: Millis, months: i32) -> Millis {
    let Ok(ts) = Timestamp::from_millisecond(ms) else {
        return ms;
    };
    let zoned = ts.to_zoned(TimeZone::UTC);
    match zoned.checked_add(jiff::Span::new().months(months)) {
        Ok(next) => next.timestamp().as_millisecond(),
        Err(_) => ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_segment_libraries_send() {
        assert_eq!(parse_instant("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_instant("1970-01-01T01:00:01.5+01:00"), Some(1500));
        assert_eq!(parse_instant("1970-01-02"), Some(MILLIS_PER_DAY));
        assert_eq!(parse_instant("1970-01-01T00:00:02"), Some(2000));
        assert_eq!(parse_instant("yesterday"), None);
    }

    #[test]
    fn month_arithmetic_clamps_to_month_end() {
        let jan31 = parse_instant("2024-01-31T10:00:00Z").unwrap();
        assert_eq!(
            format_instant(add_months(jan31, 1)),
            "2024-02-29T10:00:00.000Z"
        );
        assert_eq!(
            format_instant(add_months(jan31, 12)),
            "2025-01-31T10:00:00.000Z"
        );
    }

    #[test]
    fn day_of_handles_instants_before_the_epoch() {
        assert_eq!(day_of(-1), -1);
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(MILLIS_PER_DAY), 1);
    }
}

/// Serde helpers that write instants as RFC 3339 strings in API responses.
pub mod iso {
    use serde::Serializer;

    use super::{Millis, format_instant};

    pub fn serialize<S: Serializer>(ms: &Millis, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_instant(*ms))
    }

    pub mod option {
        use serde::Serializer;

        use super::super::{Millis, format_instant};

        pub fn serialize<S: Serializer>(ms: &Option<Millis>, s: S) -> Result<S::Ok, S::Error> {
            match ms {
                Some(ms) => s.serialize_str(&format_instant(*ms)),
                None => s.serialize_none(),
            }
        }
    }
}
