//! The command lines and output examples of the Markdown documentation (README.md and
//! docs/*.md), as the documentation tests read them. kick's tests (`docs.rs`) and
//! kick-orchestrator's (which include this file by its path) share it, so that both read the
//! documents the same way.
//!
//! A command line is a line of a ```sh (or bash, shell) block, or a line starting with `$ ` in
//! a ```console block; a trailing `\` continues it on the next line. It is split as the shell
//! splits it (quotes, backslashes, `|`, `&&`, `;`, redirections and comments), leading
//! `NAME=value` assignments are skipped, and a bare `...` (for "the flags above") is left out.
//! A line whose trailing comment holds [`SKIP`] is not checked: it is for placeholders that
//! cannot parse.

#![allow(dead_code)] // each test crate uses its own part

use std::path::{Path, PathBuf};

/// In a command line's trailing comment: this line is not checked (a placeholder).
pub const SKIP: &str = "(not checked)";

/// The repository's root (this file's crate is `crates/<name>`).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(Path::parent)
        .expect("crates/<name> is two levels below the root")
        .to_owned()
}

/// README.md and every docs/*.md, in a fixed order, as paths relative to the root.
pub fn doc_files() -> Vec<PathBuf> {
    let root = repo_root();
    let mut files = vec![PathBuf::from("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ exists")
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| p.strip_prefix(&root).expect("under the root").to_owned())
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// A fenced block: its language (the info string's first word) and its lines, each with its
/// 1-based line number in the document.
#[derive(Debug)]
pub struct Block {
    pub lang: String,
    pub lines: Vec<(usize, String)>,
}

/// The fenced blocks of a Markdown document (``` fences, possibly indented, e.g. in a list).
pub fn fenced_blocks(md: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, Block)> = None;
    for (i, line) in md.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match open.take() {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    let lang = info.split_whitespace().next().unwrap_or("").to_owned();
                    let lines = Vec::new();
                    open = Some((indent, Block { lang, lines }));
                }
            }
            Some((fence_indent, mut block)) => {
                if trimmed.starts_with("```") && trimmed.trim_end() == "```" {
                    blocks.push(block);
                } else {
                    let text = line.get(fence_indent.min(indent)..).unwrap_or("");
                    block.lines.push((i + 1, text.to_owned()));
                    open = Some((fence_indent, block));
                }
            }
        }
    }
    blocks
}

/// One command as a document shows it.
#[derive(Debug, Clone)]
pub struct Command {
    /// 1-based line number of its first line.
    pub line: usize,
    /// The logical line as written (continuations joined).
    pub text: String,
    /// Its words after the program's name.
    pub args: Vec<String>,
}

/// A console block's command and the output shown under it.
#[derive(Debug, Clone)]
pub struct Session {
    pub command: Command,
    pub program: String,
    pub output: Vec<(usize, String)>,
}

fn is_shell(lang: &str) -> bool {
    matches!(lang, "sh" | "bash" | "shell")
}

/// Logical lines of a shell block: continuations (a trailing `\`, or a quote still open at the
/// end of a line) joined.
fn logical_lines(lines: &[(usize, String)]) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (n, l) in lines {
        let (start, mut text) = pending.take().unwrap_or((*n, String::new()));
        let t = l.trim_end();
        if let Some(head) = t.strip_suffix('\\') {
            text.push_str(head);
            text.push(' ');
            pending = Some((start, text));
        } else {
            text.push_str(t);
            if split_shell(&text).is_err_and(|e| e.starts_with("unterminated")) {
                text.push('\n');
                pending = Some((start, text));
            } else {
                out.push((start, text));
            }
        }
    }
    out.extend(pending);
    out
}

/// A logical line split the way the shell splits it: its simple commands (the words of each
/// pipeline element or list member, redirections left out) and its trailing comment.
pub fn split_shell(line: &str) -> Result<(Vec<Vec<String>>, Option<String>), String> {
    #[derive(Default)]
    struct Words {
        commands: Vec<Vec<String>>,
        words: Vec<String>,
        word: String,
        in_word: bool,
        /// The next word is a redirection's target, not an argument.
        redirect: bool,
    }
    impl Words {
        fn finish_word(&mut self) {
            if self.in_word {
                let w = std::mem::take(&mut self.word);
                if !std::mem::take(&mut self.redirect) {
                    self.words.push(w);
                }
                self.in_word = false;
            }
        }
        fn finish_command(&mut self) {
            self.finish_word();
            let words = std::mem::take(&mut self.words);
            if !words.is_empty() {
                self.commands.push(words);
            }
        }
    }
    let mut w = Words::default();
    let mut comment = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                w.in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => w.word.push(ch),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                w.in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(ch @ ('"' | '\\' | '$' | '`')) => w.word.push(ch),
                            Some(ch) => {
                                w.word.push('\\');
                                w.word.push(ch);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(ch) => w.word.push(ch),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                w.in_word = true;
                if let Some(ch) = chars.next() {
                    w.word.push(ch);
                }
            }
            '#' if !w.in_word => {
                comment = Some(chars.by_ref().collect::<String>());
                break;
            }
            c if c.is_whitespace() => w.finish_word(),
            '|' | ';' | '&' => {
                if chars.peek() == Some(&c) {
                    chars.next();
                }
                w.finish_command();
            }
            '>' | '<' => {
                // `2>`: the descriptor belongs to the redirection.
                if w.in_word && w.word.chars().all(|d| d.is_ascii_digit()) {
                    w.word.clear();
                    w.in_word = false;
                }
                w.finish_word();
                if chars.peek() == Some(&c) {
                    chars.next();
                }
                if chars.peek() == Some(&'&') {
                    // `>&2`: a descriptor, not a file.
                    chars.next();
                    while chars.peek().is_some_and(char::is_ascii_digit) {
                        chars.next();
                    }
                } else {
                    w.redirect = true;
                }
            }
            c => {
                w.in_word = true;
                w.word.push(c);
            }
        }
    }
    w.finish_command();
    Ok((w.commands, comment))
}

/// The words after `program` when `words` run it (after `NAME=value` assignments), without
/// bare `...` placeholders.
fn program_args(words: &[String], program: &str) -> Option<Vec<String>> {
    let is_assignment = |w: &String| {
        w.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty()
                && name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric())
                && !name.starts_with(|c: char| c.is_ascii_digit())
        })
    };
    let mut rest = words.iter().skip_while(|w| is_assignment(w));
    (rest.next()? == program).then(|| rest.filter(|w| *w != "...").cloned().collect())
}

/// Every command line of `program` in `md`'s shell blocks and console prompts, except those
/// marked [`SKIP`]; a line the shell rules cannot split is an error naming it.
pub fn commands(md: &str, program: &str) -> Result<Vec<Command>, String> {
    let mut found = Vec::new();
    for block in fenced_blocks(md) {
        let lines: Vec<(usize, String)> = if is_shell(&block.lang) {
            logical_lines(&block.lines)
        } else if block.lang == "console" {
            sessions_of(&block, program)?
                .into_iter()
                .map(|s| (s.command.line, s.command.text))
                .collect()
        } else {
            continue;
        };
        for (n, text) in lines {
            let (cmds, comment) = split_shell(&text).map_err(|e| format!("line {n}: {e}"))?;
            if comment.is_some_and(|c| c.contains(SKIP)) {
                continue;
            }
            for words in cmds {
                if let Some(args) = program_args(&words, program) {
                    found.push(Command {
                        line: n,
                        text: text.clone(),
                        args,
                    });
                }
            }
        }
    }
    Ok(found)
}

/// The `$ `-prompted commands of a console block, each with the output lines below it.
fn sessions_of(block: &Block, program: &str) -> Result<Vec<Session>, String> {
    let mut sessions: Vec<Session> = Vec::new();
    let mut i = 0;
    while i < block.lines.len() {
        let (n, l) = &block.lines[i];
        i += 1;
        if let Some(cmd) = l.strip_prefix("$ ") {
            let mut text = cmd.trim_end().to_owned();
            while let Some(head) = text.strip_suffix('\\') {
                text = head.to_owned();
                match block.lines.get(i) {
                    Some((_, next)) => {
                        text.push(' ');
                        text.push_str(next.trim());
                        i += 1;
                    }
                    None => break,
                }
            }
            let (cmds, _) = split_shell(&text).map_err(|e| format!("line {n}: {e}"))?;
            let args = cmds
                .first()
                .and_then(|w| program_args(w, program))
                .unwrap_or_default();
            sessions.push(Session {
                command: Command {
                    line: *n,
                    text,
                    args,
                },
                program: cmds
                    .first()
                    .and_then(|w| w.first())
                    .cloned()
                    .unwrap_or_default(),
                output: Vec::new(),
            });
        } else if let Some(s) = sessions.last_mut() {
            s.output.push((*n, l.clone()));
        }
    }
    Ok(sessions)
}

/// Every console session of `md` whose command runs `program`, with its output.
pub fn sessions(md: &str, program: &str) -> Result<Vec<Session>, String> {
    let mut all = Vec::new();
    for block in fenced_blocks(md) {
        if block.lang == "console" {
            all.extend(
                sessions_of(&block, program)?
                    .into_iter()
                    .filter(|s| s.program == program),
            );
        }
    }
    Ok(all)
}
