//! `strata sql`'s record of its statements in the archive it reads, made
//! as the server makes its own (`strata_query::query_log`): an
//! `archive_query` event stored before the answer, an `archive_query_end`
//! after it, in each tenant read and in the system tenant.
//!
//! Only a governed archive (one with principals, whose looks are
//! controlled) records: a scratch archive's owner reads their own copy.
//! Whoever cannot write the archive (no signing key the archive trusts, or
//! no write permission on its store) reads without a record, told so once;
//! any other failure to store a record refuses the statement.
//!
//! Each record is a small commit of small files (one per tenant copy),
//! merged by the next compaction (`strata compact`, or the one that ends
//! every `strata ingest`), not by `strata sql`: a compaction deletes the
//! files it merged at once, which would fail a query a server is running
//! over them.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context;
use strata_ingest::{IngestError, IngestOptions, Input};
use strata_keys::{Keyring, KeyringError};
use strata_query::QuerySession;
use strata_query::query_log::{Asker, End, Ending, QueryRecord, Start, fingerprint, new_query_id};
use strata_store::{Archive, CatalogError};

/// Records the statements of one `strata sql` run.
pub struct SqlRecorder {
    /// The archive, sealed with the keyring's key, while records are kept.
    writer: Option<Archive>,
    asker: Asker,
    vocabulary: HashSet<String>,
    /// Set once a record met a read-only archive.
    read_only: AtomicBool,
}

/// One statement being recorded.
pub struct Statement {
    record: QueryRecord,
    received: Instant,
}

impl SqlRecorder {
    /// The recorder of `session`'s statements: records are made when the
    /// archive has principals; they are committed as `actor` with the
    /// keyring's signing key (and countersigned by `witness`, if any).
    pub async fn new(
        archive: &Archive,
        session: &QuerySession,
        keyring: &Path,
        witness: Option<&str>,
    ) -> anyhow::Result<SqlRecorder> {
        let asker = Asker {
            user: crate::actor(),
            role: "operator".into(),
            app: "strata sql".into(),
            interface: "cli".into(),
            src_ip: None,
            session_id: Some(format!("cli-{}", std::process::id())),
        };
        let mut recorder = SqlRecorder {
            writer: None,
            asker,
            vocabulary: HashSet::new(),
            read_only: AtomicBool::new(false),
        };
        if session.snapshot.governance.principals.is_empty() {
            return Ok(recorder);
        }
        recorder.vocabulary = session.vocabulary().await?;
        let key = match Keyring::open(keyring)?.signing_key() {
            Ok(key) => key,
            Err(KeyringError::NoSigningKey { .. }) => {
                recorder.read_only("the keyring has no signing key");
                return Ok(recorder);
            }
            Err(other) => return Err(other.into()),
        };
        let witness = witness
            .map(|w| strata_store::open_location(w, strata_store::Missing::Create))
            .transpose()?;
        let mut writer = archive.clone();
        writer.catalog = writer.catalog.with_seal(key, witness);
        if let Err(CatalogError::UntrustedWriter { key }) =
            writer.catalog.check_writer(&session.snapshot)
        {
            recorder.read_only(&format!(
                "the archive does not trust the keyring's key {key}"
            ));
            return Ok(recorder);
        }
        recorder.writer = Some(writer);
        Ok(recorder)
    }

    /// Says once why statements are not recorded.
    fn read_only(&self, why: &str) {
        if !self.read_only.swap(true, Ordering::SeqCst) {
            eprintln!(
                "note: this archive records every look, but {why}: reading without a record \
                 (see docs/access.md)"
            );
        }
    }

    /// Starts the record of `sql`, received now.
    pub fn statement(&self, sql: &str) -> Statement {
        let now = chrono::Utc::now().timestamp_micros();
        Statement {
            record: QueryRecord {
                query_id: new_query_id(now),
                started_at: now,
                asker: self.asker.clone(),
                statement: sql.to_string(),
                fingerprint: fingerprint(sql, &self.vocabulary),
                read: Default::default(),
            },
            received: Instant::now(),
        }
    }

    /// Stores `statement`'s first record, once its plan is known (what
    /// `session` planned last) or it failed; an error means it must not be answered.
    pub async fn start(
        &self,
        statement: &mut Statement,
        session: &QuerySession,
        start: &Start,
    ) -> anyhow::Result<()> {
        statement.record.read = session.planned();
        self.store(statement.record.start_lines(start)).await
    }

    /// Stores `statement`'s last record: how it ended, `rows` sent,
    /// `bytes_scanned` read.
    pub async fn end(
        &self,
        statement: &Statement,
        ending: Ending,
        rows: usize,
        bytes_scanned: usize,
    ) -> anyhow::Result<()> {
        let end = End {
            ending,
            rows: rows as u64,
            bytes_scanned: bytes_scanned as u64,
            duration_ms: statement.received.elapsed().as_secs_f64() * 1000.0,
        };
        self.store(statement.record.end_lines(&end)).await
    }

    /// Commits `lines` as events, as an ingest of them would.
    async fn store(&self, lines: Vec<u8>) -> anyhow::Result<()> {
        let Some(writer) = &self.writer else {
            return Ok(());
        };
        if self.read_only.load(Ordering::SeqCst) {
            return Ok(());
        }
        let mut file = tempfile::NamedTempFile::new().context("cannot stage a query record")?;
        file.write_all(&lines)
            .context("cannot stage a query record")?;
        let options = IngestOptions {
            actor: self.asker.user.clone(),
            threads: 1,
            memory_bytes: 64 << 20,
            ..IngestOptions::default()
        };
        let input = Input::File(file.path().to_path_buf());
        match strata_ingest::ingest(writer, vec![input], options, ()).await {
            Ok((report, ())) if report.rejected() == 0 => Ok(()),
            Ok(_) => anyhow::bail!("a query record broke the event contract; not answered"),
            Err(e) if no_write_access(&e) => {
                self.read_only(&format!("it cannot be written ({e})"));
                Ok(())
            }
            Err(e) => Err(anyhow::Error::new(e)
                .context("the statement was not answered: its record could not be stored")),
        }
    }
}

/// Whether `error` says the store refuses writes to this user.
fn no_write_access(error: &IngestError) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
            )
        {
            return true;
        }
        if let Some(store) = e.downcast_ref::<object_store::Error>()
            && matches!(
                store,
                object_store::Error::PermissionDenied { .. }
                    | object_store::Error::Unauthenticated { .. }
            )
        {
            return true;
        }
        cause = e.source();
    }
    false
}
