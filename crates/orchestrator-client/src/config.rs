//! Where the client's settings come from, lowest precedence first:
//!
//! 1. built-in defaults (`cacert` = the Puppet CA, `token-file` = `~/.puppetlabs/token`);
//! 2. the global PE client-tools file `/etc/puppetlabs/client-tools/orchestrator.conf`;
//! 3. the user's `~/.puppetlabs/client-tools/orchestrator.conf`;
//! 4. environment variables `KICK_SERVICE_URL`, `KICK_CACERT`, `KICK_TOKEN_FILE`,
//!    `KICK_ENVIRONMENT` (PE's own tools read no environment variables for
//!    these, so there is nothing of theirs to honour);
//! 5. overrides, i.e. command-line flags.
//!
//! The files are PE's format (JSON, settings under `"options"`: `service-url`,
//! `cacert`, `token-file`, `environment`; other keys such as `color` are
//! ignored). A leading `~` in `cacert` and `token-file` is expanded from `HOME`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::error::Error;
use crate::retry::RetryPolicy;

/// The PE-managed client-tools file.
pub const GLOBAL_CONFIG: &str = "/etc/puppetlabs/client-tools/orchestrator.conf";
/// The user's client-tools file, relative to `HOME`.
pub const USER_CONFIG: &str = ".puppetlabs/client-tools/orchestrator.conf";
/// Where `puppet access login` writes the token.
pub const DEFAULT_TOKEN_FILE: &str = "~/.puppetlabs/token";
/// The Puppet CA on a PE-managed host.
pub const DEFAULT_CACERT: &str = "/etc/puppetlabs/puppet/ssl/certs/ca.pem";
/// Per-request timeout unless changed.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything the [`Client`](crate::Client) needs to connect.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `https://host:8143` (a trailing `/orchestrator/v1` is accepted too).
    pub service_url: String,
    /// CA bundle to trust instead of any built-in roots; `None` uses the
    /// platform's roots.
    pub cacert: Option<PathBuf>,
    /// File holding the RBAC token; `None` sends no token.
    pub token_file: Option<PathBuf>,
    /// Default Puppet environment for commands.
    pub environment: Option<String>,
    /// Skip TLS verification (only when asked; a warning is given).
    pub insecure: bool,
    /// Limit for one HTTP exchange (connect, send, whole body).
    pub request_timeout: Duration,
    /// How reads are retried and submissions double-checked.
    pub retry: RetryPolicy,
}

/// Values from command-line flags; they win over everything else.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--service-url`.
    pub service_url: Option<String>,
    /// `--cacert`.
    pub cacert: Option<PathBuf>,
    /// `--token-file`.
    pub token_file: Option<PathBuf>,
    /// `--environment`.
    pub environment: Option<String>,
    /// `--insecure`.
    pub insecure: bool,
}

/// Something the user should know that does not stop the command, e.g. a
/// token file readable by others or `--insecure` in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning(pub String);

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The four settings a layer may set, still as raw strings.
#[derive(Default)]
struct Layer {
    service_url: Option<String>,
    cacert: Option<String>,
    token_file: Option<String>,
    environment: Option<String>,
}

impl Layer {
    fn apply(&mut self, other: Layer) {
        macro_rules! over {
            ($($f:ident),*) => { $( if other.$f.is_some() { self.$f = other.$f; } )* };
        }
        over!(service_url, cacert, token_file, environment);
    }
}

impl Settings {
    /// Loads the settings from the standard files, the process environment
    /// and `overrides`.
    pub fn load(overrides: Overrides) -> Result<(Settings, Vec<Warning>), Error> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let user = home.map(|h| h.join(USER_CONFIG));
        Self::load_from(
            Some(Path::new(GLOBAL_CONFIG)),
            user.as_deref(),
            &|name| std::env::var(name).ok(),
            overrides,
        )
    }

    /// [`load`](Self::load) with the file locations and the environment
    /// injected (`env` is also asked for `HOME` to expand `~`).
    pub fn load_from(
        global: Option<&Path>,
        user: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        overrides: Overrides,
    ) -> Result<(Settings, Vec<Warning>), Error> {
        let mut warnings = Vec::new();
        let mut merged = Layer {
            service_url: None,
            cacert: Some(DEFAULT_CACERT.to_owned()),
            token_file: Some(DEFAULT_TOKEN_FILE.to_owned()),
            environment: None,
        };
        for path in [global, user].into_iter().flatten() {
            if let Some(layer) = read_file(path, &mut warnings)? {
                merged.apply(layer);
            }
        }
        let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        merged.apply(Layer {
            service_url: var("KICK_SERVICE_URL"),
            cacert: var("KICK_CACERT"),
            token_file: var("KICK_TOKEN_FILE"),
            environment: var("KICK_ENVIRONMENT"),
        });
        let path_str = |p: PathBuf| p.to_string_lossy().into_owned();
        merged.apply(Layer {
            service_url: overrides.service_url,
            cacert: overrides.cacert.map(path_str),
            token_file: overrides.token_file.map(path_str),
            environment: overrides.environment,
        });

        let service_url = merged.service_url.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).ok_or_else(|| Error::Config {
            message: format!(
                "no orchestrator service URL is configured; pass --service-url https://<primary>:8143, set KICK_SERVICE_URL, or set options.service-url in ~/{USER_CONFIG}"
            ),
        })?;
        let home = env("HOME");
        let expand = |p: Option<String>| p.map(|p| expand_tilde(&p, home.as_deref())).transpose();
        Ok((
            Settings {
                service_url,
                cacert: expand(merged.cacert)?,
                token_file: expand(merged.token_file)?,
                environment: merged.environment.filter(|e| !e.is_empty()),
                insecure: overrides.insecure,
                request_timeout: DEFAULT_REQUEST_TIMEOUT,
                retry: RetryPolicy::default(),
            },
            warnings,
        ))
    }
}

/// Reads one client-tools file; a missing file is not an error, an
/// unreadable one is skipped with a warning, a malformed one is an error
/// (silently ignoring it would connect somewhere the user did not mean).
fn read_file(path: &Path, warnings: &mut Vec<Warning>) -> Result<Option<Layer>, Error> {
    let config = |message| Error::Config { message };
    let Some(options) = read_section(path, "options", warnings).map_err(config)? else {
        return Ok(None);
    };
    let get = |key: &str| string_setting(path, &options, "options", key).map_err(config);
    Ok(Some(Layer {
        service_url: get("service-url")?,
        cacert: get("cacert")?,
        token_file: get("token-file")?,
        environment: get("environment")?,
    }))
}

/// The `section` object of a client-tools JSON file: `None` when the file is missing or
/// unreadable (with a warning), empty when the section is absent, `Err` (a message saying
/// what to fix) when the file is malformed.
pub(crate) fn read_section(
    path: &Path,
    section: &str,
    warnings: &mut Vec<Warning>,
) -> Result<Option<serde_json::Map<String, Value>>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            warnings.push(Warning(format!(
                "ignoring {}: cannot read it ({e})",
                path.display()
            )));
            return Ok(None);
        }
    };
    let doc: Value = serde_json::from_str(&text)
        .map_err(|e| malformed(path, &format!("not valid JSON ({e})")))?;
    match doc.get(section) {
        None | Some(Value::Null) => Ok(Some(serde_json::Map::new())),
        Some(Value::Object(o)) => Ok(Some(o.clone())),
        Some(_) => Err(malformed(path, &format!("\"{section}\" must be an object"))),
    }
}

/// A string setting of a section; blank counts as unset.
pub(crate) fn string_setting(
    path: &Path,
    map: &serde_json::Map<String, Value>,
    section: &str,
    key: &str,
) -> Result<Option<String>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
        Some(_) => Err(malformed(
            path,
            &format!("{section}.{key} must be a string"),
        )),
    }
}

/// The message for a client-tools file that cannot be used.
pub(crate) fn malformed(path: &Path, what: &str) -> String {
    format!("{}: {what}; fix or remove the file", path.display())
}

pub(crate) fn expand_tilde(path: &str, home: Option<&str>) -> Result<PathBuf, Error> {
    let rest = if path == "~" {
        ""
    } else if let Some(rest) = path.strip_prefix("~/") {
        rest
    } else {
        return Ok(PathBuf::from(path));
    };
    let home = home
        .filter(|h| !h.is_empty())
        .ok_or_else(|| Error::Config {
            message: format!("cannot expand {path}: HOME is not set; give an absolute path"),
        })?;
    Ok(Path::new(home).join(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tilde_expansion() {
        assert_eq!(
            expand_tilde("~/.puppetlabs/token", Some("/home/u")).unwrap(),
            PathBuf::from("/home/u/.puppetlabs/token")
        );
        assert_eq!(
            expand_tilde("~", Some("/home/u")).unwrap(),
            PathBuf::from("/home/u")
        );
        assert_eq!(
            expand_tilde("/abs/~x", None).unwrap(),
            PathBuf::from("/abs/~x")
        );
        // `~user` is not expanded: PE's tools do not either.
        assert_eq!(
            expand_tilde("~bob/t", None).unwrap(),
            PathBuf::from("~bob/t")
        );
        assert!(expand_tilde("~/t", None).is_err());
    }
}
