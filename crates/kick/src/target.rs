//! TARGET flags → the request's `scope`; [`resolve`]: the target as
//! certnames, where kick must know them.

pub mod resolve;

use orchestrator_types::Scope;
use serde_json::Value;

use crate::cli::TargetArgs;
use crate::error::Error;

/// Builds the scope from exactly one of `--nodes`, `--query`, `--node-group`
/// (clap already refuses more than one).
pub fn scope(t: &TargetArgs) -> Result<Scope, Error> {
    if let Some(nodes) = &t.nodes {
        let list = match nodes.strip_prefix('@') {
            Some(path) => parse_node_file(&crate::input::read_arg_file(path)?),
            None => nodes
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        };
        if list.is_empty() {
            return Err(Error::Usage(format!(
                "--nodes {nodes} names no node; give certnames separated by commas, or @FILE with one a line"
            )));
        }
        for n in &list {
            if n.starts_with('-') || n.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(Error::Usage(format!("`{n}` is not a valid certname")));
            }
        }
        return Ok(Scope::nodes(dedup(list)));
    }
    if let Some(q) = &t.query {
        let text = match q.strip_prefix('@') {
            Some(path) => crate::input::read_arg_file(path)?,
            None => q.clone(),
        };
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::Usage("--query is empty; give a PQL query".into()));
        }
        return Ok(Scope {
            query: Some(Value::String(text.to_owned())),
            ..Scope::default()
        });
    }
    if let Some(g) = &t.node_group {
        return Ok(Scope {
            node_group: Some(g.clone()),
            ..Scope::default()
        });
    }
    Err(Error::Usage(
        "no target given; use one of --nodes, --query or --node-group".into(),
    ))
}

/// Reads `--nodes -` from standard input, once, into the flags (the
/// certnames comma separated), so every later look at the target sees the
/// list.
pub fn read_stdin_nodes(t: &mut TargetArgs) -> Result<(), Error> {
    if t.nodes.as_deref() == Some("-") {
        let list = parse_node_file(&crate::input::read_stdin("--nodes")?);
        if list.is_empty() {
            return Err(Error::Usage(
                "--nodes - read no certname from standard input; give one a line".into(),
            ));
        }
        t.nodes = Some(list.join(","));
    }
    Ok(())
}

/// One certname a line; blank lines and `#` comments (whole-line or
/// trailing) are ignored.
pub fn parse_node_file(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn dedup(list: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    list.into_iter()
        .filter(|n| seen.insert(n.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_files_skip_comments_and_blanks() {
        let text = "# web tier\nweb1.example.com\n\n  web2.example.com  # the new one\n#db1\n";
        assert_eq!(
            parse_node_file(text),
            vec!["web1.example.com", "web2.example.com"]
        );
    }

    #[test]
    fn comma_lists_are_trimmed_and_deduplicated() {
        let t = TargetArgs {
            nodes: Some("a, b,,a".into()),
            ..TargetArgs::default()
        };
        assert_eq!(scope(&t).unwrap().nodes.unwrap(), vec!["a", "b"]);
    }

    #[test]
    fn empty_or_odd_targets_are_refused() {
        let t = TargetArgs {
            nodes: Some(",".into()),
            ..TargetArgs::default()
        };
        assert!(scope(&t).is_err());
        let t = TargetArgs {
            nodes: Some("-rf".into()),
            ..TargetArgs::default()
        };
        assert!(scope(&t).is_err());
        assert!(scope(&TargetArgs::default()).is_err());
    }

    #[test]
    fn query_and_group_map_to_their_scope_keys() {
        let t = TargetArgs {
            query: Some("nodes[certname] {}".into()),
            ..TargetArgs::default()
        };
        assert_eq!(scope(&t).unwrap().query.unwrap(), "nodes[certname] {}");
        let t = TargetArgs {
            node_group: Some("abc".into()),
            ..TargetArgs::default()
        };
        assert_eq!(scope(&t).unwrap().node_group.as_deref(), Some("abc"));
    }
}
