//! psick::puppet_agent against the real puppetserver, as several distinct simulated nodes.

use std::net::TcpListener;
use std::time::Duration;

use kick_e2e::{SimNode, Stack, process_alive};
use serde_json::{Value, json};

/// Fields every result carries, whatever the outcome (issue 2's result format).
fn assert_result_shape(run: &kick_e2e::TaskRun) {
    let r = &run.result;
    for key in [
        "status",
        "noop",
        "exitcode",
        "command",
        "server",
        "environment",
        "duration",
        "resources",
        "config_version",
        "puppet_version",
        "_output",
    ] {
        assert!(
            r.get(key).is_some(),
            "result lacks `{key}`:\n{}",
            run.dump()
        );
    }
    assert!(r["command"].is_array(), "command is an argv array");
    assert!(r["duration"].is_number(), "duration is a number");
    assert!(r["noop"].is_boolean(), "noop is a boolean");
    let out = r["_output"].as_str().unwrap_or_default();
    assert!(!out.contains('\u{1b}'), "_output must be ANSI-free");
    if run.exit.success() {
        assert!(
            r.get("_error").is_none(),
            "success without _error:\n{}",
            run.dump()
        );
    } else {
        assert!(
            r["_error"]["kind"].is_string(),
            "failure carries _error.kind:\n{}",
            run.dump()
        );
        assert!(r["_error"]["msg"].is_string(), "failure carries _error.msg");
        assert!(
            r["_error"]["details"].get("exitcode").is_some(),
            "_error.details carries exitcode:\n{}",
            run.dump()
        );
    }
}

fn argv(run: &kick_e2e::TaskRun) -> Vec<String> {
    run.result["command"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// One node's life in environment `idem`: noop shows the pending change without making it,
/// the real run makes it, the next run finds nothing to do.
fn converge(node: &SimNode) {
    let managed = node.managed_dir().join("idem.txt");

    let noop = node.run_task(&json!({"noop": true, "environment": "idem"}));
    assert_result_shape(&noop);
    assert!(noop.exit.success(), "noop run:\n{}", noop.dump());
    assert_eq!(
        noop.status(),
        "changed",
        "pending changes count as changed:\n{}",
        noop.dump()
    );
    assert_eq!(noop.result["noop"], json!(true));
    assert_eq!(
        noop.result["exitcode"],
        json!(0),
        "puppet --noop exits 0 even with drift"
    );
    assert_eq!(noop.result["environment"], json!("idem"));
    assert!(
        argv(&noop).iter().any(|a| a == "--noop"),
        "{:?}",
        argv(&noop)
    );
    assert!(
        noop.resource("noop_pending").unwrap_or(0) > 0,
        "noop_pending > 0:\n{}",
        noop.dump()
    );
    assert_eq!(noop.resource("changed"), Some(0), "{}", noop.dump());
    assert!(
        !managed.exists(),
        "noop must not create {}",
        managed.display()
    );

    let real = node.run_task(&json!({"environment": "idem", "noop": false}));
    assert_result_shape(&real);
    assert!(real.exit.success(), "real run:\n{}", real.dump());
    assert_eq!(real.status(), "changed", "{}", real.dump());
    assert_eq!(real.result["noop"], json!(false));
    assert_eq!(real.result["exitcode"], json!(2));
    assert!(
        argv(&real).iter().any(|a| a == "--no-noop"),
        "{:?}",
        argv(&real)
    );
    assert!(
        real.resource("changed").unwrap_or(0) >= 1,
        "{}",
        real.dump()
    );
    assert_eq!(real.resource("failed"), Some(0));
    assert!(real.resource("total").unwrap_or(0) >= 3, "{}", real.dump());
    real.assert_real_agent_ran();
    let content = std::fs::read_to_string(&managed).expect("the real run wrote the file");
    assert!(
        content.contains(node.certname()),
        "per-node content: {content}"
    );

    let again = node.run_task(&json!({"environment": "idem"}));
    assert_result_shape(&again);
    assert!(again.exit.success(), "second run:\n{}", again.dump());
    assert_eq!(again.status(), "unchanged", "{}", again.dump());
    assert_eq!(again.result["exitcode"], json!(0));
    assert_eq!(again.resource("changed"), Some(0));
    assert_eq!(again.resource("out_of_sync"), Some(0));
}

#[test]
fn noop_then_real_then_unchanged_on_two_nodes_at_once() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let a = SimNode::unique(&stack, "e2e-conv-a");
    let b = SimNode::unique(&stack, "e2e-conv-b");
    // Both nodes converge at the same time against one server, each on its own state.
    std::thread::scope(|s| {
        let ta = s.spawn(|| converge(&a));
        let tb = s.spawn(|| converge(&b));
        ta.join().expect("node a");
        tb.join().expect("node b");
    });
    assert_ne!(a.certname(), b.certname());
    for n in [&a, &b] {
        assert!(
            n.cert_pem().is_file(),
            "{} got its own certificate",
            n.certname()
        );
        assert!(
            n.last_run_summary().is_file(),
            "{} has its own lastrunfile",
            n.certname()
        );
    }
}

#[test]
fn production_noop_reports_pending_notify_and_file() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let node = SimNode::unique(&stack, "e2e-prod");
    let run = node.run_task(&json!({"_noop": true}));
    assert_result_shape(&run);
    assert!(run.exit.success(), "{}", run.dump());
    assert_eq!(run.status(), "changed", "{}", run.dump());
    assert_eq!(run.result["noop"], json!(true), "_noop means noop");
    assert_eq!(
        run.result["environment"],
        json!("production"),
        "{}",
        run.dump()
    );
    // notify + two directories + the file
    assert!(
        run.resource("noop_pending").unwrap_or(0) >= 2,
        "{}",
        run.dump()
    );
    let out = run.result["_output"].as_str().unwrap_or_default();
    assert!(
        out.contains("(noop)"),
        "puppet's noop lines are in _output:\n{out}"
    );
    assert!(!node.managed_dir().join("managed.txt").exists());
}

#[test]
fn failing_resource_is_resource_failures() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let node = SimNode::unique(&stack, "e2e-fail");

    let run = node.run_task(&json!({"environment": "failing"}));
    assert_result_shape(&run);
    assert!(!run.exit.success(), "{}", run.dump());
    assert_eq!(run.status(), "failed", "{}", run.dump());
    assert_eq!(
        run.error_kind(),
        Some("psick/resource-failures"),
        "{}",
        run.dump()
    );
    assert_eq!(run.result["exitcode"], json!(4));
    assert_eq!(run.result["_error"]["details"]["exitcode"], json!(4));
    assert!(run.resource("failed").unwrap_or(0) >= 1, "{}", run.dump());

    // A change and a failure together: exit code 6, still resource failures.
    let mixed = node.run_task(&json!({"environment": "failmixed"}));
    assert_result_shape(&mixed);
    assert!(!mixed.exit.success(), "{}", mixed.dump());
    assert_eq!(mixed.status(), "failed", "{}", mixed.dump());
    assert_eq!(
        mixed.error_kind(),
        Some("psick/resource-failures"),
        "{}",
        mixed.dump()
    );
    assert_eq!(mixed.result["exitcode"], json!(6));
    assert!(
        mixed.resource("changed").unwrap_or(0) >= 1,
        "{}",
        mixed.dump()
    );
    assert!(
        mixed.resource("skipped").unwrap_or(0) >= 1,
        "{}",
        mixed.dump()
    );
}

#[test]
fn catalog_compile_error_is_run_failed() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let node = SimNode::unique(&stack, "e2e-broken");
    let run = node.run_task(&json!({"environment": "broken"}));
    assert_result_shape(&run);
    assert!(!run.exit.success(), "{}", run.dump());
    assert_eq!(run.status(), "failed");
    assert_eq!(run.error_kind(), Some("psick/run-failed"), "{}", run.dump());
    assert_eq!(run.result["exitcode"], json!(1));
    let out = run.result["_output"].as_str().unwrap_or_default();
    assert!(out.contains("Could not retrieve catalog"), "{out}");
}

#[test]
fn real_agent_holding_the_lock_blocks_then_lets_the_task_run() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let node = SimNode::unique(&stack, "e2e-lock");
    node.bootstrap();
    let mut holder = node.spawn_agent("slow");
    let lock_pid = node.wait_for_lock(Duration::from_secs(90));

    // No waiting allowed: fails at once, naming the holder.
    let busy = node.run_task(&json!({"environment": "idem", "wait_for_lock": 0}));
    assert_result_shape(&busy);
    assert!(!busy.exit.success(), "{}", busy.dump());
    assert_eq!(busy.status(), "failed");
    assert_eq!(
        busy.error_kind(),
        Some("psick/agent-locked"),
        "{}",
        busy.dump()
    );
    assert!(
        busy.error_msg().contains(&lock_pid.to_string()),
        "the message names the holder PID {lock_pid}:\n{}",
        busy.dump()
    );
    assert!(busy.elapsed < Duration::from_secs(30), "{:?}", busy.elapsed);

    // Enough patience: waits for the holder's `sleep 20`, then runs.
    assert!(
        holder.is_running(),
        "the holder must still hold the lock here"
    );
    let patient = node.run_task(&json!({"environment": "idem", "wait_for_lock": 180}));
    assert_result_shape(&patient);
    let (holder_exit, holder_log) = holder.wait();
    assert!(
        patient.exit.success(),
        "{}\nholder:\n{holder_log}",
        patient.dump()
    );
    assert_eq!(patient.status(), "changed", "{}", patient.dump());
    assert_eq!(
        holder_exit.code(),
        Some(2),
        "the holder's own run is unaffected:\n{holder_log}"
    );
    assert!(node.managed_dir().join("idem.txt").is_file());
}

#[test]
fn disabled_agent_fails_fast_with_the_reason() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let node = SimNode::unique(&stack, "e2e-disabled");
    node.bootstrap();
    node.disable("maint");

    let run = node.run_task(&json!({"environment": "idem"}));
    assert_result_shape(&run);
    assert!(!run.exit.success(), "{}", run.dump());
    assert_eq!(run.status(), "failed");
    assert_eq!(
        run.error_kind(),
        Some("psick/agent-disabled"),
        "{}",
        run.dump()
    );
    assert!(run.error_msg().contains("maint"), "{}", run.dump());
    assert!(!node.managed_dir().join("idem.txt").exists());

    node.enable();
    let run = node.run_task(&json!({"environment": "idem"}));
    assert!(run.exit.success(), "after --enable:\n{}", run.dump());
    assert_eq!(run.status(), "changed");
}

#[test]
fn refused_server_is_run_failed_within_seconds() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let node = SimNode::unique(&stack, "e2e-refused");
    node.bootstrap();
    // Port 1 on loopback: nothing listens there, connections are refused at once.
    let run = node.run_task(&json!({
        "environment": "idem",
        "puppet_master": "127.0.0.1:1",
        "connect_timeout": 5,
    }));
    assert_result_shape(&run);
    assert!(!run.exit.success(), "{}", run.dump());
    assert_eq!(run.status(), "failed");
    assert_eq!(run.error_kind(), Some("psick/run-failed"), "{}", run.dump());
    assert_eq!(run.result["exitcode"], json!(1));
    let args = argv(&run);
    assert!(args.iter().any(|a| a == "--server=127.0.0.1"), "{args:?}");
    assert!(args.iter().any(|a| a == "--serverport=1"), "{args:?}");
    // Correctness bound, not a performance target: no usecacheonfailure fallback, no
    // minutes-long default timeouts.
    assert!(run.elapsed < Duration::from_secs(60), "{:?}", run.elapsed);
}

#[test]
fn silent_server_times_out_on_connect_timeout() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let node = SimNode::unique(&stack, "e2e-silent");
    node.bootstrap();
    // A listener that never accepts: the kernel completes the TCP handshake from its backlog,
    // the TLS handshake then hangs, so only http_connect_timeout ends each attempt
    // (3 attempts × 120 s with Puppet's default).
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().expect("local addr").port();
    let run = node.run_task(&json!({
        "environment": "idem",
        "puppet_master": format!("127.0.0.1:{port}"),
        "connect_timeout": 2,
    }));
    drop(listener);
    assert_result_shape(&run);
    assert_eq!(run.error_kind(), Some("psick/run-failed"), "{}", run.dump());
    assert!(
        argv(&run)
            .iter()
            .any(|a| a.starts_with("--http_connect_timeout")),
        "{:?}",
        argv(&run)
    );
    assert!(run.elapsed < Duration::from_secs(60), "{:?}", run.elapsed);
}

#[test]
fn simulated_nodes_are_distinct_identities() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let a = SimNode::unique(&stack, "e2e-ident");
    let b = SimNode::unique(&stack, "e2e-ident");
    assert_ne!(a.certname(), b.certname());
    for (x, y) in [
        (a.confdir(), b.confdir()),
        (a.vardir(), b.vardir()),
        (a.ssldir(), b.ssldir()),
    ] {
        assert_ne!(x, y);
    }
    let env: Value = a
        .task_env()
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    assert_eq!(
        env["PSICK_PUPPET_CONFDIR"],
        json!(a.confdir().display().to_string())
    );
    // Puppet itself resolves the node's paths from the generated puppet.conf.
    let out = a
        .puppet("config")
        .args([
            "print",
            "certname",
            "vardir",
            "ssldir",
            "lastrunfile",
            "server",
        ])
        .output()
        .expect("puppet config print");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("certname = {}", a.certname())),
        "{text}"
    );
    assert!(
        text.contains(&format!("vardir = {}", a.vardir().display())),
        "{text}"
    );
    assert!(
        text.contains(&format!("lastrunfile = {}", a.last_run_summary().display())),
        "{text}"
    );
    assert!(text.contains("server = localhost"), "{text}");
}

#[test]
fn timeout_kills_the_puppet_run_and_reports_psick_timeout() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let node = SimNode::unique(&stack, "e2e-timeout");
    node.bootstrap();
    node.forget_exec_pid();
    // `slow` sleeps 20 s in an exec; the task allows 15 s for the whole run (margin for the
    // catalog under load: the exec must have started for the check below).
    let run = node.run_task(&json!({"environment": "slow", "timeout": 15}));
    assert_result_shape(&run);
    assert!(!run.exit.success(), "{}", run.dump());
    assert_eq!(run.status(), "failed");
    assert_eq!(run.error_kind(), Some("psick/timeout"), "{}", run.dump());
    // Puppet exits 0 after "Caught TERM": that is not the run's outcome.
    assert_eq!(run.result["exitcode"], json!(null), "{}", run.dump());
    // The exec ran in its own session (puppet's setsid); it is gone the moment the task
    // answers, and the result lists it.
    let exec = node.exec_pid_written();
    assert!(!process_alive(exec), "the exec {exec} outlived the timeout");
    assert!(
        run.stopped_pids().contains(&u64::from(exec)),
        "{}",
        run.dump()
    );
    // 15 s + the SIGTERM→SIGKILL grace (10 s by default) + slack; not a performance target.
    assert!(run.elapsed < Duration::from_secs(45), "{:?}", run.elapsed);
    let left = node.wait_no_puppet_processes(Duration::from_secs(10));
    assert!(left.is_empty(), "puppet processes left behind: {left:?}");
}

#[test]
fn sigterm_to_the_task_is_forwarded_and_still_yields_a_result() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let node = SimNode::unique(&stack, "e2e-sigterm");
    node.bootstrap();
    node.forget_exec_pid();
    let task = node.spawn_task(&json!({"environment": "slow"}));
    // Once the exec runs, puppet is mid-run; then the orchestrator gives up on the task.
    node.wait_for_lock(Duration::from_secs(90));
    let exec = node.wait_for_exec_pid(Duration::from_secs(60));
    assert!(
        !node.puppet_processes().is_empty(),
        "the process scan sees the running puppet (else the check below proves nothing)"
    );
    task.terminate();
    let t = std::time::Instant::now();
    let run = task.wait();
    assert_result_shape(&run);
    assert!(!run.exit.success(), "{}", run.dump());
    assert_eq!(run.status(), "failed");
    assert_eq!(run.error_kind(), Some("psick/timeout"), "{}", run.dump());
    assert_eq!(
        run.result["_error"]["details"]["signal"],
        json!("TERM"),
        "{}",
        run.dump()
    );
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    assert!(!process_alive(exec), "the exec {exec} outlived the SIGTERM");
    let left = node.wait_no_puppet_processes(Duration::from_secs(10));
    assert!(left.is_empty(), "puppet processes left behind: {left:?}");
}

/// The result's `changes` come from the report of that very run: a noop run on a drifted
/// file lists each pending property change with what is there and what the catalog wants.
#[test]
fn noop_run_lists_each_pending_change_with_previous_and_desired() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let node = SimNode::unique(&stack, "e2e-drift");
    let first = node.run_task(&json!({"environment": "idem"}));
    assert!(first.exit.success(), "{}", first.dump());
    let managed = node.managed_dir().join("idem.txt");
    std::fs::write(&managed, "edited by hand\n").unwrap();
    std::fs::set_permissions(
        &managed,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();

    let noop = node.run_task(&json!({"noop": true, "environment": "idem"}));
    assert_result_shape(&noop);
    assert!(noop.exit.success(), "{}", noop.dump());
    assert!(noop.result.get("report_error").is_none(), "{}", noop.dump());
    let resource = format!("File[{}]", managed.display());
    let change = |property: &str| {
        noop.result["changes"]
            .as_array()
            .and_then(|c| {
                c.iter()
                    .find(|c| c["resource"] == json!(resource) && c["property"] == property)
            })
            .cloned()
            .unwrap_or_else(|| panic!("no {property} change of {resource}:\n{}", noop.dump()))
    };
    let content = change("content");
    assert_eq!(content["status"], "noop", "{content}");
    assert_eq!(content["type"], "File");
    assert_eq!(content["title"], json!(managed.display().to_string()));
    let (previous, desired) = (
        content["previous"].as_str().unwrap(),
        content["desired"].as_str().unwrap(),
    );
    assert!(
        previous.starts_with("{sha256}") && desired.starts_with("{sha256}"),
        "checksums, not base64: {content}"
    );
    assert_ne!(previous, desired);
    let mode = change("mode");
    assert_eq!(
        (mode["previous"].as_str(), mode["desired"].as_str()),
        (Some("0600"), Some("0644")),
        "{mode}"
    );
    assert!(
        noop.result["transaction_uuid"]
            .as_str()
            .is_some_and(|u| u.len() == 36),
        "{}",
        noop.dump()
    );
    // Drift from what the last run applied is corrective.
    assert_eq!(content["corrective"], json!(true), "{content}");
    assert_eq!(noop.result["corrective_change"]["corrective"], json!(1));
    assert_eq!(
        std::fs::read_to_string(&managed).unwrap(),
        "edited by hand\n",
        "noop changed nothing"
    );

    // The real run applies the same two changes, and the next has none.
    let real = node.run_task(&json!({"environment": "idem"}));
    assert!(real.exit.success(), "{}", real.dump());
    let statuses: Vec<(&str, &str)> = real.result["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["property"].as_str().unwrap_or(""),
                c["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [("content", "success"), ("mode", "success")],
        "{}",
        real.dump()
    );
    let again = node.run_task(&json!({"environment": "idem"}));
    assert!(again.result.get("changes").is_none(), "{}", again.dump());
    assert!(
        again.result.get("report_error").is_none(),
        "{}",
        again.dump()
    );
}

/// Every flag the PE deploy keys map to is one the real puppet accepts: a run with all of them
/// succeeds, and puppet's own `--configprint` shows the values they set.
#[test]
fn pe_deploy_parameters_are_flags_puppet_accepts() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let node = SimNode::unique(&stack, "e2e-flags");
    let params = json!({
        "environment": "idem", "http_connect_timeout": 20, "http_keepalive_timeout": 0,
        "http_read_timeout": 120, "filetimeout": 0, "ordering": "manifest",
        "use_cached_catalog": false, "usecacheonfailure": true, "skip_tags": ["nothing_has_this"],
        "evaltrace": true, "changes_limit": 1
    });
    let run = node.run_task(&params);
    assert_result_shape(&run);
    assert!(run.exit.success(), "{}", run.dump());
    let argv = argv(&run);
    let flags: Vec<&str> = argv
        .iter()
        .map(String::as_str)
        .filter(|a| {
            [
                "--http",
                "--filetimeout",
                "--use_cached",
                "--no-use_cached",
                "--usecache",
            ]
            .iter()
            .any(|p| a.starts_with(p))
        })
        .collect();
    assert_eq!(
        flags,
        [
            "--usecacheonfailure",
            "--http_connect_timeout=20",
            "--http_keepalive_timeout=0",
            "--http_read_timeout=120",
            "--filetimeout=0",
            "--no-use_cached_catalog",
        ],
        "{}",
        run.dump()
    );
    // The first run creates the node's directory and file (and /tmp/kick-e2e, unless another
    // test did): one event listed, the others counted.
    assert_eq!(run.result["changes"].as_array().map(Vec::len), Some(1));
    assert!(
        run.result["changes_truncated"].as_u64() >= Some(1),
        "{}",
        run.dump()
    );
    // Puppet itself parses each of those flags into its setting.
    let mut print = node.puppet("agent");
    print.args(
        flags
            .iter()
            .filter(|f| f.contains('=') || f.starts_with("--no-")),
    );
    print.args(["--usecacheonfailure", "--configprint"]);
    print.arg("http_connect_timeout,http_keepalive_timeout,http_read_timeout,filetimeout,use_cached_catalog,usecacheonfailure");
    let out = print.output().expect("puppet --configprint");
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "http_connect_timeout = 20",
        "http_keepalive_timeout = 0",
        "http_read_timeout = 120",
        "filetimeout = 0",
        "use_cached_catalog = false",
        "usecacheonfailure = true",
    ] {
        assert!(text.contains(line), "{line} not in:\n{text}");
    }
}
