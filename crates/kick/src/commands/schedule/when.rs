//! `--at TIME` and `--every DURATION` → PE's `schedule` object.

use std::time::{Duration, SystemTime};

use orchestrator_types::schedule::{Interval, Schedule};

use crate::cli::When;
use crate::error::Error;

/// Longest interval PE-compatible servers take (the orchestrator's limit too).
pub const MAX_INTERVAL: Duration = Duration::from_secs(365 * 24 * 3600);
/// How far in the past `--at` may be: clocks differ a little, and `now`
/// is a moment ago by the time the request arrives.
const SLACK: Duration = Duration::from_secs(5);

/// The schedule for `when`, judged at `now`: the first run at `--at` (or
/// now), every `--every` (or once).
pub fn schedule(when: &When, now: SystemTime) -> Result<Schedule, Error> {
    let start = match when.at.as_deref() {
        None => now,
        Some(at) => parse_at(at, now)?,
    };
    if start + SLACK < now {
        return Err(Error::Usage(format!(
            "--at {} is in the past ({} now); give a later time, or `now`",
            when.at.as_deref().unwrap_or_default(),
            humantime::format_rfc3339_seconds(now)
        )));
    }
    let interval = when.every.as_deref().map(parse_every).transpose()?;
    Ok(Schedule {
        start_time: humantime::format_rfc3339_seconds(start).to_string(),
        interval: interval.map(|d| Interval {
            units: "seconds".into(),
            value: d.as_secs(),
        }),
    })
}

/// `now`, or an RFC 3339 time: UTC with `Z`, or with a `±HH:MM` offset.
fn parse_at(at: &str, now: SystemTime) -> Result<SystemTime, Error> {
    let s = at.trim();
    if s.eq_ignore_ascii_case("now") {
        return Ok(now);
    }
    let bad = || {
        Error::Usage(format!(
            "--at {at:?} is not a time; give RFC 3339 such as 2026-12-01T22:00:00Z or 2026-12-01T23:00:00+01:00, or `now`"
        ))
    };
    // A date alone, or a time without its offset, is refused: which day or
    // zone was meant is not known.
    let t: jiff::Timestamp = s.parse().map_err(|_| bad())?;
    // jiff also reads ISO 8601's offsets up to ±25:59; RFC 3339's end at
    // ±23:59.
    let offset = jiff::fmt::temporal::Pieces::parse(s)
        .map_err(|_| bad())?
        .to_numeric_offset();
    if offset.is_some_and(|o| o.seconds().unsigned_abs() >= 24 * 3600) {
        return Err(bad());
    }
    SystemTime::try_from(t).map_err(|_| bad())
}

/// `--every`: a humantime duration of whole seconds, 1s to a year.
fn parse_every(every: &str) -> Result<Duration, Error> {
    let d = humantime::parse_duration(every.trim()).map_err(|e| {
        Error::Usage(format!(
            "--every {every:?} is not a duration ({e}); give one such as 30m, 12h or 1day"
        ))
    })?;
    if d.is_zero() {
        return Err(Error::Usage(
            "--every must be longer than zero; leave it out to run once".into(),
        ));
    }
    if d.subsec_nanos() != 0 {
        return Err(Error::Usage(format!(
            "--every {every:?} is not a whole number of seconds; the orchestrator schedules in seconds"
        )));
    }
    if d > MAX_INTERVAL {
        return Err(Error::Usage(format!(
            "--every {every:?} is longer than a year, the longest interval the orchestrator takes"
        )));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: &str) -> SystemTime {
        humantime::parse_rfc3339(t).unwrap()
    }

    fn when(at: Option<&str>, every: Option<&str>) -> When {
        When {
            at: at.map(str::to_owned),
            every: every.map(str::to_owned),
        }
    }

    #[test]
    fn times_in_utc_with_offsets_and_now() {
        let now = at("2026-12-01T10:00:00Z");
        let s = schedule(&when(Some("2026-12-01T22:00:00Z"), None), now).unwrap();
        assert_eq!(s.start_time, "2026-12-01T22:00:00Z");
        assert_eq!(s.interval, None);
        let s = schedule(&when(Some("2026-12-01T23:30:00+01:00"), None), now).unwrap();
        assert_eq!(s.start_time, "2026-12-01T22:30:00Z");
        let s = schedule(&when(Some("2026-12-01T05:00:00-06:00"), None), now).unwrap();
        assert_eq!(s.start_time, "2026-12-01T11:00:00Z");
        let s = schedule(&when(Some("now"), Some("1h")), now).unwrap();
        assert_eq!(s.start_time, "2026-12-01T10:00:00Z");
        assert_eq!(s.interval.unwrap().value, 3600);
        // --every alone starts now.
        let s = schedule(&when(None, Some("1day 12h")), now).unwrap();
        assert_eq!(
            (s.start_time.as_str(), s.interval.unwrap().value),
            ("2026-12-01T10:00:00Z", 129_600)
        );
    }

    #[test]
    fn every_rfc3339_spelling_is_a_time() {
        let now = at("2026-12-01T10:00:00Z");
        // RFC 3339 (section 5.6) allows a lower-case `t` and `z`, and
        // fractions of a second.
        for (given, start) in [
            ("2026-12-01t22:00:00z", "2026-12-01T22:00:00Z"),
            ("2026-12-01t23:30:00+01:00", "2026-12-01T22:30:00Z"),
            ("2026-12-01T22:00:00.750Z", "2026-12-01T22:00:00Z"),
            ("2026-12-01T05:00:00.5-06:00", "2026-12-01T11:00:00Z"),
        ] {
            let s = schedule(&when(Some(given), None), now).unwrap();
            assert_eq!(s.start_time, start, "{given}");
        }
        // A time whose UTC is before 1970 is a time, and in the past.
        let e = schedule(&when(Some("1970-01-01T00:30:00+01:00"), None), now).unwrap_err();
        assert!(e.to_string().contains("is in the past"), "{e}");
    }

    #[test]
    fn past_and_malformed_times_are_refused() {
        let now = at("2026-12-01T10:00:00Z");
        let e = schedule(&when(Some("2026-12-01T09:00:00Z"), None), now).unwrap_err();
        assert!(e.to_string().contains("is in the past"), "{e}");
        for bad in [
            "tomorrow",
            "in 10m",
            "2026-12-01",
            "2026-12-01T22:00:00+25:00",
            "2026-12-01T22:00:00+1:00",
            "2026-13-01T22:00:00Z",
            "",
        ] {
            let e = schedule(&when(Some(bad), None), now).unwrap_err();
            assert!(e.to_string().contains("is not a time"), "{bad}: {e}");
        }
    }

    #[test]
    fn intervals_are_range_checked() {
        let now = SystemTime::now();
        for (bad, why) in [
            ("0s", "longer than zero"),
            ("1500ms", "whole number of seconds"),
            ("366days", "longer than a year"),
            ("often", "not a duration"),
            ("-1h", "not a duration"),
        ] {
            let e = schedule(&when(None, Some(bad)), now).unwrap_err();
            assert!(e.to_string().contains(why), "{bad}: {e}");
        }
        let s = schedule(&when(None, Some("365days")), now).unwrap();
        assert_eq!(s.interval.unwrap().value, MAX_INTERVAL.as_secs());
    }
}
