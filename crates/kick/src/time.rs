//! Timestamps and durations as the API sends them and kick prints them.

use std::time::SystemTime;

/// Parses an ISO-8601 UTC timestamp (`2016-05-20T16:45:31Z`, optionally
/// with fractional seconds); `None` for anything else.
pub fn parse(ts: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(ts.trim().trim_end_matches('Z')).ok()
}

/// Seconds between two timestamps, when both parse and are in order.
pub fn between(start: &str, end: &str) -> Option<f64> {
    seconds(parse(start)?, end)
}

/// Seconds from `start` to the timestamp `end`, when it parses and is not
/// earlier.
pub fn seconds(start: SystemTime, end: &str) -> Option<f64> {
    parse(end)?
        .duration_since(start)
        .ok()
        .map(|d| d.as_secs_f64())
}

/// `0.4s`, `12.3s`, `4m 05s`, `1h 02m`.
pub fn human(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "?".to_owned();
    }
    if secs < 60.0 {
        return format!("{secs:.1}s");
    }
    let total = secs.round() as u64;
    let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
    if h > 0 {
        format!("{h}h {m:02}m")
    } else {
        format!("{m}m {s:02}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_api_timestamps() {
        assert_eq!(
            between("2016-08-15T21:34:34Z", "2016-08-15T21:34:47Z"),
            Some(13.0)
        );
        let d = between("2017-07-14T15:57:33.640Z", "2017-07-14T15:57:34.140Z").unwrap();
        assert!((d - 0.5).abs() < 1e-6);
        assert_eq!(parse("yesterday"), None);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human(0.04), "0.0s");
        assert_eq!(human(12.34), "12.3s");
        assert_eq!(human(245.0), "4m 05s");
        assert_eq!(human(3720.0), "1h 02m");
    }
}
