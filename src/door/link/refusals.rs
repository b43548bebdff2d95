//! What the link does when the broker says no: an event set aside (refused for itself, too
//! large, or breaking the connection twice), delivery paused while the broker refuses every
//! event, and resumed when it takes one again. The decisions are the window's
//! ([`super::window`]); this records them in the store and as events.

use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{PubAck, PubAckReason};

use super::status::KindOnly;
use super::window::Poison;
use super::Link;
use crate::core::event::{EventDraft, EventKind};
use crate::core::text::bounded;
use crate::mqtt::BROKER_TEXT_MAX;

/// A PUBACK reason code in snake case, for events and status.
pub(super) fn reason_code(reason: PubAckReason) -> &'static str {
    match reason {
        PubAckReason::Success => "success",
        PubAckReason::NoMatchingSubscribers => "no_matching_subscribers",
        PubAckReason::UnspecifiedError => "unspecified_error",
        PubAckReason::ImplementationSpecificError => "implementation_specific_error",
        PubAckReason::NotAuthorized => "not_authorized",
        PubAckReason::TopicNameInvalid => "topic_name_invalid",
        PubAckReason::PacketIdentifierInUse => "packet_identifier_in_use",
        PubAckReason::QuotaExceeded => "quota_exceeded",
        PubAckReason::PayloadFormatInvalid => "payload_format_invalid",
    }
}

/// The reason code with the broker's reason string, if it sent one (bounded, no control chars).
pub(super) fn refusal_text(ack: &PubAck) -> String {
    let code = reason_code(ack.reason);
    match ack
        .properties
        .as_ref()
        .and_then(|p| p.reason_string.as_deref())
    {
        Some(why) => format!("{code} ({})", bounded(why, BROKER_TEXT_MAX)),
        None => code.to_string(),
    }
}

impl Link {
    /// Event `seq` cannot be delivered on its own: move it aside (kept in the store), raise
    /// `event.set_aside`, and let delivery go on.
    pub(super) fn set_aside(&mut self, seq: u64, reason: &str, why: String) {
        let bytes = match self.handle.store().set_aside(seq) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return,
            Err(e) => {
                // Still skipped on this connection; tried again on the next.
                tracing::error!(seq, "cannot set an undeliverable event aside: {e}");
                return;
            }
        };
        self.status_due = true;
        let kind = serde_json::from_slice::<KindOnly>(&bytes)
            .map(|k| k.kind)
            .unwrap_or_else(|_| "unknown".into());
        tracing::error!(seq, kind = %kind, size = bytes.len(), reason, "event set aside (kept in the store, not delivered): {why}");
        if kind == EventKind::EventSetAside.as_str() {
            // The alarm about a set-aside event was itself refused: another alarm would be too.
            return;
        }
        self.handle.record(
            EventDraft::new(EventKind::EventSetAside)
                .reason(reason)
                .detail(format!(
                    "event {seq} ({kind}, {} bytes) could not be delivered and was set aside in the door's store: {why}",
                    bytes.len()
                )),
        );
    }

    /// The broker's answer broke the connection (a protocol error, not the network). The oldest
    /// event in flight is the suspect: the first time, it goes out alone on the next connection;
    /// if the connection breaks again with only it in flight, it is set aside, so that one event
    /// cannot stall delivery for good.
    pub(super) fn suspect_poison(&mut self, error: &str) {
        match self.window.broke_connection() {
            None => {}
            Some(Poison::SetAside(seq)) => self.set_aside(
                seq,
                "broke_connection",
                format!(
                    "the broker's answer to it broke the connection twice ({})",
                    bounded(error, BROKER_TEXT_MAX)
                ),
            ),
            Some(Poison::Suspect(seq)) => tracing::warn!(
                seq,
                "the broker's answer broke the connection ({error}); event {seq} goes out alone next"
            ),
        }
    }

    /// The broker refused event `seq` as it would every event: it stays in the outbox, delivery
    /// pauses (then one event at a time, with backoff), and the alarm is raised once per
    /// connection.
    pub(super) fn delivery_refused(&mut self, seq: u64, why: String) {
        self.handle.store().set_delivery_refused(Some(why.clone()));
        if self.window.refused(why.clone()) {
            self.status_due = true;
            tracing::error!(
                seq,
                outbox = self.handle.store().outbox_depth(),
                "the broker refuses the door's events: {why}; they stay in the outbox (check the door's credentials and ACL: write on {})",
                self.topics.events
            );
            self.handle.record(
                EventDraft::new(EventKind::MqttDeliveryRefused)
                    .reason(why.split(' ').next().unwrap_or("refused").to_string())
                    .detail(format!(
                        "the broker refuses the door's events on {}: {why}; events stay in the outbox",
                        self.topics.events
                    )),
            );
        } else {
            tracing::debug!(seq, "event refused again: {why}");
        }
        if self.retry_at.is_none() {
            self.retry_at = Some(tokio::time::Instant::now() + self.refusal_backoff.next_delay());
        }
    }

    /// An event went through after refusals: delivery resumes at full window.
    pub(super) fn delivery_accepted(&mut self) {
        let Some(was) = self.window.accepted() else {
            return;
        };
        self.handle.store().set_delivery_refused(None);
        self.refusal_backoff.reset();
        self.retry_at = None;
        self.status_due = true;
        tracing::info!("the broker accepts the door's events again (was: {was})");
        self.handle.record(
            EventDraft::new(EventKind::MqttDeliveryRefusedCleared).detail(format!(
                "the broker accepts the door's events again (was: {was})"
            )),
        );
    }

    /// The refusal backoff ran out: try the oldest event again, alone, once nothing is in flight.
    pub(super) async fn retry_refused(&mut self) {
        if self.window.events_in_flight() > 0 {
            // Refusals for the rest of the window are still coming back.
            self.retry_at = Some(tokio::time::Instant::now() + Duration::from_millis(500));
            return;
        }
        self.retry_at = None;
        if let Ok(Some(first)) = self.handle.store().outbox_first() {
            self.window.rewind(first);
        }
        self.pump().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_text_is_bounded_and_without_control_characters() {
        let ack = PubAck {
            pkid: 1,
            reason: PubAckReason::NotAuthorized,
            properties: Some(rumqttc::v5::mqttbytes::v5::PubAckProperties {
                reason_string: Some(format!("\u{1b}[31mdenied{}", "!".repeat(10_000))),
                user_properties: Vec::new(),
            }),
        };
        let text = refusal_text(&ack);
        assert!(
            text.starts_with("not_authorized (\\u{1b}[31mdenied"),
            "{text}"
        );
        assert!(!text.chars().any(char::is_control));
        assert!(text.chars().count() < BROKER_TEXT_MAX + 40);
    }
}
