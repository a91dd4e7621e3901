//! Ages (`7d`, `2w`, `12mo`, `6y`) and how they are compared.

use std::fmt;

use chrono::{DateTime, Days, Months, Utc};
use serde::Deserialize;

use crate::PolicyError;

/// The unit of an [`Age`], with its suffix in the policy file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unit {
    Days,
    Weeks,
    Months,
    Years,
}

impl Unit {
    const ALL: [Unit; 4] = [Unit::Days, Unit::Weeks, Unit::Months, Unit::Years];

    fn suffix(self) -> &'static str {
        match self {
            Unit::Days => "d",
            Unit::Weeks => "w",
            Unit::Months => "mo",
            Unit::Years => "y",
        }
    }
}

/// How long an age is: whole days (`d`, `w`) or whole calendar months (`mo`, `y`).
enum Length {
    Days(u64),
    Months(u64),
}

/// An age, as written in a policy file: `<n>d` (days), `<n>w` (weeks),
/// `<n>mo` (calendar months) or `<n>y` (calendar years), `n` a non-negative
/// integer.
///
/// Equality is textual (`12mo` and `1y` are different values that reach the
/// same instant); see the crate docs for how ages are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Age {
    count: u32,
    unit: Unit,
}

impl Age {
    /// Parses `<n>d`, `<n>w`, `<n>mo` or `<n>y`.
    pub fn parse(text: &str) -> Result<Age, PolicyError> {
        let bad = || PolicyError::Age {
            text: text.to_owned(),
        };
        let digits = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let count = text[..digits].parse().map_err(|_| bad())?;
        let unit = Unit::ALL
            .into_iter()
            .find(|unit| unit.suffix() == &text[digits..])
            .ok_or_else(bad)?;
        Ok(Age { count, unit })
    }

    /// The instant at which something whose newest event is at `newest`
    /// reaches this age (calendar arithmetic in UTC, chrono `Months`/`Days`:
    /// one month after January 31 is the last day of February). Saturates at
    /// chrono's latest representable instant.
    pub fn reached_at(&self, newest: DateTime<Utc>) -> DateTime<Utc> {
        let reached = match self.length() {
            Length::Days(days) => newest.checked_add_days(Days::new(days)),
            Length::Months(months) => u32::try_from(months)
                .ok()
                .and_then(|months| newest.checked_add_months(Months::new(months))),
        };
        reached.unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    fn length(self) -> Length {
        let count = u64::from(self.count);
        match self.unit {
            Unit::Days => Length::Days(count),
            Unit::Weeks => Length::Days(7 * count),
            Unit::Months => Length::Months(count),
            Unit::Years => Length::Months(12 * count),
        }
    }

    /// The fewest and most days this age can span, over all start dates.
    fn day_bounds(self) -> (u64, u64) {
        let count = u64::from(self.count);
        match self.unit {
            Unit::Days => (count, count),
            Unit::Weeks => (7 * count, 7 * count),
            Unit::Months => (28 * count, 31 * count),
            Unit::Years => (365 * count, 366 * count),
        }
    }

    /// Whether this age is at least `other` whatever the start date.
    pub(crate) fn at_least(self, other: Age) -> bool {
        match (self.length(), other.length()) {
            (Length::Days(a), Length::Days(b)) | (Length::Months(a), Length::Months(b)) => a >= b,
            _ => self.day_bounds().0 >= other.day_bounds().1,
        }
    }

    /// Whether this age is shorter than `other` whatever the start date.
    pub(crate) fn before(self, other: Age) -> bool {
        match (self.length(), other.length()) {
            (Length::Days(a), Length::Days(b)) | (Length::Months(a), Length::Months(b)) => a < b,
            _ => self.day_bounds().1 < other.day_bounds().0,
        }
    }
}

impl TryFrom<String> for Age {
    type Error = PolicyError;

    fn try_from(text: String) -> Result<Age, PolicyError> {
        Age::parse(&text)
    }
}

impl fmt::Display for Age {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.count, self.unit.suffix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn age(text: &str) -> Age {
        Age::parse(text).unwrap()
    }

    fn utc(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 12, 30, 0).unwrap()
    }

    #[test]
    fn parses_every_unit() {
        assert_eq!(age("0d").reached_at(utc(2025, 1, 1)), utc(2025, 1, 1));
        assert_eq!(age("10d").reached_at(utc(2025, 1, 1)), utc(2025, 1, 11));
        assert_eq!(age("2w").reached_at(utc(2025, 1, 1)), utc(2025, 1, 15));
        assert_eq!(age("3mo").reached_at(utc(2025, 1, 1)), utc(2025, 4, 1));
        assert_eq!(age("2y").reached_at(utc(2024, 2, 29)), utc(2026, 2, 28));
    }

    #[test]
    fn refuses_bad_ages() {
        for text in [
            "",
            "d",
            "12",
            "12m",
            "12 mo",
            "-1d",
            "+1d",
            "1.5y",
            "12MO",
            "99999999999d",
        ] {
            let err = Age::parse(text).unwrap_err();
            assert!(
                matches!(&err, PolicyError::Age { text: t } if t == text),
                "{text:?}: {err}"
            );
            assert!(err.to_string().contains(&format!("{text:?}")), "{err}");
        }
    }

    #[test]
    fn a_month_after_january_31_is_the_end_of_february() {
        assert_eq!(age("1mo").reached_at(utc(2025, 1, 31)), utc(2025, 2, 28));
        assert_eq!(age("1mo").reached_at(utc(2024, 1, 31)), utc(2024, 2, 29));
    }

    #[test]
    fn twelve_months_is_one_year() {
        for start in [utc(2024, 2, 29), utc(2025, 1, 31), utc(2025, 7, 15)] {
            assert_eq!(age("12mo").reached_at(start), age("1y").reached_at(start));
        }
        assert_ne!(age("12mo"), age("1y"));
        assert!(age("12mo").at_least(age("1y")) && age("1y").at_least(age("12mo")));
        assert!(!age("11mo").at_least(age("1y")));
        assert!(age("71mo").before(age("6y")));
    }

    #[test]
    fn zero_days_is_the_same_instant() {
        let now = Utc.with_ymd_and_hms(2025, 3, 4, 5, 6, 7).unwrap();
        assert_eq!(age("0d").reached_at(now), now);
        assert_eq!(age("0mo").reached_at(now), now);
    }

    #[test]
    fn saturates_far_in_the_future() {
        assert_eq!(
            age("4000000000y").reached_at(utc(2025, 1, 1)),
            DateTime::<Utc>::MAX_UTC
        );
    }

    #[test]
    fn compares_across_units_by_day_bounds() {
        // 30 days may be shorter than a month (31 days in January): not "at least 1mo".
        assert!(!age("30d").at_least(age("1mo")));
        assert!(age("31d").at_least(age("1mo")));
        // A month may be as short as 28 days.
        assert!(!age("1mo").at_least(age("29d")));
        assert!(age("1mo").at_least(age("28d")));
        assert!(age("2w").at_least(age("14d")));
        assert!(!age("365d").at_least(age("1y")));
        assert!(age("366d").at_least(age("1y")));
        // Strictly before, whatever the start date.
        assert!(age("27d").before(age("1mo")));
        assert!(!age("28d").before(age("1mo")));
        assert!(!age("1mo").before(age("31d")));
        assert!(age("1mo").before(age("32d")));
    }

    #[test]
    fn displays_as_written() {
        for text in ["0d", "7d", "2w", "12mo", "6y"] {
            assert_eq!(age(text).to_string(), text);
        }
    }

    proptest! {
        #[test]
        fn display_round_trips(count: u32, unit in 0..4usize) {
            let age = Age { count, unit: Unit::ALL[unit] };
            prop_assert_eq!(Age::parse(&age.to_string()).unwrap(), age);
        }
    }
}
