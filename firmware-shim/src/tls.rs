//! The locker's side of TLS: TLS 1.3 only, the deployment CA as the only root, and the locker's
//! own certificate, all read with the rustls-pki-types PEM API.

use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// Why the TLS material could not be used.
#[derive(Debug, thiserror::Error)]
#[error("TLS {what} {path}: {reason}")]
pub struct TlsError {
    what: &'static str,
    path: String,
    reason: String,
}

fn error(what: &'static str, path: &Path) -> impl FnOnce(String) -> TlsError {
    let path = path.display().to_string();
    move |reason| TlsError { what, path, reason }
}

/// A client configuration that trusts only the CA in `ca` and presents the certificate chain in
/// `cert` with the key in `key` (all PEM).
pub fn client_config(ca: &Path, cert: &Path, key: &Path) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for der in CertificateDer::pem_file_iter(ca).map_err(|e| error("CA", ca)(e.to_string()))? {
        let der = der.map_err(|e| error("CA", ca)(e.to_string()))?;
        roots.add(der).map_err(|e| error("CA", ca)(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(error("CA", ca)("no certificate".into()));
    }
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| error("certificate", cert)(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error("certificate", cert)(e.to_string()))?;
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|e| error("key", key)(e.to_string()))?;
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| error("protocol versions", cert)(e.to_string()))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key_der)
            .map_err(|e| error("certificate and key", cert)(e.to_string()))?;
    Ok(Arc::new(config))
}
