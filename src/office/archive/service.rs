//! The archive service: a persistent MQTT session subscribed to every door's events, each
//! event stored durably before its PUBACK, reconnecting with backoff, serving queries.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::{ConnAck, Packet, Publish, SubscribeReasonCode};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event as MqttEvent, MqttOptions};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::query::serve_queries;
use super::store::Archive;
use super::{ArchiveError, Stats, Stored, MAX_EVENT_BYTES};
use crate::mqtt::settings::SettingsError;
use crate::mqtt::{self, topics, BrokerArgs, BrokerSettings};

/// Most messages made durable with one flush.
const BATCH: usize = 512;

/// How the archive connects and where it stores.
#[derive(Clone, Debug)]
pub struct ArchiveOptions {
    /// The broker (the shared settings). Keep the client id fixed (default
    /// `pintu-archive-{site}`): the broker keeps the session and queues events for it.
    pub broker: BrokerSettings,
    /// Site id.
    pub site: String,
    /// The query socket (default `{db}/archive.sock`); `None` serves none.
    pub socket: Option<PathBuf>,
}

impl ArchiveOptions {
    /// The archive of `site` with the broker `args` name (flags over an office file), its query
    /// socket at `socket`. The client id defaults to `pintu-archive-{site}`. Plain TCP is
    /// refused unless `--insecure` is given: events and the broker password would cross the
    /// network in clear.
    pub fn from_args(
        args: &BrokerArgs,
        site: &str,
        socket: Option<PathBuf>,
    ) -> Result<ArchiveOptions, ArchiveError> {
        let draft = args.draft()?;
        let named = draft.host.clone().unwrap_or_default();
        if draft.ca_file.is_none() && !draft.insecure {
            return Err(SettingsError::Settings(format!(
                "--broker {named}: no --ca-file, so events and the broker password would cross the \
                 network in clear; give --ca-file, or --insecure to allow plain TCP"
            ))
            .into());
        }
        let broker = draft
            .resolve(|| format!("pintu-archive-{site}"))?
            .ok_or_else(|| SettingsError::Settings("--broker is required".into()))?;
        Ok(ArchiveOptions {
            broker,
            site: site.to_string(),
            socket,
        })
    }

    /// The events topic filter: `{prefix}/{site}/+/events`.
    pub fn filter(&self) -> String {
        topics::events_filter(&self.broker.topic_prefix, &self.site)
    }

    fn mqtt(&self) -> MqttOptions {
        let mut o = self.broker.options_v5();
        // The broker keeps the subscription and queues events while the archive is away. With
        // MQTT 5 a session lasts only as long as its expiry interval: never expire it.
        o.set_clean_start(false);
        o.set_session_expiry_interval(Some(u32::MAX));
        // PUBACK only after the event is flushed to disk.
        o.set_manual_acks(true);
        o.set_max_packet_size(Some((MAX_EVENT_BYTES + 1024) as u32));
        o
    }
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

/// Binds the query socket (replacing a stale one), mode 0660.
fn bind_socket(path: &Path) -> Result<tokio::net::UnixListener, ArchiveError> {
    let err = |e: std::io::Error| ArchiveError::Socket {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(ArchiveError::Socket {
            path: path.to_path_buf(),
            message: "another archive serves this socket".into(),
        });
    }
    let _ = std::fs::remove_file(path);
    let listener = tokio::net::UnixListener::bind(path).map_err(err)?;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(err)?;
    Ok(listener)
}

/// Runs the archive until `stop`: connects, subscribes, stores every event durably before
/// acknowledging it, reconnects with backoff, serves queries. Returns the final counters.
pub async fn run(
    archive: Arc<Archive>,
    opts: ArchiveOptions,
    stop: CancellationToken,
) -> Result<Stats, ArchiveError> {
    let filter = opts.filter();
    let serve_stop = CancellationToken::new();
    let server = match &opts.socket {
        Some(path) => {
            let listener = bind_socket(path)?;
            Some(tokio::spawn(serve_queries(
                archive.clone(),
                listener,
                serve_stop.clone(),
            )))
        }
        None => None,
    };
    let mut highest = archive.highest()?;
    let stats = archive.stats()?;
    tracing::info!(
        host = %opts.broker.host, port = opts.broker.port, client_id = %opts.broker.client_id,
        filter = %filter, tls = opts.broker.tls.is_some(), db = %archive.path().display(),
        stored = stats.stored, doors = stats.doors.len(),
        "archive starting"
    );
    if stats.conflicts > 0 {
        tracing::error!(
            conflicts = stats.conflicts,
            "ALARM: {} conflicting event(s) archived: another event arrived under an archived (door, seq); see `pintuctl archive --stats`",
            stats.conflicts
        );
    }
    for g in archive.gaps()? {
        tracing::warn!(door = %g.door, from = g.from, to = g.to, note = g.note.as_deref().unwrap_or(""), "gap in the archive: events {}..={} of door {} are missing", g.from, g.to, g.door);
    }

    let (tx, mut rx) = mpsc::unbounded_channel();
    let conn_stop = CancellationToken::new();
    // One client and event loop per connection: an acknowledgement can never reach a later
    // connection, where the same packet id could mean another message.
    let conn = tokio::spawn(mqtt::connection_loop::<ConnMsg>(
        opts.mqtt(),
        1024,
        opts.broker.backoff(),
        tx,
        conn_stop.clone(),
    ));
    let mut writer = Writer {
        archive: archive.clone(),
        filter,
        generation: 0,
        client: None,
        highest: &mut highest,
    };
    let result = loop {
        let first = tokio::select! {
            biased;
            _ = stop.cancelled() => break Ok(()),
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
        if let Err(e) = writer.handle(batch).await {
            break Err(e);
        }
    };
    // Stop: what has arrived is stored and acknowledged, then a clean disconnect (the session
    // and its queue stay on the broker).
    let mut rest = Vec::new();
    while let Ok(m) = rx.try_recv() {
        rest.push(m);
    }
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
    serve_stop.cancel();
    if let Some(server) = server {
        let _ = server.await;
    }
    if let Some(path) = &opts.socket {
        let _ = std::fs::remove_file(path);
    }
    result?;
    archive.flush()?;
    let stats = archive.stats()?;
    tracing::info!(
        stored = stats.stored,
        duplicates = stats.duplicates,
        rejected = stats.rejected,
        "archive stopped"
    );
    Ok(stats)
}

struct Writer<'a> {
    archive: Arc<Archive>,
    filter: String,
    generation: u64,
    client: Option<AsyncClient>,
    highest: &'a mut HashMap<String, u64>,
}

impl Writer<'_> {
    /// Handles a batch of messages in order: stores the events, flushes once, then acknowledges
    /// those that arrived on the live connection.
    async fn handle(&mut self, batch: Vec<ConnMsg>) -> Result<(), ArchiveError> {
        let mut to_ack: Vec<(u64, Publish)> = Vec::new();
        let mut stored_any = false;
        for msg in batch {
            match msg {
                ConnMsg::Connected {
                    generation,
                    client,
                    session_present,
                } => {
                    tracing::info!(session_present, "archive connected to the broker");
                    if !session_present && !self.highest.is_empty() {
                        tracing::warn!(
                            "the broker had no session for this archive (client id changed, \
                             session expired, or a broker restart without persistence): events \
                             published while the archive was away may be missing; see \
                             `pintuctl archive --gaps`"
                        );
                    }
                    self.generation = generation;
                    if let Err(e) = client
                        .subscribe(self.filter.clone(), QoS::AtLeastOnce)
                        .await
                    {
                        tracing::warn!(error = %e, "archive: subscribe request failed");
                    }
                    self.client = Some(client);
                }
                ConnMsg::SubAck { ok } => {
                    if ok {
                        tracing::info!(filter = %self.filter, "archive subscribed");
                    } else {
                        tracing::error!(filter = %self.filter, "the broker refused the subscription: check the archive's ACL (read on {})", self.filter);
                    }
                }
                ConnMsg::Disconnected { generation, error } => {
                    if generation == self.generation {
                        tracing::warn!(%error, "archive lost the broker; reconnecting");
                        self.client = None;
                    }
                }
                ConnMsg::Publish {
                    generation,
                    publish,
                } => {
                    let topic = String::from_utf8_lossy(&publish.topic).into_owned();
                    let stored = self.archive.store(&topic, &publish.payload)?;
                    stored_any = true;
                    self.log(&stored, &topic);
                    to_ack.push((generation, publish));
                }
            }
        }
        if stored_any {
            let archive = self.archive.clone();
            tokio::task::spawn_blocking(move || archive.flush())
                .await
                .map_err(|e| ArchiveError::Task(e.to_string()))??;
        }
        if let Some(client) = &self.client {
            for (generation, publish) in to_ack {
                if generation == self.generation {
                    // The event loop task drains the request channel: this never waits long.
                    if client.ack(&publish).await.is_err() {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    fn log(&mut self, stored: &Stored, topic: &str) {
        match stored {
            Stored::New { door, seq } => {
                let high = self.highest.get(door).copied().unwrap_or(0);
                if *seq > high + 1 {
                    tracing::warn!(%door, from = high + 1, to = seq - 1, "gap: events {}..={} of door {door} are missing (received {seq})", high + 1, seq - 1);
                } else if *seq <= high {
                    tracing::info!(%door, seq, "late event fills a gap");
                }
                if *seq > high {
                    self.highest.insert(door.clone(), *seq);
                }
                tracing::debug!(%door, seq, "archived");
            }
            Stored::Duplicate { door, seq } => {
                tracing::debug!(%door, seq, "duplicate ignored")
            }
            Stored::Conflict { door, seq } => tracing::error!(
                %door, seq,
                "ALARM: conflicting event: another event arrived as {door}#{seq}, which holds a different one; kept the first (see the rejected tree). A door never sends this: two doors with the same id, a replaced store, or a forged publish"
            ),
            Stored::Rejected { reason } => {
                tracing::warn!(%topic, %reason, "message not archived")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_archive_needs_tls_or_insecure_and_keeps_a_fixed_client_id() {
        let plain = BrokerArgs {
            broker: Some("127.0.0.1:1884".into()),
            ..Default::default()
        };
        let refused = ArchiveOptions::from_args(&plain, "dc1", None).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("--insecure to allow plain TCP"),
            "{refused}"
        );
        let allowed = BrokerArgs {
            insecure: true,
            ..plain
        };
        let opts = ArchiveOptions::from_args(&allowed, "dc1", None).expect("insecure allowed");
        assert_eq!(opts.broker.broker(), "127.0.0.1:1884");
        assert_eq!(opts.broker.client_id, "pintu-archive-dc1");
        assert!(opts.broker.insecure);
        assert_eq!(opts.filter(), "pintu/dc1/+/events");
        let nowhere = BrokerArgs {
            insecure: true,
            ..Default::default()
        };
        assert!(ArchiveOptions::from_args(&nowhere, "dc1", None).is_err());
    }
}
