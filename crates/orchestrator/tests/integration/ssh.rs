//! Tasks on SSH nodes, against a real OpenSSH sshd this test starts on its
//! own loopback address (127.0.2.N) with its own host key and an authorised
//! client key, stopped by its PID at the end. The fleet of namespace nodes
//! with real puppet agents is the end-to-end suite's (tests/e2e); these are
//! the transport's own cases, fast.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use kick_orchestrator::transport::SshTarget;
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::common::{Server, config, scratch_task, write_scratch};

static NEXT: AtomicU8 = AtomicU8::new(1);

/// A real sshd for root on 127.0.2.N:22, key authentication only.
pub struct Sshd {
    child: Child,
    pub dir: tempfile::TempDir,
    pub addr: String,
    pub key: String,
    pub host_pub: String,
}

fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen (package openssh-client)");
    assert!(st.success());
}

impl Sshd {
    pub fn start() -> Sshd {
        // Nextest runs each test in a process of its own: an address is picked at random and
        // kept only once this test's sshd listens on it (another test's may have it).
        for _ in 0..20 {
            if let Some(sshd) = Self::try_start() {
                return sshd;
            }
        }
        panic!("no free 127.0.2.N address for a test sshd after 20 tries");
    }

    fn try_start() -> Option<Sshd> {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("host"));
        keygen(&d.join("client"));
        std::fs::copy(d.join("client.pub"), d.join("authorized_keys")).unwrap();
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let addr = format!("127.0.2.{}", 1 + (fastrand::u8(..) ^ n) % 250);
        if std::net::TcpListener::bind((addr.as_str(), 22)).is_err() {
            return None;
        }
        let conf = format!(
            "ListenAddress {addr}:22\nHostKey {d}/host\nAuthorizedKeysFile {d}/authorized_keys\n\
             PermitRootLogin prohibit-password\nPasswordAuthentication no\nUsePAM no\n\
             StrictModes no\nPidFile {d}/sshd.pid\nMaxStartups 100:30:200\nMaxSessions 50\n\
             Subsystem sftp internal-sftp\n",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), conf).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let log = std::fs::File::create(d.join("sshd.log")).unwrap();
        let mut child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("sshd (package openssh-server)");
        let t0 = Instant::now();
        loop {
            // Ours listens once its log says so (a connect could reach another test's sshd).
            let said = std::fs::read_to_string(d.join("sshd.log")).unwrap_or_default();
            if said.contains("Server listening on") {
                break;
            }
            if child.try_wait().ok().flatten().is_some() {
                // It could not bind: another test took the address meanwhile.
                return None;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "sshd did not listen: {said}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let host_pub = std::fs::read_to_string(d.join("host.pub")).unwrap();
        let key = std::fs::read_to_string(d.join("client")).unwrap();
        Some(Sshd {
            child,
            dir,
            addr,
            key,
            host_pub,
        })
    }

    /// A known_hosts file naming this sshd's key (or another key).
    pub fn known_hosts(&self, right: bool) -> PathBuf {
        let path = self
            .dir
            .path()
            .join(if right { "kh-right" } else { "kh-wrong" });
        let key = if right {
            self.host_pub.clone()
        } else {
            keygen(&self.dir.path().join("other"));
            std::fs::read_to_string(self.dir.path().join("other.pub")).unwrap()
        };
        std::fs::write(&path, format!("{} {key}", self.addr)).unwrap();
        path
    }

    pub fn target(&self, certname: &str) -> SshTarget {
        let mut t = SshTarget::new(certname, "root");
        t.hostname = self.addr.clone();
        t.private_key = Some(SecretString::from(self.key.clone()));
        t.tmpdir = self.dir.path().join("tmp").display().to_string();
        std::fs::create_dir_all(&t.tmpdir).unwrap();
        t
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn one(s: &Server, task: &str, params: Value, node: &str) -> (Value, Value) {
    let job = s.task(task, params, &[node]).await;
    let j = s.wait(&job).await;
    let nodes = s.nodes(&job).await;
    (j, nodes[0].clone())
}

#[tokio::test]
async fn a_task_runs_over_ssh_and_a_second_job_uploads_nothing() {
    let sshd = Sshd::start();
    let kh = sshd.known_hosts(true);
    let s = Server::start(
        config(0)
            .ssh_target(sshd.target("ssh1.example"))
            .known_hosts(&kh)
            .build(),
    )
    .await;
    let (j, n) = one(
        &s,
        "fixture::echo_json",
        json!({"message": "over ssh"}),
        "ssh1.example",
    )
    .await;
    assert_eq!(j["state"], "finished", "{n:#}");
    // Input both ways, as pxp-agent and Bolt give it: stdin JSON and PT_*.
    assert_eq!(n["result"]["stdin"]["message"], "over ssh", "{n:#}");
    assert_eq!(n["result"]["stdin"]["_task"], "fixture::echo_json", "{n:#}");
    assert_eq!(n["result"]["pt_message"], "over ssh", "{n:#}");
    let cache: Vec<PathBuf> = std::fs::read_dir(sshd.dir.path().join("tmp/kick-cache-0"))
        .expect("the node's task cache")
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(cache.len(), 1, "{cache:?}");
    let cached = std::fs::read_dir(&cache[0])
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let first = std::fs::metadata(&cached).unwrap();
    use std::os::unix::fs::MetadataExt;

    let (j, n) = one(
        &s,
        "fixture::echo_json",
        json!({"message": "again"}),
        "ssh1.example",
    )
    .await;
    assert_eq!(j["state"], "finished", "{n:#}");
    assert_eq!(n["result"]["stdin"]["message"], "again", "{n:#}");
    // PT_* values reach the task intact (they travel on stdin, never on a command line the
    // node's users could read with ps): quotes, $( ), a trailing newline, non-ASCII.
    let tricky = "it's $(id) `x` ü  end";
    let (_, n) = one(
        &s,
        "fixture::echo_json",
        json!({"message": tricky}),
        "ssh1.example",
    )
    .await;
    assert_eq!(n["result"]["stdin"]["message"], tricky, "{n:#}");
    assert_eq!(n["result"]["pt_message"], tricky, "{n:#}");
    // A trailing newline survives too (the fixture then prints invalid JSON, kept as _output).
    let (_, n) = one(
        &s,
        "fixture::echo_json",
        json!({"message": "line\n"}),
        "ssh1.example",
    )
    .await;
    let out = n["result"]["_output"].as_str().unwrap_or_default();
    assert!(out.contains("\"pt_message\": \"line\n\""), "{n:#}");
    let second = std::fs::metadata(&cached).unwrap();
    assert_eq!(
        first.ino(),
        second.ino(),
        "the cached task was not uploaded again"
    );
    assert_eq!(first.mtime_nsec(), second.mtime_nsec());
    // Per-run directories are gone.
    let left: Vec<_> = std::fs::read_dir(sshd.dir.path().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("kick-run-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    s.stop().await;
}

/// Kick hashes a task file as it sends it: bytes that are not the ones the
/// job started with never reach a node's cache nor run there.
#[tokio::test]
async fn a_task_file_changed_after_the_job_started_is_not_sent_to_the_node() {
    let sshd = Sshd::start();
    let kh = sshd.known_hosts(true);
    let (modules, script) = scratch_task(1);
    let s = Server::start(
        config(0)
            .ssh_target(sshd.target("ssh1.example"))
            .known_hosts(&kh)
            .modulepath(modules.path())
            .concurrency(1)
            .build(),
    )
    .await;
    // The only slot is taken, so the next job's node starts later.
    let busy = s
        .task("fixture::sleep", json!({"seconds": 1}), &["ssh1.example"])
        .await;
    let job = s.task("scratch::t", json!({}), &["ssh1.example"]).await;
    write_scratch(&script, 2);
    s.wait(&busy).await;
    let j = s.wait(&job).await;
    let n = &s.nodes(&job).await[0];
    assert_eq!(j["state"], "failed", "{n:#}");
    let e = &n["result"]["_error"];
    assert_eq!(e["kind"], "puppetlabs.tasks/task_file_error", "{n:#}");
    assert_eq!(e["issue_code"], "WRITE_ERROR", "{n:#}");
    let msg = e["msg"].as_str().unwrap_or_default();
    assert!(msg.contains("changed after the job started"), "{msg}");
    // Nothing of the new bytes is in the node's cache under the old sha256.
    let cache = sshd.dir.path().join("tmp/kick-cache-0");
    for dir in std::fs::read_dir(&cache).unwrap().flatten() {
        for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
            let body = std::fs::read_to_string(f.path()).unwrap_or_default();
            assert!(!body.contains("\"v\": 2"), "{}", f.path().display());
        }
    }
    // A new job takes the new file.
    let (j, n) = one(&s, "scratch::t", json!({}), "ssh1.example").await;
    assert_eq!(j["state"], "finished", "{n:#}");
    assert_eq!(n["result"], json!({"v": 2}));
    s.stop().await;
}

#[tokio::test]
async fn a_changed_host_key_fails_the_node_and_runs_nothing() {
    let sshd = Sshd::start();
    let kh = sshd.known_hosts(false);
    let s = Server::start(
        config(0)
            .ssh_target(sshd.target("ssh2.example"))
            .known_hosts(&kh)
            .build(),
    )
    .await;
    let (j, n) = one(
        &s,
        "fixture::echo_json",
        json!({"message": "x"}),
        "ssh2.example",
    )
    .await;
    assert_eq!(j["state"], "failed");
    let e = &n["result"]["_error"];
    assert_eq!(e["kind"], "puppetlabs.tasks/connect-error", "{n:#}");
    assert_eq!(e["issue_code"], "HOST_KEY_ERROR", "{n:#}");
    assert!(e["msg"].as_str().unwrap().contains("does not match"), "{e}");
    assert!(
        !sshd.dir.path().join("tmp/kick-cache-0").exists(),
        "nothing ran"
    );
    s.stop().await;
}

#[tokio::test]
async fn an_unknown_host_key_fails_unless_the_entry_turns_checking_off() {
    let sshd = Sshd::start();
    let mut checked = sshd.target("ssh3.example");
    checked.certname = "ssh3.example".into();
    let mut unchecked = sshd.target("ssh4.example");
    unchecked.host_key_check = false;
    let s = Server::start(config(0).ssh_target(checked).ssh_target(unchecked).build()).await;
    let (_, n) = one(
        &s,
        "fixture::echo_json",
        json!({"message": "x"}),
        "ssh3.example",
    )
    .await;
    assert_eq!(
        n["result"]["_error"]["issue_code"], "HOST_KEY_ERROR",
        "{n:#}"
    );
    assert!(
        n["result"]["_error"]["msg"]
            .as_str()
            .unwrap()
            .contains("is unknown")
    );
    let (j, n) = one(
        &s,
        "fixture::echo_json",
        json!({"message": "y"}),
        "ssh4.example",
    )
    .await;
    assert_eq!(j["state"], "finished", "{n:#}");
    s.stop().await;
}

#[tokio::test]
async fn a_wrong_key_is_an_auth_error_and_a_closed_port_a_connect_error() {
    let sshd = Sshd::start();
    let kh = sshd.known_hosts(true);
    let mut wrong = sshd.target("ssh5.example");
    keygen(&sshd.dir.path().join("stranger"));
    wrong.private_key = Some(SecretString::from(
        std::fs::read_to_string(sshd.dir.path().join("stranger")).unwrap(),
    ));
    let mut closed = sshd.target("ssh6.example");
    closed.port = 1;
    let s = Server::start(
        config(0)
            .ssh_target(wrong)
            .ssh_target(closed)
            .known_hosts(&kh)
            .build(),
    )
    .await;
    let (_, n) = one(
        &s,
        "fixture::echo_json",
        json!({"message": "x"}),
        "ssh5.example",
    )
    .await;
    assert_eq!(n["result"]["_error"]["issue_code"], "AUTH_ERROR", "{n:#}");
    let t0 = Instant::now();
    let (_, n) = one(
        &s,
        "fixture::echo_json",
        json!({"message": "x"}),
        "ssh6.example",
    )
    .await;
    assert_eq!(
        n["result"]["_error"]["issue_code"], "CONNECT_ERROR",
        "{n:#}"
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
    let text = n.to_string();
    assert!(!text.contains("PRIVATE KEY"), "no key material in results");
    s.stop().await;
}

fn read_pid(file: &Path) -> u32 {
    std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .trim()
        .parse()
        .unwrap()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

#[tokio::test]
async fn a_timeout_ends_the_tasks_whole_tree_on_the_node() {
    let sshd = Sshd::start();
    let kh = sshd.known_hosts(true);
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        config(0)
            .ssh_target(sshd.target("ssh7.example"))
            .known_hosts(&kh)
            .build(),
    )
    .await;
    let (st, b) = s
        .post(
            "/command/task",
            json!({"task": "fixture::grandchild", "params": {"dir": dir.path()}, "timeout": 2,
                   "scope": {"nodes": ["ssh7.example"]}}),
        )
        .await;
    assert_eq!(st, 202, "{b}");
    let job = b["job"]["name"].as_str().unwrap().to_owned();
    let j = s.wait(&job).await;
    assert_eq!(j["state"], "failed");
    let n = &s.nodes(&job).await[0];
    assert_eq!(n["result"]["_error"]["details"]["timeout"], 2, "{n:#}");
    assert_eq!(
        n["result"]["_error"]["details"]["remote"]["state"], "ended",
        "{n:#}"
    );
    let stopped = crate::common::stopped_pids(n);
    // NODE_NAME is not set over SSH: the fixture writes ".pid" files.
    for file in [".pid", ".detached.pid"] {
        let pid = read_pid(&dir.path().join(file));
        assert!(
            !alive(pid),
            "{file}: {pid} survived the timeout on the node"
        );
        assert!(
            stopped.contains(&pid.into()),
            "{file}: {pid} not listed: {n:#}"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn a_force_stop_ends_the_tasks_whole_tree_on_the_node() {
    let sshd = Sshd::start();
    let kh = sshd.known_hosts(true);
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        config(0)
            .ssh_target(sshd.target("ssh8.example"))
            .known_hosts(&kh)
            .build(),
    )
    .await;
    let job = s
        .task(
            "fixture::grandchild",
            json!({"dir": dir.path()}),
            &["ssh8.example"],
        )
        .await;
    let detached = dir.path().join(".detached.pid");
    let t0 = Instant::now();
    while !detached.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the task never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let pids = [read_pid(&dir.path().join(".pid")), read_pid(&detached)];
    assert!(pids.iter().all(|p| alive(*p)));
    let (st, _) = s
        .post("/command/stop", json!({"job": job, "force": true}))
        .await;
    assert_eq!(st, 202);
    let j = s.wait(&job).await;
    assert_eq!(j["state"], "stopped");
    let n = &s.nodes(&job).await[0];
    let stopped = crate::common::stopped_pids(n);
    for pid in pids {
        assert!(!alive(pid), "{pid} survived the force stop");
        assert!(stopped.contains(&pid.into()), "{pid} not listed: {n:#}");
    }
    s.stop().await;
}

/// The per-connection sshd processes below the listening sshd `master`.
fn session_processes(master: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let ppid: u32 = rest
            .split(' ')
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        if ppid == master {
            out.push(pid);
        }
    }
    out
}

#[tokio::test]
async fn a_connection_lost_mid_run_fails_the_node_and_kick_ends_the_task_on_reconnect() {
    let sshd = Sshd::start();
    let kh = sshd.known_hosts(true);
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        config(0)
            .ssh_target(sshd.target("ssh9.example"))
            .known_hosts(&kh)
            .build(),
    )
    .await;
    let job = s
        .task(
            "fixture::grandchild",
            json!({"dir": dir.path()}),
            &["ssh9.example"],
        )
        .await;
    let detached = dir.path().join(".detached.pid");
    let t0 = Instant::now();
    while !detached.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the task never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let pids = [read_pid(&dir.path().join(".pid")), read_pid(&detached)];
    // Cut the connection: SIGKILL the sshd serving it (not the listener).
    let sessions = session_processes(sshd.child.id());
    assert!(!sessions.is_empty());
    for p in sessions {
        let _ = Command::new("kill")
            .args(["-KILL", &p.to_string()])
            .status();
    }
    let j = s.wait(&job).await;
    assert_eq!(j["state"], "failed");
    let n = &s.nodes(&job).await[0];
    let e = &n["result"]["_error"];
    assert_eq!(e["kind"], "puppetlabs.tasks/connect-error", "{n:#}");
    assert_eq!(e["issue_code"], "CONNECTION_LOST", "{n:#}");
    assert_eq!(e["details"]["remote"]["state"], "ended", "{n:#}");
    for pid in pids {
        assert!(!alive(pid), "{pid} ran on after the connection was lost");
    }
    s.stop().await;
}

/// The service SIGKILLed mid-job leaves nothing running unseen: after its restart it connects
/// to the node again, ends the task's tree there and records it in the node's result.
#[tokio::test]
async fn a_service_killed_mid_job_ends_the_remote_run_after_its_restart() {
    use crate::common::{Binary, setup};
    let sshd = Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    let pids_dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &[]);
    std::fs::write(dir.path().join("key"), &sshd.key).unwrap();
    let t = sshd.target("ssh10.example");
    std::fs::write(
        dir.path().join("inventory.yaml"),
        format!(
            "version: 2\nconfig:\n  transport: ssh\n  ssh:\n    user: root\n    private-key: {key}\n    \
             tmpdir: {tmp}\n    host-key-check: true\ntargets:\n  - name: ssh10.example\n    uri: {addr}\n",
            key = dir.path().join("key").display(),
            tmp = t.tmpdir,
            addr = sshd.addr
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    std::fs::write(
        dir.path().join("state/known_hosts"),
        format!("{} {}", sshd.addr, sshd.host_pub),
    )
    .unwrap();
    let inventory_file = dir.path().join("inventory.yaml");
    let args = ["--inventory-file", inventory_file.to_str().unwrap()];
    let bin = Binary::start(dir.path(), &args);
    let (st, b) = bin
        .call(
            Some(
                json!({"task": "fixture::grandchild", "params": {"dir": pids_dir.path()},
                        "scope": {"nodes": ["ssh10.example"]}, "environment": "production"}),
            ),
            "/command/task",
        )
        .await;
    assert_eq!(st, 202, "{b}");
    let job = b["job"]["name"].as_str().unwrap().to_owned();
    let detached = pids_dir.path().join(".detached.pid");
    let t0 = Instant::now();
    while !detached.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the task never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let pids = [read_pid(&pids_dir.path().join(".pid")), read_pid(&detached)];
    bin.kill();
    // Killed, the service ended nothing: the task runs on, unseen.
    assert!(
        pids.iter().all(|p| alive(*p)),
        "still running after the kill"
    );

    let bin = Binary::start(dir.path(), &args);
    let deadline = Instant::now() + Duration::from_secs(30);
    let node = loop {
        let (_, nodes) = bin.call(None, &format!("/jobs/{job}/nodes")).await;
        let n = nodes["items"][0].clone();
        if n["result"]["_error"]["details"]["remote"].is_object() {
            break n;
        }
        assert!(
            Instant::now() < deadline,
            "no remote outcome recorded: {n:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(node["state"], "failed", "{node:#}");
    assert_eq!(
        node["result"]["_error"]["details"]["remote"]["state"], "ended",
        "{node:#}"
    );
    for pid in pids {
        assert!(!alive(pid), "{pid} still runs after the restart");
    }
    assert!(
        !dir.path()
            .join("state/remote-runs/")
            .read_dir()
            .unwrap()
            .any(|_| true),
        "the record is gone once handled"
    );
    bin.kill();
}

#[tokio::test]
async fn a_task_killed_by_a_signal_names_it_on_local_and_ssh_nodes() {
    let sshd = Sshd::start();
    let kh = sshd.known_hosts(true);
    let s = Server::start(
        config(1)
            .ssh_target(sshd.target("ssh11.example"))
            .known_hosts(&kh)
            .build(),
    )
    .await;
    for node in ["node-0000.example", "ssh11.example"] {
        let (j, n) = one(&s, "fixture::selfkill", json!({}), node).await;
        assert_eq!(j["state"], "failed", "{n:#}");
        let e = &n["result"]["_error"];
        assert_eq!(e["kind"], "puppetlabs.tasks/task-error", "{node}: {n:#}");
        assert_eq!(e["details"]["signal_name"], "SIGTERM", "{node}: {n:#}");
        assert!(
            e["msg"].as_str().unwrap_or_default().contains("SIGTERM"),
            "{node}: {n:#}"
        );
    }
    s.stop().await;
}
