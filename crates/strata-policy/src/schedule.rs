//! The daemon's cron schedule: 5 fields, UTC, minute resolution.

use std::fmt;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};

use crate::PolicyError;

/// One cron field: the values it accepts, as bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Field {
    bits: u64,
    /// Written starting with `*` (so not a restriction, for the day fields).
    star: bool,
}

impl Field {
    fn has(self, value: u32) -> bool {
        self.bits & (1 << value) != 0
    }

    /// Parses `*`, `a`, `a-b`, `*/n`, `a-b/n` and comma-separated lists of
    /// them, each value within `min..=max`.
    fn parse(text: &str, name: &str, min: u32, max: u32) -> Result<Field, String> {
        let number = |part: &str| -> Result<u32, String> {
            part.parse()
                .ok()
                .filter(|value| (min..=max).contains(value))
                .ok_or_else(|| format!("{name} {part:?} is not a number from {min} to {max}"))
        };
        let mut bits = 0;
        for item in text.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((range, step)) => (range, Some(step)),
                None => (item, None),
            };
            let (first, last) = if range == "*" {
                (min, max)
            } else if let Some((first, last)) = range.split_once('-') {
                (number(first)?, number(last)?)
            } else if step.is_none() {
                (number(range)?, number(range)?)
            } else {
                return Err(format!(
                    "{name} {item:?}: a step needs `*` or a range before `/`"
                ));
            };
            if first > last {
                return Err(format!("{name} range {range:?} runs backwards"));
            }
            let step = match step {
                None => 1,
                Some(step) => step
                    .parse()
                    .ok()
                    .filter(|step| *step > 0)
                    .ok_or_else(|| format!("{name} step {step:?} is not a positive number"))?,
            };
            for value in (first..=last).step_by(step) {
                bits |= 1 << value;
            }
        }
        Ok(Field {
            bits,
            star: text.starts_with('*'),
        })
    }
}

/// A cron schedule, 5 fields (minute, hour, day of month, month, day of week),
/// in UTC.
///
/// Each field takes `*`, a value `a`, a range `a-b`, steps `*/n` or `a-b/n`,
/// and comma-separated lists of these. Day of week is 0-7, 0 and 7 both
/// Sunday. As in classic cron, when both day fields are restricted (neither
/// starts with `*`) a day matches if either matches. A schedule that can never
/// fire (`0 0 30 2 *`) is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    text: String,
    minute: Field,
    hour: Field,
    day: Field,
    month: Field,
    weekday: Field,
}

impl Schedule {
    /// Parses a 5-field cron expression.
    pub fn parse(text: &str) -> Result<Schedule, PolicyError> {
        let bad = |reason: String| PolicyError::Schedule {
            text: text.to_owned(),
            reason,
        };
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(bad(format!("{} fields", fields.len())));
        };
        let mut weekday = Field::parse(weekday, "day of week", 0, 7).map_err(bad)?;
        if weekday.has(7) {
            weekday.bits |= 1;
        }
        let schedule = Schedule {
            text: fields.join(" "),
            minute: Field::parse(minute, "minute", 0, 59).map_err(bad)?,
            hour: Field::parse(hour, "hour", 0, 23).map_err(bad)?,
            day: Field::parse(day, "day of month", 1, 31).map_err(bad)?,
            month: Field::parse(month, "month", 1, 12).map_err(bad)?,
            weekday,
        };
        if !schedule.can_fire() {
            return Err(bad("no month has such a day".to_owned()));
        }
        Ok(schedule)
    }

    /// The first instant strictly after `after` that matches the schedule
    /// (UTC, minute resolution).
    pub fn next_after(&self, after: DateTime<Utc>) -> DateTime<Utc> {
        let after = after.naive_utc();
        let mut t = after
            .date()
            .and_hms_opt(after.hour(), after.minute(), 0)
            .expect("the hour and minute of an instant are valid")
            + Duration::minutes(1);
        loop {
            if !self.month.has(t.month()) {
                t = start_of_day(first_of_next_month(t.date()));
            } else if !self.day_matches(t.date()) {
                t = start_of_day(t.date()) + Duration::days(1);
            } else if !self.hour.has(t.hour()) {
                t = t - Duration::minutes(t.minute().into()) + Duration::hours(1);
            } else if !self.minute.has(t.minute()) {
                t += Duration::minutes(1);
            } else {
                return t.and_utc();
            }
        }
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let day = self.day.has(date.day());
        let weekday = self.weekday.has(date.weekday().num_days_from_sunday());
        if self.day.star || self.weekday.star {
            day && weekday
        } else {
            day || weekday
        }
    }

    /// Whether some date matches: only a restricted day of month with an
    /// unrestricted day of week can miss every selected month (`30 2`).
    fn can_fire(&self) -> bool {
        const LONGEST: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        self.day.star
            || !self.weekday.star
            || (1..=12).any(|month| {
                self.month.has(month)
                    && (1..=LONGEST[month as usize - 1]).any(|day| self.day.has(day))
            })
    }
}

fn start_of_day(date: NaiveDate) -> NaiveDateTime {
    date.and_time(NaiveTime::MIN)
}

fn first_of_next_month(date: NaiveDate) -> NaiveDate {
    let (year, month) = match date.month() {
        12 => (date.year() + 1, 1),
        month => (date.year(), month + 1),
    };
    NaiveDate::from_ymd_opt(year, month, 1).expect("the first of a month exists")
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn next(schedule: &str, after: &str) -> DateTime<Utc> {
        Schedule::parse(schedule).unwrap().next_after(at(after))
    }

    #[test]
    fn daily_at_three() {
        assert_eq!(
            next("0 3 * * *", "2025-03-04T03:00:00Z"),
            at("2025-03-05T03:00:00Z")
        );
        assert_eq!(
            next("0 3 * * *", "2025-03-04T02:59:59Z"),
            at("2025-03-04T03:00:00Z")
        );
        assert_eq!(
            next("0 3 * * *", "2025-12-31T04:00:00Z"),
            at("2026-01-01T03:00:00Z")
        );
    }

    #[test]
    fn every_fifteen_minutes() {
        assert_eq!(
            next("*/15 * * * *", "2025-03-04T10:00:00Z"),
            at("2025-03-04T10:15:00Z")
        );
        assert_eq!(
            next("*/15 * * * *", "2025-03-04T10:14:59.9Z"),
            at("2025-03-04T10:15:00Z")
        );
        assert_eq!(
            next("*/15 * * * *", "2025-03-04T23:50:00Z"),
            at("2025-03-05T00:00:00Z")
        );
    }

    #[test]
    fn first_of_the_month() {
        assert_eq!(
            next("0 0 1 * *", "2025-01-01T00:00:00Z"),
            at("2025-02-01T00:00:00Z")
        );
        assert_eq!(
            next("0 0 1 * *", "2025-12-15T08:00:00Z"),
            at("2026-01-01T00:00:00Z")
        );
    }

    #[test]
    fn day_of_week() {
        // 2025-03-04 is a Tuesday.
        assert_eq!(
            next("30 6 * * 1", "2025-03-04T00:00:00Z"),
            at("2025-03-10T06:30:00Z")
        );
        assert_eq!(
            next("0 12 * * 1-5", "2025-03-07T12:00:00Z"),
            at("2025-03-10T12:00:00Z")
        );
        assert_eq!(
            next("0 0 * * 0", "2025-03-04T00:00:00Z"),
            at("2025-03-09T00:00:00Z")
        );
        assert_eq!(
            next("0 0 * * 7", "2025-03-04T00:00:00Z"),
            at("2025-03-09T00:00:00Z")
        );
        // Both day fields restricted: either matches (the 13th, or a Friday).
        assert_eq!(
            next("0 0 13 * 5", "2025-03-04T00:00:00Z"),
            at("2025-03-07T00:00:00Z")
        );
        assert_eq!(
            next("0 0 13 * 5", "2025-03-10T00:00:00Z"),
            at("2025-03-13T00:00:00Z")
        );
    }

    #[test]
    fn lists_ranges_and_steps() {
        let schedule = "5,35 8-18/5 * 2,11 *";
        assert_eq!(
            next(schedule, "2025-03-04T00:00:00Z"),
            at("2025-11-01T08:05:00Z")
        );
        assert_eq!(
            next(schedule, "2025-11-01T08:05:00Z"),
            at("2025-11-01T08:35:00Z")
        );
        assert_eq!(
            next(schedule, "2025-11-01T08:35:00Z"),
            at("2025-11-01T13:05:00Z")
        );
        assert_eq!(
            next(schedule, "2025-11-01T18:35:00Z"),
            at("2025-11-02T08:05:00Z")
        );
    }

    #[test]
    fn leap_day() {
        assert_eq!(
            next("0 0 29 2 *", "2025-01-01T00:00:00Z"),
            at("2028-02-29T00:00:00Z")
        );
    }

    #[test]
    fn displays_normalised_text() {
        assert_eq!(
            Schedule::parse(" 0  3 * * *").unwrap().to_string(),
            "0 3 * * *"
        );
    }

    #[test]
    fn refuses_bad_expressions() {
        for (text, reason) in [
            ("0 3 * *", "4 fields"),
            ("0 3 * * * *", "6 fields"),
            ("60 3 * * *", "minute \"60\""),
            ("0 24 * * *", "hour \"24\""),
            ("0 3 0 * *", "day of month \"0\""),
            ("0 3 * 13 *", "month \"13\""),
            ("0 3 * * 8", "day of week \"8\""),
            ("0 3 * * mon", "day of week \"mon\""),
            ("5-1 * * * *", "runs backwards"),
            ("*/0 * * * *", "step \"0\""),
            ("5/10 * * * *", "a step needs"),
            ("0 3 ,1 * *", "day of month \"\""),
            ("0 0 30 2 *", "no month has such a day"),
        ] {
            let err = Schedule::parse(text).unwrap_err();
            let message = err.to_string();
            assert!(message.contains(&format!("{text:?}")), "{message}");
            assert!(message.contains(reason), "{text:?}: {message}");
        }
    }
}
