//! An Orchestrator API v1 service (with PE's Node Inventory API v1) that
//! behaves like Puppet Enterprise's orchestrator on every point Kick and
//! PE's clients depend on, for fleets without PE: it runs tasks on `ssh`
//! nodes over OpenSSH, the way PE runs agentless nodes, and on simulated
//! `local` nodes (processes on this machine with per-node environments)
//! for the demo and fast tests. PE users keep PE's orchestrator.
//!
//! ```no_run
//! # async fn f() -> Result<(), kick_orchestrator::Error> {
//! use kick_orchestrator::{Config, NodeSpec, serve};
//! let config = Config::builder()
//!     .token("secret")
//!     .node(NodeSpec::new("node1.example"))
//!     .module("psick", ".")
//!     .build();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! serve(listener, config, std::future::pending()).await
//! # }
//! ```
//!
//! Choices where PE's behaviour is not documented (see docs/orchestrator.md):
//! - a timed-out node ends `failed` with `_error` kind
//!   `puppetlabs.tasks/task-error` (`details.timeout`), unless the task's own
//!   output carries an `_error` (psick reports `psick/timeout`);
//! - a node killed by a force stop ends `stopped` with `_error` kind
//!   `puppetlabs.orchestrator/job-stopped` and a `node_errored` event
//!   (PE has no `node_stopped` event); nodes never started end `skipped`;
//! - `job_finished`'s detail is `{"state", "node_states"}`.

mod api;
mod app;
mod atomic;
mod cache;
pub mod config;
mod deploy;
mod error;
mod exec;
mod inventory;
mod job;
mod modules;
mod plans;
pub mod puppet_type;
mod query;
mod runner;
mod scope;
mod store;
mod time;
mod tls;
pub mod transport;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use config::{Config, ConfigBuilder, Inventory, NodeSpec, Tls, TokenSpec};
pub use error::Error;

/// How long shutdown waits for killed jobs to be saved.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

/// A running service's control handle.
#[derive(Debug, Clone)]
pub struct Handle {
    app: Arc<app::App>,
}

impl Handle {
    /// The public base URL used in `id` links.
    pub fn base_url(&self) -> &str {
        &self.app.base
    }

    /// Kills running jobs (they end `failed`, saying the service stopped)
    /// and waits for them to be saved.
    pub async fn shutdown_jobs(&self) {
        self.app.shutdown_jobs(SHUTDOWN_WAIT).await;
    }
}

/// The service as an axum router, for in-process tests. Links use
/// `config.base_url` (default `http://127.0.0.1`).
pub fn router(config: Config) -> Result<(axum::Router, Handle), Error> {
    let base = config
        .base_url
        .clone()
        .unwrap_or_else(|| "http://127.0.0.1".to_owned());
    build(config, base)
}

fn build(config: Config, base: String) -> Result<(axum::Router, Handle), Error> {
    let base = base.trim_end_matches('/').to_owned();
    let app = Arc::new(app::App::new(config, base)?);
    tokio::spawn(plans::recover(app.clone()));
    tokio::spawn(transport::ssh::recover::recover(app.clone()));
    tokio::spawn(api::schedules_tick(Arc::downgrade(&app)));
    Ok((api::router(app.clone()), Handle { app }))
}

/// Serves plain HTTP on `listener` until `shutdown` completes; running jobs
/// are then killed and recorded as failed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    serve_ready(listener, config, shutdown, |_| {}).await
}

/// [`serve`], calling `ready` with the base URL once the service is set up
/// (state directory open, history repaired) and about to answer.
pub async fn serve_ready(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(&str),
) -> Result<(), Error> {
    let addr = listener.local_addr()?;
    let base = config.base_url_for(addr, false);
    let (router, handle) = build(config, base)?;
    ready(handle.base_url());
    let h = handle.clone();
    // Without TCP_NODELAY, small answers to pollers wait on delayed ACKs.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            h.shutdown_jobs().await;
        })
        .await?;
    Ok(())
}

/// Serves HTTPS on `listener` as `config.tls` says ([`Tls::Plain`] falls
/// back to [`serve`]). Returns once `shutdown` completes.
pub async fn serve_tls(
    listener: std::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    serve_tls_ready(listener, config, shutdown, |_| {}).await
}

/// [`serve_tls`], calling `ready` with the base URL once the service is set
/// up (certificate loaded, state directory open) and about to answer.
pub async fn serve_tls_ready(
    listener: std::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(&str),
) -> Result<(), Error> {
    let addr = listener.local_addr()?;
    let (cert, key) = match &config.tls {
        Tls::Plain => {
            listener.set_nonblocking(true)?;
            let l = tokio::net::TcpListener::from_std(listener)?;
            return serve_ready(l, config, shutdown, ready).await;
        }
        Tls::SelfSigned { write_ca_to } => {
            let mut names = vec![addr.ip().to_string()];
            if let Some(host) = config
                .base_url
                .as_deref()
                .and_then(|u| u.split_once("://"))
                .and_then(|(_, r)| r.split([':', '/']).next())
            {
                names.push(host.to_owned());
            }
            let g = tls::self_signed(&names, write_ca_to)?;
            (g.cert_pem.into_bytes(), g.key_pem.into_bytes())
        }
        Tls::Files { cert, key } => (
            std::fs::read(cert).map_err(|source| Error::Read {
                path: cert.clone(),
                source,
            })?,
            std::fs::read(key).map_err(|source| Error::Read {
                path: key.clone(),
                source,
            })?,
        ),
    };
    let rustls = axum_server::tls_rustls::RustlsConfig::from_pem(cert, key)
        .await
        .map_err(|e| Error::Tls(format!("cannot load the certificate and key: {e}")))?;
    let base = config.base_url_for(addr, true);
    let (router, handle) = build(config, base)?;
    let server_handle = axum_server::Handle::new();
    let sh = server_handle.clone();
    let h = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        h.shutdown_jobs().await;
        sh.graceful_shutdown(Some(Duration::from_secs(5)));
    });
    listener.set_nonblocking(true)?;
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(rustls)
        .acceptor(axum_server::accept::NoDelayAcceptor::new());
    ready(handle.base_url());
    axum_server::from_tcp(listener)?
        .acceptor(acceptor)
        .handle(server_handle)
        .serve(router.into_make_service())
        .await?;
    Ok(())
}
