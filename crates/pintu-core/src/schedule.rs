//! Weekly schedules: on which days and between which times of day an entry may open the door,
//! in the site's time zone.
//!
//! A window whose `until` is not after its `from` runs past midnight: `22:00`–`06:00` on `mon`
//! covers Monday 22:00 to Tuesday 06:00. `until` may be `24:00` (end of day).

use std::fmt;
use std::str::FromStr;

use jiff::civil::Weekday;
use serde::{Deserialize, Serialize};

/// Minutes since midnight, `0..=1440` (`24:00` is allowed as an end time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MinuteOfDay(u16);

impl MinuteOfDay {
    /// Builds from hours and minutes; `24:00` is the only value with hour 24.
    pub fn new(hour: u8, minute: u8) -> Option<Self> {
        match (hour, minute) {
            (24, 0) => Some(MinuteOfDay(1440)),
            (h, m) if h < 24 && m < 60 => Some(MinuteOfDay(h as u16 * 60 + m as u16)),
            _ => None,
        }
    }

    /// Minutes since midnight.
    pub fn minutes(self) -> u16 {
        self.0
    }

    /// From minutes since midnight, `0..=1440`.
    pub fn from_minutes(minutes: u16) -> Option<Self> {
        (minutes <= 1440).then_some(MinuteOfDay(minutes))
    }
}

impl FromStr for MinuteOfDay {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let err = || format!("expected a time of day like \"07:30\", found {s:?}");
        let (h, m) = s.split_once(':').ok_or_else(err)?;
        if h.is_empty() || h.len() > 2 || m.len() != 2 {
            return Err(err());
        }
        let h: u8 = h.parse().map_err(|_| err())?;
        let m: u8 = m.parse().map_err(|_| err())?;
        MinuteOfDay::new(h, m).ok_or_else(err)
    }
}

impl fmt::Display for MinuteOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl Serialize for MinuteOfDay {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MinuteOfDay {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A set of weekdays, serialized as `["mon", "tue", ...]`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Days(u8);

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Days {
    /// Every day of the week.
    pub const ALL: Days = Days(0x7f);

    fn bit(day: Weekday) -> u8 {
        1 << (day.to_monday_zero_offset() as u8)
    }

    /// Whether `day` is in the set.
    pub fn contains(self, day: Weekday) -> bool {
        self.0 & Self::bit(day) != 0
    }

    /// Adds `day` to the set.
    pub fn insert(&mut self, day: Weekday) {
        self.0 |= Self::bit(day);
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The set as bits (bit 0 = Monday).
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Builds a set from the low 7 bits of `bits` (bit 0 = Monday).
    pub fn from_bits(bits: u8) -> Days {
        Days(bits & 0x7f)
    }
}

impl fmt::Debug for Days {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = (0..7)
            .filter(|i| self.0 & (1 << i) != 0)
            .map(|i| DAY_NAMES[i])
            .collect();
        write!(f, "{names:?}")
    }
}

impl Serialize for Days {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(None)?;
        for (i, name) in DAY_NAMES.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                seq.serialize_element(name)?;
            }
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for Days {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let names = Vec::<std::borrow::Cow<'de, str>>::deserialize(d)?;
        let mut days = Days::default();
        for name in names {
            let i = DAY_NAMES
                .iter()
                .position(|n| n.eq_ignore_ascii_case(&name))
                .ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "unknown day {name:?} (expected one of mon tue wed thu fri sat sun)"
                    ))
                })?;
            days.0 |= 1 << i;
        }
        if days.is_empty() {
            return Err(serde::de::Error::custom(
                "a schedule window needs at least one day",
            ));
        }
        Ok(days)
    }
}

/// One weekly window: on `days`, from `from` until `until` (local time of the site).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Days the window starts on.
    pub days: Days,
    /// Start, inclusive.
    pub from: MinuteOfDay,
    /// End, exclusive; not after `from` means the window runs past midnight.
    pub until: MinuteOfDay,
}

impl Window {
    /// Checks what serde cannot: the window is not empty and starts before 24:00.
    pub fn validate(&self) -> Result<(), String> {
        if self.from == self.until {
            return Err(format!(
                "schedule window {}-{} is empty (from equals until)",
                self.from, self.until
            ));
        }
        if self.from.minutes() >= 1440 {
            return Err("a schedule window cannot start at 24:00".into());
        }
        Ok(())
    }

    /// Whether local `day` at `minute` (0..1440) falls inside this window.
    pub fn contains(&self, day: Weekday, minute: u16) -> bool {
        let (from, until) = (self.from.minutes(), self.until.minutes());
        if from < until {
            self.days.contains(day) && minute >= from && minute < until
        } else {
            // Past midnight: the evening part belongs to `day`, the morning part to the day before.
            (self.days.contains(day) && minute >= from)
                || (self.days.contains(day.previous()) && minute < until)
        }
    }
}

/// A weekly schedule: open when any window contains the moment. No schedule means always.
pub fn schedule_allows(windows: &[Window], day: Weekday, minute: u16) -> bool {
    windows.iter().any(|w| w.contains(day, minute))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use Weekday::*;

    fn w(days: &[Weekday], from: &str, until: &str) -> Window {
        let mut d = Days::default();
        for day in days {
            d.insert(*day);
        }
        Window {
            days: d,
            from: from.parse().unwrap(),
            until: until.parse().unwrap(),
        }
    }

    #[test]
    fn minute_of_day_parses() {
        assert_eq!("07:30".parse::<MinuteOfDay>().unwrap().minutes(), 450);
        assert_eq!("7:05".parse::<MinuteOfDay>().unwrap().minutes(), 425);
        assert_eq!("24:00".parse::<MinuteOfDay>().unwrap().minutes(), 1440);
        for bad in [
            "24:01", "25:00", "07:60", "0730", "07:3", "", "ab:cd", "-1:00",
        ] {
            assert!(bad.parse::<MinuteOfDay>().is_err(), "{bad}");
        }
    }

    #[test]
    fn office_hours_table() {
        let office = w(
            &[Monday, Tuesday, Wednesday, Thursday, Friday],
            "07:00",
            "17:00",
        );
        let cases = [
            (Monday, 7 * 60, true),
            (Monday, 7 * 60 - 1, false),
            (Friday, 17 * 60 - 1, true),
            (Friday, 17 * 60, false),
            (Saturday, 12 * 60, false),
            (Sunday, 8 * 60, false),
        ];
        for (day, minute, expected) in cases {
            assert_eq!(office.contains(day, minute), expected, "{day:?} {minute}");
        }
    }

    #[test]
    fn overnight_window_belongs_to_its_start_day() {
        let night = w(&[Friday], "22:00", "06:00");
        assert!(night.contains(Friday, 22 * 60));
        assert!(night.contains(Saturday, 5 * 60 + 59));
        assert!(!night.contains(Saturday, 6 * 60));
        assert!(!night.contains(Friday, 5 * 60)); // Thursday night is not in the window
        assert!(!night.contains(Saturday, 22 * 60));
        let sunday_night = w(&[Sunday], "20:00", "02:00");
        assert!(sunday_night.contains(Monday, 60));
    }

    #[test]
    fn end_of_day_and_validation() {
        let late = w(&[Monday], "18:00", "24:00");
        assert!(late.contains(Monday, 1439));
        assert!(!late.contains(Tuesday, 0));
        assert!(w(&[Monday], "08:00", "08:00").validate().is_err());
        assert!(w(&[Monday], "24:00", "08:00").validate().is_err());
        assert!(late.validate().is_ok());
    }

    #[test]
    fn days_serde() {
        let d: Days = serde_json::from_str(r#"["mon","FRI"]"#).unwrap();
        assert!(d.contains(Monday) && d.contains(Friday) && !d.contains(Sunday));
        assert_eq!(serde_json::to_string(&d).unwrap(), r#"["mon","fri"]"#);
        assert!(serde_json::from_str::<Days>(r#"["funday"]"#).is_err());
        assert!(serde_json::from_str::<Days>(r#"[]"#).is_err());
    }

    fn weekday(i: u8) -> Weekday {
        Weekday::from_monday_zero_offset(i as i8).unwrap()
    }

    proptest! {
        /// A window matches exactly the minutes a brute-force walk over the week says it covers.
        #[test]
        fn window_matches_brute_force(bits in 1u8..128, from in 0u16..1440, until in 1u16..=1440, day in 0u8..7, minute in 0u16..1440) {
            prop_assume!(from != until);
            let win = Window { days: Days::from_bits(bits), from: MinuteOfDay(from), until: MinuteOfDay(until) };
            // Minute of the week, and each covered span as [start, end) on a 7-day circle.
            let t = day as u32 * 1440 + minute as u32;
            let mut expected = false;
            for d in 0..7u32 {
                if bits & (1 << d) == 0 { continue; }
                let start = d * 1440 + from as u32;
                let len = if from < until { (until - from) as u32 } else { (1440 - from + until) as u32 };
                let offset = (t + 7 * 1440 - start) % (7 * 1440);
                if offset < len { expected = true; }
            }
            prop_assert_eq!(win.contains(weekday(day), minute), expected);
        }
    }
}
