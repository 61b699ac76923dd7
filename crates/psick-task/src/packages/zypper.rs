//! zypper (SUSE): `list-updates` as the noop simulation, `patch --category
//! security` for security-only updates, `ZYPP_LOCK_TIMEOUT` for a bounded
//! lock wait (exit 7 when still locked).

use std::ffi::OsString;

use orchestrator_types::psick_tasks::PackageUpdate;

use super::{Exec, Manager, Updates, Wanted, failed, rpm};
use crate::error::Failure;
use crate::process::Finished;

/// zypper's exit code for "locked by another process".
const EXIT_ZYPP_LOCKED: i32 = 7;
/// zypper's exit code for "no such package".
const EXIT_INF_CAP_NOT_FOUND: i32 = 104;

fn run(m: &Manager, exec: &mut Exec, args: &[&str], lock_wait: u64) -> Result<Finished, Failure> {
    let mut argv: Vec<OsString> = vec![m.bin("/usr/bin/zypper"), "--non-interactive".into()];
    argv.extend(args.iter().map(OsString::from));
    let wait = lock_wait.to_string();
    let f = exec.run(&argv, &[("ZYPP_LOCK_TIMEOUT", &wait)])?;
    match f.code {
        Some(0) => Ok(f),
        Some(EXIT_ZYPP_LOCKED) => Err(Failure::ManagerLocked {
            manager: "zypper",
            holder: f
                .output
                .lines()
                .find(|l| l.contains("pid"))
                .map(|l| l.trim().to_owned()),
            waited: lock_wait,
        }),
        Some(EXIT_INF_CAP_NOT_FOUND) => Err(Failure::PackageNotFound {
            manager: "zypper",
            what: args.last().copied().unwrap_or_default().to_owned(),
            detail: super::first_error(&f.output),
        }),
        _ => Err(failed(m.kind, &f)),
    }
}

/// `refresh`.
pub fn refresh(m: &Manager, exec: &mut Exec, lock_wait: u64) -> Result<(), Failure> {
    run(m, exec, &["refresh"], lock_wait).map(drop)
}

/// Pending updates: `list-updates` (limited to `packages`, or for
/// `security_only` to what `patch --category security --dry-run` names).
pub fn pending(
    m: &Manager,
    exec: &mut Exec,
    u: Updates<'_>,
) -> Result<Vec<PackageUpdate>, Failure> {
    let Updates {
        packages,
        security_only,
        lock_wait,
    } = u;
    let f = run(m, exec, &["--quiet", "list-updates"], lock_wait)?;
    let mut all = parse_list_updates(&f.output);
    let wanted: Vec<String> = if security_only {
        let dry = run(
            m,
            exec,
            &["patch", "--category", "security", "--dry-run"],
            lock_wait,
        )?;
        parse_going_to_upgrade(&dry.output)
    } else {
        packages.to_vec()
    };
    if security_only || !packages.is_empty() {
        all.retain(|u| wanted.contains(&u.name));
    }
    Ok(all)
}

/// `update [PKGS]`, or `patch --category security`.
pub fn upgrade(m: &Manager, exec: &mut Exec, u: Updates<'_>) -> Result<(), Failure> {
    let Updates {
        packages,
        security_only,
        lock_wait,
    } = u;
    let mut args = if security_only {
        vec!["patch", "--category", "security"]
    } else {
        vec!["update"]
    };
    if !security_only {
        args.extend(packages.iter().map(String::as_str));
    }
    run(m, exec, &args, lock_wait).map(drop)
}

/// `install [--dry-run] [--oldpackage] PKG[=VERSION]`.
pub fn install(m: &Manager, exec: &mut Exec, w: Wanted<'_>) -> Result<Finished, Failure> {
    let (spec, version, lock_wait, simulate) = (w.spec('='), w.version, w.lock_wait, w.simulate);
    let mut args = vec!["install"];
    if simulate {
        args.push("--dry-run");
    }
    if version.is_some() {
        args.push("--oldpackage");
    }
    args.push(&spec);
    run(m, exec, &args, lock_wait)
}

/// The installed version (rpm).
pub fn installed(m: &Manager, exec: &mut Exec, package: &str) -> Result<Option<String>, Failure> {
    rpm::installed(m, exec, package)
}

/// `Version :` of `info PKG`.
pub fn candidate(
    m: &Manager,
    exec: &mut Exec,
    package: &str,
    lock_wait: u64,
) -> Result<Option<String>, Failure> {
    let f = run(m, exec, &["--quiet", "info", package], lock_wait)?;
    Ok(f.output.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == "Version").then(|| v.trim().to_owned())
    }))
}

/// `S | Repository | Name | Current Version | Available Version | Arch` rows.
pub fn parse_list_updates(text: &str) -> Vec<PackageUpdate> {
    text.lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('|').map(str::trim).collect();
            (cols.len() >= 6 && cols[0] == "v").then(|| PackageUpdate {
                name: cols[2].to_owned(),
                from: Some(cols[3].to_owned()).filter(|s| !s.is_empty()),
                to: cols[4].to_owned(),
            })
        })
        .collect()
}

/// The names after "The following N packages are going to be upgraded:".
pub fn parse_going_to_upgrade(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.contains("going to be upgraded:") {
            inside = true;
            continue;
        }
        if inside {
            if line.trim().is_empty() {
                break;
            }
            names.extend(line.split_whitespace().map(str::to_owned));
        }
    }
    names
}

/// `zypper needs-rebooting` (exit 102: needed), else `/run/reboot-needed`.
pub fn reboot_required(m: &Manager, exec: &mut Exec) -> Result<Option<bool>, Failure> {
    let argv = vec![m.bin("/usr/bin/zypper"), "needs-rebooting".into()];
    let f = exec.query(&argv)?;
    Ok(match f.code {
        Some(102) => Some(true),
        Some(0) => Some(m.path("/run/reboot-needed").exists()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_updates_and_dry_run() {
        let table = "S | Repository | Name | Current Version | Available Version | Arch\n\
                     --+------------+------+-----------------+-------------------+-------\n\
                     v | Main       | bash | 5.1-1.1         | 5.2-1.1           | x86_64\n\
                     v | Main       | curl | 8.0-1           | 8.1-1             | x86_64\n";
        let u = parse_list_updates(table);
        assert_eq!(u.len(), 2);
        assert_eq!(u[0].name, "bash");
        assert_eq!(u[0].from.as_deref(), Some("5.1-1.1"));
        assert_eq!(u[1].to, "8.1-1");
        let dry = "Loading repository data...\n\
                   The following 2 packages are going to be upgraded:\n  curl libcurl4\n\n\
                   2 packages to upgrade.\n";
        assert_eq!(parse_going_to_upgrade(dry), ["curl", "libcurl4"]);
    }
}
