//! The parameters of `psick::puppet_agent`: the one definition the task
//! (validation), `kick` (building them) and the orchestrator (mapping PE's deploy
//! keys) share, tied to `tasks/puppet_agent.json` by a test.
//!
//! - [`AgentParams`]: the parameters as sent, every field optional. Build one
//!   with struct-update syntax (`AgentParams { noop: Some(true),
//!   ..Default::default() }`) and send [`AgentParams::to_json`].
//! - [`PARAMS`]: each parameter's name, kind (type and range) and
//!   description, the data `tasks/puppet_agent.json` is checked against.
//! - [`AgentParams::from_json`]: what a runner sends (stdin JSON or `PT_*`
//!   strings), coerced and validated; [`AgentParams::validate`] checks a
//!   typed value by the same rules.
//!
//! Nothing a parameter says can become an unintended puppet option: names,
//! tags and servers are checked against Puppet's own rules, every number
//! against its range.

use std::fmt;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Upper bound of every duration parameter: one year, which also keeps
/// deadline arithmetic far from overflow.
pub const MAX_SECONDS: u64 = 365 * 24 * 3600;

/// Default of `wait_for_lock`, seconds.
pub const DEFAULT_WAIT_FOR_LOCK: u64 = 300;

/// Default of `changes_limit`.
pub const DEFAULT_CHANGES_LIMIT: u64 = 100;

/// Largest `changes_limit`: with values cut at 1 KiB a change stays under
/// about 4 KiB, so the result stays far below pxp-agent's 64 MiB messages.
pub const MAX_CHANGES_LIMIT: u64 = 2000;

/// The type and range of one parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `Optional[Boolean]`; `"true"`/`"false"` strings are accepted too.
    Boolean,
    /// `Optional[String[1]]`.
    String,
    /// `Optional[Variant[String[1], Array[String[1]]]]`: a list, or one
    /// comma-separated string.
    List,
    /// `Optional[Integer[min, max]]`; strings of digits are accepted too.
    /// A `max` of [`MAX_SECONDS`] is the task's cap on durations and not
    /// part of the Puppet type.
    Integer {
        /// Smallest accepted value.
        min: u64,
        /// Largest accepted value.
        max: u64,
    },
    /// `Optional[Enum[...]]`.
    Enum(&'static [&'static str]),
}

impl Kind {
    const fn seconds(min: u64) -> Kind {
        Kind::Integer {
            min,
            max: MAX_SECONDS,
        }
    }

    /// The Puppet type string the task metadata declares.
    pub fn puppet_type(&self) -> std::string::String {
        match *self {
            Kind::Boolean => "Optional[Boolean]".into(),
            Kind::String => "Optional[String[1]]".into(),
            Kind::List => "Optional[Variant[String[1], Array[String[1]]]]".into(),
            Kind::Integer { min, max } if max == MAX_SECONDS => {
                format!("Optional[Integer[{min}]]")
            }
            Kind::Integer { min, max } => format!("Optional[Integer[{min}, {max}]]"),
            Kind::Enum(values) => {
                let quoted: Vec<_> = values.iter().map(|v| format!("'{v}'")).collect();
                format!("Optional[Enum[{}]]", quoted.join(", "))
            }
        }
    }
}

/// One parameter of `psick::puppet_agent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamSpec {
    /// The parameter name.
    pub name: &'static str,
    /// Its type and range.
    pub kind: Kind,
    /// Its description, as `tasks/puppet_agent.json` has it.
    pub description: &'static str,
}

const fn spec(name: &'static str, kind: Kind, description: &'static str) -> ParamSpec {
    ParamSpec {
        name,
        kind,
        description,
    }
}

/// Values of the `ordering` parameter (PE's deploy key of that name).
pub const ORDERINGS: &[&str] = &["manifest", "title-hash", "random"];

/// Every parameter, in the order `tasks/puppet_agent.json` lists them.
pub const PARAMS: &[ParamSpec] = &[
    spec(
        "noop",
        Kind::Boolean,
        "true runs with --noop, false with --no-noop; unset uses the node's own configuration. \
         The _noop metaparameter also means noop.",
    ),
    spec(
        "no_noop",
        Kind::Boolean,
        "psick compatibility: true is the same as noop=false. Contradicting noop=true is an error.",
    ),
    spec(
        "puppet_master",
        Kind::String,
        "Primary server as host or host:port (DNS name or IPv4 address); passed as --server \
         (and --serverport).",
    ),
    spec(
        "environment",
        Kind::String,
        "Puppet environment to run in (lowercase letters, digits and underscores).",
    ),
    spec(
        "tags",
        Kind::List,
        "Apply only resources with these tags: an array, or a comma-separated string.",
    ),
    spec(
        "skip_tags",
        Kind::List,
        "Skip resources with these tags: an array, or a comma-separated string.",
    ),
    spec(
        "verbose",
        Kind::Boolean,
        "Accepted for psick compatibility; runs are always verbose so their output can be \
         reported.",
    ),
    spec("debug", Kind::Boolean, "Run with --debug."),
    spec(
        "trace",
        Kind::Boolean,
        "Run with --trace (Ruby backtraces on errors).",
    ),
    spec(
        "evaltrace",
        Kind::Boolean,
        "Run with --evaltrace (time spent on each resource).",
    ),
    spec(
        "timeout",
        Kind::seconds(1),
        "Seconds the agent run may take; then the whole run is stopped (puppet and every \
         process it started, in whatever session: its exec resources and the daemons they \
         start), SIGTERM, 10 s later SIGKILL, and the task fails with psick/timeout, listing \
         what was stopped in _error.details.stopped.",
    ),
    spec(
        "wait_for_lock",
        Kind::seconds(0),
        "Seconds to wait while another agent run holds the catalog-run lock before failing \
         with psick/agent-locked (default 300). A stale lock never blocks.",
    ),
    spec(
        "connect_timeout",
        Kind::seconds(1),
        "Older name of http_connect_timeout, still accepted; giving both with different \
         values is an error.",
    ),
    spec(
        "http_connect_timeout",
        Kind::seconds(1),
        "Seconds to wait for a connection to the server (--http_connect_timeout), so an \
         unreachable server fails fast.",
    ),
    spec(
        "http_keepalive_timeout",
        Kind::seconds(0),
        "Seconds an idle connection to the server is kept open for reuse \
         (--http_keepalive_timeout).",
    ),
    spec(
        "http_read_timeout",
        Kind::seconds(1),
        "Seconds to wait for data from the server before giving up (--http_read_timeout).",
    ),
    spec(
        "filetimeout",
        Kind::seconds(0),
        "Seconds between checks whether configuration files changed on disk (--filetimeout); \
         Puppet 7 warns that values other than 0 (never cache) and 15 are deprecated.",
    ),
    spec(
        "ordering",
        Kind::Enum(ORDERINGS),
        "PE deploy compatibility: Puppet 6 and later apply resources in manifest order and \
         have no ordering setting, so only manifest is accepted (and passes no flag).",
    ),
    spec(
        "use_cached_catalog",
        Kind::Boolean,
        "true applies the node's cached catalog without asking the server \
         (--use_cached_catalog), false always asks; unset uses the node's configuration.",
    ),
    spec(
        "usecacheonfailure",
        Kind::Boolean,
        "true falls back to the cached catalog when the server cannot compile one \
         (--usecacheonfailure); by default the run fails instead (--no-usecacheonfailure).",
    ),
    spec(
        "changes_limit",
        Kind::Integer {
            min: 0,
            max: MAX_CHANGES_LIMIT,
        },
        "How many resource events the result lists in changes (default 100); the rest are \
         counted in changes_truncated.",
    ),
];

/// The specification of the parameter `name`.
pub fn param(name: &str) -> Option<&'static ParamSpec> {
    PARAMS.iter().find(|p| p.name == name)
}

/// Why parameters were rejected, in words for the person who sent them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamError(pub std::string::String);

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParamError {}

/// PE's `ordering` deploy key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ordering {
    /// Manifest order: what Puppet 6 and later always do.
    Manifest,
    /// Puppet 3's order by title hash (gone since Puppet 6).
    TitleHash,
    /// Random order (gone since Puppet 6).
    Random,
}

/// The parameters of `psick::puppet_agent` as they are sent; every field is
/// optional and `None` is left out of [`AgentParams::to_json`].
///
/// The derived `Deserialize` reads the shape `to_json` writes; use
/// [`AgentParams::from_json`] for what task runners send (strings for
/// booleans and numbers, comma-separated tags).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentParams {
    /// `true` → `--noop`, `false` → `--no-noop`, unset: the node decides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noop: Option<bool>,
    /// psick compatibility: `true` means `noop: false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_noop: Option<bool>,
    /// `host` or `host:port` of the primary server (`--server`,
    /// `--serverport`, and `--server_list` when the node has one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub puppet_master: Option<String>,
    /// `--environment`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// `--tags`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// `--skip_tags`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_tags: Option<Vec<String>>,
    /// Accepted for psick compatibility; runs are always verbose.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verbose: Option<bool>,
    /// `--debug`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debug: Option<bool>,
    /// `--trace`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<bool>,
    /// `--evaltrace`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evaltrace: Option<bool>,
    /// Seconds before the run is stopped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// Seconds to wait for another run's catalog-run lock (default 300).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait_for_lock: Option<u64>,
    /// Older name of `http_connect_timeout`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_timeout: Option<u64>,
    /// `--http_connect_timeout`, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_connect_timeout: Option<u64>,
    /// `--http_keepalive_timeout`, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_keepalive_timeout: Option<u64>,
    /// `--http_read_timeout`, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_read_timeout: Option<u64>,
    /// `--filetimeout`, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filetimeout: Option<u64>,
    /// PE's `ordering`; only [`Ordering::Manifest`] validates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ordering: Option<Ordering>,
    /// `--use_cached_catalog` / `--no-use_cached_catalog`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_cached_catalog: Option<bool>,
    /// `--usecacheonfailure`; unset or false: `--no-usecacheonfailure`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usecacheonfailure: Option<bool>,
    /// How many changes the result lists (default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changes_limit: Option<u64>,
}

impl AgentParams {
    /// Reads and validates the parameters a runner sent. Metaparameters
    /// (`_task`, `_noop`, ...) are skipped, `null` means absent, unknown
    /// names are rejected.
    pub fn from_json(input: &Map<String, Value>) -> Result<AgentParams, ParamError> {
        let names: Vec<&str> = PARAMS.iter().map(|p| p.name).collect();
        coerce::reject_unknown(input.keys().map(String::as_str), &names)?;
        let get = |name: &str| input.get(name);
        let boolean = |name: &str| coerce::boolean(name, get(name));
        let string = |name: &str| coerce::string(name, get(name));
        let list = |name: &str| coerce::list(name, get(name));
        let uint = |name: &str| match param(name).map(|p| p.kind) {
            Some(Kind::Integer { min, max }) => coerce::uint(name, get(name), min, max),
            _ => Ok(None),
        };
        let ordering = match coerce::string("ordering", get("ordering"))?.as_deref() {
            None => None,
            Some("manifest") => Some(Ordering::Manifest),
            Some("title-hash") => Some(Ordering::TitleHash),
            Some("random") => Some(Ordering::Random),
            Some(other) => {
                return Err(ParamError(format!(
                    "`ordering` must be one of {}, got {other:?}",
                    ORDERINGS.join(", ")
                )));
            }
        };
        let params = AgentParams {
            noop: boolean("noop")?,
            no_noop: boolean("no_noop")?,
            puppet_master: string("puppet_master")?,
            environment: string("environment")?,
            tags: list("tags")?,
            skip_tags: list("skip_tags")?,
            verbose: boolean("verbose")?,
            debug: boolean("debug")?,
            trace: boolean("trace")?,
            evaltrace: boolean("evaltrace")?,
            timeout: uint("timeout")?,
            wait_for_lock: uint("wait_for_lock")?,
            connect_timeout: uint("connect_timeout")?,
            http_connect_timeout: uint("http_connect_timeout")?,
            http_keepalive_timeout: uint("http_keepalive_timeout")?,
            http_read_timeout: uint("http_read_timeout")?,
            filetimeout: uint("filetimeout")?,
            ordering,
            use_cached_catalog: boolean("use_cached_catalog")?,
            usecacheonfailure: boolean("usecacheonfailure")?,
            changes_limit: uint("changes_limit")?,
        };
        params.validate()?;
        Ok(params)
    }

    /// The parameters as the JSON object a task request carries.
    pub fn to_json(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            // A struct of options, strings and numbers always serialises
            // to an object.
            _ => Map::new(),
        }
    }

    /// Checks every rule: ranges, Puppet's name and tag rules, the server
    /// form, and the combinations that contradict each other.
    pub fn validate(&self) -> Result<(), ParamError> {
        self.resolve_noop(false)?;
        self.server()?;
        if let Some(env) = &self.environment {
            validate_environment(env)?;
        }
        for (name, list) in [("tags", &self.tags), ("skip_tags", &self.skip_tags)] {
            if let Some(list) = list {
                if list.is_empty() {
                    return Err(ParamError(format!("`{name}` must not be an empty list")));
                }
                for tag in list {
                    validate_tag(name, tag)?;
                }
            }
        }
        for (name, value) in [
            ("timeout", self.timeout),
            ("wait_for_lock", self.wait_for_lock),
            ("connect_timeout", self.connect_timeout),
            ("http_connect_timeout", self.http_connect_timeout),
            ("http_keepalive_timeout", self.http_keepalive_timeout),
            ("http_read_timeout", self.http_read_timeout),
            ("filetimeout", self.filetimeout),
            ("changes_limit", self.changes_limit),
        ] {
            if let (Some(n), Some(Kind::Integer { min, max })) =
                (value, param(name).map(|p| p.kind))
            {
                coerce::uint(name, Some(&Value::from(n)), min, max)?;
            }
        }
        if let (Some(old), Some(new)) = (self.connect_timeout, self.http_connect_timeout)
            && old != new
        {
            return Err(ParamError(format!(
                "`connect_timeout` ({old}) and `http_connect_timeout` ({new}) disagree; \
                 pass only http_connect_timeout"
            )));
        }
        match self.ordering {
            None | Some(Ordering::Manifest) => {}
            Some(other) => {
                let name = serde_json::to_value(other).unwrap_or_default();
                return Err(ParamError(format!(
                    "`ordering` {name} is not available: Puppet 6 and later apply resources \
                     only in manifest order; drop `ordering` or pass \"manifest\""
                )));
            }
        }
        Ok(())
    }

    /// The run's noop mode: `Some(true)` → `--noop`, `Some(false)` →
    /// `--no-noop`, `None` → the node's configuration. `meta_noop` is the
    /// runner's `_noop`.
    pub fn resolve_noop(&self, meta_noop: bool) -> Result<Option<bool>, ParamError> {
        let requested = match (self.noop, self.no_noop) {
            (Some(true), Some(true)) => {
                return Err(ParamError(
                    "`noop: true` and `no_noop: true` contradict each other; pass only one"
                        .to_owned(),
                ));
            }
            (_, Some(true)) => Some(false),
            (n, _) => n,
        };
        if meta_noop {
            if requested == Some(false) {
                return Err(ParamError(
                    "the run was requested as noop (`_noop: true`) but `noop: false`/\
                     `no_noop: true` asks for a real run; drop one of them"
                        .to_owned(),
                ));
            }
            return Ok(Some(true));
        }
        Ok(requested)
    }

    /// `puppet_master` split into host and port.
    pub fn server(&self) -> Result<Option<Server>, ParamError> {
        self.puppet_master.as_deref().map(parse_server).transpose()
    }

    /// `http_connect_timeout`, else its older name `connect_timeout`.
    pub fn effective_connect_timeout(&self) -> Option<u64> {
        self.http_connect_timeout.or(self.connect_timeout)
    }

    /// `wait_for_lock` or its default.
    pub fn wait_for_lock_or_default(&self) -> u64 {
        self.wait_for_lock.unwrap_or(DEFAULT_WAIT_FOR_LOCK)
    }

    /// `changes_limit` or its default.
    pub fn changes_limit_or_default(&self) -> u64 {
        self.changes_limit.unwrap_or(DEFAULT_CHANGES_LIMIT)
    }
}

/// A `puppet_master` value split into host and optional port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Hostname or IPv4 address.
    pub host: String,
    /// Port, when given as `host:port`.
    pub port: Option<u16>,
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}:{p}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

/// Parses `host` or `host:port`, where host is a DNS name or an IPv4 address.
pub fn parse_server(value: &str) -> Result<Server, ParamError> {
    let bad = |why: &str| {
        ParamError(format!(
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
pub fn validate_environment(env: &str) -> Result<(), ParamError> {
    if !env.is_empty()
        && env
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        Ok(())
    } else {
        Err(ParamError(format!(
            "`environment` must be a Puppet environment name (lowercase letters, digits and \
             underscores only), got {env:?}"
        )))
    }
}

/// Puppet's tag rule, ASCII only: `\A\w[\w.:-]*\z`.
pub fn validate_tag(param: &str, tag: &str) -> Result<(), ParamError> {
    let b = tag.as_bytes();
    let word = |c: &u8| c.is_ascii_alphanumeric() || *c == b'_';
    if !b.is_empty() && word(&b[0]) && b.iter().all(|c| word(c) || b".:-".contains(c)) {
        Ok(())
    } else {
        Err(ParamError(format!(
            "`{param}` items must be Puppet tags (letters, digits, `_`, then also `.`, `:`, `-`; \
             no spaces), got {tag:?}"
        )))
    }
}

/// Reading task parameters the way runners send them: Bolt and pxp-agent
/// pass non-string values JSON-encoded in `PT_*` variables, so booleans and
/// integers may arrive as strings, and `null` always means absent.
pub mod coerce {
    use serde_json::Value;

    use super::ParamError;

    fn present(v: Option<&Value>) -> Option<&Value> {
        v.filter(|v| !v.is_null())
    }

    /// An `Optional[Boolean]`; also accepts `"true"`/`"false"`.
    pub fn boolean(name: &str, v: Option<&Value>) -> Result<Option<bool>, ParamError> {
        match present(v) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(other) => Err(type_error(name, "a Boolean (true or false)", other)),
        }
    }

    /// An `Optional[Integer[min, max]]`; also accepts a string of digits.
    pub fn uint(
        name: &str,
        v: Option<&Value>,
        min: u64,
        max: u64,
    ) -> Result<Option<u64>, ParamError> {
        let Some(v) = present(v) else {
            return Ok(None);
        };
        let n = match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(type_error(
                name,
                &format!("an integer from {min} to {max}"),
                v,
            )),
        }
    }

    /// An `Optional[String[1]]`.
    pub fn string(name: &str, v: Option<&Value>) -> Result<Option<String>, ParamError> {
        match present(v) {
            None => Ok(None),
            Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
            Some(other) => Err(type_error(name, "a non-empty string", other)),
        }
    }

    /// An `Optional[Variant[String[1], Array[String[1]]]]`; a string is
    /// split on commas (psick compatibility).
    pub fn list(name: &str, v: Option<&Value>) -> Result<Option<Vec<String>>, ParamError> {
        let items: Vec<String> = match present(v) {
            None => return Ok(None),
            Some(Value::String(s)) => s.split(',').map(str::to_owned).collect(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(type_error(name, "a string or an array of strings", other)),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => return Err(type_error(name, "a string or an array of strings", other)),
        };
        if items.is_empty() || items.iter().any(String::is_empty) {
            return Err(ParamError(format!("`{name}` must not hold empty items")));
        }
        Ok(Some(items))
    }

    /// Rejects any name that is not in `known` and not a metaparameter
    /// (`_task`, `_noop`, ...).
    pub fn reject_unknown<'a>(
        names: impl Iterator<Item = &'a str>,
        known: &[&str],
    ) -> Result<(), ParamError> {
        let mut unknown: Vec<&str> = names
            .filter(|k| !k.starts_with('_') && !known.contains(k))
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        unknown.sort_unstable();
        unknown.dedup();
        let accepted = if known.is_empty() {
            "this task takes no parameters".to_owned()
        } else {
            format!("accepted: {}", known.join(", "))
        };
        Err(ParamError(format!(
            "unknown parameter{} {} ({accepted})",
            if unknown.len() == 1 { "" } else { "s" },
            unknown.join(", "),
        )))
    }

    /// `a string`, `a number`...: how a JSON value is named in messages.
    pub fn json_type(v: &Value) -> &'static str {
        match v {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }

    fn type_error(name: &str, expected: &str, got: &Value) -> ParamError {
        let mut shown = got.to_string();
        crate::psick::shorten(&mut shown, 80);
        ParamError(format!(
            "`{name}` must be {expected}, got {} {shown}",
            json_type(got)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn from(v: Value) -> Result<AgentParams, ParamError> {
        AgentParams::from_json(v.as_object().unwrap())
    }

    #[test]
    fn runner_strings_are_coerced() {
        let p = from(json!({
            "noop": "true", "timeout": "60", "tags": "a,b::c", "skip_tags": ["x"],
            "http_keepalive_timeout": 0, "ordering": "manifest", "changes_limit": "0",
            "environment": null, "_task": "psick::puppet_agent", "_noop": true
        }))
        .unwrap();
        assert_eq!(p.noop, Some(true));
        assert_eq!(p.timeout, Some(60));
        assert_eq!(p.tags.as_deref(), Some(&["a".into(), "b::c".into()][..]));
        assert_eq!(p.ordering, Some(Ordering::Manifest));
        assert_eq!(p.changes_limit, Some(0));
        assert_eq!(p.environment, None);
        assert_eq!(p.wait_for_lock_or_default(), 300);
    }

    #[test]
    fn to_json_round_trips_and_omits_unset_fields() {
        let p = AgentParams {
            noop: Some(true),
            tags: Some(vec!["ntp".into()]),
            http_connect_timeout: Some(5),
            ordering: Some(Ordering::Manifest),
            ..AgentParams::default()
        };
        let j = p.to_json();
        assert_eq!(
            Value::Object(j.clone()),
            json!({"noop": true, "tags": ["ntp"], "http_connect_timeout": 5, "ordering": "manifest"})
        );
        assert_eq!(AgentParams::from_json(&j).unwrap(), p);
        assert!(AgentParams::default().to_json().is_empty());
    }

    #[test]
    fn rules_apply_to_typed_values_too() {
        for bad in [
            AgentParams {
                timeout: Some(0),
                ..Default::default()
            },
            AgentParams {
                changes_limit: Some(MAX_CHANGES_LIMIT + 1),
                ..Default::default()
            },
            AgentParams {
                tags: Some(vec!["a b".into()]),
                ..Default::default()
            },
            AgentParams {
                tags: Some(vec![]),
                ..Default::default()
            },
            AgentParams {
                environment: Some("Prod".into()),
                ..Default::default()
            },
            AgentParams {
                puppet_master: Some("-x".into()),
                ..Default::default()
            },
            AgentParams {
                noop: Some(true),
                no_noop: Some(true),
                ..Default::default()
            },
            AgentParams {
                connect_timeout: Some(5),
                http_connect_timeout: Some(6),
                ..Default::default()
            },
            AgentParams {
                ordering: Some(Ordering::Random),
                ..Default::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        let same = AgentParams {
            connect_timeout: Some(5),
            http_connect_timeout: Some(5),
            ..Default::default()
        };
        assert_eq!(same.validate(), Ok(()));
        assert_eq!(same.effective_connect_timeout(), Some(5));
    }

    #[test]
    fn messages_say_what_is_wrong() {
        let e = from(json!({"ordering": "title-hash"})).unwrap_err().0;
        assert!(e.contains("manifest order"), "{e}");
        let e = from(json!({"ordering": "sorted"})).unwrap_err().0;
        assert!(e.contains("manifest, title-hash, random"), "{e}");
        let e = from(json!({"bogus": 1, "other": 2})).unwrap_err().0;
        assert!(
            e.starts_with("unknown parameters bogus, other (accepted: noop,"),
            "{e}"
        );
        let e = from(json!({"changes_limit": 5000})).unwrap_err().0;
        assert!(e.contains("from 0 to 2000"), "{e}");
    }

    #[test]
    fn puppet_types() {
        let ty = |n: &str| param(n).unwrap().kind.puppet_type();
        assert_eq!(ty("timeout"), "Optional[Integer[1]]");
        assert_eq!(ty("changes_limit"), "Optional[Integer[0, 2000]]");
        assert_eq!(
            ty("ordering"),
            "Optional[Enum['manifest', 'title-hash', 'random']]"
        );
    }
}
