//! `kick job ...`, `--no-wait` and reattaching.

use serde_json::Value;

use crate::harness::{Emu, args, kick, node, redact, run_bin};

#[tokio::test(flavor = "multi_thread")]
async fn no_wait_prints_the_id_and_watch_reattaches_with_the_same_exit_code() {
    let emu = Emu::start(vec![node("a", "changed", 0.5), node("b", "failed", 0.5)]).await;
    let r = run_bin(&emu, &["agent", "--nodes", "a,b", "--no-wait"]).await;
    assert_eq!(r.code, 0, "{r:?}");
    let id = r.stdout.trim().to_owned();
    assert!(id.parse::<u64>().is_ok(), "{r:?}");
    assert!(
        r.stderr.contains(&format!("kick job watch {id}")),
        "{}",
        r.stderr
    );

    let w = run_bin(&emu, &["job", "watch", &id]).await;
    assert_eq!(w.code, 6, "{w:?}");
    assert!(
        w.stdout.contains("a  ") || w.stdout.contains("a "),
        "{}",
        w.stdout
    );
    // Watching again after the end gives the same answer, as does show.
    let again = run_bin(&emu, &["job", "watch", &id, "--format", "json"]).await;
    assert_eq!(again.code, 6);
    let doc: Value = serde_json::from_str(&again.stdout).unwrap();
    crate::schema::assert_valid(&doc);
    assert_eq!(doc["job"]["name"], id.as_str());
    let show = run_bin(&emu, &["job", "show", &id]).await;
    assert_eq!(show.code, 6, "{show:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn job_list_show_and_stop() {
    let emu = Emu::start(vec![
        node("a", "unchanged", 0.0),
        node("b", "unchanged", 30.0),
    ])
    .await;
    let r = kick(&args(
        &["agent", "--nodes", "a", "--description", "first run"],
        &emu,
    ))
    .await;
    assert_eq!(r.code, 0, "{r:?}");
    let r = kick(&args(
        &["agent", "--nodes", "b", "--no-wait", "--format", "json"],
        &emu,
    ))
    .await;
    let started: Value = serde_json::from_str(&r.stdout).unwrap();
    let id = started["job"]["name"].as_str().unwrap().to_owned();

    let list = kick(&args(&["job", "list"], &emu)).await;
    assert_eq!(list.code, 0, "{list:?}");
    assert!(list.stdout.contains("first run"), "{}", list.stdout);
    assert!(list.stdout.lines().count() >= 3, "{}", list.stdout);
    let list = kick(&args(
        &["job", "list", "--format", "json", "--limit", "1"],
        &emu,
    ))
    .await;
    let items: Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(items.as_array().unwrap().len(), 1);
    let none = kick(&args(
        &["job", "list", "--type", "deploy", "--format", "json"],
        &emu,
    ))
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&none.stdout).unwrap(),
        serde_json::json!([])
    );

    // A running job shown now: exit 0 and a hint to follow it.
    let show = kick(&args(&["job", "show", &id, "--color", "never"], &emu)).await;
    assert_eq!(show.code, 0, "{show:?}");
    assert!(
        show.stderr.contains(&format!("kick job watch {id}")),
        "{}",
        show.stderr
    );

    let stop = kick(&args(&["job", "stop", &id, "--force"], &emu)).await;
    assert_eq!(stop.code, 0, "{stop:?}");
    assert!(
        stop.stdout.contains("force-stop requested"),
        "{}",
        stop.stdout
    );
    let w = kick(&args(&["job", "watch", &id, "--color", "never"], &emu)).await;
    assert_eq!(w.code, 4, "{w:?}");
    insta::assert_snapshot!("force_stopped_job_watch", redact(&w.stdout));

    let bad = kick(&args(&["job", "show", "99999"], &emu)).await;
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("kick job list"), "{}", bad.stderr);
    let bad = kick(&args(&["job", "watch", "12ab"], &emu)).await;
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("not a job id"), "{}", bad.stderr);
}
