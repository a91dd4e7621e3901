//! Acceptance 2: the same ingest and queries against a real S3 server over
//! HTTP, an in-process `s3s-fs` serving a temporary folder.

mod common;

#[path = "common/s3_server.rs"]
mod s3_server;

use std::net::SocketAddr;
use std::process::Command;

use common::*;
use s3_server::start_s3;

const BUCKET: &str = "audit-logs";

fn on_s3(addr: SocketAddr) -> Command {
    common::on_s3(&format!("s3://{BUCKET}/prod"), addr)
}

fn rows(cmd: &mut Command) -> String {
    run_ok(cmd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_and_query_through_a_real_s3_server() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s3");
    std::fs::create_dir_all(root.join(BUCKET)).unwrap();
    let addr = start_s3(&root, S3_KEY, S3_SECRET).await;

    let input = dir.path().join("events.ndjson.zst");
    generate(
        &input,
        &[
            "--events",
            "15000",
            "--tenants",
            "4",
            "--days",
            "60",
            "--seed",
            "3",
        ],
    );
    let local = dir.path().join("local");

    let input2 = input.clone();
    let local2 = local.clone();
    let witness = root.join(BUCKET).join("witness");
    tokio::task::spawn_blocking(move || {
        // Checkpoints are also copied to a witness prefix of the bucket.
        run_ok(
            on_s3(addr)
                .env("STRATA_WITNESS", format!("s3://{BUCKET}/witness"))
                .args(["ingest", "--chunk-mib", "1"])
                .arg(&input2),
        );
        run_ok(strata(&local2).args(["ingest", "--chunk-mib", "1"]).arg(&input2));

        // Same answers from the bucket as from the local folder.
        for sql in [
            "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM events",
            "SELECT tenant, family, count(*) AS n, sum(bytes) AS b FROM events GROUP BY 1, 2 ORDER BY 1, 2",
            "SELECT user, count(*) AS n FROM access WHERE action = 'login_failed' AND ts >= '2025-01-15' \
             AND ts < '2025-02-01' GROUP BY user ORDER BY n DESC, user LIMIT 5",
        ] {
            let remote = rows(on_s3(addr).args(["sql", "--format", "csv", sql]));
            let here = rows(strata(&local2).args(["sql", "--format", "csv", sql]));
            assert_eq!(remote, here, "{sql}");
            assert!(remote.lines().count() > 1, "{sql} returned no rows");
        }
        let remote_count = rows(on_s3(addr).args(["sql", "--format", "csv", "SELECT count(*) AS n FROM events"]));
        assert_eq!(remote_count.lines().nth(1), Some("15000"));

        // Exactly once on S3 too.
        let again = run_expect(on_s3(addr).arg("ingest").arg(&input2), 0);
        assert!(String::from_utf8_lossy(&again.stderr).contains("already ingested"));

        // The bucket verifies clean against its witness's latest checkpoint.
        let report = run_ok(
            on_s3(addr)
                .args(["verify", "--deep", "--trusted"])
                .arg(witness.join("latest.note")),
        );
        assert!(report.contains("result:     intact"), "{report}");
    })
    .await
    .unwrap();

    // The objects really are in the bucket, under the prefix, Hive-style.
    let stored = files_under(&root.join(BUCKET).join("prod"));
    let rel: Vec<String> = stored
        .iter()
        .map(|p| {
            p.strip_prefix(root.join(BUCKET).join("prod"))
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert!(rel.iter().any(|p| p.starts_with("_strata/log/")), "{rel:?}");
    assert!(
        rel.iter().any(|p| p.starts_with("tenant=")
            && p.contains("/family=")
            && p.contains("/month=2025-0")
            && p.ends_with(".parquet")),
        "{rel:?}"
    );
}
