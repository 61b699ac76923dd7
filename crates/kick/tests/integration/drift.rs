//! Drift across nodes: the grouped section of the human output, `changes`
//! and `drift` in JSON, the JSONL drift line, and the CI reports (JUnit
//! validated against the committed XSD, the Markdown summary, the GitHub
//! step summary), on the psick::puppet_agent double with `changes`.

use std::path::Path;

use serde_json::{Value, json};

use crate::harness::{Emu, kick_bin, node, redact, run_bin};
use crate::schema::assert_valid;

/// A change the double reports, `@STATUS@` being noop or success.
fn change(resource: &str, desired: &str) -> Value {
    json!({"resource": resource, "type": "File", "title": resource, "property": "content",
           "previous": "{md5}old", "desired": desired,
           "message": format!("content changed '{{md5}}old' to '{desired}'"),
           "status": "@STATUS@", "corrective": true})
}

fn drifting(name: &str, changes: &[Value]) -> kick_orchestrator::NodeSpec {
    let mut n = node(name, "changed", 0.0);
    n.env.insert(
        "FIXTURE_CHANGES".into(),
        Value::from(changes.to_vec()).to_string(),
    );
    n
}

/// Three nodes with the same change, one of them with another too, and a
/// node without drift.
fn fleet() -> Vec<kick_orchestrator::NodeSpec> {
    let motd = change("File[/etc/motd]", "{md5}fleet");
    let ntp = change("File[/etc/ntp.conf]", "{md5}db");
    vec![
        drifting("web1.example.com", std::slice::from_ref(&motd)),
        drifting("web2.example.com", &[motd.clone(), ntp]),
        drifting("web3.example.com", std::slice::from_ref(&motd)),
        node("db1.example.com", "unchanged", 0.0),
    ]
}

const NODES: &str = "web1.example.com,web2.example.com,web3.example.com,db1.example.com";

/// JUnit with the job id and the run times replaced.
fn redact_junit(xml: &str) -> String {
    let mut out = String::new();
    for line in redact(xml).lines() {
        let line = set_attr(line, "time", "[DUR]");
        let line = if line.contains("<property name=\"job\"") {
            set_attr(&line, "value", "[ID]")
        } else {
            line
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `line` with the value of `attr` (when present) replaced by `value`.
fn set_attr(line: &str, attr: &str, value: &str) -> String {
    let pat = format!(" {attr}=\"");
    match line.find(&pat) {
        Some(i) => {
            let rest = &line[i + pat.len()..];
            let end = rest.find('"').unwrap_or(rest.len());
            format!("{}{pat}{value}{}", &line[..i], &rest[end..])
        }
        None => line.to_owned(),
    }
}

/// The Markdown summary with the job id and its run time replaced.
fn redact_md(md: &str) -> String {
    redact(md)
        .lines()
        .map(|l| match l.rfind(", ") {
            Some(i) if l.starts_with("state ") && l.ends_with(" s") => {
                format!("{}, [DUR]", &l[..i])
            }
            _ => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn xmllint_valid(path: &Path) {
    let xsd = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/junit.xsd");
    let out = std::process::Command::new("xmllint")
        .args(["--noout", "--schema", xsd])
        .arg(path)
        .output()
        .expect("xmllint runs (Debian package libxml2-utils)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_noop_job_groups_identical_changes_across_nodes() {
    // One node at a time keeps the line order stable for the snapshot.
    let emu = Emu::start_with(fleet(), |b| b.concurrency(1)).await;
    let r = emu
        .kick(&["agent", "--nodes", NODES, "--noop", "--color", "never"])
        .await;
    assert_eq!(r.code, 2, "{r:?}");
    insta::assert_snapshot!("drift_noop_human", redact(&r.stdout));

    // The same in JSON: each node's changes, and the document's drift list.
    let r = emu
        .kick(&["agent", "--nodes", NODES, "--noop", "--format", "json"])
        .await;
    assert_eq!(r.code, 2, "{r:?}");
    let doc = r.json();
    assert_valid(&doc);
    let drift = doc["drift"].as_array().unwrap();
    assert_eq!(drift.len(), 2, "{drift:#?}");
    assert_eq!(
        drift[0],
        json!({"resource": "File[/etc/motd]", "property": "content", "desired": "{md5}fleet",
               "status": "noop", "message": "content changed '{md5}old' to '{md5}fleet'",
               "nodes": ["web1.example.com", "web2.example.com", "web3.example.com"]})
    );
    assert_eq!(drift[1]["nodes"], json!(["web2.example.com"]));
    let web2 = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "web2.example.com")
        .unwrap();
    assert_eq!(web2["changes"].as_array().unwrap().len(), 2);
    assert_eq!(web2["changes"][0]["status"], "noop");

    // JSONL: the drift line comes right before the summary.
    let r = emu
        .kick(&["agent", "--nodes", NODES, "--noop", "--format", "jsonl"])
        .await;
    let lines: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let n = lines.len();
    assert_eq!(lines[n - 1]["type"], "summary");
    assert_eq!(lines[n - 2]["type"], "drift");
    assert_eq!(lines[n - 2]["drift"], doc["drift"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_run_heads_its_changes_changed() {
    let emu = Emu::start_with(fleet(), |b| b.concurrency(1)).await;
    let r = emu
        .kick(&[
            "agent",
            "--nodes",
            NODES,
            "--no-noop",
            "--color",
            "never",
            "--show-output",
            "none",
        ])
        .await;
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stdout.contains(
            "\nChanged (2 changes on 3 nodes):\n  File[/etc/motd] content → '{md5}fleet'\n    3 nodes: web1.example.com, web2.example.com, web3.example.com\n"
        ),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("Would change"));
}

#[tokio::test(flavor = "multi_thread")]
async fn junit_and_markdown_reports_for_ci() {
    let emu = Emu::start_with(fleet(), |b| b.concurrency(1)).await;
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let md = dir.path().join("summary.md");
    let r = emu
        .kick(&[
            "agent",
            "--nodes",
            NODES,
            "--noop",
            "--format",
            "json",
            "--junit",
            junit.to_str().unwrap(),
            "--summary-md",
            md.to_str().unwrap(),
        ])
        .await;
    assert_eq!(r.code, 2, "{r:?}");
    xmllint_valid(&junit);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("type=\"drift\"").count(), 3, "{xml}");
    insta::assert_snapshot!("drift_junit", redact_junit(&xml));
    let summary = std::fs::read_to_string(&md).unwrap();
    insta::assert_snapshot!("drift_summary_md", redact_md(&summary));

    // `kick job show` writes the same reports for a job that has ended.
    let id = r.json()["job"]["name"].as_str().unwrap().to_owned();
    let again = dir.path().join("again.xml");
    let r = emu
        .kick(&[
            "job",
            "show",
            &id,
            "--format",
            "json",
            "--junit",
            again.to_str().unwrap(),
        ])
        .await;
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(
        redact_junit(&std::fs::read_to_string(&again).unwrap()),
        redact_junit(&xml)
    );

    // A failed node is a failure of its error kind.
    let emu = Emu::start(vec![node("bad.example.com", "failed", 0.0)]).await;
    let r = emu
        .kick(&[
            "agent",
            "--nodes",
            "bad.example.com",
            "--junit",
            junit.to_str().unwrap(),
        ])
        .await;
    assert_eq!(r.code, 4, "{r:?}");
    xmllint_valid(&junit);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<failure message=\"puppet reported 1 failed resource\" type=\"psick/resource-failures\">"),
        "{xml}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_summary_goes_to_the_github_step_summary_unless_a_file_is_given() {
    let emu = Emu::start_with(fleet(), |b| b.concurrency(1)).await;
    let step = emu.dir.path().join("step_summary.md");
    std::fs::write(&step, "# earlier step\n").unwrap();
    let out = kick_bin(emu.dir.path())
        .env("GITHUB_STEP_SUMMARY", &step)
        .args(["agent", "--nodes", NODES, "--noop", "-q"])
        .args(emu.conn())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = std::fs::read_to_string(&step).unwrap();
    assert!(text.starts_with("# earlier step\n\n## kick job "), "{text}");
    assert!(text.contains("| `File[/etc/motd]` | content → '{md5}fleet' | would change | web1.example.com, web2.example.com, web3.example.com | 3 |"), "{text}");

    // An unwritable report is kick's error (exit 1), said plainly.
    let r = run_bin(
        &emu,
        &[
            "agent",
            "--nodes",
            NODES,
            "--noop",
            "-q",
            "--summary-md",
            "/nonexistent/dir/s.md",
        ],
    )
    .await;
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("cannot write the report /nonexistent/dir/s.md"),
        "{}",
        r.stderr
    );

    // --no-wait cannot write reports of a job it does not follow.
    let r = run_bin(
        &emu,
        &["agent", "--nodes", NODES, "--no-wait", "--junit", "x.xml"],
    )
    .await;
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("cannot be used with"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rollout_writes_one_testsuite_per_wave_and_keeps_the_users_userdata() {
    let emu = Emu::start_with(fleet(), |b| b.concurrency(1)).await;
    let state = tempfile::tempdir().unwrap();
    let junit = state.path().join("junit.xml");
    let argv = crate::harness::args(
        &[
            "agent",
            "--nodes",
            NODES,
            "--noop",
            "--batch",
            "2",
            "--userdata",
            "ticket=CHG-3",
            "--format",
            "json",
            "--junit",
            junit.to_str().unwrap(),
        ],
        &emu,
    );
    let r = crate::harness::kick_in(argv, kick::Interrupts::none(), Some(state.path())).await;
    assert_eq!(r.code, 2, "{r:?}");
    xmllint_valid(&junit);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testsuite ").count(), 2, "{xml}");
    assert!(xml.contains("name=\"wave 1/2, job "), "{xml}");
    assert!(xml.contains("name=\"wave 2/2, job "), "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), 4, "{xml}");
    assert_eq!(xml.matches("type=\"drift\"").count(), 3, "{xml}");

    // Every wave's job carries the user's userdata beside the rollout's keys.
    let jobs = crate::agent_flags::client(&emu)
        .jobs(&orchestrator_client::JobsQuery::default())
        .await
        .unwrap();
    assert_eq!(jobs.items.len(), 2);
    for j in &jobs.items {
        let u = j.userdata.as_ref().expect("userdata");
        assert_eq!(u["ticket"], "CHG-3", "{u}");
        assert!(u["kick_rollout"].is_string(), "{u}");
    }
}
