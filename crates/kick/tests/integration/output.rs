//! The human output a newcomer sees (issue 8): noop wording, generic task
//! results, named failures, fitted lines, a job that does not exist, a job
//! shown while it runs.

use std::time::{Duration, Instant};

use kick_orchestrator::NodeSpec;

use crate::harness::{Emu, args, kick_bin, node, redact, run_bin};
use crate::schema::assert_valid;

#[tokio::test(flavor = "multi_thread")]
async fn a_noop_run_says_would_change_and_json_keeps_changed() {
    let emu = Emu::start_with(
        vec![
            node("a.example.com", "changed", 0.0),
            node("b.example.com", "changed", 0.0),
            node("c.example.com", "changed", 0.0),
            node("d.example.com", "unchanged", 0.0),
        ],
        |b| b.concurrency(1),
    )
    .await;
    let nodes = "a.example.com,b.example.com,c.example.com,d.example.com";
    let r = emu
        .kick(&["agent", "--noop", "--nodes", nodes, "--color", "never"])
        .await;
    assert_eq!(r.code, 2, "{r:?}");
    insta::assert_snapshot!("noop_human", redact(&r.stdout));
    assert!(
        r.stdout.contains("3 would change (noop), 1 unchanged")
            || r.stdout.contains("1 unchanged, 3 would change (noop)"),
        "{}",
        r.stdout
    );
    let r = emu
        .kick(&["agent", "--noop", "--nodes", nodes, "--format", "json"])
        .await;
    let doc = r.json();
    assert_valid(&doc);
    assert_eq!(doc["summary"]["changed"], 3);
    assert_eq!(doc["nodes"][0]["outcome"], "changed");
}

#[tokio::test(flavor = "multi_thread")]
async fn generic_task_results_are_shown_short_inline_long_below() {
    let emu = Emu::start_with(vec![node("a", "unchanged", 0.0)], |b| b.concurrency(1)).await;
    let r = emu
        .kick(&[
            "task",
            "run",
            "fixture::sleep",
            "seconds=0",
            "--nodes",
            "a",
            "--color",
            "never",
        ])
        .await;
    assert_eq!(r.code, 0, "{r:?}");
    insta::assert_snapshot!("generic_short_inline", redact(&r.stdout));
    assert!(r.stdout.contains("slept: 0"), "{}", r.stdout);
}

/// Nodes whose fixture::fail run prints the same error (no FIXTURE_NAME).
fn anonymous(names: &[&str]) -> Vec<NodeSpec> {
    names.iter().map(|n| NodeSpec::new(*n)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_summary_names_failed_nodes_and_groups_identical_errors() {
    let names: Vec<String> = (1..=12).map(|i| format!("n{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut nodes = anonymous(&refs);
    nodes.push(node("odd", "unchanged", 0.0));
    let emu = Emu::start_with(nodes, |b| b.concurrency(1)).await;
    let mut all = refs.join(",");
    all.push_str(",odd");
    let r = emu
        .kick(&[
            "task",
            "run",
            "fixture::fail",
            "--nodes",
            &all,
            "--color",
            "never",
            "-q",
        ])
        .await;
    assert_eq!(r.code, 4, "{r:?}");
    insta::assert_snapshot!("failed_nodes_named", redact(&r.stdout));
    assert!(r.stdout.contains("and 4 more"), "{}", r.stdout);
    assert!(!r.stdout.contains("kick/node-"), "{}", r.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_error_shows_its_first_stderr_line_and_lines_fit_the_width() {
    let emu = Emu::start(vec![node(
        "a-node-with-a-rather-long-certname.example.com",
        "unchanged",
        0.0,
    )])
    .await;
    let argv = args(
        &[
            "task",
            "run",
            "fixture::fail",
            "--nodes",
            "a-node-with-a-rather-long-certname.example.com",
        ],
        &emu,
    );
    let out = kick_bin(emu.dir.path())
        .env("COLUMNS", "60")
        .args(argv)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{stdout}");
    insta::assert_snapshot!("task_error_fitted_60", redact(&stdout));
    // The node's own output is its own; kick's lines fit.
    let (lines, rest) = stdout.split_once("\n\n").unwrap();
    let summary = rest.rsplit("\n\n").next().unwrap();
    for line in lines.lines().chain(summary.lines()) {
        assert!(line.chars().count() <= 60, "too wide: {line:?}");
    }
    assert!(stdout.contains("something went wrong on"), "{stdout}");
    assert!(!stdout.contains("code 3:\n"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_job_fails_at_once() {
    let emu = Emu::start(vec![node("a", "unchanged", 0.0)]).await;
    for verb in ["show", "watch"] {
        let start = Instant::now();
        let r = run_bin(&emu, &["job", verb, "4242"]).await;
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{verb}: {:?}",
            start.elapsed()
        );
        assert_eq!(r.code, 1, "{r:?}");
        assert!(
            r.stderr.contains("error: no job 4242; see `kick job list`"),
            "{}",
            r.stderr
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn job_show_of_a_running_job_shows_running_nodes_and_exits_8() {
    let emu = Emu::start_with(
        vec![node("a", "unchanged", 0.0), node("b", "unchanged", 30.0)],
        // One at a time: b starts once a has ended.
        |b| b.concurrency(1),
    )
    .await;
    let r = emu
        .kick(&["agent", "--nodes", "a,b", "--no-wait", "--format", "json"])
        .await;
    let id = r.json()["job"]["name"].as_str().unwrap().to_owned();
    // Until a has ended.
    let mut doc = serde_json::Value::Null;
    for _ in 0..100 {
        let r = emu.kick(&["job", "show", &id, "--format", "json"]).await;
        doc = r.json();
        if doc["summary"]["unchanged"] == 1 && doc["summary"]["running"] == 1 {
            assert_eq!(r.code, 8, "{r:?}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_valid(&doc);
    assert_eq!(doc["summary"]["running"], 1, "{doc:#}");
    assert_eq!(doc["summary"]["stopped"], 0, "{doc:#}");
    assert_eq!(doc["exit_code"], 8);
    let b = &doc["nodes"][1];
    assert_eq!(
        (b["name"].as_str(), b["outcome"].as_str()),
        (Some("b"), Some("running"))
    );
    assert!(b["error"].is_null(), "{b}");
    let r = emu.kick(&["job", "show", &id, "--color", "never"]).await;
    assert_eq!(r.code, 8, "{r:?}");
    insta::assert_snapshot!("running_job_show", redact(&r.stdout));
    let _ = emu.kick(&["job", "stop", &id, "--force"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn listings_are_tables_with_descriptions_outcomes_and_durations() {
    let emu = Emu::start(vec![node("a", "unchanged", 0.0)]).await;
    let r = emu.kick(&["tasks", "list"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    insta::assert_snapshot!("tasks_list", r.stdout);
    let r = emu
        .kick(&["agent", "--nodes", "a", "--description", "first run"])
        .await;
    assert_eq!(r.code, 0, "{r:?}");
    let r = emu.kick(&["job", "list"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    let mut lines = r.stdout.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "ID",
            "STATE",
            "TYPE",
            "TASK/ENVIRONMENT",
            "NODES",
            "OUTCOME",
            "DURATION",
            "OWNER",
            "STARTED",
            "DESCRIPTION"
        ]
    );
    let row = lines.next().unwrap();
    assert!(row.ends_with("  first run"), "{row:?}");
    assert!(row.contains("  1 ok  "), "{row:?}");
    assert!(!r.stdout.contains("[kick:"), "{}", r.stdout);
}

#[test]
fn options_are_offered_only_where_they_apply() {
    let parse = |args: &[&str]| kick::Cli::try_parse_args(args.iter().copied());
    for bad in [
        &["kick", "job", "list", "--show-output", "all"][..],
        &["kick", "job", "list", "-e", "production"],
        &["kick", "job", "stop", "1", "-q"],
        &["kick", "inventory", "--give-up", "5"],
    ] {
        assert!(parse(bad).is_err(), "{bad:?} parsed");
    }
    let help = parse(&["kick", "job", "list", "--help"])
        .unwrap_err()
        .to_string();
    insta::assert_snapshot!("job_list_help", help);
    let help = parse(&["kick", "task", "run", "--help"])
        .unwrap_err()
        .to_string();
    assert!(help.contains("Examples:\n  kick task run"), "{help}");
    let help = parse(&["kick", "deploy", "--help"])
        .unwrap_err()
        .to_string();
    assert!(help.contains("Examples:\n  kick deploy"), "{help}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kick_man_writes_every_page_with_environment_files_and_exit_status() {
    let emu = Emu::start(vec![]).await;
    let out = kick_bin(emu.dir.path()).arg("man").output().await.unwrap();
    let page = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    for section in [
        ".SH ENVIRONMENT",
        ".SH FILES",
        ".SH \"EXIT STATUS\"",
        "KICK_WATCH_GIVE_UP",
    ] {
        assert!(page.contains(section), "{section} missing");
    }
    let dir = emu.dir.path().join("man");
    let out = kick_bin(emu.dir.path())
        .args(["man", "--dir", dir.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    for page in [
        "kick.1",
        "kick-agent.1",
        "kick-task-run.1",
        "kick-job-watch.1",
        "kick-man.1",
    ] {
        assert!(dir.join(page).is_file(), "{page} missing");
    }
    // Every page the main page names exists.
    let main = std::fs::read_to_string(dir.join("kick.1")).unwrap();
    for sub in [
        "agent",
        "task",
        "deploy",
        "job",
        "inventory",
        "tasks",
        "completions",
        "man",
    ] {
        assert!(
            main.contains(&format!("kick\\-{sub}(1)")),
            "kick-{sub}(1) not named"
        );
        assert!(
            dir.join(format!("kick-{sub}.1")).is_file(),
            "kick-{sub}.1 missing"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_say_what_to_do_once() {
    let emu = Emu::start(vec![node("a", "unchanged", 0.0)]).await;
    // A rejected token: `puppet access login` is said once.
    let bad_token = emu.dir.path().join("bad-token");
    crate::harness::write_private(&bad_token, "not-the-token");
    let r = crate::harness::run_bin_raw(
        &emu,
        ["job", "list", "--service-url", &emu.url, "--token-file"]
            .iter()
            .map(|s| s.to_string())
            .chain([bad_token.display().to_string()])
            .collect(),
    )
    .await;
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(
        r.stderr.matches("puppet access login").count(),
        1,
        "{}",
        r.stderr
    );
    // A bare word where KEY=VALUE belongs.
    let r = run_bin(
        &emu,
        &["task", "run", "fixture::sleep", "seconds", "--nodes", "a"],
    )
    .await;
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("KEY=VALUE is expected (e.g. seconds=VALUE)"),
        "{}",
        r.stderr
    );
    // A CA file that is not there: named, with how to get the Puppet CA.
    let r = crate::harness::run_bin_raw(
        &emu,
        [
            "job",
            "list",
            "--service-url",
            "https://localhost:1",
            "--cacert",
            "/nonexistent/ca.pem",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    )
    .await;
    assert_eq!(r.code, 1, "{r:?}");
    for part in [
        "/nonexistent/ca.pem: there is no such file",
        "puppet config print localcacert",
        "/etc/puppetlabs/puppet/ssl/certs/ca.pem",
    ] {
        assert!(r.stderr.contains(part), "{part}: {}", r.stderr);
    }
}
