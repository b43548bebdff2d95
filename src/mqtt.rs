//! The MQTT link to the office system: events out of the outbox, retained status with a last will,
//! signed lists and signed commands in. The contract is `docs/mqtt.md` and `docs/asyncapi.yaml`.
//!
//! Two tasks:
//! - the **connection task** owns one rumqttc `EventLoop` per connection and only polls it (a poll
//!   is never cancelled mid-write). On any error it drops the event loop with its client and
//!   reconnects after an exponential backoff with jitter. A new client per connection means a
//!   request queued for a dead connection dies with it instead of surfacing on the next one;
//! - the **link task** does the rest. It publishes durable outbox events in seq order (QoS 1, a
//!   bounded window in flight), maps each outgoing publish's packet id to its seq in the order
//!   the requests were queued, and removes an event from the outbox only on its PUBACK. Every new
//!   connection starts again from the oldest event still in the outbox, so nothing unacknowledged
//!   is ever lost with rumqttc's in-memory state; the office de-duplicates by (door, seq).
//!
//! The tap → relay path never waits on any of this.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectionError, Event, LastWill, MqttOptions, Outgoing, Packet, QoS,
    SubscribeReasonCode, TlsConfiguration, Transport,
};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::MqttConfig;
use crate::core::command::{self, CommandPolicy, COMMAND_MAX_BYTES};
use crate::core::event::{EventDraft, EventKind};
use crate::daemon::DaemonHandle;

/// Schema id of the status messages.
pub const STATUS_SCHEMA: &str = "pintu.status.v1";
/// Room above the list size cap for the MQTT packet header and topic.
const PACKET_OVERHEAD: usize = 64 * 1024;
/// How long a clean stop waits for the last events and the offline status to be acknowledged.
const DRAIN_ON_STOP: Duration = Duration::from_secs(3);

/// The door's topics.
#[derive(Debug, Clone)]
pub struct Topics {
    /// `{prefix}/{site}/{door}/events`
    pub events: String,
    /// `{prefix}/{site}/{door}/status` (retained)
    pub status: String,
    /// `{prefix}/{site}/list` (retained, site-wide)
    pub site_list: String,
    /// `{prefix}/{site}/{door}/list` (retained, this door)
    pub door_list: String,
    /// `{prefix}/{site}/{door}/commands`
    pub commands: String,
}

impl Topics {
    /// The topics of door `door` at `site` under `prefix`.
    pub fn new(prefix: &str, site: &str, door: &str) -> Topics {
        Topics {
            events: format!("{prefix}/{site}/{door}/events"),
            status: format!("{prefix}/{site}/{door}/status"),
            site_list: format!("{prefix}/{site}/list"),
            door_list: format!("{prefix}/{site}/{door}/list"),
            commands: format!("{prefix}/{site}/{door}/commands"),
        }
    }
}

/// Exponential backoff with jitter: each delay is drawn from [d/2, d], and d doubles up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `min`.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            next: min,
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.next;
        self.next = (self.next * 2).min(self.max);
        // Jitter spreads the reconnects of a fleet of doors after a broker restart.
        let mut byte = [0u8; 2];
        let _ = getrandom::fill(&mut byte);
        let frac = f64::from(u16::from_le_bytes(byte)) / f64::from(u16::MAX);
        ceiling.mul_f64(0.5 + frac / 2.0)
    }

    /// A connection succeeded: start from `min` again.
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

/// The retained status message.
#[derive(Debug, Serialize)]
pub struct StatusMessage {
    /// [`STATUS_SCHEMA`].
    pub schema: &'static str,
    /// `online` or `offline`.
    pub state: &'static str,
    /// Site id.
    pub site: String,
    /// Door id.
    pub door: String,
    /// When it was published (absent in the last will, which the broker sends later).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<jiff::Timestamp>,
    /// The rest, only when online.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub online: Option<OnlineStatus>,
}

/// Status fields of a running door.
#[derive(Debug, Serialize)]
pub struct OnlineStatus {
    /// pintud version.
    pub version: String,
    /// The active list, if any.
    pub list: Option<StatusList>,
    /// Wall-clock trust.
    pub clock: StatusClock,
    /// People inside (presence).
    pub occupancy: usize,
    /// Visitors inside.
    pub visitors_inside: usize,
    /// Events not yet delivered.
    pub outbox: StatusOutbox,
    /// `secured` or `released`.
    pub lock: String,
    /// Door contact: `open`, `closed` or `unknown`.
    pub contact: String,
    /// The lockdown in force, if any.
    pub lockdown: Option<StatusLockdown>,
    /// Configured readers.
    pub readers: Vec<StatusReader>,
    /// Seconds between status messages at most.
    pub heartbeat_s: u64,
}

/// The active list in status.
#[derive(Debug, Serialize)]
pub struct StatusList {
    /// Version.
    pub version: u64,
    /// Signed at.
    pub issued_at: jiff::Timestamp,
    /// Expires at.
    pub expires_at: jiff::Timestamp,
    /// Whether it has expired (every tap is denied).
    pub expired: bool,
    /// Entries.
    pub entries: usize,
}

/// Clock state in status.
#[derive(Debug, Serialize)]
pub struct StatusClock {
    /// Whether the wall clock is trusted.
    pub trusted: bool,
    /// NTP synchronisation as the kernel reports it, when known.
    pub ntp_synced: Option<bool>,
}

/// Outbox state in status.
#[derive(Debug, Serialize)]
pub struct StatusOutbox {
    /// Events waiting.
    pub depth: u64,
    /// `ok`, `warning` or `critical` against the configured thresholds.
    pub level: &'static str,
}

/// A lockdown in status.
#[derive(Debug, Serialize)]
pub struct StatusLockdown {
    /// The role still admitted.
    pub allow_role: String,
}

/// A reader in status.
#[derive(Debug, Serialize)]
pub struct StatusReader {
    /// Name.
    pub name: String,
    /// Backend.
    pub backend: String,
    /// `up`, `down` or `unknown`.
    pub state: String,
}

/// The outbox depth level against the thresholds.
pub fn outbox_level(depth: u64, warning: u64, critical: u64) -> &'static str {
    if depth >= critical {
        "critical"
    } else if depth >= warning {
        "warning"
    } else {
        "ok"
    }
}

/// Whether the kernel's clock is NTP-synchronised (`adjtimex` does not report `TIME_ERROR`).
pub fn ntp_synced() -> Option<bool> {
    // SAFETY: with `modes == 0`, adjtimex only reads the kernel's clock state into `tx`, a
    // zero-initialised plain C struct owned by this frame.
    let state = unsafe {
        let mut tx: nix::libc::timex = std::mem::zeroed();
        nix::libc::adjtimex(&mut tx)
    };
    if state < 0 {
        return None;
    }
    Some(state != nix::libc::TIME_ERROR)
}

/// What the connection task tells the link task. `generation` numbers connections: anything
/// from an older one is stale.
#[derive(Debug)]
enum LinkMsg {
    Connected {
        generation: u64,
        client: AsyncClient,
    },
    Event {
        generation: u64,
        event: Event,
    },
    Disconnected {
        generation: u64,
        error: String,
    },
}

/// What an outgoing QoS 1 publish was, to act on its PUBACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Event(u64),
    Status,
    Offline,
}

/// Builds the client options (TLS, credentials, last will, packet limits).
pub fn options(
    cfg: &MqttConfig,
    topics: &Topics,
    site: &str,
    door: &str,
    max_list: usize,
) -> MqttOptions {
    let mut opts = MqttOptions::new(cfg.client_id.clone(), cfg.host.clone(), cfg.port);
    opts.set_keep_alive(cfg.keep_alive);
    // A clean session: what was not acknowledged is republished from the outbox, not from
    // rumqttc's memory.
    opts.set_clean_session(true);
    // Lists are large; the outgoing side is events and status.
    opts.set_max_packet_size(max_list + PACKET_OVERHEAD, 1 << 20);
    // Room for the event window plus status publishes, so packet ids never collide.
    opts.set_inflight(cfg.inflight.saturating_mul(2).max(20));
    if let Some((user, password)) = &cfg.credentials {
        opts.set_credentials(user.clone(), password.clone());
    }
    if let Some(tls) = &cfg.tls {
        install_crypto_provider();
        opts.set_transport(Transport::tls_with_config(TlsConfiguration::Simple {
            ca: tls.ca.clone(),
            alpn: None,
            client_auth: tls.client.clone(),
        }));
    }
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
    ));
    opts
}

/// rustls with the ring provider (no aws-lc C build); once per process.
pub fn install_crypto_provider() {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
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
        Backoff::new(cfg.reconnect_min, cfg.reconnect_max),
        tx,
        conn_stop.clone(),
    ));
    let (list_tx, list_rx) = mpsc::channel(8);
    let intake = tokio::spawn(list_intake(handle.clone(), list_rx));
    tracing::info!(host = %cfg.host, port = cfg.port, client_id = %cfg.client_id, tls = cfg.tls.is_some(), events = %topics.events, "MQTT link starting");
    let mut link = Link {
        handle,
        policy: None,
        topics,
        window: usize::from(cfg.inflight),
        heartbeat: cfg.heartbeat,
        generation: 0,
        client: None,
        queued: VecDeque::new(),
        in_flight: HashMap::new(),
        events_in_flight: 0,
        next_seq: 0,
        list_tx,
        outbox_level: "ok",
        status_due: false,
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
    let _ = intake.await;
}

/// What a connection task reports to the task that uses the connection. `generation` numbers
/// connections, so the user can tell a stale report from a current one.
pub trait ConnectionReport: Send + Sized + 'static {
    /// The broker accepted a connection; `client` publishes on it (and only on it).
    fn connected(generation: u64, client: AsyncClient, session_present: bool) -> Self;
    /// Anything else the event loop yielded; `None` drops it.
    fn event(generation: u64, event: Event) -> Option<Self>;
    /// The connection ended (or could not be made).
    fn disconnected(generation: u64, error: String) -> Self;
}

/// Owns one rumqttc event loop per connection and only polls it, so a poll is never cancelled
/// mid-write (only at `stop`). After any error the event loop and its client are dropped and a
/// new pair is made after a backoff: a request (a publish, an acknowledgement) queued for a dead
/// connection dies with it instead of surfacing on the next one. Shared by the door's link and
/// the office archive.
pub async fn connection_loop<M: ConnectionReport>(
    opts: MqttOptions,
    capacity: usize,
    mut backoff: Backoff,
    tx: mpsc::UnboundedSender<M>,
    stop: CancellationToken,
) {
    let mut generation = 0u64;
    loop {
        generation += 1;
        let (client, mut eventloop) = AsyncClient::new(opts.clone(), capacity);
        eventloop.set_network_options(network_options());
        loop {
            let polled = tokio::select! {
                _ = stop.cancelled() => return,
                polled = eventloop.poll() => polled,
            };
            let msg = match polled {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    backoff.reset();
                    M::connected(generation, client.clone(), ack.session_present)
                }
                Ok(event) => match M::event(generation, event) {
                    Some(msg) => msg,
                    None => continue,
                },
                Err(error) => {
                    if tx
                        .send(M::disconnected(generation, describe(&error)))
                        .is_err()
                    {
                        return;
                    }
                    break;
                }
            };
            if tx.send(msg).is_err() {
                return;
            }
        }
        let delay = backoff.next_delay();
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

impl ConnectionReport for LinkMsg {
    fn connected(generation: u64, client: AsyncClient, _session_present: bool) -> Self {
        LinkMsg::Connected { generation, client }
    }

    fn event(generation: u64, event: Event) -> Option<Self> {
        Some(LinkMsg::Event { generation, event })
    }

    fn disconnected(generation: u64, error: String) -> Self {
        LinkMsg::Disconnected { generation, error }
    }
}

/// TCP settings for every Pintu MQTT client: small packets (events, acks) go out at once. With
/// Nagle's algorithm and the broker's delayed ACKs each event waited ~40 ms on loopback.
pub fn network_options() -> rumqttc::NetworkOptions {
    let mut network = rumqttc::NetworkOptions::new();
    network.set_tcp_nodelay(true);
    network
}

/// A connection error in words for operators (the link and the office archive log it).
pub fn describe(error: &ConnectionError) -> String {
    match error {
        ConnectionError::Io(e) => format!("network: {e}"),
        ConnectionError::ConnectionRefused(code) => {
            format!("broker refused the connection: {code:?}")
        }
        other => other.to_string(),
    }
}

struct Link {
    handle: Arc<DaemonHandle>,
    policy: Option<CommandPolicy>,
    topics: Topics,
    window: usize,
    heartbeat: Duration,
    generation: u64,
    /// The client of the live connection, if any.
    client: Option<AsyncClient>,
    /// Publishes queued on this connection whose packet id is not known yet, in queue order.
    queued: VecDeque<Sent>,
    /// Publishes sent and not yet acknowledged, by packet id.
    in_flight: HashMap<u16, Sent>,
    events_in_flight: usize,
    /// The next outbox seq to publish on this connection.
    next_seq: u64,
    list_tx: mpsc::Sender<(String, Vec<u8>)>,
    outbox_level: &'static str,
    status_due: bool,
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
            LinkMsg::Connected { generation, client } => {
                tracing::info!("MQTT connected");
                self.generation = generation;
                self.client = Some(client);
                self.queued.clear();
                self.in_flight.clear();
                self.events_in_flight = 0;
                // Everything not acknowledged goes out again, in order.
                self.next_seq = match self.handle.store().outbox_first() {
                    Ok(first) => first.unwrap_or(0),
                    Err(e) => {
                        tracing::error!("cannot read the outbox: {e}");
                        0
                    }
                };
                self.subscribe();
                self.publish_status();
                self.pump().await;
            }
            LinkMsg::Disconnected { generation, error } => {
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
                self.on_event(event).await;
            }
        }
    }

    async fn on_event(&mut self, event: Event) {
        match event {
            Event::Outgoing(Outgoing::Publish(pkid)) => match self.queued.pop_front() {
                Some(sent) => {
                    self.in_flight.insert(pkid, sent);
                }
                None => tracing::error!(pkid, "MQTT: a publish went out that was not queued"),
            },
            Event::Outgoing(Outgoing::AwaitAck(pkid)) => {
                // Only if the broker acknowledged out of order with the window full: start the
                // connection over rather than guess which publish this packet id now means.
                tracing::error!(pkid, "MQTT packet id collision; reconnecting");
                self.reconnect();
            }
            Event::Incoming(Packet::PubAck(ack)) => match self.in_flight.remove(&ack.pkid) {
                Some(Sent::Event(seq)) => {
                    self.events_in_flight = self.events_in_flight.saturating_sub(1);
                    if let Err(e) = self.handle.store().acknowledge(seq) {
                        tracing::error!(
                            seq,
                            "cannot remove a delivered event from the outbox: {e}"
                        );
                    }
                    self.check_outbox_level();
                    self.pump().await;
                }
                Some(Sent::Status | Sent::Offline) => {}
                None => tracing::debug!(pkid = ack.pkid, "PUBACK for an unknown packet id"),
            },
            Event::Incoming(Packet::SubAck(ack))
                if ack
                    .return_codes
                    .iter()
                    .any(|c| matches!(c, SubscribeReasonCode::Failure)) =>
            {
                tracing::error!("the broker refused a subscription (check the door's ACL): lists and commands may not arrive");
            }
            Event::Incoming(Packet::Publish(publish)) => {
                let topic = publish.topic.clone();
                let payload = publish.payload.to_vec();
                if topic == self.topics.commands {
                    self.on_command(&payload).await;
                } else if topic == self.topics.site_list || topic == self.topics.door_list {
                    if self.list_tx.send((topic, payload)).await.is_err() {
                        tracing::error!("list intake stopped");
                    }
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
        if self.client.is_none() {
            return;
        }
        let store = self.handle.store().clone();
        if store.has_unflushed() {
            if let Err(e) = self.handle.flush().await {
                tracing::error!("outbox flush failed: {e}; events wait");
                return;
            }
        }
        while self.events_in_flight < self.window {
            let batch = match store.outbox_from(self.next_seq, self.window - self.events_in_flight)
            {
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
                self.queued.push_back(Sent::Event(seq));
                self.events_in_flight += 1;
                self.next_seq = seq + 1;
            }
        }
    }

    fn publish_status(&mut self) {
        let message = self.status_message();
        self.publish_retained_status(&message, Sent::Status);
    }

    fn publish_retained_status(&mut self, message: &StatusMessage, kind: Sent) {
        let Some(client) = &self.client else { return };
        let bytes = match serde_json::to_vec(message) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("status does not serialize: {e}");
                return;
            }
        };
        match client.try_publish(self.topics.status.clone(), QoS::AtLeastOnce, true, bytes) {
            Ok(()) => self.queued.push_back(kind),
            Err(e) => tracing::warn!("cannot queue the status: {e}"),
        }
    }

    fn status_message(&self) -> StatusMessage {
        let cfg = self.handle.config();
        let status = self.handle.status();
        StatusMessage {
            schema: STATUS_SCHEMA,
            state: "online",
            site: status.site.clone(),
            door: status.door.clone(),
            time: Some(status.now),
            online: Some(OnlineStatus {
                version: status.version.clone(),
                list: status.list.as_ref().map(|l| StatusList {
                    version: l.version,
                    issued_at: l.issued_at,
                    expires_at: l.expires_at,
                    expired: l.expired,
                    entries: l.entries,
                }),
                clock: StatusClock {
                    trusted: status.clock.as_ref().is_none_or(|c| c.trusted),
                    ntp_synced: ntp_synced(),
                },
                occupancy: status.occupancy,
                visitors_inside: status.visitors_inside,
                outbox: StatusOutbox {
                    depth: status.outbox_depth,
                    level: outbox_level(
                        status.outbox_depth,
                        cfg.outbox_warning,
                        cfg.outbox_critical,
                    ),
                },
                lock: format!("{:?}", status.lock).to_lowercase(),
                contact: status.contact.clone().unwrap_or_else(|| "unknown".into()),
                lockdown: status
                    .lockdown
                    .clone()
                    .map(|allow_role| StatusLockdown { allow_role }),
                readers: status
                    .readers
                    .iter()
                    .map(|r| StatusReader {
                        name: r.name.clone(),
                        backend: r.backend.clone(),
                        state: r.state.clone(),
                    })
                    .collect(),
                heartbeat_s: self.heartbeat.as_secs(),
            }),
        }
    }

    /// Raises or clears the outbox alarm when the depth crosses a threshold.
    fn check_outbox_level(&mut self) {
        let cfg = self.handle.config();
        let depth = self.handle.store().outbox_depth();
        let level = outbox_level(depth, cfg.outbox_warning, cfg.outbox_critical);
        if level == self.outbox_level {
            return;
        }
        let previous = std::mem::replace(&mut self.outbox_level, level);
        self.status_due = true;
        let draft = match (previous, level) {
            (_, "ok") => {
                tracing::info!(depth, "outbox back below its warning threshold");
                EventDraft::new(EventKind::OutboxAlarmCleared)
                    .detail(format!("{depth} events waiting"))
            }
            // Falling from critical to warning: status says so; no new alarm.
            ("critical", _) => return,
            _ => {
                tracing::warn!(depth, level, "outbox alarm: events are not being delivered");
                EventDraft::new(EventKind::OutboxAlarm)
                    .reason(level)
                    .detail(format!(
                        "{depth} events waiting (warning at {}, critical at {})",
                        cfg.outbox_warning, cfg.outbox_critical
                    ))
            }
        };
        self.handle.record(draft);
    }

    async fn on_command(&mut self, bytes: &[u8]) {
        let Some(policy) = &self.policy else { return };
        // Windows are checked on the trusted time: a clock set back does not reopen them.
        let clocks = command::CommandClocks {
            trusted: self.handle.trusted_now(),
            wall: self.handle.now(),
        };
        let verified = match command::verify_at(bytes, policy, clocks) {
            Ok(v) => v,
            Err(why) => {
                tracing::warn!(reason = why.code(), "command rejected: {why}");
                self.handle.record(
                    EventDraft::new(EventKind::CommandRejected)
                        .reason(why.code())
                        .detail(truncate(&why.to_string(), 300)),
                );
                return;
            }
        };
        let store = self.handle.store().clone();
        let (id, expires_at) = (verified.payload.id, verified.payload.expires_at);
        // Ids are kept until their window is below the trusted-time floor; a reset's for good
        // (its window is checked on the wall clock).
        let floor = self.handle.time_floor();
        let forever = verified.payload.command.is_reset();
        let fresh = tokio::task::spawn_blocking(move || {
            store.remember_command(id, expires_at, floor, forever)
        })
        .await;
        match fresh {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                let why = command::CommandRejection::Replayed(id);
                tracing::warn!(%id, "command rejected: {why}");
                self.handle.record(
                    EventDraft::new(EventKind::CommandRejected)
                        .reason(why.code())
                        .detail(why.to_string()),
                );
                return;
            }
            Ok(Err(e)) => {
                // Without a durable record the command could fire twice: refuse it.
                tracing::error!(%id, "cannot record the command id: {e}; command not carried out");
                return;
            }
            Err(e) => {
                tracing::error!("command task failed: {e}");
                return;
            }
        }
        self.handle.execute_command(verified).await;
        self.status_due = true;
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
            let outbox_done = self.events_in_flight == 0
                && self
                    .handle
                    .store()
                    .outbox_from(self.next_seq, 1)
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
            let offline_acked = offline_sent
                && !self.queued.contains(&Sent::Offline)
                && !self.in_flight.values().any(|s| *s == Sent::Offline);
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
                    if matches!(
                        msg,
                        LinkMsg::Event {
                            event: Event::Outgoing(Outgoing::Disconnect),
                            ..
                        } | LinkMsg::Disconnected { .. }
                    ) {
                        return;
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(1), wait).await;
        }
        tracing::info!("MQTT link closed");
    }
}

/// Events whose kind changes what status says.
fn status_relevant(event_json: &[u8]) -> bool {
    const KINDS: [&[u8]; 9] = [
        b"\"kind\":\"lock.",
        b"\"kind\":\"reader.",
        b"\"kind\":\"list.",
        b"\"kind\":\"lockdown.",
        b"\"kind\":\"outbox.",
        b"\"kind\":\"door.",
        b"\"kind\":\"hardware.",
        b"\"kind\":\"store.",
        b"\"kind\":\"daemon.",
    ];
    KINDS
        .iter()
        .any(|k| event_json.windows(k.len()).any(|w| w == *k))
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Applies lists from the broker one at a time on a blocking thread. Retained lists come again
/// on every reconnect: bytes already judged since start are skipped silently.
async fn list_intake(handle: Arc<DaemonHandle>, mut rx: mpsc::Receiver<(String, Vec<u8>)>) {
    let mut judged: HashSet<[u8; 32]> = HashSet::new();
    while let Some((topic, bytes)) = rx.recv().await {
        if bytes.is_empty() {
            // An empty retained message clears the topic; nothing to apply.
            continue;
        }
        let digest = crate::core::list::digest(&bytes);
        if !judged.insert(digest) {
            continue;
        }
        let h = handle.clone();
        let source = format!("mqtt:{topic}");
        let result = tokio::task::spawn_blocking(move || h.apply_list_from(&bytes, &source)).await;
        match result {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::error!("cannot apply a list from MQTT: {}", crate::error_chain(&e));
                // Not judged (the list file could not be written, say): the retained list
                // comes again with the next connection and is tried again.
                judged.remove(&digest);
            }
            Err(e) => tracing::error!("list intake task failed: {e}"),
        }
    }
}

/// Largest command accepted (re-exported for docs and tests).
pub const MAX_COMMAND_BYTES: usize = COMMAND_MAX_BYTES;
