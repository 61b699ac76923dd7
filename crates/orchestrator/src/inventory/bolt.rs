//! A Bolt inventory file (`inventory.yaml`, version 2), the file OpenBolt
//! users already keep, read at start (`kick-orchestrator --inventory-file`):
//! each SSH target becomes a connection entry of its own.
//!
//! Read: `targets` (a string `host`, `host:port` or `ssh://user@host:port`,
//! or `{uri, name, config}`), `groups` (`name`, `targets`, nested `groups`,
//! `config`) and `config` at every level, of which `transport` and `ssh`:
//! `user`, `port`, `host-key-check`, `private-key` (a path, read now, or
//! `{key-data}`), `password`, `run-as`, `sudo-password`, `tmpdir`,
//! `connect-timeout`, `disconnect-timeout`. Deeper config wins over the
//! config around it; a target listed in several groups takes each key from
//! the first place that sets it (Bolt's rule).
//!
//! Everything else is warned about with its place in the file, never
//! dropped silently: Bolt keys Kick has no use for (`facts`, `vars`,
//! `features`, `alias`, other transports' sections), Bolt SSH keys Kick
//! does not support, and unknown keys. Targets of another transport are
//! left out, with a warning. Plugins (`_plugin`) are refused: their
//! values cannot be known here.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::NewEntry;
use crate::error::Error;

/// SSH keys of Bolt's transport that Kick takes from the file (the
/// entry's key has the same name, except `private-key`).
const SSH_KEYS: [&str; 10] = [
    "user",
    "port",
    "host-key-check",
    "private-key",
    "password",
    "run-as",
    "sudo-password",
    "tmpdir",
    "connect-timeout",
    "disconnect-timeout",
];

/// Bolt keys Kick reads nowhere (they are Bolt's own business).
const IGNORED: [&str; 5] = ["facts", "vars", "features", "alias", "plugin_hooks"];

/// What reading a file gives: the entries and the warnings (also logged).
#[derive(Debug)]
pub struct Loaded {
    pub entries: Vec<NewEntry>,
    pub warnings: Vec<String>,
}

/// Reads and checks `path`; logs its warnings.
pub fn load(path: &Path) -> Result<Vec<NewEntry>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let loaded = parse(&text, base).map_err(|msg| Error::Config {
        path: path.to_owned(),
        msg,
    })?;
    for w in &loaded.warnings {
        tracing::warn!(file = %path.display(), "{w}");
    }
    Ok(loaded.entries)
}

/// A target as the walk finds it: its name, address and merged config.
#[derive(Debug, Default)]
struct Target {
    name: String,
    host: Option<String>,
    uri_user: Option<String>,
    uri_port: Option<u16>,
    transport: Option<String>,
    ssh: Map<String, Value>,
    /// Where it was first defined (for messages).
    at: String,
}

struct Walk<'a> {
    base: &'a Path,
    warnings: Vec<String>,
    targets: Vec<Target>,
}

/// The effective config at one level: transport and ssh keys.
#[derive(Debug, Clone, Default)]
struct Config {
    transport: Option<String>,
    ssh: Map<String, Value>,
}

/// Parses the text of a file whose relative paths start at `base`.
pub fn parse(text: &str, base: &Path) -> Result<Loaded, String> {
    let doc: Value =
        yaml_serde::from_str(text).map_err(|e| format!("not a Bolt inventory file: {e}"))?;
    let Value::Object(top) = doc else {
        return Err(
            "not a Bolt inventory file: expected a mapping with `targets` and `groups`".into(),
        );
    };
    match top.get("version") {
        None => {}
        Some(v) if v.as_u64() == Some(2) => {}
        Some(v) => {
            return Err(format!(
                "Bolt inventory version {v} is not supported; Kick reads version 2"
            ));
        }
    }
    let mut w = Walk {
        base,
        warnings: Vec::new(),
        targets: Vec::new(),
    };
    w.group(&top, "", &Config::default(), true)?;
    let mut entries = Vec::new();
    for t in std::mem::take(&mut w.targets) {
        if let Some(e) = w.entry(t)? {
            entries.push(e);
        }
    }
    Ok(Loaded {
        entries,
        warnings: w.warnings,
    })
}

fn refuse_plugins(v: &Value, at: &str) -> Result<(), String> {
    match v {
        Value::Object(m) if m.contains_key("_plugin") => Err(format!(
            "{at}: Bolt plugins (`_plugin`) are not supported; write the value itself"
        )),
        Value::Object(m) => m
            .iter()
            .try_for_each(|(k, v)| refuse_plugins(v, &format!("{at}.{k}"))),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| refuse_plugins(v, &format!("{at}[{i}]"))),
        _ => Ok(()),
    }
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_owned()
    } else {
        format!("{at}.{key}")
    }
}

impl Walk<'_> {
    fn warn(&mut self, msg: String) {
        self.warnings.push(msg);
    }

    /// A group (or the file's top level): its config, targets and groups.
    fn group(
        &mut self,
        g: &Map<String, Value>,
        at: &str,
        outer: &Config,
        top: bool,
    ) -> Result<(), String> {
        if top {
            refuse_plugins(&Value::Object(g.clone()), "the file")?;
        }
        let config = match g.get("config") {
            Some(c) => self.config(c, &join(at, "config"), outer)?,
            None => outer.clone(),
        };
        // A group's own targets come before its subgroups' (the order
        // that decides which place of a target counts first).
        if let Some(v) = g.get("targets") {
            let Value::Array(list) = v else {
                return Err(format!("{}: expected a list", join(at, "targets")));
            };
            for (i, t) in list.iter().enumerate() {
                self.target(t, &format!("{}[{i}]", join(at, "targets")), &config)?;
            }
        }
        if let Some(v) = g.get("groups") {
            let Value::Array(list) = v else {
                return Err(format!("{}: expected a list", join(at, "groups")));
            };
            for (i, sub) in list.iter().enumerate() {
                let here = format!("{}[{i}]", join(at, "groups"));
                let Value::Object(sub) = sub else {
                    return Err(format!("{here}: a group must be a mapping with a `name`"));
                };
                let Some(name) = sub.get("name").and_then(Value::as_str) else {
                    return Err(format!("{here}: a group needs a `name`"));
                };
                self.group(sub, &format!("{here}({name})"), &config, false)?;
            }
        }
        for k in g.keys() {
            match k.as_str() {
                "config" | "targets" | "groups" => {}
                "version" if top => {}
                "name" if !top => {}
                k if IGNORED.contains(&k) => {
                    self.warn(format!("{}: ignored (Kick has no use for it)", join(at, k)));
                }
                _ => self.warn(format!("{}: unknown key, ignored", join(at, k))),
            }
        }
        Ok(())
    }

    /// A `config` mapping over `outer`.
    fn config(&mut self, c: &Value, at: &str, outer: &Config) -> Result<Config, String> {
        let Value::Object(c) = c else {
            return Err(format!("{at}: expected a mapping"));
        };
        let mut out = outer.clone();
        for (k, v) in c {
            match k.as_str() {
                "transport" => {
                    let t = v
                        .as_str()
                        .ok_or_else(|| format!("{at}.transport: expected a string"))?;
                    out.transport = Some(t.to_owned());
                }
                "ssh" => {
                    let Value::Object(ssh) = v else {
                        return Err(format!("{at}.ssh: expected a mapping"));
                    };
                    for (sk, sv) in ssh {
                        if SSH_KEYS.contains(&sk.as_str()) {
                            // `~` (null) unsets what the config around set.
                            if sv.is_null() {
                                out.ssh.remove(sk);
                            } else {
                                out.ssh.insert(sk.clone(), sv.clone());
                            }
                        } else {
                            self.warn(format!(
                                "{at}.ssh.{sk}: {}",
                                if super::validate::KNOWN_KEYS.contains(&sk.as_str())
                                    || BOLT_SSH_KEYS.contains(&sk.as_str())
                                {
                                    "a Bolt SSH key Kick does not support, ignored"
                                } else {
                                    "unknown SSH key, ignored"
                                }
                            ));
                        }
                    }
                }
                "winrm" | "local" | "docker" | "pcp" | "remote" | "podman" | "lxd" | "jail" => {
                    self.warn(format!(
                        "{at}.{k}: ignored (Kick reaches nodes over SSH only)"
                    ));
                }
                _ => self.warn(format!("{at}.{k}: unknown key, ignored")),
            }
        }
        Ok(out)
    }

    fn target(&mut self, t: &Value, at: &str, outer: &Config) -> Result<(), String> {
        let (uri, name, config) = match t {
            Value::String(s) => (Some(s.as_str()), None, outer.clone()),
            Value::Object(m) => {
                let mut config = outer.clone();
                for (k, v) in m {
                    match k.as_str() {
                        "uri" | "name" => {
                            if !v.is_string() {
                                return Err(format!("{at}.{k}: expected a string"));
                            }
                        }
                        "config" => config = self.config(v, &format!("{at}.config"), outer)?,
                        k if IGNORED.contains(&k) => {
                            self.warn(format!("{at}.{k}: ignored (Kick has no use for it)"));
                        }
                        _ => self.warn(format!("{at}.{k}: unknown key, ignored")),
                    }
                }
                let uri = m.get("uri").and_then(Value::as_str);
                let name = m.get("name").and_then(Value::as_str);
                if uri.is_none() && name.is_none() {
                    return Err(format!("{at}: a target needs a `uri` or a `name`"));
                }
                (uri, name, config)
            }
            _ => return Err(format!("{at}: a target is a string or a mapping")),
        };
        let mut found = Target {
            transport: config.transport.clone(),
            ssh: config.ssh,
            at: at.to_owned(),
            ..Target::default()
        };
        if let Some(uri) = uri {
            let u = parse_uri(uri).map_err(|e| format!("{at}: {e}"))?;
            if let Some(scheme) = u.scheme {
                found.transport = Some(scheme);
            }
            found.host = Some(u.host);
            found.uri_user = u.user;
            found.uri_port = u.port;
        }
        found.name = name
            .map(str::to_owned)
            .or_else(|| found.host.clone())
            .unwrap_or_default();
        match self.targets.iter_mut().find(|t| t.name == found.name) {
            // Listed again (in another group): keys set here fill in what
            // its first place left unset.
            Some(first) => {
                for (k, v) in found.ssh {
                    first.ssh.entry(k).or_insert(v);
                }
                first.host = first.host.take().or(found.host);
                first.uri_user = first.uri_user.take().or(found.uri_user);
                first.uri_port = first.uri_port.or(found.uri_port);
                first.transport = first.transport.take().or(found.transport);
            }
            None => self.targets.push(found),
        }
        Ok(())
    }

    /// The entry of a target, `None` for another transport's.
    fn entry(&mut self, t: Target) -> Result<Option<NewEntry>, String> {
        let at = format!("{} ({})", t.at, t.name);
        match t.transport.as_deref() {
            None | Some("ssh") => {}
            Some(other) => {
                self.warn(format!(
                    "{at}: transport {other} is not supported (Kick reaches nodes over SSH only); target left out"
                ));
                return Ok(None);
            }
        }
        let mut params = Map::new();
        let mut sensitive = Map::new();
        for (k, v) in t.ssh {
            match k.as_str() {
                "private-key" => {
                    let key = self.private_key(&v).map_err(|e| format!("{at}: {e}"))?;
                    sensitive.insert("private-key-content".into(), Value::String(key));
                }
                "password" | "sudo-password" => {
                    sensitive.insert(k, v);
                }
                _ => {
                    params.insert(k, v);
                }
            }
        }
        if let Some(u) = t.uri_user {
            params.insert("user".into(), Value::String(u));
        }
        if let Some(p) = t.uri_port {
            params.insert("port".into(), Value::from(p));
        }
        if let Some(h) = t.host.filter(|h| *h != t.name) {
            params.insert("hostname".into(), Value::String(h));
        }
        NewEntry::ssh(vec![t.name], params, sensitive, true)
            .map(Some)
            .map_err(|e| format!("{at}: {}", e.msg))
    }

    fn private_key(&self, v: &Value) -> Result<String, String> {
        let path = match v {
            Value::String(p) => p,
            Value::Object(m) => {
                return m
                    .get("key-data")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| "`private-key` must be a path or `{key-data: ...}`".to_owned());
            }
            _ => return Err("`private-key` must be a path or `{key-data: ...}`".to_owned()),
        };
        let path = expand(path, self.base);
        std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read the private key {}: {e}", path.display()))
    }
}

/// Bolt SSH transport keys Kick does not take (besides those
/// [`super::validate`] refuses by name).
const BOLT_SSH_KEYS: [&str; 18] = [
    "batch-mode",
    "cleanup",
    "copy-command",
    "encryption-algorithms",
    "extensions",
    "host-key-algorithms",
    "kex-algorithms",
    "load-config",
    "login-shell",
    "mac-algorithms",
    "native-ssh",
    "proxyjump",
    "script-dir",
    "ssh-command",
    "sudo-executable",
    "tty",
    "interpreters",
    "run-as-command",
];

/// `~/x` from `$HOME`; relative paths from the file's directory.
fn expand(path: &str, base: &Path) -> PathBuf {
    if let Some(rest) = path.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    base.join(path)
}

#[derive(Debug, PartialEq)]
struct Uri {
    scheme: Option<String>,
    user: Option<String>,
    host: String,
    port: Option<u16>,
}

/// `host`, `host:22`, `[::1]:22`, `ssh://user@host:22`.
fn parse_uri(uri: &str) -> Result<Uri, String> {
    let (scheme, rest) = match uri.split_once("://") {
        Some((s, r)) => (Some(s.to_ascii_lowercase()), r),
        None => (None, uri),
    };
    let rest = rest.trim_end_matches('/');
    let (user, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u.to_owned()), h),
        None => (None, rest),
    };
    if user.as_deref().is_some_and(|u| u.contains(':')) {
        return Err(format!(
            "{uri:?}: a password in a target URI is not accepted; set `password` in config.ssh"
        ));
    }
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{uri:?} is not a target URI"))?;
        (h, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("{uri:?}: the port is not a number from 1 to 65535"))
        })
        .transpose()?;
    if host.is_empty() || host.contains(['/', ' ']) {
        return Err(format!("{uri:?} is not a target URI"));
    }
    Ok(Uri {
        scheme,
        user,
        host: host.to_owned(),
        port,
    })
}

#[cfg(test)]
mod tests;
