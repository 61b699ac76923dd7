//! The Kick orchestrator on loopback, serving this repository as module `psick` to
//! simulated nodes.

use kick_orchestrator::{Config, NodeSpec};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{PuppetDb, SimNode, Stack, workspace_root};

/// Simulated nodes, bootstrapped against the stack, as the inventory of an orchestrator that
/// listens on a free loopback port and accepts one token. Each node's task runs use that
/// node's own Puppet directories (its `task_env` and root as working directory).
pub struct LocalNodes {
    pub nodes: Vec<SimNode>,
    /// `http://127.0.0.1:<port>`, without the API prefix.
    pub url: String,
    stop: oneshot::Sender<()>,
    server: JoinHandle<Result<(), kick_orchestrator::Error>>,
}

impl LocalNodes {
    /// `count` nodes named `<prefix><i>-…`, with environments `production`, `idem` and
    /// `drift`.
    pub async fn start(stack: &Stack, prefix: &str, count: usize, token: &str) -> LocalNodes {
        Self::start_with(stack, prefix, count, token, None).await
    }

    /// As [`LocalNodes::start`], with `scope.query` answered by `puppetdb` when given.
    pub async fn start_with(
        stack: &Stack,
        prefix: &str,
        count: usize,
        token: &str,
        puppetdb: Option<&PuppetDb>,
    ) -> LocalNodes {
        let nodes: Vec<SimNode> = (0..count)
            .map(|i| SimNode::unique(stack, &format!("{prefix}{i}")))
            .collect();
        for n in &nodes {
            n.bootstrap();
        }
        let mut config = Config::builder()
            .token(token)
            .module("psick", workspace_root())
            .environments(vec![
                "production".into(),
                "idem".into(),
                "drift".into(),
                "slow".into(),
            ])
            .build();
        config.puppetdb_url = puppetdb.map(|db| db.url().to_owned());
        for n in &nodes {
            let mut spec = NodeSpec::new(n.certname());
            spec.env.extend(n.task_env());
            spec.workdir = Some(n.root().to_owned());
            config.inventory.nodes.push(spec);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stop_rx) = oneshot::channel::<()>();
        let server = tokio::spawn(kick_orchestrator::serve(listener, config, async move {
            let _ = stop_rx.await;
        }));
        LocalNodes {
            nodes,
            url,
            stop,
            server,
        }
    }

    pub fn certnames(&self) -> Vec<&str> {
        self.nodes.iter().map(|n| n.certname()).collect()
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
