//! Running the task binary as pxp-agent runs an external module: `<module> <action>` with the
//! request JSON on stdin.

use std::io::Write;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

/// One finished module process.
#[derive(Debug)]
pub struct ModuleRun {
    pub exit: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl ModuleRun {
    /// Runs `bin action` with `env` added and `stdin` written (then closed).
    pub fn run(bin: &Path, env: &[(String, String)], action: &str, stdin: &str) -> ModuleRun {
        let mut child = Command::new(bin)
            .arg(action)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        // A module that does not read its stdin (the usage) may close it first.
        let _ = child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(stdin.as_bytes());
        let out = child.wait_with_output().expect("wait for the module");
        ModuleRun {
            exit: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// stdout as JSON; panics (failing the test) when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "module stdout is not JSON ({e}); {}\nstdout: {}\nstderr: {}",
                self.exit, self.stdout, self.stderr
            )
        })
    }
}
