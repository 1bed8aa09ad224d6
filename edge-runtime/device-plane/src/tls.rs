//! TLS material of the device front: the CA, the revocation list and the node's own certificate,
//! read with the rustls-pki-types PEM API, and the server configuration built from them.

use super::{DeviceError, DeviceOptions};
use crate::Identity;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

fn tls(what: &str, path: &Path, e: impl std::fmt::Display) -> DeviceError {
    DeviceError::Tls(format!("{what} {}: {e}", path.display()))
}

/// What the front trusts and presents.
pub(super) struct ChainTrust {
    roots: Arc<rustls::RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    provider: Arc<CryptoProvider>,
}

/// A revocation list as the front uses it: for the verifier, and the revoked serials for cutting
/// live sessions.
pub(super) struct Revocations {
    pub(super) crls: Vec<CertificateRevocationListDer<'static>>,
    pub(super) serials: HashSet<Vec<u8>>,
}

impl ChainTrust {
    pub(super) fn load(options: &DeviceOptions) -> Result<ChainTrust, DeviceError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&options.ca)
            .map_err(|e| tls("read the CA", &options.ca, e))?
        {
            roots
                .add(cert.map_err(|e| tls("parse the CA", &options.ca, e))?)
                .map_err(|e| tls("use the CA", &options.ca, e))?;
        }
        if roots.is_empty() {
            return Err(tls("read the CA", &options.ca, "no certificate"));
        }
        let chain = CertificateDer::pem_file_iter(&options.cert)
            .map_err(|e| tls("read the node certificate", &options.cert, e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| tls("parse the node certificate", &options.cert, e))?;
        let key = PrivateKeyDer::from_pem_file(&options.key)
            .map_err(|e| tls("read the node key", &options.key, e))?;
        Ok(ChainTrust {
            roots: Arc::new(roots),
            chain,
            key,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        })
    }

    /// A TLS 1.3-only server configuration that requires a client certificate chaining to the CA
    /// and not on `revocations`.
    pub(super) fn server_config(
        &self,
        revocations: &Revocations,
    ) -> Result<Arc<ServerConfig>, DeviceError> {
        let verifier =
            WebPkiClientVerifier::builder_with_provider(self.roots.clone(), self.provider.clone())
                .with_crls(revocations.crls.iter().cloned())
                .build()
                .map_err(|e| DeviceError::Tls(format!("client verifier: {e}")))?;
        let config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| DeviceError::Tls(format!("TLS 1.3: {e}")))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| DeviceError::Tls(format!("node certificate: {e}")))?;
        Ok(Arc::new(config))
    }
}

impl Revocations {
    /// Reads and parses the revocation list at `path`.
    pub(super) fn load(path: &Path) -> Result<Revocations, DeviceError> {
        let crls = CertificateRevocationListDer::pem_file_iter(path)
            .map_err(|e| tls("read the revocation list", path, e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| tls("parse the revocation list", path, e))?;
        let mut serials = HashSet::new();
        for der in &crls {
            let (_, crl) = x509_parser::parse_x509_crl(der)
                .map_err(|e| tls("parse the revocation list", path, e))?;
            serials.extend(
                crl.iter_revoked_certificates()
                    .map(|revoked| revoked.raw_serial().to_vec()),
            );
        }
        Ok(Revocations { crls, serials })
    }
}

/// The identity and serial of a verified peer certificate: the `urn:lockergrid:` URI among its
/// subject alternative names.
pub(super) fn peer_identity(cert: &CertificateDer<'_>) -> Result<(Identity, Vec<u8>), String> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(cert).map_err(|e| format!("certificate: {e}"))?;
    let serial = cert.raw_serial().to_vec();
    let names = cert
        .subject_alternative_name()
        .map_err(|e| format!("subject alternative names: {e}"))?
        .ok_or("the certificate names no identity")?;
    names
        .value
        .general_names
        .iter()
        .find_map(|name| match name {
            x509_parser::extensions::GeneralName::URI(uri) => Identity::from_uri(uri),
            _ => None,
        })
        .map(|identity| (identity, serial))
        .ok_or_else(|| "the certificate names no lockergrid identity".into())
}
