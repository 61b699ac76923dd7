//! Opening a node's SSH session: TCP and the handshake within the connect
//! timeout, the host key checked against OpenSSH known_hosts files, then
//! public-key or password authentication. Failures carry Bolt's issue codes
//! (CONNECT_ERROR, HOST_KEY_ERROR, AUTH_ERROR).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client;
use russh::keys::PublicKeyOrCertificate;
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKey};
use secrecy::ExposeSecret;

use crate::transport::SshTarget;

/// SSH keepalives: a silent task is not cut off by NAT or firewall idle
/// timers, and a dead peer is noticed.
const KEEPALIVE: Duration = Duration::from_secs(15);
const KEEPALIVE_MAX: usize = 4;

/// Why a session could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectError {
    /// `CONNECT_ERROR`, `HOST_KEY_ERROR` or `AUTH_ERROR`.
    pub issue_code: &'static str,
    pub msg: String,
}

/// What the host-key check saw.
#[derive(Debug, Clone)]
enum Verdict {
    Unknown(String),
    Changed(String),
}

/// The client side of one session.
#[derive(Debug)]
pub struct Client {
    names: Vec<String>,
    port: u16,
    check: bool,
    known_hosts: Arc<Vec<PathBuf>>,
    verdict: Arc<Mutex<Option<Verdict>>>,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        if !self.check {
            return Ok(true);
        }
        let key: &PublicKey = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key,
            // Host certificates are not trusted by known_hosts lines here.
            PublicKeyOrCertificate::Certificate(_) => {
                self.set(Verdict::Unknown(
                    "the host offered a certificate, and Kick checks plain host keys against known_hosts"
                        .into(),
                ));
                return Ok(false);
            }
        };
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        for file in self.known_hosts.iter() {
            for name in &self.names {
                match russh::keys::check_known_hosts_path(name, self.port, key, file) {
                    Ok(true) => return Ok(true),
                    Ok(false) => {}
                    Err(russh::keys::Error::KeyChanged { line }) => {
                        self.set(Verdict::Changed(format!(
                            "fingerprint {fingerprint} does not match the key recorded for {name} at {}:{line}",
                            file.display()
                        )));
                        return Ok(false);
                    }
                    Err(_) => {}
                }
            }
        }
        let files: Vec<String> = self
            .known_hosts
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        self.set(Verdict::Unknown(format!(
            "fingerprint {fingerprint} is unknown for {} (looked in {})",
            self.names.join(" and "),
            files.join(", ")
        )));
        Ok(false)
    }
}

impl Client {
    fn set(&self, v: Verdict) {
        *self.verdict.lock().unwrap_or_else(|p| p.into_inner()) = Some(v);
    }
}

/// An open, authenticated session.
pub type Session = client::Handle<Client>;

/// Opens and authenticates the session to `t`, all within its connect
/// timeout.
pub async fn open(t: &SshTarget, known_hosts: Arc<Vec<PathBuf>>) -> Result<Session, ConnectError> {
    let verdict = Arc::new(Mutex::new(None));
    let mut names = vec![t.hostname.clone()];
    if t.certname != t.hostname {
        names.push(t.certname.clone());
    }
    let handler = Client {
        names,
        port: t.port,
        check: t.host_key_check,
        known_hosts,
        verdict: verdict.clone(),
    };
    let config = Arc::new(client::Config {
        keepalive_interval: Some(KEEPALIVE),
        keepalive_max: KEEPALIVE_MAX,
        nodelay: true,
        ..client::Config::default()
    });
    let target = format!("{}:{}", t.hostname, t.port);
    let connect_fail = |msg: String| ConnectError {
        issue_code: "CONNECT_ERROR",
        msg,
    };
    let timeout = t.connect_timeout;
    let opened = tokio::time::timeout(timeout, async {
        let addr = (t.hostname.as_str(), t.port);
        let mut session = match client::connect(config, addr, handler).await {
            Ok(s) => s,
            Err(e) => {
                let seen = verdict.lock().unwrap_or_else(|p| p.into_inner()).clone();
                return Err(match seen {
                    Some(Verdict::Unknown(why) | Verdict::Changed(why)) => ConnectError {
                        issue_code: "HOST_KEY_ERROR",
                        msg: format!("Host key verification failed for {}: {why}", t.certname),
                    },
                    None => {
                        connect_fail(format!("Failed to connect to {target}: {}", describe(&e)))
                    }
                });
            }
        };
        authenticate(&mut session, t).await?;
        Ok(session)
    })
    .await;
    match opened {
        Ok(r) => r,
        Err(_) => Err(connect_fail(format!(
            "Timeout after {} seconds connecting to {target}",
            timeout.as_secs()
        ))),
    }
}

async fn authenticate(session: &mut Session, t: &SshTarget) -> Result<(), ConnectError> {
    let auth_fail = |msg: String| ConnectError {
        issue_code: "AUTH_ERROR",
        msg,
    };
    let io_fail = |e: russh::Error| ConnectError {
        issue_code: "CONNECT_ERROR",
        msg: format!("Failed to connect to {}: {}", t.hostname, describe(&e)),
    };
    let result = if let Some(key) = &t.private_key {
        let key = russh::keys::decode_secret_key(key.expose_secret(), None).map_err(|e| {
            auth_fail(format!(
                "The private key of the connection to {} cannot be used: {e}",
                t.certname
            ))
        })?;
        let hash = session
            .best_supported_rsa_hash()
            .await
            .map_err(io_fail)?
            .flatten();
        session
            .authenticate_publickey(&t.user, PrivateKeyWithHashAlg::new(Arc::new(key), hash))
            .await
            .map_err(io_fail)?
    } else if let Some(pw) = &t.password {
        session
            .authenticate_password(&t.user, pw.expose_secret())
            .await
            .map_err(io_fail)?
    } else {
        return Err(auth_fail(format!(
            "The connection to {} has neither a private key nor a password",
            t.certname
        )));
    };
    match result {
        russh::client::AuthResult::Success => Ok(()),
        russh::client::AuthResult::Failure {
            remaining_methods, ..
        } => {
            let offered: Vec<&str> = remaining_methods.iter().map(<&str>::from).collect();
            Err(auth_fail(format!(
                "Authentication failed for user {}@{} (the server accepts: {})",
                t.user,
                t.hostname,
                offered.join(", ")
            )))
        }
    }
}

/// A russh error in words a user can act on.
pub fn describe(e: &russh::Error) -> String {
    match e {
        russh::Error::IO(io) => io.to_string(),
        russh::Error::Disconnect => "the server closed the connection".to_owned(),
        other => other.to_string(),
    }
}
