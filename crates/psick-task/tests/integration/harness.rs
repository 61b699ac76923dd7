//! A simulated node: its own confdir, vardir and publicdir in a temp dir, a
//! fake puppet that records its argv, and a runner for the task binary.

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary under test: `PSICK_TASK_BIN` (the aarch64 build `make test` runs under qemu),
/// else this build's own.
pub fn task_bin() -> PathBuf {
    std::env::var_os("PSICK_TASK_BIN")
        .filter(|v| !v.is_empty())
        .map_or_else(|| env!("CARGO_BIN_EXE_psick-task").into(), PathBuf::from)
}

/// What runs the binary: `PSICK_TASK_RUNNER` (an emulator such as `qemu-aarch64-static`,
/// called explicitly: no binfmt_misc registration), else nothing.
pub fn runner() -> Option<OsString> {
    std::env::var_os("PSICK_TASK_RUNNER").filter(|v| !v.is_empty())
}

/// Whether the binary runs under an emulator, whose own memory and start-up time then count
/// in what the tests measure.
pub fn emulated() -> bool {
    runner().is_some()
}

/// The binary's CPU architecture as `uname -m` names it on its nodes, from its ELF header.
pub fn task_arch() -> &'static str {
    let head = fs::read(task_bin()).expect("read the task binary");
    match head.get(18..20) {
        Some([0x3e, 0]) => "x86_64",
        Some([0xb7, 0]) => "aarch64",
        other => panic!("the task binary is for an unexpected machine {other:?}"),
    }
}

/// A command that runs the task binary at `path` (the one under test, or a copy of it), through
/// the runner when there is one.
pub fn task_command(path: &Path) -> Command {
    match runner() {
        Some(r) => {
            let mut cmd = Command::new(r);
            cmd.arg(path);
            cmd
        }
        None => Command::new(path),
    }
}

pub struct Node {
    pub dir: tempfile::TempDir,
    pub conf: PathBuf,
    pub bin: PathBuf,
}

pub struct Outcome {
    pub code: i32,
    pub json: Value,
    pub stdout: String,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn kind(&self) -> &str {
        self.json["_error"]["kind"].as_str().unwrap_or("")
    }
    pub fn msg(&self) -> &str {
        self.json["_error"]["msg"].as_str().unwrap_or("")
    }
    pub fn output(&self) -> &str {
        self.json["_output"].as_str().unwrap_or("")
    }
}

impl Node {
    /// A node whose fake puppet runs `body` (POSIX sh) after recording argv.
    pub fn new(body: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("conf");
        fs::create_dir_all(&conf).unwrap();
        fs::create_dir_all(dir.path().join("var/state")).unwrap();
        fs::create_dir_all(dir.path().join("public")).unwrap();
        fs::write(
            conf.join("puppet.conf"),
            format!(
                "[main]\nvardir = {d}/var\npublicdir = {d}/public\nserver = main.example.com\n",
                d = dir.path().display()
            ),
        )
        .unwrap();
        let bin = dir.path().join("fake-puppet");
        let node = Node { dir, conf, bin };
        node.set_fake(body);
        node
    }

    pub fn set_fake(&self, body: &str) {
        let script = format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > '{argv}'\n{body}\n",
            argv = self.path("argv").display()
        );
        fs::write(&self.bin, script).unwrap();
        fs::set_permissions(&self.bin, fs::Permissions::from_mode(0o755)).unwrap();
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn lastrunfile(&self) -> PathBuf {
        self.path("public/last_run_summary.yaml")
    }

    pub fn lastrunreport(&self) -> PathBuf {
        self.path("var/state/last_run_report.yaml")
    }

    pub fn catalog_lock(&self) -> PathBuf {
        self.path("var/state/agent_catalog_run.lock")
    }

    pub fn disabled_lock(&self) -> PathBuf {
        self.path("var/state/agent_disabled.lock")
    }

    /// The argv the fake puppet last ran with, `None` if it never ran.
    pub fn argv(&self) -> Option<Vec<String>> {
        let text = fs::read_to_string(self.path("argv")).ok()?;
        Some(text.lines().map(str::to_owned).collect())
    }

    pub fn command(&self) -> Command {
        let mut cmd = task_command(&task_bin());
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("PT_") || k.to_string_lossy().starts_with("PSICK_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("PSICK_PUPPET_BIN", &self.bin)
            .env("PSICK_PUPPET_CONFDIR", &self.conf)
            // The node's own system root: no /etc/puppetlabs or /opt/puppetlabs
            // of the machine can change how the task reads its settings.
            .env("PSICK_TEST_SYSROOT", self.dir.path())
            .current_dir(self.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Starts the task with `stdin` as its input.
    pub fn spawn(&self, mut cmd: Command, stdin: &str) -> Child {
        cmd.stdin(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child
    }

    pub fn run(&self, stdin: &str) -> Outcome {
        self.run_cmd(self.command(), stdin)
    }

    pub fn run_cmd(&self, cmd: Command, stdin: &str) -> Outcome {
        let start = Instant::now();
        let child = self.spawn(cmd, stdin);
        finish(child, start)
    }
}

pub fn finish(child: Child, start: Instant) -> Outcome {
    let out = child.wait_with_output().unwrap();
    let elapsed = start.elapsed();
    let stdout = String::from_utf8(out.stdout).expect("stdout is UTF-8");
    assert_eq!(
        stdout.trim_end().lines().count(),
        1,
        "exactly one JSON line on stdout, got {stdout:?} (stderr {:?})",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_str(&stdout).expect("stdout is JSON");
    assert!(json.is_object());
    let code = out.status.code().expect("task exited normally");
    // Exit status and `_error` always agree.
    assert_eq!(code != 0, json.get("_error").is_some(), "{json}");
    Outcome {
        code,
        json,
        stdout,
        elapsed,
    }
}

/// A copy of /bin/sleep named `puppet`, so its comm is "puppet" and Puppet's
/// stale-lock rule counts it as a live agent run.
pub struct FakeHolder(pub Child);

impl FakeHolder {
    pub fn start(dir: &Path, seconds: &str) -> FakeHolder {
        let bin = dir.join("holder/puppet");
        fs::create_dir_all(bin.parent().unwrap()).unwrap();
        if !bin.exists() {
            fs::copy("/bin/sleep", &bin).unwrap();
        }
        FakeHolder(Command::new(&bin).arg(seconds).spawn().unwrap())
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for FakeHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The PID a process wrote to `file`.
pub fn read_pid(file: &Path) -> u32 {
    fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .trim()
        .parse()
        .unwrap()
}

/// Whether `pid` still runs (a zombie has ended: it runs nothing).
pub fn running(pid: u32) -> bool {
    process_tree::read(pid).is_some_and(|p| p.state != 'Z')
}

/// A daemon the fake puppet of [`Node::daemonizing`] started: killed when
/// dropped if still there, so a failing test leaves no `sleep 300` behind.
pub struct Daemon {
    /// Where it writes its PID.
    pub pidfile: PathBuf,
    /// Made by the fake puppet once the daemon's intermediate parent has
    /// exited: from then on only the task as subreaper holds it in the run.
    pub orphaned: PathBuf,
}

impl Daemon {
    /// Its PID, as it wrote it.
    pub fn pid(&self) -> u32 {
        read_pid(&self.pidfile)
    }

    /// Its parent now, for failure messages (`None` once it is gone).
    pub fn parent(&self) -> Option<u32> {
        process_tree::read(self.pid()).map(|p| p.ppid)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let Some(pid) = fs::read_to_string(&self.pidfile)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
        else {
            return;
        };
        // Only the daemon itself, not whoever got its PID since it ended.
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if cmdline == b"sleep\x00300\x00"
            && let Some(pid) = rustix::process::Pid::from_raw(pid)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

impl Node {
    /// A node whose fake puppet starts a daemon as a service an exec starts
    /// does: it double-forks into a session of its own, its intermediate
    /// parent exits, so neither puppet's group nor puppet's tree holds it.
    /// The daemon writes its PID; the fake, once the subshell that started
    /// it has exited (`( ... & )` waits for it) and the PID is written,
    /// marks it orphaned and runs on until it is stopped (exiting 0 on TERM,
    /// as real puppet does).
    pub fn daemonizing() -> (Node, Daemon) {
        let node = Node::new("");
        let daemon = Daemon {
            pidfile: node.path("daemon.pid"),
            orphaned: node.path("daemon.orphaned"),
        };
        node.set_fake(&format!(
            r#"trap 'exit 0' TERM
echo 'Info: starting the service'
( setsid sh -c 'echo $$ > "$0.tmp" && mv "$0.tmp" "$0"; exec sleep 300' '{f}' </dev/null >/dev/null 2>&1 & )
while [ ! -s '{f}' ]; do sleep 0.05; done
: > '{o}'
echo 'Info: service started'
sleep 300 & wait"#,
            f = daemon.pidfile.display(),
            o = daemon.orphaned.display()
        ));
        (node, daemon)
    }
}

pub const SUMMARY_NOOP: &str = "---
version:
  config: 1795460334
  puppet: 7.23.0
application:
  run_mode: agent
  initial_environment: production
  converged_environment: staging
resources:
  changed: 0
  corrective_change: 0
  failed: 0
  failed_to_restart: 0
  out_of_sync: 2
  restarted: 0
  scheduled: 0
  skipped: 0
  total: 9
changes:
  total: 0
events:
  failure: 0
  noop: 2
  success: 0
  total: 2
";

/// Shell that writes `summary` to the node's lastrunfile, like Puppet does
/// (temp file then rename).
/// Asserts that `result` matches the result schema tasks/puppet_agent.json
/// documents (`extensions.kick.result`).
pub fn assert_result_schema(result: &Value) {
    let path = format!(
        "{}/../../tasks/puppet_agent.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let metadata: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&metadata["extensions"]["kick"]["result"]).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(result)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{result:#}");
}

/// A real run report kept with the puppet-report crate's fixtures.
pub fn report_fixture(name: &str) -> String {
    let path = format!(
        "{}/../puppet-report/tests/fixtures/reports/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Shell that writes `report` as the run's report, replacing the file as
/// Puppet does.
pub fn write_report_sh(node: &Node, report: &str) -> String {
    let src = node.path("report.src");
    fs::write(&src, report).unwrap();
    format!(
        "cp '{src}' '{dst}.tmp' && mv '{dst}.tmp' '{dst}'",
        src = src.display(),
        dst = node.lastrunreport().display()
    )
}

pub fn write_summary_sh(node: &Node, summary: &str) -> String {
    let src = node.path("summary.src");
    fs::write(&src, summary).unwrap();
    format!(
        "cp '{src}' '{dst}.tmp' && mv '{dst}.tmp' '{dst}'",
        src = src.display(),
        dst = node.lastrunfile().display()
    )
}

/// Under an emulator (qemu-user has no PR_SET_CHILD_SUBREAPER), a stopped
/// run's output must say first that a process whose parent exited may be
/// left; the daemon tests then check that instead of the daemon's end.
pub fn assert_says_no_subreaper(output: &str) {
    assert!(
        output.starts_with("[psick: could not make the task the run's child subreaper"),
        "{output}"
    );
}
