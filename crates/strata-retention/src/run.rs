//! Carrying a plan out. Every action is one catalog commit, made only once
//! whatever it needs is in place, and every object it creates or orphans is
//! named in the writer record first, so `kill -9` at any point followed by
//! a rerun ends exactly as an uninterrupted run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use strata_ingest::{ZSTD_LEVEL_DEFAULT, merge_files, read_file};
use strata_keys::envelope::{KeyProvider, decryption_properties};
use strata_store::{
    Archive, CatalogError, Change, Conflict, Draft, FileMeta, Mark, Missing, PartitionRecord,
    Pending, Snapshot, Writer, delete_objects, delete_replaced, purge_replaced, reconcile,
};

use crate::plan::{Action, ActionKind, Plan, plan};
use crate::{RetentionError, current_policy};

/// zstd level of tiered files: cold data is written once and read rarely.
pub const COLD_ZSTD_LEVEL: i32 = 9;
/// Partitions per expiry commit.
const PARTITIONS_PER_COMMIT: usize = 100;
/// How many times a run plans again after losing a race before giving up.
const MAX_REPLANS: usize = 20;

/// Hears about a run's progress.
pub trait Observer {
    /// An action was committed.
    fn done(&mut self, _action: &Action) {}
}

impl Observer for () {}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// The plan it carried out.
    pub plan: Option<Plan>,
    /// Catalog commits made.
    pub commits: u64,
    /// Objects deleted after their commits.
    pub objects_deleted: u64,
    /// Bytes written to cold stores.
    pub bytes_tiered: u64,
    /// Tenants whose keys were destroyed.
    pub tenants_shredded: u64,
    /// Shreds a concurrent change (a legal hold placed during the run)
    /// stopped before any key was destroyed, with the reason.
    pub shreds_refused: Vec<String>,
}

/// Plans at `now` under the archive's current policy and carries the plan out
/// as `actor`, with `keys` to encrypt and to rewrite encrypted files. Starts
/// by removing what an interrupted run left behind.
///
/// Runs racing on one archive end as one: an action another writer's commit
/// made moot (a partition it marked or swept first, a file it compacted or
/// appended meanwhile) makes the commit conflict, and the run plans again
/// from the new state, where that action is done or changed.
pub async fn run(
    archive: &Archive,
    now: DateTime<Utc>,
    actor: &str,
    keys: Option<&Arc<dyn KeyProvider>>,
    observer: &mut dyn Observer,
) -> Result<RunReport, RetentionError> {
    reconcile(&archive.stores, &archive.catalog).await?;
    let mut report = RunReport::default();
    let mut replans = 0;
    loop {
        match run_plan(archive, now, actor, keys, observer, &mut report).await {
            Err(RetentionError::Catalog(CatalogError::Conflict(why))) if replans < MAX_REPLANS => {
                tracing::info!("a concurrent commit changed the archive ({why}): planning again");
                replans += 1;
            }
            Err(e) => return Err(e),
            Ok(()) => return Ok(report),
        }
    }
}

/// Plans once on the current state and carries the plan out, adding what it
/// did to `report`.
async fn run_plan(
    archive: &Archive,
    now: DateTime<Utc>,
    actor: &str,
    keys: Option<&Arc<dyn KeyProvider>>,
    observer: &mut dyn Observer,
    report: &mut RunReport,
) -> Result<(), RetentionError> {
    let mut snapshot = archive.catalog.load().await?;
    archive.catalog.check_writer(&snapshot)?;
    let (version, policy) = current_policy(&snapshot)?;
    let plan = plan(&snapshot, &policy, version, now);
    if plan.actions.is_empty() && plan.shreds.iter().all(|s| s.held_by.is_some()) {
        destroy_shredded_keys(&snapshot, keys)?;
        report.plan = Some(plan);
        return Ok(());
    }
    let mut writer = Writer::register(&archive.stores, "retention", actor).await?;
    // What a failed run uploaded or orphaned is removed before it returns.
    let outcome = async {
        let draft = |operation: &str, reason: String| Draft {
            operation: operation.to_string(),
            actor: actor.to_string(),
            reason: Some(reason),
            policy_version: Some(version),
            ..Default::default()
        };
        let of_kind = |kind| {
            plan.actions
                .iter()
                .filter(move |a: &&Action| a.kind == kind)
        };
        let now_text = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);

        let unmarks: Vec<&Action> = of_kind(ActionKind::Unmark).collect();
        for chunk in unmarks.chunks(PARTITIONS_PER_COMMIT) {
            let mut commit = draft("expire-cancel", "a legal hold covers the partitions".into());
            commit.changes = chunk
                .iter()
                .map(|a| Change::ExpiryCancelled {
                    partition: a.partition.clone(),
                    reason: a.reason.clone(),
                })
                .collect();
            archive.catalog.commit(&mut snapshot, commit).await?;
            report.commits += 1;
            chunk.iter().for_each(|a| observer.done(a));
        }

        let sweeps: Vec<&Action> = of_kind(ActionKind::Sweep).collect();
        for chunk in sweeps.chunks(PARTITIONS_PER_COMMIT) {
            let files: Vec<FileMeta> = chunk.iter().flat_map(|a| a.files.clone()).collect();
            writer
                .set_pending(files.iter().map(Pending::of).collect())
                .await?;
            let mut commit = draft(
                strata_store::SWEEP_OPERATION,
                "retention period and grace period over".into(),
            );
            commit.remove = files.clone();
            commit.changes = chunk
                .iter()
                .map(|a| Change::ExpirySwept {
                    partition: a.partition.clone(),
                })
                .collect();
            archive.catalog.commit(&mut snapshot, commit).await?;
            report.commits += 1;
            report.objects_deleted += delete_files(archive, &snapshot, &files).await?;
            chunk.iter().for_each(|a| observer.done(a));
        }

        let marks: Vec<&Action> = of_kind(ActionKind::Mark).collect();
        for chunk in marks.chunks(PARTITIONS_PER_COMMIT) {
            let mut commit = draft(
                "expire-mark",
                "retention period over: hidden now, deleted after the grace period".into(),
            );
            commit.changes = chunk
                .iter()
                .map(|a| Change::ExpiryMarked {
                    mark: Mark {
                        partition: a.partition.clone(),
                        marked_at: now_text.clone(),
                        sweep_after: a.sweep_after.clone().expect("marks have a sweep time"),
                        policy_version: version,
                    },
                })
                .collect();
            archive.catalog.commit(&mut snapshot, commit).await?;
            report.commits += 1;
            chunk.iter().for_each(|a| observer.done(a));
        }

        for action in of_kind(ActionKind::Encrypt) {
            let commit = draft("encrypt", action.reason.clone());
            encrypt(
                archive,
                &mut snapshot,
                &mut writer,
                keys,
                &action.files,
                commit,
            )
            .await?;
            report.commits += 1;
            report.objects_deleted += delete_files(archive, &snapshot, &action.files).await?;
            observer.done(action);
        }

        for action in of_kind(ActionKind::Tier) {
            let location = action.to.as_deref().expect("tier actions name their store");
            let cold = archive.stores.open(Some(location), Missing::Create)?;
            let (bytes, mut meta) = merge_files(
                archive,
                &action.files,
                COLD_ZSTD_LEVEL,
                keys,
                action.encrypt,
            )
            .await?;
            meta.location = Some(location.to_string());
            // The hot copies hold the same rows as the cold file: they stay
            // for readers of the state before, as compaction's sources do,
            // unless they are the plaintext this tiering encrypts.
            let encrypts_now =
                action.encrypt && action.files.iter().any(|f| f.key_version.is_none());
            (writer.set_pending(replacing(&meta, &action.files, !encrypts_now))).await?;
            let path = Path::from(meta.path.as_str());
            cold.put(&path, bytes.into()).await?;
            check_copy(cold.as_ref(), &meta, &action.files, keys).await?;
            let mut commit = draft("tier", action.reason.clone());
            commit.remove = action.files.clone();
            report.bytes_tiered += meta.size;
            commit.add = vec![meta];
            let seq = archive.catalog.commit(&mut snapshot, commit).await?;
            report.commits += 1;
            report.objects_deleted += match encrypts_now {
                true => delete_files(archive, &snapshot, &action.files).await?,
                false => delete_replaced(&archive.stores, seq, &action.files).await?,
            };
            observer.done(action);
        }
        for shred in plan.shreds.iter().filter(|s| s.held_by.is_none()) {
            let keys = keys.ok_or_else(|| {
                RetentionError::Refused(format!(
                    "shredding tenant {} needs the keyring (--keyring)",
                    shred.tenant
                ))
            })?;
            let tenant = &shred.tenant;
            // The erasure covers every file of the tenant: files that arrived in
            // plaintext since it was scheduled are first encrypted under the
            // keys about to be destroyed.
            for files in plaintext_partitions(&snapshot, tenant) {
                let commit = draft(
                    "encrypt",
                    format!(
                        "tenant {tenant} is to be crypto-shredded: its files must be encrypted"
                    ),
                );
                encrypt(
                    archive,
                    &mut snapshot,
                    &mut writer,
                    Some(keys),
                    &files,
                    commit,
                )
                .await?;
                report.commits += 1;
                report.objects_deleted += delete_files(archive, &snapshot, &files).await?;
            }
            // The receipt is committed before any key is destroyed: a hold
            // placed since the plan makes the commit conflict, and the hold wins.
            let versions = keys
                .live_versions(tenant)
                .map_err(|e| RetentionError::Refused(e.to_string()))?;
            let mut commit = draft(
                "shred",
                format!("crypto-shredding scheduled until {}", shred.destroy_after),
            );
            commit.changes = vec![Change::KeysShredded {
                tenant: tenant.clone(),
                versions,
            }];
            match archive.catalog.commit(&mut snapshot, commit).await {
                Ok(_) => {}
                Err(CatalogError::Conflict(Conflict::Governance(why))) => {
                    tracing::warn!("shredding of tenant {tenant} not done: {why}");
                    report
                        .shreds_refused
                        .push(format!("tenant {tenant}: {why}"));
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            report.commits += 1;
            report.tenants_shredded += 1;
        }
        destroy_shredded_keys(&snapshot, keys)?;
        Ok::<_, RetentionError>(())
    }
    .await;
    if let Err(e) = outcome {
        writer.abandon(&archive.catalog).await;
        return Err(e);
    }
    writer.finish().await?;
    report.plan = Some(plan);
    Ok(())
}

/// Merges `files` (one partition) into one file encrypted under the tenant's
/// current key, and commits `commit` replacing them by it. The caller
/// deletes the old files once committed.
async fn encrypt(
    archive: &Archive,
    snapshot: &mut Snapshot,
    writer: &mut Writer,
    keys: Option<&Arc<dyn KeyProvider>>,
    files: &[FileMeta],
    mut commit: Draft,
) -> Result<(), RetentionError> {
    let (bytes, meta) = merge_files(archive, files, ZSTD_LEVEL_DEFAULT, keys, true).await?;
    writer.set_pending(replacing(&meta, files, false)).await?;
    archive
        .store
        .put(&Path::from(meta.path.as_str()), bytes.into())
        .await?;
    commit.remove = files.to_vec();
    commit.add = vec![meta];
    archive.catalog.commit(snapshot, commit).await?;
    Ok(())
}

/// Destroys the keys of every tenant the catalog records as shredded: those
/// just committed, and those of a run stopped between its receipt and the
/// destruction. Destroying is idempotent.
fn destroy_shredded_keys(
    snapshot: &Snapshot,
    keys: Option<&Arc<dyn KeyProvider>>,
) -> Result<(), RetentionError> {
    let Some(keys) = keys else { return Ok(()) };
    for tenant in snapshot.governance.shredded.keys() {
        keys.destroy(tenant)
            .map_err(|e| RetentionError::Refused(e.to_string()))?;
    }
    Ok(())
}

/// The files of each partition of `tenant` that holds any plaintext file.
fn plaintext_partitions(snapshot: &Snapshot, tenant: &str) -> Vec<Vec<FileMeta>> {
    let mut partitions: BTreeMap<PartitionRecord, Vec<FileMeta>> = BTreeMap::new();
    for file in snapshot.files.values().filter(|f| f.tenant == tenant) {
        partitions
            .entry(PartitionRecord::of(file))
            .or_default()
            .push(file.clone());
    }
    partitions
        .into_values()
        .filter(|files| files.iter().any(|f| f.key_version.is_none()))
        .collect()
}

/// What a writer replacing `old` files by `new` may leave behind, named before
/// the upload and kept across the commit: whichever side the catalog does not
/// list when it dies (the new file before the commit, the old ones after).
/// The old ones are kept for readers of older states if `keep_old`, else
/// deleted at once (plaintext that an encrypted copy replaces).
fn replacing(new: &FileMeta, old: &[FileMeta], keep_old: bool) -> Vec<Pending> {
    let old = old.iter().map(|f| match keep_old {
        true => Pending::replacing(f),
        false => Pending::of(f),
    });
    std::iter::once(Pending::of(new)).chain(old).collect()
}

/// Reads the cold copy back: its bytes must hash to what was written and it
/// must hold as many rows as the files it replaces.
async fn check_copy(
    cold: &dyn ObjectStore,
    meta: &FileMeta,
    sources: &[FileMeta],
    keys: Option<&Arc<dyn KeyProvider>>,
) -> Result<(), RetentionError> {
    let bad = |e: &dyn std::fmt::Display| RetentionError::BadCopy(format!("{}: {e}", meta.path));
    let path = Path::from(meta.path.as_str());
    let stored = cold.get(&path).await?.bytes().await?;
    let hash = strata_store::sha256_hex(&stored);
    let decryption = match (meta.key_version, keys) {
        (Some(_), Some(keys)) => Some(decryption_properties(keys.clone()).map_err(|e| bad(&e))?),
        _ => None,
    };
    let rows: usize = read_file(stored, decryption)
        .map_err(|e| bad(&e))?
        .iter()
        .map(|b| b.num_rows())
        .sum();
    let expected_rows: u64 = sources.iter().map(|f| f.rows).sum();
    if hash != meta.sha256 || rows as u64 != expected_rows || meta.rows != expected_rows {
        return Err(RetentionError::BadCopy(format!(
            "{} in the cold store has SHA-256 {hash} and {rows} rows; expected {} and {expected_rows}",
            meta.path, meta.sha256
        )));
    }
    Ok(())
}

/// Deletes committed-away files from wherever they are stored; returns how many.
/// Deletes `files` at once, with every copy of their partitions that an
/// earlier commit replaced and keeps for readers of older states: deleting
/// these is the point (expiry, erasure), so no copy may linger.
async fn delete_files(
    archive: &Archive,
    snapshot: &Snapshot,
    files: &[FileMeta],
) -> Result<u64, RetentionError> {
    let objects: Vec<Pending> = files.iter().map(Pending::of).collect();
    let deleted = delete_objects(&archive.stores, &objects).await?;
    let partitions: BTreeSet<String> = (files.iter())
        .map(|f| format!("{}/", PartitionRecord::of(f).key()))
        .collect();
    let doomed = |p: &Pending| partitions.iter().any(|key| p.path.starts_with(key));
    Ok(deleted + purge_replaced(&archive.stores, snapshot, &doomed).await?)
}
