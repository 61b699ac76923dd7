//! The repository as the Forge module kick-psick: `make module`'s tarball, installed with
//! `puppet module install` into the server's production environment, must be served by the
//! real puppetserver's task API with the entry and both architectures' built binaries (their
//! checksums and sizes), and its pxp-agent module installer must work from where docs/tasks.md
//! says the installed module is.

use std::path::{Path, PathBuf};
use std::process::Command;

use kick_e2e::{SimNode, Stack, sha256_file, task_bin, task_entry, workspace_root};
use serde_json::Value;

/// The binaries the module ships, as its metadata's `files` name them, and where `make task`
/// staged each.
fn shipped_binaries() -> [(&'static str, PathBuf); 2] {
    let root = workspace_root();
    [
        (
            "psick/files/x86_64/psick-task",
            root.join("files/x86_64/psick-task"),
        ),
        (
            "psick/files/aarch64/psick-task",
            root.join("files/aarch64/psick-task"),
        ),
    ]
}

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
        sha256_file(&task_entry()),
        "tarball holds the tasks' entry"
    );
    let mut files = vec![installed];
    for (name, built) in shipped_binaries() {
        let installed = modules.join(name);
        assert_eq!(
            sha256_file(&installed),
            sha256_file(&built),
            "tarball holds the built {name}"
        );
        files.push(installed);
    }
    for f in &files {
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(f).expect("stat").permissions(),
        );
        assert_eq!(
            mode & 0o111,
            0o111,
            "{} installed executable: {mode:o}",
            f.display()
        );
    }
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
    assert_eq!(
        task["metadata"]["supports_noop"],
        Value::Bool(true),
        "{task:#}"
    );
    // The entry, then each binary under the name the metadata's `files` give it (pxp-agent
    // matches that name and puts the file at <installdir>/<name>); the agent side downloads
    // each by the uri the API gives: the same bytes.
    let mut expected = vec![("puppet_agent".to_owned(), task_entry())];
    expected.extend(shipped_binaries().map(|(n, p)| (n.to_owned(), p)));
    check_task_files(&node, &stack, &task, &expected, true);

    // The other tasks name the same entry through `implementations` and ship the same files.
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
        check_task_files(&node, &stack, &task, &expected, false);
        assert_eq!(
            task["metadata"]["supports_noop"],
            Value::Bool(true),
            "{name}"
        );
    }
}

/// The task API's `files` are exactly `expected` (name, local file), with each file's sha256 and
/// size; with `download`, each is also fetched by its uri and compared.
fn check_task_files(
    node: &SimNode,
    stack: &Stack,
    task: &Value,
    expected: &[(String, PathBuf)],
    download: bool,
) {
    let files = task["files"].as_array().expect("files array");
    let names: Vec<&str> = files
        .iter()
        .filter_map(|f| f["filename"].as_str())
        .collect();
    let want: Vec<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, want, "{task:#}");
    for (file, (name, local)) in files.iter().zip(expected) {
        assert_eq!(
            file["sha256"].as_str(),
            Some(sha256_file(local).as_str()),
            "{name}: {task:#}"
        );
        let size = std::fs::metadata(local).expect("stat").len();
        assert_eq!(file["size_bytes"].as_u64(), Some(size), "{name}: {task:#}");
        if download {
            let uri = &file["uri"];
            let path = uri["path"].as_str().expect("uri.path");
            let env = uri["params"]["environment"]
                .as_str()
                .unwrap_or("production");
            let dl = node.root().join("downloaded-task");
            get(node, stack, &format!("{path}?environment={env}"), Some(&dl));
            assert_eq!(sha256_file(&dl), sha256_file(local), "{name} downloaded");
        }
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
    let mut executables = Vec::new();
    for line in listing.lines() {
        // -rwxr-xr-x 0/0  1622976 2026-11-23 19:30 kick-psick-0.1.0/files/x86_64/psick-task
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
        if [
            "tasks/puppet_agent",
            "files/x86_64/psick-task",
            "files/aarch64/psick-task",
        ]
        .contains(&rel)
        {
            executables.push(rel.to_owned());
            assert!(mode.starts_with("-rwx"), "executable: {line}");
        } else if let Some(name) = rel.strip_prefix("tasks/") {
            assert!(
                name.is_empty() || name.ends_with(".json"),
                "only task metadata and the entry under tasks/: {path}"
            );
        }
        if let Some(name) = rel.strip_prefix("files/") {
            assert!(
                [
                    "",
                    "install-pxp-module.sh",
                    "x86_64/",
                    "x86_64/psick-task",
                    "aarch64/",
                    "aarch64/psick-task"
                ]
                .contains(&name),
                "only the installer and the two binaries under files/: {path}"
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
    executables.sort();
    assert_eq!(
        executables,
        [
            "files/aarch64/psick-task",
            "files/x86_64/psick-task",
            "tasks/puppet_agent"
        ],
        "{listing}"
    );
}
