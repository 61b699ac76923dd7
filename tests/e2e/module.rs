//! The repository as the Forge module kick-psick: `make module`'s tarball, installed with
//! `puppet module install` into the server's production environment, must be served by the
//! real puppetserver's task API with the built binary's checksum and size, and its pxp-agent
//! module installer must work from where docs/tasks.md says the installed module is.

use std::path::{Path, PathBuf};
use std::process::Command;

use kick_e2e::{SimNode, Stack, sha256_file, task_bin, workspace_root};
use serde_json::Value;

fn module_tarball() -> PathBuf {
    let root = workspace_root();
    let meta: Value = serde_json::from_slice(
        &std::fs::read(root.join("metadata.json")).expect("read metadata.json"),
    )
    .expect("metadata.json is JSON");
    let name = meta["name"].as_str().expect("metadata name");
    let version = meta["version"].as_str().expect("metadata version");
    let tarball = root.join(format!("pkg/{name}-{version}.tar.gz"));
    assert!(
        tarball.is_file(),
        "{} not found: run `make module` (make test does)",
        tarball.display()
    );
    tarball
}

/// GET a puppetserver API path with the node's client certificate, verifying the server
/// against the node's CA (the server cert has `localhost` in its SANs).
fn get(node: &SimNode, stack: &Stack, path: &str, out: Option<&std::path::Path>) -> Vec<u8> {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--fail", "--max-time", "60"])
        .arg("--cacert")
        .arg(node.ca_pem())
        .arg("--cert")
        .arg(node.cert_pem())
        .arg("--key")
        .arg(node.key_pem());
    if let Some(out) = out {
        cmd.arg("-o").arg(out);
    }
    let res = cmd
        .arg(format!("{}{path}", stack.url()))
        .output()
        .expect("run curl");
    assert!(
        res.status.success(),
        "GET {path} failed ({}): {}",
        res.status,
        String::from_utf8_lossy(&res.stderr)
    );
    res.stdout
}

#[test]
fn puppetserver_serves_the_task_with_the_built_binary() {
    let Some(stack) = Stack::from_env() else {
        return;
    };
    let bin = task_bin();
    let tarball = module_tarball();
    let modules = stack.environment_dir("production").join("modules");

    let install = Command::new(Stack::PUPPET_BIN)
        .args([
            "module",
            "install",
            "--ignore-dependencies",
            "--force",
            "--color=false",
        ])
        .arg("--target-dir")
        .arg(&modules)
        .arg(&tarball)
        .output()
        .expect("run puppet module install");
    assert!(
        install.status.success(),
        "puppet module install {} failed:\n{}{}",
        tarball.display(),
        String::from_utf8_lossy(&install.stdout),
        String::from_utf8_lossy(&install.stderr)
    );
    let installed = modules.join("psick/tasks/puppet_agent");
    assert_eq!(
        sha256_file(&installed),
        sha256_file(&bin),
        "tarball holds the built binary"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&installed).expect("stat").permissions(),
    );
    assert_eq!(mode & 0o111, 0o111, "installed executable: {mode:o}");
    installer_works_from_the_installed_module(&modules.join("psick"), &bin);
    // puppetserver reads the module as user puppet.
    let chmod = Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(modules.join("psick"))
        .status()
        .expect("chmod");
    assert!(chmod.success());

    let node = SimNode::unique(&stack, "e2e-module");
    node.bootstrap();
    let body = get(
        &node,
        &stack,
        "/puppet/v3/tasks/psick/puppet_agent?environment=production",
        None,
    );
    let task: Value = serde_json::from_slice(&body).expect("task API answers JSON");
    let files = task["files"].as_array().expect("files array");
    let file = files
        .iter()
        .find(|f| f["filename"] == "puppet_agent")
        .unwrap_or_else(|| panic!("no puppet_agent in files: {task:#}"));
    let size = std::fs::metadata(&bin).expect("stat binary").len();
    assert_eq!(
        file["sha256"].as_str(),
        Some(sha256_file(&bin).as_str()),
        "{task:#}"
    );
    assert_eq!(file["size_bytes"].as_u64(), Some(size), "{task:#}");
    assert_eq!(
        task["metadata"]["supports_noop"],
        Value::Bool(true),
        "{task:#}"
    );

    // The agent side downloads the file by the uri the API gives: same bytes.
    let uri = &file["uri"];
    let path = uri["path"].as_str().expect("uri.path");
    let env = uri["params"]["environment"]
        .as_str()
        .unwrap_or("production");
    let dl = node.root().join("downloaded-task");
    get(
        &node,
        &stack,
        &format!("{path}?environment={env}"),
        Some(&dl),
    );
    assert_eq!(sha256_file(&dl), sha256_file(&bin));

    // The other tasks name the same executable through `implementations`.
    for name in [
        "puppet_unlock",
        "puppet_enable_noop",
        "system_update",
        "puppet_install",
    ] {
        let body = get(
            &node,
            &stack,
            &format!("/puppet/v3/tasks/psick/{name}?environment=production"),
            None,
        );
        let task: Value = serde_json::from_slice(&body).expect("task API answers JSON");
        let files = task["files"].as_array().expect("files array");
        assert_eq!(files.len(), 1, "{name}: {task:#}");
        assert_eq!(files[0]["filename"], "puppet_agent", "{name}: {task:#}");
        assert_eq!(
            files[0]["sha256"].as_str(),
            Some(sha256_file(&bin).as_str()),
            "{name}"
        );
        assert_eq!(
            task["metadata"]["supports_noop"],
            Value::Bool(true),
            "{name}"
        );
    }
}

/// docs/tasks.md names the installed module's folder, and `files/install-pxp-module.sh` run
/// from it (as the guide's install block runs it) installs the module's own binary as
/// pxp-agent's module, keeping the original; `restore` brings the original back.
fn installer_works_from_the_installed_module(psick: &Path, bin: &Path) {
    let guide = std::fs::read_to_string(workspace_root().join("docs/tasks.md")).expect("guide");
    assert!(
        guide.contains(&format!("`{}`", psick.display())),
        "docs/tasks.md does not name {}",
        psick.display()
    );
    let pxp = tempfile::tempdir().expect("temp dir");
    let modules = pxp.path().join("modules");
    std::fs::create_dir(&modules).expect("mkdir");
    let module = modules.join("pxp-module-puppet");
    let ruby = "#!/opt/puppetlabs/puppet/bin/ruby\n# Puppet's pxp-module-puppet\n";
    std::fs::write(&module, ruby).expect("write");
    let installer = psick.join("files/install-pxp-module.sh");
    for mode in ["install", "install", "restore"] {
        let out = Command::new("sh")
            .arg(&installer)
            .arg(mode)
            .env("PXP_MODULES_DIR", &modules)
            .env_remove("PXP_SAVED_MODULE")
            .env_remove("KICK_TASK")
            .output()
            .expect("run the installer");
        assert!(
            out.status.success(),
            "{} {mode}: {}{}",
            installer.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if mode == "install" {
            assert_eq!(sha256_file(&module), sha256_file(bin), "after {mode}");
        }
        let saved = std::fs::read_to_string(pxp.path().join("pxp-module-puppet.rb.orig"));
        assert_eq!(saved.ok().as_deref(), Some(ruby), "after {mode}");
    }
    assert_eq!(std::fs::read_to_string(&module).ok().as_deref(), Some(ruby));
}

#[test]
fn module_tarball_holds_only_the_module_files() {
    let tarball = module_tarball();
    let top = tarball
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".tar.gz"))
        .expect("tarball name")
        .to_owned();
    let out = Command::new("tar")
        .arg("-tvzf")
        .arg(&tarball)
        .output()
        .expect("run tar");
    assert!(out.status.success(), "tar -t failed");
    let listing = String::from_utf8_lossy(&out.stdout);
    let mut saw_binary = false;
    for line in listing.lines() {
        // -rwxr-xr-x 0/0  1622976 2026-11-23 19:30 kick-psick-0.1.0/tasks/puppet_agent
        let mode = line.split_whitespace().next().unwrap_or_default();
        let path = line.split_whitespace().last().unwrap_or_default();
        let rel = path
            .strip_prefix(&format!("{top}/"))
            .unwrap_or_else(|| panic!("{path} is outside {top}/"));
        let first = rel.split('/').next().unwrap_or_default();
        assert!(
            [
                "",
                "metadata.json",
                "README.md",
                "LICENSE",
                "tasks",
                "files"
            ]
            .contains(&first),
            "unexpected entry {path} in the module tarball"
        );
        assert!(line.contains(" 0/0 "), "entries are owned by 0/0: {line}");
        if rel == "tasks/puppet_agent" {
            saw_binary = true;
            assert!(
                mode.starts_with("-rwx"),
                "the task binary is executable: {line}"
            );
        } else if let Some(name) = rel.strip_prefix("tasks/") {
            assert!(
                name.is_empty() || name.ends_with(".json"),
                "only task metadata and the binary under tasks/: {path}"
            );
        }
        if let Some(name) = rel.strip_prefix("files/") {
            assert!(
                ["", "install-pxp-module.sh"].contains(&name),
                "only the pxp-agent module installer under files/: {path}"
            );
        }
    }
    for needed in [
        "metadata.json",
        "README.md",
        "LICENSE",
        "tasks/puppet_agent.json",
        "files/install-pxp-module.sh",
    ] {
        assert!(
            listing.contains(&format!("{top}/{needed}")),
            "{needed} missing from {}:\n{listing}",
            tarball.display()
        );
    }
    assert!(saw_binary, "tasks/puppet_agent missing:\n{listing}");
}
