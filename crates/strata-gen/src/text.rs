//! Low-level output helpers: JSON string escaping, fast RFC 3339 formatting
//! and a stateless hash. Everything appends to a caller-owned `Vec<u8>` so
//! the hot path does not allocate.

/// Milliseconds per hour.
pub(crate) const HOUR_MS: i64 = 3_600_000;
/// Milliseconds per day.
pub(crate) const DAY_MS: i64 = 86_400_000;

/// splitmix64 finaliser: a cheap stateless hash used for attributes that must
/// be stable per entity (a user's workstation, a bucket's jitter, ...).
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Appends `s` as a JSON string literal (quotes included), escaping `"`, `\`
/// and control characters. Generated values avoid those, so the common case
/// is one scan and one copy.
pub(crate) fn push_json_str(buf: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    buf.push(b'"');
    let mut copied = 0;
    for (i, &b) in s.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        buf.extend_from_slice(&s[copied..i]);
        copied = i + 1;
        if short.is_empty() {
            buf.extend_from_slice(b"\\u00");
            buf.push(HEX[usize::from(b >> 4)]);
            buf.push(HEX[usize::from(b & 0xf)]);
        } else {
            buf.extend_from_slice(short);
        }
    }
    buf.extend_from_slice(&s[copied..]);
    buf.push(b'"');
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month,
/// day), after Howard Hinnant's `civil_from_days`.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based month
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn push2(buf: &mut Vec<u8>, v: u32) {
    buf.push(b'0' + (v / 10) as u8);
    buf.push(b'0' + (v % 10) as u8);
}

/// RFC 3339 formatter that caches the date part, since consecutive events
/// mostly share a day.
pub(crate) struct TsFormatter {
    day: i64,
    date: [u8; 10],
}

impl TsFormatter {
    pub(crate) fn new() -> Self {
        TsFormatter {
            day: i64::MIN,
            date: [0; 10],
        }
    }

    /// Appends `"YYYY-MM-DDTHH:MM:SS.mmmZ"` (quoted) for `ms` since the epoch,
    /// or the local time with a `+HH:MM`/`-HH:MM` suffix when `offset_min`
    /// is non-zero. Years must be in 0..=9999 (the config is validated).
    pub(crate) fn write(&mut self, buf: &mut Vec<u8>, ms: i64, offset_min: i32) {
        let local = ms + i64::from(offset_min) * 60_000;
        let day = local.div_euclid(DAY_MS);
        if day != self.day {
            let (y, m, d) = civil_from_days(day);
            let y = y.clamp(0, 9999) as u32;
            let mut date = Vec::with_capacity(10);
            push2(&mut date, y / 100);
            push2(&mut date, y % 100);
            date.push(b'-');
            push2(&mut date, m);
            date.push(b'-');
            push2(&mut date, d);
            self.date.copy_from_slice(&date);
            self.day = day;
        }
        let t = local.rem_euclid(DAY_MS) as u32;
        buf.push(b'"');
        buf.extend_from_slice(&self.date);
        buf.push(b'T');
        push2(buf, t / 3_600_000);
        buf.push(b':');
        push2(buf, t / 60_000 % 60);
        buf.push(b':');
        push2(buf, t / 1000 % 60);
        buf.push(b'.');
        let milli = t % 1000;
        buf.push(b'0' + (milli / 100) as u8);
        push2(buf, milli % 100);
        if offset_min == 0 {
            buf.push(b'Z');
        } else {
            buf.push(if offset_min < 0 { b'-' } else { b'+' });
            let abs = offset_min.unsigned_abs();
            push2(buf, abs / 60);
            buf.push(b':');
            push2(buf, abs % 60);
        }
        buf.push(b'"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Utc};

    #[test]
    fn civil_matches_chrono() {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        for days in (-800_000..3_000_000).step_by(997) {
            let d = epoch + chrono::Duration::days(days);
            assert_eq!(
                civil_from_days(days),
                (i64::from(d.year()), d.month(), d.day())
            );
        }
    }

    #[test]
    fn timestamps_round_trip_through_chrono() {
        let mut f = TsFormatter::new();
        for (i, ms) in [
            0i64,
            1_741_079_702_123,
            -1,
            1_709_164_800_000,
            253_402_214_399_999,
        ]
        .into_iter()
        .enumerate()
        {
            for off in [0, 330, -300, 480] {
                let mut buf = Vec::new();
                f.write(&mut buf, ms, off);
                let s = std::str::from_utf8(&buf[1..buf.len() - 1]).unwrap();
                let parsed = DateTime::<FixedOffset>::parse_from_rfc3339(s).unwrap();
                assert_eq!(parsed.timestamp_millis(), ms, "{i} {s}");
                assert_eq!(parsed.offset().local_minus_utc(), off * 60);
                if off == 0 {
                    let expect = DateTime::<Utc>::from_timestamp_millis(ms)
                        .unwrap()
                        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                        .to_string();
                    assert_eq!(s, expect);
                }
            }
        }
    }

    #[test]
    fn json_escaping() {
        let mut buf = Vec::new();
        push_json_str(&mut buf, b"plain text");
        push_json_str(&mut buf, b"a\"b\\c\nd\x01e");
        assert_eq!(
            std::str::from_utf8(&buf).unwrap(),
            r#""plain text""a\"b\\c\nd\u0001e""#
        );
        let v: serde_json::Value =
            serde_json::from_slice(&buf[12..]).expect("escaped string parses");
        assert_eq!(v, "a\"b\\c\nd\u{1}e");
    }
}
