//! Events: what the door tells the office system. Schema in `docs/events.md`.
//!
//! The core produces [`EventDraft`]s; the outbox stamps each with its unique id, per-door sequence
//! number, time, site and door when it makes it durable, giving an [`Event`].

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::decision::Decision;
use super::text::bounded;

/// Schema identifier carried by every event.
pub const EVENT_SCHEMA: &str = "pintu.event.v1";

/// Largest size of one event's JSON, in bytes. Guaranteed by the field limits ([`FIELD_MAX`]),
/// which [`EventDraft::into_event`] applies to every event; far below the door's largest MQTT
/// packet, so an event can always be sent. Documented in `docs/events.md`.
pub const EVENT_MAX_BYTES: usize = 12 * 1024;

/// Limits, in characters, of an event's text fields (`docs/events.md`).
pub struct FieldLimits {
    /// Identifiers: site, door, reader, holder, card, escort, visit, visitor.
    pub id: usize,
    /// The machine-readable `reason`.
    pub reason: usize,
    /// The human-readable `detail`.
    pub detail: usize,
}

/// The limits every event is held to.
pub const FIELD_MAX: FieldLimits = FieldLimits {
    id: 128,
    reason: 128,
    detail: 1024,
};

/// The kinds of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    /// A tap opened the door.
    #[serde(rename = "access.granted")]
    AccessGranted,
    /// A tap was refused.
    #[serde(rename = "access.denied")]
    AccessDenied,
    /// The lock was released.
    #[serde(rename = "lock.released")]
    LockReleased,
    /// The lock was secured again.
    #[serde(rename = "lock.secured")]
    LockSecured,
    /// The door contact opened.
    #[serde(rename = "door.opened")]
    DoorOpened,
    /// The door contact closed.
    #[serde(rename = "door.closed")]
    DoorClosed,
    /// Alarm: the door opened while locked and no exit was requested.
    #[serde(rename = "door.forced_open")]
    DoorForcedOpen,
    /// The forced-open alarm cleared (the door closed).
    #[serde(rename = "door.forced_open.cleared")]
    DoorForcedOpenCleared,
    /// The door has been open too long: reason `prealarm`, then `alarm`.
    #[serde(rename = "door.held_open")]
    DoorHeldOpen,
    /// The held-open (pre-)alarm cleared (the door closed).
    #[serde(rename = "door.held_open.cleared")]
    DoorHeldOpenCleared,
    /// The request-to-exit button was pressed.
    #[serde(rename = "exit.requested")]
    ExitRequested,
    /// A new list became active.
    #[serde(rename = "list.applied")]
    ListApplied,
    /// A list was refused; the current one stays.
    #[serde(rename = "list.rejected")]
    ListRejected,
    /// The store's list cache was rebuilt from the last good list file.
    #[serde(rename = "store.rebuilt")]
    StoreRebuilt,
    /// The daemon started.
    #[serde(rename = "daemon.started")]
    DaemonStarted,
    /// The daemon is stopping (lock secured).
    #[serde(rename = "daemon.stopping")]
    DaemonStopping,
    /// A hardware fault (lock or reader).
    #[serde(rename = "hardware.fault")]
    HardwareFault,
    /// A tap was captured for enrollment (`pintuctl enroll --door`) instead of decided.
    #[serde(rename = "card.captured")]
    CardCaptured,
    /// A signed command was accepted and carried out.
    #[serde(rename = "command.accepted")]
    CommandAccepted,
    /// A command was refused (unsigned, mis-signed, replayed, expired, ...).
    #[serde(rename = "command.rejected")]
    CommandRejected,
    /// Alarm: the outbox crossed a depth threshold (reason `warning` or `critical`).
    #[serde(rename = "outbox.alarm")]
    OutboxAlarm,
    /// The outbox fell back below the warning threshold.
    #[serde(rename = "outbox.alarm.cleared")]
    OutboxAlarmCleared,
    /// Lockdown began: only the named role opens the door.
    #[serde(rename = "lockdown.started")]
    LockdownStarted,
    /// Lockdown ended.
    #[serde(rename = "lockdown.ended")]
    LockdownEnded,
    // -- visits, escort, presence (issue 6) go below this line --
    /// Alarm: a visitor is still inside after the visit's window ended (repeated until they leave).
    #[serde(rename = "visit.overstay")]
    VisitOverstay,
    /// A visitor badge was tapped and waits for an escort's card.
    #[serde(rename = "escort.awaited")]
    EscortAwaited,
    /// Alarm: the last escort left while a visitor is inside.
    #[serde(rename = "visitor.unescorted")]
    VisitorUnescorted,
    /// The unescorted-visitor alarm cleared: an escort came in, or the last visitor left.
    #[serde(rename = "visitor.unescorted.cleared")]
    VisitorUnescortedCleared,
    /// A visitor left: the SOP's exit record (visitor, badge, escort, entry, exit, duration).
    #[serde(rename = "visit.closed")]
    VisitClosed,
    /// Alarm: entry while already inside, or exit while not inside (soft: granted; hard: denied).
    #[serde(rename = "antipassback.violation")]
    AntipassbackViolation,
    /// Alarm: too many unknown or denied taps on a reader; it is locked out for a while.
    #[serde(rename = "reader.locked_out")]
    ReaderLockedOut,
    /// A reader's lockout ended.
    #[serde(rename = "reader.lockout.cleared")]
    ReaderLockoutCleared,
    /// Alarm: a reader cannot deliver taps (serial port gone, pcscd or the PC/SC reader gone).
    #[serde(rename = "reader.down")]
    ReaderDown,
    /// A reader that was down delivers taps again.
    #[serde(rename = "reader.up")]
    ReaderUp,
    /// Alarm: the wall clock is below the trusted-time floor; decisions use the floor.
    #[serde(rename = "clock.untrusted")]
    ClockUntrusted,
    /// The wall clock reached the trusted-time floor again.
    #[serde(rename = "clock.untrusted.cleared")]
    ClockUntrustedCleared,
    /// Someone left through the exit button while several were inside: presence is unchanged.
    #[serde(rename = "exit.unattributed")]
    ExitUnattributed,
    /// Someone recorded inside longer than `[visits] presence_expiry` was dropped from presence
    /// (a door without exit information cannot see them leave).
    #[serde(rename = "presence.expired")]
    PresenceExpired,
    // -- list expiry, the freeze attack (issue 10) --
    /// Warning: the active list expires within `[list] expiry_warning`.
    #[serde(rename = "list.expiring")]
    ListExpiring,
    /// Alarm: the active list has expired; every tap is denied until a new list arrives.
    #[serde(rename = "list.expired")]
    ListExpired,
    // -- damaged storage (issue 10) --
    /// Alarm: a stored list file (`list.signed` or its copy) was missing or damaged at start;
    /// `reason` says what the door did (`restored_from_copy`, `no_good_copy`, `copy_rewritten`,
    /// `copy_write_failed`).
    #[serde(rename = "list.file_damaged")]
    ListFileDamaged,
    // -- door hardening (issue 15) --
    /// Alarm at start: `[door] bench = true`, a real lock next to simulated readers or inputs.
    #[serde(rename = "door.bench_mode")]
    DoorBenchMode,
    /// A control-socket request was refused for lack of permission (e.g. `capture`).
    #[serde(rename = "control.refused")]
    ControlRefused,
    // -- MQTT link hardening (issue 15) --
    /// Alarm: an event could not be delivered on its own (larger than the broker's or the door's
    /// packet limit, or refused by the broker for that message only); it was set aside in the
    /// store and delivery went on. `reason` is `too_large` or the broker's reason code; `detail`
    /// names its seq, kind and size.
    #[serde(rename = "event.set_aside")]
    EventSetAside,
    /// Alarm: the broker refuses the door's events (`reason`: its PUBACK reason code, e.g.
    /// `not_authorized`); they stay in the outbox and delivery is retried with backoff. Raised
    /// at the first refusal on each connection.
    #[serde(rename = "mqtt.delivery_refused")]
    MqttDeliveryRefused,
    /// The broker accepts the door's events again.
    #[serde(rename = "mqtt.delivery_refused.cleared")]
    MqttDeliveryRefusedCleared,
    /// Warning at start: the MQTT link uses plain TCP (`[mqtt] insecure = true`, no TLS).
    #[serde(rename = "mqtt.insecure")]
    MqttInsecure,
    // -- systemd gave up (issue 15) --
    /// Alarm: systemd gave up on pintud (start limit hit, or a failure it does not retry);
    /// recorded by `pintud --report-failure` from pintud-failed.service. `reason`: systemd's
    /// service result (`exit-code`, `signal`, `watchdog`, `start-limit-hit`, ...).
    #[serde(rename = "daemon.failed")]
    DaemonFailed,
}

impl EventKind {
    /// The wire name, e.g. `access.granted`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::AccessGranted => "access.granted",
            EventKind::AccessDenied => "access.denied",
            EventKind::LockReleased => "lock.released",
            EventKind::LockSecured => "lock.secured",
            EventKind::DoorOpened => "door.opened",
            EventKind::DoorClosed => "door.closed",
            EventKind::ExitRequested => "exit.requested",
            EventKind::ListApplied => "list.applied",
            EventKind::ListRejected => "list.rejected",
            EventKind::StoreRebuilt => "store.rebuilt",
            EventKind::DaemonStarted => "daemon.started",
            EventKind::DaemonStopping => "daemon.stopping",
            EventKind::DoorForcedOpen => "door.forced_open",
            EventKind::DoorForcedOpenCleared => "door.forced_open.cleared",
            EventKind::DoorHeldOpen => "door.held_open",
            EventKind::DoorHeldOpenCleared => "door.held_open.cleared",
            EventKind::HardwareFault => "hardware.fault",
            EventKind::CardCaptured => "card.captured",
            EventKind::CommandAccepted => "command.accepted",
            EventKind::CommandRejected => "command.rejected",
            EventKind::OutboxAlarm => "outbox.alarm",
            EventKind::OutboxAlarmCleared => "outbox.alarm.cleared",
            EventKind::LockdownStarted => "lockdown.started",
            EventKind::LockdownEnded => "lockdown.ended",
            // -- visits, escort, presence (issue 6) go below this line --
            EventKind::VisitOverstay => "visit.overstay",
            EventKind::EscortAwaited => "escort.awaited",
            EventKind::VisitorUnescorted => "visitor.unescorted",
            EventKind::VisitorUnescortedCleared => "visitor.unescorted.cleared",
            EventKind::VisitClosed => "visit.closed",
            EventKind::AntipassbackViolation => "antipassback.violation",
            EventKind::ReaderLockedOut => "reader.locked_out",
            EventKind::ReaderLockoutCleared => "reader.lockout.cleared",
            EventKind::ReaderDown => "reader.down",
            EventKind::ReaderUp => "reader.up",
            EventKind::ClockUntrusted => "clock.untrusted",
            EventKind::ClockUntrustedCleared => "clock.untrusted.cleared",
            EventKind::ExitUnattributed => "exit.unattributed",
            EventKind::PresenceExpired => "presence.expired",
            EventKind::ListExpiring => "list.expiring",
            EventKind::ListExpired => "list.expired",
            EventKind::ListFileDamaged => "list.file_damaged",
            EventKind::DoorBenchMode => "door.bench_mode",
            EventKind::ControlRefused => "control.refused",
            EventKind::EventSetAside => "event.set_aside",
            EventKind::MqttDeliveryRefused => "mqtt.delivery_refused",
            EventKind::MqttDeliveryRefusedCleared => "mqtt.delivery_refused.cleared",
            EventKind::MqttInsecure => "mqtt.insecure",
            EventKind::DaemonFailed => "daemon.failed",
        }
    }
}

/// An event before the outbox numbers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventDraft {
    /// Kind.
    pub kind: EventKind,
    /// Reader name, for taps.
    pub reader: Option<String>,
    /// Holder id, when the card is known.
    pub holder: Option<String>,
    /// Masked card id (`c:` + 8 hex digits of the keyed hash).
    pub card: Option<String>,
    /// `grant` or `deny`, for taps.
    pub decision: Option<&'static str>,
    /// Machine-readable reason (deny reason, rejection code).
    pub reason: Option<String>,
    /// Human-readable detail.
    pub detail: Option<String>,
    /// List version involved (applied, rejected, or the one a tap was decided on).
    pub list_version: Option<u64>,
    /// Holder id of the escort, on a visitor's entry and on visit records.
    pub escort: Option<String>,
    /// Visit id, on visitor events.
    pub visit: Option<String>,
    /// The visitor as the visit names them (the badge's holder is the pool badge).
    pub visitor: Option<String>,
    /// When the person entered (wall clock), on `visit.closed` and `visit.overstay`.
    pub entered_at: Option<Timestamp>,
    /// When the person left (wall clock), on `visit.closed`.
    pub exited_at: Option<Timestamp>,
    /// Time inside in whole seconds, on `visit.closed`.
    pub duration_s: Option<u64>,
}

impl EventDraft {
    /// A draft with only its kind set.
    pub fn new(kind: EventKind) -> Self {
        EventDraft {
            kind,
            reader: None,
            holder: None,
            card: None,
            decision: None,
            reason: None,
            detail: None,
            list_version: None,
            escort: None,
            visit: None,
            visitor: None,
            entered_at: None,
            exited_at: None,
            duration_s: None,
        }
    }

    /// Sets the human-readable detail.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Sets the machine-readable reason.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Sets the list version.
    pub fn list_version(mut self, version: Option<u64>) -> Self {
        self.list_version = version;
        self
    }

    /// Sets the reader name.
    pub fn reader(mut self, reader: impl Into<String>) -> Self {
        self.reader = Some(reader.into());
        self
    }

    /// Sets the holder id and masked card of the person the event is about.
    pub fn person(mut self, holder: impl Into<String>, masked_card: impl Into<String>) -> Self {
        self.holder = Some(holder.into());
        self.card = Some(masked_card.into());
        self
    }

    /// Sets the escort's holder id.
    pub fn escort(mut self, escort: Option<String>) -> Self {
        self.escort = escort;
        self
    }

    /// Sets the visit id and the visitor it names.
    pub fn visit(mut self, id: impl Into<String>, visitor: impl Into<String>) -> Self {
        self.visit = Some(id.into());
        self.visitor = Some(visitor.into());
        self
    }

    /// The event for a decided tap.
    pub fn tap(
        decision: Decision,
        reader: &str,
        holder: Option<&str>,
        masked_card: String,
        list_version: Option<u64>,
    ) -> Self {
        let kind = match decision {
            Decision::Grant => EventKind::AccessGranted,
            Decision::Deny(_) => EventKind::AccessDenied,
        };
        EventDraft {
            kind,
            reader: Some(reader.to_string()),
            holder: holder.map(str::to_string),
            card: Some(masked_card),
            decision: Some(decision.as_str()),
            reason: decision.reason().map(|r| r.as_str().to_string()),
            detail: None,
            list_version,
            escort: None,
            visit: None,
            visitor: None,
            entered_at: None,
            exited_at: None,
            duration_s: None,
        }
    }

    /// Stamps the draft into a full event. Every text field is cut to its limit
    /// ([`FIELD_MAX`]) and stripped of control characters here, whatever the caller put in, so
    /// no event can exceed [`EVENT_MAX_BYTES`] and none can carry terminal or log escapes.
    pub fn into_event(self, id: Uuid, seq: u64, time: Timestamp, site: &str, door: &str) -> Event {
        let b = |v: Option<String>, max: usize| v.map(|s| bounded(&s, max));
        Event {
            schema: EVENT_SCHEMA.to_string(),
            id,
            seq,
            time,
            site: bounded(site, FIELD_MAX.id),
            door: bounded(door, FIELD_MAX.id),
            kind: self.kind,
            reader: b(self.reader, FIELD_MAX.id),
            holder: b(self.holder, FIELD_MAX.id),
            card: b(self.card, FIELD_MAX.id),
            decision: self.decision.map(str::to_string),
            reason: b(self.reason, FIELD_MAX.reason),
            detail: b(self.detail, FIELD_MAX.detail),
            list_version: self.list_version,
            escort: b(self.escort, FIELD_MAX.id),
            visit: b(self.visit, FIELD_MAX.id),
            visitor: b(self.visitor, FIELD_MAX.id),
            entered_at: self.entered_at,
            exited_at: self.exited_at,
            duration_s: self.duration_s,
        }
    }
}

/// An event as stored in the outbox and sent to the office system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Always [`EVENT_SCHEMA`].
    pub schema: String,
    /// Unique id, for de-duplication of at-least-once delivery.
    pub id: Uuid,
    /// Per-door sequence number, gap-free and increasing.
    pub seq: u64,
    /// Wall-clock time at the door.
    pub time: Timestamp,
    /// Site id.
    pub site: String,
    /// Door id.
    pub door: String,
    /// What happened.
    pub kind: EventKind,
    /// Reader, for taps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reader: Option<String>,
    /// Holder id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// Masked card id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<String>,
    /// `grant` / `deny`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    /// Machine-readable reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// List version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_version: Option<u64>,
    /// Escort's holder id (visitor entries, visit records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escort: Option<String>,
    /// Visit id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visit: Option<String>,
    /// The visitor, as the visit names them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visitor: Option<String>,
    /// Entry time (wall clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entered_at: Option<Timestamp>,
    /// Exit time (wall clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exited_at: Option<Timestamp>,
    /// Time inside, whole seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::DenyReason;

    /// Snapshot of the wire form: changing it breaks the office system's parser.
    #[test]
    fn denied_tap_json_snapshot() {
        let e = EventDraft::tap(
            Decision::Deny(DenyReason::UnknownCard),
            "entry",
            None,
            "c:0a1b2c3d".into(),
            Some(4),
        )
        .into_event(
            Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            17,
            "2026-11-23T04:00:00Z".parse().unwrap(),
            "kominfo",
            "server-room",
        );
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(
            json,
            r#"{"schema":"pintu.event.v1","id":"01234567-89ab-cdef-0123-456789abcdef","seq":17,"time":"2026-11-23T04:00:00Z","site":"kominfo","door":"server-room","kind":"access.denied","reader":"entry","card":"c:0a1b2c3d","decision":"deny","reason":"unknown_card","list_version":4}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), e);
    }

    /// The worst case: every text field full of 4-byte characters and JSON-escaped quotes, and
    /// control characters (escaped as visible text), with every optional field set.
    #[test]
    fn no_event_exceeds_the_maximum_size() {
        for filler in ["\u{1F6AA}", "\"", "\\", "\u{1b}", "x"] {
            let huge = filler.repeat(3_000_000 / filler.len());
            let mut d = EventDraft::new(EventKind::ListRejected)
                .reader(huge.clone())
                .person(huge.clone(), huge.clone())
                .reason(huge.clone())
                .detail(huge.clone())
                .visit(huge.clone(), huge.clone())
                .escort(Some(huge.clone()))
                .list_version(Some(u64::MAX));
            d.decision = Some("deny");
            d.entered_at = Some(Timestamp::MAX);
            d.exited_at = Some(Timestamp::MAX);
            d.duration_s = Some(u64::MAX);
            let e = d.into_event(Uuid::max(), u64::MAX, Timestamp::MAX, &huge, &huge);
            let json = serde_json::to_vec(&e).unwrap();
            assert!(
                json.len() <= EVENT_MAX_BYTES,
                "{} bytes with {filler:?}",
                json.len()
            );
            assert!(!json.contains(&0x1b), "a raw ESC reached the event");
        }
    }

    #[test]
    fn kind_names_match_serde() {
        for k in [
            EventKind::AccessGranted,
            EventKind::ListRejected,
            EventKind::StoreRebuilt,
            EventKind::HardwareFault,
            EventKind::CardCaptured,
            EventKind::ReaderDown,
            EventKind::ReaderUp,
            EventKind::ListExpiring,
            EventKind::ListExpired,
            EventKind::ListFileDamaged,
            EventKind::DoorBenchMode,
            EventKind::ControlRefused,
        ] {
            assert_eq!(
                serde_json::to_string(&k).unwrap(),
                format!("\"{}\"", k.as_str())
            );
        }
    }
}
