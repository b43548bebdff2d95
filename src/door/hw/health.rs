//! Whether each configured reader is up: its device open (serial) or present in pcscd (PC/SC).
//!
//! The card sources report their state here as it changes, and status (the control socket and
//! the MQTT status) reads it. A process-wide registry keyed by reader name, because sources run
//! on their own tasks and threads and only ever write their own entry.
//!
//! Every change is also numbered in a short log ([`changes_since`]), so the door task can turn
//! each one into a `reader.down` / `reader.up` event, even a reader that went down and came back
//! between two of its looks.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, OnceLock};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A reader's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `up`: the reader can deliver taps; `down`: it cannot (unplugged, pcscd gone, …).
    pub up: bool,
    /// Since when.
    pub since: Timestamp,
    /// Why, in a few words (the device, or the error).
    pub detail: String,
}

/// One change of a reader's state, numbered in the order the changes were reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Its number: process-wide, increasing by one per change.
    pub number: u64,
    /// The reader (name from the config).
    pub reader: String,
    /// Its new state.
    pub health: Health,
}

/// How many changes the log keeps (every reader together). A reader backs off at least 100 ms
/// between attempts, so this is minutes of flapping; a reader of the log that fell further
/// behind misses the oldest changes, never the current state.
pub const LOG_LEN: usize = 1024;

#[derive(Default)]
struct Registry {
    current: HashMap<String, Health>,
    log: VecDeque<Change>,
    /// The number the next change gets.
    next: u64,
}

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(Registry::default()))
}

/// Records `reader`'s state; a repeat of the same up/down keeps the first `since` and is not a
/// change.
pub fn report(reader: &str, up: bool, detail: impl Into<String>) {
    let mut reg = registry().lock().unwrap_or_else(|e| e.into_inner());
    if reg.current.get(reader).is_some_and(|h| h.up == up) {
        return;
    }
    let health = Health {
        up,
        since: Timestamp::now(),
        detail: detail.into(),
    };
    reg.current.insert(reader.to_string(), health.clone());
    let number = reg.next;
    reg.next += 1;
    if reg.log.len() == LOG_LEN {
        reg.log.pop_front();
    }
    reg.log.push_back(Change {
        number,
        reader: reader.to_string(),
        health,
    });
}

/// `reader`'s last reported state, if it reported.
pub fn get(reader: &str) -> Option<Health> {
    registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .current
        .get(reader)
        .cloned()
}

/// The number the next change will get: pass it to [`changes_since`] to see only later ones.
pub fn cursor() -> u64 {
    registry().lock().unwrap_or_else(|e| e.into_inner()).next
}

/// Changes numbered `cursor` or later still in the log, oldest first, and the cursor for the
/// next call.
pub fn changes_since(cursor: u64) -> (Vec<Change>, u64) {
    let reg = registry().lock().unwrap_or_else(|e| e.into_inner());
    let changes = reg
        .log
        .iter()
        .filter(|c| c.number >= cursor)
        .cloned()
        .collect();
    (changes, reg.next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeat_keeps_the_first_since_and_a_change_replaces_it() {
        report("health-test", false, "starting");
        let first = get("health-test").expect("reported");
        report("health-test", false, "still down");
        assert_eq!(get("health-test"), Some(first.clone()));
        report("health-test", true, "/dev/ttyUSB0");
        let up = get("health-test").expect("reported");
        assert!(up.up);
        assert_eq!(up.detail, "/dev/ttyUSB0");
        assert!(get("never-reported").is_none());
    }

    #[test]
    fn every_change_is_logged_once_in_order() {
        let start = cursor();
        report("health-log-test", false, "unplugged");
        report("health-log-test", false, "still unplugged");
        report("health-log-test", true, "/dev/ttyUSB0");
        report("health-log-test", true, "/dev/ttyUSB0");
        report("health-log-test", false, "unplugged again");
        let (changes, next) = changes_since(start);
        // Other tests report too: keep this reader's changes.
        let mine: Vec<(bool, &str)> = changes
            .iter()
            .filter(|c| c.reader == "health-log-test")
            .map(|c| (c.health.up, c.health.detail.as_str()))
            .collect();
        assert_eq!(
            mine,
            [
                (false, "unplugged"),
                (true, "/dev/ttyUSB0"),
                (false, "unplugged again")
            ]
        );
        assert!(changes.windows(2).all(|w| w[0].number < w[1].number));
        let (later, _) = changes_since(next);
        assert!(later.iter().all(|c| c.reader != "health-log-test"));
    }
}
