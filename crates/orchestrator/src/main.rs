//! `kick-orchestrator`: Kick's Orchestrator API v1 service, for fleets without Puppet
//! Enterprise (tasks on nodes over SSH, and on simulated local nodes for trying and testing).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use kick_orchestrator::{Config, Inventory, Tls, TokenSpec};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Kick's Orchestrator API v1 service, for fleets without Puppet Enterprise: runs tasks on nodes over SSH (and on simulated local nodes, for trying and testing)"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8143")]
    listen: String,
    /// PEM certificate chain (with --tls-key); default: a self-signed CA and
    /// certificate generated at start, the CA written to <state-dir>/ca.pem.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key (with --tls-cert).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP (loopback tests only).
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    plain: bool,
    /// Tokens file: one token a line, or a YAML/JSON list of {token, login, tasks, deploy,
    /// inventory, view_sensitive} (see docs/orchestrator-inventory.md).
    #[arg(long)]
    tokens_file: PathBuf,
    /// Inventory of simulated nodes (YAML or JSON): {nodes: [{certname, connected, groups, env, workdir}]};
    /// none without it.
    #[arg(long)]
    inventory: Option<PathBuf>,
    /// A Bolt inventory file (inventory.yaml, version 2): its SSH targets
    /// become connection entries at start, replacing those of the same
    /// certnames (see docs/orchestrator-inventory.md).
    #[arg(long, value_name = "PATH")]
    inventory_file: Option<PathBuf>,
    /// Directory of modules (repeatable).
    #[arg(long)]
    modulepath: Vec<PathBuf>,
    /// A module by name: NAME=PATH (repeatable), e.g. psick=. for this repository.
    #[arg(long, value_parser = parse_module)]
    module: Vec<(String, PathBuf)>,
    /// Where job history (and the generated CA) is kept.
    #[arg(long, default_value = ".kick-orchestrator")]
    state_dir: PathBuf,
    /// Nodes running at once (1 to 1,000,000).
    #[arg(
        long,
        default_value_t = kick_orchestrator::config::DEFAULT_CONCURRENCY,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000)
    )]
    concurrency: usize,
    /// Niceness of task processes (0-19). pxp-agent runs tasks at 0; the
    /// default 19 keeps simulated nodes, which share this machine's CPUs,
    /// from delaying the API and its events. 0 runs them as pxp-agent does.
    #[arg(long, default_value_t = 19, value_parser = clap::value_parser!(i32).range(0..=19))]
    task_nice: i32,
    /// PuppetDB base URL for scope.query.
    #[arg(long)]
    puppetdb_url: Option<String>,
    /// Public base URL for links (default: from the listen address).
    #[arg(long)]
    base_url: Option<String>,
    /// Puppet environments that exist (repeatable; default production).
    #[arg(long = "environment")]
    environments: Vec<String>,
}

fn parse_module(s: &str) -> Result<(String, PathBuf), String> {
    let (n, p) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=PATH, got {s:?}"))?;
    Ok((n.to_owned(), PathBuf::from(p)))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kick-orchestrator: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), kick_orchestrator::Error> {
    let mut config = Config::new(
        TokenSpec::load(&args.tokens_file)?,
        match &args.inventory {
            Some(path) => Inventory::load(path)?,
            None => Inventory::default(),
        },
    );
    config.modulepath = args.modulepath;
    config.modules = args.module;
    config.state_dir = Some(args.state_dir.clone());
    config.inventory_file = args.inventory_file;
    config.concurrency = args.concurrency.max(1);
    config.puppetdb_url = args.puppetdb_url;
    config.task_nice = (args.task_nice != 0).then_some(args.task_nice);
    config.base_url = args.base_url;
    if !args.environments.is_empty() {
        config.environments = args.environments;
    }
    let ca = args.state_dir.join("ca.pem");
    config.tls = match (args.plain, args.tls_cert, args.tls_key) {
        (true, _, _) => Tls::Plain,
        (false, Some(cert), Some(key)) => Tls::Files { cert, key },
        _ => Tls::SelfSigned {
            write_ca_to: ca.clone(),
        },
    };
    let listener = std::net::TcpListener::bind(&args.listen)?;
    let ca_note = match &config.tls {
        Tls::SelfSigned { write_ca_to } => format!(" cacert={}", write_ca_to.display()),
        _ => String::new(),
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down: running jobs are stopped and recorded as failed");
    };
    // Printed on stdout, once the service really answers, so that scripts
    // can wait for it.
    kick_orchestrator::serve_tls_ready(listener, config, shutdown, |url| {
        println!("kick-orchestrator listening service-url={url}{ca_note}");
    })
    .await
}
