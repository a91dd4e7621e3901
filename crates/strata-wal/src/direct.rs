//! Storing a segment in a local folder past the page cache. Every byte a
//! server acknowledges goes through its write-ahead log once, and copying
//! it into freshly allocated page-cache pages took an eighth of the
//! server's CPU (more on virtual machines, where the first touch of a page
//! is slow); written with `O_DIRECT` the disk reads it straight from the
//! process's memory. Where the file system refuses `O_DIRECT` (tmpfs before
//! Linux 6.6, some network file systems), the file is written the ordinary
//! way.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The alignment `O_DIRECT` asks of buffers, offsets and lengths (the
/// largest logical block size in common use).
const BLOCK: usize = 4096;

/// Blocks copied into the aligned buffer per write (1 MiB).
const CHUNK_BLOCKS: usize = 256;

/// One aligned block of the bounce buffer.
#[derive(Clone, Copy)]
#[repr(C, align(4096))]
struct Block([u8; BLOCK]);

/// Creates the file `path` holding `bytes` and fsyncs it, failing with
/// [`io::ErrorKind::AlreadyExists`] if `path` exists. The bytes are staged
/// as `<path>#direct` and linked into place, so no reader or crash ever
/// sees a partial file under `path`; a staging file a crash left behind is
/// replaced by the next attempt (and removed at start, see
/// `Wal::remove_staging`).
pub fn create(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut staging = path.as_os_str().to_owned();
    staging.push("#direct");
    let staging = PathBuf::from(staging);
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)?;
    }
    let written = write_staging(&staging, bytes).and_then(|()| std::fs::hard_link(&staging, path));
    let removed = std::fs::remove_file(&staging);
    written?;
    removed
}

/// Writes and fsyncs `staging`, with `O_DIRECT` where the file system
/// allows it.
fn write_staging(staging: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = match open(staging, true) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => return write_buffered(staging, bytes),
        Err(e) => return Err(e),
    };
    match write_direct(&mut file, bytes) {
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => write_buffered(staging, bytes),
        written => written.and_then(|()| file.sync_all()),
    }
}

/// Opens `path` for writing from its start, past the page cache if
/// `direct` (on Linux; elsewhere the ordinary way).
fn open(path: &Path, direct: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(target_os = "linux")]
    if direct {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_DIRECT);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = direct;
    options.open(path)
}

/// Writes and fsyncs `path` through the page cache.
fn write_buffered(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = open(path, false)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Writes `bytes` through an aligned bounce buffer, the last block padded
/// with zeros, then cuts the file to the length of `bytes`.
fn write_direct(file: &mut File, bytes: &[u8]) -> io::Result<()> {
    let mut blocks = vec![Block([0; BLOCK]); CHUNK_BLOCKS];
    for chunk in bytes.chunks(CHUNK_BLOCKS * BLOCK) {
        let used = chunk.len().div_ceil(BLOCK);
        let buffer = bytes_of(&mut blocks[..used]);
        buffer[..chunk.len()].copy_from_slice(chunk);
        buffer[chunk.len()..].fill(0);
        file.write_all(buffer)?;
    }
    file.set_len(bytes.len() as u64)
}

/// `blocks` as the bytes they hold.
fn bytes_of(blocks: &mut [Block]) -> &mut [u8] {
    let len = std::mem::size_of_val(blocks);
    // SAFETY: a `Block` is one `[u8; BLOCK]` (`repr(C)`, its size equal to
    // its alignment, so no padding): `blocks` is `len` initialised bytes,
    // borrowed mutably for the result's lifetime.
    unsafe { std::slice::from_raw_parts_mut(blocks.as_mut_ptr().cast::<u8>(), len) }
}

const _: () = assert!(std::mem::size_of::<Block>() == BLOCK);

#[cfg(test)]
mod tests {
    use super::*;

    /// On a disk and, on Linux, on tmpfs (which refuses `O_DIRECT` before
    /// Linux 6.6: the buffered fallback).
    fn folders() -> Vec<tempfile::TempDir> {
        let mut folders = vec![tempfile::tempdir().unwrap()];
        if cfg!(target_os = "linux") {
            folders.push(tempfile::tempdir_in("/dev/shm").unwrap());
        }
        folders
    }

    #[test]
    fn files_hold_exactly_their_bytes_and_are_created_once() {
        for dir in folders() {
            files_hold_exactly_their_bytes_and_are_created_once_in(dir.path());
        }
    }

    fn files_hold_exactly_their_bytes_and_are_created_once_in(dir: &Path) {
        for len in [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, CHUNK_BLOCKS * BLOCK + 7] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let path = dir.join(format!("sub/{len}.wal"));
            create(&path, &bytes).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), bytes, "{len} bytes");
            let again = create(&path, b"other").unwrap_err();
            assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
            assert_eq!(std::fs::read(&path).unwrap(), bytes, "kept");
        }
        let left: Vec<_> = std::fs::read_dir(dir.join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.contains('#'))
            .collect();
        assert!(left.is_empty(), "no staging file left: {left:?}");
    }
}
