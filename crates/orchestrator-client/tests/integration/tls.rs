//! A real HTTPS server with a certificate from a throw-away CA: the pinned
//! CA is accepted, another CA is rejected, `--insecure` works with a warning.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::routing::get;
use axum_server::tls_rustls::RustlsConfig;
use orchestrator_client::{Client, Error};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::support::settings;

struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn new_ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, format!("Puppet CA: {name}"));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// Starts an HTTPS orchestrator root on 127.0.0.1 with a certificate for
/// `localhost` signed by `ca`; returns its service URL.
async fn https_server(ca: &Ca) -> String {
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    let config = RustlsConfig::from_pem(cert.pem().into_bytes(), key.serialize_pem().into_bytes())
        .await
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new().route(
        "/orchestrator/v1",
        get(|| async { axum::Json(serde_json::json!({"info": {"title": "Orchestrator API"}})) }),
    );
    let server = axum_server::from_tcp_rustls(listener, config).unwrap();
    tokio::spawn(async move { server.serve(app.into_make_service()).await });
    format!("https://localhost:{port}")
}

fn write_pem(dir: &Path, name: &str, pem: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, pem).unwrap();
    p
}

#[tokio::test]
async fn pinned_ca_is_accepted() {
    let ca = new_ca("right");
    let url = https_server(&ca).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&url);
    s.cacert = Some(write_pem(dir.path(), "ca.pem", &ca.pem));
    let (client, warnings) = Client::new(&s).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let root = client.root().await.unwrap();
    assert_eq!(root["info"]["title"], "Orchestrator API");
}

#[tokio::test]
async fn other_ca_is_rejected_clearly_and_not_retried_as_flaky() {
    let ca = new_ca("right");
    let wrong = new_ca("wrong");
    let url = https_server(&ca).await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(&url);
    s.cacert = Some(write_pem(dir.path(), "ca.pem", &wrong.pem));
    let (client, _) = Client::new(&s).unwrap();
    let started = std::time::Instant::now();
    let err = client.root().await.unwrap_err();
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("certificate"), "{msg}");
    assert!(msg.contains("--cacert"), "{msg}");
    // A verification failure is permanent: no backoff rounds.
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

#[tokio::test]
async fn insecure_skips_verification_with_a_warning() {
    let ca = new_ca("right");
    let url = https_server(&ca).await;
    let mut s = settings(&url);
    s.insecure = true;
    let (client, warnings) = Client::new(&s).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].0.contains("--insecure"), "{warnings:?}");
    client.root().await.unwrap();
}

#[tokio::test]
async fn ca_file_problems_are_reported_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings("https://localhost:1");
    s.cacert = Some(dir.path().join("missing.pem"));
    let err = Client::new(&s).unwrap_err();
    assert!(matches!(err, Error::CaFile { .. }), "{err:?}");
    assert!(err.to_string().contains("missing.pem"), "{err}");

    s.cacert = Some(write_pem(dir.path(), "junk.pem", "not a certificate\n"));
    let err = Client::new(&s).unwrap_err();
    assert!(matches!(err, Error::CaFile { .. }), "{err:?}");
    assert!(err.to_string().contains("--cacert"), "{err}");
}

#[tokio::test]
async fn http_to_a_tls_port_says_use_https() {
    let ca = new_ca("plain");
    let url = https_server(&ca).await.replace("https://", "http://");
    let (client, _) = Client::new(&settings(&url)).unwrap();
    let err = client.root().await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("use https://"), "{msg}");
    assert!(!err.is_transient(), "{err:?}");
}
