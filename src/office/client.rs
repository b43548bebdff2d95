//! The office side's MQTT: how `pintuctl` reaches the site broker to publish signed lists
//! (retained) and to read the doors' retained status.
//!
//! Connection settings come from an optional office file (TOML, one `[mqtt]` table, see
//! `docs/operator.md`) overlaid with command-line flags ([`crate::mqtt::BrokerArgs`]), then
//! resolved once into an [`OfficeMqtt`]: the shared [`BrokerSettings`] and a bound on each
//! network step. Every network operation is bounded by [`OfficeMqtt::timeout`] and fails with an
//! [`OfficeError`] that names the broker. Topics come from [`crate::mqtt::topics`], which the
//! door's link uses too (`docs/mqtt.md`).

use std::future::Future;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, Packet, QoS};

use crate::mqtt::settings::{BrokerDraft, SettingsError};
use crate::mqtt::{topics, BrokerArgs, BrokerSettings};

/// The office file's `[mqtt]` table overlaid with flags (the shared draft form).
pub use crate::mqtt::settings::BrokerDraft as OfficeSettings;

/// Room above a payload for the MQTT packet header and topic.
const PACKET_OVERHEAD: usize = 64 * 1024;
/// Largest packet accepted from the broker (status messages and events are small).
const MAX_INCOMING: usize = 1 << 20;
/// Default bound on connecting, publishing and subscribing.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Office-side MQTT failures; each names the broker or file.
#[derive(Debug, thiserror::Error)]
pub enum OfficeError {
    /// The settings (office file, flags, files they name) are wrong.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The broker could not be reached or refused the connection.
    #[error("MQTT broker {broker}: {message}")]
    Connect {
        /// `host:port`.
        broker: String,
        /// What went wrong.
        message: String,
    },
    /// The broker did not answer in time.
    #[error("MQTT broker {broker}: no {what} within {}", humantime::format_duration(*.after))]
    Timeout {
        /// `host:port`.
        broker: String,
        /// What was awaited (connection, PUBACK, SUBACK).
        what: &'static str,
        /// The bound.
        after: Duration,
    },
    /// No async runtime could be started.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// Resolved office MQTT settings: the broker and a bound on each network step.
#[derive(Debug, Clone)]
pub struct OfficeMqtt {
    /// Where the broker is and how to reach it.
    pub settings: BrokerSettings,
    /// Bound on each network step.
    pub timeout: Duration,
}

impl OfficeMqtt {
    /// Reads the files `draft` names and applies defaults (client id `pintuctl-` and random hex,
    /// so two operators never collide; timeout 10 s); `None` when no broker host is set.
    pub fn resolve(draft: BrokerDraft) -> Result<Option<OfficeMqtt>, OfficeError> {
        let timeout = draft.timeout.map_or(DEFAULT_TIMEOUT, |t| t.0);
        let broker = draft.resolve(|| {
            let mut bytes = [0u8; 4];
            let _ = getrandom::fill(&mut bytes);
            format!("pintuctl-{}", hex::encode(bytes))
        })?;
        Ok(broker.map(|settings| OfficeMqtt { settings, timeout }))
    }

    /// The broker the flags name (over the office file they may name); `None` when neither
    /// names a host.
    pub fn from_args(args: &BrokerArgs) -> Result<Option<OfficeMqtt>, OfficeError> {
        OfficeMqtt::resolve(args.draft()?)
    }
}

/// A retained (or live) message received by [`OfficeMqtt::collect`].
#[derive(Debug, Clone)]
pub struct Received {
    /// Topic.
    pub topic: String,
    /// Payload.
    pub payload: Vec<u8>,
    /// Whether the broker delivered it as retained.
    pub retain: bool,
}

/// A connection to the broker, acknowledged (CONNACK), not yet used: connect first, then
/// change what must change (e.g. record the list version), then publish.
pub struct Connection {
    mqtt: OfficeMqtt,
    client: AsyncClient,
    eventloop: EventLoop,
    started: Instant,
}

impl Connection {
    /// Publishes `payload` on `topic`, QoS 1, retained, waits for its PUBACK (bounded), then
    /// disconnects. Returns the time from connecting to the PUBACK.
    pub async fn publish_retained(
        mut self,
        topic: &str,
        payload: Vec<u8>,
    ) -> Result<Duration, OfficeError> {
        let m = &self.mqtt;
        self.client
            .publish(topic, QoS::AtLeastOnce, true, payload)
            .await
            .map_err(|e| OfficeError::Connect {
                broker: m.broker(),
                message: format!("cannot queue the publish: {e}"),
            })?;
        let deadline = tokio::time::Instant::now() + m.timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.eventloop.poll()).await {
                Err(_) => return Err(m.timeout_error("PUBACK")),
                Ok(Err(e)) => return Err(m.connect_error(e)),
                // One publish in flight: its PUBACK is the one.
                Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => break,
                Ok(Ok(_)) => {}
            }
        }
        let took = self.started.elapsed();
        disconnect(&self.client, &mut self.eventloop).await;
        Ok(took)
    }

    /// The client and its event loop, for callers that go on (e.g. subscribing to events).
    pub fn into_parts(self) -> (AsyncClient, EventLoop) {
        (self.client, self.eventloop)
    }
}

impl OfficeMqtt {
    /// `host:port`, for messages.
    pub fn broker(&self) -> String {
        self.settings.broker()
    }

    /// `{prefix}/{site}/list`: the site's retained list.
    pub fn site_list_topic(&self, site: &str) -> String {
        topics::site_list(&self.settings.topic_prefix, site)
    }

    /// `{prefix}/{site}/{door}/list`: one door's retained list.
    pub fn door_list_topic(&self, site: &str, door: &str) -> String {
        topics::door_list(&self.settings.topic_prefix, site, door)
    }

    /// `{prefix}/{site}/{door}/commands`: one door's commands.
    pub fn commands_topic(&self, site: &str, door: &str) -> String {
        topics::commands(&self.settings.topic_prefix, site, door)
    }

    /// `{prefix}/{site}/+/status`: every door's retained status.
    pub fn status_filter(&self, site: &str) -> String {
        topics::status_filter(&self.settings.topic_prefix, site)
    }

    /// `{prefix}/{site}/+/events`: every door's events.
    pub fn events_filter(&self, site: &str) -> String {
        topics::events_filter(&self.settings.topic_prefix, site)
    }

    /// rumqttc options: client id, credentials, TLS (rustls, ring), keep-alive (the shared
    /// settings), clean session, and room for outgoing packets of `max_outgoing` payload bytes.
    pub fn options(&self, max_outgoing: usize) -> MqttOptions {
        let mut opts = self.settings.options_v4();
        opts.set_clean_session(true);
        opts.set_max_packet_size(MAX_INCOMING, max_outgoing.saturating_add(PACKET_OVERHEAD));
        opts
    }

    fn connect_error(&self, e: ConnectionError) -> OfficeError {
        let message = match &e {
            ConnectionError::Io(io) => format!("cannot connect: {io}"),
            ConnectionError::ConnectionRefused(code) => {
                format!("refused the connection ({code:?}): check the user name, password or certificate")
            }
            other => format!("connection failed: {}", crate::util::error_chain(other)),
        };
        OfficeError::Connect {
            broker: self.broker(),
            message,
        }
    }

    fn timeout_error(&self, what: &'static str) -> OfficeError {
        OfficeError::Timeout {
            broker: self.broker(),
            what,
            after: self.timeout,
        }
    }

    /// Connects with `opts` and waits for the broker's CONNACK (bounded by the timeout). The
    /// caller keeps polling the event loop.
    pub async fn connect_with(
        &self,
        opts: MqttOptions,
    ) -> Result<(AsyncClient, EventLoop), OfficeError> {
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        eventloop.set_network_options(crate::mqtt::network_options());
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            match tokio::time::timeout_at(deadline, eventloop.poll()).await {
                Err(_) => return Err(self.timeout_error("connection")),
                Ok(Err(e)) => return Err(self.connect_error(e)),
                Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => return Ok((client, eventloop)),
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Connects for publishing payloads of up to `max_payload` bytes (waits for the CONNACK).
    pub async fn connect(&self, max_payload: usize) -> Result<Connection, OfficeError> {
        let started = Instant::now();
        let (client, eventloop) = self.connect_with(self.options(max_payload)).await?;
        Ok(Connection {
            mqtt: self.clone(),
            client,
            eventloop,
            started,
        })
    }

    /// Connects, publishes `payload` on `topic` (QoS 1, retained), waits for the PUBACK and
    /// disconnects. Returns how long it took from connecting to the PUBACK.
    pub async fn publish_retained(
        &self,
        topic: &str,
        payload: Vec<u8>,
    ) -> Result<Duration, OfficeError> {
        self.connect(payload.len())
            .await?
            .publish_retained(topic, payload)
            .await
    }

    /// Subscribes to `filter` (QoS 1) and collects what arrives until `wait` has passed after
    /// the SUBACK (retained messages come right after it); then disconnects.
    pub async fn collect(
        &self,
        filter: &str,
        wait: Duration,
    ) -> Result<Vec<Received>, OfficeError> {
        let (client, mut eventloop) = self.connect_with(self.options(0)).await?;
        client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .map_err(|e| OfficeError::Connect {
                broker: self.broker(),
                message: format!("cannot queue the subscription: {e}"),
            })?;
        let mut got = Vec::new();
        let mut deadline = tokio::time::Instant::now() + self.timeout;
        let mut subscribed = false;
        loop {
            match tokio::time::timeout_at(deadline, eventloop.poll()).await {
                Err(_) if subscribed => break,
                Err(_) => return Err(self.timeout_error("SUBACK")),
                Ok(Err(e)) => return Err(self.connect_error(e)),
                Ok(Ok(Event::Incoming(Packet::SubAck(ack)))) => {
                    if ack
                        .return_codes
                        .iter()
                        .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                    {
                        return Err(OfficeError::Connect {
                            broker: self.broker(),
                            message: format!("refused the subscription to {filter} (ACL?)"),
                        });
                    }
                    subscribed = true;
                    deadline = tokio::time::Instant::now() + wait;
                }
                Ok(Ok(Event::Incoming(Packet::Publish(p)))) => got.push(Received {
                    topic: p.topic.clone(),
                    payload: p.payload.to_vec(),
                    retain: p.retain,
                }),
                Ok(Ok(_)) => {}
            }
        }
        disconnect(&client, &mut eventloop).await;
        Ok(got)
    }
}

/// A clean disconnect, bounded (a failure here changes nothing for the caller).
async fn disconnect(client: &AsyncClient, eventloop: &mut EventLoop) {
    if client.disconnect().await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
}

/// Runs `future` on a fresh current-thread runtime (for the synchronous `pintuctl`).
pub fn block_on<F: Future>(future: F) -> Result<F::Output, OfficeError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(OfficeError::Runtime)?;
    Ok(rt.block_on(future))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_defaults_apply() {
        let file = OfficeSettings {
            host: Some("broker.office".into()),
            port: Some(1884),
            topic_prefix: Some("dc".into()),
            ..Default::default()
        };
        let flags = OfficeSettings {
            port: Some(2000),
            ..Default::default()
        };
        let m = OfficeMqtt::resolve(file.overlay(flags)).unwrap().unwrap();
        assert_eq!(m.broker(), "broker.office:2000");
        assert_eq!(m.site_list_topic("s"), "dc/s/list");
        assert_eq!(m.status_filter("s"), "dc/s/+/status");
        assert!(m.settings.client_id.starts_with("pintuctl-"));
        assert_eq!(m.timeout, DEFAULT_TIMEOUT);
        assert!(OfficeMqtt::resolve(OfficeSettings::default())
            .unwrap()
            .is_none());
        let half = OfficeSettings {
            host: Some("h".into()),
            client_cert_file: Some("c.pem".into()),
            ..Default::default()
        };
        assert!(OfficeMqtt::resolve(half)
            .unwrap_err()
            .to_string()
            .contains("key"));
    }

    #[test]
    fn an_unreachable_broker_fails_fast_with_its_address() {
        // A port nothing listens on: bind one, then close it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let m = OfficeMqtt::resolve(OfficeSettings {
            host: Some("127.0.0.1".into()),
            port: Some(port),
            ..Default::default()
        })
        .unwrap()
        .unwrap();
        let err = block_on(m.publish_retained("t", b"x".to_vec()))
            .unwrap()
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("MQTT broker 127.0.0.1:{port}: cannot connect")),
            "{text}"
        );
    }
}
