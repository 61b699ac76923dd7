//! Rollouts against the orchestrator, with the fixture psick double failing on chosen nodes:
//! waves and their sizes, the canary, the failure budget stopping the running wave (node
//! states on the server prove it), Ctrl-C, resume without a wave twice, `--nodes-from`,
//! `kick job rerun` and `--dry-run`.

use std::path::Path;
use std::time::{Duration, Instant};

use kick_orchestrator::NodeSpec;
use orchestrator_client::{Client, JobsQuery, Overrides, Settings};
use serde_json::Value;

use crate::harness::{Emu, Run, args, ctrl_c, kick_in, node};

/// Nodes `r1..rN`; those in `failing` fail, each sleeps `sleep` seconds.
fn fleet(n: usize, failing: &[usize], sleep: f64) -> Vec<NodeSpec> {
    (1..=n)
        .map(|i| {
            let status = if failing.contains(&i) {
                "failed"
            } else {
                "unchanged"
            };
            node(&format!("r{i}"), status, sleep)
        })
        .collect()
}

fn names(n: usize) -> String {
    (1..=n)
        .map(|i| format!("r{i}"))
        .collect::<Vec<_>>()
        .join(",")
}

async fn run(emu: &Emu, state: &Path, parts: &[&str]) -> Run {
    kick_in(args(parts, emu), kick::Interrupts::none(), Some(state)).await
}

fn client(emu: &Emu) -> Client {
    client_for(&emu.url, emu.token_file())
}

fn client_for(url: &str, token: std::path::PathBuf) -> Client {
    let (s, _) = Settings::load_from(
        None,
        None,
        &|_| None,
        Overrides {
            service_url: Some(url.to_owned()),
            token_file: Some(token),
            ..Overrides::default()
        },
    )
    .unwrap();
    Client::new(&s).unwrap().0
}

/// The server's jobs, oldest first.
async fn jobs(emu: &Emu) -> Vec<orchestrator_types::Job> {
    let mut l = client(emu)
        .jobs(&JobsQuery {
            limit: Some(100),
            ..JobsQuery::default()
        })
        .await
        .unwrap()
        .items;
    l.sort_by_key(|j| j.name.parse::<u64>().unwrap_or(0));
    l
}

async fn job_nodes(emu: &Emu, job: &str) -> Vec<(String, String)> {
    let page = client(emu)
        .nodes_page(
            job,
            &orchestrator_client::NodesQuery {
                limit: Some(100),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    page.items
        .into_iter()
        .map(|n| (n.name, n.state.as_str().to_owned()))
        .collect()
}

fn node_waves(doc: &Value) -> Vec<(String, u64, String)> {
    doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap().to_owned(),
                n["wave"].as_u64().unwrap(),
                n["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn waves_are_jobs_of_the_batch_size_in_the_order_given() {
    let emu = Emu::start(fleet(5, &[], 0.0)).await;
    let state = tempfile::tempdir().unwrap();
    let r = run(
        &emu,
        state.path(),
        &[
            "agent",
            "--nodes",
            "r3,r1,r2,r5,r4",
            "--batch",
            "2",
            "--format",
            "json",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{r:?}");
    let doc = r.json();
    let id = doc["rollout"]["id"].as_str().unwrap().to_owned();
    let waves: Vec<(String, u64)> = node_waves(&doc)
        .into_iter()
        .map(|(n, w, _)| (n, w))
        .collect();
    let want = [("r3", 1), ("r1", 1), ("r2", 2), ("r5", 2), ("r4", 3)];
    let mut got = waves.clone();
    got.sort_by_key(|g| g.1);
    assert_eq!(got.len(), 5);
    for (name, wave) in want {
        assert!(
            waves.contains(&(name.to_owned(), wave)),
            "{name} in wave {wave}: {waves:?}"
        );
    }
    assert_eq!(doc["summary"]["unchanged"], 5);
    assert_eq!(doc["rollout"]["status"], "finished");
    // On the server: three jobs, each with the rollout's userdata and description.
    let jobs = jobs(&emu).await;
    assert_eq!(jobs.len(), 3);
    for (i, j) in jobs.iter().enumerate() {
        let ud = j
            .userdata
            .clone()
            .or_else(|| j.options.get("userdata").cloned())
            .unwrap();
        assert_eq!(ud["kick_rollout"], id.as_str());
        assert_eq!(ud["kick_wave"], i as u64 + 1);
        assert_eq!(ud["kick_waves"], 3);
        assert!(ud["kick_marker"].is_string());
        let desc = j
            .description
            .clone()
            .or_else(|| j.options["description"].as_str().map(str::to_owned))
            .unwrap();
        assert!(
            desc.starts_with(&format!("kick rollout {id} wave {}/3", i + 1)),
            "{desc}"
        );
        let want_nodes = match i {
            0 => vec!["r1", "r3"],
            1 => vec!["r2", "r5"],
            _ => vec!["r4"],
        };
        let mut got: Vec<String> = job_nodes(&emu, &j.name)
            .await
            .into_iter()
            .map(|n| n.0)
            .collect();
        got.sort();
        assert_eq!(got, want_nodes);
    }
    // The state file: 0600, every wave done.
    let file = state.path().join(format!("{id}.json"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let saved: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(saved["status"], "finished");
    assert!(
        saved["waves"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["state"] == "done")
    );
    // kick rollout list / show read it back.
    let r = kick_in(
        vec!["rollout".into(), "list".into()],
        kick::Interrupts::none(),
        Some(state.path()),
    )
    .await;
    assert!(
        r.stdout.contains(&id) && r.stdout.contains("3/3 waves"),
        "{r:?}"
    );
    let r = run(&emu, state.path(), &["rollout", "show", &id]).await;
    assert!(r.stdout.contains("wave 3/3: 1 nodes, done"), "{r:?}");
}

#[tokio::test]
async fn the_budget_stops_the_running_wave_and_starts_no_more() {
    // Two at a time: r1 runs 1.5 s, r2 fails after 0.3 s, which frees its slot for r3 (it
    // starts before the stop can arrive, and finishes); r4 waits for a slot and never starts.
    let mut nodes = fleet(8, &[], 1.5);
    nodes[1] = node("r2", "failed", 0.3);
    let emu = Emu::start_with(nodes, |b| b.concurrency(2)).await;
    let state = tempfile::tempdir().unwrap();
    let r = run(
        &emu,
        state.path(),
        &[
            "agent",
            "--nodes",
            &names(8),
            "--batch",
            "4",
            "--max-failures",
            "0",
            "--format",
            "json",
        ],
    )
    .await;
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stderr.contains("failure budget is reached"),
        "{}",
        r.stderr
    );
    let doc = r.json();
    assert_eq!(doc["rollout"]["status"], "stopped at its failure budget");
    let outcomes = node_waves(&doc);
    for n in ["r5", "r6", "r7", "r8"] {
        let (_, wave, outcome) = outcomes.iter().find(|o| o.0 == n).unwrap();
        assert_eq!(
            (*wave, outcome.as_str()),
            (2, "skipped"),
            "{n}: {outcomes:?}"
        );
    }
    let not_started = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "r5")
        .unwrap();
    assert_eq!(not_started["error"]["msg"], "not started: budget reached");
    // The server: one job only, stopped; running nodes finished, the waiting one never ran.
    let jobs = jobs(&emu).await;
    assert_eq!(jobs.len(), 1, "no second wave was submitted");
    assert_eq!(jobs[0].state.as_str(), "stopped");
    let states = job_nodes(&emu, &jobs[0].name).await;
    let state_of = |n: &str| states.iter().find(|s| s.0 == n).unwrap().1.clone();
    assert_eq!(state_of("r2"), "failed");
    assert_eq!(
        state_of("r1"),
        "finished",
        "a running node finishes: {states:?}"
    );
    assert_eq!(state_of("r4"), "skipped", "{states:?}");
    // Resume refuses a rollout stopped at its budget, and says what to do.
    let id = doc["rollout"]["id"].as_str().unwrap();
    let r = run(&emu, state.path(), &["rollout", "resume", id]).await;
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains(&format!("--nodes-from rollout:{id}:failed")),
        "{r:?}"
    );
}

#[tokio::test]
async fn a_failing_canary_stops_everything_and_a_good_one_lets_the_rest_run() {
    let emu = Emu::start(fleet(4, &[1], 0.0)).await;
    let state = tempfile::tempdir().unwrap();
    let r = run(
        &emu,
        state.path(),
        &[
            "agent",
            "--nodes",
            &names(4),
            "--canary",
            "1",
            "--batch",
            "2",
        ],
    )
    .await;
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("wave 1/3 (canary)"), "{}", r.stderr);
    assert!(
        r.stdout.contains("(not started: budget reached)"),
        "{}",
        r.stdout
    );
    assert_eq!(jobs(&emu).await.len(), 1);

    let emu = Emu::start(fleet(4, &[4], 0.0)).await;
    let r = run(
        &emu,
        state.path(),
        &[
            "agent",
            "--nodes",
            &names(4),
            "--canary",
            "1",
            "--batch",
            "2",
            "--format",
            "jsonl",
        ],
    )
    .await;
    assert_eq!(r.code, 4, "{r:?}");
    let lines: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let waves: Vec<&Value> = lines.iter().filter(|l| l["type"] == "wave").collect();
    assert_eq!(waves.len(), 3);
    assert_eq!(waves[0]["canary"], true);
    let nodes: Vec<&Value> = lines.iter().filter(|l| l["type"] == "node").collect();
    assert_eq!(nodes.len(), 4);
    assert!(
        nodes
            .iter()
            .all(|n| n["wave"].is_u64() && n["rollout"].is_string())
    );
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "summary");
    assert_eq!(last["summary"]["failed"], 1);
    assert_eq!(last["rollout"]["waves"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn ctrl_c_stops_the_wave_then_resume_runs_the_rest_once() {
    let emu = Emu::start(fleet(4, &[], 1.0)).await;
    let state = tempfile::tempdir().unwrap();
    let (press, interrupts) = ctrl_c();
    let argv = args(
        &[
            "agent",
            "--nodes",
            &names(4),
            "--batch",
            "2",
            "--format",
            "json",
        ],
        &emu,
    );
    // Once the first wave runs, one press (from another task; kick runs on this one).
    let url = emu.url.clone();
    let token = emu.token_file();
    let presser = tokio::spawn(async move {
        let c = client_for(&url, token);
        let t0 = Instant::now();
        while c
            .jobs(&JobsQuery::default())
            .await
            .unwrap()
            .items
            .is_empty()
        {
            assert!(t0.elapsed() < Duration::from_secs(10));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        press.send(()).unwrap();
    });
    let r = kick_in(argv, interrupts, Some(state.path())).await;
    presser.await.unwrap();
    assert_eq!(r.code, 4, "{r:?}");
    let doc = r.json();
    assert_eq!(doc["rollout"]["status"], "stopped");
    let id = doc["rollout"]["id"].as_str().unwrap().to_owned();
    let skipped: Vec<&Value> = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["error"]["msg"] == "not started: stopped")
        .collect();
    assert_eq!(skipped.len(), 2, "{doc:#}");
    assert_eq!(jobs(&emu).await.len(), 1);

    let r = run(
        &emu,
        state.path(),
        &["rollout", "resume", &id, "--format", "json"],
    )
    .await;
    assert_eq!(r.code, 0, "{r:?}");
    let jobs = jobs(&emu).await;
    assert_eq!(jobs.len(), 2, "only wave 2 was submitted");
    let mut got: Vec<String> = job_nodes(&emu, &jobs[1].name)
        .await
        .into_iter()
        .map(|n| n.0)
        .collect();
    got.sort();
    assert_eq!(got, ["r3", "r4"]);
}

#[tokio::test]
async fn resume_finds_a_wave_submitted_but_not_recorded() {
    // kick was killed right after submitting wave 2: its marker is in the state file, the
    // job on the server, the job id nowhere.
    let emu = Emu::start(fleet(3, &[], 0.0)).await;
    let state = tempfile::tempdir().unwrap();
    let r = run(
        &emu,
        state.path(),
        &[
            "agent",
            "--nodes",
            &names(3),
            "--batch",
            "1",
            "--format",
            "json",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{r:?}");
    let id = r.json()["rollout"]["id"].as_str().unwrap().to_owned();
    let file = state.path().join(format!("{id}.json"));
    let mut saved: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    saved["status"] = "running".into();
    saved["waves"][1]["job"] = Value::Null;
    saved["waves"][1]["state"] = "pending".into();
    saved["waves"][2] = serde_json::json!({"nodes": ["r3"], "state": "pending"});
    std::fs::write(&file, serde_json::to_vec(&saved).unwrap()).unwrap();
    let before = jobs(&emu).await.len();
    assert_eq!(before, 3);
    let r = run(
        &emu,
        state.path(),
        &["rollout", "resume", &id, "--format", "json"],
    )
    .await;
    assert_eq!(r.code, 0, "{r:?}");
    // Wave 2 was found (by its marker), wave 3 by its rollout and wave numbers: nothing new.
    assert_eq!(jobs(&emu).await.len(), 3, "{r:?}");
    let saved: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(saved["status"], "finished");
    assert!(saved["waves"][1]["job"].is_string());
}

#[tokio::test]
async fn nodes_from_takes_each_outcome_and_job_rerun_runs_the_same_task() {
    let mut nodes = fleet(4, &[2, 4], 0.0);
    nodes[0] = node("r1", "changed", 0.0);
    let emu = Emu::start(nodes).await;
    let state = tempfile::tempdir().unwrap();
    let r = run(
        &emu,
        state.path(),
        &[
            "agent",
            "--nodes",
            &names(4),
            "--tags",
            "ntp",
            "--format",
            "json",
        ],
    )
    .await;
    assert_eq!(r.code, 6, "{r:?}");
    let job = r.json()["job"]["name"].as_str().unwrap().to_owned();
    for (spec, want) in [
        (job.clone(), vec!["r2", "r4"]),
        (format!("{job}:failed"), vec!["r2", "r4"]),
        (format!("{job}:changed"), vec!["r1"]),
        (format!("{job}:unchanged"), vec!["r3"]),
        (format!("{job}:changed,unchanged"), vec!["r1", "r3"]),
    ] {
        let r = run(
            &emu,
            state.path(),
            &[
                "task",
                "run",
                "fixture::echo",
                "--nodes-from",
                &spec,
                "--format",
                "json",
            ],
        )
        .await;
        let doc = r.json();
        let mut got: Vec<&str> = doc["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap())
            .collect();
        got.sort();
        assert_eq!(got, want, "--nodes-from {spec}");
    }
    for bad in [format!("{job}:broken"), "x:failed".to_owned()] {
        let r = run(
            &emu,
            state.path(),
            &["task", "run", "fixture::echo", "--nodes-from", &bad],
        )
        .await;
        assert_eq!(r.code, 1, "{bad}: {r:?}");
    }
    let r = run(
        &emu,
        state.path(),
        &[
            "task",
            "run",
            "fixture::echo",
            "--nodes-from",
            &format!("{job}:errored"),
        ],
    )
    .await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("nothing to run"), "{r:?}");

    // job rerun: the failed nodes, the same task and parameters.
    let before = jobs(&emu).await.len();
    let r = run(
        &emu,
        state.path(),
        &["job", "rerun", &job, "--format", "json"],
    )
    .await;
    assert_eq!(r.code, 4, "{r:?}");
    let all = jobs(&emu).await;
    assert_eq!(all.len(), before + 1);
    let new = all.last().unwrap();
    assert_eq!(new.task(), Some("psick::puppet_agent"));
    assert_eq!(new.options["params"]["tags"], serde_json::json!(["ntp"]));
    let mut got: Vec<String> = job_nodes(&emu, &new.name)
        .await
        .into_iter()
        .map(|n| n.0)
        .collect();
    got.sort();
    assert_eq!(got, ["r2", "r4"]);
    let r = run(
        &emu,
        state.path(),
        &[
            "job", "rerun", &job, "--only", "changed", "--format", "json",
        ],
    )
    .await;
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(r.json()["nodes"][0]["name"], "r1");
}

#[tokio::test]
async fn dry_run_prints_the_plan_and_starts_nothing() {
    let mut nodes = fleet(5, &[], 0.0);
    nodes[4].connected = false;
    let emu = Emu::start(nodes).await;
    let state = tempfile::tempdir().unwrap();
    let r = run(
        &emu,
        state.path(),
        &[
            "agent",
            "--nodes",
            &names(5),
            "--batch",
            "40%",
            "--canary",
            "1",
            "--dry-run",
            "--format",
            "json",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{r:?}");
    let doc = r.json();
    assert_eq!(doc["dry_run"], true);
    let sizes: Vec<usize> = doc["waves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["nodes"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [1, 2, 2]);
    assert_eq!(doc["disconnected"], serde_json::json!(["r5"]));
    assert!(jobs(&emu).await.is_empty(), "a dry run starts nothing");
    assert_eq!(
        std::fs::read_dir(state.path()).unwrap().count(),
        0,
        "and records no rollout"
    );
    let r = run(
        &emu,
        state.path(),
        &["agent", "--nodes", &names(5), "--dry-run"],
    )
    .await;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("Dry run: psick::puppet_agent on 5 nodes in 1 wave"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("r5") && r.stdout.contains("not connected"),
        "{}",
        r.stdout
    );
    // --skip-disconnected leaves r5 out and says so.
    let r = run(
        &emu,
        state.path(),
        &[
            "agent",
            "--nodes",
            &names(5),
            "--skip-disconnected",
            "--batch",
            "2",
            "--format",
            "json",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("Leaving out 1 node") && r.stderr.contains("r5"),
        "{}",
        r.stderr
    );
    assert_eq!(r.json()["summary"]["total"], 4);
    // Flags that make no sense are refused.
    for bad in [
        vec!["agent", "--nodes", "r1", "--max-failures", "1"],
        vec!["agent", "--node-group", "g", "--batch", "2"],
        vec!["agent", "--nodes", "r1,r2", "--batch", "0"],
        vec![
            "agent",
            "--nodes",
            "r1,r2",
            "--batch",
            "2",
            "--batch-pause",
            "soon",
        ],
    ] {
        let r = run(&emu, state.path(), &bad).await;
        assert_eq!(r.code, 1, "{bad:?}: {r:?}");
    }
    let r = run(
        &emu,
        state.path(),
        &["agent", "--node-group", "g", "--batch", "2"],
    )
    .await;
    assert!(r.stderr.contains("--query"), "{r:?}");
}

#[tokio::test]
async fn pauses_separate_the_waves() {
    let emu = Emu::start(fleet(2, &[], 0.0)).await;
    let state = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let r = run(
        &emu,
        state.path(),
        &[
            "agent",
            "--nodes",
            "r1,r2",
            "--batch",
            "1",
            "--batch-pause",
            "1s",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{r:?}");
    assert!(t0.elapsed() >= Duration::from_secs(1), "{:?}", t0.elapsed());
    assert!(
        r.stderr.contains("Pausing 1s before wave 2/2"),
        "{}",
        r.stderr
    );
}

#[tokio::test]
async fn ctrl_c_during_a_pause_ends_the_rollout_there() {
    let emu = Emu::start(fleet(3, &[], 0.0)).await;
    let state = tempfile::tempdir().unwrap();
    let (press, interrupts) = ctrl_c();
    let argv = args(
        &[
            "agent",
            "--nodes",
            &names(3),
            "--batch",
            "1",
            "--batch-pause",
            "30s",
            "--format",
            "json",
        ],
        &emu,
    );
    let (url, token) = (emu.url.clone(), emu.token_file());
    let presser = tokio::spawn(async move {
        let c = client_for(&url, token);
        let t0 = Instant::now();
        // Wave 1 has ended (the pause has begun) once its job is finished.
        loop {
            let l = c.jobs(&JobsQuery::default()).await.unwrap().items;
            if l.first().is_some_and(|j| j.state.is_terminal()) {
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(10));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        press.send(()).unwrap();
    });
    let t0 = Instant::now();
    let r = kick_in(argv, interrupts, Some(state.path())).await;
    presser.await.unwrap();
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "the pause was cut short"
    );
    assert_eq!(r.code, 4, "{r:?}");
    let doc = r.json();
    assert_eq!(doc["rollout"]["status"], "stopped");
    assert_eq!(jobs(&emu).await.len(), 1);
}

/// The built binary, SIGKILLed while its second wave runs, then resumed: every node ran once.
#[tokio::test]
async fn resume_after_sigkill_runs_no_wave_and_no_node_twice() {
    let emu = Emu::start(fleet(3, &[], 1.0)).await;
    let home = emu.dir.path();
    let mut child = crate::harness::kick_bin(home)
        .args(args(
            &["agent", "--nodes", &names(3), "--batch", "1", "-q"],
            &emu,
        ))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while jobs(&emu).await.len() < 2 {
        assert!(t0.elapsed() < Duration::from_secs(20));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.start_kill().unwrap();
    let _ = child.wait().await;
    let dir = home.join(".local/state/kick/rollouts");
    let id = std::fs::read_dir(&dir)
        .unwrap()
        .find_map(|e| {
            e.ok()?
                .file_name()
                .into_string()
                .ok()?
                .strip_suffix(".json")
                .map(str::to_owned)
        })
        .expect("a state file");
    let r = crate::harness::run_bin(&emu, &["rollout", "resume", &id, "--format", "json"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    let all = jobs(&emu).await;
    assert_eq!(all.len(), 3, "one job per wave");
    let mut seen = Vec::new();
    for j in &all {
        seen.extend(job_nodes(&emu, &j.name).await.into_iter().map(|n| n.0));
    }
    seen.sort();
    assert_eq!(seen, ["r1", "r2", "r3"], "each node once");
    let doc = r.json();
    assert_eq!(doc["summary"]["total"], 3, "{doc:#}");
    assert_eq!(doc["rollout"]["status"], "finished");
}

#[tokio::test]
async fn retry_resubmits_transient_failures_only_in_a_follow_up_job() {
    let state = tempfile::tempdir().unwrap();
    let mut locked = node("r1", "locked-once", 0.0);
    locked.env.insert(
        "FIXTURE_ONCE".into(),
        state.path().join("r1-once").display().to_string(),
    );
    let emu = Emu::start(vec![
        locked,
        node("r2", "failed", 0.0),
        node("r3", "unchanged", 0.0),
    ])
    .await;
    let r = run(
        &emu,
        state.path(),
        &[
            "agent",
            "--nodes",
            "r1,r2,r3",
            "--retry",
            "2",
            "--retry-delay",
            "0s",
            "--format",
            "json",
        ],
    )
    .await;
    assert_eq!(r.code, 4, "{r:?}");
    let doc = r.json();
    // r1 twice (locked, then unchanged), r2 (a resource failure) once: never retried.
    let seen: Vec<(String, u64, String)> = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap().to_owned(),
                n["attempt"].as_u64().unwrap_or_else(|| panic!("{n}")),
                n["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        seen.contains(&("r1".into(), 1, "failed".into())),
        "{seen:?}"
    );
    assert!(
        seen.contains(&("r1".into(), 2, "unchanged".into())),
        "{seen:?}"
    );
    assert_eq!(seen.iter().filter(|s| s.0 == "r2").count(), 1, "{seen:?}");
    // Counted once each, by their last attempt.
    assert_eq!(doc["summary"]["total"], 3, "{doc:#}");
    assert_eq!(doc["summary"]["unchanged"], 2);
    assert_eq!(doc["summary"]["failed"], 1);
    let jobs = jobs(&emu).await;
    assert_eq!(jobs.len(), 2);
    let retry = &jobs[1];
    let ud = retry
        .userdata
        .clone()
        .or_else(|| retry.options.get("userdata").cloned())
        .unwrap();
    assert_eq!(ud["kick_attempt"], 2);
    assert_eq!(
        doc["rollout"]["waves"][0]["retries"],
        serde_json::json!([retry.name])
    );
    let names: Vec<String> = job_nodes(&emu, &retry.name)
        .await
        .into_iter()
        .map(|n| n.0)
        .collect();
    assert_eq!(names, ["r1"]);
    assert!(
        r.stderr.contains("Retrying 1 node of wave 1/1"),
        "{}",
        r.stderr
    );
}

/// kick killed while a retry ran, before and after it recorded the retry's job: the resumed
/// rollout follows that retry and sends none of its own.
#[tokio::test]
async fn resume_follows_a_retry_already_sent_and_sends_no_other() {
    let state = tempfile::tempdir().unwrap();
    let mut locked = node("r1", "locked-once", 0.0);
    locked.env.insert(
        "FIXTURE_ONCE".into(),
        state.path().join("r1-once").display().to_string(),
    );
    let emu = Emu::start(vec![locked, node("r2", "unchanged", 0.0)]).await;
    let r = run(
        &emu,
        state.path(),
        &[
            "agent",
            "--nodes",
            "r1,r2",
            "--retry",
            "2",
            "--retry-delay",
            "0s",
            "--format",
            "json",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{r:?}");
    let id = r.json()["rollout"]["id"].as_str().unwrap().to_owned();
    let sent = jobs(&emu).await;
    assert_eq!(sent.len(), 2, "the wave and one retry");
    let retry = &sent[1];
    let marker = retry
        .userdata
        .clone()
        .or_else(|| retry.options.get("userdata").cloned())
        .unwrap()["kick_marker"]
        .as_str()
        .expect("the retry carries its own marker")
        .to_owned();
    let file = state.path().join(format!("{id}.json"));
    let done: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(done["waves"][0]["retries"][0], retry.name.as_str());
    assert!(done["waves"][0].get("retry_marker").is_none(), "{done:#}");
    // As if killed while following the retry: the wave not done, the retry recorded (by its
    // job, then only by the marker saved before it was sent).
    for (retries, retry_marker) in [
        (serde_json::json!([retry.name]), Value::Null),
        (serde_json::json!([]), Value::from(marker.as_str())),
    ] {
        let mut saved = done.clone();
        saved["status"] = "running".into();
        saved["waves"][0]["state"] = "submitted".into();
        saved["waves"][0]["counts"] = Value::Null;
        saved["waves"][0]["retries"] = retries;
        saved["waves"][0]["retry_marker"] = retry_marker;
        std::fs::write(&file, serde_json::to_vec(&saved).unwrap()).unwrap();
        let r = run(
            &emu,
            state.path(),
            &["rollout", "resume", &id, "--format", "json"],
        )
        .await;
        assert_eq!(r.code, 0, "{r:?}");
        assert_eq!(jobs(&emu).await.len(), 2, "nothing sent again: {r:?}");
        let doc = r.json();
        assert_eq!(doc["summary"]["unchanged"], 2, "{doc:#}");
        assert_eq!(
            doc["rollout"]["waves"][0]["retries"],
            serde_json::json!([retry.name])
        );
        let after: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(after["status"], "finished");
        assert_eq!(
            after["waves"][0]["retries"],
            serde_json::json!([retry.name])
        );
    }
}
