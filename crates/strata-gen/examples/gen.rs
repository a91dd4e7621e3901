//! Writes synthetic events to stdout, or measures throughput.
//!
//! `cargo run --release -p strata-gen --example gen -- [EVENTS] [SEED] [--bench]`
//!
//! With `--bench` the output goes to a sink and the rate is printed to stderr.

use std::io::{self, Write};
use std::time::Instant;

use strata_gen::{GenConfig, generate};

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bench = args.iter().any(|a| a == "--bench");
    let mut nums = args.iter().filter_map(|a| a.parse::<u64>().ok());
    let config = GenConfig {
        events: nums.next().unwrap_or(1_000),
        seed: nums.next().unwrap_or(42),
        ..GenConfig::default()
    };
    let started = Instant::now();
    let summary = if bench {
        generate(&config, io::sink())?
    } else {
        let stdout = io::stdout().lock();
        let summary = generate(&config, stdout)?;
        io::stdout().flush()?;
        summary
    };
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{} events, {} bytes in {:.3} s: {:.0} MB/s, {:.0} events/s",
        summary.events,
        summary.bytes,
        secs,
        summary.bytes as f64 / secs / 1e6,
        summary.events as f64 / secs
    );
    Ok(())
}
