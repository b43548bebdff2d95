//! Time standards as the SOPs write them: "1 hari", "3 menit", "2 jam 30 menit" — and as
//! humantime writes them: "1 day", "3m", "2h 30m".
//!
//! The SOPs' Mutu Baku column states each step's time standard in Indonesian; a site copies it into
//! its config as written. Indonesian units: `detik` (second), `menit` (minute), `jam` (hour),
//! `hari` (day, 24 hours), `minggu` (week, 7 days). Several parts add up ("1 jam 30 menit", also
//! "1 jam dan 30 menit"). Anything else goes to [`humantime::parse_duration`]. Months and years
//! are refused in Indonesian (`bulan`, `tahun`) because their length is not fixed.

use std::time::Duration;

use thiserror::Error;

use crate::text::quoted;

/// A duration that is neither Indonesian nor humantime.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "unrecognised duration {}: write e.g. \"1 hari\", \"3 menit\", \"2 jam 30 menit\" \
     (detik, menit, jam, hari, minggu) or \"1 day\", \"3m\", \"2h 30m\"",
    quoted(.0)
)]
pub struct DurationError(pub String);

/// Parses a time standard. See the module documentation for the forms accepted.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    if let Some(d) = parse_indonesian(s) {
        return Ok(d);
    }
    humantime::parse_duration(s).map_err(|_| DurationError(text.to_owned()))
}

/// Seconds in one of an Indonesian unit, or `None` for a word that is not one.
fn unit_seconds(word: &str) -> Option<u64> {
    match word {
        "detik" => Some(1),
        "menit" => Some(60),
        "jam" => Some(3600),
        "hari" => Some(86_400),
        "minggu" => Some(7 * 86_400),
        _ => None,
    }
}

/// `<number> <unit>` pairs, optionally joined by "dan"; the number may touch its unit ("3menit").
/// `None` when the text is not of that form (then humantime gets its turn), or it overflows.
fn parse_indonesian(s: &str) -> Option<Duration> {
    let lower = s.to_lowercase();
    let mut words = lower.split_whitespace().peekable();
    let mut total: u64 = 0;
    let mut parts = 0usize;
    while let Some(word) = words.next() {
        if word == "dan" && parts > 0 && words.peek().is_some() {
            continue;
        }
        let digits = word.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: u64 = word[..digits].parse().ok()?;
        let unit = if digits < word.len() {
            &word[digits..]
        } else {
            words.next()?
        };
        total = total.checked_add(n.checked_mul(unit_seconds(unit)?)?)?;
        parts += 1;
    }
    (parts > 0).then(|| Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secs(s: &str) -> Result<u64, DurationError> {
        parse_duration(s).map(|d| d.as_secs())
    }

    #[test]
    fn indonesian_units() {
        assert_eq!(secs("30 detik"), Ok(30));
        assert_eq!(secs("3 menit"), Ok(180));
        assert_eq!(secs("2 jam"), Ok(7200));
        assert_eq!(secs("1 hari"), Ok(86_400));
        assert_eq!(secs("1 minggu"), Ok(604_800));
        assert_eq!(secs("  1 Hari "), Ok(86_400));
        assert_eq!(secs("3menit"), Ok(180));
    }

    #[test]
    fn indonesian_parts_add_up() {
        assert_eq!(secs("2 jam 30 menit"), Ok(9000));
        assert_eq!(secs("1 jam dan 30 menit"), Ok(5400));
        assert_eq!(secs("1 hari 1 detik"), Ok(86_401));
    }

    #[test]
    fn humantime_forms() {
        assert_eq!(secs("1 day"), Ok(86_400));
        assert_eq!(secs("3m"), Ok(180));
        assert_eq!(secs("2h 30m"), Ok(9000));
        assert_eq!(secs("1day"), Ok(86_400));
    }

    #[test]
    fn refused_with_a_helpful_message() {
        for bad in [
            "",
            "hari",
            "1",
            "1 bulan",
            "satu hari",
            "1 hari dan",
            "dan 1 hari",
            "-1 hari",
            "1.5 jam",
            "1 hari 2",
            "99999999999999999999 hari",
            "18446744073709551615 minggu",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
        let e = parse_duration("1 bulan").unwrap_err().to_string();
        assert!(e.contains("\"1 bulan\"") && e.contains("1 hari"), "{e}");
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,40}") {
            let _ = parse_duration(&s);
        }

        #[test]
        fn every_indonesian_pair_parses(n in 0u64..100_000, u in 0usize..5) {
            let (unit, factor) = [("detik", 1), ("menit", 60), ("jam", 3600), ("hari", 86_400),
                ("minggu", 604_800)][u];
            prop_assert_eq!(secs(&format!("{n} {unit}")), Ok(n * factor));
        }
    }
}
