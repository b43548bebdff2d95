//! Publishing a complete payload: a list goes out retained on the site's or the door's list
//! topic (the path `pintuctl publish` takes, `pintu::office::client`), a command on its door's
//! command topic (not retained: a door carries each command id out once anyway); a list can
//! also be written as a file for a door's inbox, for doors without a broker.
//!
//! As in `pintu::office::publish`, the broker is reached first (an unreachable broker changes
//! nothing), then the payload is recorded as published (with its audit entry), then it is sent;
//! a send that is not acknowledged leaves it recorded, and publishing again is allowed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pintu::mqtt::BrokerSettings;
use pintu::office::client::{OfficeError, OfficeMqtt, DEFAULT_TIMEOUT};
use rumqttc::{Event, Packet, QoS};
use serde::Serialize;
use sqlx::Row;

use super::{PayloadKind, Signer, SigningError};
use crate::audit::{self, AuditActor, Entry};
use crate::db::{now_ms, DbError};

/// A published payload.
#[derive(Debug, Clone, Serialize)]
pub struct Published {
    /// The payload.
    pub payload_id: String,
    /// List or command.
    pub kind: PayloadKind,
    /// The topic it went to (`None`: no broker; the envelope is for a file).
    pub topic: Option<String>,
    /// `host:port`.
    pub broker: Option<String>,
    /// From connecting to the broker's acknowledgement.
    pub took: Option<Duration>,
    /// The name a door's inbox file should have (`site-v12.signed`).
    pub file_name: String,
    /// The signed envelope.
    #[serde(skip)]
    pub envelope: Vec<u8>,
}

impl Published {
    /// Writes the envelope into `dir` (a door's inbox, a USB stick) as [`Published::file_name`],
    /// atomically (a temporary file, then a rename: the inbox never sees half a list).
    pub fn write_to(&self, dir: &Path) -> Result<PathBuf, SigningError> {
        let path = dir.join(&self.file_name);
        pintu::util::files::write_atomic(&path, &self.envelope, 0o640).map_err(|source| {
            SigningError::Write {
                path: path.clone(),
                source,
            }
        })?;
        Ok(path)
    }
}

impl Signer {
    /// Publishes the complete payload `payload_id`: on `broker` when given (a list retained on
    /// its list topic, a command on its door's command topic), else as an envelope for a file
    /// (lists only). Publishing a published payload again is allowed (a broker that lost its
    /// retained list); a superseded or expired one is refused.
    pub async fn publish(
        &self,
        payload_id: &str,
        broker: Option<&BrokerSettings>,
        actor: &AuditActor,
    ) -> Result<Published, SigningError> {
        let (info, bytes) = self.load(payload_id).await?;
        if info.status == "superseded" {
            return Err(SigningError::NotPending {
                id: info.id,
                status: info.status,
            });
        }
        if info.expires_at_ms <= now_ms() {
            return Err(SigningError::Expired(info.id));
        }
        if let Some(version) = info.list_version {
            // Doors hold the newest published version: anything below it is a rollback.
            let newest: Option<i64> = sqlx::query(
                "SELECT MAX(list_version) FROM payloads WHERE kind = 'list' \
                 AND status = 'published' AND id <> $1",
            )
            .bind(&info.id)
            .fetch_one(self.db.pool())
            .await?
            .try_get(0)?;
            if let Some(newest) = newest.filter(|n| version <= *n) {
                return Err(SigningError::StaleVersion {
                    version: version as u64,
                    published: newest as u64,
                });
            }
        }
        let envelope = self.envelope_of(&info, &bytes)?;
        if info.kind == PayloadKind::Command && broker.is_none() {
            return Err(SigningError::NoBroker);
        }
        let mqtt = broker.map(|settings| OfficeMqtt {
            settings: settings.clone(),
            timeout: DEFAULT_TIMEOUT,
        });
        let door = info.door.as_deref();
        let topic = mqtt.as_ref().map(|m| match (info.kind, door) {
            (PayloadKind::List, None) => m.site_list_topic(&info.site),
            (PayloadKind::List, Some(door)) => m.door_list_topic(&info.site, door),
            // A command always names its door (checked when it was created).
            // (No decision is ever stored as a payload: `create_payload` refuses it.)
            (PayloadKind::Command | PayloadKind::Decision, door) => {
                m.commands_topic(&info.site, door.unwrap_or("*"))
            }
        });
        let file_name = match (info.kind, door, info.list_version) {
            (PayloadKind::List, None, Some(v)) => format!("{}-v{v}.signed", info.site),
            (PayloadKind::List, Some(d), Some(v)) => format!("{}-{d}-v{v}.signed", info.site),
            _ => format!("{}-command-{}.signed", info.site, info.id),
        };
        let link = match &mqtt {
            Some(m) => Some(
                m.connect(envelope.len())
                    .await
                    .map_err(SigningError::Broker)?,
            ),
            None => None,
        };
        let signers: Vec<&str> = info.signatures.iter().map(|s| s.key_id.as_str()).collect();
        let mut tx = self.db.begin_write().await?;
        sqlx::query(
            "UPDATE payloads SET status = 'published', \
             published_at_ms = COALESCE(published_at_ms, $1) WHERE id = $2",
        )
        .bind(now_ms())
        .bind(&info.id)
        .execute(&mut *tx)
        .await?;
        audit::record(
            &mut tx,
            &self.key,
            self.db.backend(),
            actor,
            Entry::new("payload.publish", format!("payload:{}", info.id))
                .before(serde_json::json!({ "status": info.status }))
                .after(serde_json::json!({
                    "status": "published",
                    "via": if link.is_some() { "broker" } else { "file" },
                    "topic": topic,
                    "sha256": info.sha256,
                    "signed_by": signers,
                })),
        )
        .await?;
        tx.commit().await.map_err(DbError::from)?;
        let took = match (link, &topic, &mqtt) {
            (Some(link), Some(topic), Some(m)) => {
                let sent = match info.kind {
                    PayloadKind::List => link.publish_retained(topic, envelope.clone()).await,
                    PayloadKind::Command | PayloadKind::Decision => {
                        publish_once(m, link, topic, envelope.clone()).await
                    }
                };
                Some(sent.map_err(|source| SigningError::NotAcknowledged {
                    id: info.id.clone(),
                    source,
                })?)
            }
            _ => None,
        };
        Ok(Published {
            payload_id: info.id,
            kind: info.kind,
            broker: mqtt.as_ref().map(OfficeMqtt::broker),
            topic,
            took,
            file_name,
            envelope,
        })
    }
}

/// Publishes `payload` on `topic`, QoS 1, not retained, and waits for its PUBACK (bounded).
async fn publish_once(
    mqtt: &OfficeMqtt,
    link: pintu::office::client::Connection,
    topic: &str,
    payload: Vec<u8>,
) -> Result<Duration, OfficeError> {
    let started = std::time::Instant::now();
    let (client, mut eventloop) = link.into_parts();
    client
        .publish(topic, QoS::AtLeastOnce, false, payload)
        .await
        .map_err(|e| OfficeError::Connect {
            broker: mqtt.broker(),
            message: format!("cannot queue the publish: {e}"),
        })?;
    let deadline = tokio::time::Instant::now() + mqtt.timeout;
    loop {
        match tokio::time::timeout_at(deadline, eventloop.poll()).await {
            Err(_) => {
                return Err(OfficeError::Timeout {
                    broker: mqtt.broker(),
                    what: "PUBACK",
                    after: mqtt.timeout,
                })
            }
            Ok(Err(e)) => {
                return Err(OfficeError::Connect {
                    broker: mqtt.broker(),
                    message: format!("connection failed: {}", pintu::util::error_chain(&e)),
                })
            }
            // One publish in flight: its PUBACK is the one.
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => break,
            Ok(Ok(_)) => {}
        }
    }
    let took = started.elapsed();
    // A clean goodbye, bounded; a failure here changes nothing for the caller.
    if client.disconnect().await.is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while let Ok(event) = eventloop.poll().await {
                if matches!(event, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                    break;
                }
            }
        })
        .await;
    }
    Ok(took)
}
