//! psick::system_update and psick::puppet_install against the machine's real apt, on packages
//! the suite builds itself and serves from its own `file:` source (see `kick_e2e::AptRepo`).
//! One test, so the steps never contend for apt's lock with each other.

use std::process::{Command, Stdio};
use std::time::Duration;

use kick_e2e::{AptRepo, Stack, TaskRun};
use serde_json::{Value, json};

fn task(params: &Value) -> TaskRun {
    // The package tasks do not run puppet, but no task runs without a puppet of the test's own.
    let conf = tempfile::tempdir().expect("confdir");
    let env = vec![
        ("PSICK_PUPPET_BIN".to_owned(), Stack::PUPPET_BIN.to_owned()),
        (
            "PSICK_PUPPET_CONFDIR".to_owned(),
            conf.path().display().to_string(),
        ),
    ];
    TaskRun::run(&kick_e2e::task_bin(), &env, params)
}

#[test]
fn system_update_and_puppet_install_with_real_apt() {
    let Some(_stack) = Stack::from_env() else {
        return;
    };
    assert!(
        AptRepo::available(),
        "the real-apt test needs root, apt-get, dpkg-deb, apt-ftparchive"
    );
    let id = std::process::id();
    let upd = format!("kick-e2e-upd-{id}");
    let inst = format!("kick-e2e-inst-{id}");
    let mut repo = AptRepo::new("packages");
    let v1 = repo.build(&upd, "1.0");
    let v2 = repo.build(&upd, "2.0");
    let other = repo.build(&inst, "3.1");
    repo.dpkg_install(&v1);
    repo.add(&v2);
    repo.add(&other);
    repo.publish();
    assert_eq!(AptRepo::installed(&upd).as_deref(), Some("1.0"));

    // Noop: exactly that update, both versions, nothing changed. The lists were fetched for
    // this source alone, so the task does not refresh every source of the machine.
    let noop = task(&json!({"_task": "psick::system_update", "_noop": true,
                            "packages": [upd], "refresh": false}));
    assert!(noop.exit.success(), "{}", noop.dump());
    assert_eq!(noop.result["manager"], json!("apt"));
    assert_eq!(noop.result["noop"], json!(true));
    assert_eq!(
        noop.result["updates"],
        json!([{"name": upd, "from": "1.0", "to": "2.0"}]),
        "{}",
        noop.dump()
    );
    assert_eq!(
        AptRepo::installed(&upd).as_deref(),
        Some("1.0"),
        "noop changes nothing"
    );
    assert!(noop.result["reboot_required"].is_boolean());
    let cmd = noop.result["commands"][0].as_array().unwrap();
    assert!(cmd.contains(&json!("-s")), "a simulation: {cmd:?}");

    // security_only has no apt equivalent: a clear error, nothing run.
    let sec =
        task(&json!({"_task": "psick::system_update", "security_only": true, "refresh": false}));
    assert_eq!(
        sec.error_kind(),
        Some("psick/unsupported"),
        "{}",
        sec.dump()
    );
    assert!(sec.result["commands"].as_array().unwrap().is_empty());

    // The lock held by someone else: its own error after the bounded wait.
    let mut holder = Command::new("python3")
        .args([
            "-c",
            "import fcntl,sys,time\nf=open('/var/lib/dpkg/lock-frontend','w')\n\
             fcntl.lockf(f,fcntl.LOCK_EX)\nprint('held',flush=True)\ntime.sleep(20)",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the lock holder");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "held");
    let locked = task(&json!({"_task": "psick::system_update", "packages": [upd],
                              "refresh": false, "lock_wait": 2}));
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(
        locked.error_kind(),
        Some("psick/package-manager-locked"),
        "{}",
        locked.dump()
    );
    assert!(
        locked.elapsed < Duration::from_secs(30),
        "{:?}",
        locked.elapsed
    );
    assert_eq!(AptRepo::installed(&upd).as_deref(), Some("1.0"));

    // The real run, limited to that package.
    let real = task(&json!({"_task": "psick::system_update", "packages": [upd], "refresh": false}));
    assert!(real.exit.success(), "{}", real.dump());
    assert_eq!(real.result["noop"], json!(false));
    assert_eq!(
        real.result["updates"],
        json!([{"name": upd, "from": "1.0", "to": "2.0"}]),
        "{}",
        real.dump()
    );
    assert_eq!(AptRepo::installed(&upd).as_deref(), Some("2.0"));
    assert!(real.result["_output"].as_str().unwrap().contains(&upd));

    // puppet_install in noop: the agent package and the version apt would install.
    let agent = task(&json!({"_task": "psick::puppet_install", "_noop": true, "refresh": false}));
    assert!(agent.exit.success(), "{}", agent.dump());
    assert_eq!(agent.result["package"], json!("puppet-agent"));
    let policy = String::from_utf8_lossy(
        &Command::new("apt-cache")
            .args(["policy", "puppet-agent"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    let candidate = policy
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Candidate:")
                .map(|v| v.trim().to_owned())
        })
        .unwrap();
    assert_eq!(
        agent.result["version_after"],
        json!(candidate),
        "{}",
        agent.dump()
    );
    assert_eq!(
        agent.result["version_before"],
        json!(AptRepo::installed("puppet-agent")),
        "{}",
        agent.dump()
    );

    // A real puppet_install of the suite's own package, through `package`.
    assert_eq!(AptRepo::installed(&inst), None);
    let noop_inst = task(&json!({"_task": "psick::puppet_install", "package": inst,
                                 "noop": true, "refresh": false}));
    assert!(noop_inst.exit.success(), "{}", noop_inst.dump());
    assert_eq!(noop_inst.result["version_after"], json!("3.1"));
    assert_eq!(noop_inst.result["changed"], json!(true));
    assert_eq!(AptRepo::installed(&inst), None, "noop installs nothing");
    let installed =
        task(&json!({"_task": "psick::puppet_install", "package": inst, "refresh": false}));
    assert!(installed.exit.success(), "{}", installed.dump());
    assert_eq!(installed.result["version_before"], json!(null));
    assert_eq!(installed.result["version_after"], json!("3.1"));
    assert_eq!(installed.result["changed"], json!(true));
    assert_eq!(AptRepo::installed(&inst).as_deref(), Some("3.1"));

    let missing = task(
        &json!({"_task": "psick::puppet_install", "package": format!("kick-e2e-none-{id}"),
                               "refresh": false}),
    );
    assert_eq!(
        missing.error_kind(),
        Some("psick/package-not-found"),
        "{}",
        missing.dump()
    );

    drop(repo);
    assert_eq!(AptRepo::installed(&upd), None, "cleaned up");
    assert_eq!(AptRepo::installed(&inst), None, "cleaned up");
}
