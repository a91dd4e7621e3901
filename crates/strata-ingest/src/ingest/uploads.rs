//! Uploading encoded files: each batch named in the writer record first,
//! then stored while reading goes on, within the memory budget.

use bytes::Bytes;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use strata_store::{FileMeta, Pending};

use super::{IngestError, Observer, Run};

/// Encoded files uploaded together (after one update of the writer record).
pub(super) const UPLOAD_BATCH: usize = 32;

/// Stores a new data file at its catalog path.
pub async fn upload(
    store: &dyn object_store::ObjectStore,
    bytes: Bytes,
    meta: FileMeta,
) -> Result<FileMeta, IngestError> {
    match store
        .put(&Path::from(meta.path.as_str()), bytes.into())
        .await
    {
        Ok(_) => Ok(meta),
        Err(source) => Err(IngestError::Write {
            path: meta.path,
            source,
        }),
    }
}

impl<O: Observer> Run<O> {
    /// Names the encoded files in the writer record, then starts uploading
    /// them; waits for earlier uploads while too many bytes are waiting.
    pub(super) fn start_uploads(&mut self) -> Result<(), IngestError> {
        if !self.chunk.encoded.is_empty() {
            let chunk = &mut self.chunk;
            chunk
                .pending
                .extend(chunk.encoded.iter().map(|(_, meta)| Pending::of(meta)));
            self.handle
                .block_on(self.writer.set_pending(chunk.pending.clone()))?;
            for (bytes, meta) in chunk.encoded.drain(..) {
                let store = self.archive.store.clone();
                let size = bytes.len();
                let upload = self
                    .handle
                    .spawn(async move { upload(store.as_ref(), bytes, meta).await });
                chunk.uploads.push_back((size, upload));
                chunk.upload_bytes += size;
            }
        }
        while let Some((_, upload)) = self.chunk.uploads.front() {
            if !upload.is_finished() && self.chunk.upload_bytes <= self.options.upload_limit() {
                break;
            }
            self.finish_upload()?;
        }
        Ok(())
    }

    /// Waits for every upload still in flight, whatever its outcome: after
    /// a failure, the cleanup must come after anything that may still land.
    pub(super) fn settle_uploads(&mut self) {
        for (_, upload) in self.chunk.uploads.drain(..) {
            let _ = self.handle.block_on(upload);
        }
        self.chunk.upload_bytes = 0;
    }

    /// Waits for the oldest upload.
    pub(super) fn finish_upload(&mut self) -> Result<(), IngestError> {
        if let Some((size, upload)) = self.chunk.uploads.pop_front() {
            self.chunk.upload_bytes -= size;
            let meta = self
                .handle
                .block_on(upload)
                .map_err(|e| IngestError::Task(e.to_string()))??;
            self.chunk.uploaded.push(meta);
        }
        Ok(())
    }
}
