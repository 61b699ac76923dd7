//! The node's package manager for `psick::system_update` and
//! `psick::puppet_install`: found at fixed system paths (never from a
//! parameter), run directly (no shell), non-interactively, under the task's
//! timeout and signal handling, with a bounded wait for its lock.

pub mod apt;
pub mod rpm;
pub mod zypper;

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use orchestrator_types::psick_tasks::{PackageRun, PackageUpdate};

use crate::error::Failure;
use crate::input::Input;
use crate::process::{self, Finished, Limits, Signals};
use crate::sysroot::SysRoot;

/// Default of `timeout` for the package tasks, seconds.
pub const DEFAULT_TIMEOUT: u64 = 3600;
/// Default of `lock_wait`, seconds.
pub const DEFAULT_LOCK_WAIT: u64 = 120;
const MAX_SECONDS: u64 = 24 * 3600;

/// The supported package managers, in the order they are looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Debian, Ubuntu.
    Apt,
    /// Fedora, RHEL 8 and later.
    Dnf,
    /// RHEL 7 and older.
    Yum,
    /// SUSE.
    Zypper,
}

impl Kind {
    /// The name reported in results.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Apt => "apt",
            Kind::Dnf => "dnf",
            Kind::Yum => "yum",
            Kind::Zypper => "zypper",
        }
    }

    /// The executable that identifies the manager.
    fn marker(self) -> &'static str {
        match self {
            Kind::Apt => "/usr/bin/apt-get",
            Kind::Dnf => "/usr/bin/dnf",
            Kind::Yum => "/usr/bin/yum",
            Kind::Zypper => "/usr/bin/zypper",
        }
    }
}

/// The package manager of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manager {
    /// Which one.
    pub kind: Kind,
    /// The system root its fixed paths are under.
    pub sys: SysRoot,
}

impl Manager {
    /// The first of apt-get, dnf, yum, zypper present at its fixed path.
    pub fn detect(sys: &SysRoot) -> Result<Manager, Failure> {
        let kinds = [Kind::Apt, Kind::Dnf, Kind::Yum, Kind::Zypper];
        kinds
            .into_iter()
            .find(|k| is_executable(&sys.path(k.marker())))
            .map(|kind| Manager {
                kind,
                sys: sys.clone(),
            })
            .ok_or_else(|| Failure::NoPackageManager {
                looked: kinds
                    .iter()
                    .map(|k| sys.path(k.marker()).display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// A fixed system executable (`/usr/bin/dpkg-query`) below the root.
    pub fn bin(&self, abs: &str) -> OsString {
        self.sys.path(abs).into_os_string()
    }

    /// Whether a fixed system executable exists.
    pub fn has(&self, abs: &str) -> bool {
        is_executable(&self.sys.path(abs))
    }

    /// A fixed system path below the root.
    pub fn path(&self, abs: &str) -> PathBuf {
        self.sys.path(abs)
    }
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The parameters both package tasks share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Common {
    /// Report only (`noop` or `_noop`).
    pub noop: bool,
    /// Refresh the package lists first (default: in real runs only).
    pub refresh: bool,
    /// Seconds for the whole task.
    pub timeout: u64,
    /// Seconds to wait for the manager's lock.
    pub lock_wait: u64,
}

impl Common {
    /// Reads `noop`, `refresh`, `timeout`, `lock_wait`.
    pub fn from_input(input: &Input) -> Result<Common, Failure> {
        let noop = input.noop()?;
        Ok(Common {
            noop,
            // A noop run changes nothing, not even the package lists, unless
            // asked to; a real run refreshes them first, as an admin would.
            refresh: input.bool("refresh")?.unwrap_or(!noop),
            timeout: input
                .uint("timeout", 1, MAX_SECONDS)?
                .unwrap_or(DEFAULT_TIMEOUT),
            lock_wait: input
                .uint("lock_wait", 0, MAX_SECONDS)?
                .unwrap_or(DEFAULT_LOCK_WAIT),
        })
    }
}

/// The parameter names [`Common`] reads.
pub const COMMON_PARAMS: &[&str] = &["noop", "refresh", "timeout", "lock_wait"];

/// A package name as apt, rpm and zypper spell them; never option-like.
pub fn validate_package(param: &str, name: &str) -> Result<(), Failure> {
    let ok = name.len() <= 200
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+.-_".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Failure::InvalidParams(format!(
            "`{param}` holds {name:?}, which is not a package name (letters, digits and + . - _, \
             starting with a letter or digit)"
        )))
    }
}

/// A package version (Debian's or rpm's `[epoch:]version[-release]`).
pub fn validate_version(version: &str) -> Result<(), Failure> {
    let ok = version.len() <= 200
        && version.starts_with(|c: char| c.is_ascii_alphanumeric())
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+.-_~:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Failure::InvalidParams(format!(
            "`version` {version:?} is not a package version (letters, digits and + . - _ ~ :)"
        )))
    }
}

/// Runs the manager's commands under one deadline, recording argv and
/// output for the result.
#[derive(Debug)]
pub struct Exec {
    signals: Signals,
    deadline: Instant,
    timeout: u64,
    /// Every command run, as strings.
    pub commands: Vec<Vec<String>>,
    /// Their output, in order.
    pub output: String,
}

/// The fields every package task's result has besides its own.
pub trait PackageResult {
    /// `noop`.
    fn set_noop(&mut self, noop: bool);
    /// `manager`.
    fn set_manager(&mut self, name: &str);
    /// `commands`, `_output` and `_error`.
    fn set_run(&mut self, run: PackageRun);
}

/// The results of `psick::puppet_install` and `psick::system_update` are two wire types (each
/// with its own fields, in the order the task's JSON has them); the fields they share are
/// set the same way.
macro_rules! package_result {
    ($($result:ty),*) => {$(
        impl PackageResult for $result {
            fn set_noop(&mut self, noop: bool) {
                self.noop = noop;
            }
            fn set_manager(&mut self, name: &str) {
                self.manager = Some(name.to_owned());
            }
            fn set_run(&mut self, run: PackageRun) {
                self.run = run;
            }
        }
    )*};
}
package_result!(
    orchestrator_types::psick_tasks::PuppetInstallResult,
    orchestrator_types::psick_tasks::SystemUpdateResult
);

/// Runs a package task into its result `r`: parameters other than `params`
/// and [`COMMON_PARAMS`] refused, the common ones read, then the task's own
/// (`read`, before anything runs), the clock started, the manager detected
/// and `execute` run with them. `r` records the manager, every command run,
/// their output and the error, if any: a failure is in the result.
pub fn run_task<R: PackageResult>(
    input: &Input,
    params: &[&str],
    mut r: R,
    read: impl FnOnce(&mut R) -> Result<(), Failure>,
    execute: impl FnOnce(&mut R, &Common, &Manager, &mut Exec) -> Result<(), Failure>,
) -> R {
    let done = recorded(|slot| {
        let known: Vec<&str> = params.iter().chain(COMMON_PARAMS).copied().collect();
        input.reject_unknown(&known)?;
        let common = Common::from_input(input)?;
        r.set_noop(common.noop);
        read(&mut r)?;
        let exec = slot.insert(Exec::new(common.timeout)?);
        let m = Manager::detect(&SysRoot::from_env())?;
        r.set_manager(m.kind.name());
        execute(&mut r, &common, &m, exec)
    });
    r.set_run(done);
    r
}

/// Runs `execute`, which puts its [`Exec`] in the slot it is given once it
/// starts running commands: what the run left behind is its error, and the
/// commands and output of whatever it ran before it succeeded or failed.
fn recorded(execute: impl FnOnce(&mut Option<Exec>) -> Result<(), Failure>) -> PackageRun {
    let mut exec = None;
    let error = execute(&mut exec).err().map(|f| f.to_task_error(None));
    let (commands, output) = exec.map_or_else(Default::default, |e| (e.commands, e.output));
    PackageRun {
        commands,
        output,
        error,
    }
}

/// The environment that keeps every manager from asking anything.
pub const NON_INTERACTIVE: &[(&str, &str)] = &[
    ("DEBIAN_FRONTEND", "noninteractive"),
    ("APT_LISTCHANGES_FRONTEND", "none"),
    ("NEEDRESTART_MODE", "a"),
    ("LC_ALL", "C"),
    ("LANG", "C"),
];

impl Exec {
    /// Starts the clock: `timeout` seconds for everything run.
    pub fn new(timeout: u64) -> Result<Exec, Failure> {
        Ok(Exec {
            signals: Signals::install().map_err(Failure::signals)?,
            deadline: Instant::now() + Duration::from_secs(timeout),
            timeout,
            commands: Vec::new(),
            output: String::new(),
        })
    }

    /// Runs `argv` with [`NON_INTERACTIVE`] plus `env`; a stop or the
    /// timeout is a failure, any exit code is returned.
    pub fn run(&mut self, argv: &[OsString], env: &[(&str, &str)]) -> Result<Finished, Failure> {
        self.run_inner(argv, env, true)
    }

    /// [`Exec::run`] whose output is not added to `_output` (queries).
    pub fn query(&mut self, argv: &[OsString]) -> Result<Finished, Failure> {
        self.run_inner(argv, &[], false)
    }

    fn run_inner(
        &mut self,
        argv: &[OsString],
        env: &[(&str, &str)],
        record: bool,
    ) -> Result<Finished, Failure> {
        let shown: Vec<String> = argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let mut all: Vec<(&str, &str)> = NON_INTERACTIVE.to_vec();
        all.extend_from_slice(env);
        let limits = Limits {
            timeout: Some(self.deadline.saturating_duration_since(Instant::now())),
            grace: process::kill_grace(),
        };
        let finished = process::run_with_env(argv, &all, limits, &self.signals).map_err(|e| {
            Failure::SpawnFailed {
                program: PathBuf::from(&argv[0]),
                source: e,
            }
        })?;
        if record {
            self.output.push_str(&format!("$ {}\n", shown.join(" ")));
            self.output.push_str(&finished.output);
            self.commands.push(shown);
        }
        match finished.stop_failure(Some(self.timeout)) {
            Some(failure) => Err(failure),
            None => Ok(finished),
        }
    }

    /// Seconds left before the deadline.
    pub fn remaining(&self) -> u64 {
        self.deadline
            .saturating_duration_since(Instant::now())
            .as_secs()
    }

    /// Whether a stop signal arrived (and clears it).
    pub fn stop_requested(&self) -> Option<i32> {
        self.signals.take()
    }
}

/// The first line of `output` that looks like an error (`E: `, `Error:`).
pub fn first_error(output: &str) -> Option<String> {
    output
        .lines()
        .find(|l| l.starts_with("E: ") || l.starts_with("Error") || l.starts_with("error:"))
        .map(|l| l.chars().take(300).collect())
}

/// A failure of the manager with its exit status and first error line.
pub fn failed(kind: Kind, f: &Finished) -> Failure {
    Failure::ManagerFailed {
        manager: kind.name(),
        status: f.code.map_or_else(
            || format!("killed by signal {:?}", f.signal),
            |c| format!("exit {c}"),
        ),
        hint: first_error(&f.output),
    }
}

/// Whether `/var/run/reboot-required` (Debian, Ubuntu) or a `needs-restarting`
/// style check says a reboot is needed; `None` when the OS gives no sign.
pub fn reboot_required(m: &Manager, exec: &mut Exec) -> Result<Option<bool>, Failure> {
    match m.kind {
        Kind::Apt => Ok(Some(m.path("/var/run/reboot-required").exists())),
        Kind::Dnf | Kind::Yum => rpm::reboot_required(m, exec),
        Kind::Zypper => zypper::reboot_required(m, exec),
    }
}

/// Waits while a pid-file lock (`/var/run/yum.pid`) names a live process.
pub fn wait_for_pidfile(
    exec: &Exec,
    kind: Kind,
    files: &[PathBuf],
    lock_wait: u64,
) -> Result<(), Failure> {
    let started = Instant::now();
    let until = started + Duration::from_secs(lock_wait.min(exec.remaining()));
    loop {
        let holder = files.iter().find_map(|f| {
            let pid: u32 = crate::lockfile::read_regular(f, 64)?.trim().parse().ok()?;
            crate::lockfile::is_running(pid).then(|| format!("PID {pid} in {}", f.display()))
        });
        let Some(holder) = holder else {
            return Ok(());
        };
        if let Some(sig) = exec.stop_requested() {
            return Err(Failure::Timeout {
                timeout: None,
                signal: Some(process::signal_name(sig)),
                killed: false,
                stopped: Vec::new(),
                survivors: Vec::new(),
            });
        }
        if Instant::now() >= until {
            return Err(Failure::ManagerLocked {
                manager: kind.name(),
                holder: Some(holder),
                waited: started.elapsed().as_secs(),
            });
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Refreshes the package lists (`apt-get update`, `makecache`, `refresh`).
pub fn refresh(m: &Manager, exec: &mut Exec, lock_wait: u64) -> Result<(), Failure> {
    match m.kind {
        Kind::Apt => apt::refresh(m, exec, lock_wait),
        Kind::Dnf | Kind::Yum => rpm::refresh(m, exec, lock_wait),
        Kind::Zypper => zypper::refresh(m, exec, lock_wait),
    }
}

/// Which updates a run means: those of `packages` (all when empty), only
/// the security ones with `security_only`; the manager's lock is waited for
/// `lock_wait` seconds.
#[derive(Debug, Clone, Copy)]
pub struct Updates<'a> {
    /// The packages named, or none for all.
    pub packages: &'a [String],
    /// Security updates only (not with apt).
    pub security_only: bool,
    /// Seconds to wait for the manager's lock.
    pub lock_wait: u64,
}

/// A package to install, at `version` or the newest; the manager's lock is
/// waited for `lock_wait` seconds.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    /// The package.
    pub package: &'a str,
    /// The version, or the newest.
    pub version: Option<&'a str>,
    /// Seconds to wait for the manager's lock.
    pub lock_wait: u64,
    /// Only simulate the install (apt and zypper), to learn what it would
    /// bring.
    pub simulate: bool,
}

impl Wanted<'_> {
    /// `PKG` or, with a version, `PKG` `separator` `VERSION`.
    pub fn spec(&self, separator: char) -> String {
        match self.version {
            Some(v) => format!("{}{separator}{v}", self.package),
            None => self.package.to_owned(),
        }
    }
}

/// The pending updates, from the manager's own simulation.
pub fn pending(
    m: &Manager,
    exec: &mut Exec,
    u: Updates<'_>,
) -> Result<Vec<PackageUpdate>, Failure> {
    match m.kind {
        Kind::Apt if u.security_only => Err(apt_security_only()),
        Kind::Apt => apt::pending(m, exec, u),
        Kind::Dnf | Kind::Yum => rpm::pending(m, exec, u),
        Kind::Zypper => zypper::pending(m, exec, u),
    }
}

/// apt has no security-only mode.
pub fn apt_security_only() -> Failure {
    Failure::Unsupported(
        "security_only is not supported with apt: apt-get has no security-only mode and \
         upgrades from every configured source. Name the packages to update in `packages`, \
         or use unattended-upgrades for security updates"
            .into(),
    )
}

/// Applies the updates.
pub fn upgrade(m: &Manager, exec: &mut Exec, u: Updates<'_>) -> Result<(), Failure> {
    match m.kind {
        Kind::Apt if u.security_only => Err(apt_security_only()),
        Kind::Apt => apt::upgrade(m, exec, u),
        Kind::Dnf | Kind::Yum => rpm::upgrade(m, exec, u),
        Kind::Zypper => zypper::upgrade(m, exec, u),
    }
}

/// The installed version of `package`, `None` when not installed.
pub fn installed(m: &Manager, exec: &mut Exec, package: &str) -> Result<Option<String>, Failure> {
    match m.kind {
        Kind::Apt => apt::installed(m, exec, package),
        Kind::Dnf | Kind::Yum => rpm::installed(m, exec, package),
        Kind::Zypper => zypper::installed(m, exec, package),
    }
}

/// The version an install of `w` would bring; `None` when the repositories
/// do not offer it.
pub fn candidate(m: &Manager, exec: &mut Exec, w: Wanted<'_>) -> Result<Option<String>, Failure> {
    match (m.kind, w.version) {
        (Kind::Apt, None) => apt::candidate(m, exec, w.package),
        (Kind::Apt, Some(v)) => {
            let f = apt::install(
                m,
                exec,
                Wanted {
                    simulate: true,
                    ..w
                },
            )?;
            // Already at that version: no Inst line, apt says so.
            let planned = apt::parse_simulation(&f.output)
                .into_iter()
                .find(|u| u.name == w.package)
                .map(|u| u.to);
            Ok(planned.or_else(|| Some(v.to_owned())))
        }
        (Kind::Dnf | Kind::Yum, _) => rpm::candidate(m, exec, w),
        (Kind::Zypper, None) => zypper::candidate(m, exec, w.package, w.lock_wait),
        (Kind::Zypper, Some(v)) => {
            zypper::install(
                m,
                exec,
                Wanted {
                    simulate: true,
                    ..w
                },
            )?;
            Ok(Some(v.to_owned()))
        }
    }
}

/// Installs `w`.
pub fn install(m: &Manager, exec: &mut Exec, w: Wanted<'_>) -> Result<(), Failure> {
    match m.kind {
        Kind::Apt => apt::install(m, exec, w).map(drop),
        Kind::Dnf | Kind::Yum => rpm::install(m, exec, w).map(drop),
        Kind::Zypper => zypper::install(m, exec, w).map(drop),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_versions() {
        for ok in [
            "puppet-agent",
            "openvox-agent",
            "libstdc++6",
            "kick_e2e.pkg",
            "G",
        ] {
            validate_package("package", ok).unwrap();
        }
        for bad in ["-o", "--force", "a b", "a;b", "a/b", "", "pkg=1", "$(x)"] {
            assert!(validate_package("package", bad).is_err(), "{bad}");
        }
        for ok in ["7.23.0-1+deb12u1", "1:2.3~rc1", "8.10.0-1.el9"] {
            validate_version(ok).unwrap();
        }
        for bad in ["-1", "1 2", "1;2", ""] {
            assert!(validate_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn detection_order_and_absence() {
        let d = tempfile::tempdir().unwrap();
        let sys = SysRoot::at(d.path());
        let e = Manager::detect(&sys).unwrap_err();
        assert_eq!(e.kind(), "psick/no-package-manager");
        for (bin, kind) in [
            ("usr/bin/zypper", Kind::Zypper),
            ("usr/bin/yum", Kind::Yum),
            ("usr/bin/dnf", Kind::Dnf),
            ("usr/bin/apt-get", Kind::Apt),
        ] {
            let p = d.path().join(bin);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            assert_eq!(Manager::detect(&sys).unwrap().kind, kind, "{bin}");
        }
    }
}
