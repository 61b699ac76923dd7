//! The fields pxp-module-puppet takes from `last_run_report.yaml`: `time`,
//! `transaction_uuid`, `environment`, `status` and the resource metrics.
//!
//! The report is Ruby-tagged YAML (`!ruby/object:Puppet::Transaction::Report`);
//! like pxp-module-puppet, the tags are ignored. Only these top-level
//! fields are read into values ([`puppet_report::yaml`]); the rest of the
//! report (its resource statuses, its logs) is skipped as it is parsed.

use std::collections::BTreeMap;

use puppet_report::Problem;
use serde_json::Value;

/// Reports of large catalogs run to a few MiB; anything far larger is not
/// read into memory.
pub const MAX_REPORT_BYTES: u64 = 64 * 1024 * 1024;

/// What the result takes from a report.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReportFields {
    /// `time`, as written.
    pub time: Option<String>,
    /// `transaction_uuid`.
    pub transaction_uuid: Option<String>,
    /// `environment`.
    pub environment: Option<String>,
    /// `status`.
    pub status: Option<String>,
    /// `metrics.resources.values` as `{name: value}`.
    pub metrics: BTreeMap<String, Value>,
}

/// The top-level fields read.
const FIELDS: [&str; 5] = [
    "time",
    "transaction_uuid",
    "environment",
    "status",
    "metrics",
];

/// Parses report text; `Err` says why it is not a report.
pub fn parse(text: &str) -> Result<ReportFields, String> {
    let doc = puppet_report::yaml::mapping(text, |k| FIELDS.contains(&k))
        .map_err(|e| match e {
            Problem::Yaml(e) => e.to_string(),
            other => other.to_string(),
        })?
        .ok_or("the report is not a YAML mapping")?;
    let text_of = |key: &str| match doc.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let mut metrics = BTreeMap::new();
    if let Some(Value::Array(values)) = doc
        .get("metrics")
        .and_then(|m| m.get("resources"))
        .and_then(|r| r.get("values"))
    {
        // Each entry is [name, label, value].
        for entry in values {
            if let Value::Array(triple) = entry
                && let (Some(Value::String(name)), Some(value)) = (triple.first(), triple.get(2))
            {
                metrics.insert(name.clone(), scalar(value));
            }
        }
    }
    Ok(ReportFields {
        time: text_of("time"),
        transaction_uuid: text_of("transaction_uuid"),
        environment: text_of("environment"),
        status: text_of("status"),
        metrics,
    })
}

/// A metric's value: a number, text or boolean; anything else null.
fn scalar(v: &Value) -> Value {
    match v {
        Value::Number(_) | Value::String(_) | Value::Bool(_) => v.clone(),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The head of a real Debian puppet-agent 7.23 report (logs and most
    /// resource statuses cut).
    const REPORT: &str = "--- !ruby/object:Puppet::Transaction::Report
host: e2e-node
time: '2026-12-01T09:20:11.348751402+00:00'
configuration_version: 1795460334
transaction_uuid: 5a5c2a0e-7d0b-4a3c-9c55-2f1e0d7c6b11
report_format: 12
puppet_version: 7.23.0
status: changed
transaction_completed: true
noop: false
noop_pending: false
environment: production
logs: []
metrics:
  resources: !ruby/object:Puppet::Util::Metric
    name: resources
    label: Resources
    values:
    - - total
      - Total
      - 9
    - - changed
      - Changed
      - 2
    - - failed
      - Failed
      - 0
  time: !ruby/object:Puppet::Util::Metric
    name: time
    label: Time
    values:
    - - total
      - Total
      - 2.4
resource_statuses: {}
";

    #[test]
    fn reads_a_tagged_report() {
        let r = parse(REPORT).unwrap();
        assert_eq!(
            r.time.as_deref(),
            Some("2026-12-01T09:20:11.348751402+00:00")
        );
        assert_eq!(
            r.transaction_uuid.as_deref(),
            Some("5a5c2a0e-7d0b-4a3c-9c55-2f1e0d7c6b11")
        );
        assert_eq!(r.environment.as_deref(), Some("production"));
        assert_eq!(r.status.as_deref(), Some("changed"));
        assert_eq!(r.metrics["total"], 9);
        assert_eq!(r.metrics["changed"], 2);
        assert_eq!(r.metrics.len(), 3, "only resource metrics");
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse("- a\n- b\n").is_err());
        assert!(parse("{unclosed").is_err());
        assert_eq!(
            parse("status: failed\n").unwrap().status.as_deref(),
            Some("failed")
        );
    }
}
