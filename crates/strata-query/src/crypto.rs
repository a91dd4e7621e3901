//! Decrypting encrypted files during scans: a DataFusion `EncryptionFactory`
//! that hands the Parquet reader a key retriever backed by the tenant keys.
//! Keys never travel through SQL text or session options.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::config::EncryptionFactoryOptions;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::parquet_encryption::EncryptionFactory;
use object_store::path::Path;
use parquet::encryption::decrypt::FileDecryptionProperties;
use parquet::encryption::encrypt::FileEncryptionProperties;
use strata_keys::envelope::{KeyProvider, decryption_properties};

/// Decryption for the encrypted files among a table's files.
#[derive(Debug)]
pub struct TenantKeys {
    keys: Arc<dyn KeyProvider>,
    encrypted: HashSet<String>,
}

impl TenantKeys {
    /// Decrypts the files at `encrypted` paths with `keys`.
    pub fn new(keys: Arc<dyn KeyProvider>, encrypted: HashSet<String>) -> TenantKeys {
        TenantKeys { keys, encrypted }
    }
}

#[async_trait]
impl EncryptionFactory for TenantKeys {
    async fn get_file_encryption_properties(
        &self,
        _config: &EncryptionFactoryOptions,
        _schema: &SchemaRef,
        _file_path: &Path,
    ) -> Result<Option<Arc<FileEncryptionProperties>>> {
        Ok(None) // queries never write archive files
    }

    async fn get_file_decryption_properties(
        &self,
        _config: &EncryptionFactoryOptions,
        file_path: &Path,
    ) -> Result<Option<Arc<FileDecryptionProperties>>> {
        if !self.encrypted.contains(file_path.as_ref()) {
            return Ok(None);
        }
        decryption_properties(self.keys.clone())
            .map(Some)
            .map_err(|e| DataFusionError::External(Box::new(e)))
    }
}
