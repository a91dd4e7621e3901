//! The server on S3 while the store misbehaves: answering 503 SlowDown,
//! going silent past the client's timeout, resetting connections, losing
//! the answers of requests it carried out. Each
//! fault lasts three seconds under a steady sender. Requests wait or are
//! refused with 503 and `Retry-After`, never acknowledged and lost; the
//! server catches up once the store recovers. Included by tests/serve.rs.

use std::sync::atomic::{AtomicBool, Ordering};

use super::*;
use crate::faulty_proxy::{Fault, FaultyProxy};
use crate::s3_server::start_s3;

const BUCKET: &str = "audit-logs";

/// What the sender was told.
#[derive(Default)]
struct Told {
    /// Events acknowledged.
    acknowledged: u64,
    /// Of them, acknowledged after the last fault ended.
    after_recovery: u64,
    /// Requests refused with 429 or 503 and `Retry-After`.
    refused: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_faults_are_retried_and_back_pressured_and_nothing_acknowledged_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("s3");
    std::fs::create_dir_all(root.join(BUCKET)).unwrap();
    let s3 = start_s3(&root, S3_KEY, S3_SECRET).await;
    let proxy = FaultyProxy::start(s3).await;
    tokio::task::spawn_blocking(move || {
        let url = format!("s3://{BUCKET}/prod");
        let mut add = on_s3(&url, s3);
        add.args(["users", "add", "shipper", "--role", "ingest"]);
        let shipper = run_ok(&mut add).lines().last().unwrap().to_string();
        let mut through_proxy = on_s3(&url, proxy.addr);
        // A silent store is given up on after 2 s instead of the default 30 s.
        through_proxy.env("AWS_TIMEOUT", "2s");
        let server = ServerProcess::start_with(through_proxy, &FREQUENT_WRITE_OUTS);

        let recovered = AtomicBool::new(false);
        let sending = AtomicBool::new(true);
        let told = std::thread::scope(|scope| {
            let sender =
                scope.spawn(|| send_until_stopped(&server, &shipper, &sending, &recovered));
            std::thread::sleep(Duration::from_millis(1500));
            for fault in [
                Fault::SlowDown,
                Fault::Silence,
                Fault::Reset,
                Fault::LostAnswer,
            ] {
                proxy.set(fault);
                std::thread::sleep(Duration::from_secs(3));
                proxy.set(Fault::None);
                std::thread::sleep(Duration::from_millis(1500));
            }
            recovered.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_secs(3));
            sending.store(false, Ordering::SeqCst);
            sender.join().unwrap()
        });
        assert!(server.terminate().success(), "a clean stop after recovery");
        assert!(told.refused > 0, "no request was refused under the faults");
        assert!(
            told.after_recovery > 0,
            "nothing acknowledged after recovery"
        );

        let sql = "SELECT count(*) AS n, count(DISTINCT event_id) AS ids FROM events";
        let out = run_ok(on_s3(&url, s3).args(["sql", "--format", "ndjson", sql]));
        let row: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
        let acknowledged = Some(told.acknowledged);
        assert_eq!(
            (row["n"].as_u64(), row["ids"].as_u64()),
            (acknowledged, acknowledged)
        );
        assert_eq!(wal_segments(&root.join(BUCKET).join("prod"), "n1"), 0);
        let report = run_ok(on_s3(&url, s3).args(["verify", "--deep"]));
        assert!(report.contains("result:     intact"), "{report}");
    })
    .await
    .unwrap();
}

/// Sends batches of 50 events with unique ids until `sending` is cleared,
/// counting what the server answered; a refused batch is not sent again.
fn send_until_stopped(
    server: &ServerProcess,
    shipper: &str,
    sending: &AtomicBool,
    recovered: &AtomicBool,
) -> Told {
    let mut told = Told::default();
    let mut n = 0;
    while sending.load(Ordering::SeqCst) {
        let after_recovery = recovered.load(Ordering::SeqCst);
        let response = server.post(
            "/v1/events",
            shipper,
            batch(&format!("b{n}"), 50).as_bytes(),
        );
        n += 1;
        match response.status {
            200 => {
                let accepted = response.json()["accepted"].as_u64().unwrap();
                assert_eq!(accepted, 50, "{}", response.text());
                told.acknowledged += accepted;
                if after_recovery {
                    told.after_recovery += accepted;
                }
            }
            429 | 503 => {
                assert!(
                    response.header("retry-after").is_some(),
                    "{}",
                    response.text()
                );
                told.refused += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            status => panic!("{status}: {}", response.text()),
        }
    }
    told
}
