//! A newcomer's two commands: `make test` and `make demo` install what they need through
//! `tests/scripts/install-deps.sh`, and the demo gives its three exit codes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use kick_e2e::{Stack, workspace_root};

fn install_script() -> PathBuf {
    workspace_root().join("tests/scripts/install-deps.sh")
}

/// The `command package` pairs the install script installs and checks.
fn listed_tools() -> BTreeSet<String> {
    let out = Command::new("bash")
        .arg(install_script())
        .arg("--list")
        .output()
        .expect("run install-deps.sh --list");
    assert!(
        out.status.success(),
        "install-deps.sh --list failed: {out:?}"
    );
    String::from_utf8(out.stdout)
        .expect("utf-8 list")
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Shell words that are not programs: keywords, builtins, and what scripts define themselves.
const SHELL_WORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "for", "in", "do", "done", "while", "until", "case",
    "esac", "function", "return", "local", "export", "set", "unset", "trap", "shift", "read",
    "echo", "printf", "cd", "wait", "kill", "test", "[", "[[", "]]", "true", "false", "exit",
    "source", ".", "eval", "exec", "declare", "readonly", "continue", "break", "command", "type",
    "umask", "time", "!", "{", "}", "let", "pushd", "popd", "getopts", "hash", "ulimit", "builtin",
    "mapfile", "select", "coproc", "jobs", "disown", "alias",
];

/// Words after which the next word is the program.
const PREFIX_WORDS: &[&str] = &[
    "sudo", "env", "nohup", "if", "then", "else", "elif", "do", "while", "until", "time", "!", "{",
    "}", ")", "exec", "command",
];

/// Commands at command position in a shell script: the first word of each simple command
/// (after `|`, `&&`, `||`, `;`, `(`, `$(` and line starts), outside quotes, comments and
/// here-documents. Heuristic, but errs towards reporting too much, which the test then
/// checks against the machine.
fn shell_commands(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut defined = BTreeSet::new();
    let mut heredoc_end: Option<String> = None;
    // A line ending in `\` goes on in the next one: one command.
    let joined = text.replace("\\\n", " ");
    // A single-quoted string (an awk or python program) may span lines: they are read as one.
    let mut carry = String::new();
    for raw in joined.lines() {
        let whole;
        let raw = if carry.is_empty() {
            raw
        } else {
            whole = format!("{carry} {raw}");
            carry.clear();
            whole.as_str()
        };
        if heredoc_end.is_none() && ends_in_single_quote(raw) {
            carry = raw.to_owned();
            continue;
        }
        if let Some(end) = &heredoc_end {
            if raw.trim() == end {
                heredoc_end = None;
            }
            continue;
        }
        if let Some(pos) = raw.find("<<") {
            let rest = raw[pos + 2..].trim_start_matches('-').trim_start();
            let word: String = rest
                .trim_start_matches(['\'', '"'])
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !word.is_empty() && !rest.starts_with('<') {
                heredoc_end = Some(word);
            }
        }
        let line = raw.trim_start().trim_start_matches("function ");
        let ident_len = line
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(line.len());
        if ident_len > 0 && line[ident_len..].trim_start().starts_with("()") {
            defined.insert(line[..ident_len].to_owned());
        }
        for segment in segments(raw) {
            let mut words = segment.split_whitespace().peekable();
            while let Some(w) = words.peek() {
                // Assignments, keywords and wrappers before the program.
                if w.contains('=') && !w.starts_with('=') || PREFIX_WORDS.contains(w) {
                    words.next();
                } else {
                    break;
                }
            }
            let Some(word) = words.next() else { continue };
            let plain = word.starts_with('/')
                || word.chars().next().is_some_and(|c| c.is_ascii_lowercase());
            let clean = word
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./+".contains(c));
            if plain && clean && !word.ends_with(')') && !SHELL_WORDS.contains(&word) {
                found.insert(word.to_owned());
            }
        }
    }
    found.retain(|w| !defined.contains(w));
    found
}

/// Whether `line` ends inside a single-quoted string (outside comments and double quotes).
fn ends_in_single_quote(line: &str) -> bool {
    let (mut single, mut double, mut prev, mut escaped) = (false, false, ' ', false);
    for c in line.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if !single => escaped = true,
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev.is_whitespace() => return false,
            _ => {}
        }
        prev = c;
    }
    single
}

/// Splits a line into simple commands, outside single and double quotes; a `#` at a word start
/// outside quotes ends the line.
fn segments(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let (mut single, mut double) = (false, false);
    let mut prev = ' ';
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev.is_whitespace() => break,
            // `$((arithmetic))` and `${parameter...}` hold no commands: kept as one word.
            '$' if !single && chars.get(i + 1) == Some(&'(') && chars.get(i + 2) == Some(&'(') => {
                let close = (i + 3..chars.len())
                    .find(|&j| chars[j - 1] == ')' && chars[j] == ')')
                    .map_or(chars.len(), |j| j + 1);
                out.last_mut().expect("a segment").push('0');
                i = close;
                prev = '0';
                continue;
            }
            '$' if !single && chars.get(i + 1) == Some(&'{') => {
                let mut depth = 0;
                while i < chars.len() {
                    match chars[i] {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                if !double {
                    out.last_mut().expect("a segment").push('V');
                }
                i += 1;
                prev = 'V';
                continue;
            }
            '$' if !single && chars.get(i + 1) == Some(&'(') => {
                out.push(String::new());
                i += 2;
                prev = '(';
                continue;
            }
            // `((arithmetic))` and array literals `x=(a b)` are not subshells.
            '(' if !single && !double && chars.get(i + 1) == Some(&'(') => {
                i = (i + 2..chars.len())
                    .find(|&j| chars[j - 1] == ')' && chars[j] == ')')
                    .map_or(chars.len(), |j| j + 1);
                prev = ')';
                continue;
            }
            // `name()` defines a function: its body is a new command.
            '(' if !single && !double && prev != '=' && chars.get(i + 1) == Some(&')') => {
                out.push(String::new());
                i += 2;
                prev = ')';
                continue;
            }
            '(' if !single && !double && prev == '=' => {
                let close = (i..chars.len()).find(|&j| chars[j] == ')');
                i = close.map_or(chars.len(), |j| j + 1);
                prev = ')';
                continue;
            }
            '|' | ';' | '&' | '(' | '`' if !single && !double => {
                out.push(String::new());
                prev = c;
                i += 1;
                continue;
            }
            _ => {}
        }
        if !single && !double {
            out.last_mut().expect("a segment").push(c);
        }
        prev = c;
        i += 1;
    }
    out
}

/// Literal programs started from Rust test and bench code (`Command::new` and duct's `cmd!`
/// with a string literal).
fn rust_commands(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for pat in ["Command::new(\"", "cmd!(\""] {
        for (pos, _) in text.match_indices(pat) {
            let rest = &text[pos + pat.len()..];
            if let Some(end) = rest.find('"') {
                found.insert(rest[..end].to_owned());
            }
        }
    }
    found
}

fn files_under(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            files_under(&p, ext, out);
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
}

/// Programs this repository builds or writes itself, and the fake executables tests create.
fn ours(cmd: &str) -> bool {
    let name = cmd.rsplit('/').next().unwrap_or(cmd);
    [
        "kick",
        "kick-orchestrator",
        "orchestrator-bench",
        "psick-task",
        "puppet_agent",
        "cargo",
        "rustc",
        "rustup",
    ]
    .contains(&name)
        || cmd.starts_with("tests/")
        || cmd.starts_with("crates/")
        || cmd.starts_with("packaging/")
        || cmd.starts_with("./")
        || cmd.contains('$')
}

/// The Debian package a path belongs to, and whether the package is Essential (always on a
/// Debian system) or of priority required.
fn essential_owner(path: &str) -> Option<String> {
    // With merged /usr, dpkg may know /usr/bin/x as /bin/x.
    let unmerged = path.strip_prefix("/usr").unwrap_or(path);
    let out = Command::new("dpkg-query")
        .args(["-S", path, unmerged])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let pkg = text
        .lines()
        .find(|l| !l.starts_with("diversion"))?
        .split(':')
        .next()?
        .trim()
        .to_owned();
    let info = Command::new("dpkg-query")
        .args(["-W", "-f=${Essential} ${Priority}", &pkg])
        .output()
        .ok()?;
    let info = String::from_utf8_lossy(&info.stdout).into_owned();
    (info.starts_with("yes") || info.ends_with("required")).then_some(pkg)
}

fn resolve(cmd: &str) -> Option<String> {
    if cmd.starts_with('/') {
        // /bin/sh is a symlink that dpkg lists as a diversion: ask about its target.
        let canon = std::fs::canonicalize(cmd).ok()?;
        return Some(canon.display().to_string());
    }
    for dir in [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ] {
        let p = Path::new(dir).join(cmd);
        if p.exists() {
            // dpkg knows /usr/bin/x even where /bin is a symlink to it (merged /usr).
            let canon = std::fs::canonicalize(&p).unwrap_or(p);
            return Some(canon.display().to_string());
        }
    }
    None
}

#[test]
fn the_shell_scanner_finds_programs_and_skips_shell_syntax() {
    let script = "set -e\nfoo() { jq . ; }\nx=$(curl -s \"a | b\" | sed 's/;/x/')\n\
                  cat <<'EOF'\nserver = localhost\nEOF\n# comment ruby\nA=1 hyperfine --x || \
                  foo\ncurl -s \\\n  start\n\
                  awk '\n  { print the first }\n  END { x = 1 }' file | gzip\n";
    let found = shell_commands(script);
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["awk", "cat", "curl", "gzip", "hyperfine", "jq", "sed"]
    );
}

/// Every program a test, a bench or a script runs is either always on Debian (an Essential or
/// required package), built here, or installed by install-deps.sh: a program missing from its
/// list would make `make test` fail on a fresh machine.
#[test]
fn every_program_the_tests_and_scripts_run_is_installed_by_install_deps() {
    let root = workspace_root();
    let listed = listed_tools();
    let mut used: BTreeSet<(String, String)> = BTreeSet::new();

    let mut shell = vec![root.join(".ci/run")];
    files_under(&root.join("tests/scripts"), "sh", &mut shell);
    files_under(&root.join("crates"), "sh", &mut shell);
    files_under(&root.join("packaging"), "sh", &mut shell);
    for f in &shell {
        let text = std::fs::read_to_string(f).expect("read script");
        for c in shell_commands(&text) {
            used.insert((c, f.display().to_string()));
        }
    }
    let makefile = std::fs::read_to_string(root.join("Makefile")).expect("Makefile");
    let recipes: String = makefile
        .lines()
        .filter_map(|l| l.strip_prefix('\t'))
        .map(|l| l.trim_start_matches(['@', '-']))
        .collect::<Vec<_>>()
        .join("\n");
    for c in shell_commands(&recipes) {
        used.insert((c, "Makefile".into()));
    }
    let mut rust = Vec::new();
    files_under(&root.join("tests"), "rs", &mut rust);
    for dir in std::fs::read_dir(root.join("crates"))
        .expect("crates")
        .flatten()
    {
        files_under(&dir.path().join("tests"), "rs", &mut rust);
        files_under(&dir.path().join("bench"), "rs", &mut rust);
    }
    for f in &rust {
        let text = std::fs::read_to_string(f).expect("read source");
        for c in rust_commands(&text) {
            used.insert((c, f.display().to_string()));
        }
    }

    let mut problems = Vec::new();
    for (cmd, file) in &used {
        if ours(cmd) || listed.contains(cmd) {
            continue;
        }
        let name = cmd.rsplit('/').next().unwrap_or(cmd);
        if listed.contains(name) {
            continue;
        }
        match resolve(cmd) {
            Some(path) if essential_owner(&path).is_some() => {}
            Some(path) => problems.push(format!(
                "{cmd} (used in {file}) is {path}, from a package install-deps.sh does not list"
            )),
            None => problems.push(format!(
                "{cmd} (used in {file}) is not installed and install-deps.sh does not list it"
            )),
        }
    }
    assert!(
        problems.is_empty(),
        "add these to TOOLS in tests/scripts/install-deps.sh:\n  {}",
        problems.join("\n  ")
    );
}

/// After `make test`'s own install step, the check mode finds nothing missing. Only where the
/// suite runs with the stack required (`make test`, CI): a developer's laptop may lack Puppet.
#[test]
fn install_deps_check_mode_finds_everything_installed() {
    if std::env::var("KICK_REQUIRE_STACK").as_deref() != Ok("1") {
        eprintln!(
            "note: skipping: install-deps.sh --check runs under make test (KICK_REQUIRE_STACK=1)"
        );
        return;
    }
    let out = Command::new("bash")
        .arg(install_script())
        .arg("--check")
        .output()
        .expect("run install-deps.sh --check");
    assert!(
        out.status.success(),
        "install-deps.sh --check: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The cargo target dir this test binary was built into (target/debug/deps/e2e-… → target).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.ancestors()
        .nth(3)
        .expect("target/debug/deps/<test>")
        .to_path_buf()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// `make demo`'s script, in its keep mode against the stack already up, on three real SSH nodes
/// of its own: four kick runs that exit 2 (noop, would change), 2 (changed), 0 (converged) and 2
/// (noop after a hand edit on one node: drift there only); then `down` stops its orchestrator
/// and its nodes.
#[test]
fn the_demo_runs_noop_real_converged_and_drift_with_exit_codes_2_2_0_2() {
    let Some(_stack) = Stack::from_env() else {
        return;
    };
    let target = target_dir();
    for bin in ["kick", "kick-orchestrator"] {
        assert!(
            target.join("debug").join(bin).is_file(),
            "{bin} not built in {}",
            target.display()
        );
    }
    let dir = tempfile::Builder::new()
        .prefix("kick-demo-test-")
        .tempdir()
        .expect("tempdir");
    let demo_dir = dir.path().join("demo");
    let script = workspace_root().join("tests/scripts/demo.sh");
    let run = |action: &str| {
        Command::new("bash")
            .arg(&script)
            .arg(action)
            .env("KICK_DEMO_BUILD", "0")
            .env("KICK_DEMO_KEEP", "1")
            .env("KICK_DEMO_DIR", &demo_dir)
            .env("KICK_DEMO_PORT", free_port().to_string())
            // Not the address of a demo a user may have up, nor the test fleet's.
            .env("KICK_DEMO_ADDR", "127.0.1.211")
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("NO_COLOR")
            .output()
            .expect("run demo.sh")
    };
    let out = run("all");
    let stop = run("down");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed:\n{text}\n{err}");
    let codes: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("kick exited "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(codes, ["2", "2", "0", "2"], "{text}\n{err}");
    // Each kick command is printed before it runs, so the reader can copy it.
    assert_eq!(text.matches("$ kick agent --nodes ").count(), 4, "{text}");
    // The nodes are named as a user would name them, and the drift is web2.demo's alone.
    assert!(text.contains("web1.demo,web2.demo,web3.demo"), "{text}");
    let drift = text
        .rsplit("finds the drift on that node only")
        .next()
        .unwrap_or("");
    assert!(
        drift.contains("1 node: web2.demo") && drift.contains("web2.demo/app.conf"),
        "the hand edit on web2.demo is the only drift: {drift}"
    );
    assert!(!drift.contains("1 node: web1.demo"), "{drift}");
    // Piped output: no bold headers, and the commands to try kick by hand at the end.
    assert!(
        !text.contains('\u{1b}'),
        "escape codes in piped demo output:\n{text}"
    );
    assert!(text.contains("try kick by hand"), "{text}");
    assert!(text.contains("kick job list"), "{text}");
    assert!(stop.status.success(), "demo.sh down: {stop:?}");
    assert!(
        String::from_utf8_lossy(&stop.stdout).contains("orchestrator (pid"),
        "down stopped nothing: {stop:?}"
    );
}
