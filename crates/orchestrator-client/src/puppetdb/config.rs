//! Where the PuppetDB settings come from, lowest precedence first:
//!
//! 1. the orchestrator's settings: its CA, token file and `--insecure` (in PE both services
//!    trust the Puppet CA and take the same RBAC token);
//! 2. the global PE client-tools file `/etc/puppetlabs/client-tools/puppetdb.conf`;
//! 3. the user's `~/.puppetlabs/client-tools/puppetdb.conf`;
//! 4. `KICK_PUPPETDB_URL`;
//! 5. `--puppetdb-url`.
//!
//! The files are PE's format: JSON with the settings under `"puppetdb"`: `server_urls` (a
//! list, or one string of comma-separated URLs), `cacert`, `cert`, `key`, `token-file`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::error::PuppetDbError;
use crate::config::{Settings, Warning, expand_tilde, malformed, read_section, string_setting};

/// The PE-managed client-tools file.
pub const GLOBAL_PUPPETDB_CONFIG: &str = "/etc/puppetlabs/client-tools/puppetdb.conf";
/// The user's client-tools file, relative to `HOME`.
pub const USER_PUPPETDB_CONFIG: &str = ".puppetlabs/client-tools/puppetdb.conf";
/// Rows asked for per request; PQL answers larger than this are paged.
pub const DEFAULT_PAGE_SIZE: u64 = 10_000;

/// Everything a [`PuppetDb`](super::PuppetDb) client needs.
#[derive(Debug, Clone)]
pub struct PuppetDbSettings {
    /// Base URLs (`https://host:8081`), tried in order when one cannot be reached.
    pub server_urls: Vec<String>,
    /// CA bundle to trust; `None` uses the platform's roots.
    pub cacert: Option<PathBuf>,
    /// Client certificate and key (PEM) for PuppetDB's certificate-authenticated port.
    pub cert: Option<PathBuf>,
    /// The client certificate's private key.
    pub key: Option<PathBuf>,
    /// File holding the RBAC token; `None` sends none.
    pub token_file: Option<PathBuf>,
    /// Skip TLS verification (only when asked for the orchestrator too).
    pub insecure: bool,
    /// Limit for one HTTP exchange.
    pub request_timeout: Duration,
    /// Rows per page.
    pub page_size: u64,
}

#[derive(Default)]
struct Layer {
    server_urls: Option<Vec<String>>,
    cacert: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    token_file: Option<String>,
}

impl PuppetDbSettings {
    /// Loads the settings from the standard files, `KICK_PUPPETDB_URL` and `url_flag`, on
    /// top of the orchestrator's `base`. `Ok(None)` when no PuppetDB is configured anywhere.
    pub fn load(
        base: &Settings,
        url_flag: Option<&str>,
    ) -> Result<(Option<PuppetDbSettings>, Vec<Warning>), PuppetDbError> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let user = home.map(|h| h.join(USER_PUPPETDB_CONFIG));
        Self::load_from(
            base,
            Some(Path::new(GLOBAL_PUPPETDB_CONFIG)),
            user.as_deref(),
            &|name| std::env::var(name).ok(),
            url_flag,
        )
    }

    /// [`load`](Self::load) with the file locations and the environment injected.
    pub fn load_from(
        base: &Settings,
        global: Option<&Path>,
        user: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        url_flag: Option<&str>,
    ) -> Result<(Option<PuppetDbSettings>, Vec<Warning>), PuppetDbError> {
        let mut warnings = Vec::new();
        let mut merged = Layer::default();
        for path in [global, user].into_iter().flatten() {
            if let Some(layer) = read_file(path, &mut warnings)? {
                macro_rules! over {
                    ($($f:ident),*) => { $( if layer.$f.is_some() { merged.$f = layer.$f; } )* };
                }
                over!(server_urls, cacert, cert, key, token_file);
            }
        }
        let from_env = env("KICK_PUPPETDB_URL").filter(|v| !v.trim().is_empty());
        for url in [from_env.as_deref(), url_flag].into_iter().flatten() {
            merged.server_urls = Some(split_urls(url));
        }
        let Some(server_urls) = merged.server_urls.filter(|u| !u.is_empty()) else {
            return Ok((None, warnings));
        };
        for u in &server_urls {
            check_url(u)?;
        }
        let home = env("HOME");
        let expand = |p: Option<String>| -> Result<Option<PathBuf>, PuppetDbError> {
            p.map(|p| expand_tilde(&p, home.as_deref()).map_err(PuppetDbError::from))
                .transpose()
        };
        let cert = expand(merged.cert)?;
        let key = expand(merged.key)?;
        if cert.is_some() != key.is_some() {
            return Err(PuppetDbError::Config {
                message: "puppetdb.cert and puppetdb.key go together: set both (a client certificate and its key) or neither".into(),
            });
        }
        Ok((
            Some(PuppetDbSettings {
                server_urls,
                cacert: expand(merged.cacert)?.or_else(|| base.cacert.clone()),
                cert,
                key,
                token_file: expand(merged.token_file)?.or_else(|| base.token_file.clone()),
                insecure: base.insecure,
                request_timeout: base.request_timeout,
                page_size: DEFAULT_PAGE_SIZE,
            }),
            warnings,
        ))
    }
}

fn split_urls(s: &str) -> Vec<String> {
    s.split(',')
        .map(|u| u.trim().trim_end_matches('/').to_owned())
        .filter(|u| !u.is_empty())
        .collect()
}

fn check_url(u: &str) -> Result<(), PuppetDbError> {
    match reqwest::Url::parse(u) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => Ok(()),
        _ => Err(PuppetDbError::Config {
            message: format!(
                "{u:?} is not a PuppetDB URL; give one like https://puppetdb.example.com:8081"
            ),
        }),
    }
}

/// Reads one client-tools file, as the orchestrator's are read.
fn read_file(path: &Path, warnings: &mut Vec<Warning>) -> Result<Option<Layer>, PuppetDbError> {
    let config = |message| PuppetDbError::Config { message };
    let Some(section) = read_section(path, "puppetdb", warnings).map_err(config)? else {
        return Ok(None);
    };
    let get = |key: &str| string_setting(path, &section, "puppetdb", key).map_err(config);
    let bad = |what: &str| config(malformed(path, what));
    let server_urls = match section.get("server_urls") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(split_urls(s)),
        Some(Value::Array(a)) => Some(
            a.iter()
                .map(|v| {
                    v.as_str()
                        .map(|s| s.trim().trim_end_matches('/').to_owned())
                        .ok_or_else(|| bad("puppetdb.server_urls must hold strings"))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => return Err(bad("puppetdb.server_urls must be a list of URLs")),
    };
    Ok(Some(Layer {
        server_urls,
        cacert: get("cacert")?,
        cert: get("cert")?,
        key: get("key")?,
        token_file: get("token-file")?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Overrides;

    fn base() -> Settings {
        let env = |k: &str| (k == "HOME").then(|| "/home/u".to_owned());
        Settings::load_from(
            None,
            None,
            &env,
            Overrides {
                service_url: Some("https://pe:8143".into()),
                ..Overrides::default()
            },
        )
        .unwrap()
        .0
    }

    fn load(
        files: &[(&str, &str)],
        env_url: Option<&str>,
        flag: Option<&str>,
    ) -> Result<Option<PuppetDbSettings>, PuppetDbError> {
        let dir = tempfile::tempdir().unwrap();
        let mut paths = Vec::new();
        for (name, text) in files {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            paths.push(p);
        }
        let env = |k: &str| match k {
            "HOME" => Some("/home/u".to_owned()),
            "KICK_PUPPETDB_URL" => env_url.map(str::to_owned),
            _ => None,
        };
        PuppetDbSettings::load_from(
            &base(),
            paths.first().map(PathBuf::as_path),
            paths.get(1).map(PathBuf::as_path),
            &env,
            flag,
        )
        .map(|(s, _)| s)
    }

    #[test]
    fn nothing_configured_is_none() {
        assert!(load(&[], None, None).unwrap().is_none());
    }

    #[test]
    fn user_file_over_global_then_env_then_flag() {
        let global = r#"{"puppetdb": {"server_urls": ["https://g:8081"], "cacert": "/g/ca.pem"}}"#;
        let user = r#"{"puppetdb": {"server_urls": "https://u1:8081, https://u2:8081/", "token-file": "~/t"}}"#;
        let s = load(&[("g", global), ("u", user)], None, None)
            .unwrap()
            .unwrap();
        assert_eq!(s.server_urls, ["https://u1:8081", "https://u2:8081"]);
        assert_eq!(s.cacert.as_deref(), Some(Path::new("/g/ca.pem")));
        assert_eq!(s.token_file.as_deref(), Some(Path::new("/home/u/t")));
        let s = load(&[("g", global)], Some("http://127.0.0.1:8080"), None)
            .unwrap()
            .unwrap();
        assert_eq!(s.server_urls, ["http://127.0.0.1:8080"]);
        let s = load(&[("g", global)], Some("http://e:1"), Some("https://f:8081"))
            .unwrap()
            .unwrap();
        assert_eq!(s.server_urls, ["https://f:8081"]);
    }

    #[test]
    fn orchestrator_ca_and_token_are_the_defaults() {
        let s = load(&[], None, Some("https://db:8081")).unwrap().unwrap();
        assert_eq!(s.cacert.as_deref(), Some(Path::new(crate::DEFAULT_CACERT)));
        assert_eq!(
            s.token_file.as_deref(),
            Some(Path::new("/home/u/.puppetlabs/token"))
        );
    }

    #[test]
    fn malformed_files_and_urls_are_errors_that_say_what_to_fix() {
        let e = load(&[("g", "{not json")], None, None).unwrap_err();
        assert!(e.to_string().contains("fix or remove the file"), "{e}");
        let e = load(
            &[("g", r#"{"puppetdb": {"server_urls": 8081}}"#)],
            None,
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("list of URLs"), "{e}");
        let e = load(&[], None, Some("db.example.com")).unwrap_err();
        assert!(e.to_string().contains("not a PuppetDB URL"), "{e}");
        let e = load(
            &[(
                "g",
                r#"{"puppetdb": {"server_urls": ["https://d:8081"], "cert": "/c.pem"}}"#,
            )],
            None,
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("set both"), "{e}");
    }
}
