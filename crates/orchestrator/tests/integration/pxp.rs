//! Tasks start as pxp-agent starts them: the cached file as argv, only the
//! node's environment plus `PT_*`, cwd `/`, fds 0-2, the request's parameter
//! order with `_task` appended, `_installdir` for multi-file tasks, files
//! checked against their sha256.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use crate::common::{Binary, Server, config, scratch_task, setup, write_scratch};

fn lines(output: &str) -> BTreeMap<String, String> {
    output
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

async fn invocation(b: &Binary) -> BTreeMap<String, String> {
    // Sent as written: the key order is part of what is checked.
    let body = r#"{"task": "fixture::invocation", "params": {"zeta": 1, "alpha": "a"},
                   "scope": {"nodes": ["node-0000.example"]}}"#;
    let (s, c) = b.send(Some(body.to_owned()), "/command/task").await;
    assert_eq!(s, 202, "{c}");
    let job = c["job"]["name"].as_str().unwrap().to_owned();
    for _ in 0..500 {
        let (_, j) = b.call(None, &format!("/jobs/{job}")).await;
        if j["state"] == "finished" {
            let (_, n) = b.call(None, &format!("/jobs/{job}/nodes")).await;
            return lines(n["items"][0]["result"]["_output"].as_str().unwrap());
        }
        assert_ne!(j["state"], "failed", "{j}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("job {job} did not finish");
}

#[tokio::test]
async fn a_task_sees_what_pxp_agent_gives_it() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &[("node-0000.example".into(), "0".into())]);
    let b = Binary::start(dir.path(), &[]);
    let got = invocation(&b).await;
    // The sha256-named copy in the task cache runs, not the module's file.
    let argv0 = &got["argv0"];
    let cache = dir.path().join("state/task-cache");
    assert!(argv0.starts_with(cache.to_str().unwrap()), "{argv0}");
    assert!(argv0.ends_with("/invocation.sh"), "{argv0}");
    let sha = std::path::Path::new(argv0)
        .parent()
        .and_then(|p| p.file_name())
        .unwrap()
        .to_str()
        .unwrap();
    let want = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(
            std::fs::read(crate::common::fixtures().join("modules/fixture/tasks/invocation.sh"))
                .unwrap(),
        ))
    };
    assert_eq!(sha, want);
    assert_eq!(got["cwd"], "/");
    // ls's own directory handle is 3; the service's fd 7 is not inherited.
    assert_eq!(got["fds"], "0 1 2 3 ");
    assert_eq!(
        got["env"], "NODE_NAME PATH PT__task PT_alpha PT_zeta PWD SLEEP ",
        "only the node's environment, PATH and PT_* (PWD is the shell's)"
    );
    assert_eq!(
        got["stdin"],
        r#"{"zeta":1,"alpha":"a","_task":"fixture::invocation"}"#
    );
    assert_eq!(got["pt_task"], "fixture::invocation");
    assert_eq!(got["nice"], "19", "the default keeps simulated nodes nice");
    b.kill();

    let b = Binary::start(dir.path(), &["--task-nice", "0"]);
    assert_eq!(
        invocation(&b).await["nice"],
        "0",
        "as pxp-agent with --task-nice 0"
    );
    b.kill();
}

#[tokio::test]
async fn a_multi_file_task_gets_an_install_directory() {
    let s = Server::start(config(1).build()).await;
    let job = s
        .task(
            "fixture::installdir",
            json!({"b": 2, "a": 1}),
            &["node-0000.example"],
        )
        .await;
    let j = s.wait(&job).await;
    assert_eq!(j["state"], "finished", "{j}");
    let r = &s.nodes(&job).await[0]["result"];
    let dir = r["pt_installdir"].as_str().unwrap();
    assert!(dir.contains("temp_task_"), "{r}");
    assert_eq!(r["helper"], "helper data");
    assert_eq!(r["argv0"], format!("{dir}/fixture/tasks/installdir.sh"));
    assert_eq!(
        r["stdin"],
        json!({"b": 2, "a": 1, "_installdir": dir, "_task": "fixture::installdir"})
    );
    assert!(!std::path::Path::new(dir).exists(), "removed after the run");
    let (_, t) = s.get("/tasks/fixture/installdir").await;
    let files: Vec<&str> = t["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["filename"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["installdir.sh", "fixture/files/helper.txt"]);
    s.stop().await;
}

#[tokio::test]
async fn a_task_file_changed_after_the_job_started_is_refused() {
    let (modules, script) = scratch_task(1);
    let s = Server::start(config(1).modulepath(modules.path()).concurrency(1).build()).await;
    // The only slot is taken, so the next job's node starts later.
    let busy = s
        .task(
            "fixture::sleep",
            json!({"seconds": 1}),
            &["node-0000.example"],
        )
        .await;
    let job = s
        .task("scratch::t", json!({}), &["node-0000.example"])
        .await;
    write_scratch(&script, 2);
    s.wait(&busy).await;
    let j = s.wait(&job).await;
    assert_eq!(j["state"], "failed", "{j}");
    let n = &s.nodes(&job).await[0];
    let msg = n["result"]["_error"]["msg"].as_str().unwrap();
    assert!(msg.contains("does not match its sha256"), "{msg}");
    assert_eq!(
        n["result"]["_error"]["kind"],
        "puppetlabs.pxp-agent/execution-error"
    );
    // A new job takes the new file.
    let job = s
        .task("scratch::t", json!({}), &["node-0000.example"])
        .await;
    s.wait(&job).await;
    assert_eq!(s.nodes(&job).await[0]["result"], json!({"v": 2}));
    s.stop().await;
}
