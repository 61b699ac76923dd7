//! Certificates: a self-signed CA plus a server certificate for loopback
//! names, generated at start so a client can pin the CA as `cacert`.

use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

use crate::error::Error;

/// PEM certificate chain and key of the server.
#[derive(Debug)]
pub struct Generated {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Generates a CA and a server certificate for `names` (plus localhost and
/// the loopback addresses) and writes the CA to `write_ca_to`.
pub fn self_signed(names: &[String], write_ca_to: &Path) -> Result<Generated, Error> {
    let tls = |e: rcgen::Error| Error::Tls(e.to_string());
    let ca_key = KeyPair::generate().map_err(tls)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Kick Kick orchestrator CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(tls)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);

    let mut sans: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    for n in names {
        if !sans.contains(n) {
            sans.push(n.clone());
        }
    }
    let key = KeyPair::generate().map_err(tls)?;
    let mut params = CertificateParams::new(sans).map_err(tls)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "kick-orchestrator");
    let cert = params.signed_by(&key, &issuer).map_err(tls)?;
    let ca_pem = ca_cert.pem();
    if let Some(dir) = write_ca_to.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::State {
            path: dir.to_owned(),
            msg: e.to_string(),
        })?;
    }
    std::fs::write(write_ca_to, &ca_pem).map_err(|e| Error::State {
        path: write_ca_to.to_owned(),
        msg: e.to_string(),
    })?;
    Ok(Generated {
        cert_pem: format!("{}{}", cert.pem(), ca_pem),
        key_pem: key.serialize_pem(),
    })
}
