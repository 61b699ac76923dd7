//! Kick's orchestrator on loopback, reaching the fleet's nodes over SSH as their `kick` login
//! user, escalating to root with sudo (the connection entries a user would create), serving
//! this repository as module `psick`.

use std::path::PathBuf;

use kick_orchestrator::Config;
use kick_orchestrator::transport::SshTarget;
use secrecy::SecretString;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{Fleet, FleetNode, workspace_root};

/// The environments the fleet tests use.
pub const ENVIRONMENTS: [&str; 5] = ["production", "idem", "drift", "slow", "failing"];

/// The SSH connection of a fleet node as `kick` with its key, run as root through sudo.
pub fn target(node: &FleetNode) -> SshTarget {
    let mut t = SshTarget::new(&node.certname, &node.user);
    t.hostname = node.address.clone();
    t.port = node.port;
    let key = std::fs::read_to_string(&node.private_key)
        .unwrap_or_else(|e| panic!("{}: {e}", node.private_key.display()));
    t.private_key = Some(SecretString::from(key));
    t.sudo_password = Some(SecretString::from(node.sudo_password.clone()));
    t.run_as = Some("root".to_owned());
    t
}

/// An orchestrator serving the fleet's nodes.
pub struct SshNodes {
    /// `http://127.0.0.1:<port>`, without the API prefix.
    pub url: String,
    pub certnames: Vec<String>,
    pub state: tempfile::TempDir,
    stop: oneshot::Sender<()>,
    server: JoinHandle<Result<(), kick_orchestrator::Error>>,
}

impl SshNodes {
    /// Every node of `fleet` (each through [`target`], changed by `adjust`), one token.
    pub async fn start(
        fleet: &Fleet,
        token: &str,
        adjust: impl Fn(&FleetNode, &mut SshTarget),
    ) -> SshNodes {
        let state = tempfile::tempdir().expect("state dir");
        let mut b = Config::builder()
            .token(token)
            .module("psick", workspace_root())
            .environments(ENVIRONMENTS.iter().map(|e| (*e).to_owned()).collect())
            .state_dir(state.path())
            .known_hosts(PathBuf::from(fleet.known_hosts()));
        let mut certnames = Vec::new();
        for node in fleet.nodes() {
            let mut t = target(node);
            adjust(node, &mut t);
            certnames.push(t.certname.clone());
            b = b.ssh_target(t);
        }
        let config = b.build();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stop_rx) = oneshot::channel::<()>();
        let server = tokio::spawn(kick_orchestrator::serve(listener, config, async move {
            let _ = stop_rx.await;
        }));
        SshNodes {
            url,
            certnames,
            state,
            stop,
            server,
        }
    }

    /// Shuts the orchestrator down and fails the test unless it stopped cleanly.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.server
            .await
            .expect("join")
            .expect("orchestrator stopped cleanly");
    }
}
