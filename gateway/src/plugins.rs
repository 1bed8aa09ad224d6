//! The gateway's plugin directory, `<data_dir>/plugins/`: the components and `policy.toml`, the
//! policy in force, whose bindings carry their signatures. All access goes through a `cap-std` directory handle, so
//! no name that arrives over the API can reach outside it.
//!
//! On first start the directory is filled from the deployment's policy template and the default
//! plugins bundled in this binary, each binding signed with the deployment's own key. A push
//! replaces one binding: the host verifies and swaps it in, its component is written under a name
//! of its own, and only then does `policy.toml` change, by an atomic rename.

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use lockergrid_files::{Mode, write_atomic};
use lockergrid_model::sha256_hex;
use lockergrid_model::{Binding, PluginSigner, PolicyError, PolicyFile, Signature, TrustedKey};
use lockergrid_plugin_host::{PluginError, PluginHost, PluginInfo};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The policy in force, inside the plugin directory.
pub const POLICY_FILE: &str = "policy.toml";
/// The name the deployment's own key has in the trusted keys.
pub const DEPLOYMENT_KEY: &str = "deployment";

/// Why the plugin directory could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PluginStoreError {
    /// A file operation failed.
    #[error("plugin directory: {what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The policy template or the policy in force is not valid.
    #[error("plugin policy {file:?}: {source}")]
    Policy {
        /// The file.
        file: String,
        /// Why.
        source: PolicyError,
    },
    /// The template asks for a plugin this build does not bundle.
    #[error("the policy template asks for {name} {version}, which this build does not bundle")]
    NotBundled {
        /// The plugin.
        name: String,
        /// The version asked for.
        version: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PluginStoreError {
    let what = what.into();
    move |source| PluginStoreError::Io { what, source }
}

/// The plugin directory of one gateway. The policy changes only through this handle, so
/// readers that follow it (the edge nodes' sync) ask [`PluginStore::generation`] instead of
/// reading the file again.
pub struct PluginStore {
    dir: Dir,
    generation: AtomicU64,
}

impl PluginStore {
    /// Opens `<data_dir>/plugins`, creating it if needed.
    pub fn open(data_dir: &Path) -> Result<PluginStore, PluginStoreError> {
        let path = data_dir.join("plugins");
        lockergrid_files::private_dir(&path).map_err(io(format!("create {path:?}")))?;
        let dir = Dir::open_ambient_dir(&path, ambient_authority())
            .map_err(io(format!("open {path:?}")))?;
        Ok(PluginStore {
            dir,
            generation: AtomicU64::new(0),
        })
    }

    /// How many times this handle has written the policy: a reader that saw the same number
    /// has read the policy in force.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The policy in force, if plugins were installed.
    pub fn policy(&self) -> Result<Option<PolicyFile>, PluginStoreError> {
        match self.dir.read_to_string(POLICY_FILE) {
            Ok(text) => {
                PolicyFile::parse(&text)
                    .map(Some)
                    .map_err(|source| PluginStoreError::Policy {
                        file: POLICY_FILE.into(),
                        source,
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(format!("read {POLICY_FILE}"))(e)),
        }
    }

    /// Installs the bundled default plugins the template names, signed with `signer`, and
    /// writes the resulting policy in force.
    pub fn install_defaults(
        &self,
        template_path: &Path,
        signer: &PluginSigner,
    ) -> Result<PolicyFile, PluginStoreError> {
        let policy_error = |source| PluginStoreError::Policy {
            file: template_path.display().to_string(),
            source,
        };
        let text = std::fs::read_to_string(template_path)
            .map_err(io(format!("read {template_path:?}")))?;
        let mut policy = PolicyFile::parse(&text).map_err(policy_error)?;
        for binding in &mut policy.plugins {
            let bundled = lockergrid_bundled_plugins::DEFAULTS
                .iter()
                .find(|b| {
                    b.name == binding.name
                        && b.version == binding.version
                        && b.world == binding.world.as_str()
                })
                .ok_or_else(|| PluginStoreError::NotBundled {
                    name: binding.name.clone(),
                    version: binding.version.clone(),
                })?;
            let file = self.write_component(&binding.name, &binding.version, bundled.bytes)?;
            binding.file = Some(file);
            binding.sha256 = Some(sha256_hex(bundled.bytes));
            binding.signature = Some(signer.sign(binding).to_string());
        }
        policy.trusted_keys.retain(|k| k.name != DEPLOYMENT_KEY);
        policy.trusted_keys.push(TrustedKey {
            name: DEPLOYMENT_KEY.into(),
            public_key: signer.public_hex(),
        });
        self.write_policy(&policy)?;
        Ok(policy)
    }

    /// Signs again, with `signer`, every binding of the policy in force that carries no signature
    /// but whose component has a `.sig` file beside it with `signer`'s signature over its bytes
    /// alone: the deployment's own plugins installed before signatures covered the binding.
    /// Others stay unsigned and are refused at load. Answers how many were signed.
    pub fn sign_legacy(&self, signer: &PluginSigner) -> Result<usize, PluginStoreError> {
        let Some(mut policy) = self.policy()? else {
            return Ok(0);
        };
        let mut signed = 0;
        for binding in policy.plugins.iter_mut().filter(|b| b.signature.is_none()) {
            let Some(file) = binding.file.clone() else {
                continue;
            };
            let legacy = format!("{file}.sig");
            let Ok(text) = self.dir.read_to_string(&legacy) else {
                continue;
            };
            let bytes = self.read_component(binding)?;
            if Signature::parse(&text).is_ok_and(|s| s.is_legacy_by(signer, &bytes)) {
                binding.signature = Some(signer.sign(binding).to_string());
                signed += 1;
            }
        }
        if signed > 0 {
            self.write_policy(&policy)?;
        }
        Ok(signed)
    }

    /// Writes a component under a name made from the plugin, its version and its digest;
    /// answers the file name.
    pub fn write_component(
        &self,
        name: &str,
        version: &str,
        bytes: &[u8],
    ) -> Result<String, PluginStoreError> {
        let digest = sha256_hex(bytes);
        let file = format!("{name}-{version}-{}.wasm", &digest[..16]);
        self.write_atomic(&file, bytes)?;
        Ok(file)
    }

    /// A binding's component, as stored.
    pub fn read_component(&self, binding: &Binding) -> Result<Vec<u8>, PluginStoreError> {
        let file = binding
            .file
            .as_deref()
            .ok_or_else(|| PluginStoreError::Policy {
                file: POLICY_FILE.into(),
                source: PolicyError::Invalid(format!(
                    "{} at {} names no file",
                    binding.world, binding.scope
                )),
            })?;
        self.dir.read(file).map_err(io(format!("read {file}")))
    }

    /// Replaces the binding for the same world and scope in the policy in force (or adds it).
    pub fn bind(&self, binding: Binding) -> Result<(), PluginStoreError> {
        let mut policy = self.policy()?.unwrap_or(PolicyFile {
            version: 1,
            ..PolicyFile::default()
        });
        policy
            .plugins
            .retain(|b| !(b.world == binding.world && b.scope == binding.scope));
        policy.plugins.push(binding);
        self.write_policy(&policy)
    }

    /// Adds `key` to the trusted keys of the policy in force, replacing a key of the same name;
    /// answers the policy as written.
    pub fn trust_key(&self, key: TrustedKey) -> Result<PolicyFile, PluginStoreError> {
        let mut policy = self.policy()?.unwrap_or(PolicyFile {
            version: 1,
            ..PolicyFile::default()
        });
        policy.trusted_keys.retain(|k| k.name != key.name);
        policy.trusted_keys.push(key);
        self.write_policy(&policy)?;
        Ok(policy)
    }

    fn write_policy(&self, policy: &PolicyFile) -> Result<(), PluginStoreError> {
        let text = format!(
            "# The plugin policy in force, written by the gateway. Change it with\n\
             # `lockergrid plugin push`; the gateway rewrites this file on every push.\n{}",
            policy.to_toml()
        );
        self.write_atomic(POLICY_FILE, text.as_bytes())?;
        self.generation.fetch_add(1, Ordering::Release);
        Ok(())
    }

    fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<(), PluginStoreError> {
        write_atomic(&self.dir, name, bytes, Mode::Public).map_err(io(format!("write {name}")))
    }
}

/// Loads every binding of `policy` into `host`; a binding that fails is logged as an alert and
/// leaves its slot to the built-in behaviour, so one bad file does not stop the gateway.
pub async fn load_all(
    store: &PluginStore,
    host: &Arc<PluginHost>,
    policy: &PolicyFile,
) -> Vec<(Binding, Result<Arc<PluginInfo>, String>)> {
    let mut loaded = Vec::with_capacity(policy.plugins.len());
    for binding in &policy.plugins {
        let result = match store.read_component(binding) {
            Ok(bytes) => host
                .install(binding.clone(), bytes.into())
                .await
                .map_err(|e: PluginError| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = &result {
            tracing::error!(world = %binding.world, scope = %binding.scope, plugin = %binding.name, error = %e, "alert: plugin not loaded; the built-in behaviour serves");
        }
        loaded.push((binding.clone(), result));
    }
    loaded
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::Signer;
    use lockergrid_model::{BindingLimits, Scope, World};
    use lockergrid_protocol::to_hex;

    /// A policy in force from before signatures covered the binding: the component with a
    /// `.sig` over its bytes alone, the binding unsigned.
    fn legacy(store: &PluginStore, secret: [u8; 32], name: &str, bytes: &[u8]) -> Binding {
        let file = store
            .write_component(name, "1.0.0", bytes)
            .expect("written");
        let key = ed25519_dalek::SigningKey::from_bytes(&secret);
        let sig = format!(
            "ed25519 {} {}",
            to_hex(key.verifying_key().as_bytes()),
            to_hex(&key.sign(bytes).to_bytes())
        );
        store
            .write_atomic(&format!("{file}.sig"), sig.as_bytes())
            .expect("written");
        Binding {
            world: World::SiteRules,
            scope: Scope::Default,
            name: name.into(),
            version: "1.0.0".into(),
            file: Some(file),
            sha256: Some(sha256_hex(bytes)),
            settings: Default::default(),
            limits: BindingLimits::default(),
            signature: None,
        }
    }

    #[test]
    fn the_generation_counts_policy_writes_and_not_reads() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = PluginStore::open(dir.path()).expect("opened");
        assert_eq!(store.generation(), 0);
        assert!(store.policy().expect("read").is_none());
        let key = TrustedKey {
            name: "acme".into(),
            public_key: PluginSigner::from_secret([7; 32]).public_hex(),
        };
        store.trust_key(key.clone()).expect("trusted");
        assert_eq!(store.generation(), 1);
        store.policy().expect("read").expect("a policy");
        assert_eq!(store.generation(), 1, "a read is no change");
        store.trust_key(key).expect("trusted again");
        assert_eq!(store.generation(), 2);
    }

    #[test]
    fn the_deployments_own_legacy_signatures_are_renewed_over_the_binding_and_no_others() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = PluginStore::open(dir.path()).expect("opened");
        let own = PluginSigner::from_secret([5; 32]);
        let ours = legacy(&store, [5; 32], "ours", b"component one");
        let mut theirs = legacy(&store, [6; 32], "theirs", b"component two");
        theirs.scope = Scope::Region("r".into());
        let policy = PolicyFile {
            version: 1,
            trusted_keys: vec![TrustedKey {
                name: DEPLOYMENT_KEY.into(),
                public_key: own.public_hex(),
            }],
            plugins: vec![ours, theirs],
            ..PolicyFile::default()
        };
        store.write_policy(&policy).expect("written");
        assert_eq!(store.sign_legacy(&own).expect("signed"), 1);
        let renewed = store.policy().expect("read").expect("a policy");
        let trust = renewed.trust().expect("trust");
        let ours = &renewed.plugins[0];
        assert_eq!(
            trust.verify(b"component one", ours).expect("verifies"),
            DEPLOYMENT_KEY
        );
        assert_eq!(
            renewed.plugins[1].signature, None,
            "another key's stays unsigned"
        );
        assert_eq!(store.sign_legacy(&own).expect("nothing left"), 0);
    }
}
