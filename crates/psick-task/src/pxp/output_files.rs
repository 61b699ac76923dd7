//! pxp-agent's `output_files` for non-blocking requests: the module writes
//! its results to `stdout`, its messages to `stderr`, and its exit code to
//! `exitcode` last, after both are synced, since pxp-agent reads the other
//! two as soon as `exitcode` appears.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use serde_json::Value;

/// Exit code pxp-agent reserves for "could not write the output files".
pub const EXIT_OUTPUT_FILES: u8 = 5;

/// The three paths of a request's `output_files`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// Results.
    pub stdout: PathBuf,
    /// Messages.
    pub stderr: PathBuf,
    /// The exit code, written last.
    pub exitcode: PathBuf,
}

impl Paths {
    /// `output_files` of a request, if it has any; `Err` when it is there
    /// but not three absolute paths.
    pub fn from_request(args: &Value) -> Result<Option<Paths>, String> {
        let Some(files) = args.get("output_files").filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let path = |key: &str| {
            files
                .get(key)
                .and_then(Value::as_str)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .ok_or_else(|| format!("output_files.{key} must be an absolute path"))
        };
        Ok(Some(Paths {
            stdout: path("stdout")?,
            stderr: path("stderr")?,
            exitcode: path("exitcode")?,
        }))
    }
}

fn create(path: &PathBuf) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o640)
        .open(path)
}

/// The opened stdout and stderr files.
#[derive(Debug)]
pub struct Opened {
    paths: Paths,
    stdout: File,
    stderr: File,
}

impl Opened {
    /// Opens (creates, truncates) the stdout and stderr files, mode 0640.
    pub fn open(paths: Paths) -> io::Result<Opened> {
        Ok(Opened {
            stdout: create(&paths.stdout)?,
            stderr: create(&paths.stderr)?,
            paths,
        })
    }

    /// Writes the results and messages, syncs both, then writes the exit
    /// code as `N\n`.
    pub fn finish(mut self, results: &str, messages: &str, code: u8) -> io::Result<()> {
        self.stdout.write_all(results.as_bytes())?;
        self.stderr.write_all(messages.as_bytes())?;
        self.stdout.sync_all()?;
        self.stderr.sync_all()?;
        let mut f = create(&self.paths.exitcode)?;
        writeln!(f, "{code}")?;
        f.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_all_three_with_the_exit_code_last() {
        let d = tempfile::tempdir().unwrap();
        let req = serde_json::json!({"output_files": {
            "stdout": d.path().join("stdout"), "stderr": d.path().join("stderr"),
            "exitcode": d.path().join("exitcode")}});
        let paths = Paths::from_request(&req).unwrap().unwrap();
        std::fs::write(&paths.stdout, "old content that is longer").unwrap();
        let o = Opened::open(paths.clone()).unwrap();
        assert!(!paths.exitcode.exists(), "no exit code before the end");
        o.finish("{\"a\":1}", "log\n", 1).unwrap();
        assert_eq!(std::fs::read_to_string(&paths.stdout).unwrap(), "{\"a\":1}");
        assert_eq!(std::fs::read_to_string(&paths.stderr).unwrap(), "log\n");
        assert_eq!(std::fs::read_to_string(&paths.exitcode).unwrap(), "1\n");
        let mode = std::fs::metadata(&paths.exitcode)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640);
    }

    #[test]
    fn absent_null_and_bad_output_files() {
        assert_eq!(Paths::from_request(&serde_json::json!({})).unwrap(), None);
        assert_eq!(
            Paths::from_request(&serde_json::json!({"output_files": null})).unwrap(),
            None
        );
        let bad = serde_json::json!({"output_files": {"stdout": "rel", "stderr": "/e", "exitcode": "/x"}});
        assert!(
            Paths::from_request(&bad)
                .unwrap_err()
                .contains("output_files.stdout")
        );
    }
}
