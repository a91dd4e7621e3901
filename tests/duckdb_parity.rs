//! Acceptance 1 and 5: audit queries over the archive agree with DuckDB over
//! the raw NDJSON, and DuckDB reads the archive's Parquet files directly with
//! Hive partitioning and finds every row. Issue 16: DuckDB and Apache Spark
//! find every attribute, shredded or not, and Spark reads counts as `bigint`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

/// DuckDB's view of the raw NDJSON with the contract's meaning: ts from
/// RFC 3339 (any offset) or epoch milliseconds, as a UTC timestamp.
fn raw_view(input: &Path) -> String {
    format!(
        "CREATE VIEW raw AS SELECT
            CASE WHEN json_type(json, '$.ts') IN ('UBIGINT', 'BIGINT')
                 THEN make_timestamp(CAST(json->>'$.ts' AS BIGINT) * 1000)
                 ELSE CAST(json->>'$.ts' AS TIMESTAMPTZ) AT TIME ZONE 'UTC' END AS ts,
            json->>'$.tenant' AS tenant, json->>'$.family' AS family, json->>'$.action' AS action,
            coalesce(json->>'$.outcome', 'unknown') AS outcome, json->>'$.severity' AS severity,
            json->>'$.user' AS \"user\", json->>'$.resource' AS resource, json->>'$.message' AS message,
            json->>'$.event_id' AS event_id,
            CAST(json->>'$.bytes' AS UBIGINT) AS bytes, CAST(json->>'$.records' AS UBIGINT) AS records,
            CAST(json->>'$.duration_ms' AS DOUBLE) AS duration_ms, json
         FROM read_ndjson_objects('{}');\n",
        input.display()
    )
}

/// (strata SQL, DuckDB SQL over `raw`): columns aliased a, b, c... in both.
const QUERIES: &[(&str, &str)] = &[
    (
        "SELECT family AS a, count(*) AS b FROM events GROUP BY family ORDER BY a",
        "SELECT family, count(*) FROM raw GROUP BY family ORDER BY 1",
    ),
    (
        "SELECT tenant AS a, sum(bytes) AS b, sum(records) AS c, avg(duration_ms) AS d, count(*) AS e
         FROM events GROUP BY tenant ORDER BY a",
        "SELECT tenant, sum(bytes), sum(records), avg(duration_ms), count(*) FROM raw GROUP BY tenant ORDER BY 1",
    ),
    (
        "SELECT tenant AS a, count(DISTINCT user) AS b, count(DISTINCT resource) AS c FROM events
         GROUP BY tenant ORDER BY a",
        "SELECT tenant, count(DISTINCT \"user\"), count(DISTINCT resource) FROM raw GROUP BY tenant ORDER BY 1",
    ),
    (
        "SELECT CAST(CAST(ts AS DATE) AS VARCHAR) AS a, count(*) AS b FROM access
         WHERE action = 'login_failed' GROUP BY 1 ORDER BY b DESC, a LIMIT 10",
        "SELECT CAST(CAST(ts AS DATE) AS VARCHAR), count(*) FROM raw
         WHERE family = 'access' AND action = 'login_failed' GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 10",
    ),
    (
        "SELECT to_char(date_trunc('month', ts), '%Y-%m') AS a, family AS b, count(*) AS c FROM events
         GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT strftime(date_trunc('month', ts), '%Y-%m'), family, count(*) FROM raw GROUP BY 1, 2 ORDER BY 1, 2",
    ),
    (
        "SELECT CAST(date_part('hour', ts) AS BIGINT) AS a, count(*) AS b FROM events GROUP BY 1 ORDER BY 1",
        "SELECT CAST(date_part('hour', ts) AS BIGINT), count(*) FROM raw GROUP BY 1 ORDER BY 1",
    ),
    (
        "SELECT count(*) AS a FROM events WHERE message LIKE '%xport%'",
        "SELECT count(*) FROM raw WHERE message LIKE '%xport%'",
    ),
    (
        "SELECT tenant AS a, count(*) AS b FROM events WHERE message LIKE '%fail%'
         AND ts >= '2025-04-01' AND ts < '2025-07-01' GROUP BY tenant ORDER BY a",
        "SELECT tenant, count(*) FROM raw WHERE message LIKE '%fail%'
         AND ts >= TIMESTAMP '2025-04-01' AND ts < TIMESTAMP '2025-07-01' GROUP BY tenant ORDER BY 1",
    ),
    (
        "SELECT user AS a, count(*) AS b FROM data_usage WHERE action = 'export'
         GROUP BY user HAVING count(*) >= 3 ORDER BY b DESC, a LIMIT 20",
        "SELECT \"user\", count(*) FROM raw WHERE family = 'data_usage' AND action = 'export'
         GROUP BY \"user\" HAVING count(*) >= 3 ORDER BY 2 DESC, 1 LIMIT 20",
    ),
    (
        "SELECT event_id AS a, bytes AS b FROM events WHERE bytes IS NOT NULL ORDER BY bytes DESC, event_id LIMIT 10",
        "SELECT event_id, bytes FROM raw WHERE bytes IS NOT NULL ORDER BY bytes DESC, event_id LIMIT 10",
    ),
    (
        "SELECT event_id AS a, CAST(ts AS BIGINT) AS b FROM events ORDER BY ts DESC, event_id LIMIT 5",
        "SELECT event_id, epoch_us(ts) FROM raw ORDER BY ts DESC, event_id LIMIT 5",
    ),
    (
        "SELECT count(*) AS a, CAST(min(ts) AS BIGINT) AS b, CAST(max(ts) AS BIGINT) AS c,
                count(DISTINCT event_id) AS d FROM events",
        "SELECT count(*), epoch_us(min(ts)), epoch_us(max(ts)), count(DISTINCT event_id) FROM raw",
    ),
    (
        "SELECT attrs['country'] AS a, count(*) AS b FROM events WHERE attrs['country'] IS NOT NULL
         GROUP BY 1 ORDER BY 1",
        "SELECT json_extract_string(json, '$.attrs.country'), count(*) FROM raw
         WHERE json_extract_string(json, '$.attrs.country') IS NOT NULL GROUP BY 1 ORDER BY 1",
    ),
    (
        "SELECT attrs['mfa'] AS a, attrs['shift'] AS b, count(*) AS c FROM events GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT json_extract_string(json, '$.attrs.mfa'), json_extract_string(json, '$.shift'), count(*) FROM raw
         GROUP BY 1, 2 ORDER BY 1 NULLS LAST, 2 NULLS LAST",
    ),
    (
        "SELECT tenant AS a, outcome AS b, count(*) AS c FROM events WHERE tenant IN ('acme-health', 'globex-bank')
         AND ts BETWEEN '2025-02-01' AND '2025-02-28T23:59:59Z' GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT tenant, outcome, count(*) FROM raw WHERE tenant IN ('acme-health', 'globex-bank')
         AND ts BETWEEN TIMESTAMP '2025-02-01' AND TIMESTAMP '2025-02-28 23:59:59' GROUP BY 1, 2 ORDER BY 1, 2",
    ),
];

fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
        _ => a == b,
    }
}

#[test]
fn audit_queries_match_duckdb_over_the_raw_ndjson() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("year.ndjson");
    generate(
        &input,
        &[
            "--events",
            "60000",
            "--tenants",
            "8",
            "--days",
            "365",
            "--seed",
            "7",
            "--ts-format",
            "mixed",
        ],
    );
    let archive = dir.path().join("archive");
    // Small chunks: many commits and files per partition, then compaction.
    run_ok(
        strata(&archive)
            .args(["ingest", "--chunk-mib", "4"])
            .arg(&input),
    );
    let (files, partitions) = files_and_partitions(&archive);
    assert_eq!(
        files, partitions,
        "compaction leaves one file per partition"
    );

    let setup = raw_view(&input);
    for (strata_sql, duck_sql) in QUERIES {
        let theirs = duckdb(&format!("{setup}{duck_sql}"));
        assert!(
            !theirs.is_empty(),
            "{duck_sql} returned nothing: the test data does not exercise it"
        );
        // ndjson output leaves out null values, so read columns by their aliases.
        let aliases = &["a", "b", "c", "d", "e"][..theirs[0].len()];
        let ours: Vec<Vec<Value>> = query(&archive, strata_sql)
            .into_iter()
            .map(|row| {
                aliases
                    .iter()
                    .map(|k| row.get(*k).cloned().unwrap_or(Value::Null))
                    .collect()
            })
            .collect();
        assert_eq!(
            ours.len(),
            theirs.len(),
            "{strata_sql}\nstrata: {ours:?}\nduckdb: {theirs:?}"
        );
        for (a, b) in ours.iter().zip(&theirs) {
            assert!(
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y)),
                "{strata_sql}\nstrata: {a:?}\nduckdb: {b:?}"
            );
        }
    }
}

#[test]
fn duckdb_reads_the_archive_parquet_with_hive_partitioning() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.ndjson.gz");
    generate(
        &input,
        &[
            "--events",
            "20000",
            "--tenants",
            "5",
            "--days",
            "120",
            "--seed",
            "11",
        ],
    );
    let archive = dir.path().join("archive");
    run_ok(
        strata(&archive)
            .args(["ingest", "--no-compact", "--chunk-mib", "2"])
            .arg(&input),
    );

    let parquet = format!("{}/**/*.parquet", archive.display());
    let by_partition = duckdb(&format!(
        "SELECT tenant, family, month, count(*) FROM read_parquet('{parquet}', hive_partitioning = true)
         GROUP BY ALL ORDER BY ALL"
    ));
    let expected = duckdb(&format!(
        "{}SELECT tenant, family, strftime(ts, '%Y-%m'), count(*) FROM raw GROUP BY ALL ORDER BY ALL",
        raw_view(&input)
    ));
    assert_eq!(by_partition, expected);
    let total: u64 = by_partition.iter().map(|r| r[3].as_u64().unwrap()).sum();
    assert_eq!(total, 20000);
}

/// Issue 16 acceptance 4: shredded attributes (`attrs__<key>` columns) read
/// back whole through strata's SQL, and a reader without strata (DuckDB over
/// the Parquet files) finds every value in the map or in those columns.
#[test]
fn shredded_attributes_read_the_same_through_strata_and_duckdb() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("attrs.ndjson");
    let expected = attribute_events(&input, 12_000);
    let archive = dir.path().join("archive");
    // Several chunks per partition, merged by compaction: files are written
    // by ingest and then by a merge, each choosing its shredded keys.
    run_ok(
        strata(&archive)
            .args(["ingest", "--chunk-mib", "1"])
            .arg(&input),
    );
    let parquet = format!("{}/**/*.parquet", archive.display());
    let columns = duckdb(&format!(
        "SELECT DISTINCT name FROM parquet_schema('{parquet}') WHERE name LIKE 'attrs\\_\\_%' ESCAPE '\\' ORDER BY 1"
    ));
    let columns: Vec<&str> = columns.iter().map(|r| r[0].as_str().unwrap()).collect();
    assert_eq!(
        columns,
        ["attrs__channel", "attrs__http.method", "attrs__shift"],
        "frequent lower-case keys are shredded; rare and upper-case ones are not"
    );

    let triple = |row: &serde_json::Map<String, Value>| {
        let text = |k: &str| row[k].as_str().unwrap().to_string();
        (text("a"), text("b"), text("c"))
    };
    let through_strata: std::collections::BTreeSet<_> = query(
        &archive,
        "SELECT event_id AS a, k AS b, v AS c FROM
           (SELECT event_id, unnest(map_keys(attrs)) AS k, unnest(map_values(attrs)) AS v FROM events)",
    )
    .iter()
    .map(triple)
    .collect();
    assert_eq!(through_strata.len(), expected.len());
    assert!(
        through_strata == expected,
        "SELECT attrs differs from what was ingested"
    );

    let through_duckdb: std::collections::BTreeSet<_> = duckdb(&format!(
        "SELECT event_id, unnest(map_keys(attrs)), unnest(map_values(attrs))
           FROM read_parquet('{parquet}', union_by_name = true)
         UNION ALL
         SELECT event_id, substr(k, 8), v FROM (
           UNPIVOT (SELECT event_id, COLUMNS('^attrs__') FROM read_parquet('{parquet}', union_by_name = true))
           ON COLUMNS('^attrs__') INTO NAME k VALUE v)"
    ))
    .iter()
    .map(|r| {
        let text = |i: usize| r[i].as_str().unwrap().to_string();
        (text(0), text(1), text(2))
    })
    .collect();
    assert!(
        through_duckdb == expected,
        "DuckDB over the files misses or adds values"
    );

    // attrs['key'] on shredded, unshredded and absent keys, filtered and grouped.
    for key in [
        "channel",
        "http.method",
        "geo_city",
        "Case",
        "shift",
        "absent",
    ] {
        let mut counts = std::collections::BTreeMap::new();
        for (_, k, v) in &expected {
            if k == key {
                *counts.entry(v.clone()).or_insert(0u64) += 1;
            }
        }
        let rows = query(
            &archive,
            &format!(
                "SELECT attrs['{key}'] AS a, count(*) AS b FROM events
                 WHERE attrs['{key}'] IS NOT NULL GROUP BY 1 ORDER BY 1"
            ),
        );
        let ours: std::collections::BTreeMap<String, u64> = (rows.iter())
            .map(|r| {
                (
                    r["a"].as_str().unwrap().to_string(),
                    r["b"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(ours, counts, "attrs['{key}']");
    }
    let sms = expected
        .iter()
        .filter(|(_, k, v)| k == "channel" && v == "sms")
        .count();
    assert_eq!(
        count(
            &archive,
            "SELECT count(*) AS n FROM events WHERE attrs['channel'] = 'sms'"
        ),
        sms as u64
    );
}

/// Python with pyspark (Debian's OpenJDK runs it): `STRATA_TEST_SPARK_PYTHON`
/// (set by `scripts/test.sh`), else `.venv-spark/bin/python` in the checkout.
fn spark_python() -> PathBuf {
    let python = std::env::var_os("STRATA_TEST_SPARK_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-spark/bin/python"));
    let ok = Command::new(&python)
        .args(["-c", "import pyspark"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "Python with pyspark (and a Java 17 runtime) is needed by this test and was not found \
         at {}: run `scripts/test.sh`, which installs them, or set STRATA_TEST_SPARK_PYTHON",
        python.display()
    );
    python
}

/// Issue 16 acceptance 4: Apache Spark (local mode, the files read as a
/// Spark user without strata would) sees `bytes` and `records` as `bigint`
/// with strata's sums, and every attribute in `attrs` or `attrs__<key>`.
#[test]
fn spark_reads_counts_as_bigint_and_every_attribute() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("attrs.ndjson");
    let expected = attribute_events(&input, 6_000);
    let archive = dir.path().join("archive");
    run_ok(strata(&archive).args(["ingest", "--quiet"]).arg(&input));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/spark_reader.py");
    let out = Command::new(spark_python())
        .arg(script)
        .arg(&archive)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "Spark failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let spark: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(spark["types"]["bytes"], "bigint");
    assert_eq!(spark["types"]["records"], "bigint");
    assert_eq!(spark["types"]["attrs__channel"], "string");
    let ours = &query(
        &archive,
        "SELECT count(*) AS a, sum(bytes) AS b, sum(records) AS c FROM events",
    )[0];
    assert_eq!(spark["rows"], ours["a"]);
    assert_eq!(spark["bytes"], ours["b"]);
    assert_eq!(spark["records"], ours["c"]);
    let triples: Vec<[String; 3]> = serde_json::from_value(spark["attributes"].clone()).unwrap();
    let expected: Vec<[String; 3]> = expected.into_iter().map(|(e, k, v)| [e, k, v]).collect();
    assert!(
        triples == expected,
        "Spark finds other attributes than were ingested"
    );
}
