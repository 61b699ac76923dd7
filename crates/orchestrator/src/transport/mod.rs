//! How a task reaches a node. One interface, two implementations: `local`
//! (a process on this machine with the node's own environment: the demo's
//! and the fast tests' simulated nodes) and `ssh` (a real node over
//! OpenSSH's protocol, as PE's bolt-server reaches agentless nodes). The job
//! runner, the store and the API see only [`Target`] and the
//! [`crate::exec::Outcome`] a run ends with.

pub mod ssh;

use std::time::Duration;

use secrecy::SecretString;

/// Where and how one node is reached, resolved when its run starts.
#[derive(Debug, Clone)]
pub enum Target {
    /// A simulated node from the service's inventory.
    Local(crate::config::NodeSpec),
    /// A node with a connection entry of type `ssh`.
    Ssh(SshTarget),
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
            tmpdir: "/tmp".to_owned(),
            host_key_check: true,
        }
    }
}
