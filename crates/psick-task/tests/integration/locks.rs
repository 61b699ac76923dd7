//! Catalog-run lock and disabled lock handling of psick::puppet_agent.

use std::time::Duration;

use crate::harness::{FakeHolder, Node};

#[test]
fn a_lock_held_by_a_live_puppet_process_fails_after_the_wait() {
    let node = Node::new("exit 0");
    let holder = FakeHolder::start(node.dir.path(), "60");
    std::fs::write(node.catalog_lock(), holder.pid().to_string()).unwrap();
    let o = node.run(r#"{"wait_for_lock": 1}"#);
    assert_eq!(o.code, 1);
    assert_eq!(o.kind(), "psick/agent-locked");
    let d = &o.json["_error"]["details"];
    assert_eq!(d["pid"], holder.pid());
    assert!(d["held_for"].as_u64().is_some(), "{d}");
    assert!(d["exitcode"].is_null());
    assert!(
        o.msg().contains(&format!("PID {}", holder.pid())),
        "{}",
        o.msg()
    );
    assert!(o.elapsed >= Duration::from_secs(1));
    assert_eq!(node.argv(), None, "puppet must not run");
    // The command that would have run is still reported.
    assert!(o.json["command"].as_array().unwrap().len() > 2);
}

#[test]
fn wait_for_lock_zero_fails_at_once() {
    let node = Node::new("exit 0");
    let holder = FakeHolder::start(node.dir.path(), "60");
    std::fs::write(node.catalog_lock(), holder.pid().to_string()).unwrap();
    let o = node.run(r#"{"wait_for_lock": 0}"#);
    assert_eq!(o.kind(), "psick/agent-locked");
    assert!(o.elapsed < Duration::from_secs(5));
}

#[test]
fn waits_for_the_holder_then_runs() {
    let node = Node::new("exit 2");
    let holder = FakeHolder::start(node.dir.path(), "1.5");
    std::fs::write(node.catalog_lock(), holder.pid().to_string()).unwrap();
    let lock = node.catalog_lock();
    let pid = holder.pid();
    // Like a real agent, the holder removes its lock when done.
    let cleaner = std::thread::spawn(move || {
        let mut holder = holder;
        let _ = holder.0.wait();
        let _ = std::fs::remove_file(lock);
        pid
    });
    let o = node.run(r#"{"wait_for_lock": 30}"#);
    cleaner.join().unwrap();
    assert_eq!(o.code, 0, "{}", o.json);
    assert_eq!(o.json["status"], "changed");
    assert!(o.elapsed >= Duration::from_millis(1200), "{:?}", o.elapsed);
    assert!(node.argv().is_some());
}

#[test]
fn a_lock_whose_holder_died_without_cleaning_up_does_not_block_long() {
    let node = Node::new("exit 0");
    let holder = FakeHolder::start(node.dir.path(), "1");
    std::fs::write(node.catalog_lock(), holder.pid().to_string()).unwrap();
    let o = node.run(r#"{"wait_for_lock": 30}"#);
    drop(holder);
    assert_eq!(o.code, 0, "{}", o.json);
    assert!(o.elapsed < Duration::from_secs(10));
}

#[test]
fn stale_locks_do_not_block() {
    let node = Node::new("exit 0");
    // A dead PID, a live process that is not puppet, and garbage.
    let mut sleeper = std::process::Command::new("/bin/sleep")
        .arg("30")
        .spawn()
        .unwrap();
    for content in [
        "999999999".to_owned(),
        sleeper.id().to_string(),
        "not a pid".to_owned(),
    ] {
        std::fs::write(node.catalog_lock(), &content).unwrap();
        let o = node.run(r#"{"wait_for_lock": 0}"#);
        assert_eq!(o.code, 0, "{content}: {}", o.json);
        assert_eq!(o.json["status"], "unchanged");
    }
    let _ = sleeper.kill();
    let _ = sleeper.wait();
}

#[test]
fn a_disabled_agent_fails_fast_with_the_message() {
    let node = Node::new("exit 0");
    std::fs::write(
        node.disabled_lock(),
        r#"{"disabled_message":"maintenance by ops"}"#,
    )
    .unwrap();
    let o = node.run("{}");
    assert_eq!(o.code, 1);
    assert_eq!(o.kind(), "psick/agent-disabled");
    assert!(o.msg().contains("maintenance by ops"), "{}", o.msg());
    assert_eq!(
        o.json["_error"]["details"]["disabled_message"],
        "maintenance by ops"
    );
    assert_eq!(node.argv(), None);
}

#[test]
fn lock_and_disabled_messages_from_puppet_itself_are_recognised() {
    let node = Node::new(&format!(
        "echo 'Notice: Run of Puppet configuration client already in progress; skipping  ({} exists)'\nexit 1",
        "/x/agent_catalog_run.lock"
    ));
    let o = node.run(r#"{"wait_for_lock": 0}"#);
    assert_eq!(o.kind(), "psick/agent-locked");
    assert_eq!(o.json["exitcode"], 1);

    node.set_fake(
        "echo \"Notice: Skipping run of Puppet configuration client; administratively disabled (Reason: 'late maint');\"\n\
         echo \"Use 'puppet agent --enable' to re-enable.\"\nexit 1",
    );
    let o = node.run("{}");
    assert_eq!(o.kind(), "psick/agent-disabled");
    assert!(o.msg().contains("late maint"), "{}", o.msg());
}

#[test]
fn a_lock_race_is_retried_while_the_wait_lasts() {
    let node = Node::new("");
    let marker = node.path("first-done");
    node.set_fake(&format!(
        "if [ ! -e '{m}' ]; then touch '{m}'; echo 'Notice: Run of Puppet configuration client already in progress; skipping  (x exists)'; exit 1; fi\nexit 2",
        m = marker.display()
    ));
    let o = node.run(r#"{"wait_for_lock": 10}"#);
    assert_eq!(o.code, 0, "{}", o.json);
    assert_eq!(o.json["status"], "changed");
    assert!(o.output().contains("retrying"), "{}", o.output());
}
