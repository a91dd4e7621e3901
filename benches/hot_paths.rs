//! Criterion micro-benchmarks of the hot paths: JSON decode, partitioning
//! and sort, Parquet encode, catalog load and query planning over a large
//! catalog, the Delta publication's share of a commit, and loading the
//! catalog of a long log. Run with `cargo bench --bench hot_paths`; results and how to
//! read them are in benches/README.md.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::RecordBatch;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use object_store::{ObjectStore, ObjectStoreExt};
use strata_gen::{GenConfig, TimeOrder, generate, tenant_names};
use strata_ingest::block::{Block, parse_block};
use strata_ingest::encode_sorted;
use strata_query::QuerySession;
use strata_schema::{EventBatchBuilder, parse_line};
use strata_store::{Draft, FileMeta, Missing, PartitionKey, delta, open_archive};

#[path = "catalog/long_log.rs"]
mod long_log;

/// The allocator the `strata` binary uses, so the timings are the binary's.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// 4 MiB of generated NDJSON (the ingest's block size), in time order or shuffled.
fn ndjson(order: TimeOrder) -> Vec<u8> {
    let mut out = Vec::new();
    let config = GenConfig {
        events: 10_000,
        order,
        ..GenConfig::default()
    };
    generate(&config, &mut out).expect("generate into memory");
    out
}

fn block(bytes: &[u8]) -> Block {
    Block {
        seq: 0,
        bytes: bytes.to_vec(),
        overlong: Vec::new(),
        max_line: usize::MAX,
    }
}

/// Every event of `bytes` in one batch (all one partition, for encoding).
fn one_partition(bytes: &[u8]) -> (PartitionKey, RecordBatch) {
    let mut builder = EventBatchBuilder::new();
    let mut key = None;
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let event = parse_line(line).expect("generated lines are valid");
        key.get_or_insert_with(|| PartitionKey::of(&event.tenant, event.family, event.ts));
        builder.append(&event);
    }
    (key.expect("events"), builder.finish(0).expect("batch"))
}

fn decode(c: &mut Criterion) {
    let sorted = ndjson(TimeOrder::Sorted);
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Bytes(sorted.len() as u64));
    group.bench_function("parse_line only", |b| {
        b.iter(|| {
            sorted
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| parse_line(black_box(l)).is_ok() as usize)
                .sum::<usize>()
        })
    });
    group.bench_function("parse_block (parse, build, split by partition)", |b| {
        b.iter_batched(
            || block(&sorted),
            |block| parse_block(block, 0).expect("parse"),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for (name, order) in [
        ("sorted", TimeOrder::Sorted),
        ("shuffled", TimeOrder::Shuffled),
    ] {
        let bytes = ndjson(order);
        let (key, batch) = one_partition(&bytes);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(format!("encode_sorted, {name} input, zstd 3"), |b| {
            b.iter(|| encode_sorted(&key, std::slice::from_ref(&batch), 3, None).expect("encode"))
        });
    }
    group.finish();
}

/// An archive whose catalog lists `files` files (metadata only: planning
/// never opens them): seven years, 20 tenants, three families, several
/// files per partition month, loaded from a snapshot as a long-lived
/// archive's catalog is. Returns its location and the files.
fn large_catalog(dir: &std::path::Path, files: usize) -> (String, Vec<FileMeta>) {
    let location = dir.to_string_lossy().into_owned();
    let archive = open_archive(&location, Missing::Create).expect("archive");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let tenants = tenant_names(20);
    let families = ["access", "data_usage", "technical"];
    let months = 7 * 12;
    let mut snapshot = runtime.block_on(archive.catalog.load()).expect("load");
    let metas: Vec<FileMeta> = (0..files)
        .map(|i| {
            let month = i % months;
            let (year, month0) = (2019 + month / 12, month % 12);
            let start = chrono::NaiveDate::from_ymd_opt(year as i32, month0 as u32 + 1, 1)
                .expect("date")
                .and_hms_opt(0, 0, 0)
                .expect("time")
                .and_utc()
                .timestamp_micros();
            let (tenant, family) = (
                tenants[(i / months) % tenants.len()].clone(),
                families[(i / months / tenants.len()) % 3].to_string(),
            );
            let month = format!("{year}-{:02}", month0 + 1);
            FileMeta {
                path: format!(
                    "tenant={tenant}/family={family}/month={month}/part-{i:016x}.parquet"
                ),
                tenant,
                family,
                month,
                size: 1 << 20,
                sha256: format!("{i:064x}"),
                rows: 1000,
                min_ts: start,
                max_ts: start + 27 * 86_400_000_000,
                location: None,
                key_version: None,
                shredded: Vec::new(),
            }
        })
        .collect();
    for add in metas.chunks(files.div_ceil(100)) {
        let draft = Draft {
            operation: "ingest".into(),
            actor: "bench".into(),
            add: add.to_vec(),
            ..Default::default()
        };
        runtime
            .block_on(archive.catalog.commit(&mut snapshot, draft))
            .expect("commit");
    }
    // As the catalog does every 100 commits.
    runtime.block_on(archive.catalog.write_snapshot(&mut snapshot));
    (location, metas)
}

fn catalog(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (location, metas) = large_catalog(dir.path(), 100_000);
    let archive = open_archive(&location, Missing::Fail).expect("archive");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let query = "SELECT user, count(*) FROM events WHERE tenant = 'acme-health' \
        AND family = 'access' AND ts >= '2024-03-01' AND ts < '2024-04-01' GROUP BY user";
    // The plan must keep exactly that tenant-month's files.
    let session = runtime
        .block_on(QuerySession::open(&archive, None))
        .expect("open");
    let plan = runtime.block_on(session.plan(query)).expect("plan");
    let stats = session.stats(&plan);
    let month_files = metas
        .iter()
        .filter(|f| f.tenant == "acme-health" && f.family == "access" && f.month == "2024-03")
        .count();
    assert!(
        month_files > 0,
        "the catalog has files in the queried month"
    );
    assert_eq!(
        (stats.files_scanned, stats.files_total),
        (month_files, metas.len()),
        "pruning keeps exactly the tenant-month's files"
    );
    eprintln!(
        "catalog of {} files: the one-tenant one-month plan keeps {}",
        stats.files_total, stats.files_scanned
    );

    let mut group = c.benchmark_group("catalog, 100k files");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("load the latest snapshot", |b| {
        b.iter(|| runtime.block_on(archive.catalog.load()).expect("load"))
    });
    group.bench_function("open a session and plan a tenant-month query", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let session = QuerySession::open(&archive, None).await.expect("open");
                session.plan(query).await.expect("plan")
            })
        })
    });
    let session = Arc::new(session);
    group.bench_function("plan a tenant-month query (session open)", |b| {
        b.iter(|| runtime.block_on(session.plan(query)).expect("plan"))
    });
    group.finish();
}

/// Ten new files of one partition month, named by `n`.
fn ten_files(n: u64) -> Vec<FileMeta> {
    let start = 1_893_456_000_000_000; // 2030-01-01
    (0..10)
        .map(|i| FileMeta {
            path: format!(
                "tenant=acme-health/family=access/month=2030-01/part-{n:08x}{i:08x}.parquet"
            ),
            tenant: "acme-health".into(),
            family: "access".into(),
            month: "2030-01".into(),
            size: 1 << 20,
            sha256: format!("{n:032x}{i:032x}"),
            rows: 1000,
            min_ts: start,
            max_ts: start + 1,
            location: None,
            key_version: None,
            shredded: Vec::new(),
        })
        .collect()
}

/// The Delta publication's share of a commit on a long-lived archive: a
/// whole commit (entry, signed checkpoint skipped: no key; Delta version),
/// and the publication's parts alone (computing the version, storing it,
/// and every 100 commits a checkpoint of the whole table).
fn delta(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (location, _) = large_catalog(dir.path(), 100_000);
    let archive = open_archive(&location, Missing::Fail).expect("archive");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut snapshot = runtime.block_on(archive.catalog.load()).expect("load");
    let mut group = c.benchmark_group("delta publication, 100k files");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    let mut n = 0;
    group.bench_function("commit 10 files, Delta version included", |b| {
        b.iter(|| {
            n += 1;
            let draft = Draft {
                operation: "ingest".into(),
                actor: "bench".into(),
                add: ten_files(n),
                ..Default::default()
            };
            runtime
                .block_on(archive.catalog.commit(&mut snapshot, draft))
                .expect("commit")
        })
    });
    let (entry, hash) = runtime
        .block_on(archive.catalog.read_entry(snapshot.seq))
        .expect("read")
        .expect("the last entry");
    let marks = snapshot.governance.marks.clone();
    group.bench_function("compute the Delta version of a 10-file commit", |b| {
        b.iter(|| black_box(delta::version(&marks, &entry, &hash, &snapshot, None)))
    });
    let bytes = delta::version(&marks, &entry, &hash, &snapshot, None);
    let scratch = dir.path().join("scratch");
    std::fs::create_dir_all(&scratch).expect("scratch folder");
    let store = object_store::local::LocalFileSystem::new_with_prefix(&scratch).expect("store");
    let mut k = 0u64;
    group.bench_function(
        "store a Delta version (create-only put, previous one read)",
        |b| {
            b.iter(|| {
                k += 1;
                runtime.block_on(async {
                    let options = object_store::PutOptions {
                        mode: object_store::PutMode::Create,
                        ..Default::default()
                    };
                    let path = object_store::path::Path::from(format!("{k:020}.json"));
                    let payload = object_store::PutPayload::from(bytes.clone());
                    store.put_opts(&path, payload, options).await.expect("put");
                    store
                        .get(&path)
                        .await
                        .expect("get")
                        .bytes()
                        .await
                        .expect("bytes")
                })
            })
        },
    );
    let (first, first_hash) = runtime
        .block_on(archive.catalog.read_entry(1))
        .expect("read")
        .expect("the first entry");
    group.bench_function(
        "build a Delta checkpoint of 100k files (every 100 commits)",
        |b| {
            b.iter(|| {
                black_box(
                    delta::checkpoint_bytes(&first, &first_hash, &snapshot).expect("checkpoint"),
                )
            })
        },
    );
    group.finish();
}

/// Loading the catalog of archives of 1,000 and 1,000,000 commits with the
/// same live state (see `long_log`); loading is what opening a session
/// costs beyond DataFusion's own setup.
fn long_logs(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut group = c.benchmark_group("open a session on a long log");
    group.sample_size(20);
    // `STRATA_BENCH_LONG_LOGS=1000,100000` measures other lengths (a million
    // commits take about half an hour to build on two cores); `cargo test`
    // runs each benchmark once, on short logs.
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let default = if benchmarking {
        "1000,1000000"
    } else {
        "1000,2000"
    };
    let lengths = std::env::var("STRATA_BENCH_LONG_LOGS").unwrap_or(default.into());
    for commits in lengths
        .split(',')
        .map(|n| n.parse::<u64>().expect("a number of commits"))
    {
        let catalog = long_log::build(&runtime, commits);
        let loaded = runtime.block_on(catalog.load()).expect("load");
        let bytes = serde_json::to_vec(&loaded).expect("serializes").len();
        eprintln!(
            "{commits} commits: snapshot of {bytes} bytes, {} live files, {} inputs held, {} filed",
            loaded.files.len(),
            loaded.sources.len(),
            loaded.completed_sources()
        );
        group.bench_function(format!("{commits} commits"), |b| {
            b.iter(|| runtime.block_on(catalog.load()).expect("load"))
        });
    }
    group.finish();
}

criterion_group!(benches, decode, encode, catalog, delta, long_logs);
criterion_main!(benches);
