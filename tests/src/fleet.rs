//! The fleet of real SSH nodes started by `tests/scripts/fleet.sh up`.
//!
//! Each node is Debian's sshd running as PID 1 of its own mount, UTS and PID namespace, on its
//! own loopback address (127.0.1.N, port 22), with its own hostname (= certname), `/etc/puppet`,
//! puppet vardir and ssldir, `/run`, `/tmp`, host key, users (`kick`, with a sudo password) and
//! homes, and a puppet agent holding a certificate from the loopback puppetserver. The fleet's
//! `fleet.json` describes it; [`Fleet::from_env`] reads it from the state dir named by
//! `KICK_FLEET`.
//!
//! Tests on a shared fleet run in parallel (nextest runs each in its own process): a test that
//! disturbs a node (stops its sshd, rotates its host key, makes its `/tmp` noexec, holds its
//! agent lock, runs puppet on it) takes [`FleetNode::lock_exclusive`]; a test that only needs the
//! node as it is takes [`FleetNode::lock_shared`]. Both wait for the other kind and then check
//! the node is up.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::node::process_alive;
use crate::paths::workspace_root;
use crate::stack::ENV_REQUIRE_STACK;

/// Env var naming the fleet's state dir (`FLEET_STATE` of `fleet.sh`; printed by `fleet.sh up`).
pub const ENV_FLEET: &str = "KICK_FLEET";

/// A running fleet, as `fleet.json` describes it.
#[derive(Debug, Clone)]
pub struct Fleet {
    state_dir: PathBuf,
    known_hosts: PathBuf,
    nodes: Vec<FleetNode>,
}

/// One node of the fleet. The fields are `fleet.json`'s.
#[derive(Debug, Clone)]
pub struct FleetNode {
    /// Hostname inside the node, and the agent's certname.
    pub certname: String,
    /// Its own loopback address (127.0.1.N).
    pub address: String,
    pub port: u16,
    /// The login user (`kick`), not root.
    pub user: String,
    /// The fleet's client key, authorised for `user` (and for root) on every node.
    pub private_key: PathBuf,
    /// A key no node authorises.
    pub wrong_key: PathBuf,
    /// `user`'s password, which sudo asks for (`user ALL=(ALL:ALL) ALL`).
    pub sudo_password: String,
    /// `user`'s login password (the same as `sudo_password`; password logins are on).
    pub password: String,
    /// The node's host key as known_hosts holds it (`ssh-ed25519 AAAA...`).
    pub host_key: String,
    /// The node's directory on the host (`$FLEET_STATE/nodes/<certname>`).
    pub root: PathBuf,
    /// Host PID of the node's PID 1 (its sshd) when `fleet.json` was read; after a restart
    /// ([`FleetNode::start_sshd`]) see [`FleetNode::current_pid`].
    pub pid: u32,
    /// Whether `fleet.sh` started the node with a noexec tmpfs on `/tmp` (`FLEET_NOEXEC_TMP`).
    pub noexec_tmp: bool,
    known_hosts: PathBuf,
    state_dir: PathBuf,
}

impl Fleet {
    /// The fleet named by `KICK_FLEET`.
    ///
    /// Returns `None` (after a skip note) when the variable is unset, unless
    /// `KICK_REQUIRE_STACK=1` (as in `make test` and CI): then it panics. Panics too when the
    /// variable is set but the fleet is not there: a configured fleet that is missing is an
    /// error, not a skip. Whether each node is up is checked when a test locks it.
    pub fn from_env() -> Option<Fleet> {
        let required = std::env::var(ENV_REQUIRE_STACK).is_ok_and(|v| v == "1");
        let Some(dir) = std::env::var_os(ENV_FLEET).filter(|d| !d.is_empty()) else {
            assert!(
                !required,
                "{ENV_REQUIRE_STACK}=1 but {ENV_FLEET} is not set: start the fleet with \
                 `tests/scripts/fleet.sh up` and export {ENV_FLEET}=<its state dir, default \
                 /tmp/kick-fleet> (or run `make test`, which does both)"
            );
            eprintln!(
                "note: skipping SSH-fleet test: {ENV_FLEET} is not set \
                 (run `make test`, or tests/scripts/fleet.sh up and export {ENV_FLEET})"
            );
            return None;
        };
        let dir = PathBuf::from(dir);
        match Fleet::load(&dir) {
            Ok(fleet) => Some(fleet),
            Err(e) => panic!(
                "{ENV_FLEET}={} is set but the fleet cannot be read: {e}; start it with \
                 `FLEET_STATE={} tests/scripts/fleet.sh up`",
                dir.display(),
                dir.display()
            ),
        }
    }

    /// Reads `<state_dir>/fleet.json`.
    pub fn load(state_dir: &Path) -> Result<Fleet, String> {
        let path = state_dir.join("fleet.json");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let json: Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let known_hosts = PathBuf::from(
            json["known_hosts"]
                .as_str()
                .ok_or("fleet.json has no known_hosts")?,
        );
        let nodes = json["nodes"]
            .as_array()
            .ok_or("fleet.json has no nodes")?
            .iter()
            .map(|n| FleetNode::from_json(n, &known_hosts, state_dir))
            .collect::<Result<Vec<_>, String>>()?;
        if nodes.is_empty() {
            return Err("fleet.json lists no nodes".to_owned());
        }
        Ok(Fleet {
            state_dir: state_dir.to_path_buf(),
            known_hosts,
            nodes,
        })
    }

    /// The state dir (`FLEET_STATE`).
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// `fleet.json`.
    pub fn fleet_json(&self) -> PathBuf {
        self.state_dir.join("fleet.json")
    }

    /// The OpenSSH known_hosts file: each node's host key under its address and its certname.
    pub fn known_hosts(&self) -> &Path {
        &self.known_hosts
    }

    /// The nodes, in address order.
    pub fn nodes(&self) -> &[FleetNode] {
        &self.nodes
    }

    /// The node with this certname; panics when the fleet has none.
    pub fn node(&self, certname: &str) -> &FleetNode {
        self.nodes
            .iter()
            .find(|n| n.certname == certname)
            .unwrap_or_else(|| {
                panic!(
                    "the fleet in {} has no node {certname} (it has {:?})",
                    self.state_dir.display(),
                    self.nodes.iter().map(|n| &n.certname).collect::<Vec<_>>()
                )
            })
    }

    /// `tests/scripts/fleet.sh`.
    pub fn script() -> PathBuf {
        workspace_root().join("tests/scripts/fleet.sh")
    }
}

impl FleetNode {
    fn from_json(n: &Value, known_hosts: &Path, state_dir: &Path) -> Result<FleetNode, String> {
        let s = |k: &str| {
            n[k].as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("a fleet.json node has no string {k:?}: {n}"))
        };
        let u = |k: &str| {
            n[k].as_u64()
                .ok_or_else(|| format!("a fleet.json node has no number {k:?}: {n}"))
        };
        Ok(FleetNode {
            certname: s("certname")?,
            address: s("address")?,
            port: u16::try_from(u("port")?).map_err(|e| e.to_string())?,
            user: s("user")?,
            private_key: PathBuf::from(s("private_key")?),
            wrong_key: PathBuf::from(s("wrong_key")?),
            sudo_password: s("sudo_password")?,
            password: s("password").or_else(|_| s("sudo_password"))?,
            host_key: s("host_key")?,
            root: PathBuf::from(s("root")?),
            // null when the node was down at `up`'s end (it never is: `up` fails then).
            pid: u32::try_from(n["pid"].as_u64().unwrap_or(0)).map_err(|e| e.to_string())?,
            noexec_tmp: n["noexec_tmp"].as_bool().unwrap_or(false),
            known_hosts: known_hosts.to_path_buf(),
            state_dir: state_dir.to_path_buf(),
        })
    }

    // ---- SSH -----------------------------------------------------------------------------

    /// The fleet's known_hosts file.
    pub fn known_hosts(&self) -> &Path {
        &self.known_hosts
    }

    /// An `ssh` command to `user@address` with the fleet key, strict host key checking against
    /// the fleet's known_hosts only, no ssh_config, batch mode (no prompts). Append the remote
    /// command with `.arg(...)`.
    pub fn ssh(&self) -> Command {
        self.ssh_as(&self.user, &self.private_key)
    }

    /// [`FleetNode::ssh`] with another login and key (e.g. [`FleetNode::wrong_key`], or root).
    pub fn ssh_as(&self, user: &str, key: &Path) -> Command {
        self.ssh_with(user, key, &self.known_hosts)
    }

    /// [`FleetNode::ssh`] with another login, key and known_hosts file. (OpenSSH keeps the
    /// first value of an option: a second `-o UserKnownHostsFile` appended would be ignored.)
    pub fn ssh_with(&self, user: &str, key: &Path, known_hosts: &Path) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.args(["-F", "/dev/null", "-i"])
            .arg(key)
            .args([
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
            ])
            .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
            .args([
                "-o",
                "GlobalKnownHostsFile=/dev/null",
                "-o",
                "ConnectTimeout=10",
                "-o",
                "LogLevel=ERROR",
                "-p",
            ])
            .arg(self.port.to_string())
            .arg(format!("{user}@{}", self.address))
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `command` on the node as `user` over SSH; its output.
    pub fn run(&self, command: &str) -> Output {
        self.ssh()
            .arg(command)
            .output()
            .expect("spawn ssh to a fleet node")
    }

    /// Runs `command` on the node through `sudo -S -p '' sh -c command` as `user`, writing
    /// `password` and a newline to sudo's stdin; its output.
    pub fn sudo(&self, password: &str, command: &str) -> Output {
        let remote = format!("sudo -S -p '' sh -c {}", shell_quote(command));
        let mut child = self
            .ssh()
            .arg(remote)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ssh to a fleet node");
        {
            let mut stdin = child.stdin.take().expect("ssh stdin");
            // sudo may exit before reading (e.g. no sudoers entry): ignore a broken pipe.
            let _ = writeln!(stdin, "{password}");
        }
        child.wait_with_output().expect("wait for ssh")
    }

    // ---- the node's namespaces, from the host --------------------------------------------

    /// Host PID of the node's PID 1 (its sshd) now, from the state dir; `None` when the node
    /// is down. Checked against the recorded start time, so a recycled PID does not count.
    pub fn current_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.root.join("pid")).ok()?;
        let mut words = text.split_whitespace();
        let pid: u32 = words.next()?.parse().ok()?;
        let start = words.next()?;
        (start_time(pid)?.as_str() == start && process_alive(pid)).then_some(pid)
    }

    /// Whether the node is running (its PID 1 is the recorded one).
    pub fn is_up(&self) -> bool {
        self.current_pid().is_some()
    }

    fn pid_or_panic(&self) -> u32 {
        self.current_pid().unwrap_or_else(|| {
            panic!(
                "fleet node {} is down (no live PID in {}): run `FLEET_STATE={} {} up`",
                self.certname,
                self.root.join("pid").display(),
                self.state_dir.display(),
                Fleet::script().display()
            )
        })
    }

    /// PIDs (host view) of the live processes in the node's PID namespace other than its PID 1
    /// (the sshd listener): session sshds (`sshd: kick [priv]`, `sshd: kick@notty`), shells,
    /// and whatever they started, daemonised or not. Empty when the node is down.
    pub fn processes(&self) -> Vec<u32> {
        let Some(init) = self.current_pid() else {
            return Vec::new();
        };
        let Ok(ns) = std::fs::read_link(format!("/proc/{init}/ns/pid")) else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        let mut pids: Vec<u32> = entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| pid != init)
            .filter(|pid| std::fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|l| l == ns))
            .filter(|&pid| process_alive(pid))
            .collect();
        pids.sort_unstable();
        pids
    }

    /// The host PID of the node's process `ns_pid` (a PID as seen inside the node, e.g. `$$`
    /// or `$!` printed over SSH), from the `NSpid` line of each process's status.
    pub fn host_pid_of(&self, ns_pid: u32) -> Option<u32> {
        self.processes().into_iter().find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("NSpid:"))
                        .and_then(|l| l.split_whitespace().last()?.parse::<u32>().ok())
                })
                == Some(ns_pid)
        })
    }

    /// [`FleetNode::processes`] without the session sshds: what sessions ran (shells, tasks,
    /// puppet and its children). After a job's sessions closed, what is left here outlived it.
    pub fn processes_besides_sshd(&self) -> Vec<u32> {
        self.processes()
            .into_iter()
            .filter(|&pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim_end() != "sshd")
            })
            .collect()
    }

    /// Polls until [`FleetNode::processes_besides_sshd`] is empty or `within` passes; returns
    /// what is left (with command lines, for the assertion message).
    pub fn wait_no_processes_besides_sshd(&self, within: Duration) -> Vec<(u32, String)> {
        let deadline = Instant::now() + within;
        loop {
            let left = self.processes_besides_sshd();
            if left.is_empty() || Instant::now() >= deadline {
                return left.into_iter().map(|p| (p, cmdline(p))).collect();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A command that runs `program` as root inside the node's mount, UTS and PID namespaces
    /// (through `nsenter`, no SSH), with a clean environment and `/` as working directory. For
    /// test set-up and checks, e.g. `node.in_node("puppet").args(["agent", "--disable", "m"])`.
    pub fn in_node(&self, program: &str) -> Command {
        let pid = self.pid_or_panic();
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t")
            .arg(pid.to_string())
            .args(["-m", "-u", "-p", "--wd=/", "--", "env", "-i"])
            .arg("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .args(["HOME=/root", "LANG=C.UTF-8", program])
            .stdin(Stdio::null());
        cmd
    }

    /// The host path of `path` as the node sees it (through `/proc/<pid>/root`, so also for a
    /// tmpfs `/tmp`). Valid while the node runs.
    pub fn host_path(&self, path: &str) -> PathBuf {
        let pid = self.pid_or_panic();
        PathBuf::from(format!("/proc/{pid}/root")).join(path.trim_start_matches('/'))
    }

    /// Puppet's `agent_catalog_run_lockfile` on the node (host path; Debian's default path).
    pub fn lockfile(&self) -> PathBuf {
        self.root
            .join("var/cache/puppet/state/agent_catalog_run.lock")
    }

    /// Puppet's `agent_disabled_lockfile` on the node (host path).
    pub fn disabled_lockfile(&self) -> PathBuf {
        self.root.join("var/cache/puppet/state/agent_disabled.lock")
    }

    /// Puppet's `lastrunfile` on the node (host path).
    pub fn last_run_summary(&self) -> PathBuf {
        self.root
            .join("var/cache/puppet/public/last_run_summary.yaml")
    }

    /// The agent's certificate on the node (host path).
    pub fn cert_pem(&self) -> PathBuf {
        self.root
            .join(format!("var/lib/puppet/ssl/certs/{}.pem", self.certname))
    }

    /// Where the test environments manage files for this node, as the node sees it
    /// (`/tmp/kick-e2e/<certname>`, in the node's own /tmp); see [`FleetNode::host_path`].
    pub fn managed_dir(&self) -> String {
        format!("/tmp/kick-e2e/{}", self.certname)
    }

    // ---- disturbing a node (take lock_exclusive first) ------------------------------------

    fn fleet_sh(&self, args: &[&str]) {
        crate::run_ok(
            Command::new("bash")
                .arg(Fleet::script())
                .args(args)
                .env("FLEET_STATE", &self.state_dir)
                .stdin(Stdio::null()),
        );
    }

    /// Stops the node (its namespace, sshd and everything in it) by its recorded PID, so that
    /// connections to its address are refused. The node starts again when the guard drops, or
    /// with [`SshdStopped::start`].
    pub fn stop_sshd(&self) -> SshdStopped<'_> {
        self.fleet_sh(&["down-node", &self.certname]);
        SshdStopped {
            node: self,
            started: false,
        }
    }

    /// Starts the node again if it is down (same address, host key, users and certificate).
    pub fn start_sshd(&self) {
        self.fleet_sh(&["up-node", &self.certname]);
    }

    /// Gives the node a new host key and reloads its sshd (same PID), leaving known_hosts and
    /// `fleet.json` as they were: a client checking host keys now refuses the node. The known
    /// key comes back when the guard drops, or with [`HostKeyRotation::restore`].
    pub fn rotate_host_key(&self) -> HostKeyRotation<'_> {
        self.fleet_sh(&["rotate-host-key", &self.certname]);
        let new_key = std::fs::read_to_string(self.root.join("etc/ssh/ssh_host_ed25519_key.pub"))
            .expect("read the rotated host key")
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        HostKeyRotation {
            node: self,
            new_key,
            restored: false,
        }
    }

    /// Puts the known host key back (what dropping a [`HostKeyRotation`] does).
    pub fn restore_host_key(&self) {
        self.fleet_sh(&["restore-host-key", &self.certname]);
    }

    /// Remounts the node's `/tmp` noexec (`true`) or exec (`false`), live.
    pub fn set_tmp_noexec(&self, noexec: bool) {
        self.fleet_sh(&[
            "tmp-noexec",
            &self.certname,
            if noexec { "on" } else { "off" },
        ]);
    }

    /// Whether the node's `/tmp` is mounted noexec now (from its mount table).
    pub fn tmp_is_noexec(&self) -> bool {
        let pid = self.pid_or_panic();
        let table = std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
            .expect("read the node's mountinfo");
        // The last mount on /tmp is the visible one; field 6 holds its per-mount options.
        table
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                (f.get(4) == Some(&"/tmp")).then(|| f.get(5).copied().unwrap_or(""))
            })
            .next_back()
            .is_some_and(|opts| opts.split(',').any(|o| o == "noexec"))
    }

    // ---- sharing a node between parallel tests ---------------------------------------------

    /// Waits for the node's lock, exclusive: no other test uses the node until the guard drops.
    /// Then checks the node is up.
    pub fn lock_exclusive(&self) -> NodeLock {
        self.lock(true)
    }

    /// Waits for the node's lock, shared with other such tests (none holds it exclusively).
    /// Then checks the node is up.
    pub fn lock_shared(&self) -> NodeLock {
        self.lock(false)
    }

    fn lock(&self, exclusive: bool) -> NodeLock {
        let path = self.root.join("lock");
        let file = File::options()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        if exclusive {
            file.lock()
        } else {
            file.lock_shared()
        }
        .unwrap_or_else(|e| panic!("lock {}: {e}", path.display()));
        self.pid_or_panic();
        NodeLock { _file: file }
    }
}

/// A node stopped by [`FleetNode::stop_sshd`]; it starts again on drop.
#[must_use = "the node starts again when this guard drops"]
#[derive(Debug)]
pub struct SshdStopped<'a> {
    node: &'a FleetNode,
    started: bool,
}

impl SshdStopped<'_> {
    /// Starts the node again now.
    pub fn start(mut self) {
        self.started = true;
        self.node.start_sshd();
    }
}

impl Drop for SshdStopped<'_> {
    fn drop(&mut self) {
        if !self.started && !std::thread::panicking() {
            self.node.start_sshd();
        } else if !self.started {
            // Already failing: restart without a second panic.
            let _ = Command::new("bash")
                .arg(Fleet::script())
                .args(["up-node", &self.node.certname])
                .env("FLEET_STATE", &self.node.state_dir)
                .stdin(Stdio::null())
                .output();
        }
    }
}

/// A host key changed by [`FleetNode::rotate_host_key`]; the known key comes back on drop.
#[must_use = "the known host key comes back when this guard drops"]
#[derive(Debug)]
pub struct HostKeyRotation<'a> {
    node: &'a FleetNode,
    new_key: String,
    restored: bool,
}

impl HostKeyRotation<'_> {
    /// The key the node serves now (`ssh-ed25519 AAAA...`), not in known_hosts.
    pub fn new_key(&self) -> &str {
        &self.new_key
    }

    /// Puts the known key back now.
    pub fn restore(mut self) {
        self.restored = true;
        self.node.restore_host_key();
    }
}

impl Drop for HostKeyRotation<'_> {
    fn drop(&mut self) {
        if self.restored {
            return;
        }
        if std::thread::panicking() {
            let _ = Command::new("bash")
                .arg(Fleet::script())
                .args(["restore-host-key", &self.node.certname])
                .env("FLEET_STATE", &self.node.state_dir)
                .stdin(Stdio::null())
                .output();
        } else {
            self.node.restore_host_key();
        }
    }
}

/// A node's lock (see [`FleetNode::lock_exclusive`]); released on drop.
#[derive(Debug)]
pub struct NodeLock {
    _file: File,
}

/// The command line of a process, arguments joined by spaces (empty when it is gone).
pub fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            String::from_utf8_lossy(&c)
                .trim_end_matches('\0')
                .replace('\0', " ")
        })
        .unwrap_or_default()
}

/// Field 22 of /proc/PID/stat: the start time in clock ticks since boot.
fn start_time(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(") ")?;
    rest.split_whitespace().nth(19).map(str::to_owned)
}

/// `s` quoted for a POSIX shell (single quotes).
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
