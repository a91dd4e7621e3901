//! Opening inputs: files or stdin, plain, gzip or zstd (detected by magic bytes).

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

/// One input of an ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A file, ingested exactly once (keyed by the BLAKE3 hash of its bytes).
    File(PathBuf),
    /// Standard input, which cannot be re-read and so is not resumable.
    Stdin,
}

impl Input {
    /// `-` means stdin, anything else a file path.
    pub fn parse(arg: &str) -> Input {
        if arg == "-" {
            Input::Stdin
        } else {
            Input::File(PathBuf::from(arg))
        }
    }

    /// The name used in reports.
    pub fn display(&self) -> String {
        match self {
            Input::File(p) => p.display().to_string(),
            Input::Stdin => "<stdin>".to_string(),
        }
    }

    /// Size in bytes when known (files).
    pub fn size(&self) -> Option<u64> {
        match self {
            Input::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
            Input::Stdin => None,
        }
    }
}

/// Counts bytes read from the raw (possibly compressed) input, for progress.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// What identifies a file's content for exactly-once ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContentId {
    /// `blake3:` and the BLAKE3 hash of the file's bytes.
    pub id: String,
    /// The hex SHA-256 of the same bytes, when asked for: the identity
    /// strata used before BLAKE3, so that a catalog written then still
    /// recognises its inputs.
    pub sha256: Option<String>,
    /// How many bytes the hashes cover.
    pub len: u64,
}

/// Whether `id` is a source identity written before BLAKE3 (a bare SHA-256).
pub(crate) fn is_sha256_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Bytes read at a time by [`hash_file`], and how many such buffers circulate.
const HASH_READ_BYTES: usize = 4 << 20;
const HASH_BUFFERS: usize = 3;

/// Hashes a file's bytes in one streamed pass: BLAKE3, whose SIMD code
/// runs about five times faster than SHA-256 on one core, and SHA-256 too
/// when `with_sha256`.
///
/// A second thread reads ahead while this one hashes: the pass runs alone
/// before parsing starts, and with two cores free it then takes about as
/// long as reading alone instead of reading plus hashing.
pub(crate) fn hash_file(path: &std::path::Path, with_sha256: bool) -> io::Result<ContentId> {
    let mut file = File::open(path)?;
    let (filled, to_hash) = std::sync::mpsc::sync_channel::<Vec<u8>>(HASH_BUFFERS);
    let (emptied, to_fill) = std::sync::mpsc::channel::<Vec<u8>>();
    for _ in 0..HASH_BUFFERS {
        emptied
            .send(Vec::with_capacity(HASH_READ_BYTES))
            .expect("receiver alive");
    }
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || -> io::Result<()> {
            // Stops at the end of the file (after sending an empty buffer),
            // on an error, or when the hashing side has gone.
            while let Ok(mut buf) = to_fill.recv() {
                buf.clear();
                (&mut file)
                    .take(HASH_READ_BYTES as u64)
                    .read_to_end(&mut buf)?;
                let end = buf.is_empty();
                if filled.send(buf).is_err() || end {
                    break;
                }
            }
            Ok(())
        });
        let mut blake = blake3::Hasher::new();
        let mut sha = with_sha256.then(Sha256::new);
        let mut len = 0;
        let mut complete = false;
        for buf in to_hash {
            if buf.is_empty() {
                complete = true;
                break;
            }
            blake.update(&buf);
            if let Some(sha) = &mut sha {
                sha.update(&buf);
            }
            len += buf.len() as u64;
            // The reader may have stopped on an error: its result says so.
            let _ = emptied.send(buf);
        }
        reader.join().expect("the hash reader does not panic")?;
        assert!(
            complete,
            "the reader ends with an empty buffer unless it fails"
        );
        Ok(ContentId {
            id: format!("blake3:{}", blake.finalize().to_hex()),
            sha256: sha.map(|sha| hex::encode(sha.finalize())),
            len,
        })
    })
}

/// Opens `input` as a line reader over its decompressed bytes; `raw_bytes`
/// counts the bytes read before decompression. A file is read only up to
/// `hashed_len`, the length its content hash covers, so that bytes appended
/// after hashing are never committed under that hash.
pub(crate) fn open_lines(
    input: &Input,
    hashed_len: u64,
    raw_bytes: Arc<AtomicU64>,
) -> io::Result<Box<dyn BufRead + Send>> {
    let raw: Box<dyn Read + Send> = match input {
        Input::File(p) => Box::new(File::open(p)?.take(hashed_len)),
        Input::Stdin => Box::new(io::stdin()),
    };
    let mut raw = BufReader::with_capacity(
        1 << 20,
        Counting {
            inner: raw,
            count: raw_bytes,
        },
    );
    let magic = raw.fill_buf()?;
    let decoded: Box<dyn Read + Send> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(raw))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(raw)?)
    } else {
        return Ok(Box::new(raw));
    };
    Ok(Box::new(BufReader::with_capacity(1 << 20, decoded)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read_all(input: &Input) -> String {
        let mut s = String::new();
        open_lines(input, u64::MAX, Arc::default())
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        s
    }

    #[test]
    fn reads_plain_gzip_and_zstd_alike() {
        let dir = tempfile::tempdir().unwrap();
        let text = "{\"a\":1}\n{\"b\":2}\n";
        let plain = dir.path().join("x.ndjson");
        std::fs::write(&plain, text).unwrap();
        let gz = dir.path().join("x.ndjson.gz");
        let mut enc = flate2::write::GzEncoder::new(
            File::create(&gz).unwrap(),
            flate2::Compression::default(),
        );
        enc.write_all(text.as_bytes()).unwrap();
        enc.finish().unwrap();
        let zst = dir.path().join("x.ndjson.zst");
        std::fs::write(&zst, zstd::encode_all(text.as_bytes(), 3).unwrap()).unwrap();
        for p in [plain, gz, zst] {
            assert_eq!(read_all(&Input::File(p.clone())), text, "{}", p.display());
        }
    }

    #[test]
    fn hashes_are_content_based() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, "same").unwrap();
        std::fs::write(&b, "same").unwrap();
        assert_eq!(hash_file(&a, true).unwrap(), hash_file(&b, true).unwrap());
        std::fs::write(&b, "other").unwrap();
        let (a, b) = (hash_file(&a, true).unwrap(), hash_file(&b, true).unwrap());
        assert_ne!(a.id, b.id);
        assert_ne!(a.sha256, b.sha256);
    }

    #[test]
    fn identities_are_blake3_and_legacy_sha256_of_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc");
        std::fs::write(&path, "abc").unwrap();
        let content = hash_file(&path, true).unwrap();
        // Published test vectors of both hashes for "abc".
        assert_eq!(
            content.id,
            "blake3:6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
        );
        let sha256 = content.sha256.unwrap();
        assert_eq!(
            sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(is_sha256_id(&sha256));
        assert!(!is_sha256_id(&content.id));
        assert_eq!(content.len, 3);
        assert_eq!(hash_file(&path, false).unwrap().sha256, None);
    }

    #[test]
    fn a_file_spanning_many_read_buffers_hashes_as_one_piece() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("large");
        let bytes: Vec<u8> = (0..HASH_READ_BYTES * (HASH_BUFFERS + 2) + 12_345)
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&path, &bytes).unwrap();
        let content = hash_file(&path, true).unwrap();
        assert_eq!(
            content.id,
            format!("blake3:{}", blake3::hash(&bytes).to_hex())
        );
        assert_eq!(content.sha256, Some(strata_store::sha256_hex(&bytes)));
        assert_eq!(content.len, bytes.len() as u64);
    }

    #[test]
    fn a_read_error_while_hashing_is_returned() {
        // A directory opens, then fails on the first read (in the reading thread).
        let dir = tempfile::tempdir().unwrap();
        let err = hash_file(dir.path(), false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::IsADirectory);
    }

    #[test]
    fn bytes_appended_after_hashing_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("growing.ndjson");
        std::fs::write(&path, "line 1\n").unwrap();
        let len = hash_file(&path, false).unwrap().len;
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"line 2\n")
            .unwrap();
        let mut text = String::new();
        open_lines(&Input::File(path), len, Arc::default())
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "line 1\n");
    }
}
