//! Where settings come from: the Debian (`/etc/puppet`) and AIO
//! (`/etc/puppetlabs`) layouts with the puppet executable at either path,
//! under a test system root; and lock paths that are not files.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::harness::{Node, SUMMARY_NOOP};

/// The directories one packaging uses, relative to the system root.
struct Layout {
    confdir: &'static str,
    vardir: &'static str,
    publicdir: &'static str,
}

const DEBIAN: Layout = Layout {
    confdir: "etc/puppet",
    vardir: "var/cache/puppet",
    publicdir: "var/cache/puppet/public",
};

const AIO: Layout = Layout {
    confdir: "etc/puppetlabs/puppet",
    vardir: "opt/puppetlabs/puppet/cache",
    publicdir: "opt/puppetlabs/puppet/public",
};

const DEBIAN_BIN: &str = "usr/bin/puppet";
const AIO_BIN: &str = "opt/puppetlabs/bin/puppet";

/// A node whose puppet is installed with `layout`'s directories and reached
/// at `bin`: it answers `config print` like puppet does and its agent run
/// writes the summary where that layout puts it. Every call is logged.
struct Installed {
    node: Node,
    root: PathBuf,
    bin: PathBuf,
    confdir: PathBuf,
}

impl Installed {
    fn new(layout: &Layout, bin: &str) -> Installed {
        let node = Node::new("exit 0");
        let root = node.path("sysroot");
        let p = |rel: &str| root.join(rel).display().to_string();
        let confdir = root.join(layout.confdir);
        fs::create_dir_all(&confdir).unwrap();
        fs::create_dir_all(root.join(layout.vardir).join("state")).unwrap();
        fs::create_dir_all(root.join(layout.publicdir)).unwrap();
        // Only the server is configured; the directories are the packaging's.
        fs::write(
            confdir.join("puppet.conf"),
            "[main]\nserver = layout.example.com\n",
        )
        .unwrap();
        let summary = node.path("summary.src");
        fs::write(&summary, SUMMARY_NOOP).unwrap();
        let (state, public) = (format!("{}/state", p(layout.vardir)), p(layout.publicdir));
        let script = format!(
            r#"#!/bin/sh
echo "$*" >> '{log}'
if [ "$1" = config ]; then
cat <<EOT
agent_catalog_run_lockfile = {state}/agent_catalog_run.lock
agent_disabled_lockfile = {state}/agent_disabled.lock
confdir = {confdir}
environment = production
lastrunfile = {public}/last_run_summary.yaml
lastrunreport = {state}/last_run_report.yaml
noop = false
publicdir = {public}
server = layout.example.com
server_list = 
statedir = {state}
vardir = {vardir}
EOT
exit 0
fi
cp '{summary}' '{public}/s.tmp' && mv '{public}/s.tmp' '{public}/last_run_summary.yaml'
exit 0
"#,
            log = node.path("calls").display(),
            confdir = confdir.display(),
            vardir = p(layout.vardir),
            summary = summary.display(),
        );
        let bin = root.join(bin);
        fs::create_dir_all(bin.parent().unwrap()).unwrap();
        fs::write(&bin, script).unwrap();
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
        Installed {
            node,
            root,
            bin,
            confdir,
        }
    }

    fn run(&self, params: &str) -> crate::harness::Outcome {
        let mut cmd = self.node.command();
        cmd.env("PSICK_PUPPET_BIN", &self.bin)
            .env("PSICK_PUPPET_CONFDIR", &self.confdir)
            .env("PSICK_TEST_SYSROOT", &self.root);
        self.node.run_cmd(cmd, params)
    }

    fn calls(&self) -> Vec<String> {
        fs::read_to_string(self.node.path("calls"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

fn check(layout: &Layout, bin: &str, asks: bool) {
    let node = Installed::new(layout, bin);
    let o = node.run(r#"{"noop": true}"#);
    let what = format!("{} with {bin}", layout.confdir);
    assert_eq!(o.code, 0, "{what}: {}", o.json);
    assert_eq!(o.json["server"], "layout.example.com", "{what}: {}", o.json);
    assert_eq!(o.json["resources"]["total"], 9, "{what}: {}", o.json);
    assert_eq!(o.json["puppet_version"], "7.23.0", "{what}: {}", o.json);
    assert_eq!(o.json["config_version"], "1795460334", "{what}");
    let calls = node.calls();
    let asked = calls
        .iter()
        .filter(|c| c.starts_with("config print"))
        .count();
    assert_eq!(asked, usize::from(asks), "{what}: {calls:?}");
    if asks {
        assert!(
            calls[0].contains(&format!("--confdir={}", node.confdir.display())),
            "{calls:?}"
        );
    }
    assert!(calls.last().unwrap().starts_with("agent "), "{calls:?}");
}

#[test]
fn debian_layout_with_the_binary_at_debians_path_reads_puppet_conf() {
    check(&DEBIAN, DEBIAN_BIN, false);
}

#[test]
fn debian_layout_with_the_binary_under_opt_puppetlabs_asks_puppet() {
    // The bug: the /opt path made the task assume AIO directories, so the
    // summary was looked for in the wrong place and the server was wrong.
    check(&DEBIAN, AIO_BIN, true);
}

#[test]
fn aio_layout_with_the_aio_binary_reads_puppet_conf() {
    check(&AIO, AIO_BIN, false);
}

#[test]
fn aio_layout_with_the_binary_at_debians_path_asks_puppet() {
    check(&AIO, DEBIAN_BIN, true);
}

#[test]
fn a_puppet_that_cannot_answer_is_a_clear_error() {
    let node = Installed::new(&DEBIAN, AIO_BIN);
    fs::write(
        &node.bin,
        "#!/bin/sh\necho 'Error: broken install' >&2\nexit 1\n",
    )
    .unwrap();
    let o = node.run("{}");
    assert_eq!(o.kind(), "psick/settings-unknown", "{}", o.json);
    assert!(o.msg().contains("broken install"), "{}", o.msg());
    assert!(o.msg().contains("config print"), "{}", o.msg());
}

#[test]
fn asking_puppet_is_covered_by_the_timeout() {
    let node = Installed::new(&DEBIAN, AIO_BIN);
    fs::write(&node.bin, "#!/bin/sh\nsleep 30\n").unwrap();
    let o = node.run(r#"{"timeout": 1}"#);
    assert_eq!(o.kind(), "psick/timeout", "{}", o.json);
    assert!(o.elapsed < Duration::from_secs(8), "{:?}", o.elapsed);
}

fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
}

#[test]
fn a_fifo_at_either_lock_path_fails_at_once_without_running_puppet() {
    for which in ["catalog", "disabled"] {
        let node = Node::new("exit 0");
        let lock = if which == "catalog" {
            node.catalog_lock()
        } else {
            node.disabled_lock()
        };
        mkfifo(&lock);
        // No timeout given: nothing may wait on the FIFO.
        let o = node.run("{}");
        assert_eq!(o.kind(), "psick/invalid-lockfile", "{which}: {}", o.json);
        assert!(o.msg().contains("a FIFO"), "{}", o.msg());
        assert_eq!(
            o.json["_error"]["details"]["path"],
            lock.display().to_string()
        );
        assert!(
            o.elapsed < Duration::from_secs(5),
            "{which}: {:?}",
            o.elapsed
        );
        assert_eq!(node.argv(), None, "{which}: puppet must not run");
    }
}

#[test]
fn unlock_reports_and_removes_a_fifo_at_the_catalog_lock() {
    let node = Node::new("exit 0");
    mkfifo(&node.catalog_lock());
    mkfifo(&node.disabled_lock());
    let o = node.run(r#"{"_task": "psick::puppet_unlock", "enable": true}"#);
    assert_eq!(o.code, 0, "{}", o.json);
    let reason = o.json["catalog_run_lock"]["reason"].as_str().unwrap();
    assert!(reason.contains("a FIFO"), "{reason}");
    assert_eq!(o.json["catalog_run_lock"]["action"], "removed");
    assert_eq!(o.json["disabled_lock"]["action"], "removed");
    assert!(!node.catalog_lock().exists() && !node.disabled_lock().exists());
    assert!(o.elapsed < Duration::from_secs(5));
}

#[test]
fn a_fifo_at_the_summary_path_does_not_hang_the_result() {
    let node = Node::new("exit 2");
    mkfifo(&node.lastrunfile());
    let o = node.run("{}");
    assert_eq!(o.code, 0, "{}", o.json);
    assert!(o.json["resources"].is_null());
    assert!(o.elapsed < Duration::from_secs(5));
}
