//! `last_run_summary.yaml`: whether this run wrote it, and what it says.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::SystemTime;

use orchestrator_types::psick::Resources;
use serde_json::Value;

/// Summaries are a few KiB; a larger file is not one Puppet wrote.
const MAX_SUMMARY_BYTES: u64 = 4 * 1024 * 1024;

/// Identity of the summary file at one moment, to tell whether a run
/// rewrote it (Puppet replaces it by rename, so the inode changes too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp(Option<(SystemTime, u64, u64)>);

impl Stamp {
    /// Takes the stamp of `path` now.
    pub fn of(path: &Path) -> Stamp {
        Stamp(
            std::fs::metadata(path)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.ino(), m.len()))),
        )
    }

    /// True when the file exists now and differs from `before`.
    pub fn written_since(self, before: Stamp) -> bool {
        self.0.is_some() && self != before
    }
}

/// What the task reports from a summary.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    /// Resource counts, `noop_pending` included.
    pub resources: Resources,
    /// `version.config`, empty values dropped.
    pub config_version: Option<String>,
    /// `version.puppet`.
    pub puppet_version: Option<String>,
    /// `application.converged_environment`.
    pub environment: Option<String>,
}

/// Reads and parses the summary; `None` if it cannot be read or parsed.
pub fn read(path: &Path, noop: bool) -> Option<Summary> {
    let text = crate::lockfile::read_regular(path, MAX_SUMMARY_BYTES)?;
    parse(&text, noop)
}

/// Parses summary YAML. `noop_pending` is `events.noop`, or for a noop run
/// without that key, `resources.out_of_sync`.
pub fn parse(text: &str, noop: bool) -> Option<Summary> {
    let doc = Value::Object(puppet_report::yaml::mapping(text, |_| true).ok()??);
    let count = |section: &str, key: &str| doc.get(section)?.get(key)?.as_u64();
    let string = |section: &str, key: &str| {
        let v = doc.get(section)?.get(key)?;
        let s = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        Some(s).filter(|s| !s.is_empty())
    };
    let out_of_sync = count("resources", "out_of_sync").unwrap_or(0);
    let noop_pending = count("events", "noop").unwrap_or(if noop { out_of_sync } else { 0 });
    Some(Summary {
        resources: Resources {
            total: count("resources", "total").unwrap_or(0),
            changed: count("resources", "changed").unwrap_or(0),
            failed: count("resources", "failed").unwrap_or(0),
            out_of_sync,
            skipped: count("resources", "skipped").unwrap_or(0),
            noop_pending,
        },
        config_version: string("version", "config"),
        puppet_version: string("version", "puppet"),
        environment: string("application", "converged_environment"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real Debian puppet-agent 7.23.0 summary after a `--noop` run.
    const NOOP_7_23: &str = "---
version:
  config: 1795460334
  puppet: 7.23.0
application:
  run_mode: agent
  initial_environment: production
  converged_environment: production
resources:
  changed: 0
  corrective_change: 0
  failed: 0
  failed_to_restart: 0
  out_of_sync: 2
  restarted: 0
  scheduled: 0
  skipped: 0
  total: 9
time:
  catalog_application: 0.1402918859998863
  config_retrieval: 0.4438325950000035
  convert_catalog: 0.046382183000105215
  fact_generation: 0.38343801699988944
  file: 0.008296327
  filebucket: 9.9166e-05
  notify: 0.013362617
  plugin_sync: 0.4309798850001698
  schedule: 0.000831038
  startup_time: 0.793640772
  total: 2.427548454
  transaction_evaluation: 0.10839964299998428
  last_run: 1795460334
changes:
  total: 0
events:
  failure: 0
  noop: 2
  success: 0
  total: 2
";

    #[test]
    fn real_noop_summary() {
        let s = parse(NOOP_7_23, true).unwrap();
        assert_eq!(
            s.resources,
            Resources {
                total: 9,
                changed: 0,
                failed: 0,
                out_of_sync: 2,
                skipped: 0,
                noop_pending: 2
            }
        );
        assert_eq!(s.config_version.as_deref(), Some("1795460334"));
        assert_eq!(s.puppet_version.as_deref(), Some("7.23.0"));
        assert_eq!(s.environment.as_deref(), Some("production"));
    }

    #[test]
    fn failed_run_summary_has_empty_config_version() {
        let s = parse(
            "version:\n  config:\n  puppet: 7.23.0\nresources:\n  total: 0\n\
             time:\n  total: 1.2\nevents:\n  failure: 0\n",
            false,
        )
        .unwrap();
        assert_eq!(s.config_version, None);
        assert_eq!(s.resources, Resources::default());
    }

    #[test]
    fn noop_pending_falls_back_to_out_of_sync_only_in_noop() {
        let text = "version: {config: \"abc\", puppet: 7.23.0}\n\
                    resources: {out_of_sync: 3, failed: 1, failed_to_restart: 1, skipped: 2}\n";
        let s = parse(text, true).unwrap();
        assert_eq!(s.resources.noop_pending, 3);
        assert_eq!(s.resources.failed, 1);
        assert_eq!(s.config_version.as_deref(), Some("abc"));
        assert_eq!(parse(text, false).unwrap().resources.noop_pending, 0);
    }

    #[test]
    fn garbage_is_none() {
        assert_eq!(parse("[1, 2", false), None);
        assert_eq!(parse("- a\n- b\n", false), None);
        assert_eq!(parse("just text", false), None);
    }

    #[test]
    fn stamps_see_rewrites() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("s.yaml");
        let absent = Stamp::of(&p);
        assert!(!Stamp::of(&p).written_since(absent));
        std::fs::write(&p, "a: 1\n").unwrap();
        let first = Stamp::of(&p);
        assert!(first.written_since(absent));
        assert!(!Stamp::of(&p).written_since(first));
        let tmp = d.path().join("t.yaml");
        std::fs::write(&tmp, "a: 2\n").unwrap();
        std::fs::rename(&tmp, &p).unwrap();
        assert!(Stamp::of(&p).written_since(first));
    }
}
