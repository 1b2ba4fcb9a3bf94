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

/// Adds whole calendar months (clamping the day: Jan 31 + 1 month = Feb 28/29), in UTC,
/// keeping the time of day. Out of jiff's range (years −9999 to 9999) the instant is returned
/// unchanged, as jiff's checked arithmetic would.
///
/// Integer civil arithmetic rather than jiff's zoned addition: billing replays call this
/// for every month of every subscription in every report, and the zoned path was a tenth
/// of the report's time. A test checks it against jiff.
pub fn add_months(ms: Millis, months: i32) -> Millis {
    const YEARS: std::ops::RangeInclusive<i32> = -9999..=9999;
    let day = day_of(ms);
    let (y, m, d) = civil_from_days(day);
    if !YEARS.contains(&y) {
        return ms;
    }
    let index = i64::from(y) * 12 + i64::from(m) - 1 + i64::from(months);
    let Ok(year) = i32::try_from(index.div_euclid(12)) else {
        return ms;
    };
    if !YEARS.contains(&year) {
        return ms;
    }
    let month = index.rem_euclid(12) as u32 + 1;
    let next_month_start = if month == 12 {
        days_from_civil(year + 1, 1, 1)
    } else {
        days_from_civil(year, month + 1, 1)
    };
    let last_day = (next_month_start - days_from_civil(year, month, 1)) as u32;
    let target = days_from_civil(year, month, d.min(last_day));
    ms + i64::from(target - day) * MILLIS_PER_DAY
}

/// The proleptic Gregorian (year, month 1–12, day 1–31) of a day number (days since
/// 1970-01-01). H. Hinnant's `civil_from_days`: integer arithmetic, valid for any `i32` day.
pub fn civil_from_days(days: i32) -> (i32, u32, u32) {
    let z = i64::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = (yoe + era * 400 + i64::from(m <= 2)) as i32;
    (y, m, d)
}

/// The day number of a proleptic Gregorian date (the inverse of [`civil_from_days`]).
pub fn days_from_civil(year: i32, month: u32, day: u32) -> i32 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// jiff's zoned month arithmetic in UTC, the reference for [`add_months`].
    fn jiff_add_months(ms: Millis, months: i32) -> Millis {
        let Ok(ts) = Timestamp::from_millisecond(ms) else {
            return ms;
        };
        match ts
            .to_zoned(TimeZone::UTC)
            .checked_add(jiff::Span::new().months(months))
        {
            Ok(next) => next.timestamp().as_millisecond(),
            Err(_) => ms,
        }
    }

    #[test]
    fn add_months_agrees_with_jiff() {
        let mut rng = crate::random::Rng::derive(7, 7);
        let span = 400 * 365 * MILLIS_PER_DAY;
        let mut checked = 0;
        for _ in 0..200_000 {
            // Instants from 1800 to 2200, with month ends and leap days over-represented.
            let mut ms = (rng.uniform() * span as f64) as Millis - 170 * 365 * MILLIS_PER_DAY;
            if rng.chance(0.3) {
                let (y, m, _) = civil_from_days(day_of(ms));
                let day = [28, 29, 30, 31][rng.below(4) as usize];
                let first = days_from_civil(y, m, 1);
                ms = i64::from(first + day - 1) * MILLIS_PER_DAY + ms.rem_euclid(MILLIS_PER_DAY);
            }
            let months = rng.below(60) as i32 - 24;
            assert_eq!(
                add_months(ms, months),
                jiff_add_months(ms, months),
                "{} + {months} months",
                format_instant(ms)
            );
            checked += 1;
        }
        assert_eq!(checked, 200_000);
        // Jan 31 + 1 month: the end of February; leap years.
        let jan31 = parse_instant("2024-01-31T10:30:00Z").unwrap();
        assert_eq!(
            format_instant(add_months(jan31, 1)),
            "2024-02-29T10:30:00.000Z"
        );
        assert_eq!(
            format_instant(add_months(jan31, 13)),
            "2025-02-28T10:30:00.000Z"
        );
        // Past jiff's range the instant is left as it was.
        let far = parse_instant("9999-06-01T00:00:00Z").unwrap();
        assert_eq!(add_months(far, 12), far);
    }

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
    fn civil_dates_round_trip_and_agree_with_jiff() {
        for day in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
            let date = Date::new(y as i16, m as i8, d as i8).unwrap();
            let ms = parse_instant(&date.to_string()).unwrap();
            assert_eq!(day_of(ms), day, "{date}");
        }
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

    /// Reads what `serialize` wrote (for stored documents such as a risk model's report).
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Millis, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        super::parse_instant(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not an instant")))
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
