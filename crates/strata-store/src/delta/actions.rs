//! The Delta actions of one version, computed from the catalog alone.
//!
//! Delta version N lists the change in what queries see made by catalog
//! entry N: an `add` for each file that became visible, a `remove` for each
//! that stopped being visible. A file stops being visible when a commit
//! removes it (compaction, tiering, sweeping) or when its partition is
//! marked for expiry; it becomes visible when added outside a marked
//! partition or when a mark is cancelled. The bytes depend only on the log,
//! so any writer (or `strata verify`) computes the same version.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use strata_schema::contract;
use strata_schema::shred::shredded_column;

use crate::catalog::{Entry, FileMeta, Snapshot};
use crate::governance::{Mark, PartitionRecord};

/// The version of the publication rules, in every `commitInfo`: a later
/// strata that publishes differently still verifies versions written by these.
pub const PUBLICATION_FORMAT: u32 = 1;

/// Catalog operations that rewrite rows without changing them.
const REWRITES: [&str; 3] = ["compact", "tier", "encrypt"];

/// The Delta table's partition columns: the archive's folder levels.
pub const PARTITION_COLUMNS: [&str; 3] = ["tenant", "family", "month"];

/// `tags` of an encrypted file's `add`: it is Parquet modular encryption
/// whose keys come from strata's key service.
pub const ENCRYPTED_TAG: &str = "strata.encrypted";
/// `tags` of an encrypted file's `add`: the tenant master key version.
pub const KEY_VERSION_TAG: &str = "strata.key_version";
/// `tags` of every `add`: the file's SHA-256 as the catalog recorded it.
pub const SHA256_TAG: &str = "strata.sha256";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum Action<'a> {
    CommitInfo(CommitInfo<'a>),
    Protocol(Protocol),
    MetaData(MetaData),
    Add(Add),
    Remove(Remove),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CommitInfo<'a> {
    timestamp: i64,
    operation: &'a str,
    operation_parameters: BTreeMap<&'a str, String>,
    is_blind_append: bool,
    engine_info: &'static str,
    #[serde(rename = "strata.publication")]
    publication: u32,
    #[serde(rename = "strata.seq")]
    seq: u64,
    #[serde(rename = "strata.prev")]
    prev: &'a str,
    #[serde(rename = "strata.hash")]
    hash: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Protocol {
    min_reader_version: u32,
    min_writer_version: u32,
}

/// The Delta protocol of the table: reader 1 and writer 2, the versions
/// every Delta reader supports (no deletion vectors, column mapping or
/// other table features are used).
pub(super) const PROTOCOL: Protocol = Protocol {
    min_reader_version: 1,
    min_writer_version: 2,
};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct MetaData {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) format: Format,
    pub(super) schema_string: String,
    pub(super) partition_columns: Vec<String>,
    pub(super) configuration: BTreeMap<String, String>,
    pub(super) created_time: i64,
}

#[derive(Serialize)]
pub(super) struct Format {
    pub(super) provider: String,
    pub(super) options: BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Add {
    pub(super) path: String,
    pub(super) partition_values: BTreeMap<String, String>,
    pub(super) size: i64,
    pub(super) modification_time: i64,
    pub(super) data_change: bool,
    pub(super) stats: String,
    pub(super) tags: BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Remove {
    pub(super) path: String,
    pub(super) deletion_timestamp: i64,
    pub(super) data_change: bool,
    pub(super) extended_file_metadata: bool,
    pub(super) partition_values: BTreeMap<String, String>,
    pub(super) size: i64,
}

/// Milliseconds since the epoch of an entry's RFC 3339 commit time (checked
/// when the entry was applied).
pub(super) fn millis(committed_at: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(committed_at).map_or(0, |t| t.timestamp_millis())
}

/// A file's path in the table: relative to the archive root, or the URL of
/// its cold store's copy (`s3://…`, a local cold folder as `file:///…`). A
/// relative cold folder is kept as the policy gives it (resolving it would
/// make the bytes depend on the publisher's working folder).
pub fn table_path(file: &FileMeta) -> String {
    match &file.location {
        None => file.path.clone(),
        Some(location) => {
            let scheme = match location.starts_with('/') {
                true => "file://",
                false => "",
            };
            format!("{scheme}{}/{}", location.trim_end_matches('/'), file.path)
        }
    }
}

fn partition_values(file: &FileMeta) -> BTreeMap<String, String> {
    let values = [&file.tenant, &file.family, &file.month];
    (PARTITION_COLUMNS.iter().zip(values))
        .map(|(column, value)| (column.to_string(), value.clone()))
        .collect()
}

/// A UTC microsecond time as Delta statistics write timestamps.
fn stats_time(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

pub(super) fn add(file: &FileMeta, committed_ms: i64, data_change: bool) -> Add {
    let stats = serde_json::json!({
        "numRecords": file.rows,
        "minValues": {"ts": stats_time(file.min_ts)},
        "maxValues": {"ts": stats_time(file.max_ts)},
        "nullCount": {"ts": 0},
    });
    let mut tags = BTreeMap::from([(SHA256_TAG.to_string(), file.sha256.clone())]);
    if let Some(version) = file.key_version {
        tags.insert(ENCRYPTED_TAG.to_string(), "true".to_string());
        tags.insert(KEY_VERSION_TAG.to_string(), version.to_string());
    }
    Add {
        path: table_path(file),
        partition_values: partition_values(file),
        size: file.size as i64,
        modification_time: committed_ms,
        data_change,
        stats: stats.to_string(),
        tags,
    }
}

fn remove(file: &FileMeta, committed_ms: i64, data_change: bool) -> Remove {
    Remove {
        path: table_path(file),
        deletion_timestamp: committed_ms,
        data_change,
        extended_file_metadata: true,
        partition_values: partition_values(file),
        size: file.size as i64,
    }
}

/// Delta's type of an Arrow column of the event contract.
fn delta_type(data_type: &arrow::datatypes::DataType) -> serde_json::Value {
    use arrow::datatypes::DataType;
    match data_type {
        DataType::Timestamp(_, _) => "timestamp".into(),
        DataType::Int64 => "long".into(),
        DataType::Float64 => "double".into(),
        DataType::Map(_, _) => serde_json::json!({
            "type": "map",
            "keyType": "string",
            "valueType": "string",
            "valueContainsNull": true,
        }),
        _ => "string".into(),
    }
}

/// The table's schema as Delta writes it: the contract's columns, the
/// columns of `shredded` attributes (text; null in files that keep the key
/// in `attrs`), then `month` (a partition column held only in paths).
pub(super) fn schema_string<'a>(shredded: impl Iterator<Item = &'a String>) -> String {
    let schema = contract().arrow_schema();
    let mut fields: Vec<serde_json::Value> = (schema.fields().iter())
        .map(|f| {
            serde_json::json!({
                "name": f.name(),
                "type": delta_type(f.data_type()),
                "nullable": f.is_nullable(),
                "metadata": {},
            })
        })
        .collect();
    fields.extend(shredded.map(|key| {
        serde_json::json!({
            "name": shredded_column(key), "type": "string", "nullable": true, "metadata": {},
        })
    }));
    fields.push(serde_json::json!({
        "name": "month", "type": "string", "nullable": false, "metadata": {},
    }));
    serde_json::json!({"type": "struct", "fields": fields}).to_string()
}

/// The table's identity, derived from the archive's first entry so that
/// every publisher writes the same one.
fn table_id(first_entry_hash: &str) -> String {
    let h = crate::catalog::sha256_hex(format!("strata delta table {first_entry_hash}").as_bytes());
    format!(
        "{}-{}-8{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// The table's metadata: its identity from the archive's first entry
/// (`first`, hashing to `first_hash`), its schema as of state `at`.
pub(super) fn metadata(first: &Entry, first_hash: &str, at: &Snapshot) -> MetaData {
    MetaData {
        id: table_id(first_hash),
        name: "strata_events".to_string(),
        format: Format {
            provider: "parquet".to_string(),
            options: BTreeMap::new(),
        },
        schema_string: schema_string(at.shredded_keys.keys()),
        partition_columns: PARTITION_COLUMNS.map(String::from).to_vec(),
        configuration: BTreeMap::new(),
        created_time: millis(&first.committed_at),
    }
}

fn lines(actions: &[Action]) -> Vec<u8> {
    let mut out = Vec::new();
    for action in actions {
        serde_json::to_writer(&mut out, action).expect("actions serialize");
        out.push(b'\n');
    }
    out
}

/// Delta version 0: the table's protocol and metadata, derived from the
/// archive's first entry (`first`, whose bytes hash to `first_hash`).
pub fn genesis_version(first: &Entry, first_hash: &str) -> Vec<u8> {
    let info = CommitInfo {
        timestamp: millis(&first.committed_at),
        operation: "CREATE TABLE",
        operation_parameters: BTreeMap::from([(
            "partitionBy",
            serde_json::to_string(&PARTITION_COLUMNS).expect("serializes"),
        )]),
        is_blind_append: true,
        engine_info: "strata",
        publication: PUBLICATION_FORMAT,
        seq: 0,
        prev: crate::GENESIS_HASH,
        hash: crate::GENESIS_HASH,
    };
    lines(&[
        Action::CommitInfo(info),
        Action::Protocol(PROTOCOL),
        Action::MetaData(metadata(first, first_hash, &Snapshot::empty())),
    ])
}

/// The visible files that `entry` may have changed, before and after it:
/// its added and removed files, and every file of a partition whose expiry
/// mark it placed or lifted. Everything else is unchanged by it, so a
/// version costs the entry's size, not its partitions' (a partition's file
/// list is read only when its mark changes).
fn visible_changes<'a>(
    marks_before: &BTreeMap<String, Mark>,
    entry: &'a Entry,
    after: &'a Snapshot,
) -> (
    BTreeMap<String, &'a FileMeta>,
    BTreeMap<String, &'a FileMeta>,
) {
    let marks_after = &after.governance.marks;
    let remarked: BTreeSet<&String> = (marks_before.keys().chain(marks_after.keys()))
        .filter(|k| marks_before.contains_key(*k) != marks_after.contains_key(*k))
        .collect();
    let (mut before, mut now) = (BTreeMap::new(), BTreeMap::new());
    for file in &entry.add {
        let key = PartitionRecord::of(file).key();
        if !remarked.contains(&key) && !marks_after.contains_key(&key) {
            now.insert(table_path(file), file);
        }
    }
    for file in &entry.remove {
        let key = PartitionRecord::of(file).key();
        if !remarked.contains(&key) && !marks_before.contains_key(&key) {
            before.insert(table_path(file), file);
        }
    }
    let added: BTreeSet<&str> = entry.add.iter().map(|f| f.path.as_str()).collect();
    for key in remarked {
        let prefix = format!("{key}/");
        let files_after = (after.files.range(prefix.clone()..))
            .take_while(|(path, _)| path.starts_with(&prefix))
            .map(|(_, f)| f);
        if !marks_after.contains_key(key) {
            now.extend(files_after.clone().map(|f| (table_path(f), f)));
        }
        if !marks_before.contains_key(key) {
            let kept = files_after.filter(|f| !added.contains(f.path.as_str()));
            let removed = (entry.remove.iter()).filter(|f| PartitionRecord::of(f).key() == *key);
            before.extend(kept.chain(removed).map(|f| (table_path(f), f)));
        }
    }
    (before, now)
}

/// Whether entry `entry`, which made state `after`, added the first file
/// shredding some `attrs` key: its Delta version then carries the table's
/// metadata with the wider schema.
pub fn widens_schema(entry: &Entry, after: &Snapshot) -> bool {
    after.shredded_keys.values().any(|seq| *seq == entry.seq)
}

/// Delta version `entry.seq`: what became visible and what stopped being
/// visible, given the marks before the entry and the state `after` it, and
/// the table's new metadata when the entry [`widens_schema`] (`table`: the
/// first entry and its hash, for the table's identity).
/// `hash` is the SHA-256 of the entry's bytes.
pub fn version(
    marks_before: &BTreeMap<String, Mark>,
    entry: &Entry,
    hash: &str,
    after: &Snapshot,
    table: Option<(&Entry, &str)>,
) -> Vec<u8> {
    let (before, now) = visible_changes(marks_before, entry, after);
    let committed_ms = millis(&entry.committed_at);
    // Rewrites of the same rows (merging, moving to a cold store, encrypting)
    // change no data: streaming readers skip them, as Delta's OPTIMIZE.
    let rewrite = REWRITES.contains(&entry.operation.as_str());
    let removes = (before.iter())
        .filter(|(path, _)| !now.contains_key(*path))
        .map(|(_, f)| Action::Remove(remove(f, committed_ms, !rewrite)));
    let adds = (now.iter())
        .filter(|(path, _)| !before.contains_key(*path))
        .map(|(_, f)| Action::Add(add(f, committed_ms, !rewrite)));
    let changes: Vec<Action> = removes.chain(adds).collect();
    let removes_any = changes.iter().any(|a| matches!(a, Action::Remove(_)));
    let info = CommitInfo {
        timestamp: committed_ms,
        operation: match (rewrite, removes_any) {
            (true, _) => "OPTIMIZE",
            (false, true) => "DELETE",
            (false, false) => "WRITE",
        },
        operation_parameters: BTreeMap::from([
            ("strata.operation", entry.operation.clone()),
            ("strata.actor", entry.actor.clone()),
        ]),
        is_blind_append: !removes_any,
        engine_info: "strata",
        publication: PUBLICATION_FORMAT,
        seq: entry.seq,
        prev: &entry.prev,
        hash,
    };
    let mut actions = vec![Action::CommitInfo(info)];
    if let Some((first, first_hash)) = table {
        actions.push(Action::MetaData(metadata(first, first_hash, after)));
    }
    actions.extend(changes);
    lines(&actions)
}
