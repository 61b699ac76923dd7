//! The documentation cannot lie about kick-orchestrator: every `kick-orchestrator` command
//! line of README.md and docs/*.md is accepted by the binary's own parser. Each is run with
//! `--help` appended: clap rejects an unknown flag, a missing or invalid value before it
//! reaches `--help`, and `--help` keeps the service from starting. kick's command lines are
//! checked by kick's tests (crates/kick/tests/integration/docs.rs).

use std::process::Command as Process;

use crate::doc_examples::{self, Command, SKIP, doc_files, repo_root};

/// Why kick-orchestrator refuses `c`, if it does.
fn refusal(c: &Command) -> Option<String> {
    let out = Process::new(env!("CARGO_BIN_EXE_kick-orchestrator"))
        .args(&c.args)
        .arg("--help")
        .env_clear()
        .output()
        .expect("run kick-orchestrator");
    (!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).into_owned())
}

fn errors(name: &str, md: &str) -> (usize, Vec<String>) {
    let commands = match doc_examples::commands(md, "kick-orchestrator") {
        Ok(c) => c,
        Err(e) => return (0, vec![format!("{name}: {e}")]),
    };
    let errors = commands
        .iter()
        .filter_map(|c| refusal(c).map(|e| format!("{name}:{}: `{}`\n{e}", c.line, c.text)))
        .collect();
    (commands.len(), errors)
}

#[test]
fn every_kick_orchestrator_command_line_in_the_docs_parses() {
    let root = repo_root();
    let (mut count, mut all) = (0, Vec::new());
    for file in doc_files() {
        let md = std::fs::read_to_string(root.join(&file)).unwrap();
        let (n, e) = errors(&file.display().to_string(), &md);
        count += n;
        all.extend(e);
    }
    assert!(
        all.is_empty(),
        "command lines that kick-orchestrator refuses (fix the doc, or end a placeholder line \
         with `# {SKIP}`):\n\n{}",
        all.join("\n\n")
    );
    assert!(
        count >= 3,
        "only {count} kick-orchestrator command lines found"
    );
}

#[test]
fn a_renamed_flag_or_a_bad_value_fails_the_check() {
    let md = "```sh\nkick-orchestrator --tokens-file t --module psick=. --state-dir s\n\
              kick-orchestrator --tokens-file t --inventory-files inv.yaml\n\
              kick-orchestrator --tokens-file t --concurrency 0\n\
              kick-orchestrator --tokens-file t --module psick\n\
              kick-orchestrator --tokens-file <FILE>   # (not checked)\n```\n";
    let (count, errors) = errors("sample.md", md);
    assert_eq!(count, 4, "{errors:#?}");
    assert_eq!(errors.len(), 3, "{errors:#?}");
    for (e, what) in errors
        .iter()
        .zip(["--inventory-files", "--concurrency", "NAME=PATH"])
    {
        assert!(e.contains(what), "{e}");
    }
}
