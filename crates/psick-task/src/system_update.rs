//! The `psick::system_update` task: updates all packages, or the `packages`
//! given, with the package manager detected on the node; noop lists the
//! pending updates from the manager's own simulation and changes nothing.

use orchestrator_types::psick_tasks::{PackageUpdate, SystemUpdateResult};

use crate::error::Failure;
use crate::input::Input;
use crate::packages::{self, Common, Exec, Manager};

/// Parameter names besides [`COMMON_PARAMS`].
pub const PARAMS: &[&str] = &["packages", "security_only"];

/// Runs the task; the result carries `_error` on failure.
pub fn run(input: &Input) -> SystemUpdateResult {
    let r = SystemUpdateResult {
        noop: false,
        manager: None,
        security_only: false,
        packages: Vec::new(),
        updates: Vec::new(),
        reboot_required: None,
        run: Default::default(),
    };
    packages::run_task(input, PARAMS, r, |r| read(input, r), execute)
}

/// `security_only` and `packages`, checked.
fn read(input: &Input, r: &mut SystemUpdateResult) -> Result<(), Failure> {
    r.security_only = input.bool("security_only")?.unwrap_or(false);
    r.packages = input.string_list("packages")?;
    for p in &r.packages {
        packages::validate_package("packages", p)?;
    }
    Ok(())
}

fn execute(
    r: &mut SystemUpdateResult,
    common: &Common,
    m: &Manager,
    exec: &mut Exec,
) -> Result<(), Failure> {
    let lw = common.lock_wait;
    if r.security_only && m.kind == packages::Kind::Apt {
        return Err(packages::apt_security_only());
    }
    if common.refresh {
        packages::refresh(m, exec, lw)?;
    }
    let updates = packages::Updates {
        packages: &r.packages,
        security_only: r.security_only,
        lock_wait: lw,
    };
    let pending = packages::pending(m, exec, updates)?;
    if r.noop {
        r.updates = pending;
    } else if !pending.is_empty() {
        packages::upgrade(m, exec, updates)?;
        for p in pending {
            let now = packages::installed(m, exec, &p.name)?;
            if let Some(to) = now.filter(|v| Some(v) != p.from.as_ref()) {
                r.updates.push(PackageUpdate {
                    name: p.name,
                    from: p.from,
                    to,
                });
            }
        }
    }
    r.reboot_required = packages::reboot_required(m, exec)?;
    Ok(())
}
