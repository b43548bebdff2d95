//! The MQTT link to the office system: events out of the outbox, retained status with a last will,
//! signed lists and signed commands in. The contract is `docs/mqtt.md` and `docs/asyncapi.yaml`.
//!
//! Two tasks:
//! - the **connection task** ([`crate::mqtt::connection_loop`]) owns one rumqttc `EventLoop` per
//!   connection and only polls it (a poll is never cancelled mid-write). On any error it drops
//!   the event loop with its client and reconnects after an exponential backoff with jitter. A
//!   new client per connection means a request queued for a dead connection dies with it instead
//!   of surfacing on the next one;
//! - the **link task** (this module) does the rest. It publishes durable outbox events in seq
//!   order (QoS 1, a bounded window in flight) and removes an event from the outbox only on its
//!   PUBACK. The bookkeeping (packet id → seq in the order the requests were queued, what a
//!   PUBACK means, what a reconnect resends) is the sans-I/O [`window::Window`]; this task reads
//!   the outbox, publishes and acts on its answers. Every new connection starts again from the
//!   oldest event still in the outbox, so nothing unacknowledged is ever lost with rumqttc's
//!   in-memory state; the office de-duplicates by (door, seq).
//!
//! The link speaks **MQTT 5** (rumqttc's v5 client) so that the broker can say no: a PUBACK
//! carries a reason code. An event refused for itself (too large for the broker or for the door's
//! limit, or a reason code about that message) is **set aside** (kept in the store) with an
//! `event.set_aside` alarm, and delivery goes on with the next seq; a refusal that concerns every
//! event (not authorized, ...) keeps the event in the outbox, pauses delivery with backoff and
//! raises `mqtt.delivery_refused` (status, log, and again on every connection). The table of
//! reason codes is in `docs/mqtt.md`.
//!
//! - [`window`]: the publish window, sans I/O, with its table and property tests;
//! - [`status`]: the retained status message;
//! - `lists`: lists from the broker, handed to the list intake one at a time.
//!
//! The tap → relay path never waits on any of this.

mod commands;
mod lists;
mod refusals;
pub mod status;
pub mod window;

use std::sync::Arc;
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{ConnAck, LastWill, Packet};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, ConnectionError, Event, MqttOptions};
use rumqttc::Outgoing;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::core::command::{CommandPolicy, COMMAND_MAX_BYTES};
use crate::core::event::{EventDraft, EventKind};
use crate::core::text::bounded;
use crate::door::config::MqttConfig;
use crate::door::runtime::DaemonHandle;
use crate::mqtt::connection::is_protocol_error;
use crate::mqtt::{connection_loop, describe, Backoff, ConnectionReport, Topics, BROKER_TEXT_MAX};
use lists::{list_intake, ListSlot};
use refusals::{reason_code, refusal_text};
use status::status_relevant;
use window::{verdict, Acked, Sent, Verdict, Window};

pub use status::{ntp_synced, outbox_level, StatusMessage, STATUS_SCHEMA};

/// Room above the list size cap for the MQTT packet header and topic.
const PACKET_OVERHEAD: usize = 64 * 1024;
/// How long a clean stop waits for the last events and the offline status to be acknowledged.
const DRAIN_ON_STOP: Duration = Duration::from_secs(3);
/// Largest event payload the link publishes; a larger one is set aside (see
/// [`crate::mqtt::EVENT_MAX_BYTES`]).
pub const LINK_EVENT_MAX_BYTES: usize = crate::mqtt::EVENT_MAX_BYTES;

/// What the connection task tells the link task. `generation` numbers connections: anything
/// from an older one is stale.
#[derive(Debug)]
enum LinkMsg {
    Connected {
        generation: u64,
        client: AsyncClient,
        /// The broker's maximum packet size (CONNACK), if it has one.
        max_packet: Option<u32>,
    },
    Event {
        generation: u64,
        // Boxed: an MQTT 5 packet with its properties is large.
        event: Box<Event>,
    },
    Disconnected {
        generation: u64,
        error: String,
        /// The broker sent something rumqttc could not parse (not a network error): possibly
        /// its answer to one event (Mosquitto 2.0 answers a message over `message_size_limit`
        /// with PUBACK reason 0x95, which rumqttc does not accept).
        protocol: bool,
    },
}

/// Size on the wire of a QoS 1 MQTT 5 PUBLISH without properties.
fn publish_packet_size(topic: usize, payload: usize) -> usize {
    // topic length + topic + packet id + properties length (0) + payload
    let remaining = 2 + topic + 2 + 1 + payload;
    let length_bytes = match remaining {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    };
    1 + length_bytes + remaining
}

/// Builds the client options (TLS, credentials, last will, packet limits).
pub fn options(
    cfg: &MqttConfig,
    topics: &Topics,
    site: &str,
    door: &str,
    max_list: usize,
) -> MqttOptions {
    // Client id, broker, keep-alive, credentials, TLS: the shared settings.
    let mut opts = cfg.options_v5();
    // A clean session: what was not acknowledged is republished from the outbox, not from
    // rumqttc's memory.
    opts.set_clean_start(true);
    // Lists are large. Sent in CONNECT, so an MQTT 5 broker does not even send a larger packet.
    // (The outgoing side is checked per event against the broker's CONNACK limit.)
    opts.set_max_packet_size(Some(
        u32::try_from(max_list + PACKET_OVERHEAD).unwrap_or(u32::MAX),
    ));
    // Room for the event window plus status publishes, so packet ids never collide.
    opts.set_outgoing_inflight_upper_limit(cfg.inflight.saturating_mul(2).max(20));
    let will = StatusMessage {
        schema: STATUS_SCHEMA,
        state: "offline",
        site: site.to_string(),
        door: door.to_string(),
        time: None,
        online: None,
    };
    opts.set_last_will(LastWill::new(
        topics.status.clone(),
        serde_json::to_vec(&will).unwrap_or_default(),
        QoS::AtLeastOnce,
        true,
        None,
    ));
    opts
}

/// Runs the link until `stop` is cancelled; then publishes what is left (bounded) and the
/// offline status, and disconnects cleanly.
pub async fn run(handle: Arc<DaemonHandle>, cfg: MqttConfig, stop: CancellationToken) {
    let site = handle.config().site.clone();
    let door = handle.config().door.clone();
    let topics = Topics::new(&cfg.topic_prefix, &site, &door);
    let max_list = handle.config().trust.max_bytes;
    let opts = options(&cfg, &topics, &site, &door, max_list);
    let (tx, rx) = mpsc::unbounded_channel();
    let conn_stop = CancellationToken::new();
    let capacity = usize::from(cfg.inflight) * 2 + 64;
    let conn = tokio::spawn(connection_loop(
        opts,
        capacity,
        cfg.backoff(),
        tx,
        conn_stop.clone(),
    ));
    let list_slot = Arc::new(ListSlot::default());
    let intake = tokio::spawn(list_intake(handle.clone(), list_slot.clone()));
    tracing::info!(host = %cfg.host, port = cfg.port, client_id = %cfg.client_id, tls = cfg.tls.is_some(), events = %topics.events, "MQTT link starting (MQTT 5)");
    if cfg.insecure {
        // Allowed only by `insecure = true` (config validation): say so where the office sees it.
        tracing::warn!(host = %cfg.host, port = cfg.port, "MQTT over plain TCP ([mqtt] insecure = true): events, lists and the broker password cross the network in clear");
        handle.record(
            EventDraft::new(EventKind::MqttInsecure)
                .reason("plain_tcp")
                .detail(format!(
                    "MQTT link to {}:{} over plain TCP ([mqtt] insecure = true)",
                    bounded(&cfg.host, BROKER_TEXT_MAX),
                    cfg.port
                )),
        );
    }
    let mut link = Link {
        handle,
        policy: None,
        topics,
        window: Window::new(usize::from(cfg.inflight)),
        heartbeat: cfg.heartbeat,
        generation: 0,
        client: None,
        list_slot: list_slot.clone(),
        outbox_level: "ok",
        status_due: false,
        max_packet: usize::MAX,
        retry_at: None,
        refusal_backoff: cfg.backoff(),
    };
    link.policy = Some(CommandPolicy {
        trust: link.handle.config().command_trust.clone(),
        max_lifetime: cfg.command_max_lifetime,
        list_trust: Some(link.handle.config().trust.clone()),
    });
    link.run(rx, &stop).await;
    conn_stop.cancel();
    let _ = conn.await;
    drop(link);
    list_slot.close();
    let _ = intake.await;
}

impl ConnectionReport for LinkMsg {
    fn connected(generation: u64, client: AsyncClient, ack: &ConnAck) -> Self {
        LinkMsg::Connected {
            generation,
            client,
            max_packet: ack.properties.as_ref().and_then(|p| p.max_packet_size),
        }
    }

    fn event(generation: u64, event: Event) -> Option<Self> {
        Some(LinkMsg::Event {
            generation,
            event: Box::new(event),
        })
    }

    fn disconnected(generation: u64, error: String) -> Self {
        LinkMsg::Disconnected {
            generation,
            error,
            protocol: false,
        }
    }

    fn disconnected_by(generation: u64, error: &ConnectionError) -> Self {
        LinkMsg::Disconnected {
            generation,
            error: describe(error),
            protocol: is_protocol_error(error),
        }
    }
}

struct Link {
    handle: Arc<DaemonHandle>,
    policy: Option<CommandPolicy>,
    topics: Topics,
    /// What is in flight and what goes out next (sans I/O).
    window: Window,
    heartbeat: Duration,
    generation: u64,
    /// The client of the live connection, if any.
    client: Option<AsyncClient>,
    list_slot: Arc<ListSlot>,
    outbox_level: &'static str,
    status_due: bool,
    /// Largest PUBLISH packet this connection may carry: the broker's limit (CONNACK).
    max_packet: usize,
    /// While the broker refuses events: when to try the oldest event again.
    retry_at: Option<tokio::time::Instant>,
    refusal_backoff: Backoff,
}

impl Link {
    async fn run(&mut self, mut rx: mpsc::UnboundedReceiver<LinkMsg>, stop: &CancellationToken) {
        let mut heartbeat = tokio::time::interval(self.heartbeat);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let store = self.handle.store().clone();
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                msg = rx.recv() => match msg {
                    Some(msg) => self.on_msg(msg).await,
                    None => return,
                },
                _ = store.appended().notified() => {
                    self.check_outbox_level();
                    self.pump().await;
                }
                _ = heartbeat.tick() => self.status_due = true,
                _ = sleep_until_opt(self.retry_at) => self.retry_refused().await,
            }
            if self.status_due && self.client.is_some() {
                self.status_due = false;
                self.publish_status();
            }
        }
        self.drain_and_close(&mut rx).await;
    }

    async fn on_msg(&mut self, msg: LinkMsg) {
        match msg {
            LinkMsg::Connected {
                generation,
                client,
                max_packet,
            } => {
                tracing::info!(broker_max_packet = max_packet, "MQTT connected");
                self.generation = generation;
                self.client = Some(client);
                self.max_packet = max_packet.map_or(usize::MAX, |m| m as usize);
                // Still refused from an earlier connection: status says so from the start, and
                // the oldest event is tried at once (alone); a new refusal raises the alarm again.
                self.retry_at = None;
                if let Some(why) = self.window.refusal() {
                    tracing::error!(outbox = self.handle.store().outbox_depth(), "the broker refused the door's events on the last connection ({why}); trying again");
                }
                // Everything not acknowledged goes out again, in order.
                let first = match self.handle.store().outbox_first() {
                    Ok(first) => first.unwrap_or(0),
                    Err(e) => {
                        tracing::error!("cannot read the outbox: {e}");
                        0
                    }
                };
                self.window.reconnected(first);
                self.subscribe();
                self.publish_status();
                self.pump().await;
            }
            LinkMsg::Disconnected {
                generation,
                error,
                protocol,
            } => {
                if protocol && generation == self.generation && self.client.is_some() {
                    self.suspect_poison(&error);
                }
                if generation == self.generation && self.client.is_some() {
                    tracing::warn!(
                        outbox = self.handle.store().outbox_depth(),
                        "MQTT connection lost: {error}; events wait in the outbox"
                    );
                } else {
                    tracing::debug!("MQTT connection attempt failed: {error}");
                }
                if generation == self.generation {
                    self.client = None;
                }
            }
            LinkMsg::Event { generation, event } => {
                if generation != self.generation {
                    return;
                }
                self.on_event(*event).await;
            }
        }
    }

    async fn on_event(&mut self, event: Event) {
        match event {
            Event::Outgoing(Outgoing::Publish(pkid)) => {
                // rumqttc sends publishes in the order they were queued.
                let known = self.window.published(pkid);
                if !known {
                    tracing::error!(pkid, "MQTT: a publish went out that was not queued");
                }
            }
            Event::Outgoing(Outgoing::AwaitAck(pkid)) => {
                // Only if the broker acknowledged out of order with the window full: start the
                // connection over rather than guess which publish this packet id now means.
                tracing::error!(pkid, "MQTT packet id collision; reconnecting");
                self.reconnect();
            }
            Event::Incoming(Packet::PubAck(ack)) => {
                match self.window.acked(ack.pkid, verdict(ack.reason)) {
                    Acked::Event { seq, verdict } => {
                        match verdict {
                            Verdict::Delivered => {
                                if let Err(e) = self.handle.store().acknowledge(seq) {
                                    tracing::error!(
                                        seq,
                                        "cannot remove a delivered event from the outbox: {e}"
                                    );
                                }
                                self.delivery_accepted();
                            }
                            Verdict::SetAside => {
                                let why = refusal_text(&ack);
                                self.set_aside(
                                    seq,
                                    reason_code(ack.reason),
                                    format!("the broker refused it: {why}"),
                                );
                            }
                            Verdict::Refused => self.delivery_refused(seq, refusal_text(&ack)),
                            Verdict::Reconnect => {
                                tracing::error!(
                                    seq,
                                    pkid = ack.pkid,
                                    "the broker reports a packet id in use; reconnecting"
                                );
                                self.reconnect();
                                return;
                            }
                        }
                        self.check_outbox_level();
                        self.pump().await;
                    }
                    Acked::Status(_) => {
                        if verdict(ack.reason) != Verdict::Delivered {
                            tracing::warn!(
                            "the broker refused the door's status: {} (check the door's ACL: write on {})",
                            refusal_text(&ack),
                            self.topics.status
                        );
                        }
                    }
                    Acked::Unknown => {
                        tracing::debug!(pkid = ack.pkid, "PUBACK for an unknown packet id")
                    }
                }
            }
            Event::Incoming(Packet::SubAck(ack))
                if ack.return_codes.iter().any(|c| {
                    !matches!(
                        c,
                        rumqttc::v5::mqttbytes::v5::SubscribeReasonCode::Success(_)
                    )
                }) =>
            {
                tracing::error!(codes = ?ack.return_codes, "the broker refused a subscription (check the door's ACL): lists and commands may not arrive");
            }
            Event::Incoming(Packet::Publish(publish)) => {
                let topic = String::from_utf8_lossy(&publish.topic).into_owned();
                // Not copied: a list (up to list.max_size) is held once, as rumqttc read it.
                let payload = publish.payload.clone();
                if topic == self.topics.commands {
                    self.on_command(&payload).await;
                } else if topic == self.topics.site_list || topic == self.topics.door_list {
                    self.list_slot.offer(topic, payload);
                } else {
                    tracing::warn!(%topic, "message on an unexpected topic ignored");
                }
            }
            _ => {}
        }
    }

    fn subscribe(&mut self) {
        let Some(client) = &self.client else { return };
        for topic in [
            &self.topics.site_list,
            &self.topics.door_list,
            &self.topics.commands,
        ] {
            if let Err(e) = client.try_subscribe(topic.clone(), QoS::AtLeastOnce) {
                tracing::error!(%topic, "cannot subscribe: {e}");
            }
        }
    }

    /// Forces a new connection: the connection task sees the disconnect and starts over.
    fn reconnect(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = client.try_disconnect();
        }
    }

    /// Makes appended events durable, then publishes durable ones up to the window.
    async fn pump(&mut self) {
        if self.client.is_none() || self.retry_at.is_some() {
            return;
        }
        let store = self.handle.store().clone();
        if store.has_unflushed() {
            if let Err(e) = self.handle.flush().await {
                tracing::error!("outbox flush failed: {e}; events wait");
                return;
            }
        }
        // While the broker refuses events, the window has room for one: a probe, not a flood of
        // refusals.
        while self.window.room() > 0 {
            let batch = match store.outbox_from(self.window.next_seq(), self.window.room()) {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::error!("cannot read the outbox: {e}");
                    return;
                }
            };
            if batch.is_empty() {
                return;
            }
            for (seq, bytes) in batch {
                let Some(client) = &self.client else { return };
                // Checked before publishing: rumqttc would refuse a packet over the broker's
                // limit by dropping the connection, and the next connection would try it again.
                let size = publish_packet_size(self.topics.events.len(), bytes.len());
                if bytes.len() > LINK_EVENT_MAX_BYTES || size > self.max_packet {
                    let limit = if bytes.len() > LINK_EVENT_MAX_BYTES {
                        format!("the door's limit of {LINK_EVENT_MAX_BYTES} bytes per event")
                    } else {
                        format!(
                            "the broker's maximum packet size of {} bytes",
                            self.max_packet
                        )
                    };
                    self.window.skip(seq);
                    self.set_aside(
                        seq,
                        "too_large",
                        format!("{} bytes, over {limit}", bytes.len()),
                    );
                    continue;
                }
                // Status follows events that change what it says.
                if status_relevant(&bytes) {
                    self.status_due = true;
                }
                if let Err(e) =
                    client.try_publish(self.topics.events.clone(), QoS::AtLeastOnce, false, bytes)
                {
                    tracing::warn!("MQTT publish queue refused event {seq}: {e}; reconnecting");
                    self.reconnect();
                    return;
                }
                self.window.queue_event(seq);
            }
        }
    }

    /// At stop: publish what is left (bounded), then the offline status, then disconnect.
    async fn drain_and_close(&mut self, rx: &mut mpsc::UnboundedReceiver<LinkMsg>) {
        if self.client.is_none() {
            return;
        }
        let deadline = tokio::time::Instant::now() + DRAIN_ON_STOP;
        self.pump().await;
        let mut offline_sent = false;
        loop {
            let outbox_done = self.window.events_in_flight() == 0
                && self
                    .handle
                    .store()
                    .outbox_from(self.window.next_seq(), 1)
                    .map(|b| b.is_empty())
                    .unwrap_or(true);
            if outbox_done && !offline_sent {
                let offline = StatusMessage {
                    schema: STATUS_SCHEMA,
                    state: "offline",
                    site: self.handle.config().site.clone(),
                    door: self.handle.config().door.clone(),
                    time: Some(self.handle.now()),
                    online: None,
                };
                self.publish_retained_status(&offline, Sent::Offline);
                offline_sent = true;
            }
            let offline_acked = offline_sent && !self.window.offline_pending();
            if offline_acked {
                break;
            }
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(msg)) => self.on_msg(msg).await,
                Ok(None) | Err(_) => {
                    tracing::warn!(
                        outbox = self.handle.store().outbox_depth(),
                        "stopping before the broker acknowledged everything; the rest goes out after restart"
                    );
                    break;
                }
            }
            if self.client.is_none() {
                return;
            }
        }
        if let Some(client) = self.client.take() {
            let _ = client.try_disconnect();
            // Let the connection task write the DISCONNECT (so the broker drops the will).
            let wait = async {
                while let Some(msg) = rx.recv().await {
                    let done = match &msg {
                        LinkMsg::Event { event, .. } => {
                            matches!(**event, Event::Outgoing(Outgoing::Disconnect))
                        }
                        LinkMsg::Disconnected { .. } => true,
                        LinkMsg::Connected { .. } => false,
                    };
                    if done {
                        return;
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(1), wait).await;
        }
        tracing::info!("MQTT link closed");
    }
}

/// Sleeps until `at`, or forever without one (a `select!` branch that is off).
async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Largest command accepted (re-exported for docs and tests).
pub const MAX_COMMAND_BYTES: usize = COMMAND_MAX_BYTES;

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::v5::mqttbytes::v5::Publish;

    #[test]
    fn packet_size_matches_what_rumqttc_writes() {
        for payload in [0usize, 1, 100, 16_000, 70_000, 2_100_000] {
            let topic = "pintu/dc1/server-room/events";
            let mut publish = Publish::new(topic, QoS::AtLeastOnce, vec![b'x'; payload], None);
            publish.pkid = 1;
            assert_eq!(
                publish_packet_size(topic.len(), payload),
                publish.size(),
                "payload {payload}"
            );
        }
    }
}
