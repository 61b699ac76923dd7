//! The loopback puppetserver started by `tests/scripts/puppet-stack-up.sh`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Env var naming the stack's state dir (printed by `puppet-stack-up.sh`).
pub const ENV_STACK: &str = "KICK_PUPPET_STACK";
/// Env var that turns a missing stack into a failure (set by `make test` and CI).
pub const ENV_REQUIRE_STACK: &str = "KICK_REQUIRE_STACK";

/// A running puppetserver on 127.0.0.1:8140 (certname `localhost`, autosign on).
#[derive(Debug, Clone)]
pub struct Stack {
    state_dir: PathBuf,
}

impl Stack {
    /// The server host name agents use; it is in the server certificate's SANs.
    pub const SERVER: &'static str = "localhost";
    pub const PORT: u16 = 8140;
    /// Where the up script installs the test environments.
    pub const ENVIRONMENTS: &'static str = "/etc/puppet/code/environments";
    /// The puppet executable of Debian's puppet-agent package.
    pub const PUPPET_BIN: &'static str = "/usr/bin/puppet";

    /// The stack named by `KICK_PUPPET_STACK`, checked to be answering.
    ///
    /// Returns `None` (after printing a skip note) when the variable is unset, so that
    /// `cargo test` on a laptop without Puppet still passes the other suites. Panics when
    /// `KICK_REQUIRE_STACK=1` and the stack is absent or not answering, and always when the
    /// variable is set but the server does not answer: a configured stack that is down is an
    /// error, not a skip.
    pub fn from_env() -> Option<Stack> {
        let required = std::env::var(ENV_REQUIRE_STACK).is_ok_and(|v| v == "1");
        let Some(dir) = std::env::var_os(ENV_STACK).filter(|d| !d.is_empty()) else {
            assert!(
                !required,
                "{ENV_REQUIRE_STACK}=1 but {ENV_STACK} is not set: start the stack with \
                 `tests/scripts/puppet-stack-up.sh` and export {ENV_STACK}=<its state dir> \
                 (or run `make test`, which does both)"
            );
            eprintln!(
                "note: skipping real-Puppet test: {ENV_STACK} is not set \
                 (run `make test`, or tests/scripts/puppet-stack-up.sh and export {ENV_STACK})"
            );
            return None;
        };
        let stack = Stack {
            state_dir: PathBuf::from(dir),
        };
        let status = stack.status();
        assert!(
            status.as_deref() == Some("running"),
            "{ENV_STACK}={} is set but puppetserver on 127.0.0.1:{} answers {status:?}, not \
             \"running\": start it with tests/scripts/puppet-stack-up.sh (log: {}/puppetserver.log)",
            stack.state_dir.display(),
            Self::PORT,
            stack.state_dir.display(),
        );
        Some(stack)
    }

    /// The state dir (pid file, server log, timings).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The base URL agents and API clients use.
    pub fn url(&self) -> String {
        format!("https://{}:{}", Self::SERVER, Self::PORT)
    }

    /// The server's `/status/v1/simple` answer, if it answers at all.
    pub fn status(&self) -> Option<String> {
        // The readiness endpoint needs no client cert; 127.0.0.1 is not in the cert's SANs,
        // and this probe carries no data, so it skips verification.
        let out = Command::new("curl")
            .args(["-sk", "--max-time", "5"])
            .arg(format!("https://127.0.0.1:{}/status/v1/simple", Self::PORT))
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Directory of a Puppet environment on the server.
    pub fn environment_dir(&self, name: &str) -> PathBuf {
        Path::new(Self::ENVIRONMENTS).join(name)
    }
}
