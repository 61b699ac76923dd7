//! Module mode as a user installs it: the install and restore blocks of
//! docs/tasks.md, run as written (twice in a row), and `files/install-pxp-module.sh`
//! in the cases around them, against a temp directory standing in for
//! pxp-agent's and a stub `systemctl`.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::harness::{task_arch, task_bin, task_command};

/// Stands in for Puppet's Ruby `pxp-module-puppet` (its first lines).
const RUBY: &str = "#!/opt/puppetlabs/puppet/bin/ruby\n# encoding: UTF-8\n\nrequire 'json'\n\
                    require 'puppet'\n# PXP Puppet module\n";
/// The one a puppet-agent upgrade brings.
const NEWER_RUBY: &str = "#!/opt/puppetlabs/puppet/bin/ruby\n# puppet-agent 8.99\n";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where the module mode's install and restore blocks are documented.
const GUIDE: &str = "docs/tasks.md";

/// The fenced `sh` block after the guide's `<!-- kick:NAME` comment.
fn guide_block(name: &str) -> String {
    let guide = fs::read_to_string(repo().join(GUIDE)).unwrap();
    let tag = format!("<!-- kick:{name} ");
    let mut lines = guide.lines().skip_while(|l| !l.starts_with(&tag)).skip(1);
    assert_eq!(
        lines.next(),
        Some("```sh"),
        "{GUIDE}: no ```sh block right after {tag}"
    );
    let block: Vec<&str> = lines.take_while(|l| *l != "```").collect();
    assert!(!block.is_empty(), "{GUIDE}: empty block after {tag}");
    block.join("\n") + "\n"
}

/// A node's pxp-agent directory with Puppet's module in `modules/`, the
/// psick module (its installer and a copy of the built binary) beside it,
/// and a `systemctl` that only records its arguments.
struct Layout {
    dir: tempfile::TempDir,
}

impl Layout {
    fn new() -> Layout {
        let layout = Layout {
            dir: tempfile::tempdir().unwrap(),
        };
        fs::create_dir_all(layout.modules()).unwrap();
        fs::create_dir_all(layout.path("psick/files")).unwrap();
        fs::create_dir_all(layout.path("psick/tasks")).unwrap();
        fs::create_dir_all(layout.path("bin")).unwrap();
        fs::copy(
            repo().join("files/install-pxp-module.sh"),
            layout.path("psick/files/install-pxp-module.sh"),
        )
        .unwrap();
        // The module as the tarball ships it: the entry, and the binary under test where the
        // installer looks for the node's architecture, which a stub `uname` names.
        fs::create_dir_all(layout.kick().parent().unwrap()).unwrap();
        fs::copy(
            repo().join("tasks/puppet_agent"),
            layout.path("psick/tasks/puppet_agent"),
        )
        .unwrap();
        fs::copy(task_bin(), layout.kick()).unwrap();
        let uname = layout.path("bin/uname");
        fs::write(&uname, format!("#!/bin/sh\necho {}\n", task_arch())).unwrap();
        fs::set_permissions(&uname, fs::Permissions::from_mode(0o755)).unwrap();
        layout.put_puppets(RUBY);
        let stub = layout.path("bin/systemctl");
        let log = layout.path("systemctl.log");
        fs::write(
            &stub,
            format!("#!/bin/sh\necho \"$*\" >> '{}'\n", log.display()),
        )
        .unwrap();
        fs::set_permissions(&stub, fs::Permissions::from_mode(0o755)).unwrap();
        layout
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn modules(&self) -> PathBuf {
        self.path("pxp-agent/modules")
    }
    fn module(&self) -> PathBuf {
        self.path("pxp-agent/modules/pxp-module-puppet")
    }
    /// Where docs/tasks.md says Puppet's module is kept: beside `modules/`.
    fn saved(&self) -> PathBuf {
        self.path("pxp-agent/pxp-module-puppet.rb.orig")
    }
    fn kick(&self) -> PathBuf {
        self.path(&format!("psick/files/{}/psick-task", task_arch()))
    }

    /// Puppet's module as the puppet-agent package installs it (0750 here,
    /// so a restore that loses the mode shows).
    fn put_puppets(&self, text: &str) {
        fs::write(self.module(), text).unwrap();
        fs::set_permissions(self.module(), fs::Permissions::from_mode(0o750)).unwrap();
    }

    /// Runs `script` with sh as a user would, the paths pointed here.
    fn sh(&self, script: &str) -> Output {
        let path = format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .env("PATH", path)
            .env("PSICK_MODULE", self.path("psick"))
            .env("PXP_MODULES_DIR", self.modules())
            .env_remove("PXP_SAVED_MODULE")
            .env_remove("KICK_TASK")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn installer(&self, mode: &str) -> Output {
        self.sh(&format!("sh psick/files/install-pxp-module.sh {mode}"))
    }

    fn restarts(&self) -> usize {
        let log = fs::read_to_string(self.path("systemctl.log")).unwrap_or_default();
        assert!(
            log.lines().all(|l| l == "restart pxp-agent"),
            "systemctl called with: {log}"
        );
        log.lines().count()
    }

    /// `modules/` holds the one module and nothing pxp-agent could load
    /// besides (no temporary file left).
    fn assert_modules_dir_clean(&self) {
        let mut names: Vec<String> = fs::read_dir(self.modules())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["pxp-module-puppet"]);
    }

    fn assert_kick_installed(&self) {
        assert!(
            fs::read(self.module()).unwrap() == fs::read(task_bin()).unwrap(),
            "modules/pxp-module-puppet is not Kick's binary"
        );
        assert_eq!(mode(&self.module()), 0o755);
        self.assert_modules_dir_clean();
    }

    fn assert_puppets_installed(&self, text: &str) {
        assert_eq!(fs::read_to_string(self.module()).unwrap(), text);
        assert_eq!(
            mode(&self.module()),
            0o750,
            "Puppet's module keeps its mode"
        );
        self.assert_modules_dir_clean();
    }

    fn assert_saved(&self, text: &str) {
        assert_eq!(
            fs::read(self.saved()).unwrap(),
            text.as_bytes(),
            "the saved copy is Puppet's module, byte for byte"
        );
    }
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{}\n{}{stderr}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    stderr
}

/// Asserts the exit code and returns stderr.
fn failed(out: &Output, code: i32) -> String {
    assert_eq!(out.status.code(), Some(code), "{out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_documented_install_block_run_twice_then_its_restore_block_bring_puppets_module_back() {
    let install = guide_block("pxp-module-install");
    let restore = guide_block("pxp-module-restore");
    for block in [&install, &restore] {
        assert!(
            block.contains("systemctl restart pxp-agent")
                && block.contains("PSICK_MODULE")
                && block.contains("files/install-pxp-module.sh"),
            "{block}"
        );
    }
    let node = Layout::new();

    // First install: Puppet's module saved beside modules/, Kick's in place.
    ok(&node.sh(&install));
    node.assert_kick_installed();
    node.assert_saved(RUBY);
    assert_eq!(mode(&node.saved()), 0o750);
    let saved_at = fs::metadata(node.saved()).unwrap();
    assert_eq!(node.restarts(), 1);

    // Again, as an upgrade of Kick does: the saved copy is not touched.
    ok(&node.sh(&install));
    node.assert_kick_installed();
    node.assert_saved(RUBY);
    let again = fs::metadata(node.saved()).unwrap();
    assert_eq!(
        (again.ino(), again.mtime(), again.mtime_nsec()),
        (saved_at.ino(), saved_at.mtime(), saved_at.mtime_nsec()),
        "the second install rewrote the saved copy"
    );
    assert_eq!(node.restarts(), 2);

    // The documented way back.
    ok(&node.sh(&restore));
    node.assert_puppets_installed(RUBY);
    assert_eq!(node.restarts(), 3);

    // And the whole cycle once more, restore twice in a row included.
    ok(&node.sh(&install));
    node.assert_kick_installed();
    node.assert_saved(RUBY);
    ok(&node.sh(&restore));
    ok(&node.sh(&restore));
    node.assert_puppets_installed(RUBY);
    node.assert_saved(RUBY);
    assert_eq!(node.restarts(), 6);
}

#[test]
fn after_a_puppet_agent_upgrade_install_keeps_the_newer_ruby_module_and_restore_never_downgrades_it()
 {
    let node = Layout::new();
    ok(&node.installer("install"));
    node.assert_saved(RUBY);

    // The package upgrade puts its (newer) Ruby module back.
    node.put_puppets(NEWER_RUBY);
    // restore before re-installing Kick: Puppet's is there already.
    let said = node.installer("restore");
    ok(&said);
    assert!(
        String::from_utf8_lossy(&said.stdout).contains("is Puppet's module already"),
        "{said:?}"
    );
    node.assert_puppets_installed(NEWER_RUBY);

    // Re-applying Kick's keeps the newer Ruby module as the one to go back to.
    ok(&node.installer("install"));
    node.assert_kick_installed();
    node.assert_saved(NEWER_RUBY);
    ok(&node.installer("restore"));
    node.assert_puppets_installed(NEWER_RUBY);
}

#[test]
fn a_saved_copy_that_is_kicks_binary_is_never_restored() {
    // What the old documented block left after running twice.
    let node = Layout::new();
    fs::copy(task_bin(), node.module()).unwrap();
    fs::copy(task_bin(), node.saved()).unwrap();
    let stderr = ok(&node.installer("install"));
    assert!(
        stderr.contains("is Kick's binary, not Puppet's module")
            && stderr.contains("reinstall the puppet-agent package"),
        "{stderr}"
    );
    node.assert_kick_installed();

    let stderr = failed(&node.installer("restore"), 1);
    assert!(
        stderr.contains("no saved copy of Puppet's module")
            && stderr.contains("reinstall the puppet-agent package"),
        "{stderr}"
    );
    node.assert_kick_installed();

    // Reinstalling the package brings Puppet's module; the next install
    // keeps that one, and restore then works.
    node.put_puppets(RUBY);
    ok(&node.installer("install"));
    node.assert_saved(RUBY);
    ok(&node.installer("restore"));
    node.assert_puppets_installed(RUBY);
}

#[test]
fn install_replaces_a_running_module_and_refuses_what_is_not_kicks() {
    let node = Layout::new();
    ok(&node.installer("install"));
    // A run in progress: the module waits for its request on stdin.
    let mut running = task_command(&node.module())
        .arg("run")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let upgrade = node.installer("install");
    let _ = running.kill();
    let _ = running.wait();
    ok(&upgrade);
    node.assert_kick_installed();
    node.assert_saved(RUBY);

    // A KICK_TASK that is not Kick's binary is refused, nothing changes.
    let node = Layout::new();
    let out = node.sh(&format!(
        "KICK_TASK='{}' sh psick/files/install-pxp-module.sh install",
        node.module().display()
    ));
    assert!(failed(&out, 1).contains("is not Kick's psick-task binary"));
    node.assert_puppets_installed(RUBY);
    assert!(!node.saved().exists());

    // No pxp-agent: refused.
    let out = node.sh("PXP_MODULES_DIR=/nonexistent sh psick/files/install-pxp-module.sh install");
    assert!(failed(&out, 1).contains("/nonexistent is not a directory"));

    // Anything else is a usage error.
    for args in ["", "uninstall"] {
        assert!(
            failed(&node.installer(args), 2).contains("usage:"),
            "{args}"
        );
    }
    node.assert_puppets_installed(RUBY);
    assert!(!node.saved().exists());
    assert_eq!(node.restarts(), 0);
}
