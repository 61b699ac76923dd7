//! Asking puppet itself for its settings (`puppet config print`), for nodes
//! where the file system does not tell which packaging's defaults apply.
//!
//! It costs one start of Ruby (about 0.9 s on the development machine), so it
//! is only done when [`crate::settings::Layout::detect`] cannot decide; the
//! run's timeout and the task's signal handling cover it like the run itself.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::Failure;
use crate::process::{self, Limits, Signals};
use crate::settings::Settings;

/// The settings asked for, in the order `puppet config print` is given them.
pub const KEYS: &[&str] = &[
    "confdir",
    "vardir",
    "statedir",
    "publicdir",
    "lastrunfile",
    "lastrunreport",
    "agent_catalog_run_lockfile",
    "agent_disabled_lockfile",
    "noop",
    "server",
    "server_list",
    "environment",
];

/// The argv of the question.
pub fn argv(bin: &Path, confdir: Option<&Path>) -> Vec<OsString> {
    let mut argv: Vec<OsString> = vec![bin.into(), "config".into(), "print".into()];
    if let Some(dir) = confdir {
        let mut flag = OsString::from("--confdir=");
        flag.push(dir);
        argv.push(flag);
    }
    argv.extend(["--section", "agent"].map(OsString::from));
    argv.extend(KEYS.iter().map(OsString::from));
    argv
}

/// Runs `puppet config print` for [`KEYS`] and reads the answer.
pub fn ask(
    bin: &Path,
    confdir: Option<&Path>,
    limits: Limits,
    signals: &Signals,
) -> Result<Settings, Failure> {
    let argv = argv(bin, confdir);
    let finished = process::run(&argv, limits, signals).map_err(|e| Failure::SpawnFailed {
        program: bin.to_path_buf(),
        source: e,
    })?;
    if let Some(failure) = finished.stop_failure(limits.timeout.map(|t| t.as_secs())) {
        return Err(failure);
    }
    let parsed = (finished.code == Some(0))
        .then(|| parse(&finished.output))
        .flatten();
    parsed.ok_or_else(|| Failure::SettingsUnknown {
        command: argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" "),
        output: shorten(&finished.output),
    })
}

/// Reads `key = value` lines; `None` unless every path setting is there.
pub fn parse(text: &str) -> Option<Settings> {
    let values: BTreeMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.split_once(" = "))
        .filter(|(k, _)| KEYS.contains(k))
        .map(|(k, v)| (k, v.trim()))
        .collect();
    let path = |k: &str| {
        values
            .get(k)
            .filter(|v| Path::new(v).is_absolute())
            .map(PathBuf::from)
    };
    let opt = |k: &str| {
        values
            .get(k)
            .filter(|v| !v.is_empty())
            .map(|v| (*v).to_owned())
    };
    Some(Settings {
        confdir: path("confdir")?,
        vardir: path("vardir")?,
        statedir: path("statedir")?,
        publicdir: path("publicdir")?,
        lastrunfile: path("lastrunfile")?,
        lastrunreport: path("lastrunreport")?,
        catalog_lock: path("agent_catalog_run_lockfile")?,
        disabled_lock: path("agent_disabled_lockfile")?,
        noop: opt("noop").is_some_and(|v| v.eq_ignore_ascii_case("true")),
        server: opt("server"),
        server_list: opt("server_list"),
        environment: opt("environment"),
    })
}

fn shorten(output: &str) -> String {
    let mut s: String = output.chars().take(600).collect();
    if s.len() < output.len() {
        s.push_str("...");
    }
    s.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `puppet config print --section agent <KEYS>` of Debian 7.23 (alphabetical).
    const DEBIAN: &str =
        "agent_catalog_run_lockfile = /var/cache/puppet/state/agent_catalog_run.lock
agent_disabled_lockfile = /var/cache/puppet/state/agent_disabled.lock
confdir = /etc/puppet
environment = production
lastrunfile = /var/cache/puppet/public/last_run_summary.yaml
lastrunreport = /var/cache/puppet/state/last_run_report.yaml
noop = false
publicdir = /var/cache/puppet/public
server = localhost
server_list = 
statedir = /var/cache/puppet/state
vardir = /var/cache/puppet
";

    #[test]
    fn reads_a_real_answer() {
        let s = parse(DEBIAN).unwrap();
        assert_eq!(s.confdir, Path::new("/etc/puppet"));
        assert_eq!(
            s.catalog_lock,
            Path::new("/var/cache/puppet/state/agent_catalog_run.lock")
        );
        assert_eq!(
            s.lastrunreport,
            Path::new("/var/cache/puppet/state/last_run_report.yaml")
        );
        assert_eq!(s.server.as_deref(), Some("localhost"));
        assert_eq!(s.server_list, None);
        assert!(!s.noop);
    }

    #[test]
    fn an_incomplete_or_relative_answer_is_refused() {
        assert!(parse("confdir = /etc/puppet\n").is_none());
        let relative = DEBIAN.replace("vardir = /var/cache/puppet", "vardir = cache");
        assert!(parse(&relative).is_none());
        assert!(parse("Error: Could not parse\n").is_none());
    }

    #[test]
    fn argv_passes_the_confdir_and_no_shell() {
        let a = argv(Path::new("/usr/bin/puppet"), Some(Path::new("/n/etc")));
        let a: Vec<_> = a.iter().map(|s| s.to_str().unwrap()).collect();
        assert_eq!(
            &a[..6],
            [
                "/usr/bin/puppet",
                "config",
                "print",
                "--confdir=/n/etc",
                "--section",
                "agent"
            ]
        );
        assert_eq!(a.len(), 6 + KEYS.len());
    }
}
