//! The link's publish window as a sans-I/O state (like rumqttc's `state.rs`): which outbox
//! events are in flight under which packet id, which seq goes out next, what a PUBACK means for
//! the outbox, and the probing modes (after a refusal, or after the broker's answer broke the
//! connection). Its methods only change state and return what to do; the async link
//! (`super::Link`) reads the outbox, publishes, acknowledges and records events.
//!
//! Inputs, in the order the link sees them:
//! - [`Window::reconnected`]: a new connection; delivery starts again from the oldest event in
//!   the outbox, so nothing unacknowledged is lost with rumqttc's in-memory state;
//! - [`Window::queue_event`] / [`Window::skip`] / [`Window::queue_status`]: the link queued a
//!   publish (or passed over an event it set aside before publishing);
//! - [`Window::published`]: rumqttc gave the oldest queued publish its packet id (publishes go
//!   out in the order they were queued);
//! - [`Window::acked`]: a PUBACK with its verdict; the answer says which seq it was and what to
//!   do with it;
//! - [`Window::broke_connection`], [`Window::refused`], [`Window::accepted`]: the broker's
//!   answer broke the connection, refused an event as it would every event, or took one again.

use std::collections::{HashMap, VecDeque};

use rumqttc::v5::mqttbytes::v5::PubAckReason;

/// What an outgoing QoS 1 publish was, to act on its PUBACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// The outbox event with this seq.
    Event(u64),
    /// The retained online status.
    Status,
    /// The retained offline status at a clean stop.
    Offline,
}

/// What the door does with an event the broker answered, by PUBACK reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted: the event leaves the outbox.
    Delivered,
    /// Refused for this message only: set it aside and go on.
    SetAside,
    /// Refused as every event would be: keep it, pause delivery, raise the alarm.
    Refused,
    /// The broker and the door disagree about packet ids: start the connection over.
    Reconnect,
}

/// Which PUBACK reason codes fall where (`docs/mqtt.md` has the same table).
pub fn verdict(reason: PubAckReason) -> Verdict {
    match reason {
        PubAckReason::Success | PubAckReason::NoMatchingSubscribers => Verdict::Delivered,
        // About the message's content or size: the next event may well pass.
        PubAckReason::PayloadFormatInvalid | PubAckReason::ImplementationSpecificError => {
            Verdict::SetAside
        }
        // About the door (its rights, its topic, its quota): every event would meet the same.
        PubAckReason::NotAuthorized
        | PubAckReason::TopicNameInvalid
        | PubAckReason::QuotaExceeded
        | PubAckReason::UnspecifiedError => Verdict::Refused,
        PubAckReason::PacketIdentifierInUse => Verdict::Reconnect,
    }
}

/// What a PUBACK was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acked {
    /// Outbox event `seq`, with what to do about it. Each seq is answered at most once per
    /// time it was queued.
    Event {
        /// The event.
        seq: u64,
        /// Deliver (remove from the outbox), set aside, pause, or reconnect.
        verdict: Verdict,
    },
    /// A status publish (online or offline).
    Status(Sent),
    /// No publish in flight has this packet id (a late answer from before a reconnect).
    Unknown,
}

/// What to do after the broker's answer broke the connection (a protocol error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poison {
    /// First time: event `seq` (the oldest in flight) goes out alone on the next connection.
    Suspect(u64),
    /// It broke the connection again with only it in flight: set it aside.
    SetAside(u64),
}

/// The publish window of one link (see the module docs).
#[derive(Debug)]
pub struct Window {
    /// Events in flight at most, at full speed.
    limit: usize,
    /// Publishes queued on this connection whose packet id is not known yet, in queue order.
    queued: VecDeque<Sent>,
    /// Publishes sent and not yet acknowledged, by packet id.
    in_flight: HashMap<u16, Sent>,
    /// Events queued or in flight.
    events_in_flight: usize,
    /// The next outbox seq to publish on this connection.
    next_seq: u64,
    /// Why the broker refuses every event, while it does; then one event at a time is tried.
    refused: Option<String>,
    /// The refusal was raised (alarm, status) on this connection.
    refused_raised: bool,
    /// The oldest event in flight when the broker's answer broke the connection: published
    /// alone on the next connection; if that breaks it again, it is set aside.
    suspect: Option<u64>,
}

impl Window {
    /// An empty window of `limit` events in flight (at least 1).
    pub fn new(limit: usize) -> Window {
        Window {
            limit: limit.max(1),
            queued: VecDeque::new(),
            in_flight: HashMap::new(),
            events_in_flight: 0,
            next_seq: 0,
            refused: None,
            refused_raised: false,
            suspect: None,
        }
    }

    /// A new connection: what was queued or in flight on the old one is forgotten (rumqttc's
    /// state died with it), and delivery starts again at `first`, the oldest seq still in the
    /// outbox. A refusal or a suspect from the old connection stays: one event at a time.
    pub fn reconnected(&mut self, first: u64) {
        self.queued.clear();
        self.in_flight.clear();
        self.events_in_flight = 0;
        self.next_seq = first;
        self.refused_raised = false;
    }

    /// The next outbox seq to publish.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Events queued or in flight.
    pub fn events_in_flight(&self) -> usize {
        self.events_in_flight
    }

    /// How many more events may be queued now: up to the limit, or one at a time while the
    /// broker refuses events or a suspect goes out alone (a probe, not a flood of refusals).
    pub fn room(&self) -> usize {
        let limit = if self.refused.is_some() || self.suspect.is_some() {
            1
        } else {
            self.limit
        };
        limit.saturating_sub(self.events_in_flight)
    }

    /// Event `seq` was queued for publishing (the next one after it goes out next).
    pub fn queue_event(&mut self, seq: u64) {
        self.queued.push_back(Sent::Event(seq));
        self.events_in_flight += 1;
        self.next_seq = seq + 1;
    }

    /// Event `seq` is passed over without publishing (set aside before it went out).
    pub fn skip(&mut self, seq: u64) {
        self.next_seq = self.next_seq.max(seq + 1);
    }

    /// A status publish was queued.
    pub fn queue_status(&mut self, kind: Sent) {
        self.queued.push_back(kind);
    }

    /// The oldest queued publish went out with packet id `pkid`. `false` if nothing was queued
    /// (a publish the window does not know about).
    pub fn published(&mut self, pkid: u16) -> bool {
        match self.queued.pop_front() {
            Some(sent) => {
                self.in_flight.insert(pkid, sent);
                true
            }
            None => false,
        }
    }

    /// The broker answered packet `pkid` with `verdict`.
    pub fn acked(&mut self, pkid: u16, verdict: Verdict) -> Acked {
        match self.in_flight.remove(&pkid) {
            Some(Sent::Event(seq)) => {
                self.events_in_flight = self.events_in_flight.saturating_sub(1);
                if verdict == Verdict::Delivered && self.suspect == Some(seq) {
                    self.suspect = None;
                }
                Acked::Event { seq, verdict }
            }
            Some(status) => Acked::Status(status),
            None => Acked::Unknown,
        }
    }

    /// The broker's answer broke the connection (a protocol error, not the network). The oldest
    /// event in flight is the suspect: the first time, it goes out alone on the next connection;
    /// if the connection breaks again with only it in flight, it is set aside, so that one event
    /// cannot stall delivery for good. `None` when no event was in flight.
    pub fn broke_connection(&mut self) -> Option<Poison> {
        let oldest = self
            .in_flight
            .values()
            .filter_map(|s| match s {
                Sent::Event(seq) => Some(*seq),
                _ => None,
            })
            .min()?;
        if self.suspect == Some(oldest) && self.events_in_flight == 1 {
            self.suspect = None;
            Some(Poison::SetAside(oldest))
        } else {
            self.suspect = Some(oldest);
            Some(Poison::Suspect(oldest))
        }
    }

    /// The broker refused an event as it would every event, for `why`. Returns whether this is
    /// the first refusal on this connection (raise the alarm then, once).
    pub fn refused(&mut self, why: String) -> bool {
        self.refused = Some(why);
        !std::mem::replace(&mut self.refused_raised, true)
    }

    /// An event went through: if the broker refused events before, the reason it gave (delivery
    /// resumes at full window).
    pub fn accepted(&mut self) -> Option<String> {
        self.refused.take()
    }

    /// Why the broker refuses every event, while it does.
    pub fn refusal(&self) -> Option<&str> {
        self.refused.as_deref()
    }

    /// After a pause: try again from `first`, the oldest seq in the outbox.
    pub fn rewind(&mut self, first: u64) {
        self.next_seq = first;
    }

    /// Whether the offline status is queued or in flight (not yet acknowledged).
    pub fn offline_pending(&self) -> bool {
        self.queued.contains(&Sent::Offline) || self.in_flight.values().any(|s| *s == Sent::Offline)
    }
}

#[cfg(test)]
mod tests;
