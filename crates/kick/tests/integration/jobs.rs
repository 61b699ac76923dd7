//! `kick job ...`, `--no-wait` and reattaching.

use crate::harness::{Emu, node, redact, run_bin};

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
    let doc = again.json();
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
    let r = emu
        .kick(&["agent", "--nodes", "a", "--description", "first run"])
        .await;
    assert_eq!(r.code, 0, "{r:?}");
    let r = emu
        .kick(&["agent", "--nodes", "b", "--no-wait", "--format", "json"])
        .await;
    let started = r.json();
    let id = started["job"]["name"].as_str().unwrap().to_owned();

    let list = emu.kick(&["job", "list"]).await;
    assert_eq!(list.code, 0, "{list:?}");
    assert!(list.stdout.contains("first run"), "{}", list.stdout);
    assert!(list.stdout.lines().count() >= 3, "{}", list.stdout);
    let list = emu
        .kick(&["job", "list", "--format", "json", "--limit", "1"])
        .await;
    let items = list.json();
    assert_eq!(items.as_array().unwrap().len(), 1);
    let none = emu
        .kick(&["job", "list", "--type", "deploy", "--format", "json"])
        .await;
    assert_eq!(none.json(), serde_json::json!([]));

    // A running job shown now: exit 8 (not ended) and a hint to follow it.
    let show = emu.kick(&["job", "show", &id, "--color", "never"]).await;
    assert_eq!(show.code, 8, "{show:?}");
    assert!(
        show.stderr.contains(&format!("kick job watch {id}")),
        "{}",
        show.stderr
    );

    let stop = emu.kick(&["job", "stop", &id, "--force"]).await;
    assert_eq!(stop.code, 0, "{stop:?}");
    assert!(
        stop.stdout.contains("force-stop requested"),
        "{}",
        stop.stdout
    );
    let w = emu.kick(&["job", "watch", &id, "--color", "never"]).await;
    assert_eq!(w.code, 4, "{w:?}");
    insta::assert_snapshot!("force_stopped_job_watch", redact(&w.stdout));

    let bad = emu.kick(&["job", "show", "99999"]).await;
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("kick job list"), "{}", bad.stderr);
    let bad = emu.kick(&["job", "watch", "12ab"]).await;
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("not a job id"), "{}", bad.stderr);
}
