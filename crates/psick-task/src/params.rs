//! The options of one `psick::puppet_agent` run: the typed parameters of
//! [`orchestrator_types::psick::params`], validated there, turned into
//! puppet flags here.

use orchestrator_types::psick::params::{AgentParams, Server};

use crate::error::Failure;
use crate::input::Input;

/// Validated `psick::puppet_agent` parameters, with `_noop` applied and
/// defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentOptions {
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
    /// `--http_connect_timeout`, seconds (`connect_timeout` too).
    pub connect_timeout: Option<u64>,
    /// `--http_keepalive_timeout`, seconds.
    pub keepalive_timeout: Option<u64>,
    /// `--http_read_timeout`, seconds.
    pub read_timeout: Option<u64>,
    /// `--filetimeout`, seconds.
    pub filetimeout: Option<u64>,
    /// `--use_cached_catalog` / `--no-use_cached_catalog`.
    pub use_cached_catalog: Option<bool>,
    /// `--usecacheonfailure` instead of the default `--no-usecacheonfailure`.
    pub usecacheonfailure: bool,
    /// How many changes the result lists.
    pub changes_limit: usize,
}

impl AgentOptions {
    /// Validates the input of a `psick::puppet_agent` run.
    pub fn from_input(input: &Input) -> Result<Self, Failure> {
        let p = AgentParams::from_json(input.params())?;
        Ok(AgentOptions {
            noop: p.resolve_noop(input.meta_noop()?)?,
            server: p.server()?,
            environment: p.environment.clone(),
            tags: p.tags.clone().unwrap_or_default(),
            skip_tags: p.skip_tags.clone().unwrap_or_default(),
            debug: p.debug.unwrap_or(false),
            trace: p.trace.unwrap_or(false),
            evaltrace: p.evaltrace.unwrap_or(false),
            timeout: p.timeout,
            wait_for_lock: p.wait_for_lock_or_default(),
            connect_timeout: p.effective_connect_timeout(),
            keepalive_timeout: p.http_keepalive_timeout,
            read_timeout: p.http_read_timeout,
            filetimeout: p.filetimeout,
            use_cached_catalog: p.use_cached_catalog,
            usecacheonfailure: p.usecacheonfailure.unwrap_or(false),
            // Bounded by MAX_CHANGES_LIMIT, far below usize::MAX.
            changes_limit: usize::try_from(p.changes_limit_or_default()).unwrap_or(usize::MAX),
        })
    }

    /// The options every run gets, in this order, right after `agent`;
    /// only the cache fallback can be turned on.
    pub fn fixed_flags(&self) -> [&'static str; 7] {
        [
            "--onetime",
            "--no-daemonize",
            "--verbose",
            if self.usecacheonfailure {
                "--usecacheonfailure"
            } else {
                "--no-usecacheonfailure"
            },
            "--no-splay",
            "--detailed-exitcodes",
            "--color=false",
        ]
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
        for (value, setting) in [
            (self.connect_timeout, "http_connect_timeout"),
            (self.keepalive_timeout, "http_keepalive_timeout"),
            (self.read_timeout, "http_read_timeout"),
            (self.filetimeout, "filetimeout"),
        ] {
            if let Some(seconds) = value {
                flags.push(format!("--{setting}={seconds}"));
            }
        }
        match self.use_cached_catalog {
            Some(true) => flags.push("--use_cached_catalog".to_owned()),
            Some(false) => flags.push("--no-use_cached_catalog".to_owned()),
            None => {}
        }
        flags
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(json: &str) -> Result<AgentOptions, Failure> {
        AgentOptions::from_input(&Input::parse(json, Vec::new()).unwrap())
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
    fn pe_deploy_settings_become_their_flags() {
        let p = params(
            r#"{"http_connect_timeout": 7, "http_keepalive_timeout": "0",
                "http_read_timeout": 30, "filetimeout": 0, "ordering": "manifest",
                "use_cached_catalog": false, "usecacheonfailure": true, "changes_limit": 5}"#,
        )
        .unwrap();
        assert_eq!(
            p.puppet_flags(false),
            vec![
                "--http_connect_timeout=7",
                "--http_keepalive_timeout=0",
                "--http_read_timeout=30",
                "--filetimeout=0",
                "--no-use_cached_catalog",
            ]
        );
        assert_eq!(p.fixed_flags()[3], "--usecacheonfailure");
        assert_eq!(p.changes_limit, 5);
        let d = params("{}").unwrap();
        assert_eq!(d.fixed_flags()[3], "--no-usecacheonfailure");
        assert_eq!(d.changes_limit, 100);
        assert_eq!(
            params(r#"{"use_cached_catalog": true}"#)
                .unwrap()
                .puppet_flags(false),
            vec!["--use_cached_catalog"]
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
            r#"{"connect_timeout": 5, "http_connect_timeout": 6}"#,
            r#"{"http_read_timeout": 0}"#,
            r#"{"filetimeout": -1}"#,
            r#"{"ordering": "random"}"#,
            r#"{"usecacheonfailure": "yes"}"#,
            r#"{"changes_limit": 2001}"#,
            r#"{"bogus": true}"#,
        ] {
            let e = params(bad).expect_err(bad);
            assert_eq!(e.kind(), "psick/invalid-params", "{bad}");
        }
    }

    #[test]
    fn valid_servers() {
        use orchestrator_types::psick::params::parse_server;
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
