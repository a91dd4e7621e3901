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
    /// A file, ingested exactly once (keyed by the SHA-256 of its bytes).
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

/// SHA-256 of a file's bytes, streamed, and how many bytes it covers.
pub(crate) fn hash_file(path: &std::path::Path) -> io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok((hex::encode(hasher.finalize()), len));
        }
        hasher.update(&buf[..n]);
        len += n as u64;
    }
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
        assert_eq!(hash_file(&a).unwrap(), hash_file(&b).unwrap());
        std::fs::write(&b, "other").unwrap();
        assert_ne!(hash_file(&a).unwrap(), hash_file(&b).unwrap());
    }

    #[test]
    fn bytes_appended_after_hashing_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("growing.ndjson");
        std::fs::write(&path, "line 1\n").unwrap();
        let (_, len) = hash_file(&path).unwrap();
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
