//! Timestamp stream: seasonal, exact in count, bounded in memory.
//!
//! See the crate docs for the scheme. Only integer arithmetic and integer
//! random draws are used here, so the stream is identical on every platform.

use std::io;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::text::{DAY_MS, HOUR_MS, mix};

/// Relative event volume per UTC hour of day: office hours dominate, with a
/// smaller night shift (about 18 % of events fall before 08:00 or from 19:00).
const HOUR_WEIGHTS: [u64; 24] = [
    2, 1, 1, 1, 1, 2, 4, 7, 12, 16, 18, 18, 14, 17, 18, 17, 15, 12, 8, 5, 4, 3, 3, 2,
];

/// Relative event volume per weekday, Monday first.
const WEEKDAY_WEIGHTS: [u64; 7] = [10, 10, 10, 10, 10, 4, 3];

/// Largest bucket whose offsets are sorted in memory; denser buckets are
/// split further, so this bounds the buffer.
const SORT_CAP: u64 = 1 << 16;

const MINUTE_MS: i64 = 60_000;

/// Random stream ids, so the timeline, the shuffle window and the event
/// contents draw from independent ChaCha streams of the same seed.
pub(crate) const STREAM_TIMELINE: u64 = 1;
pub(crate) const STREAM_SHUFFLE: u64 = 2;
pub(crate) const STREAM_EVENTS: u64 = 3;

/// Creates the ChaCha8 stream `stream` of `seed`.
pub(crate) fn rng_for(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

/// Produces `events` non-decreasing timestamps (epoch ms) in
/// `[start_ms, start_ms + days * DAY_MS)`.
pub(crate) struct Timeline {
    rng: ChaCha8Rng,
    seed: u64,
    start_ms: i64,
    buckets: u64,
    events: u64,
    /// Reused buffer of offsets being sorted (at most `SORT_CAP`).
    offsets: Vec<u32>,
    /// Largest bucket sorted in memory (`SORT_CAP`; lowered by tests).
    sort_cap: u64,
    /// Per-millisecond counts for a minute denser than `SORT_CAP`;
    /// allocated only if needed.
    histogram: Vec<u64>,
}

impl Timeline {
    pub(crate) fn new(seed: u64, start_ms: i64, days: u32, events: u64) -> Self {
        Timeline {
            rng: rng_for(seed, STREAM_TIMELINE),
            seed,
            start_ms,
            buckets: u64::from(days) * 24,
            events,
            sort_cap: SORT_CAP,
            offsets: Vec::new(),
            histogram: Vec::new(),
        }
    }

    /// Integer weight of hourly bucket `b`: hour-of-day x weekday x jitter in
    /// [750, 1250] so that equal hours of different days differ a little.
    fn weight(&self, b: u64) -> u64 {
        let t = self.start_ms + b as i64 * HOUR_MS;
        let hour = t.div_euclid(HOUR_MS).rem_euclid(24) as usize;
        // 1970-01-01 was a Thursday (index 3 with Monday = 0).
        let weekday = (t.div_euclid(DAY_MS) + 3).rem_euclid(7) as usize;
        let jitter = 750 + mix(self.seed ^ b.wrapping_mul(0xA24B_AED4_963E_E407)) % 501;
        HOUR_WEIGHTS[hour] * WEEKDAY_WEIGHTS[weekday] * jitter
    }

    /// Calls `emit` once per timestamp, in non-decreasing order.
    pub(crate) fn run(&mut self, emit: &mut impl FnMut(i64) -> io::Result<()>) -> io::Result<()> {
        // First pass only sums weights (O(buckets) time, O(1) memory).
        let total: u64 = (0..self.buckets).map(|b| self.weight(b)).sum();
        let mut cumulative = 0u64;
        let mut emitted = 0u64;
        for b in 0..self.buckets {
            cumulative += self.weight(b);
            // Cumulative rounding: deterministic, and the last bucket lands
            // exactly on `events`.
            let target =
                (u128::from(self.events) * u128::from(cumulative) / u128::from(total)) as u64;
            let n = target - emitted;
            emitted = target;
            if n > 0 {
                self.emit_hour(self.start_ms + b as i64 * HOUR_MS, n, emit)?;
            }
        }
        debug_assert_eq!(emitted, self.events);
        Ok(())
    }

    fn emit_hour(
        &mut self,
        base: i64,
        n: u64,
        emit: &mut impl FnMut(i64) -> io::Result<()>,
    ) -> io::Result<()> {
        if n <= self.sort_cap {
            return self.emit_sorted(base, HOUR_MS as u32, n, emit);
        }
        // Too dense to sort at once: distribute over minutes (a multinomial
        // draw into 60 counters), then handle each minute on its own.
        let mut per_minute = [0u64; 60];
        for _ in 0..n {
            per_minute[self.rng.random_range(0..60u32) as usize] += 1;
        }
        for (m, &count) in per_minute.iter().enumerate() {
            let minute_base = base + m as i64 * MINUTE_MS;
            if count <= self.sort_cap {
                self.emit_sorted(minute_base, MINUTE_MS as u32, count, emit)?;
            } else {
                self.emit_histogram(minute_base, count, emit)?;
            }
        }
        Ok(())
    }

    /// Draws `n` uniform offsets in `[0, span)`, sorts them and emits them.
    fn emit_sorted(
        &mut self,
        base: i64,
        span: u32,
        n: u64,
        emit: &mut impl FnMut(i64) -> io::Result<()>,
    ) -> io::Result<()> {
        self.offsets.clear();
        for _ in 0..n {
            self.offsets.push(self.rng.random_range(0..span));
        }
        self.offsets.sort_unstable();
        for &off in &self.offsets {
            emit(base + i64::from(off))?;
        }
        Ok(())
    }

    /// Counting sort over the 60 000 milliseconds of a very dense minute.
    fn emit_histogram(
        &mut self,
        base: i64,
        n: u64,
        emit: &mut impl FnMut(i64) -> io::Result<()>,
    ) -> io::Result<()> {
        self.histogram.clear();
        self.histogram.resize(MINUTE_MS as usize, 0);
        for _ in 0..n {
            self.histogram[self.rng.random_range(0..MINUTE_MS as u32) as usize] += 1;
        }
        for (off, &count) in self.histogram.iter().enumerate() {
            for _ in 0..count {
                emit(base + off as i64)?;
            }
        }
        Ok(())
    }
}

/// Size of the [`Shuffler`] window.
const SHUFFLE_WINDOW: u64 = 4096;

/// Turns a sorted stream into a locally shuffled one: once the window is
/// full, each incoming timestamp replaces a randomly chosen slot whose
/// timestamp is emitted. An event can linger for a while ("late arrival"),
/// but memory stays at `SHUFFLE_WINDOW` entries.
pub(crate) struct Shuffler {
    rng: ChaCha8Rng,
    window: Vec<i64>,
    cap: usize,
}

impl Shuffler {
    pub(crate) fn new(seed: u64, events: u64) -> Self {
        let cap = events.clamp(1, SHUFFLE_WINDOW) as usize;
        Shuffler {
            rng: rng_for(seed, STREAM_SHUFFLE),
            window: Vec::with_capacity(cap),
            cap,
        }
    }

    /// Accepts the next sorted timestamp, possibly emitting an older one.
    pub(crate) fn push(
        &mut self,
        ts: i64,
        emit: &mut impl FnMut(i64) -> io::Result<()>,
    ) -> io::Result<()> {
        if self.window.len() < self.cap {
            self.window.push(ts);
            return Ok(());
        }
        let slot = self.rng.random_range(0..self.cap as u32) as usize;
        let out = std::mem::replace(&mut self.window[slot], ts);
        emit(out)
    }

    /// Emits whatever is left in the window, in random order.
    pub(crate) fn finish(
        &mut self,
        emit: &mut impl FnMut(i64) -> io::Result<()>,
    ) -> io::Result<()> {
        while !self.window.is_empty() {
            let slot = self.rng.random_range(0..self.window.len() as u32) as usize;
            emit(self.window.swap_remove(slot))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(seed: u64, days: u32, events: u64) -> Vec<i64> {
        let mut out = Vec::new();
        Timeline::new(seed, 0, days, events)
            .run(&mut |ts| {
                out.push(ts);
                Ok(())
            })
            .unwrap();
        out
    }

    #[test]
    fn exact_count_sorted_and_in_range() {
        for (days, events) in [(1, 0), (1, 1), (3, 7), (365, 10_000), (2, 200_000)] {
            let ts = collect(7, days, events);
            assert_eq!(ts.len() as u64, events);
            assert!(ts.windows(2).all(|w| w[0] <= w[1]));
            assert!(
                ts.iter()
                    .all(|&t| (0..i64::from(days) * DAY_MS).contains(&t))
            );
        }
    }

    #[test]
    fn dense_minutes_use_the_histogram() {
        // With a tiny sort cap, busy hours split into minutes and busy
        // minutes go through the counting histogram.
        let events = 200_000u64;
        let mut count = 0u64;
        let mut last = i64::MIN;
        let mut timeline = Timeline::new(1, 0, 1, events);
        timeline.sort_cap = 64;
        timeline
            .run(&mut |ts| {
                assert!(ts >= last && ts < DAY_MS);
                last = ts;
                count += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(count, events);
        assert_eq!(
            timeline.histogram.len(),
            MINUTE_MS as usize,
            "histogram path taken"
        );
    }

    #[test]
    fn shuffler_keeps_every_timestamp() {
        let sorted = collect(3, 10, 20_000);
        let mut sh = Shuffler::new(3, sorted.len() as u64);
        let mut out = Vec::new();
        let mut sink = |ts| {
            out.push(ts);
            Ok(())
        };
        for &ts in &sorted {
            sh.push(ts, &mut sink).unwrap();
        }
        sh.finish(&mut sink).unwrap();
        assert_ne!(out, sorted);
        out.sort_unstable();
        assert_eq!(out, sorted);
    }
}
