//! Making stored objects survive a power loss. An object store answers a
//! put once the object is durable; the local folder store only hands the
//! bytes to the kernel, so on a local archive the files and the folders
//! naming them are fsynced before the server relies on them.

use std::collections::BTreeSet;
use std::path::PathBuf;

/// How stored objects become durable.
#[derive(Debug, Clone)]
pub enum Durability {
    /// An object store (S3 and the like): a successful put is durable.
    ObjectStore,
    /// A local folder: objects are files under this root, durable once
    /// they and their folders are fsynced.
    LocalFolder(PathBuf),
}

impl Durability {
    /// The durability of the archive at `location` (a folder or `s3://…`).
    pub fn of(location: &str) -> std::io::Result<Durability> {
        if location.contains("://") {
            Ok(Durability::ObjectStore)
        } else {
            Ok(Durability::LocalFolder(std::fs::canonicalize(location)?))
        }
    }

    /// Makes the objects at `paths` (relative to the archive) durable, and
    /// the folders that name them, up to the root.
    pub async fn sync(&self, paths: Vec<String>) -> std::io::Result<()> {
        let Durability::LocalFolder(root) = self else {
            return Ok(());
        };
        let root = root.clone();
        tokio::task::spawn_blocking(move || {
            let files: Vec<PathBuf> = paths.iter().map(|path| root.join(path)).collect();
            let mut folders = BTreeSet::new();
            for file in &files {
                let mut folder = file.parent();
                while let Some(dir) = folder.filter(|d| d.starts_with(&root)) {
                    folders.insert(dir.to_path_buf());
                    folder = dir.parent();
                }
            }
            sync_all(&files)?;
            sync_all(&folders.into_iter().collect::<Vec<_>>())
        })
        .await
        .map_err(std::io::Error::other)?
    }
}

/// Threads fsyncing at once: a write-out makes hundreds of files and
/// folders durable, and one fsync after the other left the CPU idle for a
/// tenth of the write-out while the disk flushed each in turn.
const SYNC_THREADS: usize = 16;

/// Fsyncs every file or folder at `paths`, several at a time.
fn sync_all(paths: &[PathBuf]) -> std::io::Result<()> {
    let chunk = paths.len().div_ceil(SYNC_THREADS).max(1);
    std::thread::scope(|scope| {
        let threads: Vec<_> = paths
            .chunks(chunk)
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .iter()
                        .try_for_each(|path| std::fs::File::open(path)?.sync_all())
                })
            })
            .collect();
        threads
            .into_iter()
            .try_for_each(|thread| thread.join().expect("an fsync thread panicked"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_files_and_their_folders_sync_and_missing_ones_fail() {
        let dir = tempfile::tempdir().unwrap();
        let location = dir.path().to_str().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/c"), "x").unwrap();
        let durability = Durability::of(location).unwrap();
        durability.sync(vec!["a/b/c".into()]).await.unwrap();
        let err = durability.sync(vec!["a/missing".into()]).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        assert!(matches!(
            Durability::of("s3://bucket/x").unwrap(),
            Durability::ObjectStore
        ));
    }
}
