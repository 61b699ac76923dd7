//! Ctrl-C while watching: stop, force stop, detach.

use std::time::Duration;

use crate::harness::{Emu, args, ctrl_c, kick_bin, kick_with, node};

async fn press_after(tx: tokio::sync::mpsc::UnboundedSender<()>, delays_ms: &[u64]) {
    for d in delays_ms {
        tokio::time::sleep(Duration::from_millis(*d)).await;
        // kick may have finished (and dropped the receiver) already.
        let _ = tx.send(());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn first_ctrl_c_stops_the_job_and_running_nodes_finish() {
    // One node at a time: the first runs when Ctrl-C comes, the others never start.
    let emu = Emu::start_with(
        vec![
            node("a", "unchanged", 1.0),
            node("b", "unchanged", 1.0),
            node("c", "unchanged", 1.0),
        ],
        |b| b.concurrency(1),
    )
    .await;
    let (tx, ints) = ctrl_c();
    let (r, ()) = tokio::join!(
        kick_with(
            args(&["agent", "--nodes", "a,b,c", "--format", "json"], &emu),
            ints
        ),
        press_after(tx, &[500])
    );
    assert_eq!(r.code, 4, "{r:?}");
    assert!(
        r.stderr.contains("asked the orchestrator to stop job"),
        "{}",
        r.stderr
    );
    let doc = r.json();
    crate::schema::assert_valid(&doc);
    assert_eq!(doc["job"]["state"], "stopped");
    assert_eq!(
        doc["summary"]["unchanged"], 1,
        "the running node finished: {doc:#}"
    );
    assert_eq!(doc["summary"]["skipped"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn second_ctrl_c_force_stops_running_nodes() {
    let emu = Emu::start(vec![
        node("a", "unchanged", 30.0),
        node("b", "unchanged", 30.0),
    ])
    .await;
    let (tx, ints) = ctrl_c();
    let started = std::time::Instant::now();
    let (r, ()) = tokio::join!(
        kick_with(
            args(&["agent", "--nodes", "a,b", "--format", "json"], &emu),
            ints
        ),
        press_after(tx, &[500, 300])
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "force stop did not end the runs"
    );
    assert_eq!(r.code, 4, "{r:?}");
    assert!(r.stderr.contains("force-stopping job"), "{}", r.stderr);
    let doc = r.json();
    assert_eq!(doc["summary"]["stopped"], 2, "{doc:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn third_ctrl_c_detaches_and_the_job_can_be_reattached() {
    let emu = Emu::start(vec![node("a", "changed", 2.0)]).await;
    let (tx, ints) = ctrl_c();
    // Three quick presses: stop, force stop, detach, before the job is reported.
    for _ in 0..3 {
        tx.send(()).unwrap();
    }
    let r = kick_with(args(&["agent", "--nodes", "a"], &emu), ints).await;
    assert_eq!(r.code, 130, "{r:?}");
    let id: String = r
        .stderr
        .split("kick job watch ")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert!(r.stderr.contains("Detached from job"), "{}", r.stderr);
    let w = kick_with(args(&["job", "watch", &id], &emu), kick::Interrupts::none()).await;
    assert!(w.code == 4 || w.code == 2, "{w:?}");
}

/// A real SIGINT to the binary: the first stops the job, kick keeps
/// watching and reports it.
#[tokio::test(flavor = "multi_thread")]
async fn sigint_to_the_binary_stops_the_job() {
    let emu = Emu::start_with(
        vec![node("a", "unchanged", 1.5), node("b", "unchanged", 1.5)],
        |b| b.concurrency(1),
    )
    .await;
    let child = kick_bin(emu.dir.path())
        .args(args(&["agent", "--nodes", "a,b"], &emu))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let pid = child.id().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("asked the orchestrator to stop job"),
        "{stderr}"
    );
}

/// Three SIGINTs in quick succession each count: stop, force-stop, detach (or stop the
/// listing, when the job has just ended).
#[tokio::test(flavor = "multi_thread")]
async fn fast_sigints_each_count() {
    // The force-stop can end the job before the third press is delivered (it comes 3 ms
    // after the second; kick counts every signal delivered, but two sent at once can merge
    // in the kernel): kick then rightly reports the stopped job (exit 4). That race is tried
    // again, up to three times.
    for attempt in 1..=3 {
        let (code, seen) = three_fast_sigints().await;
        assert!(
            seen.contains("asked the orchestrator to stop job"),
            "{seen}"
        );
        assert!(seen.contains("force-stopping job"), "{seen}");
        if code == Some(4) && !seen.contains("Detached from job") && attempt < 3 {
            continue;
        }
        assert_eq!(code, Some(130), "{seen}");
        // The third press detaches; when the job ended just before it, it stops the
        // listing of the results instead: it counted either way.
        assert!(
            seen.contains("Detached from job") || seen.contains("stopped listing the results"),
            "{seen}"
        );
        return;
    }
}

/// Follows a 5 s job, sends three SIGINTs (20 ms, then 3 ms apart) once it is followed;
/// kick's exit code and stderr.
async fn three_fast_sigints() -> (Option<i32>, String) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
    let emu = Emu::start(vec![node("a", "unchanged", 5.0)]).await;
    let mut child = kick_bin(emu.dir.path())
        .args(args(&["agent", "--nodes", "a"], &emu))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the job is being followed (the handler is in place long before).
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("Job ") {
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(20), stderr.read_line(&mut line))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "kick ended early: {seen}");
        seen.push_str(&line);
    }
    let pid = child.id().unwrap().to_string();
    let status = std::process::Command::new("sh")
        .args([
            "-c",
            "kill -INT $0; sleep 0.02; kill -INT $0; sleep 0.003; kill -INT $0",
            &pid,
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let code = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    stderr.read_to_string(&mut seen).await.unwrap();
    (code.code(), seen)
}
