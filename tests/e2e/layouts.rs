//! The real puppet reached through either packaging's path on a node configured the other
//! way: the task must read the settings puppet really uses (it asks puppet once), so the
//! result's resources and versions are those of the run.
//!
//! Each case builds its own system root (`PSICK_TEST_SYSROOT`) holding one layout's confdir
//! marker and a wrapper that runs Debian's puppet with that layout's default directories
//! under the root (as if they were compiled in); the node's puppet.conf leaves vardir and
//! publicdir to those defaults. Nothing outside the temp dirs is touched.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use kick_e2e::{SimNode, Stack};
use serde_json::json;

/// One packaging: its confdir marker, default vardir and publicdir (below the root).
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

fn run_installed(layout: &Layout, bin_rel: &str) {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let node = SimNode::unique(&stack, "e2e-layout");
    node.bootstrap();
    let root = tempfile::tempdir().expect("system root");
    let r = |rel: &str| root.path().join(rel);
    std::fs::create_dir_all(r(layout.confdir)).unwrap();
    // The directories come from the packaging, not from puppet.conf.
    let conf = node.confdir().join("puppet.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("vardir") && !l.starts_with("publicdir"))
        .collect();
    std::fs::write(&conf, kept.join("\n") + "\n").unwrap();
    let bin = r(bin_rel);
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::write(
        &bin,
        format!(
            "#!/bin/sh\nexec {puppet} \"$@\" --vardir={v} --publicdir={p}\n",
            puppet = Stack::PUPPET_BIN,
            v = r(layout.vardir).display(),
            p = r(layout.publicdir).display(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut env = node.task_env();
    env.retain(|(k, _)| k != "PSICK_PUPPET_BIN");
    env.push(("PSICK_PUPPET_BIN".into(), bin.display().to_string()));
    env.push((
        "PSICK_TEST_SYSROOT".into(),
        root.path().display().to_string(),
    ));
    let run = kick_e2e::TaskRun::run(
        &kick_e2e::task_bin(),
        &env,
        &json!({"environment": "idem", "noop": true}),
    );
    let summary = r(layout.publicdir).join("last_run_summary.yaml");
    assert!(summary.is_file(), "puppet wrote {}", summary.display());
    assert!(run.exit.success(), "{}", run.dump());
    assert_eq!(run.result["server"], json!("localhost"), "{}", run.dump());
    assert!(
        run.resource("total").is_some_and(|t| t > 0),
        "the summary was read from where puppet wrote it:\n{}",
        run.dump()
    );
    assert!(run.result["puppet_version"].is_string(), "{}", run.dump());
    assert!(run.result["config_version"].is_string(), "{}", run.dump());
    assert!(
        !Path::new(&r(layout.vardir))
            .join("state/agent_catalog_run.lock")
            .exists()
    );
}

#[test]
fn debian_layout_with_the_binary_under_opt_puppetlabs() {
    run_installed(&DEBIAN, "opt/puppetlabs/bin/puppet");
}

#[test]
fn aio_layout_with_the_binary_at_debians_path() {
    run_installed(&AIO, "usr/bin/puppet");
}
