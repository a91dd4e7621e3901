//! Sizes (`max_bytes`): an integer with an optional unit.

use crate::PolicyError;

const UNITS: [(&str, u64); 10] = [
    ("B", 1),
    ("kB", 1000),
    ("KB", 1000),
    ("MB", 1000_u64.pow(2)),
    ("GB", 1000_u64.pow(3)),
    ("TB", 1000_u64.pow(4)),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
];

/// Parses a size in bytes: digits, then optionally (after optional spaces)
/// B, kB/KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024).
pub(crate) fn parse_size(text: &str) -> Result<u64, PolicyError> {
    let bad = || PolicyError::Size {
        text: text.to_owned(),
    };
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let count: u64 = text[..digits].parse().map_err(|_| bad())?;
    let unit = text[digits..].trim_start_matches(' ');
    let multiplier = if unit.is_empty() {
        1
    } else {
        UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, multiplier)| *multiplier)
            .ok_or_else(bad)?
    };
    count.checked_mul(multiplier).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_size("0").unwrap(), 0);
        assert_eq!(parse_size("123").unwrap(), 123);
        assert_eq!(parse_size("123B").unwrap(), 123);
        assert_eq!(parse_size("2kB").unwrap(), 2000);
        assert_eq!(parse_size("2KB").unwrap(), 2000);
        assert_eq!(parse_size("500GB").unwrap(), 500_000_000_000);
        assert_eq!(parse_size("500 GB").unwrap(), 500_000_000_000);
        assert_eq!(parse_size("3TB").unwrap(), 3_000_000_000_000);
        assert_eq!(parse_size("1KiB").unwrap(), 1024);
        assert_eq!(parse_size("5MiB").unwrap(), 5 << 20);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("2TiB").unwrap(), 2 << 40);
    }

    #[test]
    fn refuses_bad_sizes() {
        for text in [
            "",
            "GB",
            "1.5GB",
            "-1",
            "10gb",
            "10 G",
            "10PB",
            "99999999999TiB",
            " 10",
        ] {
            let err = parse_size(text).unwrap_err();
            assert!(
                matches!(&err, PolicyError::Size { text: t } if t == text),
                "{text:?}: {err}"
            );
        }
    }
}
