//! The clock's logic, on top of `jiff` and its bundled IANA time-zone database.
//!
//! Everything here is plain Rust over the WIT types, so it is unit-tested natively.
//! Error messages are read by a language model: each says what was wrong and what
//! input would work.

use jiff::civil::{DateTime, Time};
use jiff::fmt::temporal::{Pieces, PiecesOffset};
use jiff::tz::{Offset, TimeZone};
use jiff::{Span, Timestamp, Unit, Zoned, ZonedDifference};

use crate::{Duration, TimeDifference, TimeInfo, TimeUnit, Weekday};

/// Longest accepted timestamp argument, in bytes.
const MAX_TIMESTAMP_LEN: usize = 128;
/// Longest accepted time-zone argument, in bytes.
const MAX_ZONE_LEN: usize = 64;

const ZONE_HELP: &str = "Use an IANA time zone name in `Area/City` form, such as `Europe/Paris`, \
                         `America/New_York` or `Asia/Tokyo`, or `UTC`, or a fixed UTC offset such as `+05:30`.";

const TIMESTAMP_HELP: &str = "Accepted formats: ISO 8601 with an offset (`2024-03-10T14:30:00Z`, \
    `2024-03-10T14:30:00+01:00`, optionally followed by a zone such as `[Europe/Paris]`), local time \
    without offset (`2024-03-10T14:30:00` or `2024-03-10 14:30`), a date alone (`2024-03-10`), \
    RFC 2822 (`Sun, 10 Mar 2024 14:30:00 +0100`), or Unix seconds (`1710081000`).";

/// `now`: the current time in `zone` (UTC when absent), truncated to whole seconds.
pub fn now(zone: Option<&str>) -> Result<TimeInfo, String> {
    let tz = optional_zone(zone, "time-zone")?.unwrap_or(TimeZone::UTC);
    let now = Timestamp::now();
    let now = Timestamp::from_second(now.as_second()).unwrap_or(now);
    Ok(time_info(&now.to_zoned(tz)))
}

/// `convert`: `timestamp` (local times read in `from_zone`, default UTC) shown in `to_zone`.
pub fn convert(
    timestamp: &str,
    to_zone: &str,
    from_zone: Option<&str>,
) -> Result<TimeInfo, String> {
    let to = zone(to_zone, "to-zone")?;
    let from = optional_zone(from_zone, "from-zone")?;
    let moment = parse_moment(timestamp, "timestamp")?;
    if let (
        Some(from),
        Moment::Instant {
            ts,
            offset: Some(offset),
            ..
        },
    ) = (&from, &moment)
    {
        let expected = from.to_offset(*ts);
        if expected != *offset {
            return Err(format!(
                "`timestamp` `{}` carries the UTC offset {}, but in `from-zone` `{}` the offset at \
                 that moment is {}. Either drop the offset from the timestamp to read it as local \
                 time in `from-zone`, or omit `from-zone`.",
                timestamp.trim(),
                offset_string(*offset),
                from_zone.unwrap_or_default().trim(),
                offset_string(expected)
            ));
        }
    }
    let zoned = moment.in_zone(from.as_ref(), "timestamp")?;
    Ok(time_info(&zoned.with_time_zone(to)))
}

/// `add`: `timestamp` plus `duration`, computed and shown in `zone` (or the
/// timestamp's own zone).
pub fn add(timestamp: &str, duration: &Duration, zone: Option<&str>) -> Result<TimeInfo, String> {
    let tz = optional_zone(zone, "time-zone")?;
    let start = parse_moment(timestamp, "timestamp")?.in_zone(tz.as_ref(), "timestamp")?;

    // jiff keeps one sign per span, so fields of mixed signs cannot share a span.
    // Years+months, weeks+days and the clock fields are each exactly combinable,
    // and are applied in that order, which is also jiff's order for a single span.
    let field = |v: Option<i32>| i64::from(v.unwrap_or(0));
    let clock = |v: Option<i64>| i128::from(v.unwrap_or(0));
    let months = field(duration.years) * 12 + field(duration.months);
    let days = field(duration.weeks) * 7 + field(duration.days);
    let seconds =
        clock(duration.hours) * 3600 + clock(duration.minutes) * 60 + clock(duration.seconds);

    let out_of_range = |what: &str, e: jiff::Error| {
        format!(
            "the duration's {what} are too large ({e}). Use a duration that keeps the result \
             within the years -9999 to 9999."
        )
    };
    let seconds = i64::try_from(seconds)
        .map_err(|_| "the duration's hours, minutes and seconds are too large.".to_string())?;
    let steps = [
        Span::new()
            .try_months(months)
            .map_err(|e| out_of_range("years and months", e))?,
        Span::new()
            .try_days(days)
            .map_err(|e| out_of_range("weeks and days", e))?,
        Span::new()
            .try_seconds(seconds)
            .map_err(|e| out_of_range("hours, minutes and seconds", e))?,
    ];
    let mut result = start.clone();
    for step in steps {
        if step.is_zero() {
            continue;
        }
        result = result.checked_add(step).map_err(|_| {
            format!(
                "adding the duration to {} goes outside the supported dates (years -9999 to 9999).",
                iso(&start)
            )
        })?;
    }
    Ok(time_info(&result))
}

/// `difference`: from `from` to `to`, in `unit`.
pub fn difference(
    from: &str,
    to: &str,
    unit: TimeUnit,
    zone: Option<&str>,
) -> Result<TimeDifference, String> {
    let tz = optional_zone(zone, "time-zone")?;
    let start = parse_moment(from, "from")?.in_zone(tz.as_ref(), "from")?;
    // Calendar units are counted in one zone, the start's, which also reads a local
    // `to` when no `time-zone` is given.
    let start_zone = start.time_zone().clone();
    let end = parse_moment(to, "to")?
        .in_zone(Some(tz.as_ref().unwrap_or(&start_zone)), "to")?
        .with_time_zone(start_zone);

    let jiff_unit = match unit {
        TimeUnit::Years => Unit::Year,
        TimeUnit::Months => Unit::Month,
        TimeUnit::Weeks => Unit::Week,
        TimeUnit::Days => Unit::Day,
        TimeUnit::Hours => Unit::Hour,
        TimeUnit::Minutes => Unit::Minute,
        TimeUnit::Seconds => Unit::Second,
    };
    let failed = |e: jiff::Error| format!("could not compute the difference: {e}");
    let exact = start.until((jiff_unit, &end)).map_err(failed)?;
    let amount = exact.total((jiff_unit, &start)).map_err(failed)?;
    let span = start
        .until(
            ZonedDifference::new(&end)
                .largest(jiff_unit)
                .smallest(Unit::Second),
        )
        .map_err(failed)?;
    // Complete units: `amount` truncated toward zero, ignoring float noise.
    let whole = if (amount - amount.round()).abs() < 1e-9 {
        amount.round()
    } else {
        amount.trunc()
    };
    let whole = whole as i64;
    let total_seconds =
        (end.timestamp().as_nanosecond() - start.timestamp().as_nanosecond()) / 1_000_000_000;
    Ok(TimeDifference {
        amount,
        unit,
        whole,
        total_seconds: i64::try_from(total_seconds).unwrap_or(i64::MAX),
        breakdown: breakdown(&span),
        iso8601: span.to_string(),
    })
}

/// "1 year, 2 months, 3 days" for the absolute value of `span` (whole seconds).
fn breakdown(span: &Span) -> String {
    let span = span.abs();
    let parts: Vec<String> = [
        (i64::from(span.get_years()), "year"),
        (i64::from(span.get_months()), "month"),
        (i64::from(span.get_weeks()), "week"),
        (i64::from(span.get_days()), "day"),
        (i64::from(span.get_hours()), "hour"),
        (span.get_minutes(), "minute"),
        (span.get_seconds(), "second"),
    ]
    .into_iter()
    .filter(|(n, _)| *n != 0)
    .map(|(n, name)| format!("{n} {name}{}", if n == 1 { "" } else { "s" }))
    .collect();
    if parts.is_empty() {
        "0 seconds".to_string()
    } else {
        parts.join(", ")
    }
}

// ---------------------------------------------------------------------------
// Time zones

fn optional_zone(name: Option<&str>, param: &str) -> Result<Option<TimeZone>, String> {
    match name {
        Some(name) if !name.trim().is_empty() => zone(name, param).map(Some),
        _ => Ok(None),
    }
}

/// Resolves a zone argument: an IANA name (case-insensitive, spaces allowed for
/// underscores), `UTC`/`GMT`/`Z`, or a fixed offset such as `+05:30` or `UTC-3`.
fn zone(name: &str, param: &str) -> Result<TimeZone, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("`{param}` is empty. {ZONE_HELP}"));
    }
    if name.len() > MAX_ZONE_LEN {
        return Err(format!(
            "`{param}` is {} bytes long, too long for a time zone name (at most {MAX_ZONE_LEN}). {ZONE_HELP}",
            name.len()
        ));
    }
    if ["utc", "gmt", "z", "zulu", "etc/utc"].contains(&name.to_ascii_lowercase().as_str()) {
        return Ok(TimeZone::UTC);
    }
    if let Some(offset) = parse_fixed_offset(name) {
        return offset
            .map(TimeZone::fixed)
            .map_err(|e| format!("`{param}` `{name}`: {e}"));
    }
    let normalized = name.replace(' ', "_");
    if let Ok(tz) = TimeZone::get(&normalized) {
        return Ok(tz);
    }
    Err(unknown_zone(name, param))
}

/// `Some(result)` when `text` looks like a fixed offset: `+05:30`, `-0800`, `+5`,
/// `UTC+2`, `GMT-03:30`.
fn parse_fixed_offset(text: &str) -> Option<Result<Offset, String>> {
    let lower = text.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("utc")
        .or_else(|| lower.strip_prefix("gmt"))
        .unwrap_or(&lower)
        .trim();
    let first = rest.chars().next()?;
    let sign = match first {
        '+' => 1,
        '-' | '−' => -1,
        _ => return None,
    };
    let digits = &rest[first.len_utf8()..];
    let (hours, minutes) = match digits.split_once(':') {
        Some((h, m)) => (h, m),
        None if digits.len() > 2 => digits.split_at(digits.len() - 2),
        None => (digits, "0"),
    };
    let valid = |s: &str, max_len| {
        !s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit())
    };
    if !valid(hours, 2) || !valid(minutes, 2) {
        return Some(Err(
            "a fixed offset is written `+HH:MM` or `-HH:MM`, e.g. `+05:30` or `-08:00`.".into(),
        ));
    }
    let (h, m): (i32, i32) = (hours.parse().ok()?, minutes.parse().ok()?);
    if h > 18 || m > 59 || (h == 18 && m > 0) {
        return Some(Err(format!(
            "the offset {text} is out of range; UTC offsets go from -18:00 to +18:00."
        )));
    }
    Some(Offset::from_seconds(sign * (h * 3600 + m * 60)).map_err(|e| e.to_string()))
}

fn unknown_zone(name: &str, param: &str) -> String {
    let upper = name.to_ascii_uppercase();
    let abbreviation = match upper.as_str() {
        "PST" | "PDT" | "PT" | "PACIFIC" => Some("America/Los_Angeles"),
        "MST" | "MDT" | "MT" | "MOUNTAIN" => Some("America/Denver"),
        "CST" | "CDT" | "CT" | "CENTRAL" => Some("America/Chicago"),
        "EST" | "EDT" | "ET" | "EASTERN" => Some("America/New_York"),
        "AKST" | "AKDT" => Some("America/Anchorage"),
        "HST" => Some("Pacific/Honolulu"),
        "BST" => Some("Europe/London"),
        "CEST" | "CET" => Some("Europe/Paris` or `Europe/Berlin"),
        "EEST" | "EET" => Some("Europe/Athens"),
        "IST" => Some("Asia/Kolkata"),
        "JST" => Some("Asia/Tokyo"),
        "KST" => Some("Asia/Seoul"),
        "SGT" => Some("Asia/Singapore"),
        "HKT" => Some("Asia/Hong_Kong"),
        "AEST" | "AEDT" => Some("Australia/Sydney"),
        "NZST" | "NZDT" => Some("Pacific/Auckland"),
        _ => None,
    };
    if let Some(suggestion) = abbreviation {
        return format!(
            "unknown time zone `{name}` in `{param}`: abbreviations are ambiguous and not accepted. \
             Did you mean `{suggestion}`? {ZONE_HELP}"
        );
    }
    let suggestions = similar_zones(name);
    let hint = if suggestions.is_empty() {
        String::new()
    } else {
        format!(
            " Did you mean {}?",
            suggestions
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(" or ")
        )
    };
    format!("unknown time zone `{name}` in `{param}`.{hint} {ZONE_HELP}")
}

/// Up to five IANA names whose city part matches or contains `name`, e.g. `Paris`
/// gives `Europe/Paris` and `new york` gives `America/New_York`.
fn similar_zones(name: &str) -> Vec<String> {
    let wanted = name.trim().replace(' ', "_").to_ascii_lowercase();
    let wanted = wanted.rsplit('/').next().unwrap_or(&wanted).to_string();
    if wanted.len() < 3 {
        return Vec::new();
    }
    let mut exact = Vec::new();
    let mut partial = Vec::new();
    for zone in jiff::tz::db().available() {
        let zone = zone.as_str().to_string();
        let city = zone
            .rsplit('/')
            .next()
            .unwrap_or(&zone)
            .to_ascii_lowercase();
        if city == wanted {
            exact.push(zone);
        } else if zone.contains('/') && city.contains(&wanted) {
            partial.push(zone);
        }
    }
    exact.sort();
    partial.sort();
    exact.extend(partial);
    exact.truncate(5);
    exact
}

fn zone_name(tz: &TimeZone, offset: Offset) -> String {
    match tz.iana_name() {
        Some(name) => name.to_string(),
        None => offset_string(offset),
    }
}

fn offset_string(offset: Offset) -> String {
    let total = offset.seconds();
    let sign = if total < 0 { '-' } else { '+' };
    let total = total.unsigned_abs();
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if s == 0 {
        format!("{sign}{h:02}:{m:02}")
    } else {
        format!("{sign}{h:02}:{m:02}:{s:02}")
    }
}

// ---------------------------------------------------------------------------
// Timestamps

/// A parsed timestamp argument.
#[derive(Debug)]
enum Moment {
    /// An exact instant, with the zone it was written in if any.
    Instant {
        ts: Timestamp,
        /// The explicit UTC offset written in the text, if any (none for Unix seconds).
        offset: Option<Offset>,
        /// The zone to show it in when no other is given.
        zone: TimeZone,
    },
    /// A wall-clock date and time with no offset, to be read in some zone.
    Local(DateTime),
}

impl Moment {
    /// The moment as a zoned datetime: in `zone` when given, else in its own zone
    /// (local times in UTC).
    fn in_zone(self, zone: Option<&TimeZone>, param: &str) -> Result<Zoned, String> {
        match self {
            Moment::Instant { ts, zone: own, .. } => Ok(ts.to_zoned(zone.cloned().unwrap_or(own))),
            Moment::Local(dt) => {
                let tz = zone.cloned().unwrap_or(TimeZone::UTC);
                dt.to_zoned(tz).map_err(|e| {
                    format!("`{param}` `{dt}` cannot be placed in that time zone: {e}")
                })
            }
        }
    }
}

fn parse_moment(text: &str, param: &str) -> Result<Moment, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("`{param}` is empty. {TIMESTAMP_HELP}"));
    }
    if text.len() > MAX_TIMESTAMP_LEN {
        return Err(format!(
            "`{param}` is {} bytes long; a timestamp is at most {MAX_TIMESTAMP_LEN}. {TIMESTAMP_HELP}",
            text.len()
        ));
    }
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return unix_seconds(text, param);
    }
    let pieces_error = match Pieces::parse(text) {
        Ok(pieces) => return from_pieces(text, &pieces, param),
        Err(e) => e,
    };
    if let Ok(zoned) = jiff::fmt::rfc2822::parse(text) {
        return Ok(Moment::Instant {
            ts: zoned.timestamp(),
            offset: Some(zoned.offset()),
            zone: fixed_or_utc(zoned.offset()),
        });
    }
    Err(format!(
        "could not parse `{param}` `{text}` ({pieces_error}). {TIMESTAMP_HELP}"
    ))
}

fn unix_seconds(text: &str, param: &str) -> Result<Moment, String> {
    let out_of_range = || {
        format!(
            "`{param}` `{text}` is out of range for Unix seconds (years -9999 to 9999). If it is in \
             milliseconds, divide it by 1000."
        )
    };
    let seconds: i64 = text.parse().map_err(|_| out_of_range())?;
    let ts = Timestamp::from_second(seconds).map_err(|_| out_of_range())?;
    Ok(Moment::Instant {
        ts,
        offset: None,
        zone: TimeZone::UTC,
    })
}

fn from_pieces(text: &str, pieces: &Pieces, param: &str) -> Result<Moment, String> {
    let time = pieces.time().unwrap_or(Time::midnight());
    let datetime = pieces.date().to_datetime(time);
    if pieces.time_zone_annotation().is_some() {
        let zoned: Zoned = text.parse().map_err(|e| {
            format!(
                "could not read `{param}` `{text}`: {e}. Check the zone name in brackets (e.g. \
                 `[Europe/Paris]`) and that the offset matches it, or leave out the offset."
            )
        })?;
        let offset = pieces.offset().map(|_| zoned.offset());
        return Ok(Moment::Instant {
            ts: zoned.timestamp(),
            offset,
            zone: zoned.time_zone().clone(),
        });
    }
    match pieces.offset() {
        None => Ok(Moment::Local(datetime)),
        Some(offset) => {
            let numeric = offset.to_numeric_offset();
            let ts = numeric
                .to_timestamp(datetime)
                .map_err(|e| format!("`{param}` `{text}` is out of range: {e}"))?;
            let zone = match offset {
                PiecesOffset::Zulu => TimeZone::UTC,
                _ => fixed_or_utc(numeric),
            };
            Ok(Moment::Instant {
                ts,
                offset: Some(numeric),
                zone,
            })
        }
    }
}

fn fixed_or_utc(offset: Offset) -> TimeZone {
    if offset == Offset::UTC {
        TimeZone::UTC
    } else {
        TimeZone::fixed(offset)
    }
}

// ---------------------------------------------------------------------------
// Output

fn iso(zoned: &Zoned) -> String {
    zoned
        .timestamp()
        .display_with_offset(zoned.offset())
        .to_string()
}

fn time_info(zoned: &Zoned) -> TimeInfo {
    let tz = zoned.time_zone();
    let info = tz.to_offset_info(zoned.timestamp());
    let abbreviation = match info.abbreviation() {
        "" => offset_string(zoned.offset()).replace(':', ""),
        abbreviation => abbreviation.to_string(),
    };
    let week = zoned.date().iso_week_date();
    let weekday = match zoned.weekday() {
        jiff::civil::Weekday::Monday => Weekday::Monday,
        jiff::civil::Weekday::Tuesday => Weekday::Tuesday,
        jiff::civil::Weekday::Wednesday => Weekday::Wednesday,
        jiff::civil::Weekday::Thursday => Weekday::Thursday,
        jiff::civil::Weekday::Friday => Weekday::Friday,
        jiff::civil::Weekday::Saturday => Weekday::Saturday,
        jiff::civil::Weekday::Sunday => Weekday::Sunday,
    };
    TimeInfo {
        iso8601: iso(zoned),
        date: zoned.date().to_string(),
        time: zoned.time().to_string(),
        unix_seconds: zoned.timestamp().as_second(),
        time_zone: zone_name(tz, zoned.offset()),
        utc_offset: offset_string(zoned.offset()),
        readable: format!(
            "{}, {} {}",
            zoned.strftime("%A"),
            zoned.strftime("%-d %B %Y, %H:%M:%S"),
            abbreviation
        ),
        abbreviation,
        is_dst: info.dst().is_dst(),
        weekday,
        day_of_year: zoned.day_of_year().unsigned_abs(),
        iso_week: format!("{:04}-W{:02}", week.year(), week.week()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok<T>(r: Result<T, String>) -> T {
        match r {
            Ok(v) => v,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }

    #[track_caller]
    fn err_contains<T: std::fmt::Debug>(r: Result<T, String>, needles: &[&str]) {
        match r {
            Ok(v) => panic!("expected an error, got {v:?}"),
            Err(e) => {
                for needle in needles {
                    assert!(e.contains(needle), "error should contain `{needle}`: {e}");
                }
            }
        }
    }

    fn duration() -> Duration {
        Duration {
            years: None,
            months: None,
            weeks: None,
            days: None,
            hours: None,
            minutes: None,
            seconds: None,
        }
    }

    #[test]
    fn now_in_utc_and_zones() {
        let utc = ok(now(None));
        assert_eq!(utc.time_zone, "UTC");
        assert_eq!(utc.utc_offset, "+00:00");
        assert!(utc.iso8601.ends_with("+00:00"), "{}", utc.iso8601);
        assert!(utc.unix_seconds > 1_700_000_000);
        assert!(
            !utc.time.contains('.'),
            "now is whole seconds: {}",
            utc.time
        );
        let tokyo = ok(now(Some("Asia/Tokyo")));
        assert_eq!(tokyo.time_zone, "Asia/Tokyo");
        assert_eq!(tokyo.utc_offset, "+09:00");
        assert_eq!(tokyo.abbreviation, "JST");
        assert!(!tokyo.is_dst);
        assert!(tokyo.unix_seconds - utc.unix_seconds < 5);
        let blank = ok(now(Some("  ")));
        assert_eq!(blank.time_zone, "UTC");
    }

    #[test]
    fn zone_names() {
        assert_eq!(ok(now(Some("europe/paris"))).time_zone, "Europe/Paris");
        assert_eq!(
            ok(now(Some("America/New York"))).time_zone,
            "America/New_York"
        );
        assert_eq!(ok(now(Some("gmt"))).time_zone, "UTC");
        assert_eq!(ok(now(Some("Z"))).time_zone, "UTC");
        let fixed = ok(now(Some("+05:30")));
        assert_eq!(fixed.time_zone, "+05:30");
        assert_eq!(fixed.utc_offset, "+05:30");
        assert_eq!(ok(now(Some("UTC-3"))).utc_offset, "-03:00");
        assert_eq!(ok(now(Some("-0800"))).utc_offset, "-08:00");
        assert_eq!(ok(now(Some("GMT+01:00"))).utc_offset, "+01:00");
    }

    #[test]
    fn unknown_zones_get_suggestions() {
        err_contains(
            now(Some("Paris")),
            &["unknown time zone `Paris`", "`Europe/Paris`", "Area/City"],
        );
        err_contains(now(Some("new york")), &["`America/New_York`"]);
        err_contains(
            now(Some("PST")),
            &["abbreviations", "`America/Los_Angeles`"],
        );
        err_contains(
            now(Some("Mars/Olympus")),
            &["unknown time zone", "Europe/Paris"],
        );
        err_contains(now(Some("+25:00")), &["out of range", "-18:00"]);
        err_contains(now(Some("+5:3x")), &["+HH:MM"]);
        err_contains(now(Some(&"x".repeat(100))), &["too long"]);
        err_contains(convert("2024-01-01", "Nowhere", None), &["`to-zone`"]);
        err_contains(
            convert("2024-01-01", "UTC", Some("Nowhere")),
            &["`from-zone`"],
        );
    }

    #[test]
    fn time_info_fields() {
        let t = ok(convert("2024-03-10T14:30:00Z", "Europe/Paris", None));
        assert_eq!(t.iso8601, "2024-03-10T15:30:00+01:00");
        assert_eq!(t.date, "2024-03-10");
        assert_eq!(t.time, "15:30:00");
        assert_eq!(t.unix_seconds, 1_710_081_000);
        assert_eq!(t.time_zone, "Europe/Paris");
        assert_eq!(t.utc_offset, "+01:00");
        assert_eq!(t.abbreviation, "CET");
        assert!(!t.is_dst);
        assert_eq!(t.weekday, Weekday::Sunday);
        assert_eq!(t.day_of_year, 70);
        assert_eq!(t.iso_week, "2024-W10");
        assert_eq!(t.readable, "Sunday, 10 March 2024, 15:30:00 CET");

        let summer = ok(convert("2024-07-01T12:00:00Z", "Europe/Paris", None));
        assert_eq!(summer.abbreviation, "CEST");
        assert!(summer.is_dst);
        assert_eq!(ok(convert("2024-12-30", "UTC", None)).iso_week, "2025-W01");
        assert_eq!(ok(convert("2024-12-31", "UTC", None)).day_of_year, 366);
    }

    #[test]
    fn conversion_inputs() {
        let tokyo = ok(convert(
            "2024-03-10 15:00",
            "Asia/Tokyo",
            Some("Europe/London"),
        ));
        assert_eq!(tokyo.iso8601, "2024-03-11T00:00:00+09:00");
        assert_eq!(tokyo.weekday, Weekday::Monday);
        // Unix seconds, offsets, bracketed zones and RFC 2822 all name the same instant.
        for input in [
            "1710081000",
            "2024-03-10T14:30:00Z",
            "2024-03-10T14:30:00+00:00",
            "2024-03-10T15:30:00+01:00",
            "2024-03-10T15:30:00+01:00[Europe/Paris]",
            "2024-03-10T15:30[Europe/Paris]",
            "Sun, 10 Mar 2024 14:30:00 +0000",
            "20240310T143000Z",
            "  2024-03-10t14:30:00z  ",
        ] {
            let t = ok(convert(input, "UTC", None));
            assert_eq!(t.iso8601, "2024-03-10T14:30:00+00:00", "input {input}");
        }
        // Local time defaults to UTC; a date alone is midnight.
        assert_eq!(
            ok(convert("2024-03-10", "UTC", None)).iso8601,
            "2024-03-10T00:00:00+00:00"
        );
        assert_eq!(
            ok(convert("2024-03-10T12:00", "America/New_York", None)).iso8601,
            "2024-03-10T08:00:00-04:00"
        );
        // Fractions are kept; negative Unix seconds work.
        assert_eq!(
            ok(convert("2024-03-10T14:30:00.25Z", "UTC", None)).time,
            "14:30:00.25"
        );
        assert_eq!(ok(convert("-86400", "UTC", None)).date, "1969-12-31");
        // A consistent offset and from-zone are accepted.
        ok(convert(
            "2024-03-10T15:30:00+01:00",
            "UTC",
            Some("Europe/Paris"),
        ));
    }

    #[test]
    fn conversion_errors() {
        err_contains(
            convert("2024-03-10T14:30:00Z", "UTC", Some("Europe/Paris")),
            &["carries the UTC offset +00:00", "+01:00", "drop the offset"],
        );
        err_contains(
            convert("next tuesday", "UTC", None),
            &["could not parse `timestamp`", "2024-03-10T14:30:00Z"],
        );
        err_contains(convert("2024-13-01", "UTC", None), &["month", "1..=12"]);
        err_contains(convert("", "UTC", None), &["`timestamp` is empty"]);
        err_contains(convert("1710081000000", "UTC", None), &["milliseconds"]);
        err_contains(
            convert("2024-03-10T14:30:00+05:00[Europe/Paris]", "UTC", None),
            &["[Europe/Paris]"],
        );
        err_contains(convert(&"1".repeat(200), "UTC", None), &["at most 128"]);
    }

    #[test]
    fn adding_calendar_and_clock_time() {
        let mut d = duration();
        d.months = Some(1);
        assert_eq!(ok(add("2024-01-31", &d, None)).date, "2024-02-29");
        d.months = None;
        d.days = Some(90);
        assert_eq!(ok(add("2024-01-01", &d, None)).date, "2024-03-31");

        // A calendar day keeps the wall-clock time across the DST change; 24 hours do not.
        let mut day = duration();
        day.days = Some(1);
        let t = ok(add("2024-03-09T12:00:00", &day, Some("America/New_York")));
        assert_eq!(t.iso8601, "2024-03-10T12:00:00-04:00");
        let mut hours = duration();
        hours.hours = Some(24);
        let t = ok(add("2024-03-09T12:00:00", &hours, Some("America/New_York")));
        assert_eq!(t.iso8601, "2024-03-10T13:00:00-04:00");

        // Mixed signs and every field.
        let all = Duration {
            years: Some(1),
            months: Some(-1),
            weeks: Some(1),
            days: Some(-1),
            hours: Some(-2),
            minutes: Some(-30),
            seconds: Some(15),
        };
        let t = ok(add("2024-03-10T12:00:00Z", &all, None));
        assert_eq!(t.iso8601, "2025-02-16T09:30:15+00:00");

        // Nothing to add: same moment.
        assert_eq!(
            ok(add("2024-03-10T12:00:00Z", &duration(), None)).iso8601,
            "2024-03-10T12:00:00+00:00"
        );

        // The timestamp's own offset or zone is kept without `time-zone`.
        let t = ok(add("2024-03-10T12:00:00+05:30", &day, None));
        assert_eq!(t.iso8601, "2024-03-11T12:00:00+05:30");
        assert_eq!(t.time_zone, "+05:30");
        let t = ok(add("2024-03-30T12:00:00+01:00[Europe/Paris]", &day, None));
        assert_eq!(t.iso8601, "2024-03-31T12:00:00+02:00");
        // With `time-zone`, an instant is moved into it first.
        let t = ok(add("2024-03-10T12:00:00Z", &day, Some("Asia/Tokyo")));
        assert_eq!(t.iso8601, "2024-03-11T21:00:00+09:00");
    }

    #[test]
    fn adding_out_of_range() {
        let mut d = duration();
        d.years = Some(20000);
        err_contains(add("2024-01-01", &d, None), &["years -9999 to 9999"]);
        let mut d = duration();
        d.seconds = Some(i64::MAX);
        d.hours = Some(i64::MAX);
        err_contains(add("2024-01-01", &d, None), &["too large"]);
        let mut d = duration();
        d.years = Some(8000);
        err_contains(
            add("2024-01-01", &d, None),
            &["outside the supported dates"],
        );
    }

    #[test]
    fn differences() {
        let d = ok(difference(
            "2024-01-01",
            "2024-03-15T12:00:00",
            TimeUnit::Days,
            None,
        ));
        assert_eq!(d.amount, 74.5);
        assert_eq!(d.whole, 74);
        assert_eq!(d.total_seconds, 74 * 86400 + 43200);
        assert_eq!(d.breakdown, "74 days, 12 hours");
        assert_eq!(d.iso8601, "P74DT12H");
        assert_eq!(d.unit, TimeUnit::Days);

        let d = ok(difference(
            "2024-01-15",
            "2024-02-29T12:00",
            TimeUnit::Months,
            None,
        ));
        assert_eq!((d.amount, d.whole), (1.5, 1));
        assert_eq!(d.breakdown, "1 month, 14 days, 12 hours");

        let d = ok(difference(
            "1990-05-17",
            "2024-03-10",
            TimeUnit::Years,
            None,
        ));
        assert_eq!(d.whole, 33);
        assert_eq!(d.breakdown, "33 years, 9 months, 22 days");
        assert!(d.amount > 33.8 && d.amount < 33.9);

        let d = ok(difference(
            "2024-03-10T12:00:00Z",
            "2024-03-10T10:30:00Z",
            TimeUnit::Hours,
            None,
        ));
        assert_eq!(d.amount, -1.5);
        assert_eq!(d.whole, -1);
        assert_eq!(d.total_seconds, -5400);
        assert_eq!(d.breakdown, "1 hour, 30 minutes");
        assert_eq!(d.iso8601, "-PT1H30M");

        let d = ok(difference(
            "2024-01-01",
            "2024-01-01T00:00:00Z",
            TimeUnit::Seconds,
            None,
        ));
        assert_eq!(
            (d.amount, d.breakdown.as_str(), d.iso8601.as_str()),
            (0.0, "0 seconds", "PT0S")
        );

        let d = ok(difference(
            "2024-01-01",
            "2024-02-12",
            TimeUnit::Weeks,
            None,
        ));
        assert_eq!(d.breakdown, "6 weeks");
        assert_eq!(d.whole, 6);

        // Across a DST change a calendar day is 23 hours.
        let d = ok(difference(
            "2024-03-09T12:00:00",
            "2024-03-10T12:00:00",
            TimeUnit::Days,
            Some("America/New_York"),
        ));
        assert_eq!((d.amount, d.total_seconds), (1.0, 23 * 3600));

        // Without `time-zone`, a local `to` is read in the zone of `from`.
        let d = ok(difference(
            "2024-03-10T00:00:00+01:00[Europe/Paris]",
            "2024-03-11",
            TimeUnit::Hours,
            None,
        ));
        assert_eq!(d.amount, 24.0);

        // Mixed zones: both are the same instant.
        let d = ok(difference(
            "2024-03-10T15:30:00+01:00[Europe/Paris]",
            "2024-03-10T14:30:00Z",
            TimeUnit::Minutes,
            None,
        ));
        assert_eq!(d.amount, 0.0);
    }

    #[test]
    fn difference_errors() {
        err_contains(
            difference("yesterday", "2024-01-01", TimeUnit::Days, None),
            &["`from`"],
        );
        err_contains(
            difference("2024-01-01", "soon", TimeUnit::Days, None),
            &["`to`"],
        );
        err_contains(
            difference("2024-01-01", "2024-01-02", TimeUnit::Days, Some("Moon")),
            &["`time-zone`"],
        );
    }

    #[test]
    fn offsets_format_with_seconds_when_needed() {
        assert_eq!(
            offset_string(Offset::from_seconds(-(3600 * 9 + 30 * 60)).unwrap()),
            "-09:30"
        );
        assert_eq!(
            offset_string(Offset::from_seconds(561).unwrap()),
            "+00:09:21"
        );
    }
}
