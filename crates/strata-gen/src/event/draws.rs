//! Random draws shared by every family (integer draws where it matters, so
//! output is portable): chances, weighted and skewed choices, record counts,
//! addresses, and the dates in tickets and file names.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::text::{DAY_MS, civil_from_days};

/// True with probability `p` percent.
pub(super) fn pct(r: &mut ChaCha8Rng, p: u32) -> bool {
    r.random_range(0..100u32) < p
}

/// Weighted choice.
pub(super) fn pick<T: Copy>(r: &mut ChaCha8Rng, table: &[(T, u32)]) -> T {
    let total: u32 = table.iter().map(|e| e.1).sum();
    let mut x = r.random_range(0..total);
    for &(v, w) in table {
        if x < w {
            return v;
        }
        x -= w;
    }
    table[table.len() - 1].0
}

/// Uniform choice.
pub(super) fn one<T: Copy>(r: &mut ChaCha8Rng, items: &[T]) -> T {
    items[r.random_range(0..items.len() as u32) as usize]
}

/// Index in `0..n` skewed towards 0 (density ~ 1/sqrt(x)), so a few users or
/// records are far more active than the rest.
pub(super) fn skewed(r: &mut ChaCha8Rng, n: u32) -> u32 {
    let f: f64 = r.random();
    (((f * f) * f64::from(n)) as u32).min(n.saturating_sub(1))
}

pub(super) fn between(r: &mut ChaCha8Rng, lo: u64, hi: u64) -> u64 {
    r.random_range(lo..=hi)
}

/// Log-ish distributed record count: mostly small, a long tail of bulk ops.
pub(super) fn records_tiered(r: &mut ChaCha8Rng, min_tier: u32) -> u64 {
    const TIERS: [(u32, u32); 6] = [(0, 30), (1, 30), (2, 20), (3, 12), (4, 6), (5, 2)];
    let tier = pick(r, &TIERS[min_tier as usize..]);
    let lo = 10u64.pow(tier);
    between(r, lo, lo * 10 - 1)
}

pub(super) fn public_v4(h: u64) -> IpAddr {
    const FIRST: [u8; 12] = [49, 103, 117, 122, 152, 175, 182, 203, 34, 52, 81, 185];
    IpAddr::V4(Ipv4Addr::new(
        FIRST[(h % 12) as usize],
        (h >> 16) as u8,
        (h >> 24) as u8,
        ((h >> 32) % 254 + 1) as u8,
    ))
}

pub(super) fn ipv6(h: u64) -> IpAddr {
    const PREFIXES: [(u16, u16); 4] = [
        (0x2401, 0x4900),
        (0x2001, 0x0db8),
        (0x2a02, 0x26f0),
        (0x2600, 0x1f18),
    ];
    let (a, b) = PREFIXES[(h % 4) as usize];
    let g = |shift: u32| ((h >> shift) as u16).max(1);
    // Display of Ipv6Addr is the canonical RFC 5952 text form.
    IpAddr::V6(Ipv6Addr::new(a, b, g(8), g(24), 0, 0, g(40), g(48)))
}

/// UTC calendar date of `ts` as a number like 20250304.
pub(super) fn yyyymmdd(ts: i64) -> u32 {
    let (y, m, d) = civil_from_days(ts.div_euclid(DAY_MS));
    y.clamp(0, 9999) as u32 * 10_000 + m * 100 + d
}

/// Year and month of `ts`, sometimes of a month or two earlier, like
/// 202503 (monthly report files).
pub(super) fn month_stamp(ts: i64, r: &mut ChaCha8Rng) -> u32 {
    let back = i64::from(r.random_range(0..3u32)) * 30 * DAY_MS;
    yyyymmdd(ts - back) / 100
}
