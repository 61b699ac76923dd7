//! Running kick in-process against an orchestrator, as the e2e tests do.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use kick::{Cli, Context, Interrupts, Streams};
use serde_json::Value;

#[derive(Clone, Default)]
struct Buf(Arc<Mutex<Vec<u8>>>);

impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("buffer").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buf {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("buffer")).into_owned()
    }
}

/// Runs kick in-process; returns (exit code, stdout, stderr).
pub async fn kick_text(args: &[&str]) -> (u8, String, String) {
    kick_text_in(args, None).await
}

/// Runs kick in-process, rollout state files in `state_dir` when given;
/// returns (exit code, stdout, stderr).
pub async fn kick_text_in(args: &[&str], state_dir: Option<&Path>) -> (u8, String, String) {
    let (out, err) = (Buf::default(), Buf::default());
    let cli = Cli::try_parse_args(std::iter::once("kick").chain(args.iter().copied()))
        .expect("valid kick arguments");
    let mut ctx = Context::new(
        Streams {
            out: Box::new(out.clone()),
            err: Box::new(err.clone()),
            out_tty: false,
            err_tty: false,
        },
        Interrupts::none(),
    );
    ctx.state_dir = state_dir.map(Path::to_owned);
    let code = match kick::run(cli, &mut ctx).await {
        Ok(c) => c,
        Err(e) => panic!("kick failed: {e}"),
    };
    (code, out.text(), err.text())
}

/// Runs kick in-process; returns (exit code, the --format json document, stderr).
pub async fn kick(args: &[&str]) -> (u8, Value, String) {
    kick_in(args, None).await
}

/// As [`kick`], rollout state files in `state_dir` when given.
pub async fn kick_in(args: &[&str], state_dir: Option<&Path>) -> (u8, Value, String) {
    let (code, stdout, stderr) = kick_text_in(args, state_dir).await;
    let doc = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}): {stdout}\n{stderr}"));
    (code, doc, stderr)
}
