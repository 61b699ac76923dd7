//! A rollout on the real stack: `kick agent --query` resolved by the real PuppetDB (the
//! rollout's agent runs report to it through the puppetserver's PuppetDB terminus), four simulated
//! nodes in two waves of two, one of them with a broken catalog (its environment does not
//! compile): the failure budget of 0 stops the rollout, the second wave never starts.

use std::time::{Duration, SystemTime};

use kick_e2e::{LocalNodes, PuppetDb, Stack};
use serde_json::Value;

const TOKEN: &str = "e2e-rollout-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_query_rollout_through_puppetdb_stops_at_a_broken_catalog() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let Some(pdb) = PuppetDb::from_env() else {
        return;
    };
    let tag = format!("roll{:04x}", fastrand::u16(..));
    let emu = LocalNodes::start_with(&stack, &tag, 4, TOKEN, Some(&pdb)).await;
    // The nodes become known to PuppetDB as a puppetserver makes them known: facts through
    // its command API (the rollout's own agent runs then send their reports the real way).
    let names = emu.certnames();
    pdb.store_facts(
        &names,
        &serde_json::json!({"kick_e2e": tag}),
        Duration::from_secs(60),
    );
    let since = humantime_now();
    // The second node (by certname) gets a catalog that does not compile.
    let mut sorted: Vec<&str> = names.clone();
    sorted.sort_unstable();
    let broken = emu
        .nodes
        .iter()
        .find(|n| n.certname() == sorted[1])
        .expect("node");
    let st = broken
        .puppet("config")
        .args(["set", "environment", "broken", "--section", "agent"])
        .status()
        .expect("puppet config set");
    assert!(st.success());

    let pid = std::process::id();
    let pql = format!(
        "inventory[certname] {{ facts.kick_e2e = \"{tag}\" and certname ~ \"^{tag}[0-9]-{pid}-\" }}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).expect("token");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
    }
    let token = token_file.display().to_string();
    let argv = [
        "agent",
        "--query",
        &pql,
        "--batch",
        "2",
        "--max-failures",
        "0",
        "--format",
        "json",
        "--puppetdb-url",
        pdb.url(),
        "--service-url",
        &emu.url,
        "--token-file",
        &token,
    ];
    let (code, doc, err) = kick(&argv, dir.path()).await;
    assert_eq!(code, 6, "{doc:#}\n{err}");
    assert_eq!(
        doc["rollout"]["status"], "stopped at its failure budget",
        "{doc:#}"
    );
    let waves = doc["rollout"]["waves"].as_array().expect("waves");
    assert_eq!(waves.len(), 2);
    assert!(waves[0]["job"].is_string());
    assert_eq!(waves[1]["state"], "not_started");
    let by_name = |n: &str| {
        doc["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .find(|x| x["name"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("{n} in {doc:#}"))
    };
    // Wave 1 is the first two by certname (PuppetDB's answer, sorted).
    assert_eq!(by_name(sorted[0])["wave"], 1);
    assert_eq!(by_name(sorted[0])["outcome"], "changed");
    assert_eq!(by_name(sorted[1])["wave"], 1);
    assert_eq!(by_name(sorted[1])["outcome"], "failed");
    for n in &sorted[2..] {
        let node = by_name(n);
        assert_eq!(node["wave"], 2);
        assert_eq!(node["outcome"], "skipped");
        assert_eq!(node["error"]["msg"], "not started: budget reached");
    }
    // PuppetDB got both wave-1 runs' reports through the puppetserver, the broken one failed.
    pdb.wait_for_reports(&sorted[..2], &since, Duration::from_secs(60));
    let t0 = std::time::Instant::now();
    loop {
        let rows = pdb
            .query(&format!(
                "nodes[certname, latest_report_status] {{ certname = \"{}\" }}",
                sorted[1]
            ))
            .unwrap_or(Value::Null);
        if rows[0]["latest_report_status"] == "failed" {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "{rows}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The state file records it.
    let id = doc["rollout"]["id"].as_str().expect("id").to_owned();
    assert!(
        dir.path()
            .join("rollouts")
            .join(format!("{id}.json"))
            .is_file()
    );
    emu.stop().await;
}

fn humantime_now() -> String {
    // A second back covers the clocks' granularity.
    humantime::format_rfc3339_seconds(SystemTime::now() - Duration::from_secs(1)).to_string()
}

/// kick in-process, state files under `dir/rollouts`; (exit code, JSON document, stderr).
async fn kick(args: &[&str], dir: &std::path::Path) -> (u8, Value, String) {
    crate::kick_cli::kick_in(args, Some(&dir.join("rollouts"))).await
}
