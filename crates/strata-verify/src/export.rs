//! Signed query exports: a folder of result files and `manifest.note`, a
//! C2SP signed note whose text is a JSON [`Manifest`]: the query, the signed
//! checkpoint of the archive it ran against and the SHA-256 of every file.
//! Anyone holding the archive's verifier key can check the folder, with
//! `strata verify-export` or any C2SP note verifier and `sha256sum`.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use strata_integrity::{Checkpoint, SigningKey, VerifierKey};

use crate::{Code, Finding, VerifyError};

/// The manifest's file name in an export folder.
pub const MANIFEST_NAME: &str = "manifest.note";
const FORMAT: &str = "strata-export/1";

/// What an export contains and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always `strata-export/1`.
    pub format: String,
    /// The SQL that produced the results.
    pub query: String,
    /// When the export was made (RFC 3339).
    pub created_at: String,
    /// Who made it.
    pub actor: String,
    /// Rows in the result.
    pub rows: u64,
    /// The archive's signed checkpoint at the snapshot the query read.
    pub checkpoint: String,
    /// The result files.
    pub files: Vec<ExportedFile>,
}

/// One result file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedFile {
    /// File name inside the export folder.
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
}

/// The SHA-256 and size of a local file, streamed.
fn hash_file(path: &Path) -> Result<(String, u64), std::io::Error> {
    let mut hasher = Sha256::new();
    let bytes = std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
    Ok((hex::encode(hasher.finalize()), bytes))
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> VerifyError + '_ {
    move |source| VerifyError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl Manifest {
    /// A manifest for the result files `names` in `dir`, which must already be written.
    pub fn new(
        dir: &Path,
        names: &[&str],
        query: &str,
        actor: &str,
        rows: u64,
        checkpoint: String,
    ) -> Result<Manifest, VerifyError> {
        let files = names
            .iter()
            .map(|name| {
                let path = dir.join(name);
                let (sha256, bytes) = hash_file(&path).map_err(io_error(&path))?;
                Ok(ExportedFile {
                    name: name.to_string(),
                    bytes,
                    sha256,
                })
            })
            .collect::<Result<_, VerifyError>>()?;
        Ok(Manifest {
            format: FORMAT.to_string(),
            query: query.to_string(),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            actor: actor.to_string(),
            rows,
            checkpoint,
            files,
        })
    }

    /// Signs the manifest with `key` and writes it to `dir`.
    pub fn write_signed(&self, dir: &Path, key: &SigningKey) -> Result<(), VerifyError> {
        // Pretty JSON has no blank lines and escapes control characters, so it
        // is valid note text.
        let text = serde_json::to_string_pretty(self).expect("manifests serialize") + "\n";
        let note = key.sign(&text).expect("JSON is valid note text");
        let path = dir.join(MANIFEST_NAME);
        let mut file = std::fs::File::create(&path).map_err(io_error(&path))?;
        file.write_all(note.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io_error(&path))
    }
}

/// Checks an export folder: the manifest's signature, the checkpoint it
/// names, each file's hash, and that no file was added. Returns the findings
/// and the manifest, if its signature held.
pub fn verify_export(
    dir: &Path,
    key: &VerifierKey,
) -> Result<(Vec<Finding>, Option<Manifest>), VerifyError> {
    let mut findings = Vec::new();
    let manifest_path = dir.join(MANIFEST_NAME);
    let finding = |code, path: &Path, detail: &str| {
        Finding::new(code, &path.display().to_string(), None, detail)
    };
    let note = match std::fs::read(&manifest_path) {
        Ok(note) => note,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            findings.push(finding(
                Code::Missing,
                &manifest_path,
                "the export has no manifest",
            ));
            return Ok((findings, None));
        }
        Err(e) => return Err(io_error(&manifest_path)(e)),
    };
    let opened = std::str::from_utf8(&note)
        .map_err(|_| "the note is not UTF-8".to_string())
        .and_then(|note| key.open(note).map_err(|e| e.to_string()))
        .and_then(|text| serde_json::from_str::<Manifest>(text).map_err(|e| e.to_string()));
    let manifest = match opened {
        Ok(manifest) => manifest,
        Err(why) => {
            findings.push(finding(Code::BadSignature, &manifest_path, &why));
            return Ok((findings, None));
        }
    };
    if let Err(e) = Checkpoint::open(&manifest.checkpoint, key) {
        findings.push(finding(
            Code::BadSignature,
            &manifest_path,
            &format!("the archive checkpoint in the manifest: {e}"),
        ));
    }
    for file in &manifest.files {
        let path = dir.join(&file.name);
        match hash_file(&path) {
            Ok((sha256, bytes)) if sha256 != file.sha256 || bytes != file.bytes => {
                findings.push(finding(
                    Code::Modified,
                    &path,
                    &format!(
                        "{bytes} bytes with SHA-256 {sha256}; the manifest signed {} bytes with {}",
                        file.bytes, file.sha256
                    ),
                ))
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => findings.push(finding(
                Code::Missing,
                &path,
                "a signed result file is gone",
            )),
            Err(e) => return Err(io_error(&path)(e)),
        }
    }
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != MANIFEST_NAME && !manifest.files.iter().any(|f| f.name == name) {
            findings.push(finding(
                Code::Unsealed,
                &entry.path(),
                "the manifest does not list this file",
            ));
        }
    }
    Ok((findings, Some(manifest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export(dir: &Path, key: &SigningKey) {
        std::fs::write(dir.join("result.csv"), "tenant,n\nacme,3\n").unwrap();
        std::fs::write(dir.join("result.parquet"), b"PAR1 pretend").unwrap();
        let checkpoint = Checkpoint {
            origin: "strata-archive/test".into(),
            size: 3,
            root: [1; 32],
        }
        .sign(key);
        Manifest::new(
            dir,
            &["result.parquet", "result.csv"],
            "SELECT tenant, count(*) AS n FROM events GROUP BY tenant",
            "auditor",
            1,
            checkpoint,
        )
        .unwrap()
        .write_signed(dir, key)
        .unwrap();
    }

    fn codes(findings: &[Finding]) -> Vec<Code> {
        findings.iter().map(|f| f.code).collect()
    }

    #[test]
    fn an_untouched_export_verifies_and_each_tampering_is_named() {
        let key = SigningKey::generate("strata/test").unwrap();
        let dir = tempfile::tempdir().unwrap();
        export(dir.path(), &key);
        let (findings, manifest) = verify_export(dir.path(), &key.verifier()).unwrap();
        assert_eq!(findings, []);
        assert_eq!(manifest.unwrap().files.len(), 2);

        std::fs::write(dir.path().join("result.csv"), "tenant,n\nacme,4\n").unwrap();
        std::fs::write(dir.path().join("extra.csv"), "x").unwrap();
        std::fs::remove_file(dir.path().join("result.parquet")).unwrap();
        let (findings, _) = verify_export(dir.path(), &key.verifier()).unwrap();
        let mut found = codes(&findings);
        found.sort();
        assert_eq!(
            found,
            [Code::Modified, Code::Missing, Code::Unsealed],
            "{findings:?}"
        );
    }

    #[test]
    fn an_edited_or_resigned_manifest_is_a_bad_signature() {
        let key = SigningKey::generate("strata/test").unwrap();
        let dir = tempfile::tempdir().unwrap();
        export(dir.path(), &key);
        let path = dir.path().join(MANIFEST_NAME);
        let note = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, note.replace("acme", "acne").replace("count(*)", "1")).unwrap();
        let (findings, manifest) = verify_export(dir.path(), &key.verifier()).unwrap();
        assert_eq!(codes(&findings), [Code::BadSignature]);
        assert!(manifest.is_none());

        let other = SigningKey::generate("strata/test").unwrap();
        export(dir.path(), &other);
        let (findings, _) = verify_export(dir.path(), &key.verifier()).unwrap();
        assert_eq!(codes(&findings), [Code::BadSignature], "{findings:?}");
    }
}
