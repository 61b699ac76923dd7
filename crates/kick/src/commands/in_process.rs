//! A small team needs no server: with `--inventory FILE` (a Bolt inventory,
//! the file OpenBolt users already keep), kick runs Kick's orchestrator in
//! its own process, on a loopback port with a token that exists only in
//! memory, and talks to it through the same API it uses against a service.
//! Job history, rollouts' state, connection entries and host keys live under
//! `$XDG_STATE_HOME/kick/orchestrator` (`~/.local/state/...`), so `kick job
//! list` and drift reviews see earlier runs; a run a killed kick left on a
//! node is ended the next time (the orchestrator's restart recovery).

use std::io::Write;
use std::path::{Path, PathBuf};

use orchestrator_client::{Client, Settings, Token};

use crate::cli::{ConnArgs, EnvArgs};
use crate::error::Error;

/// Puppet's and Bolt's usual module directories, searched when no
/// `--modulepath` is given (those that exist).
fn default_modulepath() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("modules"), PathBuf::from(".modules")];
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
        dirs.push(home.join(".puppetlabs/bolt/modules"));
        dirs.push(home.join(".puppetlabs/etc/code/modules"));
    }
    for code in ["/etc/puppetlabs/code", "/etc/puppet/code"] {
        dirs.push(Path::new(code).join("environments/production/modules"));
        dirs.push(Path::new(code).join("modules"));
    }
    dirs.into_iter().filter(|d| d.is_dir()).collect()
}

/// The Puppet environments this host's code directories hold (production
/// always).
fn environments() -> Vec<String> {
    let mut envs = vec!["production".to_owned()];
    for dir in [
        "/etc/puppetlabs/code/environments",
        "/etc/puppet/code/environments",
    ] {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if let Some(name) = e.file_name().to_str()
                && e.path().is_dir()
                && !envs.iter().any(|x| x == name)
            {
                envs.push(name.to_owned());
            }
        }
    }
    envs
}

/// `$XDG_STATE_HOME/kick/orchestrator`, else `~/.local/state/kick/orchestrator`.
pub fn state_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(base.join("kick/orchestrator"))
}

/// Starts the orchestrator in this process for `inventory` and connects to it.
pub fn connect(
    inventory: &Path,
    conn: &ConnArgs,
    environment: Option<&EnvArgs>,
    err: &mut dyn Write,
) -> Result<(Client, Settings), Error> {
    if conn
        .service_url
        .as_deref()
        .is_some_and(|u| !u.trim().is_empty())
    {
        return Err(Error::Usage(
            "--inventory runs the orchestrator inside kick; drop --service-url (or KICK_SERVICE_URL), or drop --inventory to use that service".into(),
        ));
    }
    if !inventory.is_file() {
        return Err(Error::Usage(format!(
            "--inventory {}: no such file (a Bolt inventory file, version 2)",
            inventory.display()
        )));
    }
    let state = state_dir().ok_or_else(|| {
        Error::Usage("--inventory needs HOME or XDG_STATE_HOME for its state directory".into())
    })?;
    create_private_dir(&state)?;
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let mut builder = kick_orchestrator::Config::builder()
        .token(&token)
        .state_dir(&state)
        .inventory_file(inventory)
        .environments(environments());
    let modulepath = if conn.modulepath.is_empty() {
        default_modulepath()
    } else {
        conn.modulepath.clone()
    };
    if modulepath.is_empty() {
        writeln!(
            err,
            "warning: no module directory found (./modules, ~/.puppetlabs/bolt/modules, Puppet's modulepaths); pass --modulepath DIR where the psick module is installed"
        )?;
    }
    for dir in modulepath {
        builder = builder.modulepath(dir);
    }
    // A person's own known_hosts counts too when kick runs as that person.
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
        builder = builder.known_hosts(home.join(".ssh/known_hosts"));
    }
    let config = builder.build();
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let listener = tokio::net::TcpListener::from_std(std_listener)?;
    // The service lives as long as kick: it ends with the process.
    tokio::spawn(async move {
        if let Err(e) = kick_orchestrator::serve(listener, config, std::future::pending()).await {
            tracing::error!("the in-process orchestrator stopped: {e}");
        }
    });
    let mut settings = Settings {
        service_url: format!("http://{addr}"),
        cacert: None,
        token_file: None,
        environment: environment.and_then(|e| e.environment.clone()),
        insecure: false,
        request_timeout: orchestrator_client::DEFAULT_REQUEST_TIMEOUT,
        retry: orchestrator_client::RetryPolicy::default(),
    };
    if let Some(secs) = conn.request_timeout {
        settings.request_timeout = std::time::Duration::from_secs_f64(secs);
    }
    let (client, warnings) = Client::new(&settings)?;
    for w in &warnings {
        writeln!(err, "warning: {w}")?;
    }
    let token = Token::from_secret(&token)
        .ok_or_else(|| Error::Usage("the in-process token is not a header value".into()))?;
    Ok((client.with_token(token), settings))
}

fn create_private_dir(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| Error::ReadFile {
            path: dir.to_owned(),
            source,
        })
}
