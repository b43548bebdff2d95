//! What `pintud --report-failure` does when systemd gives up on pintud (`OnFailure=` starts
//! `pintud-failed.service`): the door's controller is down for good until someone acts, so the
//! office must hear it even though the daemon that normally talks to it is gone.
//!
//! It records a `daemon.failed` event in the outbox (durable: delivered at the next start if not
//! now), then, when `[mqtt]` is configured and the broker answers within a bounded time, sets the
//! door's retained status to `failed` and publishes the outbox in order, the new event last. When
//! the event cannot be recorded (a full disk), the status still goes out and says so.
//! docs/install.md ("When systemd gives up") and docs/events.md.

use std::time::Duration;

use jiff::Timestamp;
use rumqttc::v5::mqttbytes::v5::{LastWill, Packet, PubAckReason};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, EventLoop};
use rumqttc::Outgoing;
use serde::Serialize;

use crate::core::event::{EventDraft, EventKind};
use crate::core::text::bounded;
use crate::door::config::Config;
use crate::door::link::{self, STATUS_SCHEMA};
use crate::door::store::{Store, StoreError, StoreOptions};
use crate::mqtt::{self, Topics};

/// How long the broker gets, in all, before the report gives up on MQTT.
pub const MQTT_DEADLINE: Duration = Duration::from_secs(10);

/// Events published at most in one report (the rest wait for the next start).
const MAX_EVENTS: usize = 1000;

/// Longest text taken from systemd's environment into an event.
const MAX_FIELD: usize = 64;

/// What systemd says about the failed unit (`$MONITOR_*`, set for `OnFailure=` units since
/// systemd 251). All optional: a by-hand run has none of them.
#[derive(Debug, Clone, Default)]
pub struct FailureInfo {
    /// `$MONITOR_SERVICE_RESULT`: `exit-code`, `signal`, `watchdog`, `start-limit-hit`, ...
    pub service_result: Option<String>,
    /// `$MONITOR_EXIT_CODE`: `exited`, `killed`, `dumped`.
    pub exit_code: Option<String>,
    /// `$MONITOR_EXIT_STATUS`: the exit status or signal name.
    pub exit_status: Option<String>,
    /// `$MONITOR_UNIT`: the unit that failed.
    pub unit: Option<String>,
}

impl FailureInfo {
    /// Reads systemd's `$MONITOR_*` variables.
    pub fn from_env() -> FailureInfo {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        FailureInfo {
            service_result: var("MONITOR_SERVICE_RESULT"),
            exit_code: var("MONITOR_EXIT_CODE"),
            exit_status: var("MONITOR_EXIT_STATUS"),
            unit: var("MONITOR_UNIT"),
        }
    }

    /// The event's `reason`: systemd's service result, or `unknown`.
    pub fn reason(&self) -> String {
        self.service_result
            .as_deref()
            .map(|r| bounded(r, MAX_FIELD))
            .unwrap_or_else(|| "unknown".into())
    }

    /// The event's `detail`.
    pub fn detail(&self) -> String {
        let field = |v: &Option<String>| {
            v.as_deref()
                .map(|s| bounded(s, MAX_FIELD))
                .unwrap_or_else(|| "?".into())
        };
        format!(
            "systemd gave up on {} (result {}, {} {}); pintud is not running: see journalctl -u pintud",
            self.unit
                .as_deref()
                .map(|s| bounded(s, MAX_FIELD))
                .unwrap_or_else(|| "pintud.service".into()),
            field(&self.service_result),
            field(&self.exit_code),
            field(&self.exit_status),
        )
    }
}

/// The retained status a failed door leaves (schema `pintu.status.v1`, state `failed`). It stays
/// until pintud runs again and publishes `online`. It is also the report's last will, so a
/// report cut short still leaves `failed`, not `offline`.
#[derive(Debug, Serialize)]
pub struct FailedStatus {
    /// [`STATUS_SCHEMA`].
    pub schema: &'static str,
    /// Always `failed`.
    pub state: &'static str,
    /// Site id.
    pub site: String,
    /// Door id.
    pub door: String,
    /// When the report was made.
    pub time: Timestamp,
    /// As the `daemon.failed` event's `reason`.
    pub reason: String,
    /// As the event's `detail`.
    pub detail: String,
}

/// What the report did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureReport {
    /// The `daemon.failed` event's sequence number, once it is durable.
    pub seq: Option<u64>,
    /// Why it could not be recorded (a store that does not open, a full disk): the status is
    /// still published, with this in its detail.
    pub record_error: Option<String>,
    /// Whether the broker acknowledged the `failed` status.
    pub status_published: bool,
    /// Outbox events the broker acknowledged (they left the outbox).
    pub events_published: usize,
    /// Events still in the outbox (`None` without a store).
    pub outbox_left: Option<u64>,
    /// Why MQTT did not complete, if it did not (or `None` without `[mqtt]`).
    pub mqtt_error: Option<String>,
}

/// Records `daemon.failed` and tells the office (see the module docs). Whatever fails on the way
/// is in the report: a door whose disk is full (the usual reason for systemd to give up) cannot
/// record anything, and the office must still hear of it.
pub async fn report(
    cfg: &Config,
    info: &FailureInfo,
    now: Timestamp,
    mqtt_deadline: Duration,
) -> FailureReport {
    let store_opts = StoreOptions::for_config(cfg);
    let policy = cfg.trust.clone();
    let store = match tokio::task::spawn_blocking(move || Store::open(&store_opts, &policy)).await {
        Ok(Ok((store, opened))) => Ok((store, opened.events)),
        Ok(Err(e)) => Err(crate::util::error_chain(&e)),
        Err(e) => Err(format!("store task: {e}")),
    };
    let (store, recorded) = match store {
        Ok((store, opened)) => {
            let recorded =
                record(&store, opened, info, now).map_err(|e| crate::util::error_chain(&e));
            (Some(store), recorded)
        }
        Err(e) => (None, Err(e)),
    };
    let mut report = FailureReport {
        seq: recorded.as_ref().ok().copied(),
        record_error: recorded.err(),
        status_published: false,
        events_published: 0,
        outbox_left: store.as_ref().map(Store::outbox_depth),
        mqtt_error: None,
    };
    let Some(mqtt_cfg) = &cfg.mqtt else {
        return report;
    };
    let mut detail = info.detail();
    if let Some(e) = &report.record_error {
        detail.push_str(&format!(
            "; daemon.failed could not be recorded on the door: {}",
            bounded(e, 200)
        ));
    }
    let status = FailedStatus {
        schema: STATUS_SCHEMA,
        state: "failed",
        site: cfg.site.clone(),
        door: cfg.door.clone(),
        time: now,
        reason: info.reason(),
        detail,
    };
    let outcome = tokio::time::timeout(
        mqtt_deadline,
        publish(cfg, mqtt_cfg, store.as_ref(), &status, &mut report),
    )
    .await;
    report.mqtt_error = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(_) => Some(format!(
            "the broker did not take everything within {}s",
            mqtt_deadline.as_secs()
        )),
    };
    if let Some(store) = &store {
        if let Err(e) = store.flush_blocking() {
            tracing::warn!("pintud --report-failure: flushing acknowledgements: {e}");
        }
        report.outbox_left = Some(store.outbox_depth());
    }
    report
}

/// Appends what opening the store reported and `daemon.failed`, durably; the event's seq.
fn record(
    store: &Store,
    opened: Vec<EventDraft>,
    info: &FailureInfo,
    now: Timestamp,
) -> Result<u64, StoreError> {
    for draft in opened {
        store.append(draft, now)?;
    }
    let event = store.append(
        EventDraft::new(EventKind::DaemonFailed)
            .reason(info.reason())
            .detail(info.detail())
            .list_version(store.active().map(|a| a.meta.version)),
        now,
    )?;
    store.flush_blocking()?;
    Ok(event.seq)
}

/// Connects (retrying until the caller's deadline), publishes the retained `failed` status, then
/// the outbox in order one event at a time, acknowledging each in the store; disconnects.
async fn publish(
    cfg: &Config,
    mqtt_cfg: &crate::door::config::MqttConfig,
    store: Option<&Store>,
    status: &FailedStatus,
    report: &mut FailureReport,
) -> Result<(), String> {
    let topics = Topics::new(&mqtt_cfg.topic_prefix, &cfg.site, &cfg.door);
    let status_bytes = serde_json::to_vec(status).map_err(|e| e.to_string())?;
    let mut opts = link::options(mqtt_cfg, &topics, &cfg.site, &cfg.door, 64 * 1024);
    opts.set_last_will(LastWill::new(
        topics.status.clone(),
        status_bytes.clone(),
        QoS::AtLeastOnce,
        true,
        None,
    ));
    loop {
        let (client, mut eventloop) = AsyncClient::new(opts.clone(), 16);
        eventloop
            .options
            .set_network_options(mqtt::network_options());
        // Wait for the broker's CONNACK.
        let connected = loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => break Ok(()),
                Ok(_) => {}
                Err(e) => break Err(mqtt::describe(&e)),
            }
        };
        if let Err(e) = connected {
            tracing::warn!("pintud --report-failure: broker: {e}; retrying");
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        }
        let send = |topic: String, retain: bool, bytes: Vec<u8>| {
            client
                .try_publish(topic, QoS::AtLeastOnce, retain, bytes)
                .map_err(|e| e.to_string())
        };
        send(topics.status.clone(), true, status_bytes.clone())?;
        wait_puback(&mut eventloop).await?;
        report.status_published = true;
        while let Some(store) = store.filter(|_| report.events_published < MAX_EVENTS) {
            let Some((seq, bytes)) = store
                .outbox_from(0, 1)
                .map_err(|e| e.to_string())?
                .into_iter()
                .next()
            else {
                break;
            };
            send(topics.events.clone(), false, bytes)?;
            wait_puback(&mut eventloop).await?;
            store.acknowledge(seq).map_err(|e| e.to_string())?;
            report.events_published += 1;
        }
        let _ = client.try_disconnect();
        // Let the DISCONNECT go out (the broker then drops the will).
        while let Ok(event) = eventloop.poll().await {
            if matches!(event, Event::Outgoing(Outgoing::Disconnect)) {
                break;
            }
        }
        return Ok(());
    }
}

/// Polls until the broker acknowledges the one publish in flight. A refusal (an MQTT 5 reason
/// code other than success) is an error: the event stays in the outbox for the next start.
async fn wait_puback(eventloop: &mut EventLoop) -> Result<(), String> {
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                return match ack.reason {
                    PubAckReason::Success | PubAckReason::NoMatchingSubscribers => Ok(()),
                    other => Err(format!("the broker refused the publish ({other:?})")),
                }
            }
            Ok(_) => {}
            Err(e) => return Err(mqtt::describe(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_text_is_bounded_and_stripped() {
        let info = FailureInfo {
            service_result: Some(format!("start-limit-hit\u{1b}[2J{}", "x".repeat(500))),
            exit_code: None,
            exit_status: Some("2".into()),
            unit: None,
        };
        let reason = info.reason();
        assert!(!reason.contains('\u{1b}'));
        assert_eq!(reason.chars().count(), MAX_FIELD + 1, "{reason}");
        let detail = info.detail();
        assert!(
            detail.contains("pintud.service") && detail.contains("? 2"),
            "{detail}"
        );
        assert_eq!(FailureInfo::default().reason(), "unknown");
    }
}
