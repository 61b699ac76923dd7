//! psick::system_update and psick::puppet_install against fake package
//! managers (shell scripts at the fixed paths below the node's
//! `PSICK_TEST_SYSROOT`), one test per branch.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::json;

use crate::harness::{FakeHolder, Node, Outcome};

/// A node with fake tools; every call is logged as `name args...`.
struct Fakes {
    node: Node,
}

impl Fakes {
    fn new() -> Fakes {
        let f = Fakes {
            node: Node::new("exit 0"),
        };
        fs::create_dir_all(f.node.path("state")).unwrap();
        f
    }

    /// Writes `/usr/bin/<name>` below the node's system root.
    fn tool(&self, name: &str, body: &str) -> &Fakes {
        let p = self.node.path(&format!("usr/bin/{name}"));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(
            &p,
            format!(
                "#!/bin/sh\necho \"{name} $*\" >> '{log}'\nSTATE='{state}'\n{body}\n",
                log = self.node.path("calls").display(),
                state = self.node.path("state").display()
            ),
        )
        .unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        self
    }

    /// Records an installed package version for the fake dpkg-query / rpm.
    fn installed(&self, pkg: &str, version: &str) -> &Fakes {
        fs::write(self.node.path(&format!("state/{pkg}")), version).unwrap();
        self
    }

    fn version(&self, pkg: &str) -> Option<String> {
        fs::read_to_string(self.node.path(&format!("state/{pkg}")))
            .ok()
            .map(|v| v.trim().to_owned())
    }

    fn calls(&self) -> Vec<String> {
        fs::read_to_string(self.node.path("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn run(&self, params: serde_json::Value) -> Outcome {
        self.node.run(&params.to_string())
    }

    /// apt-get, dpkg-query and apt-cache: `kick-a` 1.0 → 2.0 pending.
    fn apt(&self) -> &Fakes {
        self.tool(
            "apt-get",
            r#"case "$*" in
  *" update") echo 'Hit:1 file:/repo ./ InRelease' ;;
  *" -s "*) echo 'NOTE: This is only a simulation!'
            case "$*" in *"install --only-upgrade kick-none"*) echo 'E: Unable to locate package kick-none'; exit 100 ;; esac
            echo 'Inst kick-a [1.0] (2.0 localrepo [all])'; echo 'Conf kick-a (2.0 localrepo [all])' ;;
  *" -y "*) echo 'Setting up kick-a (2.0) ...'; echo 2.0 > "$STATE/kick-a" ;;
esac"#,
        )
        .tool(
            "dpkg-query",
            r#"v=$(cat "$STATE/$3" 2>/dev/null) || { echo "dpkg-query: no packages found matching $3" >&2; exit 1; }
printf 'install ok installed|%s\n' "$v""#,
        )
        .tool(
            "apt-cache",
            r#"echo "$2:"; echo "  Installed: $(cat "$STATE/$2" 2>/dev/null || echo '(none)')"
case "$2" in kick-none) echo '  Candidate: (none)' ;; *) echo '  Candidate: 7.23.0-1+deb12u1' ;; esac"#,
        )
        .installed("kick-a", "1.0")
    }
}

#[test]
fn apt_noop_refreshes_and_lists_the_simulated_updates_without_changing_anything() {
    let f = Fakes::new();
    f.apt();
    let o = f.run(json!({"_task": "psick::system_update", "_noop": true, "refresh": true}));
    assert_eq!(o.code, 0, "{}", o.json);
    assert_eq!(o.json["manager"], "apt");
    assert_eq!(o.json["noop"], true);
    assert_eq!(
        o.json["updates"],
        json!([{"name": "kick-a", "from": "1.0", "to": "2.0"}])
    );
    assert_eq!(o.json["reboot_required"], false);
    let calls = f.calls();
    assert!(calls[0].ends_with(" update"), "{calls:?}");
    assert!(calls[1].contains(" -s upgrade"), "{calls:?}");
    assert!(calls[1].contains("DPkg::Lock::Timeout=120"), "{calls:?}");
    assert!(!calls.iter().any(|c| c.contains(" -y ")), "{calls:?}");
    assert_eq!(f.version("kick-a").as_deref(), Some("1.0"));
    assert!(o.output().contains("Inst kick-a"), "{}", o.output());
    assert_eq!(o.json["commands"].as_array().unwrap().len(), 2);
    // Without `refresh`, a noop run leaves even the package lists alone.
    let o = f.run(json!({"_task": "psick::system_update", "_noop": true}));
    assert_eq!(
        o.json["commands"].as_array().unwrap().len(),
        1,
        "{}",
        o.json
    );
    assert!(
        o.json["commands"][0]
            .as_array()
            .unwrap()
            .contains(&json!("-s"))
    );
}

#[test]
fn a_real_run_refreshes_the_lists_first_by_default() {
    let f = Fakes::new();
    f.apt();
    let o = f.run(json!({"_task": "psick::system_update"}));
    assert_eq!(o.code, 0, "{}", o.json);
    assert!(f.calls()[0].ends_with(" update"), "{:?}", f.calls());
}

#[test]
fn apt_real_run_limited_to_packages_reports_from_and_to_and_the_reboot_flag() {
    let f = Fakes::new();
    f.apt();
    fs::create_dir_all(f.node.path("var/run")).unwrap();
    fs::write(f.node.path("var/run/reboot-required"), "").unwrap();
    let o = f.run(
        json!({"_task": "psick::system_update", "packages": ["kick-a"], "refresh": false,
                         "lock_wait": 7}),
    );
    assert_eq!(o.code, 0, "{}", o.json);
    assert_eq!(
        o.json["updates"],
        json!([{"name": "kick-a", "from": "1.0", "to": "2.0"}])
    );
    assert_eq!(o.json["packages"], json!(["kick-a"]));
    assert_eq!(o.json["reboot_required"], true);
    let calls = f.calls();
    assert!(
        !calls.iter().any(|c| c.ends_with(" update")),
        "refresh=false: {calls:?}"
    );
    let real = calls.iter().find(|c| c.contains(" -y ")).unwrap();
    assert!(real.contains("install --only-upgrade kick-a"), "{real}");
    assert!(
        real.contains("--force-confold") && real.contains("DPkg::Lock::Timeout=7"),
        "{real}"
    );
    assert_eq!(f.version("kick-a").as_deref(), Some("2.0"));
}

#[test]
fn apt_with_nothing_pending_runs_no_upgrade() {
    let f = Fakes::new();
    f.apt()
        .tool("apt-get", "echo '0 upgraded, 0 newly installed'");
    let o = f.run(json!({"_task": "psick::system_update"}));
    assert_eq!(o.code, 0, "{}", o.json);
    assert_eq!(o.json["updates"], json!([]));
    assert!(
        !f.calls().iter().any(|c| c.contains(" -y ")),
        "{:?}",
        f.calls()
    );
}

#[test]
fn apt_security_only_is_unsupported_and_runs_nothing() {
    let f = Fakes::new();
    f.apt();
    let o = f.run(json!({"_task": "psick::system_update", "security_only": true}));
    assert_eq!(o.kind(), "psick/unsupported");
    assert!(o.msg().contains("unattended-upgrades"), "{}", o.msg());
    assert!(f.calls().is_empty());
}

#[test]
fn apt_lock_held_is_its_own_error() {
    let f = Fakes::new();
    f.apt().tool(
        "apt-get",
        "echo 'E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)'\n\
         echo 'E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?'\nexit 100",
    );
    let o = f.run(json!({"_task": "psick::system_update", "lock_wait": 3}));
    assert_eq!(o.kind(), "psick/package-manager-locked", "{}", o.json);
    let d = &o.json["_error"]["details"];
    assert_eq!(d["holder"], "process 4242 (apt-get)");
    assert_eq!(d["waited"], 3);
    assert!(o.msg().contains("lock_wait"), "{}", o.msg());
}

#[test]
fn apt_unknown_package_and_other_failures() {
    let f = Fakes::new();
    f.apt();
    let o =
        f.run(json!({"_task": "psick::system_update", "packages": "kick-none", "refresh": false}));
    assert_eq!(o.kind(), "psick/package-not-found", "{}", o.json);
    f.tool(
        "apt-get",
        "echo 'E: Sub-process /usr/bin/dpkg returned an error code (1)'; exit 100",
    );
    let o = f.run(json!({"_task": "psick::system_update"}));
    assert_eq!(o.kind(), "psick/package-manager-failed", "{}", o.json);
    assert!(
        o.msg().contains("exit 100") && o.msg().contains("dpkg returned"),
        "{}",
        o.msg()
    );
}

#[test]
fn a_hanging_manager_is_stopped_by_the_timeout() {
    let f = Fakes::new();
    f.apt().tool("apt-get", "sleep 30");
    let mut cmd = f.node.command();
    cmd.env("PSICK_KILL_GRACE", "1");
    let o = f.node.run_cmd(
        cmd,
        &json!({"_task": "psick::system_update", "timeout": 1}).to_string(),
    );
    assert_eq!(o.kind(), "psick/timeout", "{}", o.json);
    assert_eq!(o.json["_error"]["details"]["timeout"], 1);
    assert!(o.elapsed < Duration::from_secs(8), "{:?}", o.elapsed);
}

#[test]
fn parameters_are_checked_and_no_manager_is_an_error() {
    let f = Fakes::new();
    for (params, want) in [
        (
            json!({"_task": "psick::system_update", "packages": ["-o"]}),
            "not a package name",
        ),
        (
            json!({"_task": "psick::system_update", "packages": ["a b"]}),
            "not a package name",
        ),
        (
            json!({"_task": "psick::system_update", "manager": "apt"}),
            "unknown parameter manager",
        ),
        (
            json!({"_task": "psick::system_update", "timeout": 0}),
            "`timeout`",
        ),
        (
            json!({"_task": "psick::puppet_install", "package": "--force-yes"}),
            "not a package name",
        ),
        (
            json!({"_task": "psick::puppet_install", "version": "1;reboot"}),
            "not a package version",
        ),
    ] {
        let o = f.run(params.clone());
        assert_eq!(o.kind(), "psick/invalid-params", "{params}: {}", o.json);
        assert!(o.msg().contains(want), "{params}: {}", o.msg());
    }
    let o = f.run(json!({"_task": "psick::system_update"}));
    assert_eq!(o.kind(), "psick/no-package-manager", "{}", o.json);
    assert!(o.msg().contains("usr/bin/apt-get"), "{}", o.msg());
    assert!(f.calls().is_empty());
}

/// dnf (or yum) and rpm: `bash` 5.1 → 5.2 pending.
fn rpm_fakes(manager: &str) -> Fakes {
    let f = Fakes::new();
    f.tool(
        manager,
        r#"case "$*" in
  *check-update*) echo; echo 'bash.x86_64   5.2.26-1.el9   baseos'; exit 100 ;;
  *"-y upgrade"*) echo 'Upgraded: bash-5.2.26-1.el9'; echo 5.2.26-1.el9 > "$STATE/bash" ;;
  *"-y install"*) echo 'Installed'; echo 7.28.0-1.el9 > "$STATE/puppet-agent" ;;
  *"list --showduplicates available"*) echo 'Available Packages'; echo 'puppet-agent.x86_64  7.27.0-1.el9  puppet7'; echo 'puppet-agent.x86_64  7.28.0-1.el9  puppet7' ;;
  *makecache*) echo 'Metadata cache created.' ;;
esac"#,
    )
    .tool(
        "rpm",
        r#"v=$(cat "$STATE/$4" 2>/dev/null) || { echo "package $4 is not installed"; exit 1; }
echo "$v""#,
    )
    .installed("bash", "5.1.8-9.el9");
    f
}

#[test]
fn dnf_security_noop_real_run_and_needs_restarting() {
    let f = rpm_fakes("dnf");
    f.tool("needs-restarting", "echo 'Reboot is required'; exit 1");
    let o = f.run(json!({"_task": "psick::system_update", "security_only": true, "noop": true}));
    assert_eq!(o.code, 0, "{}", o.json);
    assert_eq!(o.json["manager"], "dnf");
    assert_eq!(o.json["security_only"], true);
    assert_eq!(
        o.json["updates"],
        json!([{"name": "bash", "from": "5.1.8-9.el9", "to": "5.2.26-1.el9"}])
    );
    assert_eq!(o.json["reboot_required"], true);
    assert!(
        f.calls()
            .iter()
            .any(|c| c.contains("check-update --security")),
        "{:?}",
        f.calls()
    );
    let o = f.run(json!({"_task": "psick::system_update", "security_only": true}));
    assert_eq!(o.code, 0, "{}", o.json);
    assert_eq!(
        o.json["updates"],
        json!([{"name": "bash", "from": "5.1.8-9.el9", "to": "5.2.26-1.el9"}])
    );
    assert!(
        f.calls()
            .iter()
            .any(|c| c.contains("-y upgrade --security")),
        "{:?}",
        f.calls()
    );
}

#[test]
fn dnf_waits_for_its_pid_lock_then_fails_with_the_holder() {
    let f = rpm_fakes("dnf");
    let holder = FakeHolder::start(f.node.dir.path(), "60");
    let lock = f.node.path("var/lib/dnf/rpmdb_lock.pid");
    fs::create_dir_all(lock.parent().unwrap()).unwrap();
    fs::write(&lock, holder.pid().to_string()).unwrap();
    let o = f.run(json!({"_task": "psick::system_update", "lock_wait": 1}));
    assert_eq!(o.kind(), "psick/package-manager-locked", "{}", o.json);
    assert!(
        o.msg().contains(&format!("PID {}", holder.pid())),
        "{}",
        o.msg()
    );
    assert!(o.elapsed >= Duration::from_secs(1));
    assert!(f.calls().is_empty(), "dnf never started: {:?}", f.calls());
}

#[test]
fn yum_is_used_when_there_is_no_dnf_and_nothing_pending_is_empty() {
    let f = Fakes::new();
    f.tool("yum", "exit 0").tool("rpm", "exit 1");
    let o = f.run(json!({"_task": "psick::system_update"}));
    assert_eq!(o.code, 0, "{}", o.json);
    assert_eq!(o.json["manager"], "yum");
    assert_eq!(o.json["updates"], json!([]));
    assert!(
        o.json["reboot_required"].is_null(),
        "yum without needs-restarting cannot tell"
    );
}

#[test]
fn zypper_list_updates_security_patches_lock_and_needs_rebooting() {
    let f = Fakes::new();
    f.tool(
        "zypper",
        r#"case "$*" in
  *list-updates*) echo 'S | Repository | Name | Current Version | Available Version | Arch'
                  echo 'v | Main | bash | 5.1-1.1 | 5.2-1.1 | x86_64'
                  echo 'v | Main | curl | 8.0-1 | 8.1-1 | x86_64' ;;
  *"patch --category security --dry-run"*) echo 'The following 1 package is going to be upgraded:'; echo '  curl'; echo ;;
  *needs-rebooting*) exit 102 ;;
  *refresh*) [ -n "$ZYPP_LOCK_TIMEOUT" ] || exit 99 ;;
esac"#,
    );
    let o = f.run(json!({"_task": "psick::system_update", "_noop": true, "security_only": true}));
    assert_eq!(o.code, 0, "{}", o.json);
    assert_eq!(o.json["manager"], "zypper");
    assert_eq!(
        o.json["updates"],
        json!([{"name": "curl", "from": "8.0-1", "to": "8.1-1"}])
    );
    assert_eq!(o.json["reboot_required"], true);
    let o = f.run(json!({"_task": "psick::system_update", "_noop": true, "packages": ["bash"]}));
    assert_eq!(
        o.json["updates"],
        json!([{"name": "bash", "from": "5.1-1.1", "to": "5.2-1.1"}])
    );
    f.tool(
        "zypper",
        "echo 'System management is locked by the application with pid 777 (zypper).'; exit 7",
    );
    let o = f.run(json!({"_task": "psick::system_update", "lock_wait": 5}));
    assert_eq!(o.kind(), "psick/package-manager-locked", "{}", o.json);
    assert!(
        f.calls().last().unwrap().contains("--non-interactive"),
        "{:?}",
        f.calls()
    );
}

#[test]
fn puppet_install_apt_noop_reports_before_and_candidate() {
    let f = Fakes::new();
    f.apt().installed("puppet-agent", "7.20.0-1");
    let o = f.run(json!({"_task": "psick::puppet_install", "_noop": true}));
    assert_eq!(o.code, 0, "{}", o.json);
    assert_eq!(o.json["package"], "puppet-agent");
    assert_eq!(o.json["version_before"], "7.20.0-1");
    assert_eq!(o.json["version_after"], "7.23.0-1+deb12u1");
    assert_eq!(o.json["changed"], true);
    assert!(
        !f.calls().iter().any(|c| c.contains(" -y ")),
        "{:?}",
        f.calls()
    );
    assert_eq!(f.version("puppet-agent").as_deref(), Some("7.20.0-1"));
}

#[test]
fn puppet_install_apt_version_real_install_and_not_found() {
    let f = Fakes::new();
    f.apt().tool(
        "apt-get",
        r#"case "$*" in
  *" -s "*"install openvox-agent=8.1.0-1"*) echo 'Inst openvox-agent (8.1.0-1 openvox [amd64])' ;;
  *" -y "*"install openvox-agent=8.1.0-1"*) echo 8.1.0-1 > "$STATE/openvox-agent" ;;
  *"install nope"*) echo "E: Unable to locate package nope"; exit 100 ;;
esac"#,
    );
    let o = f.run(
        json!({"_task": "psick::puppet_install", "package": "openvox-agent",
                         "version": "8.1.0-1", "noop": true, "refresh": false}),
    );
    assert_eq!(o.code, 0, "{}", o.json);
    assert_eq!(o.json["version_before"], json!(null));
    assert_eq!(o.json["version_after"], "8.1.0-1");
    assert_eq!(o.json["requested_version"], "8.1.0-1");
    let o = f.run(
        json!({"_task": "psick::puppet_install", "package": "openvox-agent",
                         "version": "8.1.0-1", "refresh": false}),
    );
    assert_eq!(o.code, 0, "{}", o.json);
    assert_eq!(o.json["version_after"], "8.1.0-1");
    assert_eq!(o.json["changed"], true);
    let real = f.calls().into_iter().find(|c| c.contains(" -y ")).unwrap();
    assert!(
        real.contains("--allow-downgrades install openvox-agent=8.1.0-1"),
        "{real}"
    );
    let o = f.run(json!({"_task": "psick::puppet_install", "package": "nope", "refresh": false}));
    assert_eq!(o.kind(), "psick/package-not-found", "{}", o.json);
    let o = f.run(
        json!({"_task": "psick::puppet_install", "package": "kick-none", "noop": true,
                         "refresh": false}),
    );
    assert_eq!(
        o.kind(),
        "psick/package-not-found",
        "no candidate: {}",
        o.json
    );
}

#[test]
fn puppet_install_with_dnf_picks_the_newest_and_installs() {
    let f = rpm_fakes("dnf");
    let o = f.run(json!({"_task": "psick::puppet_install", "noop": true}));
    assert_eq!(o.code, 0, "{}", o.json);
    assert_eq!(o.json["version_after"], "7.28.0-1.el9");
    let o = f.run(json!({"_task": "psick::puppet_install", "_noop": true, "version": "7.27.0"}));
    assert_eq!(o.json["version_after"], "7.27.0-1.el9", "{}", o.json);
    let o = f.run(json!({"_task": "psick::puppet_install"}));
    assert_eq!(o.code, 0, "{}", o.json);
    assert_eq!(o.json["version_before"], json!(null));
    assert_eq!(o.json["version_after"], "7.28.0-1.el9");
    assert!(
        f.calls().iter().any(|c| c == "dnf -y install puppet-agent"),
        "{:?}",
        f.calls()
    );
}

#[test]
fn puppet_install_with_zypper_noop_and_version() {
    let f = Fakes::new();
    f.tool(
        "zypper",
        r#"case "$*" in
  *" info puppet-agent"*) echo 'Information for package puppet-agent:'; echo 'Version        : 7.28.0-1.sles15' ;;
  *"install --dry-run --oldpackage puppet-agent=7.27.0-1.sles15"*) echo 'The following package is going to be downgraded:' ;;
  *"install --oldpackage puppet-agent=7.27.0-1.sles15"*) echo 7.27.0-1.sles15 > "$STATE/puppet-agent" ;;
  *"install --dry-run --oldpackage puppet-agent=9"*) echo "No provider of 'puppet-agent = 9' found."; exit 104 ;;
esac"#,
    )
    .tool(
        "rpm",
        r#"v=$(cat "$STATE/$4" 2>/dev/null) || exit 1
echo "$v""#,
    );
    let o = f.run(json!({"_task": "psick::puppet_install", "_noop": true, "refresh": false}));
    assert_eq!(o.code, 0, "{}", o.json);
    assert_eq!(o.json["manager"], "zypper");
    assert_eq!(o.json["version_after"], "7.28.0-1.sles15");
    let o = f.run(
        json!({"_task": "psick::puppet_install", "_noop": true, "version": "7.27.0-1.sles15"}),
    );
    assert_eq!(o.code, 0, "{}", o.json);
    assert_eq!(o.json["version_after"], "7.27.0-1.sles15");
    let o = f.run(
        json!({"_task": "psick::puppet_install", "version": "7.27.0-1.sles15", "refresh": false}),
    );
    assert_eq!(o.code, 0, "{}", o.json);
    assert_eq!(o.json["version_after"], "7.27.0-1.sles15");
    let o = f.run(
        json!({"_task": "psick::puppet_install", "noop": true, "version": "9", "refresh": false}),
    );
    assert_eq!(o.kind(), "psick/package-not-found", "{}", o.json);
}

#[test]
fn system_update_noop_result_document() {
    let f = Fakes::new();
    f.apt();
    let o = f.run(
        json!({"_task": "psick::system_update", "_noop": true, "packages": ["kick-a"],
                         "refresh": true}),
    );
    let text = o
        .stdout
        .replace(&f.node.dir.path().display().to_string(), "[node]");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    insta::assert_json_snapshot!(v);
}
