//! Timestamps as the orchestrator writes them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the epoch, with sub-second precision.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

fn system_time(t: f64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs_f64(t.max(0.0))
}

/// ISO-8601 UTC, second precision, `Z` (job and node data).
pub fn seconds(t: f64) -> String {
    humantime::format_rfc3339_seconds(system_time(t)).to_string()
}

/// ISO-8601 UTC, millisecond precision, `Z` (inventory).
pub fn millis(t: f64) -> String {
    humantime::format_rfc3339_millis(system_time(t)).to_string()
}

/// Seconds rounded to milliseconds, as node durations are sent.
pub fn round_ms(d: f64) -> f64 {
    (d * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats() {
        assert_eq!(super::seconds(1_471_296_874.6), "2016-08-15T21:34:34Z");
        assert_eq!(super::millis(1_500_047_853.64), "2017-07-14T15:57:33.640Z");
    }
}
