//! Simulated managed nodes: each a real `puppet agent` identity with its own certname, confdir,
//! vardir, ssldir, rundir and logdir, all talking to the same loopback puppetserver.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::stack::Stack;
use crate::task::{RunningTask, TaskRun};

/// One simulated node. Its files live in a temporary root removed on drop (kept when
/// `KICK_KEEP_NODES=1`, for debugging), together with what Puppet manages for it under
/// `/tmp/kick-e2e/<certname>`.
#[derive(Debug)]
pub struct SimNode {
    certname: String,
    root: PathBuf,
    keep: bool,
}

impl SimNode {
    /// A node with the given certname. The certname must be new to the CA (it autosigns a
    /// fresh key on first contact), so tests normally use [`SimNode::unique`].
    pub fn new(stack: &Stack, certname: &str) -> SimNode {
        let _ = stack;
        assert!(
            !certname.is_empty()
                && certname
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-.".contains(c)),
            "certname {certname:?} must be lower-case letters, digits, '-' and '.'"
        );
        let root = tempfile::Builder::new()
            .prefix(&format!("kick-node-{certname}-"))
            .tempdir()
            .expect("create a temporary node root")
            .keep();
        let node = SimNode {
            certname: certname.to_owned(),
            root,
            keep: std::env::var("KICK_KEEP_NODES").is_ok_and(|v| v == "1"),
        };
        for dir in ["etc", "var", "ssl", "run", "log"] {
            std::fs::create_dir_all(node.root.join(dir)).expect("create node dirs");
        }
        std::fs::write(node.confdir().join("puppet.conf"), node.puppet_conf())
            .expect("write the node's puppet.conf");
        node
    }

    /// A node whose certname is `<prefix>-<pid>-<random>`, new to the CA on every test run.
    pub fn unique(stack: &Stack, prefix: &str) -> SimNode {
        let name = format!(
            "{prefix}-{}-{:06x}",
            std::process::id(),
            fastrand::u32(..0x100_0000)
        );
        SimNode::new(stack, &name)
    }

    fn puppet_conf(&self) -> String {
        let d = |sub: &str| self.root.join(sub).display().to_string();
        format!(
            "# simulated node {certname} (kick-e2e)\n\
             [main]\n\
             certname = {certname}\n\
             server = {server}\n\
             serverport = {port}\n\
             vardir = {var}\n\
             # Debian (and AIO) Puppet put publicdir, hence lastrunfile, outside vardir;\n\
             # each simulated node needs its own last_run_summary.yaml.\n\
             publicdir = {var}/public\n\
             ssldir = {ssl}\n\
             rundir = {run}\n\
             logdir = {log}\n\
             \n\
             [agent]\n\
             # Avoids a 30 s stall after the CSR on first contact (see puppet-stack.md).\n\
             http_keepalive_timeout = 0\n",
            certname = self.certname,
            server = Stack::SERVER,
            port = Stack::PORT,
            var = d("var"),
            ssl = d("ssl"),
            run = d("run"),
            log = d("log"),
        )
    }

    pub fn certname(&self) -> &str {
        &self.certname
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn confdir(&self) -> PathBuf {
        self.root.join("etc")
    }
    pub fn vardir(&self) -> PathBuf {
        self.root.join("var")
    }
    pub fn ssldir(&self) -> PathBuf {
        self.root.join("ssl")
    }
    /// Puppet's `agent_catalog_run_lockfile` for this node.
    pub fn lockfile(&self) -> PathBuf {
        self.vardir().join("state/agent_catalog_run.lock")
    }
    /// Puppet's `agent_disabled_lockfile` for this node.
    pub fn disabled_lockfile(&self) -> PathBuf {
        self.vardir().join("state/agent_disabled.lock")
    }
    /// Puppet's `lastrunfile` for this node.
    pub fn last_run_summary(&self) -> PathBuf {
        self.vardir().join("public/last_run_summary.yaml")
    }
    /// Where the test environments manage files for this node.
    pub fn managed_dir(&self) -> PathBuf {
        Path::new("/tmp/kick-e2e").join(&self.certname)
    }
    pub fn cert_pem(&self) -> PathBuf {
        self.ssldir().join(format!("certs/{}.pem", self.certname))
    }
    pub fn key_pem(&self) -> PathBuf {
        self.ssldir()
            .join(format!("private_keys/{}.pem", self.certname))
    }
    pub fn ca_pem(&self) -> PathBuf {
        self.ssldir().join("certs/ca.pem")
    }

    /// The environment a task process needs to act on this node (as an orchestrator inventory
    /// would set it): `PSICK_PUPPET_CONFDIR` and `PSICK_PUPPET_BIN`.
    pub fn task_env(&self) -> Vec<(String, String)> {
        vec![
            (
                "PSICK_PUPPET_CONFDIR".to_owned(),
                self.confdir().display().to_string(),
            ),
            ("PSICK_PUPPET_BIN".to_owned(), Stack::PUPPET_BIN.to_owned()),
        ]
    }

    /// A `puppet <subcommand> --confdir <this node's confdir>` command, no colour.
    pub fn puppet(&self, subcommand: &str) -> Command {
        let mut cmd = Command::new(Stack::PUPPET_BIN);
        cmd.arg(subcommand)
            .arg("--confdir")
            .arg(self.confdir())
            .arg("--color=false")
            .stdin(Stdio::null());
        cmd
    }

    /// Gets the node a signed certificate (key, CSR, autosign), so later runs skip that step.
    pub fn bootstrap(&self) -> Duration {
        let t = Instant::now();
        let out = self
            .puppet("ssl")
            .arg("bootstrap")
            .output()
            .expect("spawn puppet ssl bootstrap");
        assert!(
            out.status.success() && self.cert_pem().is_file(),
            "puppet ssl bootstrap for {} failed ({}):\n{}{}",
            self.certname,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        t.elapsed()
    }

    /// `puppet agent --disable MESSAGE` for this node.
    pub fn disable(&self, message: &str) {
        let st = self
            .puppet("agent")
            .arg("--disable")
            .arg(message)
            .status()
            .expect("spawn puppet agent --disable");
        assert!(st.success(), "puppet agent --disable failed: {st}");
        assert!(self.disabled_lockfile().is_file());
    }

    /// `puppet agent --enable` for this node.
    pub fn enable(&self) {
        let st = self
            .puppet("agent")
            .arg("--enable")
            .status()
            .expect("spawn puppet agent --enable");
        assert!(st.success(), "puppet agent --enable failed: {st}");
    }

    /// Starts a real one-off agent run in the background (e.g. in environment `slow`, to hold
    /// the catalog-run lock). The run is killed if still alive when the handle drops.
    pub fn spawn_agent(&self, environment: &str) -> AgentRun {
        self.spawn_agent_with(environment, false)
    }

    /// [`SimNode::spawn_agent`] in a process group of its own, as a run started by the
    /// daemon or by the task is: what puppet starts (an exec's command) is in that group.
    pub fn spawn_agent_own_group(&self, environment: &str) -> AgentRun {
        self.spawn_agent_with(environment, true)
    }

    fn spawn_agent_with(&self, environment: &str, own_group: bool) -> AgentRun {
        use std::os::unix::process::CommandExt;
        let out_path = self.root.join(format!("agent-{environment}.log"));
        let out = std::fs::File::create(&out_path).expect("create agent log");
        let err = out.try_clone().expect("dup agent log");
        let mut cmd = self.puppet("agent");
        if own_group {
            cmd.process_group(0);
        }
        let child = cmd
            .args([
                "--onetime",
                "--no-daemonize",
                "--verbose",
                "--no-splay",
                "--detailed-exitcodes",
                "--no-usecacheonfailure",
            ])
            .arg(format!("--environment={environment}"))
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn puppet agent");
        AgentRun {
            child,
            log: out_path,
        }
    }

    /// Waits until this node's catalog-run lockfile exists, holding a live PID.
    pub fn wait_for_lock(&self, within: Duration) -> u32 {
        let deadline = Instant::now() + within;
        loop {
            if let Some(pid) = std::fs::read_to_string(self.lockfile())
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
            {
                return pid;
            }
            assert!(
                Instant::now() < deadline,
                "no catalog-run lock at {} after {within:?}",
                self.lockfile().display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// PIDs of live processes whose command line names this node's confdir (its puppet runs,
    /// forked or not). Zombies and our own test process are not counted.
    pub fn puppet_processes(&self) -> Vec<u32> {
        let needle = self.confdir().display().to_string();
        let me = std::process::id();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| pid != me)
            .filter(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                // Field 3 (after the parenthesised comm) is the state; Z = zombie.
                let state = stat
                    .rsplit_once(") ")
                    .map(|(_, rest)| rest.starts_with('Z'));
                state == Some(false)
            })
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|c| String::from_utf8_lossy(&c).contains(&needle))
                    .unwrap_or(false)
            })
            .collect()
    }

    /// Where the `slow` environment's exec writes its own PID.
    pub fn exec_pid_file(&self) -> PathBuf {
        PathBuf::from(format!("/tmp/kick-exec-pids/{}.pid", self.certname()))
    }

    /// Waits until the `slow` environment's exec has written its PID, and returns it. The file
    /// of an earlier run is removed first by [`SimNode::forget_exec_pid`].
    pub fn wait_for_exec_pid(&self, within: Duration) -> u32 {
        let deadline = Instant::now() + within;
        loop {
            if let Some(pid) = std::fs::read_to_string(self.exec_pid_file())
                .ok()
                .and_then(|s| s.trim().parse().ok())
                && process_alive(pid)
            {
                return pid;
            }
            assert!(
                Instant::now() < deadline,
                "the slow exec of {} never wrote {}",
                self.certname(),
                self.exec_pid_file().display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The PID the `slow` environment's exec wrote in this run (it may be gone by now).
    pub fn exec_pid_written(&self) -> u32 {
        let file = self.exec_pid_file();
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("the slow exec never wrote {}: {e}", file.display()))
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
    }

    /// Removes the exec's PID file of an earlier run.
    pub fn forget_exec_pid(&self) {
        let _ = std::fs::remove_file(self.exec_pid_file());
    }

    /// Polls until no process of this node's is left, or `within` passes; returns the rest.
    pub fn wait_no_puppet_processes(&self, within: Duration) -> Vec<u32> {
        let deadline = Instant::now() + within;
        loop {
            let left = self.puppet_processes();
            if left.is_empty() || Instant::now() >= deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Starts the task binary under test for this node without waiting for it.
    pub fn spawn_task(&self, params: &Value) -> RunningTask {
        RunningTask::spawn(&crate::task_bin(), &self.task_env(), params)
    }

    /// Runs the task binary under test for this node with `params` as its stdin JSON.
    pub fn run_task(&self, params: &Value) -> TaskRun {
        TaskRun::run(&crate::task_bin(), &self.task_env(), params)
    }

    /// Runs the task binary `bin` (another architecture's build, say) on this node, started by
    /// `runner` (e.g. `qemu-aarch64-static`) when given.
    pub fn run_task_with(&self, runner: Option<&Path>, bin: &Path, params: &Value) -> TaskRun {
        TaskRun::run_via(runner, bin, &self.task_env(), params)
    }
}

impl Drop for SimNode {
    fn drop(&mut self) {
        if self.keep {
            eprintln!(
                "note: kept node {} at {}",
                self.certname,
                self.root.display()
            );
            return;
        }
        let _ = std::fs::remove_dir_all(&self.root);
        let _ = std::fs::remove_dir_all(self.managed_dir());
    }
}

/// A background `puppet agent` run started by [`SimNode::spawn_agent`].
#[derive(Debug)]
pub struct AgentRun {
    child: Child,
    log: PathBuf,
}

impl AgentRun {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the run is still going.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILLs the run (no cleanup by puppet: its catalog-run lock is left behind, stale)
    /// and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the run to end; returns its exit status and combined output.
    pub fn wait(mut self) -> (ExitStatus, String) {
        let st = self.child.wait().expect("wait for puppet agent");
        (st, std::fs::read_to_string(&self.log).unwrap_or_default())
    }
}

impl Drop for AgentRun {
    fn drop(&mut self) {
        // Only our own child, by its PID handle; after wait() this is a no-op.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether `pid` is a live process (a zombie is not: it runs nothing).
pub fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(") ")
                .map(|(_, rest)| !rest.starts_with('Z'))
        })
        .unwrap_or(false)
}
