//! What a connection entry may say: bolt-server's SSH schema
//! (`target-ssh.json`, reference agentless-ssh.md §1.2) with Kick's
//! differences, each refused with a message that says what to send instead.
//!
//! The same check runs when an entry is created and when the job runner
//! asks for a node's [`SshTarget`], so a stored entry always means one
//! thing. Messages name keys, never values: a value may be a secret.

use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::transport::SshTarget;

/// A request or entry that does not validate: PE's
/// `schema-validation-error`, with the offending key in `details`.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub msg: String,
    pub key: Option<String>,
}

impl Invalid {
    pub fn new(msg: impl Into<String>) -> Self {
        Self {
            msg: msg.into(),
            key: None,
        }
    }

    fn key(key: &str, msg: impl Into<String>) -> Self {
        Self {
            msg: msg.into(),
            key: Some(key.to_owned()),
        }
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

/// Keys whose values are secrets: kept in `sensitive_parameters` (sealed
/// at rest) wherever the request put them.
pub const SECRET_KEYS: [&str; 3] = ["password", "private-key-content", "sudo-password"];

/// Every key Kick accepts in an SSH entry (`username` is PE's documented
/// alias of `user`).
pub const KNOWN_KEYS: [&str; 15] = [
    "hostname",
    "user",
    "username",
    "port",
    "connect-timeout",
    "disconnect-timeout",
    "tmpdir",
    "run-as",
    "run-as-command",
    "tty",
    "host-key-check",
    "interpreters",
    "password",
    "private-key-content",
    "sudo-password",
];

/// An SSH entry's keys, checked. Built from `parameters` and
/// `sensitive_parameters` together, as bolt-server receives them merged.
#[derive(Debug)]
pub struct SshParams {
    pub hostname: Option<String>,
    pub user: String,
    pub port: Option<u16>,
    pub connect_timeout: Option<u64>,
    pub disconnect_timeout: Option<u64>,
    pub tmpdir: Option<String>,
    pub run_as: Option<String>,
    pub host_key_check: Option<bool>,
    pub password: Option<SecretString>,
    pub private_key: Option<SecretString>,
    pub sudo_password: Option<SecretString>,
}

impl SshParams {
    /// The transport's view of the entry, for `certname`.
    pub fn into_target(self, certname: &str) -> SshTarget {
        let mut t = SshTarget::new(certname, self.user);
        if let Some(h) = self.hostname {
            t.hostname = h;
        }
        if let Some(p) = self.port {
            t.port = p;
        }
        if let Some(s) = self.connect_timeout {
            t.connect_timeout = Duration::from_secs(s);
        }
        if let Some(s) = self.disconnect_timeout {
            t.disconnect_timeout = Duration::from_secs(s);
        }
        if let Some(d) = self.tmpdir {
            t.tmpdir = d;
        }
        if let Some(h) = self.host_key_check {
            t.host_key_check = h;
        }
        t.run_as = self.run_as;
        t.password = self.password;
        t.private_key = self.private_key;
        t.sudo_password = self.sudo_password;
        t
    }
}

fn known_list() -> String {
    KNOWN_KEYS.join(", ")
}

/// Why a key bolt-server's CLI knows is not accepted here.
fn refused(key: &str) -> Option<&'static str> {
    Some(match key {
        "private-key" => {
            "`private-key` (a path on the orchestrator) is not accepted, as bolt-server does not accept it; send the key's text as `private-key-content` (`kick inventory add --private-key FILE` reads the file for you)"
        }
        "run-as-command" => {
            "`run-as-command` is not supported: Kick escalates with sudo only; use `run-as` (and `sudo-password`)"
        }
        "interpreters" => {
            "`interpreters` is not supported: Kick runs a task's executable as it is, its `#!` line choosing the interpreter"
        }
        "native-ssh"
        | "ssh-command"
        | "proxyjump"
        | "load-config"
        | "login-shell"
        | "cleanup"
        | "script-dir"
        | "sudo-executable"
        | "extensions"
        | "encryption-algorithms"
        | "host-key-algorithms"
        | "kex-algorithms"
        | "mac-algorithms" => {
            "this Bolt SSH key is not accepted by bolt-server's schema, nor by Kick"
        }
        _ => return None,
    })
}

fn string<'a>(key: &str, v: &'a Value) -> Result<&'a str, Invalid> {
    match v.as_str() {
        Some(s) if !s.is_empty() => Ok(s),
        Some(_) => Err(Invalid::key(key, format!("`{key}` must not be empty"))),
        None => Err(Invalid::key(key, format!("`{key}` must be a string"))),
    }
}

fn int_in(key: &str, v: &Value, lo: u64, hi: u64, what: &str) -> Result<u64, Invalid> {
    match v.as_u64() {
        Some(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(Invalid::key(
            key,
            format!("`{key}` must be an integer from {lo} to {hi} ({what})"),
        )),
    }
}

fn boolean(key: &str, v: &Value) -> Result<bool, Invalid> {
    v.as_bool()
        .ok_or_else(|| Invalid::key(key, format!("`{key}` must be true or false")))
}

/// Checks an unencrypted private key, OpenSSH or PEM.
fn private_key(text: &str) -> Result<(), Invalid> {
    const KEY: &str = "private-key-content";
    let encrypted_pem = text.contains("ENCRYPTED");
    match russh::keys::decode_secret_key(text, None) {
        Ok(_) if !encrypted_pem => Ok(()),
        Ok(_) | Err(russh::keys::Error::KeyIsEncrypted) => Err(Invalid::key(
            KEY,
            "`private-key-content` is encrypted with a passphrase, which Kick cannot type in; store a copy without it (`ssh-keygen -p -N '' -f COPY`) and keep that copy private",
        )),
        Err(_) if encrypted_pem => Err(Invalid::key(
            KEY,
            "`private-key-content` is encrypted with a passphrase, which Kick cannot type in; store a copy without it (`ssh-keygen -p -N '' -f COPY`) and keep that copy private",
        )),
        // The parser's own message may quote bytes of the key: not repeated.
        Err(_) => Err(Invalid::key(
            KEY,
            "`private-key-content` is not a private key Kick can read (expected an OpenSSH `BEGIN OPENSSH PRIVATE KEY` or a PEM key)",
        )),
    }
}

/// Checks an SSH entry's keys, `parameters` and `sensitive_parameters`
/// together, and returns what they say.
pub fn ssh(
    params: &Map<String, Value>,
    sensitive: &Map<String, Value>,
) -> Result<SshParams, Invalid> {
    for k in params.keys() {
        if sensitive.contains_key(k) {
            return Err(Invalid::key(
                k,
                format!("`{k}` is in both parameters and sensitive_parameters; give it once"),
            ));
        }
    }
    let mut p = SshParams {
        hostname: None,
        user: String::new(),
        port: None,
        connect_timeout: None,
        disconnect_timeout: None,
        tmpdir: None,
        run_as: None,
        host_key_check: None,
        password: None,
        private_key: None,
        sudo_password: None,
    };
    let mut user: Option<&str> = None;
    for (key, v) in params.iter().chain(sensitive) {
        match key.as_str() {
            "hostname" => {
                let h = string(key, v)?;
                if h.chars().any(|c| c.is_whitespace() || c == '/' || c == '@') {
                    return Err(Invalid::key(
                        key,
                        "`hostname` must be a host name or address (no user, port or path)",
                    ));
                }
                p.hostname = Some(h.to_owned());
            }
            "user" | "username" => {
                let u = string(key, v)?;
                if user.is_some_and(|seen| seen != u) {
                    return Err(Invalid::key(
                        key,
                        "`user` and `username` (its alias) differ; give one",
                    ));
                }
                user = Some(u);
            }
            "port" => p.port = Some(int_in(key, v, 1, 65535, "the SSH port")? as u16),
            "connect-timeout" => p.connect_timeout = Some(int_in(key, v, 1, 3600, "seconds")?),
            "disconnect-timeout" => {
                p.disconnect_timeout = Some(int_in(key, v, 1, 3600, "seconds")?);
            }
            "tmpdir" => {
                let d = string(key, v)?;
                if !d.starts_with('/') || d.contains('\0') || d.contains('\n') {
                    return Err(Invalid::key(
                        key,
                        "`tmpdir` must be an absolute path on the node (e.g. /tmp)",
                    ));
                }
                p.tmpdir = Some(d.to_owned());
            }
            "run-as" => p.run_as = Some(string(key, v)?.to_owned()),
            "tty" => {
                if boolean(key, v)? {
                    return Err(Invalid::key(
                        key,
                        "`tty: true` is not supported: Kick runs tasks without a pty, so that their output stays exact and stdin carries their parameters; leave `tty` out or false",
                    ));
                }
            }
            "host-key-check" => p.host_key_check = Some(boolean(key, v)?),
            "password" => p.password = Some(string(key, v)?.into()),
            "sudo-password" => p.sudo_password = Some(string(key, v)?.into()),
            "private-key-content" => {
                let text = string(key, v)?;
                private_key(text)?;
                p.private_key = Some(text.into());
            }
            other => {
                let why = refused(other).map_or_else(
                    || {
                        format!(
                            "unknown SSH connection key `{other}`; the keys are {}",
                            known_list()
                        )
                    },
                    str::to_owned,
                );
                return Err(Invalid::key(other, why));
            }
        }
    }
    p.user = user
        .ok_or_else(|| {
            Invalid::key(
                "user",
                "`user` (the login user; PE's `username` works too) is required",
            )
        })?
        .to_owned();
    match (&p.password, &p.private_key) {
        (Some(_), Some(_)) => Err(Invalid::key(
            "password",
            "give exactly one of `password` and `private-key-content`, not both (as bolt-server)",
        )),
        (None, None) => Err(Invalid::key(
            "password",
            "give exactly one of `password` and `private-key-content` in sensitive_parameters (as bolt-server); Kick uses no agent and no key of its own",
        )),
        _ => Ok(p),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    pub(crate) const KEY: &str = include_str!("../../tests/fixtures/ssh/id_ed25519");
    const ENCRYPTED: &str = include_str!("../../tests/fixtures/ssh/id_ed25519_encrypted");

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn check(params: Value, sensitive: Value) -> Result<SshParams, Invalid> {
        ssh(&map(params), &map(sensitive))
    }

    #[test]
    fn a_full_entry_becomes_a_target_with_kicks_defaults() {
        let p = check(
            json!({"user": "deploy", "hostname": "10.0.0.5", "port": 2222, "run-as": "root",
                   "connect-timeout": 5, "disconnect-timeout": 7, "tmpdir": "/var/tmp",
                   "tty": false, "host-key-check": false}),
            json!({"password": "pw", "sudo-password": "spw"}),
        )
        .unwrap();
        let t = p.into_target("web1.example");
        assert_eq!(
            (t.certname.as_str(), t.hostname.as_str(), t.port),
            ("web1.example", "10.0.0.5", 2222)
        );
        assert_eq!(t.connect_timeout, Duration::from_secs(5));
        assert_eq!(t.disconnect_timeout, Duration::from_secs(7));
        assert_eq!(
            (t.tmpdir.as_str(), t.run_as.as_deref()),
            ("/var/tmp", Some("root"))
        );
        assert!(!t.host_key_check);
        let t = check(json!({"user": "u"}), json!({"private-key-content": KEY}))
            .unwrap()
            .into_target("db1");
        assert_eq!((t.hostname.as_str(), t.port), ("db1", 22));
        assert!(t.host_key_check, "on unless the entry turns it off");
        // PE's example: username, in sensitive_parameters.
        let t = check(json!({}), json!({"username": "admin", "password": "p"}))
            .unwrap()
            .into_target("n");
        assert_eq!(t.user, "admin");
    }

    #[test]
    fn what_bolt_server_refuses_and_what_kick_does_not_support_is_named() {
        let cases = [
            (
                json!({"user": "u", "colour": 1}),
                json!({"password": "p"}),
                "colour",
                "unknown SSH connection key `colour`",
            ),
            (json!({}), json!({"password": "p"}), "user", "`user`"),
            (json!({"user": "u"}), json!({}), "password", "exactly one"),
            (
                json!({"user": "u"}),
                json!({"password": "p", "private-key-content": KEY}),
                "password",
                "not both",
            ),
            (
                json!({"user": "u", "port": 0}),
                json!({"password": "p"}),
                "port",
                "1 to 65535",
            ),
            (
                json!({"user": "u", "port": "22"}),
                json!({"password": "p"}),
                "port",
                "integer",
            ),
            (
                json!({"user": "u", "connect-timeout": 3601}),
                json!({"password": "p"}),
                "connect-timeout",
                "1 to 3600",
            ),
            (
                json!({"user": "u", "tmpdir": "tmp"}),
                json!({"password": "p"}),
                "tmpdir",
                "absolute",
            ),
            (
                json!({"user": "u", "tty": true}),
                json!({"password": "p"}),
                "tty",
                "pty",
            ),
            (
                json!({"user": "u", "run-as-command": ["sudo"]}),
                json!({"password": "p"}),
                "run-as-command",
                "sudo only",
            ),
            (
                json!({"user": "u", "interpreters": {}}),
                json!({"password": "p"}),
                "interpreters",
                "not supported",
            ),
            (
                json!({"user": "u", "private-key": "/k"}),
                json!({"password": "p"}),
                "private-key",
                "private-key-content",
            ),
            (
                json!({"user": "u", "host-key-check": "no"}),
                json!({"password": "p"}),
                "host-key-check",
                "true or false",
            ),
            (
                json!({"user": "u", "hostname": "a@b"}),
                json!({"password": "p"}),
                "hostname",
                "host name",
            ),
            (
                json!({"user": "u", "username": "v"}),
                json!({"password": "p"}),
                "username",
                "differ",
            ),
            (
                json!({"user": "u", "password": "p"}),
                json!({"password": "p"}),
                "password",
                "both",
            ),
            (
                json!({"user": "u"}),
                json!({"private-key-content": ENCRYPTED}),
                "private-key-content",
                "passphrase",
            ),
            (
                json!({"user": "u"}),
                json!({"private-key-content": "not a key s3cr3t"}),
                "private-key-content",
                "not a private key",
            ),
        ];
        for (params, sensitive, key, says) in cases {
            let e = check(params.clone(), sensitive).unwrap_err();
            assert_eq!(e.key.as_deref(), Some(key), "{params}: {e}");
            assert!(e.msg.contains(says), "{params}: {e}");
            assert!(!e.msg.contains("s3cr3t"), "{e}");
        }
    }
}
