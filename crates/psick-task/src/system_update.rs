//! The `psick::system_update` task: updates all packages, or the `packages`
//! given, with the package manager detected on the node; noop lists the
//! pending updates from the manager's own simulation and changes nothing.

use orchestrator_types::psick_tasks::{PackageUpdate, SystemUpdateResult};

use crate::error::Failure;
use crate::input::Input;
use crate::packages::{self, COMMON_PARAMS, Common, Exec, Manager};
use crate::sysroot::SysRoot;

/// Parameter names besides [`COMMON_PARAMS`].
pub const PARAMS: &[&str] = &["packages", "security_only"];

/// Runs the task; the result carries `_error` on failure.
pub fn run(input: &Input) -> SystemUpdateResult {
    let mut r = SystemUpdateResult {
        noop: false,
        manager: None,
        security_only: false,
        packages: Vec::new(),
        updates: Vec::new(),
        reboot_required: None,
        commands: Vec::new(),
        output: String::new(),
        error: None,
    };
    let done = packages::recorded(|exec| execute(input, &mut r, exec));
    r.error = done.error;
    r.commands = done.commands;
    r.output = done.output;
    r
}

fn execute(
    input: &Input,
    r: &mut SystemUpdateResult,
    exec_slot: &mut Option<Exec>,
) -> Result<(), Failure> {
    let known: Vec<&str> = PARAMS.iter().chain(COMMON_PARAMS).copied().collect();
    input.reject_unknown(&known)?;
    let common = Common::from_input(input)?;
    r.noop = common.noop;
    r.security_only = input.bool("security_only")?.unwrap_or(false);
    r.packages = input.string_list("packages")?;
    for p in &r.packages {
        packages::validate_package("packages", p)?;
    }
    let exec = exec_slot.insert(Exec::new(common.timeout)?);
    let m = Manager::detect(&SysRoot::from_env())?;
    r.manager = Some(m.kind.name().to_owned());
    let lw = common.lock_wait;
    if r.security_only && m.kind == packages::Kind::Apt {
        return Err(packages::apt_security_only());
    }
    if common.refresh {
        packages::refresh(&m, exec, lw)?;
    }
    let pending = packages::pending(&m, exec, &r.packages, r.security_only, lw)?;
    if r.noop {
        r.updates = pending;
    } else if !pending.is_empty() {
        packages::upgrade(&m, exec, &r.packages, r.security_only, lw)?;
        for p in pending {
            let now = packages::installed(&m, exec, &p.name)?;
            if let Some(to) = now.filter(|v| Some(v) != p.from.as_ref()) {
                r.updates.push(PackageUpdate {
                    name: p.name,
                    from: p.from,
                    to,
                });
            }
        }
    }
    r.reboot_required = packages::reboot_required(&m, exec)?;
    Ok(())
}
