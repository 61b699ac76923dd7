//! The agent flags that reach the job itself: `--nodes -` and `--params -`
//! from standard input, `--userdata` stored beside kick's marker, and the
//! deploy keys `kick deploy` sends.

use std::process::Stdio;
use std::time::Duration;

use orchestrator_client::{Client, MARKER_KEY, RetryPolicy, Settings};
use tokio::io::AsyncWriteExt;

use crate::harness::{Emu, args, kick_bin, node};

pub fn client(emu: &Emu) -> Client {
    let settings = Settings {
        service_url: emu.url.clone(),
        cacert: None,
        token_file: Some(emu.token_file()),
        environment: None,
        insecure: false,
        request_timeout: Duration::from_secs(10),
        retry: RetryPolicy::default(),
    };
    Client::new(&settings).unwrap().0
}

/// Runs the binary with `stdin` piped in; returns (exit code, stdout, stderr).
pub async fn with_stdin(emu: &Emu, parts: &[&str], stdin: &str) -> (u8, String, String) {
    let mut child = kick_bin(emu.dir.path())
        .args(args(parts, emu))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.as_bytes()).await.unwrap();
    drop(pipe);
    let out = child.wait_with_output().await.unwrap();
    (
        out.status.code().map_or(255, |c| c as u8),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn nodes_come_from_stdin_and_userdata_is_stored_beside_the_marker() {
    let emu = Emu::start(vec![
        node("a.example.com", "unchanged", 0.0),
        node("b.example.com", "unchanged", 0.0),
        node("c.example.com", "unchanged", 0.0),
    ])
    .await;
    let (code, stdout, stderr) = with_stdin(
        &emu,
        &[
            "agent",
            "--nodes",
            "-",
            "--userdata",
            "ticket=CHG-1",
            "--userdata",
            "attempt=2",
            "--format",
            "json",
        ],
        "# from the inventory\na.example.com\nb.example.com  # web\n",
    )
    .await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let names: Vec<&str> = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["name"].as_str())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    let id = doc["job"]["name"].as_str().unwrap();
    let job = client(&emu).job(id).await.unwrap();
    let u = job.userdata.expect("userdata stored with the job");
    assert_eq!(u["ticket"], "CHG-1");
    assert_eq!(u["attempt"], 2);
    assert!(u[MARKER_KEY].as_str().is_some_and(|m| !m.is_empty()), "{u}");
}

#[tokio::test(flavor = "multi_thread")]
async fn params_come_from_stdin_and_reach_the_task() {
    let emu = Emu::start(vec![node("a.example.com", "unchanged", 0.0)]).await;
    let (code, stdout, stderr) = with_stdin(
        &emu,
        &[
            "agent",
            "--nodes",
            "a.example.com",
            "--params",
            "-",
            "--debug",
            "--format",
            "json",
        ],
        r#"{"wait_for_lock": 7}"#,
    )
    .await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let id = doc["job"]["name"].as_str().unwrap();
    let job = client(&emu).job(id).await.unwrap();
    let params = &job.options["params"];
    assert_eq!(params["wait_for_lock"], 7, "{params}");
    assert_eq!(params["debug"], true, "{params}");

    // Both from stdin at once cannot be.
    let (code, _, stderr) = with_stdin(
        &emu,
        &["agent", "--nodes", "-", "--params", "-"],
        "a.example.com\n",
    )
    .await;
    assert_eq!(code, 1);
    assert!(stderr.contains("both read standard input"), "{stderr}");
    // Nor is a parameter given twice, nor the marker's key.
    let (code, _, stderr) = with_stdin(
        &emu,
        &[
            "agent",
            "--nodes",
            "a.example.com",
            "--debug",
            "--params",
            "-",
        ],
        r#"{"debug": false}"#,
    )
    .await;
    assert_eq!(code, 1);
    assert!(stderr.contains("`debug`"), "{stderr}");
    let (code, _, stderr) = with_stdin(
        &emu,
        &[
            "agent",
            "--nodes",
            "a.example.com",
            "--userdata",
            "kick_marker=x",
        ],
        "",
    )
    .await;
    assert_eq!(code, 1);
    assert!(stderr.contains("kick's own"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn task_run_and_deploy_store_userdata_too() {
    let emu = Emu::start(vec![node("a.example.com", "unchanged", 0.0)]).await;
    for cmd in [
        &["task", "run", "fixture::echo", "message=hi"][..],
        &["deploy"],
    ] {
        let mut parts = cmd.to_vec();
        parts.extend([
            "--nodes",
            "a.example.com",
            "--userdata",
            "ticket=CHG-2",
            "--format",
            "json",
        ]);
        let r = emu.kick(&parts).await;
        assert_eq!(r.code, 0, "{cmd:?}: {r:?}");
        let id = r.json()["job"]["name"].as_str().unwrap().to_owned();
        let job = client(&emu).job(&id).await.unwrap();
        let u = job.userdata.expect("userdata stored with the job");
        assert_eq!(u["ticket"], "CHG-2", "{cmd:?}");
        assert!(u[MARKER_KEY].is_string(), "{cmd:?}: {u}");
    }
}
