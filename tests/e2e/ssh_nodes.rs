//! kick → Kick's orchestrator → SSH → real nodes of the fleet (sshd in their own namespaces,
//! their own /etc/puppet, users and sudo) → the real psick::puppet_agent → the real
//! puppetserver. Each node's login user is `kick`; the task runs as root through sudo.
//! Tests that run puppet on a node hold its lock exclusively (one puppet run at a time).

use std::time::{Duration, Instant};

use kick_e2e::ssh_nodes::SshNodes;
use kick_e2e::{Fleet, FleetNode, NodeLock, Stack};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::kick_cli::kick;

const TOKEN: &str = "e2e-ssh-token";

fn fleet() -> Option<(Stack, Fleet)> {
    let stack = Stack::from_env()?;
    let fleet = Fleet::from_env()?;
    Some((stack, fleet))
}

/// Every node's lock, exclusive, taken in fleet order (no two tests deadlock).
fn lock_all(fleet: &Fleet) -> Vec<NodeLock> {
    fleet
        .nodes()
        .iter()
        .map(FleetNode::lock_exclusive)
        .collect()
}

fn token_file(dir: &std::path::Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("token");
    std::fs::write(&path, TOKEN).expect("token file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path.display().to_string()
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    fn new(base: &str) -> Api {
        Api {
            base: base.to_owned(),
            http: reqwest::Client::new(),
        }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}/orchestrator/v1{path}", self.base))
            .header("X-Authentication", TOKEN)
            .json(&body)
            .send()
            .await
            .expect("POST");
        let status = r.status();
        let b: Value = r.json().await.expect("JSON answer");
        assert_eq!(status.as_u16(), 202, "{path}: {b}");
        b
    }

    async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}/orchestrator/v1{path}", self.base))
            .header("X-Authentication", TOKEN)
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("JSON answer")
    }

    async fn wait(&self, name: &str, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let j = self.get(&format!("/jobs/{name}")).await;
            if matches!(j["state"].as_str(), Some("finished" | "failed" | "stopped")) {
                return j;
            }
            assert!(tokio::time::Instant::now() < deadline, "job {name}: {j}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs `task` on `nodes` to its end; the node items.
    async fn run(&self, body: Value) -> (Value, Vec<Value>) {
        let created = self.post("/command/task", body).await;
        let name = created["job"]["name"].as_str().expect("name").to_owned();
        let job = self.wait(&name, Duration::from_secs(300)).await;
        let nodes = self.get(&format!("/jobs/{name}/nodes")).await["items"]
            .as_array()
            .expect("items")
            .clone();
        (job, nodes)
    }
}

fn outcomes(doc: &Value) -> Vec<String> {
    doc["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["outcome"].as_str().unwrap_or("?").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kick_agent_on_three_ssh_nodes_noop_enforce_then_converged() {
    let Some((_stack, fleet)) = fleet() else {
        return;
    };
    let _locks = lock_all(&fleet);
    // Each node starts unconverged: its idem file removed (in its own /tmp).
    for n in fleet.nodes() {
        let _ = std::fs::remove_dir_all(n.host_path(&n.managed_dir()));
    }
    let nodes = SshNodes::start(&fleet, TOKEN, |_, _| {}).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let token = token_file(dir.path());
    let names = nodes.certnames.join(",");
    let run = |extra: &'static [&'static str]| {
        let mut v: Vec<String> = vec!["agent".into(), "--nodes".into(), names.clone()];
        v.extend(extra.iter().map(|s| (*s).to_owned()));
        v.extend(
            [
                "-e",
                "idem",
                "--format",
                "json",
                "--service-url",
                &nodes.url,
                "--token-file",
                &token,
            ]
            .map(str::to_owned),
        );
        async move {
            let refs: Vec<&str> = v.iter().map(String::as_str).collect();
            kick(&refs).await
        }
    };
    let (code, doc, err) = run(&["--noop"]).await;
    assert_eq!(code, 2, "{doc:#}\n{err}");
    assert_eq!(outcomes(&doc), ["changed"; 3], "{doc:#}");
    for n in doc["nodes"].as_array().expect("nodes") {
        assert!(
            n["resources"]["noop_pending"].as_u64().unwrap_or(0) > 0,
            "{n:#}"
        );
        assert_eq!(n["resources"]["changed"], 0, "{n:#}");
    }
    for n in fleet.nodes() {
        let file = n.host_path(&format!("{}/idem.txt", n.managed_dir()));
        assert!(!file.exists(), "noop changed nothing on {}", n.certname);
    }

    let (code, doc, err) = run(&["--no-noop"]).await;
    assert_eq!(code, 2, "{doc:#}\n{err}");
    assert_eq!(outcomes(&doc), ["changed"; 3], "{doc:#}");
    for n in fleet.nodes() {
        // Written by each node's own agent, with its own certname, in its own /tmp.
        let file = n.host_path(&format!("{}/idem.txt", n.managed_dir()));
        let text = std::fs::read_to_string(&file).expect("the enforced file");
        assert!(text.contains(&n.certname), "{text}");
        assert!(
            !std::path::Path::new(&format!("/tmp/kick-e2e/{}", n.certname)).exists(),
            "the host's /tmp is untouched"
        );
    }

    let (code, doc, err) = run(&["--no-noop"]).await;
    assert_eq!(code, 0, "{doc:#}\n{err}");
    assert_eq!(outcomes(&doc), ["unchanged"; 3], "{doc:#}");
    for n in fleet.nodes() {
        let left = n.wait_no_processes_besides_sshd(Duration::from_secs(10));
        assert!(left.is_empty(), "{}: left {left:?}", n.certname);
    }
    nodes.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_job_uploads_no_task_bytes() {
    let Some((_stack, fleet)) = fleet() else {
        return;
    };
    let node = &fleet.nodes()[0];
    let _lock = node.lock_exclusive();
    let nodes = SshNodes::start(&fleet, TOKEN, |_, _| {}).await;
    let api = Api::new(&nodes.url);
    let body = json!({"task": "psick::puppet_agent", "environment": "production",
        "params": {"environment": "idem", "noop": true}, "scope": {"nodes": [node.certname]}});
    let (job, items) = api.run(body.clone()).await;
    assert_eq!(job["state"], "finished", "{items:#?}");
    // The task's files sit in root's cache on the node, each keyed by its sha256: the entry
    // and both architectures' binaries (the metadata's `files`).
    let root = kick_e2e::workspace_root();
    let cached: Vec<_> = [
        (kick_e2e::task_entry(), "puppet_agent"),
        (root.join("files/x86_64/psick-task"), "psick-task"),
        (root.join("files/aarch64/psick-task"), "psick-task"),
    ]
    .into_iter()
    .map(|(file, name)| {
        let sha = kick_e2e::sha256_file(&file);
        node.host_path(&format!("/tmp/kick-cache-0/{sha}/{name}"))
    })
    .collect();
    let stat = |p: &std::path::Path| {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(p).unwrap_or_else(|e| panic!("{} on the node: {e}", p.display()));
        (m.ino(), m.mtime_nsec())
    };
    let first: Vec<_> = cached.iter().map(|p| stat(p)).collect();
    let (job, items) = api.run(body).await;
    assert_eq!(job["state"], "finished", "{items:#?}");
    let second: Vec<_> = cached.iter().map(|p| stat(p)).collect();
    assert_eq!(
        first, second,
        "the second job uploaded the task's files again"
    );
    nodes.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_as_with_a_wrong_or_missing_sudo_password_is_an_escalate_error() {
    let Some((_stack, fleet)) = fleet() else {
        return;
    };
    let (a, b) = (&fleet.nodes()[0], &fleet.nodes()[1]);
    let (_la, _lb) = (a.lock_shared(), b.lock_shared());
    let (an, bn) = (a.certname.clone(), b.certname.clone());
    let nodes = SshNodes::start(&fleet, TOKEN, move |n, t| {
        if n.certname == an {
            t.sudo_password = Some(SecretString::from("not-the-password"));
        } else if n.certname == bn {
            t.sudo_password = None;
        }
    })
    .await;
    let api = Api::new(&nodes.url);
    let t0 = Instant::now();
    let (job, items) = api
        .run(
            json!({"task": "psick::puppet_agent", "environment": "production",
            "params": {"environment": "idem", "noop": true},
            "scope": {"nodes": [a.certname, b.certname]}}),
        )
        .await;
    assert_eq!(job["state"], "failed");
    assert!(t0.elapsed() < Duration::from_secs(30), "never a hang");
    let by = |name: &str| {
        items
            .iter()
            .find(|n| n["name"] == name)
            .expect("node")
            .clone()
    };
    let wrong = by(&a.certname);
    assert_eq!(
        wrong["result"]["_error"]["kind"], "puppetlabs.tasks/escalate-error",
        "{wrong:#}"
    );
    assert_eq!(
        wrong["result"]["_error"]["issue_code"], "BAD_PASSWORD",
        "{wrong:#}"
    );
    let missing = by(&b.certname);
    assert_eq!(
        missing["result"]["_error"]["issue_code"], "NO_PASSWORD",
        "{missing:#}"
    );
    assert!(
        !wrong.to_string().contains("not-the-password"),
        "no secret in results"
    );
    nodes.stop().await;
}

async fn start_slow(api: &Api, node: &FleetNode, timeout: Option<u64>) -> String {
    let mut body = json!({"task": "psick::puppet_agent", "environment": "production",
        "params": {"environment": "slow", "noop": false}, "scope": {"nodes": [node.certname]}});
    if let Some(t) = timeout {
        body["timeout"] = json!(t);
    }
    let created = api.post("/command/task", body).await;
    created["job"]["name"].as_str().expect("name").to_owned()
}

/// The per-run directories (`kick-run-*`) left in the node's /tmp.
fn run_dirs(node: &FleetNode) -> Vec<String> {
    std::fs::read_dir(node.host_path("/tmp"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("kick-run-"))
                .collect()
        })
        .unwrap_or_default()
}

/// The exec of the `slow` environment, as the node's /tmp records its PID (node's view).
fn wait_exec(node: &FleetNode, within: Duration) -> u32 {
    let file = node.host_path(&format!("/tmp/kick-exec-pids/{}.pid", node.certname));
    let deadline = Instant::now() + within;
    loop {
        if let Some(pid) = std::fs::read_to_string(&file)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            && node.host_pid_of(pid).is_some()
        {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "the slow exec never started on {}",
            node.certname
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_force_stop_leaves_nothing_of_the_run_on_the_node() {
    let Some((_stack, fleet)) = fleet() else {
        return;
    };
    let node = &fleet.nodes()[1];
    let _lock = node.lock_exclusive();
    let _ =
        std::fs::remove_file(node.host_path(&format!("/tmp/kick-exec-pids/{}.pid", node.certname)));
    let dirs_before = run_dirs(node);
    let nodes = SshNodes::start(&fleet, TOKEN, |_, _| {}).await;
    let api = Api::new(&nodes.url);
    let name = start_slow(&api, node, None).await;
    let exec = tokio::task::block_in_place(|| wait_exec(node, Duration::from_secs(120)));
    api.post("/command/stop", json!({"job": name, "force": true}))
        .await;
    let job = api.wait(&name, Duration::from_secs(60)).await;
    assert_eq!(job["state"], "stopped", "{job:#}");
    assert_eq!(
        node.host_pid_of(exec),
        None,
        "the exec survived the force stop"
    );
    let left = node.wait_no_processes_besides_sshd(Duration::from_secs(10));
    assert!(left.is_empty(), "left on the node: {left:?}");
    let new_dirs: Vec<String> = run_dirs(node)
        .into_iter()
        .filter(|d| !dirs_before.contains(d))
        .collect();
    assert_eq!(new_dirs, Vec::<String>::new(), "the run dir is removed");
    nodes.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_leaves_nothing_of_the_run_on_the_node() {
    let Some((_stack, fleet)) = fleet() else {
        return;
    };
    let node = &fleet.nodes()[2];
    let _lock = node.lock_exclusive();
    let _ =
        std::fs::remove_file(node.host_path(&format!("/tmp/kick-exec-pids/{}.pid", node.certname)));
    let dirs_before = run_dirs(node);
    let nodes = SshNodes::start(&fleet, TOKEN, |_, _| {}).await;
    let api = Api::new(&nodes.url);
    // `slow` sleeps 20 s in an exec; 15 s leaves margin for the catalog under load, as the
    // task's own timeout test does.
    let name = start_slow(&api, node, Some(15)).await;
    // The timeout's effect is checked on the exec, so it must have started first (else a
    // timeout during the catalog run would pass without proving the exec is stopped).
    let exec = tokio::task::block_in_place(|| wait_exec(node, Duration::from_secs(20)));
    let job = api.wait(&name, Duration::from_secs(120)).await;
    assert_eq!(job["state"], "failed", "{job:#}");
    let items = api.get(&format!("/jobs/{name}/nodes")).await;
    let r = &items["items"][0]["result"];
    assert_eq!(r["_error"]["kind"], "psick/timeout", "{r:#}");
    assert_eq!(
        node.host_pid_of(exec),
        None,
        "the exec survived the timeout: {r:#}"
    );
    let left = node.wait_no_processes_besides_sshd(Duration::from_secs(10));
    assert!(left.is_empty(), "left on the node: {left:?}");
    let new_dirs: Vec<String> = run_dirs(node)
        .into_iter()
        .filter(|d| !dirs_before.contains(d))
        .collect();
    assert_eq!(new_dirs, Vec::<String>::new(), "the run dir is removed");
    nodes.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_refused_and_unknown_nodes_fail_with_connect_errors() {
    let Some((_stack, fleet)) = fleet() else {
        return;
    };
    let nodes_ = fleet.nodes();
    let (down, wrong_key, rotated) = (&nodes_[0], &nodes_[1], &nodes_[2]);
    let _locks = lock_all(&fleet);
    let wrong = wrong_key.certname.clone();
    let wrong_path = wrong_key.wrong_key.clone();
    let nodes = SshNodes::start(&fleet, TOKEN, move |n, t| {
        if n.certname == wrong {
            t.private_key = Some(SecretString::from(
                std::fs::read_to_string(&wrong_path).expect("wrong key"),
            ));
        }
        t.connect_timeout = Duration::from_secs(5);
    })
    .await;
    let api = Api::new(&nodes.url);
    let stopped = down.stop_sshd();
    let rotation = rotated.rotate_host_key();
    let t0 = Instant::now();
    let (job, items) = api
        .run(
            json!({"task": "psick::puppet_agent", "environment": "production",
            "params": {"environment": "idem", "noop": true},
            "scope": {"nodes": [down.certname, wrong_key.certname, rotated.certname]}}),
        )
        .await;
    assert_eq!(job["state"], "failed");
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    let by = |name: &str| {
        items
            .iter()
            .find(|n| n["name"] == name)
            .expect("node")
            .clone()
    };
    let code = |n: &Value| {
        n["result"]["_error"]["issue_code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(code(&by(&down.certname)), "CONNECT_ERROR", "{items:#?}");
    assert_eq!(code(&by(&wrong_key.certname)), "AUTH_ERROR", "{items:#?}");
    assert_eq!(code(&by(&rotated.certname)), "HOST_KEY_ERROR", "{items:#?}");
    for n in &items {
        assert_eq!(
            n["result"]["_error"]["kind"], "puppetlabs.tasks/connect-error",
            "{n:#}"
        );
    }
    drop(rotation);
    stopped.start();
    nodes.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_noexec_tmpdir_is_named_and_another_tmpdir_works() {
    let Some((_stack, fleet)) = fleet() else {
        return;
    };
    let node = &fleet.nodes()[0];
    let _lock = node.lock_exclusive();
    node.set_tmp_noexec(true);
    struct Exec<'a>(&'a FleetNode);
    impl Drop for Exec<'_> {
        fn drop(&mut self) {
            self.0.set_tmp_noexec(false);
        }
    }
    let _restore = Exec(node);
    let nodes = SshNodes::start(&fleet, TOKEN, |_, _| {}).await;
    let api = Api::new(&nodes.url);
    let body = json!({"task": "psick::puppet_agent", "environment": "production",
        "params": {"environment": "idem", "noop": true}, "scope": {"nodes": [node.certname]}});
    let (job, items) = api.run(body.clone()).await;
    assert_eq!(job["state"], "failed");
    let e = &items[0]["result"]["_error"];
    assert_eq!(e["kind"], "puppetlabs.tasks/task_file_error", "{e:#}");
    assert_eq!(e["issue_code"], "TMPDIR_ERROR", "{e:#}");
    assert!(e["msg"].as_str().unwrap_or("").contains("noexec"), "{e:#}");
    nodes.stop().await;

    let cert = node.certname.clone();
    let nodes = SshNodes::start(&fleet, TOKEN, move |n, t| {
        if n.certname == cert {
            // root's home on the node is its own (bind-mounted), and exec.
            t.tmpdir = "/root".into();
        }
    })
    .await;
    let api = Api::new(&nodes.url);
    let (job, items) = api.run(body).await;
    assert_eq!(job["state"], "finished", "{items:#?}");
    nodes.stop().await;
}

/// A small team needs no server: `kick agent --inventory inventory.yaml` runs the orchestrator
/// inside kick for the Bolt inventory's SSH nodes, with its history kept under
/// $XDG_STATE_HOME, so a later `kick job list` shows the run.
#[test]
fn kick_with_a_bolt_inventory_runs_the_orchestrator_in_process() {
    let Some((_stack, fleet)) = fleet() else {
        return;
    };
    let nodes: Vec<&FleetNode> = fleet.nodes().iter().take(2).collect();
    let _locks: Vec<NodeLock> = nodes.iter().map(|n| n.lock_exclusive()).collect();
    let home = tempfile::tempdir().expect("tempdir");
    let state = home.path().join("state");
    let orch = state.join("kick/orchestrator");
    std::fs::create_dir_all(&orch).expect("state dir");
    std::fs::copy(fleet.known_hosts(), orch.join("known_hosts")).expect("known_hosts");
    let mut inv = format!(
        "version: 2\nconfig:\n  transport: ssh\n  ssh:\n    user: kick\n    private-key: {}\n    \
         run-as: root\n    sudo-password: \"{}\"\n    host-key-check: true\ntargets:\n",
        nodes[0].private_key.display(),
        nodes[0].sudo_password
    );
    for n in &nodes {
        inv.push_str(&format!(
            "  - name: {}\n    uri: {}\n",
            n.certname, n.address
        ));
    }
    let inv_path = home.path().join("inventory.yaml");
    std::fs::write(&inv_path, inv).expect("inventory");
    let modulepath = kick_e2e::repo_modulepath();
    let exe = std::env::current_exe().expect("exe");
    let kick_bin = exe.ancestors().nth(2).expect("target/debug").join("kick");
    let kick = |args: &[&str]| {
        std::process::Command::new(&kick_bin)
            .args(args)
            .env("XDG_STATE_HOME", &state)
            .env("HOME", home.path())
            .env_remove("KICK_SERVICE_URL")
            .output()
            .expect("run kick")
    };
    let names = nodes
        .iter()
        .map(|n| n.certname.as_str())
        .collect::<Vec<_>>()
        .join(",");
    let out = kick(&[
        "agent",
        "--inventory",
        inv_path.to_str().expect("utf-8"),
        "--modulepath",
        modulepath.path().to_str().expect("utf-8"),
        "--nodes",
        &names,
        "--noop",
        "-e",
        "idem",
        "--format",
        "json",
    ]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "kick's JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let code = out.status.code();
    assert!(matches!(code, Some(0 | 2)), "{code:?}\n{doc:#}");
    for n in doc["nodes"].as_array().expect("nodes") {
        assert!(
            matches!(n["outcome"].as_str(), Some("changed" | "unchanged")),
            "{n:#}"
        );
    }
    assert_eq!(doc["job"]["noop"], true, "{doc:#}");
    // The history survives kick's exit: a new kick (a new in-process service) lists the job.
    let out = kick(&[
        "job",
        "list",
        "--inventory",
        inv_path.to_str().expect("utf-8"),
        "--format",
        "json",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("psick::puppet_agent"), "{text}");
    assert!(
        !text.contains(&nodes[0].sudo_password),
        "no secret in the output"
    );
}

/// A node whose agent is mid-run (its own daemon's run, say): the task waits for the lock as
/// long as asked, then fails `psick/agent-locked`, naming the holder, and the held run goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_agent_on_an_ssh_node_is_reported_as_locked() {
    let Some((_stack, fleet)) = fleet() else {
        return;
    };
    let node = &fleet.nodes()[2];
    let _lock = node.lock_exclusive();
    // A run of the node's own, started inside the node, holding the catalog-run lock ~20 s.
    let mut holder = node
        .in_node("puppet")
        .args([
            "agent",
            "--onetime",
            "--no-daemonize",
            "--environment",
            "slow",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("puppet agent in the node");
    let lockfile = node.lockfile();
    let t0 = Instant::now();
    while !lockfile.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "the node's run never took the lock"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let nodes = SshNodes::start(&fleet, TOKEN, |_, _| {}).await;
    let api = Api::new(&nodes.url);
    let (job, items) = api
        .run(
            json!({"task": "psick::puppet_agent", "environment": "production",
            "params": {"environment": "idem", "noop": true, "wait_for_lock": 2},
            "scope": {"nodes": [node.certname]}}),
        )
        .await;
    assert_eq!(job["state"], "failed", "{items:#?}");
    let e = &items[0]["result"]["_error"];
    assert_eq!(e["kind"], "psick/agent-locked", "{e:#}");
    assert!(e["details"]["pid"].is_u64(), "the holder is named: {e:#}");
    assert!(lockfile.exists(), "the node's own run goes on");
    let st = tokio::task::block_in_place(|| holder.wait()).expect("wait");
    assert!(st.code().is_some(), "{st:?}");
    nodes.stop().await;
}
