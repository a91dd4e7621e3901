//! Envelope encryption of Parquet files: each file gets a random data key
//! (AES-256-GCM, Parquet modular encryption, encrypted footer, every column
//! under that key), and the data key is stored in the file's footer key
//! metadata wrapped by the tenant's master key.
//!
//! The key metadata is the JSON of Parquet's key-management tools (the
//! format pyarrow's `CryptoFactory` and parquet-mr read), with single
//! wrapping: `masterKeyID` is `<tenant>/v<version>` and `wrappedDEK` is
//! base64 of `nonce (12 bytes) || AES-256-GCM(master key, nonce, data key,
//! aad = masterKeyID)`. A reader outside strata that implements a KMS client
//! doing that unwrap reads the files (see `docs/encryption.md`).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use parquet::encryption::decrypt::{FileDecryptionProperties, KeyRetriever};
use parquet::encryption::encrypt::FileEncryptionProperties;
use parquet::errors::ParquetError;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};

use crate::{KeyError, Keyring, MasterKeyBytes};

/// Where tenant master keys come from: the local keyring now; a KMS or Vault
/// transit engine can implement the same two calls.
pub trait KeyProvider: Send + Sync + std::fmt::Debug {
    /// The key new files of `tenant` are encrypted under, and its version.
    fn current(&self, tenant: &str) -> Result<(u32, MasterKeyBytes), KeyError>;
    /// Version `version` of `tenant`'s key, to decrypt.
    fn get(&self, tenant: &str, version: u32) -> Result<MasterKeyBytes, KeyError>;
    /// Makes a new key version for `tenant`'s new files; returns it.
    fn rotate(&self, tenant: &str) -> Result<u32, KeyError>;
    /// Destroys all of `tenant`'s key versions; returns those destroyed now.
    fn destroy(&self, tenant: &str) -> Result<Vec<u32>, KeyError>;
    /// The versions of `tenant`'s key not destroyed yet, as they are now.
    fn live_versions(&self, tenant: &str) -> Result<Vec<u32>, KeyError>;
}

/// The keyring file as a [`KeyProvider`]. The current key of a tenant is
/// read from the file each time (another process may have rotated or
/// destroyed it); changes are made under the keyring's lock.
#[derive(Debug)]
pub struct LocalKeys {
    keyring: Mutex<Keyring>,
}

impl LocalKeys {
    /// The keys in the keyring at `path`.
    pub fn open(path: &std::path::Path) -> Result<LocalKeys, KeyError> {
        Ok(LocalKeys {
            keyring: Mutex::new(Keyring::open(path)?),
        })
    }

    /// The keyring file.
    pub fn path(&self) -> PathBuf {
        self.keyring
            .lock()
            .expect("keyring lock")
            .path()
            .to_path_buf()
    }
}

impl KeyProvider for LocalKeys {
    fn current(&self, tenant: &str) -> Result<(u32, MasterKeyBytes), KeyError> {
        self.keyring
            .lock()
            .expect("keyring lock")
            .tenant_key_or_create(tenant)
    }

    fn get(&self, tenant: &str, version: u32) -> Result<MasterKeyBytes, KeyError> {
        self.keyring
            .lock()
            .expect("keyring lock")
            .tenant_key_fresh(tenant, version)
    }

    fn rotate(&self, tenant: &str) -> Result<u32, KeyError> {
        self.keyring.lock().expect("keyring lock").rotate(tenant)
    }

    fn destroy(&self, tenant: &str) -> Result<Vec<u32>, KeyError> {
        self.keyring.lock().expect("keyring lock").destroy(tenant)
    }

    fn live_versions(&self, tenant: &str) -> Result<Vec<u32>, KeyError> {
        Ok(self
            .keyring
            .lock()
            .expect("keyring lock")
            .live_versions(tenant)?)
    }
}

/// Parquet key-tools key material, single wrapping, stored in the file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyMaterial {
    key_material_type: String,
    internal_storage: bool,
    is_footer_key: bool,
    #[serde(rename = "kmsInstanceID")]
    kms_instance_id: String,
    #[serde(rename = "kmsInstanceURL")]
    kms_instance_url: String,
    #[serde(rename = "masterKeyID")]
    master_key_id: String,
    #[serde(rename = "wrappedDEK")]
    wrapped_dek: String,
    double_wrapping: bool,
}

fn master_key_id(tenant: &str, version: u32) -> String {
    format!("{tenant}/v{version}")
}

fn parse_master_key_id(id: &str) -> Option<(&str, u32)> {
    let (tenant, version) = id.rsplit_once("/v")?;
    Some((tenant, version.parse().ok()?))
}

fn aead_key(master: &MasterKeyBytes) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, master).expect("32-byte AES-256 key"))
}

fn random<const N: usize>() -> Result<[u8; N], KeyError> {
    let mut bytes = [0u8; N];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| KeyError::Crypto("no system randomness".into()))?;
    Ok(bytes)
}

/// Encryption properties for a new file of `tenant`: a fresh data key,
/// wrapped by the tenant's current master key. Returns them with the master
/// key version, which the catalog records.
pub fn encryption_properties(
    keys: &dyn KeyProvider,
    tenant: &str,
) -> Result<(Arc<FileEncryptionProperties>, u32), KeyError> {
    let (version, master) = keys.current(tenant)?;
    let data_key: [u8; 32] = random()?;
    let nonce: [u8; NONCE_LEN] = random()?;
    let id = master_key_id(tenant, version);
    let mut wrapped = data_key.to_vec();
    aead_key(&master)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(id.as_bytes()),
            &mut wrapped,
        )
        .map_err(|_| KeyError::Crypto("cannot wrap a data key".into()))?;
    let material = KeyMaterial {
        key_material_type: "PKMT1".into(),
        internal_storage: true,
        is_footer_key: true,
        kms_instance_id: "DEFAULT".into(),
        kms_instance_url: "DEFAULT".into(),
        master_key_id: id,
        wrapped_dek: BASE64.encode([nonce.as_slice(), &wrapped].concat()),
        double_wrapping: false,
    };
    let metadata = serde_json::to_vec(&material).expect("key material serializes");
    let properties = FileEncryptionProperties::builder(data_key.to_vec())
        .with_footer_key_metadata(metadata)
        .build()
        .map_err(|e| KeyError::Crypto(e.to_string()))?;
    Ok((properties, version))
}

/// Unwraps files' data keys with the provider's master keys.
#[derive(Debug)]
struct Unwrapper {
    keys: Arc<dyn KeyProvider>,
}

impl KeyRetriever for Unwrapper {
    fn retrieve_key(&self, key_metadata: &[u8]) -> parquet::errors::Result<Vec<u8>> {
        let bad = |why: &str| ParquetError::General(format!("file key metadata: {why}"));
        let material: KeyMaterial =
            serde_json::from_slice(key_metadata).map_err(|e| bad(&e.to_string()))?;
        let (tenant, version) = parse_master_key_id(&material.master_key_id)
            .ok_or_else(|| bad("masterKeyID is not <tenant>/v<version>"))?;
        let master = self
            .keys
            .get(tenant, version)
            .map_err(|e| ParquetError::General(e.to_string()))?;
        let wrapped = BASE64
            .decode(&material.wrapped_dek)
            .map_err(|_| bad("wrappedDEK is not base64"))?;
        if wrapped.len() <= NONCE_LEN {
            return Err(bad("wrappedDEK is too short"));
        }
        let (nonce, sealed) = wrapped.split_at(NONCE_LEN);
        let mut sealed = sealed.to_vec();
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| bad("bad nonce"))?;
        let data_key = aead_key(&master)
            .open_in_place(
                nonce,
                Aad::from(material.master_key_id.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| {
                ParquetError::General(format!(
                    "wrong key: master key {} does not unwrap this file's data key",
                    material.master_key_id
                ))
            })?;
        Ok(data_key.to_vec())
    }
}

/// Decryption properties that find each file's data key through `keys`.
pub fn decryption_properties(
    keys: Arc<dyn KeyProvider>,
) -> parquet::errors::Result<Arc<FileDecryptionProperties>> {
    FileDecryptionProperties::with_key_retriever(Arc::new(Unwrapper { keys })).build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
    use parquet::file::properties::WriterProperties;

    fn batch() -> arrow_array::RecordBatch {
        let users = arrow_array::StringArray::from(vec!["alice.secret", "bob.secret"]);
        arrow_array::RecordBatch::try_from_iter([("user", Arc::new(users) as _)]).unwrap()
    }

    fn write(keys: &dyn KeyProvider, tenant: &str) -> bytes::Bytes {
        let (properties, version) = encryption_properties(keys, tenant).unwrap();
        assert_eq!(version, 1);
        let props = WriterProperties::builder()
            .with_file_encryption_properties(properties)
            .build();
        let mut out = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut out, batch().schema(), Some(props)).unwrap();
        writer.write(&batch()).unwrap();
        writer.close().unwrap();
        out.into()
    }

    fn read(keys: Arc<dyn KeyProvider>, file: bytes::Bytes) -> Result<usize, String> {
        let options = ArrowReaderOptions::new()
            .with_file_decryption_properties(decryption_properties(keys).unwrap());
        let reader = ParquetRecordBatchReaderBuilder::try_new_with_options(file, options)
            .map_err(|e| e.to_string())?
            .build()
            .map_err(|e| e.to_string())?;
        reader
            .map(|b| b.map(|b| b.num_rows()).map_err(|e| e.to_string()))
            .sum()
    }

    #[test]
    fn files_read_back_with_the_key_and_not_without() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Arc::new(LocalKeys::open(&dir.path().join("keyring.json")).unwrap());
        let file = write(keys.as_ref(), "acme");
        assert!(
            !file.windows(6).any(|w| w == b"secret"),
            "no plaintext in the file"
        );
        assert_eq!(read(keys.clone(), file.clone()), Ok(2));

        let stranger = Arc::new(LocalKeys::open(&dir.path().join("other.json")).unwrap());
        let err = read(stranger.clone(), file.clone()).unwrap_err();
        assert!(
            err.contains("no master key version 1 for tenant acme"),
            "{err}"
        );
        stranger.current("acme").unwrap();
        let err = read(stranger, file.clone()).unwrap_err();
        assert!(err.contains("wrong key"), "{err}");

        assert_eq!(keys.rotate("acme").unwrap(), 2);
        assert_eq!(
            read(keys.clone(), file.clone()),
            Ok(2),
            "old versions still read"
        );
        assert_eq!(keys.destroy("acme").unwrap(), [1, 2]);
        let err = read(keys, file).unwrap_err();
        assert!(err.contains("key destroyed"), "{err}");
    }
}
