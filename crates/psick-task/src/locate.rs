//! Finding the puppet executable and the node's settings.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Failure;
use crate::probe;
use crate::process::{Limits, Signals};
use crate::settings::{Context, Layout, PuppetConf, Settings};
use crate::sysroot::SysRoot;

/// Puppet's fixed install locations, tried before PATH.
pub const AIO_BINS: &[&str] = &[
    "/opt/puppetlabs/bin/puppet",
    "/opt/puppetlabs/puppet/bin/puppet",
];

/// How long `puppet config print` may take for the tasks without a timeout.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(120);
const PROBE_GRACE: Duration = Duration::from_secs(5);

/// Used when PATH is unset, as under some service managers.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The node's puppet: executable, settings and where they came from.
#[derive(Debug, Clone)]
pub struct Puppet {
    /// The executable to run.
    pub bin: PathBuf,
    /// `PSICK_PUPPET_CONFDIR`, passed on as `--confdir`.
    pub confdir_override: Option<PathBuf>,
    /// Resolved settings.
    pub settings: Settings,
}

impl Puppet {
    /// Finds puppet and resolves its settings from the process environment:
    /// from puppet.conf when the node's layout is clear, else by asking puppet
    /// (within `limits`, stopped by the task's `signals`).
    pub fn from_env(limits: Limits, signals: &Signals) -> Result<Puppet, Failure> {
        let sys = SysRoot::from_env();
        let fixed: Vec<String> = AIO_BINS
            .iter()
            .map(|b| sys.path(b).display().to_string())
            .collect();
        let fixed: Vec<&str> = fixed.iter().map(String::as_str).collect();
        let bin = find_bin(
            std::env::var_os("PSICK_PUPPET_BIN"),
            std::env::var_os("PATH"),
            &fixed,
        )?;
        Puppet::with_bin(bin, limits, signals)
    }

    /// [`Puppet::from_env`] for a given executable (pxp-agent's module
    /// configuration names one).
    pub fn with_bin(bin: PathBuf, limits: Limits, signals: &Signals) -> Result<Puppet, Failure> {
        let sys = SysRoot::from_env();
        let confdir_override = std::env::var_os("PSICK_PUPPET_CONFDIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from);
        let root = rustix::process::geteuid().is_root();
        let home = home_dir();
        let settings = match Layout::detect(&bin, &sys, root, &home) {
            Some(layout) => {
                let ctx = Context {
                    layout,
                    confdir: confdir_override.clone(),
                    root,
                    home,
                    sys,
                };
                let conf_path = ctx.confdir().join("puppet.conf");
                // A missing or unreadable puppet.conf means Puppet's defaults
                // apply, which is also what puppet itself will do.
                let conf = crate::lockfile::read_regular(&conf_path, 1024 * 1024)
                    .map(|t| PuppetConf::parse(&t))
                    .unwrap_or_default();
                ctx.resolve(&conf)
            }
            None => probe::ask(&bin, confdir_override.as_deref(), limits, signals)?,
        };
        Ok(Puppet {
            bin,
            confdir_override,
            settings,
        })
    }

    /// [`Puppet::from_env`] for the tasks without a `timeout` parameter:
    /// asking puppet may take [`PROBE_TIMEOUT`].
    pub fn from_env_bounded(signals: &Signals) -> Result<Puppet, Failure> {
        Puppet::from_env(
            Limits {
                timeout: Some(PROBE_TIMEOUT),
                grace: PROBE_GRACE,
            },
            signals,
        )
    }

    /// The node's puppet.conf.
    pub fn puppet_conf(&self) -> PathBuf {
        self.settings.confdir.join("puppet.conf")
    }
}

/// `PSICK_PUPPET_BIN` if set, else the AIO locations, else PATH (with a
/// default PATH when unset), else `/usr/bin/puppet`.
pub fn find_bin(
    override_bin: Option<OsString>,
    path: Option<OsString>,
    fixed: &[&str],
) -> Result<PathBuf, Failure> {
    if let Some(bin) = override_bin.filter(|b| !b.is_empty()) {
        let bin = PathBuf::from(bin);
        return if is_executable(&bin) {
            Ok(bin)
        } else {
            Err(Failure::PuppetNotFound {
                looked: format!("PSICK_PUPPET_BIN={}", bin.display()),
            })
        };
    }
    let path = path.unwrap_or_else(|| DEFAULT_PATH.into());
    let candidates: Vec<PathBuf> = fixed
        .iter()
        .map(PathBuf::from)
        .chain(
            std::env::split_paths(&path)
                .filter(|d| d.is_absolute())
                .map(|d| d.join("puppet")),
        )
        .chain([PathBuf::from("/usr/bin/puppet")])
        .collect();
    candidates
        .iter()
        .find(|c| is_executable(c))
        .cloned()
        .ok_or_else(|| Failure::PuppetNotFound {
            looked: format!("{}, then PATH={}", fixed.join(", "), path.to_string_lossy()),
        })
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `$HOME`, else the home of the effective user from /etc/passwd, else `/`.
pub fn home_dir() -> String {
    if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return h.to_string_lossy().into_owned();
    }
    let uid = rustix::process::geteuid().as_raw().to_string();
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 6 && f[2] == uid).then(|| f[5].to_owned())
            })
        })
        .unwrap_or_else(|| "/".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn exe(dir: &Path, name: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn override_must_exist_and_be_executable() {
        let d = tempfile::tempdir().unwrap();
        let ok = exe(d.path(), "puppet", 0o755);
        let noexec = exe(d.path(), "plain", 0o644);
        assert_eq!(find_bin(Some(ok.clone().into()), None, &[]).unwrap(), ok);
        let e = find_bin(Some(noexec.into()), None, &[]).unwrap_err();
        assert_eq!(e.kind(), "psick/puppet-not-found");
        assert!(e.to_string().contains("PSICK_PUPPET_BIN="), "{e}");
        let e = find_bin(Some(d.path().join("missing").into()), None, &[]).unwrap_err();
        assert_eq!(e.kind(), "psick/puppet-not-found");
    }

    #[test]
    fn fixed_locations_come_before_path() {
        let fixed_dir = tempfile::tempdir().unwrap();
        let path_dir = tempfile::tempdir().unwrap();
        let fixed = exe(fixed_dir.path(), "puppet", 0o755);
        let on_path = exe(path_dir.path(), "puppet", 0o755);
        let fixed_s = fixed.to_str().unwrap();
        let missing = "/nonexistent/puppet";
        let path = Some(path_dir.path().as_os_str().to_owned());
        assert_eq!(
            find_bin(None, path.clone(), &[missing, fixed_s]).unwrap(),
            fixed
        );
        assert_eq!(find_bin(None, path, &[missing]).unwrap(), on_path);
    }
}
