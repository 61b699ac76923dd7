//! The binary as pxp-agent's external module (`metadata`, `run`) and its
//! command-line handling, against fake puppets.

use std::fs;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{FakeHolder, Node};

/// A real report's head, Ruby tags included.
const REPORT: &str = "--- !ruby/object:Puppet::Transaction::Report
host: fake
time: '2026-12-01T09:20:11.348751402+00:00'
configuration_version: 1795460334
transaction_uuid: 5a5c2a0e-7d0b-4a3c-9c55-2f1e0d7c6b11
puppet_version: 7.23.0
status: changed
environment: staging
metrics:
  resources: !ruby/object:Puppet::Util::Metric
    name: resources
    label: Resources
    values:
    - - total
      - Total
      - 9
    - - changed
      - Changed
      - 2
";

struct Module {
    code: i32,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Module {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {:?}", self.stdout))
    }
}

fn module(node: &Node, args: &[&str], stdin: &str) -> Module {
    let mut cmd = node.command();
    cmd.args(args).stdin(Stdio::piped());
    let start = Instant::now();
    let child = node.spawn(cmd, stdin);
    let out = child.wait_with_output().unwrap();
    Module {
        code: out.status.code().expect("exited"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: start.elapsed(),
    }
}

/// A fake puppet that prints a line and writes the report like puppet does.
fn reporting_node(exit: i32) -> Node {
    let node = Node::new("");
    let src = node.path("report.src");
    fs::write(&src, REPORT).unwrap();
    let dst = node.path("var/state/last_run_report.yaml");
    node.set_fake(&format!(
        "echo 'Notice: Applied catalog'\ncp '{}' '{d}.tmp' && mv '{d}.tmp' '{d}'\nexit {exit}",
        src.display(),
        d = dst.display()
    ));
    node
}

fn request(flags: &[&str]) -> String {
    json!({"input": {"flags": flags, "env": [], "job": "42"}}).to_string()
}

#[test]
fn help_and_unknown_arguments_print_usage_exit_2_and_never_run_puppet() {
    let node = Node::new("exit 0");
    for args in [
        &["--help"][..],
        &["-h"],
        &["--noop"],
        &["run", "extra"],
        &["agent"],
    ] {
        // The usage never reads stdin, so none is written.
        let m = module(&node, args, "");
        assert_eq!(m.code, 2, "{args:?}");
        assert!(m.stdout.is_empty(), "{args:?}: {}", m.stdout);
        assert!(m.stderr.contains("usage: psick-task"), "{}", m.stderr);
        assert_eq!(node.argv(), None, "{args:?} started puppet");
    }
}

#[test]
fn metadata_is_pxp_module_puppets_shape() {
    let node = Node::new("exit 0");
    let m = module(&node, &["metadata"], "");
    assert_eq!(m.code, 0);
    let v = m.json();
    assert!(v["description"].is_string());
    assert_eq!(v["actions"][0]["name"], "run");
    let required = &v["actions"][0]["results"]["required"];
    assert_eq!(
        *required,
        json!([
            "time",
            "transaction_uuid",
            "environment",
            "status",
            "exitcode",
            "version"
        ])
    );
    assert_eq!(node.argv(), None);
}

#[test]
fn run_reports_the_report_fields_and_puppets_output_goes_to_stderr() {
    let node = reporting_node(0);
    let m = module(
        &node,
        &["run"],
        &request(&["--noop", "--environment", "staging"]),
    );
    assert_eq!(m.code, 0, "{} {}", m.stdout, m.stderr);
    assert!(
        !m.stdout.ends_with('\n'),
        "no trailing newline, like pxp-module-puppet"
    );
    let v = m.json();
    assert_eq!(v["status"], "changed");
    assert_eq!(v["environment"], "staging");
    assert_eq!(
        v["transaction_uuid"],
        "5a5c2a0e-7d0b-4a3c-9c55-2f1e0d7c6b11"
    );
    assert_eq!(v["time"], "2026-12-01T09:20:11.348751402+00:00");
    assert_eq!(v["metrics"], json!({"total": 9, "changed": 2}));
    assert_eq!(v["exitcode"], 0);
    assert_eq!(v["version"], 1);
    assert!(
        v.get("error").is_none() && v.get("error_type").is_none(),
        "{v}"
    );
    assert!(m.stderr.contains("Notice: Applied catalog"), "{}", m.stderr);
    let argv = node.argv().unwrap();
    assert_eq!(
        argv[..],
        [
            "agent",
            &format!("--confdir={}", node.conf.display()),
            "--noop",
            "--environment",
            "staging",
            "--onetime",
            "--no-daemonize",
            "--verbose",
            "--job-id",
            "42"
        ]
    );
}

#[test]
fn non_blocking_run_writes_stdout_stderr_then_exitcode() {
    let node = reporting_node(0);
    let spool = node.path("spool");
    fs::create_dir_all(&spool).unwrap();
    let req = json!({"input": {"flags": []}, "configuration": {"puppet_bin": node.bin},
                     "output_files": {"stdout": spool.join("stdout"), "stderr": spool.join("stderr"),
                                      "exitcode": spool.join("exitcode")}});
    let m = module(&node, &["run"], &req.to_string());
    assert_eq!(m.code, 0, "{}", m.stderr);
    assert!(m.stdout.is_empty(), "results go to the file: {}", m.stdout);
    let out: Value =
        serde_json::from_str(&fs::read_to_string(spool.join("stdout")).unwrap()).unwrap();
    assert_eq!(out["status"], "changed");
    assert!(
        fs::read_to_string(spool.join("stderr"))
            .unwrap()
            .contains("Applied catalog")
    );
    assert_eq!(fs::read_to_string(spool.join("exitcode")).unwrap(), "0\n");
}

#[test]
fn output_files_that_cannot_be_opened_exit_5() {
    let node = reporting_node(0);
    let req = json!({"input": {"flags": []}, "output_files": {
        "stdout": "/nonexistent/dir/stdout", "stderr": "/nonexistent/dir/stderr",
        "exitcode": "/nonexistent/dir/exitcode"}});
    let m = module(&node, &["run"], &req.to_string());
    assert_eq!(m.code, 5);
    assert_eq!(m.json()["error_type"], "invalid_json");
    assert_eq!(node.argv(), None);
}

#[test]
fn a_non_zero_exit_is_agent_exit_non_zero_with_the_report() {
    let node = reporting_node(1);
    let m = module(&node, &["run"], &request(&[]));
    assert_eq!(m.code, 1);
    let v = m.json();
    assert_eq!(v["error_type"], "agent_exit_non_zero");
    assert_eq!(v["error"], "Puppet agent exited with a non 0 exitcode");
    assert_eq!(v["exitcode"], 1);
    assert_eq!(v["status"], "changed");
}

#[test]
fn report_problems_have_their_own_error_types() {
    let node = Node::new("exit 0");
    let v = module(&node, &["run"], &request(&[])).json();
    assert_eq!(v["error_type"], "no_last_run_report", "{v}");
    assert!(v["error"].as_str().unwrap().contains("doesn't exist"));
    // A report from an earlier run is not this run's.
    fs::write(node.path("var/state/last_run_report.yaml"), REPORT).unwrap();
    let v = module(&node, &["run"], &request(&[])).json();
    assert_eq!(v["error_type"], "no_last_run_report");
    assert_eq!(v["error"], "The Puppet run failed in an unexpected way");
    assert_eq!(v["exitcode"], 0);
    let node = Node::new("");
    node.set_fake(&format!(
        "echo '{{unclosed' > '{}'",
        node.path("var/state/last_run_report.yaml").display()
    ));
    let v = module(&node, &["run"], &request(&[])).json();
    assert_eq!(v["error_type"], "invalid_last_run_report", "{v}");
}

#[test]
fn disabled_and_locked_agents() {
    let node = reporting_node(0);
    fs::write(node.disabled_lock(), r#"{"disabled_message":"maint"}"#).unwrap();
    let m = module(&node, &["run"], &request(&[]));
    assert_eq!(m.code, 1);
    let v = m.json();
    assert_eq!(v["error_type"], "agent_disabled");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("Puppet agent is disabled"),
        "{v}"
    );
    assert_eq!(v["exitcode"], -1);
    assert_eq!(node.argv(), None);
    fs::remove_file(node.disabled_lock()).unwrap();

    let holder = FakeHolder::start(node.dir.path(), "60");
    fs::write(node.catalog_lock(), holder.pid().to_string()).unwrap();
    let req = json!({"input": {"flags": []}, "configuration": {"wait_for_lock": 1}});
    let m = module(&node, &["run"], &req.to_string());
    let v = m.json();
    assert_eq!(v["error_type"], "agent_locked", "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("Puppet agent run is already in progress")
    );
    assert!(m.elapsed >= Duration::from_secs(1));
    assert_eq!(node.argv(), None);
}

#[test]
fn puppet_saying_disabled_or_locked_is_reported_as_such() {
    let node = Node::new(
        "echo \"Notice: Skipping run of Puppet configuration client; administratively disabled (Reason: 'x');\"; exit 1",
    );
    let v = module(&node, &["run"], &request(&[])).json();
    assert_eq!(v["error_type"], "agent_disabled", "{v}");
    assert_eq!(v["exitcode"], 1);
    let node = Node::new(
        "echo 'Notice: Run of Puppet configuration client already in progress; skipping'; exit 1",
    );
    let req = json!({"input": {"flags": []}, "configuration": {"wait_for_lock": 0}});
    let v = module(&node, &["run"], &req.to_string()).json();
    assert_eq!(v["error_type"], "agent_locked", "{v}");
}

#[test]
fn bad_requests_are_invalid_json_and_never_run_puppet() {
    let node = reporting_node(0);
    let bad = [
        "not json".to_owned(),
        "[1]".to_owned(),
        json!({"input": 5}).to_string(),
        request(&["--server_list", "evil"]),
        request(&["--logdest", "/tmp/x"]),
        request(&["--environment=production"]),
        request(&["-l", "syslog"]),
        request(&["--daemonize"]),
        json!({"input": {"flags": []}, "configuration": {"timeout": 0}}).to_string(),
    ];
    for stdin in &bad {
        let m = module(&node, &["run"], stdin);
        assert_eq!(m.code, 1, "{stdin}");
        let v = m.json();
        assert_eq!(v["error_type"], "invalid_json", "{stdin}: {v}");
        assert_eq!(v["exitcode"], -1);
        for key in ["time", "transaction_uuid", "environment", "status"] {
            assert_eq!(v[key], "unknown", "{stdin}");
        }
        assert_eq!(node.argv(), None, "{stdin}");
    }
}

#[test]
fn a_missing_configured_puppet_bin_is_no_puppet_bin() {
    let node = reporting_node(0);
    let req =
        json!({"input": {"flags": []}, "configuration": {"puppet_bin": "/nonexistent/puppet"}});
    let v = module(&node, &["run"], &req.to_string()).json();
    assert_eq!(v["error_type"], "no_puppet_bin");
    assert_eq!(
        v["error"],
        "Puppet executable '/nonexistent/puppet' does not exist"
    );
}

#[test]
fn server_flags_are_accepted_and_pin_a_configured_server_list() {
    let node = reporting_node(0);
    let conf = node.conf.join("puppet.conf");
    let text = fs::read_to_string(&conf).unwrap();
    fs::write(&conf, format!("{text}[agent]\nserver_list = other:8140\n")).unwrap();
    let m = module(
        &node,
        &["run"],
        &request(&["--server", "pm.example.com", "--serverport", "8141"]),
    );
    assert_eq!(m.code, 0, "{}", m.stdout);
    let argv = node.argv().unwrap();
    assert!(
        argv.contains(&"--server_list=pm.example.com:8141".to_owned()),
        "{argv:?}"
    );
    let at = argv.iter().position(|a| a == "--server").unwrap();
    assert_eq!(argv[at + 1], "pm.example.com");
}

#[test]
fn the_configured_timeout_stops_the_run() {
    let node = Node::new("sleep 30 & wait");
    let mut cmd_env = node.command();
    cmd_env.env("PSICK_KILL_GRACE", "1");
    let req = json!({"input": {"flags": []}, "configuration": {"timeout": 1}});
    let start = Instant::now();
    let mut cmd = cmd_env;
    cmd.arg("run").stdin(Stdio::piped());
    let out = node
        .spawn(cmd, &req.to_string())
        .wait_with_output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(v["error_type"], "agent_exit_non_zero", "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("timeout of 1s"),
        "{v}"
    );
    assert_eq!(v["exitcode"], -1);
    assert!(start.elapsed() < Duration::from_secs(8));
    // Ruby's fields stay as they are; what the stop ended is an added one.
    let stopped = v["stopped"].as_array().expect("stopped is listed");
    let commands: Vec<&str> = stopped
        .iter()
        .map(|p| p["command"].as_str().unwrap())
        .collect();
    assert!(
        commands.iter().any(|c| c.contains("fake-puppet")),
        "puppet is listed: {commands:?}"
    );
    assert!(commands.contains(&"sleep 30"), "{commands:?}");
    assert!(stopped.iter().all(|p| p["pid"].is_u64()), "{v}");
}

#[test]
fn the_configured_timeout_ends_a_daemon_the_run_started_and_lists_it() {
    let (node, daemon) = Node::daemonizing();
    let mut cmd = node.command();
    cmd.env("PSICK_KILL_GRACE", "5");
    cmd.arg("run").stdin(Stdio::piped());
    let req = json!({"input": {"flags": []}, "configuration": {"timeout": 3}});
    let out = node
        .spawn(cmd, &req.to_string())
        .wait_with_output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    // The stop came after its intermediate parent was gone.
    assert!(daemon.orphaned.exists(), "{v}");
    if crate::harness::emulated() {
        // qemu-user has no PR_SET_CHILD_SUBREAPER: the stopped run says a
        // process may be left (the daemon's guard ends it).
        crate::harness::assert_says_no_subreaper(&String::from_utf8_lossy(&out.stderr));
        return;
    }
    let pid = daemon.pid();
    assert!(
        !crate::harness::running(pid),
        "the daemon {pid} outlived the module's timeout (its parent is now {:?}): {v}",
        daemon.parent()
    );
    assert_eq!(v["error_type"], "agent_exit_non_zero", "{v}");
    let stopped = v["stopped"].as_array().expect("stopped is listed");
    assert!(stopped.iter().any(|p| p["pid"] == pid), "{v}");
    let error = v["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("{} processes of the run ended", stopped.len())),
        "{error}"
    );
}

#[test]
fn sigterm_to_the_module_stops_puppet_and_still_answers() {
    let node = Node::new("");
    let started = node.path("started");
    node.set_fake(&format!("touch '{}'; sleep 30 & wait", started.display()));
    let mut cmd = node.command();
    cmd.arg("run").stdin(Stdio::piped());
    let child = node.spawn(cmd, &request(&[]));
    let t = Instant::now();
    while !started.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "puppet never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error_type"], "agent_exit_non_zero", "{v}");
    assert!(v["error"].as_str().unwrap().contains("SIGTERM"), "{v}");
    assert_eq!(v["exitcode"], -1);
}

#[test]
fn a_fifo_at_a_lock_path_is_agent_failed_to_start_without_running_puppet() {
    let node = reporting_node(0);
    rustix::fs::mknodat(
        rustix::fs::CWD,
        node.catalog_lock(),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let m = module(&node, &["run"], &request(&[]));
    let v = m.json();
    assert_eq!(v["error_type"], "agent_failed_to_start", "{v}");
    assert!(v["error"].as_str().unwrap().contains("a FIFO"), "{v}");
    assert!(m.elapsed < Duration::from_secs(5));
    assert_eq!(node.argv(), None);
}

#[test]
fn run_result_document() {
    let node = reporting_node(0);
    let m = module(&node, &["run"], &request(&["--noop"]));
    insta::assert_json_snapshot!(m.json());
}
