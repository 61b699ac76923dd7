//! Input handling: bad JSON, unknown and invalid parameters, PT_ variables,
//! a missing puppet.

use std::process::{Command, Stdio};
use std::time::Instant;

use crate::harness::{Node, finish};

#[test]
fn bad_json_is_invalid_params() {
    let node = Node::new("exit 0");
    for stdin in ["{", "[]", "true", "{\"noop\": tru}"] {
        let o = node.run(stdin);
        assert_eq!(o.code, 1);
        assert_eq!(o.kind(), "psick/invalid-params", "{stdin}");
        assert_eq!(o.json["status"], "failed");
    }
    assert_eq!(node.argv(), None);
}

#[test]
fn unknown_parameters_are_rejected_by_name() {
    let node = Node::new("exit 0");
    let o = node.run(r#"{"nopp": true, "_whatever": 1}"#);
    assert_eq!(o.kind(), "psick/invalid-params");
    assert!(o.msg().contains("nopp"), "{}", o.msg());
    assert_eq!(node.argv(), None);
}

#[test]
fn injection_attempts_never_reach_puppet() {
    let node = Node::new("exit 0");
    for params in [
        r#"{"puppet_master": "--onetime"}"#,
        r#"{"puppet_master": "pm; rm -rf /"}"#,
        r#"{"puppet_master": "pm --noop"}"#,
        r#"{"puppet_master": "$(reboot)"}"#,
        r#"{"puppet_master": "pm|x"}"#,
        r#"{"puppet_master": "pm&x"}"#,
        r#"{"puppet_master": "`id`"}"#,
        r#"{"environment": "production --noop"}"#,
        r#"{"environment": "-x"}"#,
        r#"{"environment": "../etc"}"#,
        r#"{"tags": "a b"}"#,
        r#"{"tags": ["--noop"]}"#,
        r#"{"skip_tags": ["x;y"]}"#,
        r#"{"noop": "yes"}"#,
        r#"{"timeout": "1; reboot"}"#,
        r#"{"noop": true, "no_noop": true}"#,
        r#"{"_noop": true, "noop": false}"#,
    ] {
        let o = node.run(params);
        assert_eq!(o.kind(), "psick/invalid-params", "{params}: {}", o.json);
        assert!(o.json["command"].as_array().unwrap().is_empty());
    }
    assert_eq!(node.argv(), None);
}

#[test]
fn pt_variables_are_used_when_stdin_is_empty_or_absent() {
    let node = Node::new("exit 0");
    let mut cmd = node.command();
    cmd.env("PT_noop", "true")
        .env("PT_tags", r#"["a","b"]"#)
        .env("PT_wait_for_lock", "0")
        .env("PT_environment", "null")
        .env("PT__task", "psick::puppet_agent");
    let o = node.run_cmd(cmd, "");
    assert_eq!(o.code, 0, "{}", o.json);
    let argv = node.argv().unwrap();
    assert!(argv.contains(&"--noop".to_owned()));
    assert!(argv.contains(&"--tags=a,b".to_owned()));
    assert!(!argv.iter().any(|a| a.starts_with("--environment")));

    // stdin closed outright (/dev/null) behaves the same.
    let mut cmd = node.command();
    cmd.env("PT_no_noop", "true").stdin(Stdio::null());
    let start = Instant::now();
    let o = finish(cmd.spawn().unwrap(), start);
    assert_eq!(o.code, 0);
    assert!(node.argv().unwrap().contains(&"--no-noop".to_owned()));

    let mut cmd = node.command();
    cmd.env("PT_bogus", "1");
    assert_eq!(node.run_cmd(cmd, "").kind(), "psick/invalid-params");
}

#[test]
fn a_missing_puppet_is_puppet_not_found() {
    let node = Node::new("exit 0");
    let mut cmd = node.command();
    cmd.env("PSICK_PUPPET_BIN", node.path("no/such/puppet"));
    let o = node.run_cmd(cmd, "{}");
    assert_eq!(o.code, 1);
    assert_eq!(o.kind(), "psick/puppet-not-found");
    assert!(o.msg().contains("no/such/puppet"), "{}", o.msg());
    assert!(o.json["exitcode"].is_null());
}

#[test]
fn a_puppet_that_cannot_start_is_spawn_failed() {
    let node = Node::new("exit 0");
    let text = std::fs::read_to_string(&node.bin).unwrap();
    std::fs::write(
        &node.bin,
        text.replacen("#!/bin/sh", "#!/nonexistent/ruby", 1),
    )
    .unwrap();
    let o = node.run("{}");
    assert_eq!(o.kind(), "psick/spawn-failed", "{}", o.json);
    assert!(o.json["exitcode"].is_null());
}

#[test]
fn unknown_tasks_are_rejected() {
    let node = Node::new("exit 0");
    let o = node.run(r#"{"_task": "psick::reboot"}"#);
    assert_eq!(o.kind(), "psick/invalid-params");
    assert!(o.msg().contains("psick::reboot"));
    assert_eq!(node.argv(), None);
}

#[test]
fn a_terminal_on_stdin_is_not_read() {
    // `script` (util-linux) gives the task a pty as stdin; reading it would
    // block forever, so the task must go straight to the PT_ variables.
    let node = Node::new("exit 0");
    let mut cmd = node.command();
    cmd.env("PT_noop", "true");
    // The task's command line (with its emulator, when it runs under one), quoted for sh.
    let inner: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| format!("'{}'", a.to_str().unwrap().replace('\'', r"'\''")))
        .collect();
    let mut script = Command::new("script");
    script.args(["-qec", &inner.join(" "), "/dev/null"]);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => script.env(k, v),
            None => script.env_remove(k),
        };
    }
    // A pipe kept open: on EOF `script` would end the pty's input too.
    script.stdin(Stdio::piped()).stdout(Stdio::piped());
    let start = Instant::now();
    let mut child = script.spawn().unwrap();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            panic!("the task blocked on a terminal stdin");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(r#""noop":true"#), "{text}");
    assert!(text.contains(r#""status":"unchanged""#), "{text}");
}
