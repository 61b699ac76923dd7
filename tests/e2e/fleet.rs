//! The SSH test fleet is real: each node is its own sshd on its own address with its own host
//! key, hostname, `/tmp`, users, sudo and a puppet agent that runs against the loopback
//! puppetserver under its own certname; and the harness's helpers (processes, stop/start,
//! host key rotation, noexec `/tmp`) do what they say. Checked with OpenSSH's own client.

use std::process::Output;
use std::time::{Duration, Instant, SystemTime};

use kick_e2e::{Fleet, FleetNode, cmdline};

fn text(out: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{:06x}",
        std::process::id(),
        fastrand::u32(..0x100_0000)
    )
}

/// The node the disturbing tests use (the last one, so that the first stays calm).
fn last(fleet: &Fleet) -> &FleetNode {
    fleet.nodes().last().expect("a fleet has nodes")
}

#[test]
fn fleet_nodes_answer_ssh_with_their_own_host_key_hostname_and_users() {
    let Some(fleet) = Fleet::from_env() else {
        return;
    };
    let mut keys = Vec::new();
    for node in fleet.nodes() {
        let _lock = node.lock_shared();
        let out = node.run("hostname; id -un; echo $HOME; cat /proc/1/comm");
        assert!(out.status.success(), "{}: {}", node.certname, text(&out));
        assert_eq!(
            stdout(&out),
            format!(
                "{}\n{}\n/home/{}\nsshd",
                node.certname, node.user, node.user
            ),
            "{}: {}",
            node.certname,
            text(&out)
        );
        assert_ne!(node.user, "root", "the login user is not root");
        assert!(node.address.starts_with("127."), "{}", node.address);
        // known_hosts lists the key under the certname too.
        let by_name = node
            .ssh()
            .args(["-o", &format!("HostKeyAlias={}", node.certname), "true"])
            .output()
            .expect("ssh");
        assert!(by_name.status.success(), "{}", text(&by_name));
        // root takes the fleet key; its home holds no shell start-up files (the host's /root
        // does).
        let root = node
            .ssh_as("root", &node.private_key)
            .arg("id -u; ls -A ~")
            .output()
            .expect("ssh");
        assert!(root.status.success(), "{}", text(&root));
        let listing = stdout(&root);
        let mut lines = listing.lines();
        assert_eq!(lines.next(), Some("0"), "{}", text(&root));
        let startup: Vec<&str> = lines
            .filter(|f| [".bashrc", ".profile", ".bash_profile", ".bash_login"].contains(f))
            .collect();
        assert!(startup.is_empty(), "root's home has {startup:?}");
        keys.push(node.host_key.clone());
    }
    let mut distinct = keys.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        keys.len(),
        "every node has its own host key"
    );

    // Each node serves its own key: node 1's address with node 2's key is refused.
    if let [a, b, ..] = fleet.nodes() {
        let _la = a.lock_shared();
        let dir = tempfile::tempdir().expect("tempdir");
        let swapped = dir.path().join("known_hosts");
        std::fs::write(&swapped, format!("{} {}\n", a.address, b.host_key)).expect("write");
        let out = a
            .ssh_with(&a.user, &a.private_key, &swapped)
            .arg("true")
            .output()
            .expect("ssh");
        assert_eq!(out.status.code(), Some(255), "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Host key verification failed"),
            "{}",
            text(&out)
        );
    }
}

#[test]
fn a_fleet_nodes_tmp_is_its_own() {
    let Some(fleet) = Fleet::from_env() else {
        return;
    };
    let node = &fleet.nodes()[0];
    let _lock = node.lock_shared();
    let name = unique("kick-fleet-probe");
    let out = node.run(&format!("echo hello > /tmp/{name} && cat /tmp/{name}"));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(stdout(&out), "hello");
    assert!(
        !std::path::Path::new("/tmp").join(&name).exists(),
        "a file the node wrote in its /tmp is not in the host's /tmp"
    );
    let seen = node.host_path(&format!("/tmp/{name}"));
    assert_eq!(
        std::fs::read_to_string(&seen).expect("the node's /tmp from the host"),
        "hello\n"
    );
    for other in &fleet.nodes()[1..] {
        let _l = other.lock_shared();
        let out = other.run(&format!("test -e /tmp/{name}; echo $?"));
        assert_eq!(
            stdout(&out),
            "1",
            "{} sees {}'s /tmp",
            other.certname,
            node.certname
        );
    }
    let _ = node.run(&format!("rm -f /tmp/{name}"));
}

#[test]
fn sudo_takes_the_right_password_and_refuses_a_wrong_one() {
    let Some(fleet) = Fleet::from_env() else {
        return;
    };
    let node = &fleet.nodes()[0];
    let _lock = node.lock_shared();
    let ok = node.sudo(&node.sudo_password, "id -u");
    assert!(ok.status.success(), "{}", text(&ok));
    assert_eq!(stdout(&ok), "0");

    let bad = node.sudo("not-the-password", "id -u");
    assert!(!bad.status.success(), "{}", text(&bad));
    assert_eq!(stdout(&bad), "", "nothing ran: {}", text(&bad));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("Sorry, try again.") && err.contains("incorrect password attempt"),
        "{}",
        text(&bad)
    );
}

#[test]
fn the_wrong_key_is_refused() {
    let Some(fleet) = Fleet::from_env() else {
        return;
    };
    for node in fleet.nodes() {
        let _lock = node.lock_shared();
        let out = node
            .ssh_as(&node.user, &node.wrong_key)
            .arg("true")
            .output()
            .expect("ssh");
        assert_eq!(out.status.code(), Some(255), "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
            "{}",
            text(&out)
        );
    }
}

#[test]
fn a_real_agent_noop_run_on_a_fleet_node_uses_its_own_certname() {
    let Some(fleet) = Fleet::from_env() else {
        return;
    };
    let node = &fleet.nodes()[0];
    let _lock = node.lock_exclusive();
    assert!(node.cert_pem().is_file(), "the agent was bootstrapped");
    let before = SystemTime::now() - Duration::from_secs(1);
    let out = node.sudo(
        &node.sudo_password,
        "puppet agent --test --noop --environment production --color=false",
    );
    // --test implies --detailed-exitcodes; a noop run exits 0 even with pending changes.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let so = String::from_utf8_lossy(&out.stdout);
    assert!(
        so.contains("Info: Using environment 'production'")
            && so.contains(&format!("hello from kick-e2e on {}", node.certname))
            && so.contains("(noop)")
            && so.contains("Notice: Applied catalog"),
        "{}",
        text(&out)
    );
    let summary = node.last_run_summary();
    let modified = std::fs::metadata(&summary)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{}: {e}", summary.display()));
    assert!(
        modified >= before,
        "the run wrote the node's own summary {}",
        summary.display()
    );
    let text_summary = std::fs::read_to_string(&summary).expect("summary");
    assert!(text_summary.contains("noop"), "{text_summary}");
}

#[test]
fn processes_finds_what_a_session_left_running_in_the_node() {
    let Some(fleet) = Fleet::from_env() else {
        return;
    };
    let node = last(&fleet);
    let _lock = node.lock_exclusive();
    let out = node.run("setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $!");
    assert!(out.status.success(), "{}", text(&out));
    let ns_pid: u32 = stdout(&out).parse().expect("a pid");
    let host_pid = node
        .host_pid_of(ns_pid)
        .unwrap_or_else(|| panic!("no process {ns_pid} in {}", node.certname));
    // Ended whatever this test asserts: a sleep left behind would fail every
    // later test that checks the node is clean.
    let _sleep = KillOnDrop(host_pid);
    // `echo $!` can come back before the child has exec'd sleep (under load,
    // CI saw "setsid sleep 300"): wait for the exec, not for a fixed time.
    let deadline = Instant::now() + Duration::from_secs(10);
    while cmdline(host_pid) != "sleep 300" {
        assert!(
            Instant::now() < deadline,
            "{host_pid} never became sleep: {:?}",
            cmdline(host_pid)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(node.processes().contains(&host_pid));
    assert!(
        !node.processes().contains(&std::process::id()),
        "the host's processes are not the node's"
    );
    let current = node.current_pid().expect("node up");
    assert!(!node.processes().contains(&current), "PID 1 is not listed");
    // Once the session's shell is gone, only the sleep is left besides the sshds.
    let deadline = Instant::now() + Duration::from_secs(10);
    while node.processes_besides_sshd() != vec![host_pid] {
        assert!(
            Instant::now() < deadline,
            "left besides sshd: {:?}",
            node.processes_besides_sshd()
                .into_iter()
                .map(|p| (p, cmdline(p)))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let st = std::process::Command::new("kill")
        .arg(host_pid.to_string())
        .status()
        .expect("kill");
    assert!(st.success());
    let left = node.wait_no_processes_besides_sshd(Duration::from_secs(10));
    assert!(left.is_empty(), "left: {left:?}");
}

#[test]
fn a_stopped_node_refuses_connections_and_comes_back() {
    let Some(fleet) = Fleet::from_env() else {
        return;
    };
    let node = last(&fleet);
    let _lock = node.lock_exclusive();
    let before = node.current_pid().expect("up");
    let stopped = node.stop_sshd();
    assert!(!node.is_up());
    let t = Instant::now();
    let out = node.run("true");
    assert_eq!(out.status.code(), Some(255), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Connection refused"),
        "{}",
        text(&out)
    );
    assert!(t.elapsed() < Duration::from_secs(5), "refused at once");
    stopped.start();
    let after = node.current_pid().expect("up again");
    assert_ne!(before, after);
    let out = node.run("hostname");
    assert_eq!(stdout(&out), node.certname, "{}", text(&out));
}

#[test]
fn a_rotated_host_key_is_refused_and_the_known_one_comes_back() {
    let Some(fleet) = Fleet::from_env() else {
        return;
    };
    let node = last(&fleet);
    let _lock = node.lock_exclusive();
    let pid = node.current_pid().expect("up");
    let marker = unique("/tmp/kick-fleet-hostkey");
    let rotated = node.rotate_host_key();
    assert_ne!(rotated.new_key(), node.host_key);
    assert_eq!(node.current_pid(), Some(pid), "a reload, not a restart");
    let out = node.run(&format!("touch {marker}"));
    assert_eq!(out.status.code(), Some(255), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
            && err.contains("Host key verification failed"),
        "{}",
        text(&out)
    );
    assert!(!node.host_path(&marker).exists(), "the command did not run");
    rotated.restore();
    let out = node.run("true");
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_nodes_tmp_can_be_made_noexec_and_back() {
    let Some(fleet) = Fleet::from_env() else {
        return;
    };
    let node = last(&fleet);
    let _lock = node.lock_exclusive();
    let try_exec = "f=/tmp/kick-fleet-exec-$$; cp /bin/true $f; $f; rc=$?; rm -f $f; echo $rc";
    let was = node.tmp_is_noexec();
    node.set_tmp_noexec(true);
    assert!(node.tmp_is_noexec());
    let out = node.run(try_exec);
    assert_eq!(stdout(&out), "126", "{}", text(&out));
    node.set_tmp_noexec(false);
    assert!(!node.tmp_is_noexec());
    let out = node.run(try_exec);
    assert_eq!(stdout(&out), "0", "{}", text(&out));
    node.set_tmp_noexec(was);
}

#[test]
fn the_login_user_can_log_in_with_its_password() {
    let Some(fleet) = Fleet::from_env() else {
        return;
    };
    let node = &fleet.nodes()[0];
    let _lock = node.lock_shared();
    // OpenSSH reads a password only from a terminal or SSH_ASKPASS: a script printing it.
    let dir = tempfile::tempdir().expect("tempdir");
    let askpass = dir.path().join("askpass");
    let secret = dir.path().join("password");
    std::fs::write(&secret, format!("{}\n", node.password)).expect("write");
    std::fs::write(
        &askpass,
        format!(
            "#!/bin/sh\ncat {}\n",
            kick_e2e::shell_quote(&secret.display().to_string())
        ),
    )
    .expect("write");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&askpass, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    }
    let out = std::process::Command::new("ssh")
        .args(["-F", "/dev/null", "-o", "StrictHostKeyChecking=yes"])
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            node.known_hosts().display()
        ))
        .args([
            "-o",
            "PreferredAuthentications=password",
            "-o",
            "PubkeyAuthentication=no",
        ])
        .args(["-o", "NumberOfPasswordPrompts=1"])
        .arg(format!("{}@{}", node.user, node.address))
        .arg("hostname")
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("ssh");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(stdout(&out), node.certname);
}

/// Sends KILL to the test's `sleep 300` (a host PID) when dropped, pass or
/// fail, unless it is gone already (its PID may have been reused since).
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if !cmdline(self.0).ends_with("sleep 300") {
            return;
        }
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &self.0.to_string()])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

#[test]
fn a_node_keeps_its_users_when_the_host_replaces_its_passwd() {
    let Some(fleet) = Fleet::from_env() else {
        return;
    };
    let node = &fleet.nodes()[0];
    let _lock = node.lock_shared();
    // What useradd, userdel and a package's postinst (systemd-sysusers) do to the host's
    // /etc/passwd and /etc/group: a new file renamed over the old. Same content here, so the
    // host is left as it was; a node whose /etc/passwd was a bind mount lost its users.
    for file in ["/etc/passwd", "/etc/group"] {
        let path = std::path::Path::new(file);
        let tmp = path.with_file_name(format!(
            ".{}.kick-e2e",
            path.file_name().unwrap().to_string_lossy()
        ));
        let st = std::process::Command::new("cp")
            .args(["-p", file])
            .arg(&tmp)
            .status()
            .expect("cp");
        assert!(st.success());
        std::fs::rename(&tmp, path).unwrap_or_else(|e| panic!("rename over {file}: {e}"));
    }
    let out = node.run("id -un");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(stdout(&out), node.user, "{}", text(&out));
}
