//! The HTTP client: rustls, with the Puppet CA pinned as the only trust root.

use std::path::Path;
use std::time::Duration;

use reqwest::{Certificate, Url};

use crate::config::{Settings, Warning};
use crate::error::Error;

/// Connecting gets its own, shorter limit so an unreachable host fails fast
/// even when the request timeout is generous.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds the reqwest client for `settings` and the `base` URL.
pub(crate) fn http_client(
    settings: &Settings,
    base: &Url,
    warnings: &mut Vec<Warning>,
) -> Result<reqwest::Client, Error> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("kick/", env!("CARGO_PKG_VERSION")))
        // A redirect would carry the token to wherever it points; the API
        // never redirects, so none are followed.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(settings.request_timeout.min(MAX_CONNECT_TIMEOUT))
        .timeout(settings.request_timeout)
        // Proxies from the environment would see the token in plain text
        // for http:// URLs and are not something PE's tools use either.
        .no_proxy();

    if base.scheme() == "https" {
        if settings.insecure {
            warnings.push(Warning(
                "--insecure: the orchestrator's TLS certificate is not verified, so the token can be captured by anyone in between; use --cacert instead".to_owned(),
            ));
            builder = builder.danger_accept_invalid_certs(true);
        } else if let Some(path) = &settings.cacert {
            builder = builder.tls_certs_only(read_ca(path)?);
        }
    } else {
        // Plain http uses no TLS (and no redirect leads to https): the system's roots
        // are not even loaded, which saves milliseconds at every start.
        builder = builder.tls_certs_only(Vec::new());
        if !is_loopback(base) {
            warnings.push(Warning(format!(
                "the service URL {base} is plain http: the token travels unencrypted; use https://<primary>:8143"
            )));
        }
    }
    builder.build().map_err(|e| Error::Config {
        message: format!("cannot set up the HTTP client: {}", crate::error::chain(&e)),
    })
}

pub(crate) fn read_ca(path: &Path) -> Result<Vec<Certificate>, Error> {
    let bad = |problem: String| Error::CaFile {
        path: path.to_owned(),
        problem,
    };
    let pem = std::fs::read(path).map_err(|e| {
        bad(if e.kind() == std::io::ErrorKind::NotFound {
            "there is no such file".to_owned()
        } else {
            e.to_string()
        })
    })?;
    let certs = Certificate::from_pem_bundle(&pem).map_err(|e| {
        bad(format!(
            "not a PEM certificate bundle ({})",
            crate::error::chain(&e)
        ))
    })?;
    if certs.is_empty() {
        return Err(bad("it holds no PEM certificate".to_owned()));
    }
    Ok(certs)
}

pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(h) => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}
