//! Drift review on the real stack: four nodes converge on the `drift` environment, three of
//! them then drift by hand (the same file edited alike; one of them also another file). A
//! noop run groups the drift per resource across nodes (JSON `drift`, the human section,
//! JUnit drift failures, the Markdown table); enforcing `--nodes-from JOB:changed` runs only
//! the three drifted nodes, and a last noop run finds no drift.

use std::path::Path;

use kick_e2e::{LocalNodes, Stack, workspace_root};
use serde_json::Value;

use crate::kick_cli::{kick, kick_text};

const TOKEN: &str = "e2e-drift-token";

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|n| n.as_str().or(n["name"].as_str()).unwrap_or("?").to_owned())
        .collect()
}

fn xmllint_valid(xml: &Path) {
    let xsd = workspace_root().join("crates/kick/schema/junit.xsd");
    let out = std::process::Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(&xsd)
        .arg(xml)
        .output()
        .expect("xmllint runs (Debian package libxml2-utils)");
    assert!(
        out.status.success(),
        "{} is not valid JUnit: {}",
        xml.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noop_drift_is_grouped_reported_for_ci_and_enforced_on_the_drifted_nodes_only() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let emu = LocalNodes::start(&stack, "drift", 4, TOKEN).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).expect("token file");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
    }
    let all = emu.certnames().join(",");
    let conn = [
        "-e".to_owned(),
        "drift".to_owned(),
        "--service-url".to_owned(),
        emu.url.clone(),
        "--token-file".to_owned(),
        token_file.display().to_string(),
    ];
    let argv = |parts: &[&str]| -> Vec<String> {
        parts
            .iter()
            .map(|s| (*s).to_owned())
            .chain(conn.iter().cloned())
            .collect()
    };
    let json = |parts: Vec<String>| async move {
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        kick(&refs).await
    };

    // 0. converge every node.
    let (code, doc, err) = json(argv(&[
        "agent",
        "--nodes",
        &all,
        "--no-noop",
        "--format",
        "json",
    ]))
    .await;
    assert_eq!(code, 2, "{doc:#}\n{err}");

    // 1. drift by hand: the motd of nodes 0-2 alike, and node 1's extra.conf.
    let drifted: Vec<String> = emu.certnames()[..3]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    for n in &emu.nodes[..3] {
        std::fs::write(n.managed_dir().join("motd"), "edited by hand\n").expect("edit motd");
    }
    std::fs::write(
        emu.nodes[1].managed_dir().join("extra.conf"),
        "tuning = fast\n",
    )
    .expect("edit extra.conf");

    // 2. the noop review, with the CI reports.
    let junit = dir.path().join("junit.xml");
    let md = dir.path().join("summary.md");
    let (code, doc, err) = json(argv(&[
        "agent",
        "--nodes",
        &all,
        "--noop",
        "--format",
        "json",
        "--junit",
        junit.to_str().expect("utf-8 path"),
        "--summary-md",
        md.to_str().expect("utf-8 path"),
    ]))
    .await;
    assert_eq!(code, 2, "{doc:#}\n{err}");
    let job = doc["job"]["name"].as_str().expect("job id").to_owned();
    let drift = doc["drift"].as_array().expect("drift list");
    assert_eq!(drift.len(), 2, "{drift:#?}");
    assert_eq!(drift[0]["resource"], "File[drift-motd]");
    assert_eq!(drift[0]["property"], "content");
    assert_eq!(drift[0]["status"], "noop");
    assert_eq!(names(&drift[0]["nodes"]), drifted);
    assert_eq!(drift[1]["resource"], "File[drift-extra]");
    assert_eq!(names(&drift[1]["nodes"]), [drifted[1].clone()]);
    let desired = drift[0]["desired"].as_str().expect("desired value");
    for n in doc["nodes"].as_array().expect("nodes") {
        let name = n["name"].as_str().expect("name");
        let changes = n["changes"].as_array().expect("changes");
        let want = match drifted.iter().position(|d| d == name) {
            Some(1) => 2,
            Some(_) => 1,
            None => 0,
        };
        assert_eq!(changes.len(), want, "{n:#}");
        let outcome = if want > 0 { "changed" } else { "unchanged" };
        assert_eq!(n["outcome"], outcome, "{n:#}");
    }

    xmllint_valid(&junit);
    let xml = std::fs::read_to_string(&junit).expect("junit file");
    assert_eq!(xml.matches("type=\"drift\"").count(), 3, "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), 4, "{xml}");
    let summary = std::fs::read_to_string(&md).expect("summary file");
    assert!(summary.contains("| changed | 3 |"), "{summary}");
    assert!(
        summary.contains(&format!(
            "| `File[drift-motd]` | content → '{desired}' | would change |"
        )),
        "{summary}"
    );

    // The same job in human words: the grouped section after the node lines.
    let show: Vec<String> = ["job", "show", &job, "--color", "never"]
        .iter()
        .map(|s| (*s).to_owned())
        .chain(conn[2..].iter().cloned())
        .collect();
    let refs: Vec<&str> = show.iter().map(String::as_str).collect();
    let (code, text, err) = kick_text(&refs).await;
    assert_eq!(code, 2, "{text}\n{err}");
    let section = text
        .split_once("Would change (2 changes on 3 nodes):\n")
        .unwrap_or_else(|| panic!("no drift section:\n{text}"))
        .1;
    assert!(
        section.starts_with(&format!(
            "  File[drift-motd] content → '{desired}'\n    3 nodes: {}\n  File[drift-extra] content",
            drifted.join(", ")
        )),
        "{text}"
    );

    // 3. enforce where the review found drift, and only there.
    let from = format!("{job}:changed");
    let (code, doc, err) = json(argv(&[
        "agent",
        "--nodes-from",
        &from,
        "--no-noop",
        "--format",
        "json",
    ]))
    .await;
    assert_eq!(code, 2, "{doc:#}\n{err}");
    let mut ran = names(&doc["nodes"]);
    ran.sort();
    assert_eq!(ran, drifted, "{doc:#}");
    assert!(
        doc["drift"]
            .as_array()
            .expect("drift")
            .iter()
            .all(|d| d["status"] == "success"),
        "{doc:#}"
    );

    // 4. a last review finds nothing.
    let (code, doc, err) = json(argv(&[
        "agent", "--nodes", &all, "--noop", "--format", "json",
    ]))
    .await;
    assert_eq!(code, 0, "{doc:#}\n{err}");
    assert_eq!(doc["drift"], serde_json::json!([]), "{doc:#}");

    emu.stop().await;
}
