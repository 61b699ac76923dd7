//! The `psick::puppet_install` task: installs the agent package
//! (`puppet-agent` unless `package` names another, such as
//! `openvox-agent`) at `version` or the newest, from the node's configured
//! repositories, and reports the version before and after. It never looks
//! at or touches the agent's lockfiles: a run in progress goes on.

use orchestrator_types::psick_tasks::PuppetInstallResult;

use crate::error::Failure;
use crate::input::Input;
use crate::packages::{self, Common, Exec, Manager};

/// Parameter names besides [`COMMON_PARAMS`].
pub const PARAMS: &[&str] = &["package", "version"];

/// The default `package`.
pub const DEFAULT_PACKAGE: &str = "puppet-agent";

/// Runs the task; the result carries `_error` on failure.
pub fn run(input: &Input) -> PuppetInstallResult {
    let r = PuppetInstallResult {
        noop: false,
        manager: None,
        package: DEFAULT_PACKAGE.to_owned(),
        requested_version: None,
        version_before: None,
        version_after: None,
        changed: false,
        run: Default::default(),
    };
    packages::run_task(input, PARAMS, r, |r| read(input, r), execute)
}

/// `package` and `version`, checked.
fn read(input: &Input, r: &mut PuppetInstallResult) -> Result<(), Failure> {
    if let Some(p) = input.string("package")? {
        packages::validate_package("package", &p)?;
        r.package = p;
    }
    r.requested_version = input.string("version")?;
    if let Some(v) = &r.requested_version {
        packages::validate_version(v)?;
    }
    Ok(())
}

fn execute(
    r: &mut PuppetInstallResult,
    common: &Common,
    m: &Manager,
    exec: &mut Exec,
) -> Result<(), Failure> {
    let lw = common.lock_wait;
    r.version_before = packages::installed(m, exec, &r.package)?;
    if common.refresh {
        packages::refresh(m, exec, lw)?;
    }
    let version = r.requested_version.as_deref();
    let wanted = packages::Wanted {
        package: &r.package,
        version,
        lock_wait: lw,
        simulate: false,
    };
    if r.noop {
        let candidate = packages::candidate(m, exec, wanted)?;
        let Some(candidate) = candidate else {
            return Err(Failure::PackageNotFound {
                manager: m.kind.name(),
                what: match version {
                    Some(v) => format!("version {v} of package {}", r.package),
                    None => format!("package {}", r.package),
                },
                detail: None,
            });
        };
        r.changed = r.version_before.as_ref() != Some(&candidate);
        r.version_after = Some(candidate);
        return Ok(());
    }
    packages::install(m, exec, wanted)?;
    r.version_after = packages::installed(m, exec, &r.package)?;
    r.changed = r.version_after != r.version_before;
    Ok(())
}
