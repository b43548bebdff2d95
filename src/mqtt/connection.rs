//! One connection loop for every long-lived Pintu MQTT client (the door's link and the office
//! archive): a new rumqttc client and event loop per connection, reconnects after an exponential
//! backoff with jitter, and reports to the task that uses the connection through
//! [`ConnectionReport`]. Also the TCP options and the rustls crypto provider every client uses.

use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{ConnAck, Packet};
use rumqttc::v5::{AsyncClient, ConnectionError, Event, MqttOptions, StateError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::core::text::bounded;
use crate::mqtt::BROKER_TEXT_MAX;

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

/// What a connection task reports to the task that uses the connection. `generation` numbers
/// connections, so the user can tell a stale report from a current one.
pub trait ConnectionReport: Send + Sized + 'static {
    /// The broker accepted a connection; `client` publishes on it (and only on it). `ack` is the
    /// broker's CONNACK (session present, its limits).
    fn connected(generation: u64, client: AsyncClient, ack: &ConnAck) -> Self;
    /// Anything else the event loop yielded; `None` drops it.
    fn event(generation: u64, event: Event) -> Option<Self>;
    /// The connection ended (or could not be made).
    fn disconnected(generation: u64, error: String) -> Self;
    /// The connection ended with `error`; by default [`ConnectionReport::disconnected`] with it
    /// in words.
    fn disconnected_by(generation: u64, error: &ConnectionError) -> Self {
        Self::disconnected(generation, describe(error))
    }
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
        eventloop.options.set_network_options(network_options());
        loop {
            let polled = tokio::select! {
                _ = stop.cancelled() => return,
                polled = eventloop.poll() => polled,
            };
            let msg = match polled {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    backoff.reset();
                    M::connected(generation, client.clone(), &ack)
                }
                Ok(event) => match M::event(generation, event) {
                    Some(msg) => msg,
                    None => continue,
                },
                Err(error) => {
                    if tx.send(M::disconnected_by(generation, &error)).is_err() {
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

/// Whether the connection broke on something the broker sent that rumqttc could not parse (not
/// a network error): possibly its answer to one message.
pub fn is_protocol_error(error: &ConnectionError) -> bool {
    matches!(
        error,
        ConnectionError::MqttState(StateError::Deserialization(_))
    )
}

/// TCP settings for every Pintu MQTT client: small packets (events, acks) go out at once. With
/// Nagle's algorithm and the broker's delayed ACKs each event waited ~40 ms on loopback.
pub fn network_options() -> rumqttc::NetworkOptions {
    let mut network = rumqttc::NetworkOptions::new();
    network.set_tcp_nodelay(true);
    network
}

/// rustls with the ring provider (no aws-lc C build); once per process.
pub fn install_crypto_provider() {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
}

/// A connection error in words for operators (the link and the office archive log it).
pub fn describe(error: &ConnectionError) -> String {
    match error {
        ConnectionError::Io(e) => format!("network: {e}"),
        ConnectionError::ConnectionRefused(code) => {
            format!("broker refused the connection: {code:?}")
        }
        ConnectionError::MqttState(StateError::ServerDisconnect {
            reason_code,
            reason_string,
        }) => format!(
            "broker disconnected the door: {reason_code:?}{}",
            reason_string
                .as_deref()
                .map(|s| format!(" ({})", bounded(s, BROKER_TEXT_MAX)))
                .unwrap_or_default()
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_max_and_resets() {
        let (min, max) = (Duration::from_millis(100), Duration::from_millis(800));
        let mut b = Backoff::new(min, max);
        for ceiling in [100u64, 200, 400, 800, 800] {
            let d = b.next_delay();
            let ceiling = Duration::from_millis(ceiling);
            assert!(
                d >= ceiling / 2 && d <= ceiling,
                "{d:?} not in [{ceiling:?}/2, {ceiling:?}]"
            );
        }
        b.reset();
        assert!(b.next_delay() <= min);
    }
}
