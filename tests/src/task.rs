//! Running the psick task binary the way pxp-agent does: parameters as JSON on stdin, one JSON
//! object expected on stdout.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
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
        RunningTask::spawn(bin, env, params).wait()
    }

    /// As [`TaskRun::run`], with `bin` started by `runner` (an emulator such as
    /// `qemu-aarch64-static`, given the binary as its first argument) when there is one.
    pub fn run_via(
        runner: Option<&Path>,
        bin: &Path,
        env: &[(String, String)],
        params: &Value,
    ) -> TaskRun {
        RunningTask::spawn_via(runner, bin, env, params).wait()
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

    /// The PIDs a stop listed in `_error.details.stopped` (none without one).
    pub fn stopped_pids(&self) -> Vec<u64> {
        self.result["_error"]["details"]["stopped"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["pid"].as_u64())
            .collect()
    }

    /// `resources.<name>` as a number, if present.
    pub fn resource(&self, name: &str) -> Option<u64> {
        self.result["resources"][name].as_u64()
    }

    /// Asserts what only a run of the real agent reports: the catalog's `config_version` and
    /// a Puppet 7 or 8 `puppet_version`.
    pub fn assert_real_agent_ran(&self) {
        assert!(self.result["config_version"].is_string(), "{}", self.dump());
        assert!(
            self.result["puppet_version"]
                .as_str()
                .is_some_and(|v| v.starts_with(['7', '8'])),
            "{}",
            self.dump()
        );
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

/// A task process still running, started by [`RunningTask::spawn`].
#[derive(Debug)]
pub struct RunningTask {
    child: Child,
    started: Instant,
}

impl RunningTask {
    /// Starts `bin` with `env` added and `params` written to its stdin (then closed).
    pub fn spawn(bin: &Path, env: &[(String, String)], params: &Value) -> RunningTask {
        RunningTask::spawn_via(None, bin, env, params)
    }

    /// As [`RunningTask::spawn`], through `runner` when there is one (see [`TaskRun::run_via`]).
    pub fn spawn_via(
        runner: Option<&Path>,
        bin: &Path,
        env: &[(String, String)],
        params: &Value,
    ) -> RunningTask {
        let started = Instant::now();
        let mut cmd = match runner {
            Some(r) => {
                let mut c = Command::new(r);
                c.arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let mut child = cmd
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
        RunningTask { child, started }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM to the task process only (as an orchestrator's timeout does).
    pub fn terminate(&self) {
        let st = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -TERM {} failed", self.child.id());
    }

    /// Waits for the task and parses its result; panics (failing the test) when the task
    /// does not print exactly one JSON object on stdout.
    pub fn wait(self) -> TaskRun {
        let out = self.child.wait_with_output().expect("wait for task");
        let elapsed = self.started.elapsed();
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
}
