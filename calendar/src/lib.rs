//! Chinese working days (工作日): the official holiday schedules as data, and the deadline
//! arithmetic every clock in onetrip uses.
//!
//! China moves weekend days to bridge holidays (调休), so working days cannot be computed from
//! the weekday: each year's schedule is published by the State Council and loaded as data.
//! A date in a year whose schedule is not loaded is an error naming the year, never a silent
//! fallback to Monday–Friday.
//!
//! A limit of N working days that starts on date D ends at the close of the N-th working day
//! after D: D itself is not counted (期限从次日起算), and a limit starting on a day off starts
//! counting on the next working day.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Days, NaiveDate, Weekday};

pub use chrono::NaiveDate as Date;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("no holiday schedule is loaded for {0}: load that year's official schedule")]
    YearNotLoaded(i32),
    #[error("line {line}: {message}")]
    Data { line: usize, message: String },
    #[error("`{0}` is not a date (YYYY-MM-DD)")]
    BadDate(String),
}

/// One year's schedule: the days off on weekdays and the weekend days worked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Year {
    off: BTreeSet<NaiveDate>,
    work: BTreeSet<NaiveDate>,
}

/// Working days for the years whose schedules are loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendar {
    years: BTreeMap<i32, Year>,
}

/// The official schedules shipped with onetrip.
pub const OFFICIAL: &[&str] = &[include_str!("../data/2025.txt"), include_str!("../data/2026.txt")];

impl Calendar {
    /// The official schedules of every year shipped (2025 and 2026).
    pub fn official() -> Calendar {
        let mut calendar = Calendar::default();
        for text in OFFICIAL {
            // The shipped data is checked by this crate's tests.
            let _ = calendar.load(text);
        }
        calendar
    }

    /// Loads one year's schedule in the data format:
    ///
    /// ```text
    /// # a comment
    /// year 2026
    /// off  2026-10-01..2026-10-07 国庆节
    /// work 2026-10-10            国庆节调休
    /// ```
    pub fn load(&mut self, text: &str) -> Result<i32, CalendarError> {
        let mut year_number = None;
        let mut year = Year::default();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let data = |message: String| CalendarError::Data { line, message };
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let mut words = content.split_whitespace();
            let (kind, value) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            match kind {
                "year" => {
                    year_number = Some(value.parse::<i32>().map_err(|_| data(format!("`{value}` is not a year")))?)
                }
                "off" | "work" => {
                    let Some(number) = year_number else { return Err(data("`year` must come first".into())) };
                    let (from, to) = match value.split_once("..") {
                        Some((a, b)) => (parse_date(a)?, parse_date(b)?),
                        None => (parse_date(value)?, parse_date(value)?),
                    };
                    if from.year() != number || to.year() != number || to < from {
                        return Err(data(format!("`{value}` is not a range of dates in {number}")));
                    }
                    let mut day = from;
                    while day <= to {
                        let weekend = is_weekend(day);
                        match (kind, weekend) {
                            ("off", false) => year.off.insert(day),
                            ("work", true) => year.work.insert(day),
                            ("off", true) => false,
                            _ => return Err(data(format!("{day} is a weekday: it cannot be a make-up working day"))),
                        };
                        day = day.checked_add_days(Days::new(1)).ok_or_else(|| data("date out of range".into()))?;
                    }
                }
                other => return Err(data(format!("unknown entry `{other}`: expected `year`, `off` or `work`"))),
            }
        }
        let number = year_number.ok_or(CalendarError::Data { line: 0, message: "no `year` line".into() })?;
        self.years.insert(number, year);
        Ok(number)
    }

    /// The years whose schedules are loaded.
    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.keys().copied()
    }

    pub fn is_working_day(&self, day: NaiveDate) -> Result<bool, CalendarError> {
        let year = self.years.get(&day.year()).ok_or(CalendarError::YearNotLoaded(day.year()))?;
        Ok(if is_weekend(day) { year.work.contains(&day) } else { !year.off.contains(&day) })
    }

    /// The day a limit of `days` working days starting on `start` ends: the `days`-th working
    /// day after `start` (`start` itself for 0).
    pub fn due_date(&self, start: NaiveDate, days: u32) -> Result<NaiveDate, CalendarError> {
        let mut day = start;
        let mut counted = 0;
        while counted < days {
            day = next_day(day)?;
            if self.is_working_day(day)? {
                counted += 1;
            }
        }
        Ok(day)
    }

    /// Working days after `from` up to and including `to`; negative when `to` is earlier.
    pub fn workdays_between(&self, from: NaiveDate, to: NaiveDate) -> Result<i64, CalendarError> {
        let (start, end, sign) = if to >= from { (from, to, 1) } else { (to, from, -1) };
        let mut count = 0i64;
        let mut day = start;
        while day < end {
            day = next_day(day)?;
            if self.is_working_day(day)? {
                count += 1;
            }
        }
        Ok(sign * count)
    }
}

pub fn parse_date(text: &str) -> Result<NaiveDate, CalendarError> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| CalendarError::BadDate(text.trim().to_string()))
}

fn is_weekend(day: NaiveDate) -> bool {
    matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
}

fn next_day(day: NaiveDate) -> Result<NaiveDate, CalendarError> {
    day.checked_add_days(Days::new(1)).ok_or(CalendarError::YearNotLoaded(day.year() + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> NaiveDate {
        parse_date(text).unwrap()
    }

    #[test]
    fn the_official_schedules_load() {
        let mut calendar = Calendar::default();
        for text in OFFICIAL {
            calendar.load(text).unwrap();
        }
        assert_eq!(calendar.years().collect::<Vec<_>>(), [2025, 2026]);
        assert_eq!(calendar, Calendar::official());
    }

    #[test]
    fn holidays_and_make_up_days() {
        let c = Calendar::official();
        assert!(!c.is_working_day(d("2026-10-01")).unwrap(), "National Day");
        assert!(c.is_working_day(d("2026-10-10")).unwrap(), "Saturday worked after National Day");
        assert!(!c.is_working_day(d("2026-10-11")).unwrap(), "an ordinary Sunday");
        assert!(c.is_working_day(d("2026-02-14")).unwrap(), "Saturday worked before Spring Festival");
        assert!(!c.is_working_day(d("2025-10-08")).unwrap(), "2025's National Day runs to the 8th");
        assert!(c.is_working_day(d("2025-09-28")).unwrap(), "a Sunday worked in 2025");
    }

    /// Worked by hand: after Wed 2026-09-30 come Oct 1–7 off, Thu 8 (1), Fri 9 (2), Sat 10 a
    /// make-up day (3), Sun 11 off, Mon 12 (4), Tue 13 (5).
    #[test]
    fn a_five_day_limit_from_the_eve_of_national_day() {
        let c = Calendar::official();
        assert_eq!(c.due_date(d("2026-09-30"), 5).unwrap(), d("2026-10-13"));
        assert_eq!(c.workdays_between(d("2026-09-30"), d("2026-10-13")).unwrap(), 5);
        assert_eq!(c.workdays_between(d("2026-10-13"), d("2026-09-30")).unwrap(), -5);
    }

    /// Starting on a day off: Sat 2026-02-14 is a make-up working day, Sun 15 to Mon 23 are
    /// the Spring Festival, so one working day from Sun 2026-02-15 ends on Tue 24.
    #[test]
    fn a_limit_starting_on_a_day_off() {
        let c = Calendar::official();
        assert_eq!(c.due_date(d("2026-02-15"), 1).unwrap(), d("2026-02-24"));
        assert_eq!(c.due_date(d("2026-02-13"), 1).unwrap(), d("2026-02-14"));
        assert_eq!(c.due_date(d("2026-02-13"), 0).unwrap(), d("2026-02-13"));
    }

    #[test]
    fn a_missing_year_is_an_error_not_a_guess() {
        let c = Calendar::official();
        assert_eq!(c.is_working_day(d("2027-03-01")), Err(CalendarError::YearNotLoaded(2027)));
        assert_eq!(c.due_date(d("2026-12-28"), 10), Err(CalendarError::YearNotLoaded(2027)));
        assert_eq!(c.workdays_between(d("2024-12-30"), d("2025-01-03")), Err(CalendarError::YearNotLoaded(2024)));
    }

    #[test]
    fn bad_data_is_reported_with_its_line() {
        let mut c = Calendar::default();
        assert!(matches!(c.load("off 2026-01-01"), Err(CalendarError::Data { line: 1, .. })));
        assert!(matches!(c.load("year 2026\nwork 2026-01-05"), Err(CalendarError::Data { line: 2, .. })));
        assert!(matches!(c.load("year 2026\noff 2026-02-30"), Err(CalendarError::BadDate(_))));
        assert!(matches!(c.load("year 2026\noff 2027-01-01"), Err(CalendarError::Data { line: 2, .. })));
        assert!(matches!(c.load("year 2026\nholiday 2026-01-01"), Err(CalendarError::Data { line: 2, .. })));
    }
}
