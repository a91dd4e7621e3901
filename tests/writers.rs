//! Issue 15, acceptance 3: many writers on one archive. Eight writers, each
//! with its own signing key, make 50 ingest commits each into one archive
//! while also compacting and running retention (which marks and sweeps the
//! partitions it expires); two of them race on the same input. The final
//! state equals a serial run of the same commands, the log is one linear
//! hash chain, and `strata verify` is clean: on a local folder and on the
//! in-process S3 server (which, like S3, lets one of several racing
//! create-only writes win).

mod common;

#[path = "common/s3_server.rs"]
mod s3_server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

const WRITERS: usize = 8;
const INGESTS_PER_WRITER: usize = 50;
const EVENTS_PER_INPUT: usize = 60;
/// Retention's clock: January's events (1-20) are past their 30 days,
/// February's (10-28) are not.
const NOW: &str = "2025-03-01";
const POLICY: &str = r#"
grace = "0d"

[[rule]]
tenant = "*"
family = "*"
presets = ["gdpr"]
expire_after = "30d"
"#;
const BUCKET: &str = "race";
/// Writers' leases: long enough that eight processes on two cores renew in time.
const LEASE_SECS: &str = "60";

/// What one writer does, in order.
enum Step {
    Ingest(PathBuf),
    Compact,
    Retention,
}

/// Where the archive is: a folder, or a prefix of the test S3 server.
#[derive(Clone)]
enum Place {
    Folder(PathBuf),
    S3(std::net::SocketAddr),
}

impl Place {
    /// A `strata` command on the archive, signing with `keyring`.
    fn strata(&self, keyring: &Path) -> Command {
        let mut cmd = match self {
            Place::Folder(archive) => strata(archive),
            Place::S3(addr) => on_s3(&format!("s3://{BUCKET}/archive"), *addr),
        };
        cmd.env("STRATA_KEYRING", keyring)
            .env("STRATA_WRITER_LEASE_SECS", LEASE_SECS);
        cmd
    }
}

/// Runs one step; `Err` carries the output of a command that failed.
fn run_step(place: &Place, keyring: &Path, actor: &str, step: &Step) -> Result<(), Output> {
    let mut cmd = place.strata(keyring);
    cmd.env("STRATA_ACTOR", actor);
    match step {
        Step::Ingest(input) => cmd.args(["ingest", "--quiet", "--no-compact"]).arg(input),
        Step::Compact => cmd.arg("compact"),
        Step::Retention => cmd.args(["retention", "run", "--quiet", "--now", NOW]),
    };
    let out = cmd.output().expect("strata runs");
    match out.status.success() {
        true => Ok(()),
        false => Err(out),
    }
}

fn describe(out: &Output) -> String {
    use std::os::unix::process::ExitStatusExt;
    format!(
        "exit {:?}, signal {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        out.status.signal(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The inputs, `INGESTS_PER_WRITER` per writer, cut from generated events
/// in time order and dealt round-robin, so that every writer appends into
/// January and February while the others expire January. Writer 1's first
/// input is also writer 0's: the two race to ingest it.
fn inputs(dir: &Path) -> Vec<Vec<PathBuf>> {
    let half = (WRITERS * INGESTS_PER_WRITER * EVENTS_PER_INPUT / 2).to_string();
    let mut lines = String::new();
    // January 1-20 and February 10-28: whatever part of each has arrived,
    // January is past its 30 days at `NOW` and February is not, so
    // retention decides the same in any order of the commits.
    for (start, days, seed) in [("2025-01-01", "20", "15"), ("2025-02-10", "19", "16")] {
        let path = dir.join(format!("from-{start}.ndjson"));
        generate(
            &path,
            &[
                "--events",
                &half,
                "--tenants",
                "2",
                "--start",
                start,
                "--days",
                days,
                "--order",
                "sorted",
                "--seed",
                seed,
            ],
        );
        lines += &std::fs::read_to_string(&path).unwrap();
    }
    let lines: Vec<&str> = lines.lines().collect();
    let mut inputs = vec![Vec::new(); WRITERS];
    for (n, chunk) in lines.chunks(EVENTS_PER_INPUT).enumerate() {
        let path = dir.join(format!("input-{n:04}.ndjson"));
        std::fs::write(&path, chunk.join("\n") + "\n").unwrap();
        inputs[n % WRITERS].push(path);
    }
    inputs[1][0] = inputs[0][0].clone();
    inputs
}

/// Writer `w`'s steps: its ingests, a compaction after every 12th and a
/// retention run after every 16th, shifted per writer so they interleave.
fn steps(inputs: &[PathBuf], w: usize) -> Vec<Step> {
    let mut steps = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        steps.push(Step::Ingest(input.clone()));
        if (i + w) % 12 == 11 {
            steps.push(Step::Compact);
        }
        if (i + 2 * w) % 16 == 15 {
            steps.push(Step::Retention);
        }
    }
    steps
}

/// Writer `w`'s keyring, in `dir`.
fn keyring_of(dir: &Path, w: usize) -> PathBuf {
    dir.join(format!("writer-{w}-keyring.json"))
}

/// Makes the archive with writer 0's key, sets the policy and trusts the
/// other writers' keys.
fn set_up(place: &Place, dir: &Path, policy: &Path) {
    let root = keyring_of(dir, 0);
    set_policy(place, &root, policy);
    for w in 1..WRITERS {
        let key = run_ok(place.strata(&keyring_of(dir, w)).args(["keys", "show"]));
        let key = key.lines().next().unwrap().trim().to_string();
        run_ok(
            place
                .strata(&root)
                .args(["keys", "trust", &key, "--reason"])
                .arg(format!("writer {w}")),
        );
    }
}

/// Every writer runs its steps at once, each in its own thread of processes.
fn race(place: &Place, dir: &Path, inputs: &[Vec<PathBuf>]) {
    std::thread::scope(|scope| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let steps = steps(&inputs[w], w);
                let keyring = keyring_of(dir, w);
                scope.spawn(move || {
                    for (i, step) in steps.iter().enumerate() {
                        if let Err(out) = run_step(place, &keyring, &format!("writer-{w}"), step) {
                            let stderr = String::from_utf8_lossy(&out.stderr);
                            // Of the two writers sharing an input, the one that loses the
                            // race is told so and ingests nothing.
                            let lost_shared = w <= 1
                                && i == 0
                                && stderr.contains("was advanced to line")
                                && stderr.contains("by another ingest");
                            assert!(lost_shared, "writer {w}, step {i}: {}", describe(&out));
                        }
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
    });
}

/// Makes the archive (signed with `keyring`'s key) and sets the policy.
fn set_policy(place: &Place, keyring: &Path, policy: &Path) {
    if let Place::Folder(archive) = place {
        std::fs::create_dir_all(archive).unwrap();
    }
    run_ok(
        place
            .strata(keyring)
            .args(["retention", "policy", "set"])
            .arg(policy)
            .args(["--reason", "serial run"]),
    );
}

/// Settles an archive as every run ends: a last retention run and compaction.
fn settle(place: &Place, keyring: &Path) {
    for step in [Step::Retention, Step::Compact] {
        if let Err(out) = run_step(place, keyring, "settle", &step) {
            panic!("settling: {}", describe(&out));
        }
    }
}

/// What queries see, per partition: rows, distinct events and bytes.
const STATE: &str = "SELECT tenant, family, date_trunc('month', ts) AS month, count(*) AS n, \
     count(DISTINCT event_id) AS events, sum(bytes) AS bytes FROM events GROUP BY 1, 2, 3 ORDER BY 1, 2, 3";

fn state(place: &Place, keyring: &Path) -> String {
    run_ok(
        place
            .strata(keyring)
            .args(["sql", "--format", "csv", STATE]),
    )
}

/// The catalog log of the archive whose files are in `root`: its entries in
/// order, which must be numbered 1..=n without gaps.
fn log_entries(root: &Path) -> Vec<serde_json::Value> {
    let log = root.join("_strata/log");
    let mut names: Vec<String> = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            assert_eq!(name, &format!("{:020}.json", i + 1), "the log has no gaps");
            serde_json::from_slice(&std::fs::read(log.join(name)).unwrap()).unwrap()
        })
        .collect()
}

/// Checks the raced archive (files in `root`) against the serial run's
/// state; returns its log.
fn check(place: &Place, root: &Path, dir: &Path, serial_state: &str) -> Vec<serde_json::Value> {
    let keyring = keyring_of(dir, 0);
    settle(place, &keyring);
    assert_eq!(
        state(place, &keyring),
        serial_state,
        "same state as the serial run"
    );

    let entries = log_entries(root);
    let mut chain = strata_store::GENESIS_HASH.to_string();
    let log = root.join("_strata/log");
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(entry["prev"], chain.as_str(), "entry {} chains", i + 1);
        let bytes = std::fs::read(log.join(format!("{:020}.json", i + 1))).unwrap();
        chain = strata_store::sha256_hex(&bytes);
    }
    for w in 0..WRITERS {
        let ingests = (entries.iter())
            .filter(|e| e["actor"] == format!("writer-{w}").as_str() && e["operation"] == "ingest")
            .count();
        // Writers 0 and 1 shared one input: one of them ingested it.
        let expected = INGESTS_PER_WRITER - usize::from(w <= 1);
        assert!(
            ingests >= expected,
            "writer {w} made {ingests} ingest commits"
        );
    }
    let operations: std::collections::BTreeSet<&str> = entries
        .iter()
        .filter_map(|e| e["operation"].as_str())
        .collect();
    for operation in ["ingest", "compact", "expire-mark", "expire"] {
        assert!(
            operations.contains(operation),
            "no {operation} commit: {operations:?}"
        );
    }

    let out = place.strata(&keyring).arg("verify").output().unwrap();
    assert!(out.status.success(), "verify: {}", describe(&out));
    entries
}

/// The serial run first, then the race on a local folder and on S3, one at
/// a time (two races at once would be sixteen writers on two cores).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_writers_end_as_a_serial_run_on_a_folder_and_on_s3() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let inputs = inputs(&dir);
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();

    let serial_archive = Place::Folder(dir.join("serial"));
    let serial_keyring = dir.join("serial-keyring.json");
    set_policy(&serial_archive, &serial_keyring, &policy);
    for (w, inputs) in inputs.iter().enumerate() {
        for step in steps(inputs, w) {
            if let Err(out) = run_step(&serial_archive, &serial_keyring, "serial", &step) {
                panic!("serial run: {}", describe(&out));
            }
        }
    }
    settle(&serial_archive, &serial_keyring);
    let serial_state = state(&serial_archive, &serial_keyring);
    assert!(serial_state.lines().count() > 3, "{serial_state}");
    assert!(
        !serial_state.contains("2025-01"),
        "January expired: {serial_state}"
    );

    let s3_root = dir.join("s3");
    std::fs::create_dir_all(s3_root.join(BUCKET)).unwrap();
    let s3 = Place::S3(s3_server::start_s3(&s3_root, S3_KEY, S3_SECRET).await);
    tokio::task::spawn_blocking(move || {
        let folder = dir.join("raced");
        let places = [
            (Place::Folder(folder.clone()), folder, dir.join("folder-keys")),
            (s3, s3_root.join(BUCKET).join("archive"), dir.join("s3-keys")),
        ];
        for (place, root, keys) in places {
            std::fs::create_dir_all(&keys).unwrap();
            set_up(&place, &keys, &policy);
            let started = std::time::Instant::now();
            race(&place, &keys, &inputs);
            let seconds = started.elapsed().as_secs_f64();
            let entries = check(&place, &root, &keys, &serial_state);
            // For the record (speed is measured in benches/, not asserted here).
            let raced: Vec<_> = (entries.iter())
                .filter(|e| e["actor"].as_str().is_some_and(|a| a.starts_with("writer-")))
                .collect();
            let files: usize = (raced.iter())
                .map(|e| e["add"].as_array().map_or(0, Vec::len))
                .sum();
            eprintln!(
                "{}: {} commits by {WRITERS} writers in {seconds:.1} s ({:.1}/s), {:.1} files added per commit",
                root.display(),
                raced.len(),
                raced.len() as f64 / seconds,
                files as f64 / raced.len() as f64
            );
        }
    })
    .await
    .unwrap();
}
