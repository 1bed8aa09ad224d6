//! The deployment's device PKI: one certificate authority, certificates for lockers, edge nodes
//! and the nodes' device listeners, revocation, and the published revocation list.
//!
//! Everything lives in one directory (by default `<data_dir>/pki/`), reached through a `cap-std`
//! handle: `ca.pem` (the CA certificate), `ca.key.pem` (its key, mode 0600), `index.toml` (every
//! certificate issued, with its serial and whether it is revoked) and `crl.pem`, the revocation
//! list the nodes watch. Identity sits in a URI subject alternative name,
//! `urn:lockergrid:{kind}:{id}`, and the common name repeats the id for people reading it.

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use lockergrid_files::{Mode, write_atomic};
use lockergrid_protocol::{from_hex, to_hex};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevocationReason, RevokedCertParams, SanType, SerialNumber,
};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use time::{Duration, OffsetDateTime};

/// The CA certificate, PEM.
pub const CA_CERT: &str = "ca.pem";
/// The published revocation list, PEM.
pub const CRL: &str = "crl.pem";
const CA_KEY: &str = "ca.key.pem";
const INDEX: &str = "index.toml";
const SERIAL_LEN: usize = 16;
const URI_PREFIX: &str = "urn:lockergrid:";
/// How long the CA is valid.
const CA_VALIDITY: Duration = Duration::days(3650);
/// How far ahead each revocation list announces the next; a list is republished on every change.
const CRL_VALIDITY: Duration = Duration::days(30);

/// What a certificate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A locker controller (client certificate; its id is the locker id).
    Locker,
    /// An edge node connecting up to the gateway (client certificate).
    Edge,
    /// A node's device listener (server certificate, with DNS names and IP addresses).
    Node,
}

impl Kind {
    /// The kind as certificates and the CLI name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Locker => "locker",
            Kind::Edge => "edge",
            Kind::Node => "node",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = PkiError;

    fn from_str(s: &str) -> Result<Self, PkiError> {
        match s {
            "locker" => Ok(Kind::Locker),
            "edge" => Ok(Kind::Edge),
            "node" => Ok(Kind::Node),
            other => Err(PkiError::Invalid(format!(
                "unknown certificate kind {other:?} (locker, edge or node)"
            ))),
        }
    }
}

/// Who a certificate names: a kind and an id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    /// What it is.
    pub kind: Kind,
    /// Its id (a locker id for lockers).
    pub id: String,
}

impl Identity {
    /// An identity, with the id checked: 1–64 characters of `a-z`, `0-9`, `-`, `_`, `.`.
    pub fn new(kind: Kind, id: impl Into<String>) -> Result<Identity, PkiError> {
        let id = id.into();
        let valid = !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
            });
        if !valid {
            return Err(PkiError::Invalid(format!(
                "id {id:?} must be 1-64 characters of a-z, 0-9, '-', '_', '.'"
            )));
        }
        Ok(Identity { kind, id })
    }

    /// The URI this identity has in a certificate.
    pub fn uri(&self) -> String {
        format!("{URI_PREFIX}{}:{}", self.kind, self.id)
    }

    /// The identity a certificate URI names, if it is one of ours.
    pub fn from_uri(uri: &str) -> Option<Identity> {
        let (kind, id) = uri.strip_prefix(URI_PREFIX)?.split_once(':')?;
        Identity::new(kind.parse().ok()?, id).ok()
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.id)
    }
}

/// Why the PKI refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file operation failed.
    #[error("pki directory: {what}: {cause}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        cause: std::io::Error,
    },
    /// `init` on a directory that already has a CA.
    #[error("a CA already exists in {0}; refusing to replace it")]
    Exists(String),
    /// A directory without a CA.
    #[error("no CA in {0}; run `lockergrid pki init` first")]
    Missing(String),
    /// A stored file does not parse.
    #[error("pki directory: {0}")]
    Corrupt(String),
    /// The request itself is wrong (a bad id, an unknown serial, …).
    #[error("{0}")]
    Invalid(String),
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PkiError {
    let what = what.into();
    move |cause| PkiError::Io { what, cause }
}

/// One certificate the CA issued.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issued {
    /// Serial number, lowercase hex.
    pub serial: String,
    /// What it is for.
    pub kind: Kind,
    /// Whom it names.
    pub id: String,
    /// Issued at, Unix seconds.
    pub issued_at: i64,
    /// Valid until, Unix seconds.
    pub not_after: i64,
    /// Revoked at, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct IssuedIndex {
    /// The number the next revocation list carries (RFC 5280 §5.2.3).
    crl_number: u64,
    #[serde(default)]
    issued: Vec<Issued>,
}

/// A certificate issued over a key the device holds.
#[derive(Clone, Debug)]
pub struct IssuedCert {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its SHA-256 (DER), lowercase hex.
    pub fingerprint: String,
    /// What the index recorded.
    pub issued: Issued,
}

/// The SHA-256 of a certificate's DER encoding, lowercase hex: how the registry names it.
pub fn fingerprint(der: &[u8]) -> String {
    use sha2::Digest;
    to_hex(&sha2::Sha256::digest(der))
}

/// A certificate with its key, as handed to a device.
pub struct Bundle {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PKCS#8 PEM.
    pub key_pem: String,
    /// What the index recorded.
    pub issued: Issued,
}

impl Bundle {
    /// Writes `{name}.pem`, `{name}.key.pem` (0600) and the CA's `ca.pem` into `dir`, creating it.
    pub fn write_to(&self, dir: &Path, name: &str, ca_pem: &str) -> Result<(), PkiError> {
        write_credentials(dir, name, &self.cert_pem, &self.key_pem, ca_pem)
    }
}

/// A key a device generated for itself: the private half stays with it, the public half goes to
/// the CA in a provisioning request.
pub struct DeviceKey {
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
    /// The public key, PEM `PUBLIC KEY`.
    pub public_key_pem: String,
}

impl DeviceKey {
    /// A fresh P-256 key.
    pub fn generate() -> Result<DeviceKey, PkiError> {
        let key = KeyPair::generate()?;
        Ok(DeviceKey {
            key_pem: key.serialize_pem(),
            public_key_pem: key.public_key_pem(),
        })
    }
}

/// Writes a device's `{name}.pem`, `{name}.key.pem` (0600) and the CA's `ca.pem` into `dir`,
/// creating it (0700).
pub fn write_credentials(
    dir: &Path,
    name: &str,
    cert_pem: &str,
    key_pem: &str,
    ca_pem: &str,
) -> Result<(), PkiError> {
    let out = open_dir(dir, true)?;
    let write = |file: &str, bytes: &str, mode| {
        write_atomic(&out, file, bytes.as_bytes(), mode)
            .map_err(io(format!("write {}", dir.join(file).display())))
    };
    write(&format!("{name}.pem"), cert_pem, Mode::Public)?;
    write(&format!("{name}.key.pem"), key_pem, Mode::Private)?;
    write(CA_CERT, ca_pem, Mode::Public)
}

fn open_dir(path: &Path, create: bool) -> Result<Dir, PkiError> {
    if create {
        lockergrid_files::private_dir(path).map_err(io(format!("create {}", path.display())))?;
    }
    Dir::open_ambient_dir(path, ambient_authority()).map_err(io(format!("open {}", path.display())))
}

/// The deployment's certificate authority, opened on its directory.
pub struct CertificateAuthority {
    dir: Dir,
    path: String,
    ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
    index: IssuedIndex,
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("path", &self.path)
            .field("issued", &self.index.issued.len())
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Creates a CA named `name` in `path` and publishes an empty revocation list. Refuses a
    /// directory that already holds a CA.
    pub fn create(path: &Path, name: &str) -> Result<CertificateAuthority, PkiError> {
        let dir = open_dir(path, true)?;
        if dir.exists(CA_KEY) || dir.exists(CA_CERT) {
            return Err(PkiError::Exists(path.display().to_string()));
        }
        let key = KeyPair::generate()?;
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Lockergrid");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = now - Duration::minutes(5);
        params.not_after = now + CA_VALIDITY;
        params.serial_number = Some(random_serial());
        params.key_identifier_method = KeyIdMethod::Sha256;
        let cert = params.self_signed(&key)?;
        let ca_pem = cert.pem();
        write_atomic(&dir, CA_KEY, key.serialize_pem().as_bytes(), Mode::Private)
            .map_err(io("write the CA key"))?;
        write_atomic(&dir, CA_CERT, ca_pem.as_bytes(), Mode::Public)
            .map_err(io("write the CA certificate"))?;
        let mut authority = CertificateAuthority {
            dir,
            path: path.display().to_string(),
            ca_pem,
            issuer: Issuer::new(params, key),
            index: IssuedIndex::default(),
        };
        authority.publish_crl()?;
        Ok(authority)
    }

    /// Opens the CA in `path`.
    pub fn open(path: &Path) -> Result<CertificateAuthority, PkiError> {
        if !path.is_dir() {
            return Err(PkiError::Missing(path.display().to_string()));
        }
        let dir = open_dir(path, false)?;
        if !dir.exists(CA_KEY) {
            return Err(PkiError::Missing(path.display().to_string()));
        }
        let read = |name: &str| {
            dir.read_to_string(name)
                .map_err(io(format!("read {}", path.join(name).display())))
        };
        let ca_pem = read(CA_CERT)?;
        let key = KeyPair::from_pem(&read(CA_KEY)?)
            .map_err(|e| PkiError::Corrupt(format!("{CA_KEY}: {e}")))?;
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, key)
            .map_err(|e| PkiError::Corrupt(format!("{CA_CERT}: {e}")))?;
        let index = if dir.exists(INDEX) {
            toml::from_str(&read(INDEX)?).map_err(|e| PkiError::Corrupt(format!("{INDEX}: {e}")))?
        } else {
            IssuedIndex::default()
        };
        Ok(CertificateAuthority {
            dir,
            path: path.display().to_string(),
            ca_pem,
            issuer,
            index,
        })
    }

    /// Opens the CA in `path`, creating it (named `name`) if there is none. The flag says
    /// whether it was created.
    pub fn open_or_create(
        path: &Path,
        name: &str,
    ) -> Result<(CertificateAuthority, bool), PkiError> {
        if path.join(CA_KEY).exists() {
            Ok((CertificateAuthority::open(path)?, false))
        } else {
            Ok((CertificateAuthority::create(path, name)?, true))
        }
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Every certificate issued, oldest first.
    pub fn issued(&self) -> &[Issued] {
        &self.index.issued
    }

    /// Issues a certificate with a fresh P-256 key for `identity`, valid for `days`. A node
    /// certificate names `hosts` (DNS names or IP addresses) for its TLS listener; client
    /// certificates name only their identity.
    pub fn issue(
        &mut self,
        identity: &Identity,
        hosts: &[String],
        days: u32,
    ) -> Result<Bundle, PkiError> {
        let key = KeyPair::generate()?;
        let cert = self.sign(identity, hosts, days, &key)?;
        Ok(Bundle {
            cert_pem: cert.cert_pem,
            key_pem: key.serialize_pem(),
            issued: cert.issued,
        })
    }

    /// Issues a client certificate for `identity` over a public key the device generated and
    /// keeps (`public_key_pem`, a PEM `PUBLIC KEY`): its private key never leaves it.
    pub fn issue_for_key(
        &mut self,
        identity: &Identity,
        public_key_pem: &str,
        days: u32,
    ) -> Result<IssuedCert, PkiError> {
        if identity.kind == Kind::Node {
            return Err(PkiError::Invalid(
                "a node certificate is issued with `lockergrid pki issue`".into(),
            ));
        }
        let key = rcgen::SubjectPublicKeyInfo::from_pem(public_key_pem)
            .map_err(|e| PkiError::Invalid(format!("public key: {e}")))?;
        self.sign(identity, &[], days, &key)
    }

    fn sign(
        &mut self,
        identity: &Identity,
        hosts: &[String],
        days: u32,
        key: &impl rcgen::PublicKeyData,
    ) -> Result<IssuedCert, PkiError> {
        if days == 0 || days > 3650 {
            return Err(PkiError::Invalid(format!(
                "validity of {days} days (1 to 3650)"
            )));
        }
        let now = OffsetDateTime::now_utc();
        let serial = random_serial();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, identity.id.as_str());
        params
            .distinguished_name
            .push(DnType::OrganizationalUnitName, identity.kind.as_str());
        params.not_before = now - Duration::minutes(5);
        params.not_after = now + Duration::days(i64::from(days));
        params.serial_number = Some(serial.clone());
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.subject_alt_names =
            vec![SanType::URI(identity.uri().try_into().map_err(|e| {
                PkiError::Invalid(format!("{identity}: {e}"))
            })?)];
        match identity.kind {
            Kind::Locker | Kind::Edge => {
                if !hosts.is_empty() {
                    return Err(PkiError::Invalid(format!(
                        "a {} certificate names no hosts",
                        identity.kind
                    )));
                }
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            }
            Kind::Node => {
                if hosts.is_empty() {
                    return Err(PkiError::Invalid(
                        "a node certificate needs at least one host name or address".into(),
                    ));
                }
                for host in hosts {
                    params.subject_alt_names.push(match host.parse() {
                        Ok(ip) => SanType::IpAddress(ip),
                        Err(_) => SanType::DnsName(
                            host.as_str()
                                .try_into()
                                .map_err(|e| PkiError::Invalid(format!("host {host:?}: {e}")))?,
                        ),
                    });
                }
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            }
        }
        let cert = params.signed_by(key, &self.issuer)?;
        let issued = Issued {
            serial: to_hex(serial.as_ref()),
            kind: identity.kind,
            id: identity.id.clone(),
            issued_at: now.unix_timestamp(),
            not_after: params.not_after.unix_timestamp(),
            revoked_at: None,
        };
        self.index.issued.push(issued.clone());
        self.write_index()?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            fingerprint: fingerprint(cert.der()),
            issued,
        })
    }

    /// Revokes every live certificate of `identity` and republishes the revocation list.
    /// Returns what was revoked; revoking an identity with no live certificate is an error.
    pub fn revoke(&mut self, identity: &Identity) -> Result<Vec<Issued>, PkiError> {
        self.revoke_where(|i| i.kind == identity.kind && i.id == identity.id)
            .and_then(|revoked| {
                if revoked.is_empty() {
                    Err(PkiError::Invalid(format!(
                        "{identity} has no live certificate"
                    )))
                } else {
                    Ok(revoked)
                }
            })
    }

    /// Revokes the certificate with `serial` (hex) and republishes the revocation list.
    pub fn revoke_serial(&mut self, serial: &str) -> Result<Issued, PkiError> {
        let serial = serial.to_ascii_lowercase();
        let revoked = self.revoke_where(|i| i.serial == serial)?;
        revoked
            .into_iter()
            .next()
            .ok_or_else(|| PkiError::Invalid(format!("no live certificate with serial {serial}")))
    }

    fn revoke_where(&mut self, matches: impl Fn(&Issued) -> bool) -> Result<Vec<Issued>, PkiError> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let mut revoked = Vec::new();
        for issued in &mut self.index.issued {
            if issued.revoked_at.is_none() && matches(issued) {
                issued.revoked_at = Some(now);
                revoked.push(issued.clone());
            }
        }
        if !revoked.is_empty() {
            self.publish_crl()?;
        }
        Ok(revoked)
    }

    /// Signs and writes a fresh revocation list (`crl.pem`) naming every revoked certificate.
    pub fn publish_crl(&mut self) -> Result<(), PkiError> {
        let now = OffsetDateTime::now_utc();
        let mut revoked_certs = Vec::new();
        for issued in &self.index.issued {
            if let Some(at) = issued.revoked_at {
                revoked_certs.push(RevokedCertParams {
                    serial_number: SerialNumber::from_slice(
                        &from_hex::<SERIAL_LEN>(&issued.serial).ok_or_else(|| {
                            PkiError::Corrupt(format!("{INDEX}: serial {:?}", issued.serial))
                        })?,
                    ),
                    revocation_time: OffsetDateTime::from_unix_timestamp(at)
                        .map_err(|e| PkiError::Corrupt(format!("{INDEX}: {e}")))?,
                    reason_code: Some(RevocationReason::Unspecified),
                    invalidity_date: None,
                });
            }
        }
        self.index.crl_number += 1;
        let params = CertificateRevocationListParams {
            this_update: now - Duration::minutes(5),
            next_update: now + CRL_VALIDITY,
            crl_number: SerialNumber::from(self.index.crl_number),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.issuer)?;
        self.write_index()?;
        write_atomic(&self.dir, CRL, crl.pem()?.as_bytes(), Mode::Public)
            .map_err(io("write the revocation list"))
    }

    fn write_index(&self) -> Result<(), PkiError> {
        let text = format!(
            "# Certificates issued by this CA. Written by `lockergrid pki`; do not edit.\n{}",
            toml::to_string(&self.index).map_err(|e| PkiError::Corrupt(e.to_string()))?
        );
        write_atomic(&self.dir, INDEX, text.as_bytes(), Mode::Public).map_err(io("write the index"))
    }
}

/// A random positive serial of `SERIAL_LEN` bytes (RFC 5280 allows up to 20 octets).
fn random_serial() -> SerialNumber {
    let mut bytes: [u8; SERIAL_LEN] = rand::random();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}
