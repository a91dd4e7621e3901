//! The keyring: a JSON file outside the archive, readable by its owner only
//! (mode 0600), holding the key strata signs with and each tenant's master
//! keys, which wrap the data keys of encrypted files ([`envelope`]).
//!
//! Keys are versioned: a new version is appended and becomes the one used for
//! new signatures, older ones stay so that what they signed can still be
//! checked. The file is replaced atomically (write a temporary file, then
//! rename), so a crash never leaves a half-written keyring. Every change
//! holds an exclusive lock on `<keyring>.lock`, re-reads the file under it
//! and writes it back before letting go, so two processes changing one
//! keyring at once (a rotation and a retention run) never lose a key.

#![warn(missing_docs)]

pub mod envelope;

use std::io::Write;
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use strata_integrity::{NoteError, SigningKey};

const FORMAT: u32 = 1;

/// Errors reading or writing the keyring.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// The file could not be read or written.
    #[error("keyring {path}: {source}")]
    Io {
        /// The keyring file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a keyring this version understands.
    #[error("keyring {path} is corrupt: {reason}")]
    Corrupt {
        /// The keyring file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Other users can read the file, so its keys cannot be trusted to be secret.
    #[error("keyring {path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`")]
    TooOpen {
        /// The keyring file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// No key of the kind asked for.
    #[error(
        "keyring {path} has no signing key yet (one is made by the first command that writes to an archive)"
    )]
    NoSigningKey {
        /// The keyring file.
        path: PathBuf,
    },
    /// A key could not be made or parsed.
    #[error("keyring {path}: {source}")]
    Key {
        /// The keyring file.
        path: PathBuf,
        /// The cause.
        source: NoteError,
    },
}

/// One version of a key.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyVersion {
    /// The key as text (see [`SigningKey::to_private_text`]).
    key: String,
    /// When it was made (RFC 3339).
    created_at: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct KeyringFile {
    format: u32,
    /// Archive signing keys, oldest first; the last one signs.
    #[serde(default)]
    signing: Vec<KeyVersion>,
    /// Tenant master keys, oldest first; the last live one encrypts.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    tenants: BTreeMap<String, Vec<MasterKey>>,
    /// Base64 of the 32 random bytes that key analysts' pseudonyms; never
    /// rotated, so that a pseudonym means the same person for years.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pseudonym_secret: Option<String>,
}

/// One version of a tenant's master key.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct MasterKey {
    version: u32,
    /// Base64 of 32 random bytes; empty once destroyed.
    key: String,
    created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    destroyed_at: Option<String>,
}

/// The keyring file and its content.
#[derive(Debug)]
pub struct Keyring {
    path: PathBuf,
    file: KeyringFile,
}

/// Where the keyring lives unless told otherwise:
/// `$XDG_CONFIG_HOME/strata/keyring.json`, else `~/.config/strata/keyring.json`.
pub fn default_path() -> PathBuf {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    config.join("strata").join("keyring.json")
}

impl Keyring {
    /// Opens the keyring at `path`; a missing file is an empty keyring
    /// (nothing is written until a key is added).
    pub fn open(path: &Path) -> Result<Keyring, KeyringError> {
        let io = |source| KeyringError::Io {
            path: path.to_path_buf(),
            source,
        };
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Keyring {
                    path: path.to_path_buf(),
                    file: KeyringFile {
                        format: FORMAT,
                        ..Default::default()
                    },
                });
            }
            Err(e) => return Err(io(e)),
        };
        check_private(path)?;
        let file: KeyringFile =
            serde_json::from_slice(&bytes).map_err(|e| KeyringError::Corrupt {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        if file.format != FORMAT {
            return Err(KeyringError::Corrupt {
                path: path.to_path_buf(),
                reason: format!("format {} is not {FORMAT}", file.format),
            });
        }
        Ok(Keyring {
            path: path.to_path_buf(),
            file,
        })
    }

    /// The keyring's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn parse(&self, version: &KeyVersion) -> Result<SigningKey, KeyringError> {
        SigningKey::parse(&version.key).map_err(|source| KeyringError::Key {
            path: self.path.clone(),
            source,
        })
    }

    /// The current signing key.
    pub fn signing_key(&self) -> Result<SigningKey, KeyringError> {
        match self.file.signing.last() {
            Some(version) => self.parse(version),
            None => Err(KeyringError::NoSigningKey {
                path: self.path.clone(),
            }),
        }
    }

    /// Every signing key version, oldest first.
    pub fn signing_keys(&self) -> Result<Vec<SigningKey>, KeyringError> {
        self.file.signing.iter().map(|v| self.parse(v)).collect()
    }

    /// The current signing key, making and saving one named `name` if there is
    /// none. When two processes make the first key at once, one key wins and
    /// both return it.
    pub fn signing_key_or_create(&mut self, name: &str) -> Result<SigningKey, KeyringError> {
        if self.file.signing.is_empty() {
            self.update(|keyring| {
                if keyring.file.signing.is_empty() {
                    keyring.push_new_signing_key(name)?;
                }
                Ok::<_, KeyringError>(())
            })?;
        }
        self.signing_key()
    }

    /// The secret that keys analysts' pseudonyms (see
    /// `strata_query::Pseudonyms`), made and saved if the keyring has none.
    /// It is apart from the tenants' master keys, so rotating those leaves
    /// every pseudonym as it was.
    pub fn pseudonym_secret_or_create(&mut self) -> Result<[u8; 32], KeyringError> {
        if self.file.pseudonym_secret.is_none() {
            self.update(|keyring| {
                if keyring.file.pseudonym_secret.is_none() {
                    let secret = random_bytes().map_err(|reason| KeyringError::Corrupt {
                        path: keyring.path.clone(),
                        reason,
                    })?;
                    keyring.file.pseudonym_secret = Some(BASE64.encode(secret));
                }
                Ok::<_, KeyringError>(())
            })?;
        }
        let text = self.file.pseudonym_secret.as_deref().unwrap_or_default();
        (BASE64.decode(text).ok())
            .and_then(|secret| secret.try_into().ok())
            .ok_or_else(|| KeyringError::Corrupt {
                path: self.path.clone(),
                reason: "its pseudonym secret is not 32 bytes of base64".into(),
            })
    }

    /// Makes a new signing key version named `name`, saves it and returns it.
    pub fn add_signing_key(&mut self, name: &str) -> Result<SigningKey, KeyringError> {
        self.update(|keyring| keyring.push_new_signing_key(name))
    }

    /// Applies `change` to the keyring as it is on disk now, under the lock,
    /// and saves the result: a change made by another process since this
    /// keyring was read is kept, not overwritten.
    fn update<T, E: From<KeyringError>>(
        &mut self,
        change: impl FnOnce(&mut Keyring) -> Result<T, E>,
    ) -> Result<T, E> {
        let _lock = self.lock()?;
        self.file = Keyring::open(&self.path)?.file;
        let out = change(self)?;
        self.save()?;
        Ok(out)
    }

    /// Takes the exclusive lock on `<keyring>.lock`, released when the
    /// returned file is dropped (or the process dies).
    fn lock(&self) -> Result<std::fs::File, KeyringError> {
        let io = |source| KeyringError::Io {
            path: self.path.clone(),
            source,
        };
        create_private_dir(&self.dir()).map_err(io)?;
        let mut name = self.path.as_os_str().to_owned();
        name.push(".lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(PathBuf::from(name))
            .map_err(io)?;
        file.lock().map_err(io)?;
        Ok(file)
    }

    /// The folder holding the keyring.
    fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    fn push_new_signing_key(&mut self, name: &str) -> Result<SigningKey, KeyringError> {
        let key = SigningKey::generate(name).map_err(|source| KeyringError::Key {
            path: self.path.clone(),
            source,
        })?;
        self.file.signing.push(KeyVersion {
            key: key.to_private_text(),
            created_at: now(),
        });
        Ok(key)
    }

    /// The newest master key of `tenant` in the file as it is now, and its
    /// version, made (version 1) if the tenant has none. Refused once
    /// the tenant's keys were destroyed, until a new version is made with
    /// [`Keyring::rotate`].
    pub fn tenant_key_or_create(
        &mut self,
        tenant: &str,
    ) -> Result<(u32, MasterKeyBytes), KeyError> {
        // Read afresh: another process may have rotated or destroyed keys
        // since, and new files must never go under a destroyed key.
        self.file = Keyring::open(&self.path)?.file;
        if let Some(newest) = self.newest_version(tenant) {
            return Ok((newest, self.tenant_key(tenant, newest)?));
        }
        let version = self.update(|keyring| match keyring.newest_version(tenant) {
            Some(newest) => Ok::<_, KeyError>(newest),
            None => keyring.push_new_tenant_key(tenant),
        })?;
        Ok((version, self.tenant_key(tenant, version)?))
    }

    fn newest_version(&self, tenant: &str) -> Option<u32> {
        self.file
            .tenants
            .get(tenant)
            .and_then(|v| v.last())
            .map(|k| k.version)
    }

    /// Version `version` of `tenant`'s master key, reading the file again if
    /// this copy does not have it (another process may have made it since).
    pub fn tenant_key_fresh(
        &mut self,
        tenant: &str,
        version: u32,
    ) -> Result<MasterKeyBytes, KeyError> {
        match self.tenant_key(tenant, version) {
            Err(KeyError::Missing { .. }) => {
                self.file = Keyring::open(&self.path)?.file;
                self.tenant_key(tenant, version)
            }
            other => other,
        }
    }

    /// Version `version` of `tenant`'s master key.
    pub fn tenant_key(&self, tenant: &str, version: u32) -> Result<MasterKeyBytes, KeyError> {
        let missing = || KeyError::Missing {
            tenant: tenant.to_string(),
            version,
            keyring: self.path.clone(),
        };
        let key = self
            .file
            .tenants
            .get(tenant)
            .and_then(|versions| versions.iter().find(|k| k.version == version))
            .ok_or_else(missing)?;
        if let Some(at) = &key.destroyed_at {
            return Err(KeyError::Destroyed {
                tenant: tenant.to_string(),
                version,
                at: at.clone(),
            });
        }
        BASE64
            .decode(&key.key)
            .ok()
            .and_then(|k| k.try_into().ok())
            .ok_or_else(missing)
    }

    /// Makes a new master key version for `tenant`, used for new writes from
    /// now on; older versions still decrypt what they encrypted.
    pub fn rotate(&mut self, tenant: &str) -> Result<u32, KeyError> {
        self.update(|keyring| keyring.push_new_tenant_key(tenant))
    }

    fn push_new_tenant_key(&mut self, tenant: &str) -> Result<u32, KeyError> {
        let key = random_bytes().map_err(KeyError::Crypto)?;
        let versions = self.file.tenants.entry(tenant.to_string()).or_default();
        let version = versions.last().map_or(1, |k| k.version + 1);
        versions.push(MasterKey {
            version,
            key: BASE64.encode(key),
            created_at: now(),
            destroyed_at: None,
        });
        Ok(version)
    }

    /// Destroys every version of `tenant`'s master key, including versions
    /// made by other processes since this keyring was read: what they
    /// encrypted can never be read again. Returns the versions destroyed now.
    pub fn destroy(&mut self, tenant: &str) -> Result<Vec<u32>, KeyError> {
        if self.live_versions(tenant)?.is_empty() {
            return Ok(Vec::new());
        }
        self.update(|keyring| {
            let mut destroyed = Vec::new();
            for key in keyring.file.tenants.get_mut(tenant).into_iter().flatten() {
                if key.destroyed_at.is_none() {
                    key.key.clear();
                    key.destroyed_at = Some(now());
                    destroyed.push(key.version);
                }
            }
            Ok(destroyed)
        })
    }

    /// The versions of `tenant`'s master key not destroyed, in the file as it is now.
    pub fn live_versions(&mut self, tenant: &str) -> Result<Vec<u32>, KeyringError> {
        self.file = Keyring::open(&self.path)?.file;
        Ok(self
            .file
            .tenants
            .get(tenant)
            .into_iter()
            .flatten()
            .filter(|k| k.destroyed_at.is_none())
            .map(|k| k.version)
            .collect())
    }

    /// Writes the keyring atomically, readable by its owner only; called
    /// with the lock held.
    fn save(&self) -> Result<(), KeyringError> {
        let io = |source| KeyringError::Io {
            path: self.path.clone(),
            source,
        };
        let dir = self.dir();
        create_private_dir(&dir).map_err(io)?;
        let mut temp = tempfile::NamedTempFile::new_in(&dir).map_err(io)?;
        // NamedTempFile is created with mode 0600 on Unix.
        let bytes = serde_json::to_vec_pretty(&self.file).expect("keyrings serialize");
        temp.write_all(&bytes).map_err(io)?;
        temp.as_file().sync_all().map_err(io)?;
        temp.persist(&self.path).map_err(|e| io(e.error))?;
        Ok(())
    }
}

/// 32 bytes from the system's secure randomness.
fn random_bytes() -> Result<[u8; 32], String> {
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| "no system randomness".to_string())?;
    Ok(bytes)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A 256-bit master key.
pub type MasterKeyBytes = [u8; 32];

/// Why a tenant key is not available.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The keyring has no such key version.
    #[error("no master key version {version} for tenant {tenant} in keyring {}", keyring.display())]
    Missing {
        /// The tenant.
        tenant: String,
        /// The version asked for.
        version: u32,
        /// The keyring looked in.
        keyring: PathBuf,
    },
    /// The key was destroyed (crypto-shredded).
    #[error(
        "key destroyed: tenant {tenant}'s master key version {version} was shredded at {at}; its encrypted data can no longer be read"
    )]
    Destroyed {
        /// The tenant.
        tenant: String,
        /// The version.
        version: u32,
        /// When.
        at: String,
    },
    /// The keyring file failed.
    #[error(transparent)]
    Keyring(#[from] KeyringError),
    /// A key could not be made, wrapped or unwrapped.
    #[error("{0}")]
    Crypto(String),
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), KeyringError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|source| KeyringError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(KeyringError::TooOpen {
            path: path.to_path_buf(),
            mode: mode & 0o777,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), KeyringError> {
    Ok(())
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_made_once_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/keyring.json");
        let mut keyring = Keyring::open(&path).unwrap();
        assert!(matches!(
            keyring.signing_key(),
            Err(KeyringError::NoSigningKey { .. })
        ));
        assert!(!path.exists(), "opening does not write");
        let key = keyring.signing_key_or_create("strata/test").unwrap();

        let again = Keyring::open(&path)
            .unwrap()
            .signing_key_or_create("other")
            .unwrap();
        assert_eq!(again.verifier(), key.verifier());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn racing_first_keys_agree_on_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let mut first = Keyring::open(&path).unwrap();
        let mut second = Keyring::open(&path).unwrap();
        let a = first.signing_key_or_create("a").unwrap();
        let b = second.signing_key_or_create("b").unwrap();
        assert_eq!(a.verifier(), b.verifier());
    }

    #[test]
    fn the_pseudonym_secret_is_made_once_and_outlives_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let mut first = Keyring::open(&path).unwrap();
        let mut second = Keyring::open(&path).unwrap();
        let secret = first.pseudonym_secret_or_create().unwrap();
        assert_eq!(second.pseudonym_secret_or_create().unwrap(), secret);
        second.rotate("acme").unwrap();
        second.destroy("acme").unwrap();
        let reopened = Keyring::open(&path).unwrap().pseudonym_secret_or_create();
        assert_eq!(reopened.unwrap(), secret);
    }

    /// A keyring file in `dir` with a signing key named `a`.
    fn keyring_with_a_key(dir: &tempfile::TempDir) -> PathBuf {
        let path = dir.path().join("keyring.json");
        Keyring::open(&path)
            .unwrap()
            .signing_key_or_create("a")
            .unwrap();
        path
    }

    #[test]
    fn racing_writers_never_lose_a_key_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = keyring_with_a_key(&dir);
        // Each writer read the keyring before any of the others wrote.
        let writers: Vec<Keyring> = (0..6).map(|_| Keyring::open(&path).unwrap()).collect();
        std::thread::scope(|scope| {
            for (i, mut keyring) in writers.into_iter().enumerate() {
                scope.spawn(move || {
                    for _ in 0..10 {
                        keyring.rotate("shared").unwrap();
                        keyring.rotate(&format!("own-{i}")).unwrap();
                    }
                });
            }
        });
        let keyring = Keyring::open(&path).unwrap();
        let versions: Vec<u32> = keyring.file.tenants["shared"]
            .iter()
            .map(|k| k.version)
            .collect();
        assert_eq!(versions, (1..=60).collect::<Vec<_>>());
        for i in 0..6 {
            assert_eq!(keyring.file.tenants[&format!("own-{i}")].len(), 10);
        }
        for version in 1..=60 {
            keyring.tenant_key("shared", version).unwrap();
        }
    }

    #[test]
    fn a_stale_copy_destroys_versions_made_since_and_never_encrypts_under_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let mut shredder = Keyring::open(&path).unwrap();
        let mut encrypter = Keyring::open(&path).unwrap();
        assert_eq!(encrypter.tenant_key_or_create("t").unwrap().0, 1);
        Keyring::open(&path).unwrap().rotate("t").unwrap();
        // The shredder read the keyring before both versions existed.
        assert_eq!(shredder.destroy("t").unwrap(), [1, 2]);
        assert!(matches!(
            encrypter.tenant_key_or_create("t"),
            Err(KeyError::Destroyed { version: 2, .. })
        ));
        assert!(
            Keyring::open(&path)
                .unwrap()
                .live_versions("t")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn new_versions_sign_and_old_ones_remain() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        let mut keyring = Keyring::open(&path).unwrap();
        let first = keyring.signing_key_or_create("a").unwrap();
        let second = keyring.add_signing_key("a").unwrap();
        let reopened = Keyring::open(&path).unwrap();
        assert_eq!(
            reopened.signing_key().unwrap().verifier(),
            second.verifier()
        );
        let all: Vec<_> = reopened
            .signing_keys()
            .unwrap()
            .iter()
            .map(|k| k.verifier())
            .collect();
        assert_eq!(all, [first.verifier(), second.verifier()]);
    }

    #[cfg(unix)]
    #[test]
    fn a_world_readable_keyring_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = keyring_with_a_key(&dir);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Keyring::open(&path).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn a_corrupt_keyring_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.json");
        std::fs::write(&path, "{not json").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let err = Keyring::open(&path).unwrap_err();
        assert!(err.to_string().contains("keyring.json is corrupt"), "{err}");
    }
}
