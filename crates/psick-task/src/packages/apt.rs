//! apt (Debian, Ubuntu): `apt-get` with a bounded lock wait
//! (`DPkg::Lock::Timeout`), its simulation (`-s`) for noop, `dpkg-query` for
//! installed versions and `apt-cache policy` for candidates.

use std::ffi::OsString;

use orchestrator_types::psick_tasks::PackageUpdate;

use super::{Exec, Kind, Manager, Updates, Wanted, failed};
use crate::error::Failure;
use crate::process::Finished;

const APT_GET: &str = "/usr/bin/apt-get";

fn apt_get(m: &Manager, lock_wait: u64, args: &[&str]) -> Vec<OsString> {
    let mut argv = vec![
        m.bin(APT_GET),
        "-q".into(),
        "-o".into(),
        format!("DPkg::Lock::Timeout={lock_wait}").into(),
    ];
    argv.extend(args.iter().map(OsString::from));
    argv
}

/// The locked failure if apt said it could not get its lock.
fn locked(f: &Finished, lock_wait: u64) -> Option<Failure> {
    let o = &f.output;
    let is_locked = f.code != Some(0)
        && (o.contains("Could not get lock")
            || o.contains("Unable to acquire the dpkg frontend lock")
            || o.contains("Unable to lock directory"));
    is_locked.then(|| Failure::ManagerLocked {
        manager: "apt",
        holder: o.find("It is held by process ").map(|i| {
            o[i + "It is held by ".len()..]
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned()
        }),
        waited: lock_wait,
    })
}

/// The package apt says it cannot find, if that is why it failed.
fn not_found(f: &Finished) -> Option<Failure> {
    if f.code == Some(0) {
        return None;
    }
    let line = f.output.lines().find(|l| {
        l.starts_with("E: Unable to locate package")
            || (l.starts_with("E: Version '") && l.contains("was not found"))
            || l.starts_with("E: Package '") && l.contains("has no installation candidate")
    })?;
    Some(Failure::PackageNotFound {
        manager: "apt",
        what: line.trim_start_matches("E: ").to_owned(),
        detail: None,
    })
}

fn check(f: Finished, lock_wait: u64) -> Result<Finished, Failure> {
    if let Some(e) = locked(&f, lock_wait).or_else(|| not_found(&f)) {
        return Err(e);
    }
    if f.code != Some(0) {
        return Err(failed(Kind::Apt, &f));
    }
    Ok(f)
}

/// `apt-get update`.
pub fn refresh(m: &Manager, exec: &mut Exec, lock_wait: u64) -> Result<(), Failure> {
    let f = exec.run(&apt_get(m, lock_wait, &["update"]), &[])?;
    check(f, lock_wait).map(drop)
}

fn upgrade_args(packages: &[String], simulate: bool) -> Vec<&str> {
    let mut args: Vec<&str> = Vec::new();
    if simulate {
        args.push("-s");
    } else {
        args.extend([
            "-y",
            "-o",
            "Dpkg::Options::=--force-confdef",
            "-o",
            "Dpkg::Options::=--force-confold",
        ]);
    }
    if packages.is_empty() {
        args.push("upgrade");
    } else {
        args.extend(["install", "--only-upgrade"]);
        args.extend(packages.iter().map(String::as_str));
    }
    args
}

/// The updates `apt-get -s upgrade` (or `install --only-upgrade PKGS`) lists.
pub fn pending(
    m: &Manager,
    exec: &mut Exec,
    u: Updates<'_>,
) -> Result<Vec<PackageUpdate>, Failure> {
    let f = exec.run(
        &apt_get(m, u.lock_wait, &upgrade_args(u.packages, true)),
        &[],
    )?;
    let f = check(f, u.lock_wait)?;
    Ok(parse_simulation(&f.output))
}

/// `apt-get -y upgrade` (or `install --only-upgrade PKGS`).
pub fn upgrade(m: &Manager, exec: &mut Exec, u: Updates<'_>) -> Result<(), Failure> {
    let f = exec.run(
        &apt_get(m, u.lock_wait, &upgrade_args(u.packages, false)),
        &[],
    )?;
    check(f, u.lock_wait).map(drop)
}

/// `apt-get -y install PKG[=VERSION]` (downgrades allowed when a version is
/// named: that is what was asked for).
pub fn install(m: &Manager, exec: &mut Exec, w: Wanted<'_>) -> Result<Finished, Failure> {
    let (spec, version, lock_wait, simulate) = (w.spec('='), w.version, w.lock_wait, w.simulate);
    let mut args = if simulate {
        vec!["-s"]
    } else {
        vec![
            "-y",
            "-o",
            "Dpkg::Options::=--force-confdef",
            "-o",
            "Dpkg::Options::=--force-confold",
        ]
    };
    if version.is_some() {
        args.push("--allow-downgrades");
    }
    args.extend(["install", &spec]);
    let f = exec.run(&apt_get(m, lock_wait, &args), &[])?;
    check(f, lock_wait)
}

/// The installed version (`dpkg-query`), `None` when not installed.
pub fn installed(m: &Manager, exec: &mut Exec, package: &str) -> Result<Option<String>, Failure> {
    let argv = vec![
        m.bin("/usr/bin/dpkg-query"),
        "-W".into(),
        "-f=${Status}|${Version}\\n".into(),
        package.into(),
    ];
    let f = exec.query(&argv)?;
    Ok(f.output.lines().find_map(|l| {
        let (status, version) = l.split_once('|')?;
        (status.ends_with(" installed") && !version.is_empty()).then(|| version.to_owned())
    }))
}

/// `Candidate:` of `apt-cache policy`, `None` when there is none.
pub fn candidate(m: &Manager, exec: &mut Exec, package: &str) -> Result<Option<String>, Failure> {
    let argv = vec![m.bin("/usr/bin/apt-cache"), "policy".into(), package.into()];
    let f = exec.query(&argv)?;
    Ok(f.output.lines().find_map(|l| {
        let v = l.trim().strip_prefix("Candidate:")?.trim();
        (!v.is_empty() && v != "(none)").then(|| v.to_owned())
    }))
}

/// The `Inst` lines of an apt-get simulation:
/// `Inst NAME [FROM] (TO SUITE [ARCH])`, `[FROM]` absent for new packages.
pub fn parse_simulation(text: &str) -> Vec<PackageUpdate> {
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("Inst ")?;
            let (name, rest) = rest.split_once(' ')?;
            let rest = rest.trim_start();
            let (from, rest) = match rest.strip_prefix('[') {
                Some(r) => {
                    let (from, after) = r.split_once(']')?;
                    (Some(from.to_owned()), after.trim_start())
                }
                None => (None, rest),
            };
            let to = rest.strip_prefix('(')?.split_whitespace().next()?;
            Some(PackageUpdate {
                name: name.to_owned(),
                from,
                to: to.to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulation_lines() {
        let text = "NOTE: This is only a simulation!\n\
                    Reading package lists...\n\
                    Inst kick-e2e-pkg [1.0] (2.0 localrepo [all])\n\
                    Inst libssl3 [3.0.11-1~deb12u1] (3.0.15-1~deb12u1 Debian-Security:12/stable-security [amd64])\n\
                    Inst newdep (1.2-3 Debian:12/stable [amd64])\n\
                    Conf kick-e2e-pkg (2.0 localrepo [all])\n";
        let u = parse_simulation(text);
        assert_eq!(u.len(), 3);
        assert_eq!(
            u[0],
            PackageUpdate {
                name: "kick-e2e-pkg".into(),
                from: Some("1.0".into()),
                to: "2.0".into()
            }
        );
        assert_eq!(u[1].to, "3.0.15-1~deb12u1");
        assert_eq!(u[2].from, None);
        assert!(parse_simulation("0 upgraded, 0 newly installed\n").is_empty());
    }
}
