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
        // Only a path is kept, no open descriptor: a child forked meanwhile
        // must not hold the executable open for writing (ETXTBSY at exec).
        let tmp = tempfile::NamedTempFile::new_in(&dir)?.into_temp_path();
        std::fs::write(&tmp, &bytes)?;
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
        std::fs::copy(&cached, &to).map_err(|e| format!("cannot copy {}: {e}", f.install))?;
        if i == 0 {
            exe = to;
        }
    }
    Ok((dir, exe))
}
