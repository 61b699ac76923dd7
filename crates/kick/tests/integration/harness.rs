//! An in-process orchestrator with fixture modules, and two ways to run kick
//! against it: in-process through `kick::run` (with injectable Ctrl-C), or
//! the built binary.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use kick::{Cli, Context, Interrupts, Streams, WatchConfig};
use kick_orchestrator::{Config, NodeSpec};
use serde_json::Value;
use tempfile::TempDir;
use tokio::sync::{mpsc, oneshot};

pub const TOKEN: &str = "kick-test-token-0123456789";

/// The fixture modules: `psick` (a test double of psick::puppet_agent driven
/// by FIXTURE_STATUS / FIXTURE_SLEEP in the node's environment) and
/// `fixture` (sleep, echo, fail, big, types).
pub fn modulepath() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/modules")
}

/// A node whose fake agent run ends `status` after `sleep` seconds.
pub fn node(name: &str, status: &str, sleep: f64) -> NodeSpec {
    let mut n = NodeSpec::new(name);
    n.env.insert("FIXTURE_STATUS".into(), status.into());
    n.env.insert("FIXTURE_SLEEP".into(), sleep.to_string());
    n.env.insert("FIXTURE_NAME".into(), name.into());
    n
}

/// A running orchestrator; stopped when dropped.
pub struct Emu {
    pub url: String,
    pub dir: TempDir,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Emu {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

impl Emu {
    pub async fn start(nodes: Vec<NodeSpec>) -> Emu {
        Self::start_with(nodes, |b| b).await
    }

    pub async fn start_with(
        nodes: Vec<NodeSpec>,
        tweak: impl FnOnce(kick_orchestrator::ConfigBuilder) -> kick_orchestrator::ConfigBuilder,
    ) -> Emu {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Config::builder().token(TOKEN).modulepath(modulepath());
        for n in nodes {
            b = b.node(n);
        }
        let config: Config = tweak(b).build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = kick_orchestrator::serve(listener, config, async {
                let _ = rx.await;
            })
            .await;
        });
        let token_file = dir.path().join("token");
        write_private(&token_file, TOKEN);
        Emu {
            url,
            dir,
            stop: Some(tx),
        }
    }

    pub fn token_file(&self) -> PathBuf {
        self.dir.path().join("token")
    }

    /// `--service-url` and `--token-file` for this orchestrator.
    pub fn conn(&self) -> Vec<String> {
        vec![
            "--service-url".into(),
            self.url.clone(),
            "--token-file".into(),
            self.token_file().display().to_string(),
        ]
    }

    /// Runs kick in-process with `parts` and this orchestrator's connection flags.
    pub async fn kick(&self, parts: &[&str]) -> Run {
        kick(&args(parts, self)).await
    }
}

pub fn write_private(path: &Path, content: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A `Write` whose bytes the test reads afterwards.
#[derive(Clone, Default)]
pub struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buf {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// What a kick run left behind.
#[derive(Debug)]
pub struct Run {
    pub code: u8,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout as one JSON document (`--format json`).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:?}"))
    }
}

/// Fast polling for tests.
pub fn fast_watch() -> WatchConfig {
    WatchConfig {
        poll_min: Duration::from_millis(20),
        poll_busy: Duration::from_millis(50),
        poll_max: Duration::from_millis(200),
        page_size: 50,
        give_up: Duration::from_secs(3),
        job_check: Duration::from_secs(2),
    }
}

/// Runs kick in-process with `args` (without the program name).
pub async fn kick(args: &[String]) -> Run {
    kick_with(args.to_vec(), Interrupts::none()).await
}

/// Runs kick in-process with Ctrl-C presses coming from `interrupts`.
pub async fn kick_with(args: Vec<String>, interrupts: Interrupts) -> Run {
    kick_in(args, interrupts, None).await
}

/// [`kick_with`], keeping rollout state files in `state_dir`.
pub async fn kick_in(args: Vec<String>, interrupts: Interrupts, state_dir: Option<&Path>) -> Run {
    let (out, err) = (Buf::default(), Buf::default());
    let mut argv = vec!["kick".to_owned()];
    argv.extend(args);
    let cli = match Cli::try_parse_from(&argv) {
        Ok(c) => c,
        Err(e) => {
            return Run {
                code: 1,
                stdout: String::new(),
                stderr: e.to_string(),
            };
        }
    };
    let streams = Streams {
        out: Box::new(out.clone()),
        err: Box::new(err.clone()),
        out_tty: false,
        err_tty: false,
    };
    let mut ctx = Context::new(streams, interrupts);
    ctx.watch = fast_watch();
    ctx.state_dir = state_dir.map(Path::to_owned);
    let code = match kick::run(cli, &mut ctx).await {
        Ok(c) => c,
        Err(e) => {
            let mut e2 = err.clone();
            writeln!(e2, "error: {e}").unwrap();
            e.exit_code()
        }
    };
    Run {
        code,
        stdout: out.text(),
        stderr: err.text(),
    }
}

/// A Ctrl-C button for [`kick_with`].
pub fn ctrl_c() -> (mpsc::UnboundedSender<()>, Interrupts) {
    Interrupts::channel()
}

pub fn args(parts: &[&str], emu: &Emu) -> Vec<String> {
    let mut v: Vec<String> = parts.iter().map(|s| (*s).to_owned()).collect();
    v.extend(emu.conn());
    v
}

/// The built binary with a clean environment (no user config, no colour).
pub fn kick_bin(home: &Path) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_kick"));
    c.env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .kill_on_drop(true);
    c
}

/// Runs the binary to completion.
pub async fn run_bin(emu: &Emu, parts: &[&str]) -> Run {
    run_bin_raw(emu, args(parts, emu)).await
}

/// Runs the binary with exactly `argv` (no connection flags added).
pub async fn run_bin_raw(emu: &Emu, argv: Vec<String>) -> Run {
    let out = kick_bin(emu.dir.path()).args(argv).output().await.unwrap();
    Run {
        code: out.status.code().map_or(255, |c| c as u8),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Replaces job ids, durations and timestamps with placeholders for snapshots.
pub fn redact(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for line in s.lines() {
        let mut l = line.to_owned();
        for (pat, rep) in [
            ("job ", "job [ID]"),
            ("Job ", "Job [ID]"),
            ("watch ", "watch [ID]"),
        ] {
            l = replace_number_after(&l, pat, rep);
        }
        l = replace_durations(&l);
        out.push_str(l.trim_end());
        out.push('\n');
    }
    out
}

fn replace_number_after(l: &str, pat: &str, rep: &str) -> String {
    let mut res = String::new();
    let mut rest = l;
    while let Some(i) = rest.find(pat) {
        res.push_str(&rest[..i]);
        let after = &rest[i + pat.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            res.push_str(rep);
            rest = &after[digits..];
        } else {
            res.push_str(pat);
            rest = after;
        }
    }
    res.push_str(rest);
    res
}

// `0.5s`, `12.3s`, `4m 05s` → `[DUR]`.
fn replace_durations(l: &str) -> String {
    let words: Vec<&str> = l.split(' ').collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        let is_secs = |w: &str| {
            w.strip_suffix('s').is_some_and(|n| {
                !n.is_empty()
                    && n.contains('.')
                    && n.chars().all(|c| c.is_ascii_digit() || c == '.')
            })
        };
        if is_secs(w) {
            out.push("[DUR]".into());
        } else {
            out.push(w.to_owned());
        }
        i += 1;
    }
    out.join(" ")
}
