//! The `psick::puppet_enable_noop` task: sets `noop = true` in the
//! `[agent]` section of the node's puppet.conf, editing the file directly
//! (no Ruby) and keeping every other line as it was.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use orchestrator_types::psick::EnableNoopResult;

use crate::error::Failure;
use crate::input::Input;
use crate::locate::Puppet;
use crate::process::Signals;

/// Runs the task.
pub fn run(input: &Input) -> Result<EnableNoopResult, Failure> {
    input.reject_unknown(&["noop"])?;
    let noop = input.noop()?;
    let signals = Signals::install().map_err(Failure::signals)?;
    let puppet = Puppet::from_env_bounded(&signals)?;
    let path = puppet.puppet_conf();
    let io_err = |action: &'static str| {
        let path = path.clone();
        move |source: io::Error| Failure::Io {
            action,
            path,
            source,
        }
    };
    // A FIFO there would block the read forever.
    if let Some(what) = crate::lockfile::non_regular(&path) {
        return Err(io_err("read")(io::Error::other(format!(
            "it is {what}, not a file"
        ))));
    }
    let text = match fs::read_to_string(&path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err("read")(e)),
    };
    let edit = set_agent_noop(text.as_deref().unwrap_or(""));
    let changed = edit.text.is_some();
    if let (Some(new), false) = (&edit.text, noop) {
        write_atomically(&path, new).map_err(io_err("write"))?;
    }
    Ok(EnableNoopResult {
        noop,
        puppet_conf: path.display().to_string(),
        changed,
        previous: edit.previous,
    })
}

/// The outcome of editing puppet.conf text.
#[derive(Debug, PartialEq, Eq)]
pub struct Edit {
    /// The new text, `None` when nothing needs to change.
    pub text: Option<String>,
    /// The last `[agent]` `noop` value found, if any.
    pub previous: Option<String>,
}

/// Sets `noop = true` in every `[agent]` section that sets noop, else adds it
/// under the first `[agent]` header, else appends an `[agent]` section.
pub fn set_agent_noop(text: &str) -> Edit {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let mut in_agent = false;
    let mut agent_header = None;
    let mut previous = None;
    let mut needs_change = false;
    let mut found = false;
    for (i, line) in lines.iter_mut().enumerate() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            in_agent = name == "agent";
            if in_agent && agent_header.is_none() {
                agent_header = Some(i);
            }
            continue;
        }
        if !in_agent || t.starts_with('#') {
            continue;
        }
        if let Some((key, value)) = t.split_once('=')
            && key.trim() == "noop"
        {
            found = true;
            let value = value.trim().trim_matches(['"', '\'']).to_owned();
            if !value.eq_ignore_ascii_case("true") {
                let indent = &line[..line.len() - line.trim_start().len()];
                *line = format!("{indent}noop = true");
                needs_change = true;
            }
            previous = Some(value);
        }
    }
    if !found {
        needs_change = true;
        match agent_header {
            Some(i) => lines.insert(i + 1, "noop = true".to_owned()),
            None => {
                if lines.last().is_some_and(|l| !l.trim().is_empty()) {
                    lines.push(String::new());
                }
                lines.push("[agent]".to_owned());
                lines.push("noop = true".to_owned());
            }
        }
    }
    Edit {
        text: needs_change.then(|| lines.join("\n") + "\n"),
        previous,
    }
}

/// Replaces `path` by rename so a crash never leaves half a puppet.conf,
/// keeping the old file's mode and owner.
fn write_atomically(path: &Path, text: &str) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".puppet.conf.psick-{}", std::process::id()));
    let old = fs::metadata(path).ok();
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        let mode = old
            .as_ref()
            .map_or(0o644, |m| m.permissions().mode() & 0o7777);
        fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))?;
        if let Some(m) = &old {
            std::os::unix::fs::chown(&tmp, Some(m.uid()), Some(m.gid()))?;
        }
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_an_agent_section() {
        let e = set_agent_noop("[main]\nserver = pm\n");
        assert_eq!(
            e.text.as_deref(),
            Some("[main]\nserver = pm\n\n[agent]\nnoop = true\n")
        );
        assert_eq!(e.previous, None);
        assert_eq!(
            set_agent_noop("").text.as_deref(),
            Some("[agent]\nnoop = true\n")
        );
    }

    #[test]
    fn inserts_under_an_existing_agent_header() {
        let e = set_agent_noop("[agent]\nserver = pm\n[main]\nnoop = false\n");
        assert_eq!(
            e.text.as_deref(),
            Some("[agent]\nnoop = true\nserver = pm\n[main]\nnoop = false\n")
        );
    }

    #[test]
    fn replaces_a_false_value_and_leaves_true_alone() {
        let e = set_agent_noop("[agent]\n  noop = \"false\"\n");
        assert_eq!(e.text.as_deref(), Some("[agent]\n  noop = true\n"));
        assert_eq!(e.previous.as_deref(), Some("false"));
        let e = set_agent_noop("[agent]\nnoop = TRUE\n");
        assert_eq!(e.text, None);
        assert_eq!(e.previous.as_deref(), Some("TRUE"));
    }
}
