//! Result documents of the rest of the psick binary: the pxp-agent module
//! mode (a drop-in `pxp-module-puppet`, [`PxpRunResult`]),
//! `psick::system_update` ([`SystemUpdateResult`]) and
//! `psick::puppet_install` ([`PuppetInstallResult`]).
//!
//! `psick::puppet_agent`, `puppet_unlock` and `puppet_enable_noop` are in
//! [`crate::psick`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `error_type` values of the module's `run` action, exactly those of
/// pxp-module-puppet (so PE reads them the same way).
pub mod pxp_error {
    /// The request (or its flags) was not acceptable.
    pub const INVALID_JSON: &str = "invalid_json";
    /// The configured puppet executable does not exist.
    pub const NO_PUPPET_BIN: &str = "no_puppet_bin";
    /// No report was written by the run (or its path is unknown).
    pub const NO_LAST_RUN_REPORT: &str = "no_last_run_report";
    /// The report could not be parsed.
    pub const INVALID_LAST_RUN_REPORT: &str = "invalid_last_run_report";
    /// The agent is administratively disabled.
    pub const AGENT_DISABLED: &str = "agent_disabled";
    /// Another run held the lock for the whole wait.
    pub const AGENT_LOCKED: &str = "agent_locked";
    /// Puppet could not be started.
    pub const AGENT_FAILED_TO_START: &str = "agent_failed_to_start";
    /// Puppet exited non-zero (or was stopped).
    pub const AGENT_EXIT_NON_ZERO: &str = "agent_exit_non_zero";
}

/// Result of the module's `run` action: pxp-module-puppet's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PxpRunResult {
    /// The report's `time`, else `"unknown"`.
    pub time: String,
    /// The report's `transaction_uuid`, else `"unknown"`.
    pub transaction_uuid: String,
    /// The report's `environment`, else `"unknown"`.
    pub environment: String,
    /// The report's `status` (`changed`, `unchanged`, `failed`), else `"unknown"`.
    pub status: String,
    /// The report's resource metrics, `{name: value}`.
    #[serde(default)]
    pub metrics: BTreeMap<String, Value>,
    /// Puppet's exit code (without `--detailed-exitcodes`, as
    /// pxp-module-puppet runs it), `-1` when it did not run or was stopped.
    pub exitcode: i64,
    /// Always 1.
    pub version: u32,
    /// One of [`pxp_error`] on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// What went wrong, on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Not in pxp-module-puppet's result: when the module stopped the run
    /// (its timeout, or a signal), every process of the run the stop ended,
    /// puppet's exec resources and what they started included. Absent
    /// otherwise, so a run that was not stopped has Ruby's fields only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<Vec<crate::psick::StoppedProcess>>,
}

impl PxpRunResult {
    /// The result before anything is known (pxp-module-puppet's defaults).
    pub fn unknown() -> PxpRunResult {
        PxpRunResult {
            time: "unknown".into(),
            transaction_uuid: "unknown".into(),
            environment: "unknown".into(),
            status: "unknown".into(),
            metrics: BTreeMap::new(),
            exitcode: -1,
            version: 1,
            error_type: None,
            error: None,
            stopped: None,
        }
    }
}

/// `_error` kinds of `psick::system_update` and `psick::puppet_install`
/// (besides the shared `psick/invalid-params`, `psick/timeout`,
/// `psick/spawn-failed`).
pub mod package_kind {
    /// No supported package manager (apt, dnf, yum, zypper) on the node.
    pub const NO_PACKAGE_MANAGER: &str = "psick/no-package-manager";
    /// The requested option does not exist for this package manager
    /// (`security_only` with apt).
    pub const UNSUPPORTED: &str = "psick/unsupported";
    /// Another process held the package manager's lock for the whole wait.
    pub const PACKAGE_MANAGER_LOCKED: &str = "psick/package-manager-locked";
    /// A requested package (or version) is not known to the repositories.
    pub const PACKAGE_NOT_FOUND: &str = "psick/package-not-found";
    /// The package manager failed.
    pub const PACKAGE_MANAGER_FAILED: &str = "psick/package-manager-failed";
}

/// One package update: installed version before, version after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageUpdate {
    /// Package name.
    pub name: String,
    /// Installed version before (`null` for a new package pulled in).
    #[serde(default)]
    pub from: Option<String>,
    /// The candidate (noop) or installed (real run) version.
    pub to: String,
}

/// The members a package task's result ends with: what it ran, and how that went. Written once
/// for [`SystemUpdateResult`] and [`PuppetInstallResult`], flattened at the end of each (where
/// both documents have them, in this order).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PackageRun {
    /// The commands run, each an argv.
    #[serde(default)]
    pub commands: Vec<Vec<String>>,
    /// The package manager's output.
    #[serde(default, rename = "_output")]
    pub output: String,
    /// Present on failure.
    #[serde(default, rename = "_error", skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::psick::TaskError>,
}

/// Result of `psick::system_update`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemUpdateResult {
    /// Whether this was a noop run (the manager's simulation only).
    #[serde(default)]
    pub noop: bool,
    /// The package manager detected on the node: `apt`, `dnf`, `yum`, `zypper`.
    #[serde(default)]
    pub manager: Option<String>,
    /// Whether only security updates were asked for.
    #[serde(default)]
    pub security_only: bool,
    /// The `packages` the run was limited to; empty means all.
    #[serde(default)]
    pub packages: Vec<String>,
    /// Pending updates (noop) or the updates applied (real run).
    #[serde(default)]
    pub updates: Vec<PackageUpdate>,
    /// Whether the OS says a reboot is needed (`null` when it cannot tell).
    #[serde(default)]
    pub reboot_required: Option<bool>,
    /// The commands run, their output and the error, if any.
    #[serde(flatten)]
    pub run: PackageRun,
}

/// Result of `psick::puppet_install`.
///
/// It shares `noop` and `manager` with [`SystemUpdateResult`], but each task's result is its
/// own document with its own member order (only their last members, [`PackageRun`], are
/// one part); psick-task sets the shared members in one place (`packages::run_task`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PuppetInstallResult {
    /// Whether this was a noop run.
    #[serde(default)]
    pub noop: bool,
    /// The package manager detected on the node.
    #[serde(default)]
    pub manager: Option<String>,
    /// The package (`puppet-agent` unless `package` said otherwise).
    pub package: String,
    /// The `version` asked for, `null` for the newest.
    #[serde(default)]
    pub requested_version: Option<String>,
    /// Installed version before (`null` when not installed).
    #[serde(default)]
    pub version_before: Option<String>,
    /// The version that would be installed (noop) or is installed after.
    #[serde(default)]
    pub version_after: Option<String>,
    /// Whether the installed version changed (or would change, in noop).
    #[serde(default)]
    pub changed: bool,
    /// The commands run, their output and the error, if any.
    #[serde(flatten)]
    pub run: PackageRun,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pxp_result_has_the_required_fields_and_omits_no_error() {
        let v = serde_json::to_value(PxpRunResult::unknown()).unwrap();
        for key in [
            "time",
            "transaction_uuid",
            "environment",
            "status",
            "exitcode",
            "version",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert!(v.get("error").is_none() && v.get("error_type").is_none());
        assert_eq!(v["exitcode"], -1);
    }
}
