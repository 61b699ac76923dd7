//! Running the psick task binary the way pxp-agent does: parameters as JSON on stdin, one JSON
//! object expected on stdout.

use std::io::Write;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One finished task process.
#[derive(Debug)]
pub struct TaskRun {
    pub exit: ExitStatus,
    /// The JSON object the task printed (its whole stdout).
    pub result: Value,
    pub stderr: String,
    pub elapsed: Duration,
}

impl TaskRun {
    /// Runs `bin` with `env` added and `params` on stdin; panics (failing the test) when the
    /// task does not print exactly one JSON object on stdout.
    pub fn run(bin: &Path, env: &[(String, String)], params: &Value) -> TaskRun {
        let started = Instant::now();
        let mut child = Command::new(bin)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let input = serde_json::to_vec(params).expect("params serialise");
        // The pipe is dropped after writing, so the task sees EOF.
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(&input)
            .expect("write task stdin");
        let out = child.wait_with_output().expect("wait for task");
        let elapsed = started.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let result: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!(
                "task stdout is not one JSON document ({e}); exit {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
                out.status
            )
        });
        assert!(
            result.is_object(),
            "task result is not a JSON object: {result}"
        );
        TaskRun {
            exit: out.status,
            result,
            stderr,
            elapsed,
        }
    }

    /// `status` of the result ("unchanged" | "changed" | "failed").
    pub fn status(&self) -> &str {
        self.result["status"].as_str().unwrap_or("<missing>")
    }

    /// `_error.kind`, if the result carries an error.
    pub fn error_kind(&self) -> Option<&str> {
        self.result["_error"]["kind"].as_str()
    }

    /// `_error.msg`, or "" without an error.
    pub fn error_msg(&self) -> &str {
        self.result["_error"]["msg"].as_str().unwrap_or("")
    }

    /// `resources.<name>` as a number, if present.
    pub fn resource(&self, name: &str) -> Option<u64> {
        self.result["resources"][name].as_u64()
    }

    /// The whole result, pretty-printed, for assertion messages.
    pub fn dump(&self) -> String {
        format!(
            "exit {} after {:?}\nresult: {}\nstderr: {}",
            self.exit,
            self.elapsed,
            serde_json::to_string_pretty(&self.result).unwrap_or_default(),
            self.stderr
        )
    }
}
