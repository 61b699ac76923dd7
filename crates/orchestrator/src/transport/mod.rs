//! How a task reaches a node. One interface, two implementations: `local`
//! (a process on this machine with the node's own environment: the demo's
//! and the fast tests' simulated nodes) and `ssh` (a real node over
//! OpenSSH's protocol, as PE's bolt-server reaches agentless nodes). The job
//! runner, the store and the API see only [`Target`] and the
//! [`crate::exec::Outcome`] a run ends with.

pub mod local;
pub mod ssh;

use std::future::Future;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::app::App;
use crate::cache::TaskFile;
use crate::exec::{Outcome, StopLevel};

/// One node's run of a job's task, whatever reaches the node.
#[derive(Debug)]
pub struct TaskRun<'a> {
    pub task_name: &'a str,
    /// The executable first, then the files of a multi-file task.
    pub files: &'a [TaskFile],
    /// The job's input in the request's order (`_installdir` and `_task`
    /// are added per run, as pxp-agent does).
    pub input: &'a [(String, Value)],
    /// `stdin`, `environment` or `both`.
    pub input_method: &'a str,
    pub timeout: Option<Duration>,
    /// Between TERM and KILL when a run is stopped.
    pub kill_grace: Duration,
    /// Cap per output stream.
    pub max_output: usize,
    /// The job's stdin for runs without an install directory (the same
    /// bytes for every node).
    pub stdin: &'a [u8],
    /// Where a transport that runs the task elsewhere notes the run while it
    /// goes on, so that a service killed meanwhile can end it after its
    /// restart ([`ssh::recover`]); removed when the run ends.
    pub record: Option<std::path::PathBuf>,
}

/// Reaching a node: prepare the task there, run it with its input, stop it
/// (its whole tree) on a timeout or a force stop, clean up. Each
/// implementation does the four steps its own way; the job runner sees only
/// the [`Outcome`].
pub trait Transport {
    /// The four steps, to the run's end.
    fn run(
        &self,
        task: &TaskRun<'_>,
        stop: watch::Receiver<StopLevel>,
    ) -> impl Future<Output = Outcome> + Send;
}

impl Target {
    /// Runs `task` on this node through its transport.
    pub async fn run(
        &self,
        app: &App,
        task: &TaskRun<'_>,
        stop: watch::Receiver<StopLevel>,
    ) -> Outcome {
        match self {
            Target::Local(node) => local::Local { app, node }.run(task, stop).await,
            Target::Ssh(target) => {
                ssh::SshNode {
                    ssh: &app.ssh,
                    target,
                }
                .run(task, stop)
                .await
            }
            Target::Unusable(why) => Outcome {
                ending: crate::exec::Ending::Failed(crate::exec::TransportError {
                    kind: "puppetlabs.tasks/connect-error".into(),
                    issue_code: "CONNECT_ERROR".into(),
                    msg: why.clone(),
                    details: json!({}),
                }),
                stdout: Vec::new(),
                stderr: Vec::new(),
                overflow: false,
                stop: None,
            },
        }
    }
}

/// systemd's default PATH for services: what pxp-agent's tasks get when the
/// node's environment (standing for pxp-agent's own) does not set one.
pub const SERVICE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A run's input: the job's, then `_installdir` when given, then `_task`.
pub fn input_of(
    input: &[(String, Value)],
    installdir: Option<&str>,
    task: &str,
) -> Vec<(String, Value)> {
    let mut input = input.to_vec();
    if let Some(d) = installdir {
        input.push(("_installdir".into(), json!(d)));
    }
    input.push(("_task".into(), json!(task)));
    input
}

/// The input as pxp-agent writes it to stdin: compact, keys in order, no
/// trailing newline.
pub fn stdin_of(input: &[(String, Value)]) -> Vec<u8> {
    let mut out = b"{".to_vec();
    for (i, (k, v)) in input.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Strings and JSON values always serialise.
        let _ = serde_json::to_writer(&mut out, k);
        out.push(b':');
        let _ = serde_json::to_writer(&mut out, v);
    }
    out.push(b'}');
    out
}

/// `PT_<name>` variables: strings raw, every other value as JSON.
pub fn pt_env(input: &[(String, Value)]) -> Vec<(String, String)> {
    input
        .iter()
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (format!("PT_{k}"), s)
        })
        .collect()
}

/// Where and how one node is reached, resolved when its run starts.
#[derive(Debug, Clone)]
pub enum Target {
    /// A simulated node from the service's inventory.
    Local(crate::config::NodeSpec),
    /// A node with a connection entry of type `ssh`.
    Ssh(SshTarget),
    /// A node whose connection entry cannot be used (it cannot be
    /// decrypted, for example): why, without any secret.
    Unusable(String),
}

/// An SSH connection entry, as the Node Inventory API stores it (bolt-server's
/// SSH keys, reference agentless-ssh.md §1.2), with the secrets decrypted.
#[derive(Debug, Clone)]
pub struct SshTarget {
    /// The certname the entry is for.
    pub certname: String,
    /// Address to connect to: `parameters.hostname`, else the certname.
    pub hostname: String,
    /// `port`, default 22.
    pub port: u16,
    /// The login user (`user`, or PE's documented `username`).
    pub user: String,
    /// `password` (also the sudo password when `sudo_password` is unset).
    pub password: Option<SecretString>,
    /// `private-key-content`: an unencrypted private key in OpenSSH or PEM form.
    pub private_key: Option<SecretString>,
    /// `sudo-password`.
    pub sudo_password: Option<SecretString>,
    /// `run-as`: escalate with sudo when it differs from `user`.
    pub run_as: Option<String>,
    /// `connect-timeout`, default 10 s.
    pub connect_timeout: Duration,
    /// `disconnect-timeout`, default 5 s (Bolt's): how long the goodbye at
    /// the end of a job may take before the session is dropped.
    pub disconnect_timeout: Duration,
    /// `tmpdir`, default `/tmp`: parent of the per-run directory.
    pub tmpdir: String,
    /// `host-key-check`, default true here (PE's bolt-server defaults to false).
    pub host_key_check: bool,
}

impl SshTarget {
    /// Defaults for `certname` reached as `user`: port 22, 10 s connect
    /// timeout, `/tmp`, host keys checked.
    pub fn new(certname: impl Into<String>, user: impl Into<String>) -> Self {
        let certname = certname.into();
        SshTarget {
            hostname: certname.clone(),
            certname,
            port: 22,
            user: user.into(),
            password: None,
            private_key: None,
            sudo_password: None,
            run_as: None,
            connect_timeout: Duration::from_secs(10),
            disconnect_timeout: Duration::from_secs(5),
            tmpdir: "/tmp".to_owned(),
            host_key_check: true,
        }
    }
}
