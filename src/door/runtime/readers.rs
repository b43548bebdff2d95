//! Reader health for the door task: turns the changes [`crate::door::hw::health`] reports into
//! `reader.down` and `reader.up` events, so the office sees an unplugged reader (or pcscd gone)
//! when it happens, and each time it happens, not only in the next status.

use std::collections::HashMap;

use crate::core::event::{EventDraft, EventKind};
use crate::door::config::{ReaderBackend, ReaderConfig};
use crate::door::hw::health;

/// Where the door task is in the health change log, and what it last said of each reader.
pub(crate) struct ReaderWatch {
    /// The next health change to look at.
    cursor: u64,
    /// This door's readers that have a card source (serial, PC/SC), and whether each was last
    /// reported up. Assumed up until one says otherwise: a reader that opens at start raises
    /// nothing, one that cannot raises `reader.down`.
    up: HashMap<String, bool>,
}

impl ReaderWatch {
    /// Watches `readers` for changes reported from now on.
    pub fn new(readers: &[ReaderConfig]) -> Self {
        ReaderWatch {
            cursor: health::cursor(),
            up: readers
                .iter()
                .filter(|r| r.backend != ReaderBackend::Sim)
                .map(|r| (r.name.clone(), true))
                .collect(),
        }
    }

    /// The events for the changes since the last call, in the order they happened.
    pub fn events(&mut self) -> Vec<EventDraft> {
        let (changes, next) = health::changes_since(self.cursor);
        self.cursor = next;
        let mut events = Vec::new();
        for change in changes {
            let Some(was_up) = self.up.get_mut(&change.reader) else {
                continue;
            };
            if *was_up == change.health.up {
                continue;
            }
            *was_up = change.health.up;
            // The source has logged the change already (once, with its cause).
            let kind = if change.health.up {
                EventKind::ReaderUp
            } else {
                EventKind::ReaderDown
            };
            events.push(
                EventDraft::new(kind)
                    .reader(change.reader)
                    .detail(change.health.detail),
            );
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_that_goes_down_and_up_between_looks_raises_both_and_nothing_twice() {
        // The health log is process-wide: names of our own, and other readers' changes ignored.
        let mut watch = ReaderWatch {
            cursor: health::cursor(),
            up: HashMap::from([("readers-test-a".to_string(), true)]),
        };
        health::report("readers-test-other", false, "not this door's");
        health::report("readers-test-a", false, "unplugged");
        health::report("readers-test-a", true, "plugged in again");
        let seen: Vec<_> = watch
            .events()
            .into_iter()
            .map(|e| (e.kind, e.reader, e.detail))
            .collect();
        assert_eq!(
            seen,
            [
                (
                    EventKind::ReaderDown,
                    Some("readers-test-a".to_string()),
                    Some("unplugged".to_string())
                ),
                (
                    EventKind::ReaderUp,
                    Some("readers-test-a".to_string()),
                    Some("plugged in again".to_string())
                ),
            ]
        );
        assert!(watch.events().is_empty(), "each change once");
        health::report("readers-test-a", true, "a repeat is no change");
        assert!(watch.events().is_empty());
    }
}
