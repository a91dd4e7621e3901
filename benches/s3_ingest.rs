//! Ingest rate into S3 against the local folder, measured side by side:
//! serves a temporary folder as S3 over real HTTP (in-process `s3s-fs`),
//! then runs the release `strata ingest` of one input into a fresh local
//! archive and a fresh bucket prefix, alternating, and prints the medians.
//!
//! `cargo bench --bench s3_ingest -- INPUT [REPS]`; benches/harness.py runs
//! it on the benchmark's input and puts the result in its report. Under
//! `cargo test` it ingests a small generated input both ways and checks
//! that both archives hold every event.

#[path = "../tests/common/s3_server.rs"]
mod s3_server;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use s3_server::start_s3;

const BUCKET: &str = "bench";
const KEY: &str = "strata-bench-key";
const SECRET: &str = "strata-bench-secret";

/// The strata binary cargo built with this bench (release under `cargo bench`).
const STRATA: &str = env!("CARGO_BIN_EXE_strata");

/// A bucket served over HTTP on loopback, and a keyring, in a temporary folder.
struct Setup {
    dir: tempfile::TempDir,
    addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

impl Setup {
    fn start() -> Setup {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("s3").join(BUCKET)).expect("bucket");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let addr = runtime.block_on(start_s3(&dir.path().join("s3"), KEY, SECRET));
        Setup {
            dir,
            addr,
            _runtime: runtime,
        }
    }

    /// `strata` with the keyring and `--archive` set to the local folder `name`.
    fn local(&self, name: &str) -> Command {
        let mut command = Command::new(STRATA);
        command
            .env("STRATA_KEYRING", self.dir.path().join("keyring.json"))
            .arg("--archive")
            .arg(self.dir.path().join(name));
        command
    }

    /// `strata` with the keyring and `--archive` set to the bucket prefix `name`.
    fn s3(&self, name: &str) -> Command {
        let mut command = Command::new(STRATA);
        command
            .env("STRATA_KEYRING", self.dir.path().join("keyring.json"))
            .env("AWS_ENDPOINT_URL", format!("http://{}", self.addr))
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_ACCESS_KEY_ID", KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .args(["--archive", &format!("s3://{BUCKET}/{name}")]);
        command
    }

    /// Removes what one run stored locally and in the bucket.
    fn clear(&self, name: &str) {
        for path in [
            self.dir.path().join(name),
            self.dir.path().join("s3").join(BUCKET).join(name),
        ] {
            std::fs::remove_dir_all(&path).expect("remove a run's archive");
        }
    }
}

/// Runs `strata` with `args` and returns its standard output.
fn run(mut command: Command, args: &[&str]) -> String {
    let output = command.args(args).output().expect("run strata");
    assert!(
        output.status.success(),
        "strata {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// Runs one ingest and returns its wall time in seconds.
fn timed_ingest(command: Command, input: &Path) -> f64 {
    let started = Instant::now();
    run(command, &["ingest", "--quiet", &input.to_string_lossy()]);
    started.elapsed().as_secs_f64()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Under `cargo test` (no `--bench`): a small input goes through both paths
/// and both archives must answer with every event.
fn smoke_test(setup: &Setup) {
    let input = setup.dir.path().join("small.ndjson");
    run(
        Command::new(STRATA),
        &["gen", "--events", "2000", "-o", &input.to_string_lossy()],
    );
    timed_ingest(setup.local("smoke"), &input);
    timed_ingest(setup.s3("smoke"), &input);
    let count = "SELECT count(*) AS n FROM events";
    for command in [setup.local("smoke"), setup.s3("smoke")] {
        let csv = run(command, &["sql", "--format", "csv", count]);
        assert_eq!(csv.lines().nth(1), Some("2000"), "{csv}");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let setup = Setup::start();
    if !args.iter().any(|a| a == "--bench") {
        smoke_test(&setup);
        return;
    }
    let args: Vec<&String> = args.iter().filter(|a| *a != "--bench").collect();
    let input = PathBuf::from(args.first().expect("usage: s3_ingest INPUT [REPS]"));
    let reps: usize = args
        .get(1)
        .map_or(3, |r| r.parse().expect("REPS is a number"));
    let (mut local, mut s3) = (Vec::new(), Vec::new());
    for rep in 0..reps {
        let name = format!("run-{rep}");
        local.push(timed_ingest(setup.local(&name), &input));
        s3.push(timed_ingest(setup.s3(&name), &input));
        setup.clear(&name);
    }
    let bytes = std::fs::metadata(&input).expect("input").len() as f64;
    let (local, s3) = (median(local), median(s3));
    println!(
        "local {local:.2} s {:.1} MB/s | s3 {s3:.2} s {:.1} MB/s | s3/local {:.2}",
        bytes / 1e6 / local,
        bytes / 1e6 / s3,
        local / s3
    );
}
