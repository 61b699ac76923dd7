//! A task's files the way pxp-agent gets them: the orchestrator names each
//! with its sha256 when the job starts; when a node runs, the file is put in
//! the task cache at `<cache>/<sha256>/<filename>` (mode 0750) after its
//! sha256 is checked, and the cached copy is what runs. A multi-file task
//! (metadata `files`) gets an install directory per run holding
//! `<module>/<mount>/<path>` copies, passed as `_installdir`.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::Digest;

use crate::config::Config;
use crate::error::Failure;
use crate::exec;
use crate::modules::{self, ResolvedTask};

/// One file of a task, as the job knows it.
#[derive(Debug, Clone)]
pub struct TaskFile {
    /// Where the module holds it.
    pub source: PathBuf,
    /// Its name in the cache.
    pub filename: String,
    /// `<module>/<mount>/<path>` under an install directory.
    pub install: String,
    /// Lowercase hex, as puppetserver's task API gives it.
    pub sha256: String,
    pub size: u64,
}

/// The sha256 (lowercase hex) and size of a file.
pub fn digest(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    Ok((hex::encode(h.finalize()), size))
}

fn file(source: PathBuf, install: String) -> Result<TaskFile, Failure> {
    let (sha256, size) = digest(&source).map_err(|e| {
        Failure::internal(format!(
            "cannot read the task file {}: {e}",
            source.display()
        ))
    })?;
    let filename = source
        .file_name()
        .and_then(|f| f.to_str())
        .unwrap_or_default()
        .to_owned();
    Ok(TaskFile {
        source,
        filename,
        install,
        sha256,
        size,
    })
}

/// The executable first, then every file the metadata's `files` (and the
/// chosen implementation's) name, directories (a trailing `/`) expanded.
pub fn task_files(config: &Config, task: &ResolvedTask) -> Result<Vec<TaskFile>, Failure> {
    let Some(exe) = &task.executable else {
        return Ok(Vec::new());
    };
    let module = task.name.split("::").next().unwrap_or_default();
    let exe_name = exe.file_name().and_then(|f| f.to_str()).unwrap_or_default();
    let mut out = vec![file(exe.clone(), format!("{module}/tasks/{exe_name}"))?];
    let roots = modules::module_roots(config);
    for entry in task.files() {
        let bad = |why: &str| {
            Failure::invalid_body(format!(
                "Task {} lists the file '{entry}', which {why}",
                task.name
            ))
            .details(serde_json::json!({ "task": task.name, "file": entry }))
        };
        let mut parts = entry.splitn(3, '/');
        let (Some(m), Some(mount), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("is not <module>/<files|lib|scripts|tasks>/<path>"));
        };
        if !["files", "lib", "scripts", "tasks"].contains(&mount)
            || rest.split('/').any(|s| s == ".." || s == ".")
        {
            return Err(bad("is not <module>/<files|lib|scripts|tasks>/<path>"));
        }
        let root = roots
            .iter()
            .find(|(n, _)| n == m)
            .map(|(_, r)| r.clone())
            .ok_or_else(|| bad("belongs to a module this service does not have"))?;
        let path = root.join(mount).join(rest.trim_end_matches('/'));
        if entry.ends_with('/') {
            let mut found = Vec::new();
            walk(&path, &mut found).map_err(|_| bad("is not a readable directory"))?;
            found.sort();
            for p in found {
                let rel = p.strip_prefix(&root).unwrap_or(&p).to_string_lossy();
                out.push(file(p.clone(), format!("{m}/{rel}"))?);
            }
        } else if path.is_file() {
            out.push(file(path, entry.to_owned())?);
        } else {
            return Err(bad("does not exist"));
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.is_file() {
            out.push(p);
        }
    }
    Ok(())
}

/// The cached copy of `f`, put there now if missing; an error (worded as
/// pxp-agent would refuse the request) when the file no longer has the
/// sha256 the job started with.
pub fn fetch(cache: &Path, f: &TaskFile) -> Result<PathBuf, String> {
    let dir = cache.join(&f.sha256);
    let cached = dir.join(&f.filename);
    if cached.is_file() {
        return Ok(cached);
    }
    let bytes =
        std::fs::read(&f.source).map_err(|e| format!("cannot download {}: {e}", f.install))?;
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    if sha != f.sha256 {
        return Err(format!(
            "The downloaded file {} does not match its sha256 (expected {}, got {sha}): it changed after the job started",
            f.install, f.sha256
        ));
    }
    let write = || -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&dir)?;
        let tmp = tempfile::NamedTempFile::new_in(&dir)?.into_temp_path();
        exec::writing_executable(|| std::fs::write(&tmp, &bytes))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o750))?;
        tmp.persist(&cached).map_err(|e| e.error)?;
        Ok(())
    };
    write().map_err(|e| format!("cannot write the task cache {}: {e}", dir.display()))?;
    Ok(cached)
}

/// An install directory for one run of a multi-file task: every file copied
/// from the cache to `<dir>/<module>/<mount>/<path>`. Returns the directory
/// (removed when dropped) and the executable's path in it.
pub fn install(
    cache: &Path,
    spool: &Path,
    files: &[TaskFile],
) -> Result<(tempfile::TempDir, PathBuf), String> {
    std::fs::create_dir_all(spool)
        .map_err(|e| format!("cannot create {}: {e}", spool.display()))?;
    let dir = tempfile::Builder::new()
        .prefix("temp_task_")
        .tempdir_in(spool)
        .map_err(|e| format!("cannot create an install directory: {e}"))?;
    let mut exe = PathBuf::new();
    for (i, f) in files.iter().enumerate() {
        let cached = fetch(cache, f)?;
        let to = dir.path().join(&f.install);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        // A copy, not a hard link: a task that wrote into its own files
        // would otherwise change the service's cache, which a local node
        // does not check again before the next run.
        exec::writing_executable(|| std::fs::copy(&cached, &to))
            .map_err(|e| format!("cannot copy {}: {e}", f.install))?;
        if i == 0 {
            exe = to;
        }
    }
    Ok((dir, exe))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn task_file(source: PathBuf, install: &str) -> TaskFile {
        let (sha256, size) = digest(&source).unwrap();
        TaskFile {
            filename: source.file_name().unwrap().to_str().unwrap().to_owned(),
            source,
            install: install.to_owned(),
            sha256,
            size,
        }
    }

    #[test]
    fn a_task_that_changes_its_installed_files_leaves_the_cache_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let module = dir.path().join("m/tasks");
        std::fs::create_dir_all(&module).unwrap();
        std::fs::write(module.join("entry"), "#!/bin/sh\n").unwrap();
        std::fs::write(module.join("data"), "original\n").unwrap();
        let files = vec![
            task_file(module.join("entry"), "m/tasks/entry"),
            task_file(module.join("data"), "m/tasks/data"),
        ];
        let (cache, spool) = (dir.path().join("cache"), dir.path().join("spool"));
        let (installdir, _) = install(&cache, &spool, &files).unwrap();
        std::fs::write(
            installdir.path().join("m/tasks/data"),
            "changed by the task\n",
        )
        .unwrap();
        let cached = fetch(&cache, &files[1]).unwrap();
        assert_eq!(std::fs::read_to_string(cached).unwrap(), "original\n");
    }

    /// A multi-file task whose entry execs its second file, run by many
    /// nodes at once as a job runs them: every run installs, then starts.
    /// An install that held a file open for writing while another node's
    /// task was being forked made that copy unexecutable ("Text file
    /// busy", exit 126) for as long as the fork took to exec.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_installs_never_leave_a_file_busy_for_another_nodes_exec() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let module = dir.path().join("m");
        std::fs::create_dir_all(module.join("tasks")).unwrap();
        std::fs::create_dir_all(module.join("files")).unwrap();
        let entry = module.join("tasks/entry");
        std::fs::write(
            &entry,
            "#!/bin/sh\nexec \"${0%/tasks/entry}/files/payload\"\n",
        )
        .unwrap();
        // A big payload keeps each copy's descriptor open long enough for
        // the race to show within a few hundred runs.
        let payload = module.join("files/payload");
        let mut body = b"#!/bin/sh\nexit 0\n".to_vec();
        body.extend(std::iter::repeat_n(b"# padding\n".as_slice(), 400_000).flatten());
        std::fs::write(&payload, body).unwrap();
        for p in [&entry, &payload] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let files = vec![
            task_file(entry, "m/tasks/entry"),
            task_file(payload, "m/files/payload"),
        ];
        let (cache, spool) = (dir.path().join("cache"), dir.path().join("spool"));
        let spawner = std::sync::Arc::new(exec::Spawner::default());
        let mut nodes = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (cache, spool, files, spawner) =
                (cache.clone(), spool.clone(), files.clone(), spawner.clone());
            nodes.spawn(async move {
                let mut failures = Vec::new();
                for _ in 0..25 {
                    let (c, s, f) = (cache.clone(), spool.clone(), files.clone());
                    let (installdir, exe) =
                        tokio::task::spawn_blocking(move || install(&c, &s, &f))
                            .await
                            .unwrap()
                            .unwrap();
                    let (_keep, rx) = tokio::sync::watch::channel(exec::StopLevel::None);
                    let out = exec::run(
                        exec::Spec {
                            program: &exe,
                            stdin: None,
                            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
                            workdir: Path::new("/"),
                            timeout: Some(Duration::from_secs(60)),
                            kill_grace: Duration::from_secs(1),
                            max_output: 1 << 16,
                            nice: None,
                            spawner: &spawner,
                        },
                        rx,
                    )
                    .await;
                    if !matches!(out.ending, exec::Ending::Exited(0)) {
                        failures.push(format!(
                            "{:?}: {}",
                            out.ending,
                            String::from_utf8_lossy(&out.stderr)
                        ));
                    }
                    drop(installdir);
                }
                failures
            });
        }
        let mut failures = Vec::new();
        while let Some(f) = nodes.join_next().await {
            failures.extend(f.unwrap());
        }
        assert!(
            failures.is_empty(),
            "{} of 200 runs failed: {failures:#?}",
            failures.len()
        );
    }
}
