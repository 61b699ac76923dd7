//! The documentation cannot lie about kick: every `kick` command line of README.md and
//! docs/*.md parses with kick's own CLI (a renamed or removed flag fails here), every relative
//! link points to a file (and heading) that exists, and the output the README shows under its
//! commands has the shape of what kick prints. kick-orchestrator's command lines are checked by
//! its own tests (crates/orchestrator/tests/integration/docs.rs).

use std::collections::{BTreeSet, HashSet};
use std::path::{Component, Path, PathBuf};

use kick::Cli;
use serde_json::{Value, json};

use crate::doc_examples::{self, Command, SKIP, doc_files, repo_root};
use crate::harness::{Emu, node};

/// What is wrong with each `kick` command line of `md` (named `name` in messages).
fn kick_errors(name: &str, md: &str) -> (usize, Vec<String>) {
    let commands = match doc_examples::commands(md, "kick") {
        Ok(c) => c,
        Err(e) => return (0, vec![format!("{name}: {e}")]),
    };
    let errors = commands
        .iter()
        .filter_map(|c| parse_error(c).map(|e| format!("{name}:{}: `{}`\n{e}", c.line, c.text)))
        .collect();
    (commands.len(), errors)
}

/// Why kick's CLI refuses `c`, if it does (`--help` and `--version` are fine).
fn parse_error(c: &Command) -> Option<String> {
    let argv = std::iter::once("kick".to_owned()).chain(c.args.iter().cloned());
    match Cli::try_parse_args(argv) {
        Ok(_) => None,
        Err(e)
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) =>
        {
            None
        }
        Err(e) => Some(e.to_string()),
    }
}

#[test]
fn every_kick_command_line_in_the_docs_parses() {
    let root = repo_root();
    let (mut count, mut errors) = (0, Vec::new());
    for file in doc_files() {
        let md = std::fs::read_to_string(root.join(&file)).unwrap();
        let (n, e) = kick_errors(&file.display().to_string(), &md);
        count += n;
        errors.extend(e);
    }
    assert!(
        errors.is_empty(),
        "command lines that kick refuses (fix the doc, or end a placeholder line with `# {SKIP}`):\n\n{}",
        errors.join("\n\n")
    );
    // The README and the guides hold dozens; finding few means the extraction broke.
    assert!(count >= 40, "only {count} kick command lines found");
}

#[test]
fn a_renamed_flag_or_subcommand_fails_the_check() {
    let md = "```sh\nkick agent --nodes a,b --noop\nkick agent --nodes a --no-such-flag\n\
              KICK_X=1 kick jobs list | jq .   # a subcommand that does not exist\n\
              kick agent --nodes a \\\n  --batch-wait 2m\n\
              kick agent --nodes <NODES> --noop   # (not checked)\n```\n\n\
              ```console\n$ kick rollout resum 1\nJob 1 finished\n```\n\n\
              ```text\nkick agent --nodes a --no-such-flag\n```\n";
    let (count, errors) = kick_errors("sample.md", md);
    assert_eq!(count, 5, "{errors:#?}");
    assert_eq!(errors.len(), 4, "{errors:#?}");
    for (e, what) in errors
        .iter()
        .zip(["--no-such-flag", "jobs", "--batch-wait", "resum"])
    {
        assert!(e.contains(what), "{e}");
    }
    assert!(errors[0].starts_with("sample.md:3: "), "{}", errors[0]);
    assert!(errors[2].starts_with("sample.md:5: "), "{}", errors[2]);
}

#[test]
fn shell_lines_split_as_the_shell_splits_them() {
    let split = |l: &str| doc_examples::split_shell(l).unwrap();
    assert_eq!(
        split("kick man > kick.1          # or: kick man --dir DIR"),
        (
            vec![vec!["kick".to_owned(), "man".to_owned()]],
            Some(" or: kick man --dir DIR".to_owned())
        )
    );
    let (cmds, comment) = split(
        "A=1 kick agent --query 'nodes[certname] { x = \"y\" }' 2>&1 < in | jq \"a b\" && kick x",
    );
    assert_eq!(comment, None);
    assert_eq!(
        cmds,
        [
            vec![
                "A=1",
                "kick",
                "agent",
                "--query",
                "nodes[certname] { x = \"y\" }"
            ],
            vec!["jq", "a b"],
            vec!["kick", "x"],
        ]
    );
    let md = "```sh\nkick-orchestrator ... --module psick=. \\\n  --state-dir s  # x\n```\n";
    let c = doc_examples::commands(md, "kick-orchestrator").unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(
        (c[0].line, c[0].args.join(" ")),
        (2, "--module psick=. --state-dir s".into())
    );
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The lines of `md` outside fenced blocks, with their line numbers.
fn prose_lines(md: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (i, l) in md.lines().enumerate() {
        if l.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            out.push((i + 1, l));
        }
    }
    out
}

/// The anchors of `md`'s headings (`#foo`, then `#foo-1` for a second `foo`).
fn anchors(md: &str) -> HashSet<String> {
    let mut seen = HashSet::new();
    for (_, l) in prose_lines(md) {
        let hashes = l.bytes().take_while(|&b| b == b'#').count();
        if !(1..=6).contains(&hashes) || !l[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(l[hashes..].trim().trim_end_matches('#'));
        let mut anchor = base.clone();
        let mut n = 0;
        while seen.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        seen.insert(anchor);
    }
    seen
}

/// `l` without its inline code spans.
fn without_code(l: &str) -> String {
    let mut out = String::new();
    let mut rest = l;
    while let Some(i) = rest.find('`') {
        out.push_str(&rest[..i]);
        let ticks = rest[i..].bytes().take_while(|&b| b == b'`').count();
        let fence = &rest[i..i + ticks];
        match rest[i + ticks..].find(fence) {
            Some(j) => rest = &rest[i + ticks + j + ticks..],
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The link targets of `md`'s prose: inline links and reference definitions.
fn link_targets(md: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, l) in prose_lines(md) {
        let l = without_code(l);
        let trimmed = l.trim_start();
        if trimmed.starts_with('[')
            && let Some(i) = trimmed.find("]: ")
        {
            if let Some(t) = trimmed[i + 3..].split_whitespace().next() {
                out.push((n, t.to_owned()));
            }
            continue;
        }
        let mut rest = l.as_str();
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let end = after.find(')').unwrap_or(after.len());
            let target = after[..end].split_whitespace().next().unwrap_or("");
            out.push((n, target.trim_matches(['<', '>']).to_owned()));
            rest = &after[end..];
        }
    }
    out
}

/// `base/rel` with `.` and `..` resolved, without touching the file system.
fn join(base: &Path, rel: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in base.join(rel).components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// What is wrong with the relative links of `file` (relative to `root`).
fn link_errors(root: &Path, file: &Path) -> Vec<String> {
    let md = std::fs::read_to_string(root.join(file)).unwrap();
    let dir = file.parent().unwrap_or(Path::new(""));
    let mut errors = Vec::new();
    for (n, target) in link_targets(&md) {
        if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
            if target.is_empty() {
                errors.push(format!("{}:{n}: an empty link", file.display()));
            }
            continue;
        }
        let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
        let linked = if path.is_empty() {
            file.to_owned()
        } else {
            join(dir, path)
        };
        if linked.starts_with("..") || !root.join(&linked).exists() {
            errors.push(format!(
                "{}:{n}: {target}: no such file {}",
                file.display(),
                linked.display()
            ));
            continue;
        }
        if !anchor.is_empty() && linked.extension().is_some_and(|e| e == "md") {
            let text = std::fs::read_to_string(root.join(&linked)).unwrap();
            if !anchors(&text).contains(anchor) {
                errors.push(format!(
                    "{}:{n}: {target}: no heading #{anchor} in {}",
                    file.display(),
                    linked.display()
                ));
            }
        }
    }
    errors
}

#[test]
fn every_relative_link_in_the_docs_points_to_a_file_and_heading_that_exist() {
    let root = repo_root();
    let files = doc_files();
    let errors: Vec<String> = files.iter().flat_map(|f| link_errors(&root, f)).collect();
    assert!(errors.is_empty(), "broken links:\n{}", errors.join("\n"));
    // Every docs page is reachable from the README, directly or through another page.
    let mut reached = BTreeSet::from([PathBuf::from("README.md")]);
    let mut todo = vec![PathBuf::from("README.md")];
    while let Some(f) = todo.pop() {
        let md = std::fs::read_to_string(root.join(&f)).unwrap();
        for (_, t) in link_targets(&md) {
            let path = t.split('#').next().unwrap_or("");
            if path.ends_with(".md") && !t.contains("://") {
                let p = join(f.parent().unwrap_or(Path::new("")), path);
                if reached.insert(p.clone()) {
                    todo.push(p);
                }
            }
        }
    }
    let unreached: Vec<_> = files.iter().filter(|f| !reached.contains(*f)).collect();
    assert!(
        unreached.is_empty(),
        "not linked from the README: {unreached:?}"
    );
}

#[test]
fn anchors_and_links_are_read_as_github_reads_them() {
    let md = "# Kick\n## `psick::puppet_agent`\n## Rollouts: waves, a canary\n## Kick\n\
              ```sh\n# not a heading\n```\nSee [a](docs/x.md#y), `[b](not-a-link)` and \
              [c](#kick-1).\n[d]: ../LICENSE\n";
    let a = anchors(md);
    for want in [
        "kick",
        "psickpuppet_agent",
        "rollouts-waves-a-canary",
        "kick-1",
    ] {
        assert!(a.contains(want), "{want} in {a:?}");
    }
    assert!(!a.contains("not-a-heading"));
    assert_eq!(
        link_targets(md),
        [
            (8, "docs/x.md#y".to_owned()),
            (8, "#kick-1".to_owned()),
            (9, "../LICENSE".to_owned())
        ]
    );
}

/// The shape of a line of kick's human output: node names, numbers, durations, resources and
/// values replaced by placeholders, and runs of spaces by one (column widths follow the names).
fn shape(line: &str) -> String {
    let indent = line.len() - line.trim_start().len();
    let mut body = line.trim().to_owned();
    // A change of the drift section: `File[/etc/motd] content → 'value'`.
    if let Some(i) = body.find(" → '")
        && body.ends_with('\'')
    {
        let property = body[..i].rsplit(' ').next().unwrap_or("").to_owned();
        body = format!("<resource> {property} → '<value>'");
        return format!("{}{body}", " ".repeat(indent));
    }
    let mut out = String::new();
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        let t = std::mem::take(token);
        let is_duration = t
            .strip_suffix('s')
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit() || c == '.'));
        if is_duration {
            out.push_str("<dur>");
        } else if t.contains('.') && t.chars().any(|c| c.is_ascii_alphabetic()) {
            out.push_str("<node>");
        } else if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) {
            out.push_str("<n>");
        } else {
            out.push_str(&t);
        }
    };
    for c in body.chars() {
        if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
            token.push(c);
        } else {
            flush(&mut token, &mut out);
            out.push(c);
        }
    }
    flush(&mut token, &mut out);
    // A list of nodes, however long.
    let mut s = out.replace(", <node>", "").replace("<node>", "<nodes>");
    s = s.replace(" and <n> more", "");
    let collapsed: Vec<&str> = s.split_whitespace().collect();
    format!("{}{}", " ".repeat(indent), collapsed.join(" "))
}

/// The shapes of `output`, without the nodes' own output (the indented lines under a
/// `NODE (outcome)` header) and elisions (`…`).
fn shapes(output: &[String]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_node_output = false;
    for (i, l) in output.iter().enumerate() {
        if l.trim().is_empty() {
            in_node_output = false;
            continue;
        }
        if (in_node_output && l.starts_with("  ")) || l.trim() == "…" {
            continue;
        }
        let s = shape(l);
        in_node_output = s.starts_with("<nodes> (") && s.ends_with(')');
        out.push((i, s));
    }
    out
}

/// A change the psick double reports, `@STATUS@` being noop or success.
fn change(resource: &str, property: &str, desired: &str) -> Value {
    json!({"resource": resource, "type": "File", "title": resource, "property": property,
           "previous": "absent", "desired": desired,
           "message": format!("current_value 'absent', should be '{desired}'"),
           "status": "@STATUS@", "corrective": false})
}

/// What kick prints for noop and real runs of changed and unchanged nodes, one change or
/// several on one node or several: the shapes the README's examples must have.
async fn kick_output_shapes() -> HashSet<String> {
    let shared = change("File[/srv/app]", "ensure", "directory");
    let own = change("File[/srv/app/app.conf]", "content", "{sha256}cb6c");
    let mut a = node("a.demo", "changed", 0.0);
    a.env.insert(
        "FIXTURE_CHANGES".into(),
        Value::from(vec![shared.clone(), own]).to_string(),
    );
    let mut b = node("b.demo", "changed", 0.0);
    b.env.insert(
        "FIXTURE_CHANGES".into(),
        Value::from(vec![shared]).to_string(),
    );
    let nodes = vec![
        a,
        b,
        node("c.demo", "unchanged", 0.0),
        node("d.demo", "unchanged", 0.0),
    ];
    let emu = Emu::start_with(nodes, |b| {
        b.environments(vec!["production".into(), "demo".into()])
    })
    .await;
    let mut all = HashSet::new();
    // Every mix of outcomes, on one node and on several.
    for targets in [
        "a.demo,b.demo,c.demo,d.demo",
        "a.demo,b.demo",
        "b.demo",
        "b.demo,c.demo",
        "c.demo,d.demo",
        "c.demo",
    ] {
        for mode in ["--noop", "--no-noop"] {
            let r = emu
                .kick(&["agent", "--nodes", targets, mode, "-e", "demo"])
                .await;
            assert!(matches!(r.code, 0 | 2), "{r:?}");
            let lines: Vec<String> = r
                .stderr
                .lines()
                .chain(r.stdout.lines())
                .map(String::from)
                .collect();
            all.extend(shapes(&lines).into_iter().map(|(_, s)| s));
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readme_shows_kick_output_as_kick_prints_it() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let sessions = doc_examples::sessions(&readme, "kick").unwrap();
    assert!(
        sessions.len() >= 3,
        "the README shows at least three kick commands with their output: {sessions:#?}"
    );
    let known = kick_output_shapes().await;
    let mut errors = Vec::new();
    let mut checked = 0;
    for s in &sessions {
        let output: Vec<String> = s.output.iter().map(|(_, l)| l.clone()).collect();
        for (i, shape) in shapes(&output) {
            checked += 1;
            if !known.contains(&shape) {
                errors.push(format!(
                    "README.md:{}: `{}`\n  shape `{shape}` is not one kick prints",
                    s.output[i].0, s.output[i].1
                ));
            }
        }
    }
    let mut known: Vec<_> = known.into_iter().collect();
    known.sort();
    assert!(
        errors.is_empty(),
        "{}\n\nkick prints these shapes:\n{}",
        errors.join("\n"),
        known.join("\n")
    );
    assert!(checked >= 10, "only {checked} output lines checked");
}

#[test]
fn output_shapes_ignore_names_numbers_and_widths() {
    assert_eq!(
        shape(
            "web3.demo                     would change  4 would change, 0 failed, 11 total  11.0s"
        ),
        shape("a.demo  would change  2 would change, 0 failed, 9 total  0.5s")
    );
    assert_eq!(
        shape("    3 nodes: web1.demo, web2.demo, web3.demo"),
        "    <n> nodes: <nodes>"
    );
    assert_eq!(
        shape("  File[/tmp/kick-demo-managed/web1.demo] ensure → 'directory'"),
        "  <resource> ensure → '<value>'"
    );
    assert_ne!(
        shape("Job 1 finished: 3 nodes: 3 would change (noop) in 12.4s"),
        shape("Job 1 finished: 3 nodes: 3 pending (noop) in 12.4s")
    );
}
