//! Service configuration: tokens, the simulated nodes' inventory, where tasks
//! come from, limits and TLS.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Default number of nodes running at once, as PE's `task_concurrency`.
pub const DEFAULT_CONCURRENCY: usize = 250;
/// Default request body limit (PE's orchestrator refuses large bodies too).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// SSH handshakes at once, as PE's `bolt_server::concurrency`.
pub const DEFAULT_SSH_CONNECT_LIMIT: usize = 100;
/// Per-stream output cap, as pxp-agent's default `max-message-size` (64 MiB).
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 64 * 1024 * 1024;

/// An RBAC token the service accepts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenSpec {
    /// The token string as sent in `X-Authentication` or `?token=`.
    pub token: String,
    /// Login recorded as the owner of jobs started with this token.
    #[serde(default = "default_login")]
    pub login: String,
    /// Tasks this token may run; `None` means all. A task outside the list
    /// is refused with `puppetlabs.orchestrator/not-permitted`.
    #[serde(default)]
    pub tasks: Option<Vec<String>>,
    /// Whether this token may start `command/deploy` jobs (Puppet runs).
    #[serde(default = "yes")]
    pub deploy: bool,
    /// A task target (its name, as `POST /command/task_target` answered):
    /// the token may then run only that target's tasks, on its nodes (other
    /// nodes of a scope are left out), and no Puppet runs.
    #[serde(default)]
    pub task_target: Option<String>,
    /// Whether this token may create and delete connection entries of the
    /// Node Inventory API (PE's permission "Nodes: Add and delete
    /// connection information from inventory service"). Default true; a
    /// token limited to a task target never may.
    #[serde(default = "yes")]
    pub inventory: bool,
    /// Whether `query/connections` with `sensitive=true` shows this token
    /// the entries' `sensitive_parameters` (passwords, private keys), as
    /// PE's `nodes:view_inventory_sensitive`. Default false, for every
    /// token: secrets are shown only to tokens whose spec says so.
    #[serde(default)]
    pub view_sensitive: bool,
}

fn default_login() -> String {
    "admin".to_owned()
}

fn yes() -> bool {
    true
}

impl TokenSpec {
    /// A token allowed to do everything, owned by `admin`.
    pub fn new(token: impl Into<String>) -> Self {
        Self {
            token: token.into(),
            login: default_login(),
            tasks: None,
            deploy: true,
            task_target: None,
            inventory: true,
            view_sensitive: false,
        }
    }

    /// Whether this token may create and delete connection entries.
    pub fn may_edit_inventory(&self) -> bool {
        self.inventory && self.task_target.is_none()
    }

    /// Whether this token may run `task`.
    pub fn may_run(&self, task: &str) -> bool {
        self.tasks
            .as_ref()
            .is_none_or(|allowed| allowed.iter().any(|t| t == task))
    }

    /// Reads a tokens file: a YAML/JSON list of [`TokenSpec`] objects, or one
    /// bare token a line (`#` comments allowed), each allowed everything.
    pub fn load(path: &Path) -> Result<Vec<Self>, Error> {
        let text = read(path)?;
        if let Ok(specs) = yaml_serde::from_str::<Vec<TokenSpec>>(&text) {
            return Ok(specs);
        }
        let tokens: Vec<Self> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(Self::new)
            .collect();
        if tokens.is_empty() {
            return Err(Error::Config {
                path: path.to_owned(),
                msg: "no tokens found; write one token a line, or a YAML list of {token, login, tasks, deploy, inventory, view_sensitive}"
                    .into(),
            });
        }
        Ok(tokens)
    }
}

/// A simulated node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// Certname.
    pub certname: String,
    /// Whether its agent is "connected to the PCP broker"; disconnected nodes
    /// end `errored` without running anything.
    #[serde(default = "yes")]
    pub connected: bool,
    /// Classifier node group ids this node belongs to (for `scope.node_group`).
    #[serde(default)]
    pub groups: Vec<String>,
    /// Environment variables the node's task processes get (e.g.
    /// `PSICK_PUPPET_CONFDIR`, `PSICK_PUPPET_BIN`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory of the node's task processes.
    #[serde(default)]
    pub workdir: Option<PathBuf>,
}

impl NodeSpec {
    /// A connected node with no extra environment.
    pub fn new(certname: impl Into<String>) -> Self {
        Self {
            certname: certname.into(),
            connected: true,
            groups: Vec::new(),
            env: BTreeMap::new(),
            workdir: None,
        }
    }
}

/// The simulated nodes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    /// All nodes, connected or not.
    pub nodes: Vec<NodeSpec>,
}

impl Inventory {
    /// Reads an inventory file (YAML or JSON): `{nodes: [{certname, connected,
    /// groups, env, workdir}]}`.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = read(path)?;
        let inv: Self = yaml_serde::from_str(&text).map_err(|e| Error::Config {
            path: path.to_owned(),
            msg: format!("not a valid inventory ({e}); expected `nodes: [{{certname: ..}}]`"),
        })?;
        let mut seen = std::collections::HashSet::new();
        for n in &inv.nodes {
            if n.certname.is_empty() || !seen.insert(n.certname.as_str()) {
                return Err(Error::Config {
                    path: path.to_owned(),
                    msg: format!("empty or duplicate certname {:?}", n.certname),
                });
            }
        }
        Ok(inv)
    }

    /// A node by certname.
    pub fn get(&self, certname: &str) -> Option<&NodeSpec> {
        self.nodes.iter().find(|n| n.certname == certname)
    }
}

/// How the binary serves (the library's [`crate::serve`] is always plain;
/// see [`crate::serve_tls`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Tls {
    /// Plain HTTP, for loopback tests only.
    Plain,
    /// A self-signed certificate generated at start; its PEM is written to
    /// `write_ca_to` so clients can pin it as `cacert`.
    SelfSigned {
        /// Where the certificate is written.
        write_ca_to: PathBuf,
    },
    /// PEM certificate chain and key files.
    Files {
        /// Certificate chain.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
}

/// Everything the service needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Accepted tokens.
    pub tokens: Vec<TokenSpec>,
    /// Simulated nodes.
    pub inventory: Inventory,
    /// Directories holding modules (`<dir>/<module>/tasks/*.json`).
    pub modulepath: Vec<PathBuf>,
    /// Explicit modules: name → module root (e.g. `psick` → this repository).
    pub modules: Vec<(String, PathBuf)>,
    /// Puppet environments that exist (default `production`).
    pub environments: Vec<String>,
    /// Where job history is kept; `None` keeps it in memory only.
    pub state_dir: Option<PathBuf>,
    /// A Bolt inventory file (version 2) whose SSH targets become
    /// connection entries at start, replacing those of the same certnames.
    pub inventory_file: Option<PathBuf>,
    /// Nodes running at once across all jobs.
    pub concurrency: usize,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Largest stdout (and stderr) kept per node; more makes the node fail.
    pub max_output_bytes: usize,
    /// PuppetDB to send `scope.query` PQL to; without it queries answer
    /// `query-error`.
    pub puppetdb_url: Option<String>,
    /// TLS mode (used by the binary and [`crate::serve_tls`]).
    pub tls: Tls,
    /// Public base URL (`https://host:port`) used in `id` links; derived
    /// from the listener's address when `None`.
    pub base_url: Option<String>,
    /// How long a timed-out task gets between SIGTERM and SIGKILL.
    pub kill_grace: std::time::Duration,
    /// Niceness of task processes (default 19): simulated nodes are other
    /// machines in real life, so their load should not slow the service.
    pub task_nice: Option<i32>,
    /// OpenSSH known_hosts files SSH nodes' host keys are checked against,
    /// besides `<state-dir>/known_hosts` and `/etc/ssh/ssh_known_hosts`.
    pub known_hosts: Vec<PathBuf>,
    /// SSH handshakes at once (default 100, as PE's bolt-server concurrency).
    pub ssh_connect_limit: usize,
    /// SSH nodes given directly (in-process use, tests), besides the Node
    /// Inventory API's connection entries.
    pub ssh_targets: Vec<crate::transport::SshTarget>,
}

impl Config {
    /// A config with defaults and the given tokens and inventory.
    pub fn new(tokens: Vec<TokenSpec>, inventory: Inventory) -> Self {
        Self {
            tokens,
            inventory,
            modulepath: Vec::new(),
            modules: Vec::new(),
            environments: vec!["production".to_owned()],
            state_dir: None,
            inventory_file: None,
            concurrency: DEFAULT_CONCURRENCY,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            puppetdb_url: None,
            tls: Tls::Plain,
            base_url: None,
            kill_grace: std::time::Duration::from_secs(5),
            task_nice: Some(19),
            known_hosts: Vec::new(),
            ssh_connect_limit: DEFAULT_SSH_CONNECT_LIMIT,
            ssh_targets: Vec::new(),
        }
    }

    /// The accepted token equal to `token`, compared in constant time (every
    /// token is compared in full, so timing tells nothing about them).
    pub fn token(&self, token: &str) -> Option<&TokenSpec> {
        use subtle::ConstantTimeEq;
        self.tokens.iter().fold(None, |found, t| {
            let same: bool = t.token.as_bytes().ct_eq(token.as_bytes()).into();
            if same && found.is_none() {
                Some(t)
            } else {
                found
            }
        })
    }

    /// A builder starting from [`Config::new`] with no tokens and nodes.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder(Self::new(Vec::new(), Inventory::default()))
    }

    pub(crate) fn base_url_for(&self, addr: SocketAddr, https: bool) -> String {
        match &self.base_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => format!("{}://{}", if https { "https" } else { "http" }, addr),
        }
    }
}

/// Builds a [`Config`].
#[derive(Debug, Clone)]
pub struct ConfigBuilder(Config);

impl ConfigBuilder {
    /// Adds an all-powerful token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.0.tokens.push(TokenSpec::new(token));
        self
    }
    /// Adds a token spec.
    pub fn token_spec(mut self, spec: TokenSpec) -> Self {
        self.0.tokens.push(spec);
        self
    }
    /// Adds a node.
    pub fn node(mut self, node: NodeSpec) -> Self {
        self.0.inventory.nodes.push(node);
        self
    }
    /// Replaces the inventory.
    pub fn inventory(mut self, inventory: Inventory) -> Self {
        self.0.inventory = inventory;
        self
    }
    /// Adds a modulepath directory.
    pub fn modulepath(mut self, dir: impl Into<PathBuf>) -> Self {
        self.0.modulepath.push(dir.into());
        self
    }
    /// Adds an explicit module.
    pub fn module(mut self, name: impl Into<String>, root: impl Into<PathBuf>) -> Self {
        self.0.modules.push((name.into(), root.into()));
        self
    }
    /// Sets the state directory.
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.0.state_dir = Some(dir.into());
        self
    }
    /// Adds an SSH node.
    pub fn ssh_target(mut self, t: crate::transport::SshTarget) -> Self {
        self.0.ssh_targets.push(t);
        self
    }
    /// Adds a known_hosts file for SSH nodes' host keys.
    pub fn known_hosts(mut self, path: impl Into<PathBuf>) -> Self {
        self.0.known_hosts.push(path.into());
        self
    }
    /// Sets the Bolt inventory file loaded at start.
    pub fn inventory_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.0.inventory_file = Some(path.into());
        self
    }
    /// Sets the global concurrency.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.0.concurrency = n.max(1);
        self
    }
    /// Sets the body limit.
    pub fn max_body_bytes(mut self, n: usize) -> Self {
        self.0.max_body_bytes = n;
        self
    }
    /// Sets the per-stream output cap.
    pub fn max_output_bytes(mut self, n: usize) -> Self {
        self.0.max_output_bytes = n;
        self
    }
    /// Sets the PuppetDB URL.
    pub fn puppetdb_url(mut self, url: impl Into<String>) -> Self {
        self.0.puppetdb_url = Some(url.into());
        self
    }
    /// Sets the TLS mode.
    pub fn tls(mut self, tls: Tls) -> Self {
        self.0.tls = tls;
        self
    }
    /// Sets the public base URL.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.0.base_url = Some(url.into());
        self
    }
    /// Sets the SIGTERM-to-SIGKILL grace of timed-out tasks.
    pub fn kill_grace(mut self, d: std::time::Duration) -> Self {
        self.0.kill_grace = d;
        self
    }
    /// Sets the known environments.
    pub fn environments(mut self, envs: Vec<String>) -> Self {
        self.0.environments = envs;
        self
    }
    /// The config.
    pub fn build(self) -> Config {
        self.0
    }
}

fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })
}
