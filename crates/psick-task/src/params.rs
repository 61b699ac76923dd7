//! The parameters of `psick::puppet_agent`, validated so that nothing a task
//! user sends can become an unintended puppet option.

use std::net::Ipv4Addr;

use crate::error::Failure;
use crate::input::Input;

/// Parameter names `psick::puppet_agent` accepts (besides `_` metaparameters).
pub const AGENT_PARAMS: &[&str] = &[
    "noop",
    "no_noop",
    "puppet_master",
    "environment",
    "tags",
    "skip_tags",
    "verbose",
    "debug",
    "trace",
    "evaltrace",
    "timeout",
    "wait_for_lock",
    "connect_timeout",
];

/// Default of `wait_for_lock`, seconds.
pub const DEFAULT_WAIT_FOR_LOCK: u64 = 300;

/// Upper bound for every duration parameter: one year, which also keeps
/// deadline arithmetic far from overflow.
const MAX_SECONDS: u64 = 365 * 24 * 3600;

/// A `puppet_master` value split into host and optional port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Hostname or IPv4 address.
    pub host: String,
    /// Port, when given as `host:port`.
    pub port: Option<u16>,
}

impl std::fmt::Display for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}:{p}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

/// Validated `psick::puppet_agent` parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentParams {
    /// `Some(true)` → `--noop`, `Some(false)` → `--no-noop`, `None` → the
    /// node's configuration decides.
    pub noop: Option<bool>,
    /// `--server`/`--serverport`.
    pub server: Option<Server>,
    /// `--environment`.
    pub environment: Option<String>,
    /// `--tags`.
    pub tags: Vec<String>,
    /// `--skip_tags`.
    pub skip_tags: Vec<String>,
    /// `--debug`.
    pub debug: bool,
    /// `--trace`.
    pub trace: bool,
    /// `--evaltrace`.
    pub evaltrace: bool,
    /// Seconds before the run is stopped.
    pub timeout: Option<u64>,
    /// Seconds to wait for another run's catalog-run lock.
    pub wait_for_lock: u64,
    /// `--http_connect_timeout`, seconds.
    pub connect_timeout: Option<u64>,
}

impl AgentParams {
    /// Validates the input of a `psick::puppet_agent` run.
    pub fn from_input(input: &Input) -> Result<Self, Failure> {
        input.reject_unknown(AGENT_PARAMS)?;
        let noop = resolve_noop(
            input.bool("noop")?,
            input.bool("no_noop")?,
            input.meta_noop()?,
        )?;
        // `verbose` is accepted for psick compatibility only: the task always
        // runs with --verbose, without which onetime runs print nothing.
        input.bool("verbose")?;
        let server = input
            .string("puppet_master")?
            .map(|s| parse_server(&s))
            .transpose()?;
        let environment = input.string("environment")?;
        if let Some(env) = &environment {
            validate_environment(env)?;
        }
        let tags = input.string_list("tags")?;
        let skip_tags = input.string_list("skip_tags")?;
        for (name, list) in [("tags", &tags), ("skip_tags", &skip_tags)] {
            for tag in list {
                validate_tag(name, tag)?;
            }
        }
        Ok(AgentParams {
            noop,
            server,
            environment,
            tags,
            skip_tags,
            debug: input.bool("debug")?.unwrap_or(false),
            trace: input.bool("trace")?.unwrap_or(false),
            evaltrace: input.bool("evaltrace")?.unwrap_or(false),
            timeout: input.uint("timeout", 1, MAX_SECONDS)?,
            wait_for_lock: input
                .uint("wait_for_lock", 0, MAX_SECONDS)?
                .unwrap_or(DEFAULT_WAIT_FOR_LOCK),
            connect_timeout: input.uint("connect_timeout", 1, MAX_SECONDS)?,
        })
    }

    /// The puppet options these parameters ask for, after the fixed ones.
    pub fn puppet_flags(&self, pin_server_list: bool) -> Vec<String> {
        let mut flags = Vec::new();
        match self.noop {
            Some(true) => flags.push("--noop".to_owned()),
            Some(false) => flags.push("--no-noop".to_owned()),
            None => {}
        }
        if let Some(server) = &self.server {
            flags.push(format!("--server={}", server.host));
            if let Some(port) = server.port {
                flags.push(format!("--serverport={port}"));
            }
            // A server_list in puppet.conf beats --server, so pin it too.
            if pin_server_list {
                flags.push(format!("--server_list={server}"));
            }
        }
        if let Some(env) = &self.environment {
            flags.push(format!("--environment={env}"));
        }
        if !self.tags.is_empty() {
            flags.push(format!("--tags={}", self.tags.join(",")));
        }
        if !self.skip_tags.is_empty() {
            flags.push(format!("--skip_tags={}", self.skip_tags.join(",")));
        }
        for (on, flag) in [
            (self.debug, "--debug"),
            (self.trace, "--trace"),
            (self.evaltrace, "--evaltrace"),
        ] {
            if on {
                flags.push(flag.to_owned());
            }
        }
        if let Some(t) = self.connect_timeout {
            flags.push(format!("--http_connect_timeout={t}"));
        }
        flags
    }
}

/// The options every run gets, in this order, right after `agent`.
pub const FIXED_FLAGS: &[&str] = &[
    "--onetime",
    "--no-daemonize",
    "--verbose",
    "--no-usecacheonfailure",
    "--no-splay",
    "--detailed-exitcodes",
    "--color=false",
];

fn resolve_noop(
    noop: Option<bool>,
    no_noop: Option<bool>,
    meta_noop: bool,
) -> Result<Option<bool>, Failure> {
    let requested = match (noop, no_noop) {
        (Some(true), Some(true)) => {
            return Err(Failure::InvalidParams(
                "`noop: true` and `no_noop: true` contradict each other; pass only one".to_owned(),
            ));
        }
        (_, Some(true)) => Some(false),
        (n, _) => n,
    };
    if meta_noop {
        if requested == Some(false) {
            return Err(Failure::InvalidParams(
                "the run was requested as noop (`_noop: true`) but `noop: false`/`no_noop: true` \
                 asks for a real run; drop one of them"
                    .to_owned(),
            ));
        }
        return Ok(Some(true));
    }
    Ok(requested)
}

/// Parses `host` or `host:port`, where host is a DNS name or an IPv4 address.
pub fn parse_server(value: &str) -> Result<Server, Failure> {
    let bad = |why: &str| {
        Failure::InvalidParams(format!(
            "`puppet_master` must be `host` or `host:port` with a DNS name or IPv4 address \
             ({why}), got {value:?}"
        ))
    };
    if value.starts_with('[') || value.matches(':').count() > 1 {
        return Err(bad("IPv6 literals are not supported, use a hostname"));
    }
    let (host, port) = match value.split_once(':') {
        Some((h, p)) => {
            let port = Some(p)
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<u16>().ok())
                .filter(|p| *p > 0)
                .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?;
            (h, Some(port))
        }
        None => (value, None),
    };
    if host.parse::<Ipv4Addr>().is_err() && !is_hostname(host) {
        return Err(bad("not a valid hostname"));
    }
    Ok(Server {
        host: host.to_owned(),
        port,
    })
}

fn is_hostname(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

/// Puppet's environment name rule: `\A[a-z0-9_]+\z`.
pub fn validate_environment(env: &str) -> Result<(), Failure> {
    if env
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        Ok(())
    } else {
        Err(Failure::InvalidParams(format!(
            "`environment` must be a Puppet environment name (lowercase letters, digits and \
             underscores only), got {env:?}"
        )))
    }
}

/// Puppet's tag rule, ASCII only: `\A\w[\w.:-]*\z`.
pub fn validate_tag(param: &str, tag: &str) -> Result<(), Failure> {
    let b = tag.as_bytes();
    let word = |c: &u8| c.is_ascii_alphanumeric() || *c == b'_';
    if !b.is_empty() && word(&b[0]) && b.iter().all(|c| word(c) || b".:-".contains(c)) {
        Ok(())
    } else {
        Err(Failure::InvalidParams(format!(
            "`{param}` items must be Puppet tags (letters, digits, `_`, then also `.`, `:`, `-`; \
             no spaces), got {tag:?}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(json: &str) -> Result<AgentParams, Failure> {
        AgentParams::from_input(&Input::parse(json, Vec::new()).unwrap())
    }

    #[test]
    fn defaults_are_empty_and_wait_300() {
        let p = params("{}").unwrap();
        assert_eq!(p.wait_for_lock, 300);
        assert_eq!(p.noop, None);
        assert!(p.puppet_flags(false).is_empty());
    }

    #[test]
    fn every_parameter_becomes_its_flag_in_a_fixed_order() {
        let p = params(
            r#"{"noop": true, "puppet_master": "puppet.example.com:8141",
                "environment": "dev_1", "tags": ["a", "b::c"], "skip_tags": "x,y",
                "debug": true, "trace": "true", "evaltrace": true, "verbose": false,
                "connect_timeout": 5, "timeout": "60", "wait_for_lock": 0}"#,
        )
        .unwrap();
        assert_eq!(
            p.puppet_flags(false),
            vec![
                "--noop",
                "--server=puppet.example.com",
                "--serverport=8141",
                "--environment=dev_1",
                "--tags=a,b::c",
                "--skip_tags=x,y",
                "--debug",
                "--trace",
                "--evaltrace",
                "--http_connect_timeout=5",
            ]
        );
        assert_eq!((p.timeout, p.wait_for_lock), (Some(60), 0));
        assert!(
            p.puppet_flags(true)
                .contains(&"--server_list=puppet.example.com:8141".to_owned())
        );
    }

    #[test]
    fn noop_rules() {
        assert_eq!(params(r#"{"noop": false}"#).unwrap().noop, Some(false));
        assert_eq!(params(r#"{"no_noop": true}"#).unwrap().noop, Some(false));
        assert_eq!(
            params(r#"{"noop": true, "no_noop": false}"#).unwrap().noop,
            Some(true)
        );
        assert_eq!(params(r#"{"_noop": true}"#).unwrap().noop, Some(true));
        assert_eq!(
            params(r#"{"_noop": true, "noop": true}"#).unwrap().noop,
            Some(true)
        );
        assert!(params(r#"{"noop": true, "no_noop": true}"#).is_err());
        assert!(params(r#"{"_noop": true, "noop": false}"#).is_err());
        assert_eq!(
            params(r#"{"noop": false}"#).unwrap().puppet_flags(false),
            vec!["--no-noop"]
        );
    }

    #[test]
    fn injection_attempts_are_rejected() {
        for bad in [
            r#"{"puppet_master": "--server=evil"}"#,
            r#"{"puppet_master": "-x"}"#,
            r#"{"puppet_master": "host name"}"#,
            r#"{"puppet_master": "a;rm -rf /"}"#,
            r#"{"puppet_master": "a|b"}"#,
            r#"{"puppet_master": "a&b"}"#,
            r#"{"puppet_master": "$(id)"}"#,
            r#"{"puppet_master": "`id`"}"#,
            r#"{"puppet_master": "host:80x"}"#,
            r#"{"puppet_master": "host:0"}"#,
            r#"{"puppet_master": "host:+80"}"#,
            r#"{"puppet_master": "host:70000"}"#,
            r#"{"puppet_master": "host\n--noop"}"#,
            r#"{"puppet_master": "[::1]:8140"}"#,
            r#"{"puppet_master": "-host.example.com"}"#,
            r#"{"environment": "Production"}"#,
            r#"{"environment": "prod --noop"}"#,
            r#"{"environment": "--noop"}"#,
            r#"{"environment": "a/../b"}"#,
            r#"{"tags": "a b"}"#,
            r#"{"tags": ["-a"]}"#,
            r#"{"skip_tags": ["a;b"]}"#,
            r#"{"tags": "a, b"}"#,
            r#"{"timeout": 0}"#,
            r#"{"timeout": 1e3}"#,
            r#"{"wait_for_lock": -1}"#,
            r#"{"connect_timeout": "5s"}"#,
            r#"{"bogus": true}"#,
        ] {
            let e = params(bad).expect_err(bad);
            assert_eq!(e.kind(), "psick/invalid-params", "{bad}");
        }
    }

    #[test]
    fn valid_servers() {
        assert_eq!(
            parse_server("10.0.0.1:8140").unwrap(),
            Server {
                host: "10.0.0.1".into(),
                port: Some(8140)
            }
        );
        assert_eq!(parse_server("puppet").unwrap().to_string(), "puppet");
        assert!(parse_server("my_host.example.com").is_ok());
    }
}
