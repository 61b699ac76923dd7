//! dnf and yum (the RHEL family): `check-update` as the noop simulation,
//! `rpm -q` for installed versions, `--security` for security-only updates,
//! and a bounded wait on their pid-file locks (both otherwise wait forever).

use std::ffi::OsString;
use std::path::PathBuf;

use orchestrator_types::psick_tasks::PackageUpdate;

use super::{Exec, Kind, Manager, Updates, Wanted, failed, wait_for_pidfile};
use crate::error::Failure;
use crate::process::Finished;

fn bin(m: &Manager) -> OsString {
    m.bin(match m.kind {
        Kind::Yum => "/usr/bin/yum",
        _ => "/usr/bin/dnf",
    })
}

fn lock_files(m: &Manager) -> Vec<PathBuf> {
    match m.kind {
        Kind::Yum => vec![m.path("/var/run/yum.pid")],
        _ => [
            "/var/cache/dnf/metadata_lock.pid",
            "/var/lib/dnf/rpmdb_lock.pid",
            "/var/cache/dnf/download_lock.pid",
            "/var/log/log_lock.pid",
        ]
        .iter()
        .map(|p| m.path(p))
        .collect(),
    }
}

fn run(m: &Manager, exec: &mut Exec, args: &[&str], lock_wait: u64) -> Result<Finished, Failure> {
    wait_for_pidfile(exec, m.kind, &lock_files(m), lock_wait)?;
    let mut argv = vec![bin(m)];
    argv.extend(args.iter().map(OsString::from));
    exec.run(&argv, &[])
}

fn not_found(m: &Manager, f: &Finished) -> Option<Failure> {
    let line = f.output.lines().find(|l| {
        l.contains("No match for argument")
            || l.contains("No package ") && l.contains(" available")
            || l.contains("Unable to find a match")
    })?;
    Some(Failure::PackageNotFound {
        manager: m.kind.name(),
        what: line.trim().to_owned(),
        detail: None,
    })
}

fn ok(m: &Manager, f: Finished) -> Result<Finished, Failure> {
    if f.code == Some(0) {
        return Ok(f);
    }
    Err(not_found(m, &f).unwrap_or_else(|| failed(m.kind, &f)))
}

/// `makecache`.
pub fn refresh(m: &Manager, exec: &mut Exec, lock_wait: u64) -> Result<(), Failure> {
    let f = run(m, exec, &["-q", "makecache"], lock_wait)?;
    ok(m, f).map(drop)
}

/// `check-update [--security] [PKGS]` (exit 100 means updates are
/// pending), with the installed versions from rpm.
pub fn pending(
    m: &Manager,
    exec: &mut Exec,
    u: Updates<'_>,
) -> Result<Vec<PackageUpdate>, Failure> {
    let f = run(m, exec, &selection(&["-q", "check-update"], u), u.lock_wait)?;
    let lines = match f.code {
        Some(100) => parse_check_update(&f.output),
        Some(0) => Vec::new(),
        _ => return Err(failed(m.kind, &f)),
    };
    let mut updates = Vec::with_capacity(lines.len());
    for (name, to) in lines {
        let from = installed(m, exec, &name)?;
        updates.push(PackageUpdate { name, from, to });
    }
    Ok(updates)
}

/// `-y upgrade [--security] [PKGS]`.
pub fn upgrade(m: &Manager, exec: &mut Exec, u: Updates<'_>) -> Result<(), Failure> {
    let f = run(m, exec, &selection(&["-y", "upgrade"], u), u.lock_wait)?;
    ok(m, f).map(drop)
}

/// `command` followed by `--security` and the packages `u` names.
fn selection<'a>(command: &[&'a str], u: Updates<'a>) -> Vec<&'a str> {
    let mut args = command.to_vec();
    if u.security_only {
        args.push("--security");
    }
    args.extend(u.packages.iter().map(String::as_str));
    args
}

/// `-y install PKG[-VERSION]` (`downgrade` when the version is older is left
/// to the manager's own refusal message).
pub fn install(m: &Manager, exec: &mut Exec, w: Wanted<'_>) -> Result<Finished, Failure> {
    let f = run(m, exec, &["-y", "install", &w.spec('-')], w.lock_wait)?;
    ok(m, f)
}

/// The installed `VERSION-RELEASE`, `None` when not installed.
pub fn installed(m: &Manager, exec: &mut Exec, package: &str) -> Result<Option<String>, Failure> {
    let argv = vec![
        m.bin("/usr/bin/rpm"),
        "-q".into(),
        "--qf".into(),
        "%{VERSION}-%{RELEASE}\\n".into(),
        package.into(),
    ];
    let f = exec.query(&argv)?;
    Ok((f.code == Some(0))
        .then(|| f.output.lines().next().map(|l| l.trim().to_owned()))
        .flatten()
        .filter(|v| !v.is_empty()))
}

/// The newest (or the given) version the repositories offer, from
/// `list --showduplicates available PKG`; the installed one if it is the newest.
pub fn candidate(m: &Manager, exec: &mut Exec, w: Wanted<'_>) -> Result<Option<String>, Failure> {
    let Wanted {
        package,
        version,
        lock_wait,
        ..
    } = w;
    let f = run(
        m,
        exec,
        &["-q", "list", "--showduplicates", "available", package],
        lock_wait,
    )?;
    let offered: Vec<String> = parse_check_update(&f.output)
        .into_iter()
        .filter(|(n, _)| n == package)
        .map(|(_, v)| v)
        .collect();
    Ok(match version {
        Some(want) => offered.into_iter().find(|v| {
            v == want
                || v.split_once(':').is_some_and(|(_, r)| r == want)
                || v.starts_with(&format!("{want}-"))
        }),
        None => offered.into_iter().last().or(installed(m, exec, package)?),
    })
}

/// `name.arch  version  repo` lines (check-update, list); headers and the
/// "Obsoleting Packages" section are skipped.
pub fn parse_check_update(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("Obsoleting") {
            break;
        }
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() != 3 || line.starts_with(' ') {
            continue;
        }
        let Some((name, _arch)) = cols[0].rsplit_once('.') else {
            continue;
        };
        if cols[1].chars().next().is_some_and(|c| c.is_ascii_digit()) {
            out.push((name.to_owned(), cols[1].to_owned()));
        }
    }
    out
}

/// `needs-restarting -r`: exit 1 means a reboot is needed, 0 not.
pub fn reboot_required(m: &Manager, exec: &mut Exec) -> Result<Option<bool>, Failure> {
    let argv: Vec<OsString> = if m.has("/usr/bin/needs-restarting") {
        vec![m.bin("/usr/bin/needs-restarting"), "-r".into()]
    } else if m.kind == Kind::Dnf {
        vec![bin(m), "-q".into(), "needs-restarting".into(), "-r".into()]
    } else {
        return Ok(None);
    };
    let f = exec.query(&argv)?;
    Ok(match f.code {
        Some(0) => Some(false),
        Some(1) => Some(true),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_update_lines() {
        let text = "\nLast metadata expiration check: 0:01:02 ago.\n\
                    bash.x86_64                 5.1.8-9.el9            baseos\n\
                    openssl-libs.x86_64         1:3.0.7-27.el9         baseos\n\
                    Obsoleting Packages\n\
                    grub2-tools.x86_64          1:2.06-80.el9          baseos\n";
        assert_eq!(
            parse_check_update(text),
            [
                ("bash".to_owned(), "5.1.8-9.el9".to_owned()),
                ("openssl-libs".to_owned(), "1:3.0.7-27.el9".to_owned())
            ]
        );
    }
}
