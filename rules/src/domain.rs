//! The domain functions rules may call (their signatures and documentation are in
//! `dsl::cel::types::FUNCTIONS`, which the checker uses): Chinese ID numbers (GB 11643),
//! ages, region codes and working days.

use calendar::{Calendar, Date};
use chrono::Datelike;

/// The birth date in an 18-digit ID number, when it holds a real date.
pub fn birth_date_of_id(id: &str) -> Option<Date> {
    let id = id.trim();
    if id.len() != 18 || !id.is_ascii() {
        return None;
    }
    let (y, m, d) = (id[6..10].parse().ok()?, id[10..12].parse().ok()?, id[12..14].parse().ok()?);
    Date::from_ymd_opt(y, m, d)
}

/// Whether an 18-digit ID number is well formed, holds a real birth date and has the right
/// check character (GB 11643-1999: weighted sum of the first 17 digits modulo 11).
pub fn id_valid(id: &str) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: [u8; 11] = *b"10X98765432";
    let bytes = id.trim().as_bytes();
    if bytes.len() != 18 || !bytes[..17].iter().all(u8::is_ascii_digit) || birth_date_of_id(id).is_none() {
        return false;
    }
    let sum: u32 = bytes[..17].iter().zip(WEIGHTS).map(|(b, w)| u32::from(b - b'0') * w).sum();
    bytes[17].to_ascii_uppercase() == CHECK[(sum % 11) as usize]
}

/// Whole years from `birth` to `on` (the birthday counts from its own day).
pub fn age_on(birth: Date, on: Date) -> i64 {
    let mut age = i64::from(on.year() - birth.year());
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    age
}

/// Age on a date from an ID number; -1 when the number holds no birth date.
pub fn age_from_id(id: &str, on: Date) -> i64 {
    birth_date_of_id(id).map_or(-1, |birth| age_on(birth, on))
}

/// Whether a region code (行政区划代码, or an ID number, which starts with one) lies in the region
/// a prefix names: `in_region("330106", "3301")` (杭州市) is true.
pub fn in_region(code: &str, prefix: &str) -> bool {
    let (code, prefix) = (code.trim(), prefix.trim());
    !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_digit()) && code.starts_with(prefix)
}

pub fn workdays_between(calendar: &Calendar, from: Date, to: Date) -> Result<i64, calendar::CalendarError> {
    calendar.workdays_between(from, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Date {
        calendar::parse_date(text).unwrap()
    }

    #[test]
    fn id_numbers() {
        // The example of GB 11643-1999 Appendix A, and a number with an X check character.
        assert!(id_valid("11010519491231002X"));
        assert!(id_valid("440524188001010014"));
        assert!(!id_valid("440524188001010015"), "wrong check digit");
        assert!(!id_valid("44052418800101001"), "17 characters");
        assert!(!id_valid("440524188013010014"), "month 13");
        assert!(!id_valid("44052418800101001Ｘ"), "not ASCII");
        assert_eq!(birth_date_of_id("11010519491231002X"), Some(d("1949-12-31")));
    }

    #[test]
    fn ages() {
        assert_eq!(age_on(d("2008-11-25"), d("2026-11-25")), 18, "the 18th birthday itself");
        assert_eq!(age_on(d("2008-11-26"), d("2026-11-25")), 17, "the day before");
        assert_eq!(age_from_id("11010519491231002X", d("2026-01-01")), 76);
        assert_eq!(age_from_id("not an id", d("2026-01-01")), -1);
    }

    #[test]
    fn regions() {
        assert!(in_region("330106", "3301"));
        assert!(in_region("11010519491231002X", "1101"));
        assert!(!in_region("320106", "3301"));
        assert!(!in_region("330106", ""));
    }
}
