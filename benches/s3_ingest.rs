//! Ingest rate into S3 against the local folder, measured side by side:
//! serves a temporary folder as S3 over real HTTP (in-process `s3s-fs`),
//! then runs the release `strata ingest` of one input into a fresh local
//! archive and a fresh bucket prefix, alternating, and prints the medians.
//!
//! `cargo bench --bench s3_ingest -- INPUT [REPS]`; benches/harness.py runs
//! it on the benchmark's input and puts the result in its report. Under
//! `cargo test` it ingests a small generated input both ways and checks
//! that both archives hold every event.
//!
//! `cargo bench --bench s3_ingest -- --writers N INPUT` measures many writers
//! instead: N concurrent `strata ingest` processes commit INPUT's lines, cut
//! into 25 pieces per writer, first one piece per commit, then each writer's
//! pieces as one input (group commit), and prints commits per second, files
//! per commit and events per second on the folder and on S3.

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

/// Pieces each writer commits one by one.
const PIECES_PER_WRITER: usize = 25;

/// `input`'s lines cut into `PIECES_PER_WRITER` pieces per writer: for each
/// writer, its pieces one by one, or joined into one input.
fn pieces(dir: &Path, input: &Path, writers: usize, joined: bool) -> Vec<Vec<PathBuf>> {
    let text = std::fs::read_to_string(input).expect("an NDJSON input");
    let lines: Vec<&str> = text.lines().collect();
    let per_piece = lines.len().div_ceil(writers * PIECES_PER_WRITER);
    let mut pieces = vec![Vec::new(); writers];
    for (n, piece) in lines.chunks(per_piece).enumerate() {
        pieces[n % writers].push(piece.join("\n") + "\n");
    }
    (pieces.into_iter().enumerate())
        .map(|(w, texts)| {
            let texts = match joined {
                true => vec![texts.concat()],
                false => texts,
            };
            (texts.iter().enumerate())
                .map(|(i, text)| {
                    let path = dir.join(format!("writer-{w}-{joined}-{i}.ndjson"));
                    std::fs::write(&path, text).expect("write a piece");
                    path
                })
                .collect()
        })
        .collect()
}

/// Runs each writer's ingests at once, one process at a time per writer;
/// returns the wall time in seconds.
fn race(command: &(dyn Fn() -> Command + Sync), pieces: &[Vec<PathBuf>]) -> f64 {
    let started = Instant::now();
    std::thread::scope(|scope| {
        for inputs in pieces {
            scope.spawn(move || {
                for input in inputs {
                    let input = input.to_string_lossy();
                    run(command(), &["ingest", "--quiet", "--no-compact", &input]);
                }
            });
        }
    });
    started.elapsed().as_secs_f64()
}

/// Commits in the log under `root` and the files they added.
fn commits_and_files(root: &Path) -> (usize, usize) {
    let log = root.join("_strata/log");
    let entries: Vec<serde_json::Value> = std::fs::read_dir(&log)
        .expect("a catalog log")
        .map(|e| std::fs::read(e.expect("an entry").path()).expect("read an entry"))
        .map(|bytes| serde_json::from_slice(&bytes).expect("an entry"))
        .collect();
    let files = (entries.iter())
        .map(|e| e["add"].as_array().map_or(0, Vec::len))
        .sum();
    (entries.len(), files)
}

fn many_writers(setup: &Setup, writers: usize, input: &Path) {
    let events = std::fs::read_to_string(input)
        .expect("input")
        .lines()
        .count() as f64;
    for joined in [false, true] {
        let pieces = pieces(setup.dir.path(), input, writers, joined);
        let name = format!("writers-{joined}");
        for place in ["folder", "s3"] {
            let (command, root): (&(dyn Fn() -> Command + Sync), PathBuf) = match place {
                "folder" => (&|| setup.local(&name), setup.dir.path().join(&name)),
                _ => (
                    &|| setup.s3(&name),
                    setup.dir.path().join("s3").join(BUCKET).join(&name),
                ),
            };
            let seconds = race(command, &pieces);
            let (commits, files) = commits_and_files(&root);
            println!(
                "{place} | {writers} writers | {} | {commits} commits in {seconds:.1} s | {:.1} commits/s | {:.1} files/commit | {:.0} events/s",
                match joined {
                    true => "one commit per writer",
                    false => "one commit per piece",
                },
                commits as f64 / seconds,
                files as f64 / commits as f64,
                events / seconds
            );
        }
        setup.clear(&name);
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
    if args.first().is_some_and(|a| *a == "--writers") {
        let writers = args.get(1).and_then(|n| n.parse().ok());
        let input = args.get(2).map(PathBuf::from);
        let (Some(writers), Some(input)) = (writers, input) else {
            panic!("usage: s3_ingest --writers N INPUT");
        };
        many_writers(&setup, writers, &input);
        return;
    }
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
