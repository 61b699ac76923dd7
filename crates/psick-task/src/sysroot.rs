//! The fixed system paths the tasks look at (puppet's install and config
//! directories, package managers, reboot markers), optionally below a test
//! root.
//!
//! `PSICK_TEST_SYSROOT` is for the test suites only: it puts every fixed
//! absolute path the tasks read or run below that directory, so a test can
//! build a fake `/etc/puppet`, `/opt/puppetlabs/bin/puppet` or
//! `/usr/bin/apt-get` without touching the machine. Like `PSICK_PUPPET_BIN`
//! it is a node-local setting of the task process, never a task parameter.

use std::path::{Path, PathBuf};

/// Environment variable naming the test root.
pub const ENV_SYSROOT: &str = "PSICK_TEST_SYSROOT";

/// Where `/` is for the fixed paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysRoot(PathBuf);

impl Default for SysRoot {
    fn default() -> Self {
        SysRoot(PathBuf::from("/"))
    }
}

impl SysRoot {
    /// `PSICK_TEST_SYSROOT` when set to an absolute path, else `/`.
    pub fn from_env() -> SysRoot {
        std::env::var_os(ENV_SYSROOT)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .map_or_else(SysRoot::default, SysRoot)
    }

    /// A root at `dir` (tests).
    pub fn at(dir: impl Into<PathBuf>) -> SysRoot {
        SysRoot(dir.into())
    }

    /// The fixed absolute path `abs` below this root.
    pub fn path(&self, abs: &str) -> PathBuf {
        self.0.join(abs.trim_start_matches('/'))
    }

    /// Whether this is the real `/`.
    pub fn is_real(&self) -> bool {
        self.0 == Path::new("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_go_below_the_root() {
        assert_eq!(
            SysRoot::default().path("/etc/puppet"),
            Path::new("/etc/puppet")
        );
        assert!(SysRoot::default().is_real());
        let t = SysRoot::at("/tmp/x");
        assert_eq!(
            t.path("/usr/bin/apt-get"),
            Path::new("/tmp/x/usr/bin/apt-get")
        );
        assert!(!t.is_real());
    }
}
