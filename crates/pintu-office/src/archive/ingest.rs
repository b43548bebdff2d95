//! The ingest: a persistent MQTT session with a shared subscription to every door's events,
//! each burst of events committed to the database before its PUBACKs, reconnecting with
//! backoff. Ported from the sled archive's service (`pintu::office::archive`).

use std::future::Future;
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{ConnAck, Packet, Publish, SubscribeReasonCode};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event as MqttEvent, MqttOptions};
use sqlx::Row;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use pintu::mqtt::{self, topics, Backoff, BrokerSettings};

use super::store::{store_batch, Message};
use super::{ArchiveError, Stored, MAX_EVENT_BYTES};
use crate::db::{new_id, now_ms, Db};

/// Most messages stored in one write transaction.
const BATCH: usize = 1000;
/// How many unacknowledged events the broker may have in flight to an instance (MQTT 5 receive
/// maximum): a burst this large is committed at once. Mosquitto's default for clients that do
/// not say is 20, which would cap ingest at 20 events per commit.
const RECEIVE_MAXIMUM: u16 = 1000;
/// The shared-subscription group of every pintu-office instance.
pub const SHARE_GROUP: &str = "pintu-office";

/// The ingest's MQTT client id: `{client_id}-ingest-{instance}`. Fixed per instance: the
/// broker keeps that session and queues events for it while the instance is away.
pub fn client_id(broker: &BrokerSettings, instance: &str) -> String {
    format!("{}-ingest-{instance}", broker.client_id)
}

/// The subscription: `$share/pintu-office/{prefix}/{site}/+/events`.
pub fn share_filter(prefix: &str, site: &str) -> String {
    format!(
        "$share/{SHARE_GROUP}/{}",
        topics::events_filter(prefix, site)
    )
}

fn valid_instance(instance: &str) -> bool {
    !instance.is_empty()
        && instance.len() <= 64
        && instance
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn mqtt_options(broker: &BrokerSettings, instance: &str) -> MqttOptions {
    let mut o = broker.options_v5();
    o.set_client_id(client_id(broker, instance));
    // The broker keeps the subscription and queues events while the instance is away. With
    // MQTT 5 a session lasts only as long as its expiry interval: never expire it.
    o.set_clean_start(false);
    o.set_session_expiry_interval(Some(u32::MAX));
    // PUBACK only after the event is committed.
    o.set_manual_acks(true);
    o.set_receive_maximum(Some(RECEIVE_MAXIMUM));
    o.set_max_packet_size(Some((MAX_EVENT_BYTES + 1024) as u32));
    o
}

/// What the connection task tells the writer.
enum ConnMsg {
    Connected {
        generation: u64,
        client: AsyncClient,
        session_present: bool,
    },
    Publish {
        generation: u64,
        publish: Publish,
    },
    SubAck {
        ok: bool,
    },
    Disconnected {
        generation: u64,
        error: String,
    },
}

impl mqtt::ConnectionReport for ConnMsg {
    fn connected(generation: u64, client: AsyncClient, ack: &ConnAck) -> Self {
        ConnMsg::Connected {
            generation,
            client,
            session_present: ack.session_present,
        }
    }

    fn event(generation: u64, event: MqttEvent) -> Option<Self> {
        match event {
            MqttEvent::Incoming(Packet::Publish(publish)) => Some(ConnMsg::Publish {
                generation,
                publish,
            }),
            MqttEvent::Incoming(Packet::SubAck(ack)) => Some(ConnMsg::SubAck {
                ok: ack
                    .return_codes
                    .iter()
                    .all(|c| matches!(c, SubscribeReasonCode::Success(_))),
            }),
            _ => None,
        }
    }

    fn disconnected(generation: u64, error: String) -> Self {
        ConnMsg::Disconnected { generation, error }
    }
}

/// Runs the ingest of `site` as instance `instance` (its own MQTT session) until `shutdown`:
/// connects, subscribes, commits every burst of events before acknowledging it, reconnects
/// with backoff. A database failure is retried (nothing acknowledged meanwhile); what is
/// unacknowledged at shutdown stays queued on the broker for this instance's session.
/// Dropping the future drops the connection without a DISCONNECT, like a crash.
pub async fn run(
    db: Db,
    broker: BrokerSettings,
    site: String,
    instance: String,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ArchiveError> {
    if !valid_instance(&instance) {
        return Err(ArchiveError::Instance(instance));
    }
    let filter = share_filter(&broker.topic_prefix, &site);
    let client_id = client_id(&broker, &instance);
    let gaps = super::gaps(&db).await?;
    let stats = super::stats(&db).await?;
    tracing::info!(
        host = %broker.host, port = broker.port, %client_id, %filter,
        tls = broker.tls.is_some(), db = db.backend().as_str(),
        stored = stats.counters.stored, doors = stats.doors.len(),
        "archive ingest starting"
    );
    if stats.counters.conflicts > 0 {
        tracing::error!(
            conflicts = stats.counters.conflicts,
            "ALARM: {} conflicting event(s) archived: another event arrived under an archived \
             (door, seq); see the archive's problems",
            stats.counters.conflicts
        );
    }
    // The first few by name; a door that lost thousands of events should not flood the log.
    for g in gaps.iter().take(20) {
        tracing::warn!(door = %g.door, from = g.from, to = g.to, note = g.note.as_deref().unwrap_or(""),
            "gap in the archive: events {}..={} of door {} are missing", g.from, g.to, g.door);
    }
    if gaps.len() > 20 {
        tracing::warn!(
            gaps = gaps.len(),
            "{} gaps in the archive in all",
            gaps.len()
        );
    }

    let (tx, mut rx) = mpsc::unbounded_channel();
    let conn_stop = CancellationToken::new();
    // Dropping this future (a crash in a test, an aborted task) ends the connection too.
    let _conn_guard = conn_stop.clone().drop_guard();
    // One client and event loop per connection: an acknowledgement can never reach a later
    // connection, where the same packet id could mean another message.
    let conn = tokio::spawn(mqtt::connection_loop::<ConnMsg>(
        mqtt_options(&broker, &instance),
        2 * BATCH,
        broker.backoff(),
        tx,
        conn_stop.clone(),
    ));
    let stop = CancellationToken::new();
    let mut writer = Writer {
        db: &db,
        site: &site,
        instance: &instance,
        client_id: &client_id,
        filter,
        generation: 0,
        client: None,
        stop: stop.clone(),
    };
    tokio::pin!(shutdown);
    let mut shutting_down = false;
    let result = loop {
        let first = tokio::select! {
            biased;
            _ = &mut shutdown => break Ok(()),
            m = rx.recv() => m,
        };
        let Some(first) = first else {
            break Ok(());
        };
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        // A shutdown during the batch lets it finish (a failing database is then no longer
        // waited for), then ends the loop.
        let handling = writer.handle(batch);
        tokio::pin!(handling);
        let handled = tokio::select! {
            biased;
            r = &mut handling => r,
            _ = &mut shutdown => {
                shutting_down = true;
                stop.cancel();
                handling.await
            }
        };
        if let Err(e) = handled {
            break Err(e);
        }
        if shutting_down {
            break Ok(());
        }
    };
    // Stop: what has arrived is stored and acknowledged (unless the database is down), then a
    // clean disconnect (the session and its queue stay on the broker).
    let mut rest = Vec::new();
    while let Ok(m) = rx.try_recv() {
        rest.push(m);
    }
    stop.cancel();
    if result.is_ok() && !rest.is_empty() {
        writer.handle(rest).await?;
    }
    if let Some(client) = writer.client.take() {
        let _ = client.disconnect().await;
        let generation = writer.generation;
        let _ = tokio::time::timeout(Duration::from_secs(3), async {
            while let Some(m) = rx.recv().await {
                if matches!(m, ConnMsg::Disconnected { generation: g, .. } if g == generation) {
                    break;
                }
            }
        })
        .await;
    }
    conn_stop.cancel();
    let _ = conn.await;
    result?;
    let stats = super::stats(&db).await?;
    tracing::info!(
        stored = stats.counters.stored,
        duplicates = stats.counters.duplicates,
        rejected = stats.counters.rejected,
        "archive ingest stopped"
    );
    Ok(())
}

struct Writer<'a> {
    db: &'a Db,
    site: &'a str,
    instance: &'a str,
    client_id: &'a str,
    filter: String,
    generation: u64,
    client: Option<AsyncClient>,
    /// Set at shutdown: a failing database is tried once more, not waited for.
    stop: CancellationToken,
}

impl Writer<'_> {
    /// Handles a batch of messages in order: commits the events in one transaction, then
    /// acknowledges those that arrived on the live connection.
    async fn handle(&mut self, batch: Vec<ConnMsg>) -> Result<(), ArchiveError> {
        let mut publishes: Vec<(u64, Publish)> = Vec::new();
        for msg in batch {
            match msg {
                ConnMsg::Connected {
                    generation,
                    client,
                    session_present,
                } => {
                    tracing::info!(session_present, "archive ingest connected to the broker");
                    self.generation = generation;
                    if let Err(e) = client
                        .subscribe(self.filter.clone(), QoS::AtLeastOnce)
                        .await
                    {
                        tracing::warn!(error = %e, "archive ingest: subscribe request failed");
                    }
                    self.client = Some(client);
                    if let Err(e) = self.note_session(session_present).await {
                        tracing::warn!(error = %e, "archive ingest: cannot record the session");
                    }
                }
                ConnMsg::SubAck { ok } => {
                    if ok {
                        tracing::info!(filter = %self.filter, "archive subscribed");
                    } else {
                        tracing::error!(filter = %self.filter, "the broker refused the subscription: check the office's ACL (read on the events topics) and that the broker supports shared subscriptions (Mosquitto 2)");
                    }
                }
                ConnMsg::Disconnected { generation, error } => {
                    if generation == self.generation {
                        tracing::warn!(%error, "archive ingest lost the broker; reconnecting");
                        self.client = None;
                    }
                }
                ConnMsg::Publish {
                    generation,
                    publish,
                } => publishes.push((generation, publish)),
            }
        }
        if publishes.is_empty() {
            return Ok(());
        }
        let messages: Vec<Message> = publishes
            .iter()
            .map(|(_, p)| Message {
                topic: String::from_utf8_lossy(&p.topic).into_owned(),
                payload: p.payload.to_vec(),
            })
            .collect();
        let Some(stored) = self.store(&messages).await else {
            // Shut down while the database was failing: nothing acknowledged; the broker sends
            // it all again to this session.
            return Ok(());
        };
        for (s, m) in stored.iter().zip(&messages) {
            log(s, &m.topic);
        }
        if let Some(client) = &self.client {
            for (generation, publish) in &publishes {
                if *generation == self.generation {
                    // The event loop task drains the request channel: this never waits long.
                    if client.ack(publish).await.is_err() {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// Stores the batch, retrying while the database fails; `None` if shutdown came first.
    async fn store(&self, messages: &[Message]) -> Option<Vec<Stored>> {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        loop {
            match store_batch(self.db, self.site, self.instance, messages).await {
                Ok(stored) => return Some(stored),
                Err(e) => {
                    tracing::error!(error = %e, events = messages.len(), "archive ingest cannot store; nothing acknowledged, retrying");
                    if self.stop.is_cancelled() {
                        return None;
                    }
                    tokio::select! {
                        _ = self.stop.cancelled() => return None,
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                    }
                }
            }
        }
    }

    /// Records the connection; an instance seen before whose session the broker no longer has
    /// may have missed events: a `session_lost` problem.
    async fn note_session(&self, session_present: bool) -> Result<(), ArchiveError> {
        let mut tx = self.db.begin_write().await?;
        let now = now_ms();
        let known = sqlx::query("SELECT instance FROM ingest_instances WHERE instance = $1")
            .bind(self.instance)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get::<String, _>(0))
            .transpose()?
            .is_some();
        if known {
            sqlx::query(
                "UPDATE ingest_instances SET last_connected_ms = $1, client_id = $2 \
                 WHERE instance = $3",
            )
            .bind(now)
            .bind(self.client_id)
            .bind(self.instance)
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query(
                "INSERT INTO ingest_instances (instance, client_id, first_connected_ms, \
                 last_connected_ms) VALUES ($1, $2, $3, $3)",
            )
            .bind(self.instance)
            .bind(self.client_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        if known && !session_present {
            let detail = format!(
                "the broker had no session for ingest instance {} (client id {}): its session \
                 expired, the client id changed, or the broker restarted without persistence; \
                 events published while it was away may be missing (see the gaps)",
                self.instance, self.client_id
            );
            tracing::warn!("{detail}");
            sqlx::query(
                "INSERT INTO ingest_problems (id, kind, detail, instance, found_at_ms) \
                 VALUES ($1, 'session_lost', $2, $3, $4)",
            )
            .bind(new_id())
            .bind(&detail)
            .bind(self.instance)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

fn log(stored: &Stored, topic: &str) {
    match stored {
        Stored::New {
            door,
            seq,
            gap,
            filled,
        } => {
            if let Some((from, to)) = gap {
                tracing::warn!(%door, from, to, "gap: events {from}..={to} of door {door} are missing (received {seq})");
            } else if *filled {
                tracing::info!(%door, seq, "late event fills a gap");
            }
            tracing::debug!(%door, seq, "archived");
        }
        Stored::Duplicate { door, seq } => tracing::debug!(%door, seq, "duplicate ignored"),
        Stored::Conflict { door, seq } => tracing::error!(
            %door, seq,
            "ALARM: conflicting event: another event arrived as {door}#{seq}, which holds a different one; kept the first (see the archive's problems). A door never sends this: two doors with the same id, a replaced store, or a forged publish"
        ),
        Stored::Rejected { reason } => {
            tracing::warn!(%topic, %reason, "message not archived")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_fit_a_client_id() {
        for ok in ["a", "office-1", "pg.b_2"] {
            assert!(valid_instance(ok), "{ok}");
        }
        for bad in ["", "a b", "a/b", "+", &"x".repeat(65)] {
            assert!(!valid_instance(bad), "{bad}");
        }
        assert_eq!(
            share_filter("pintu", "dc1"),
            "$share/pintu-office/pintu/dc1/+/events"
        );
    }
}
