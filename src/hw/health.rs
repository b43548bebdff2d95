//! Whether each configured reader is up: its device open (serial) or present in pcscd (PC/SC).
//!
//! The card sources report their state here as it changes, and status (the control socket and
//! the MQTT status) reads it. A process-wide registry keyed by reader name, because sources run
//! on their own tasks and threads and only ever write their own entry.

use std::collections::HashMap;
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

fn registry() -> &'static Mutex<HashMap<String, Health>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Health>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Records `reader`'s state; a repeat of the same up/down keeps the first `since`.
pub fn report(reader: &str, up: bool, detail: impl Into<String>) {
    let mut map = registry().lock().unwrap_or_else(|e| e.into_inner());
    let entry = map.get(reader);
    if entry.is_some_and(|h| h.up == up) {
        return;
    }
    map.insert(
        reader.to_string(),
        Health {
            up,
            since: Timestamp::now(),
            detail: detail.into(),
        },
    );
}

/// `reader`'s last reported state, if it reported.
pub fn get(reader: &str) -> Option<Health> {
    registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(reader)
        .cloned()
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
}
