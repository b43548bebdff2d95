//! The control socket's requests answered: status, `who`, recent events, simulated taps and
//! inputs, enrollment capture, each with its permission check.

use std::time::Duration;

use tokio::sync::oneshot;

use crate::core::event::{EventDraft, EventKind};
use crate::core::text::bounded;
use crate::door::config::ReaderBackend;
use crate::door::control::{
    ActiveListSummary, Peer, ReaderStatus, Reply, Request, Responder, Status, CAPTURE_DEFAULT,
};
use crate::door::runtime::handle::DaemonHandle;
use crate::door::runtime::mailbox::DoorMsg;

impl Responder for DaemonHandle {
    fn respond(
        &self,
        req: Request,
        peer: Option<Peer>,
    ) -> impl std::future::Future<Output = Reply> + Send {
        self.handle(req, peer)
    }
}

impl DaemonHandle {
    /// Answers one control request from `peer` (the socket client's credentials).
    pub async fn handle(&self, req: Request, peer: Option<Peer>) -> Reply {
        match req {
            Request::Tap { uid, reader } => match self.tap(&uid, reader.as_deref()).await {
                Ok(outcome) => Reply::Tap(outcome),
                Err(message) => Reply::Error { message },
            },
            Request::Input { input } => {
                // With real inputs wired, a simulated exit button would be a way round the door;
                // with a real lock, so would any simulated input (unless this is a test bench).
                if self.cfg.inputs.backend != crate::door::config::GpioBackend::Sim {
                    return Reply::Error {
                        message: "this door has real inputs: simulated inputs are refused".into(),
                    };
                }
                if self.drives_real_lock() {
                    return Reply::Error {
                        message: "this door drives a real lock: simulated inputs are refused (only a test bench with [door] bench = true takes them)".into(),
                    };
                }
                let (tx, rx) = oneshot::channel();
                if self
                    .door_tx
                    .send(DoorMsg::Input { input, reply: tx })
                    .await
                    .is_err()
                    || rx.await.is_err()
                {
                    return Reply::Error {
                        message: "the door task has stopped".into(),
                    };
                }
                match self.flush().await {
                    Ok(()) => Reply::Input { input },
                    Err(e) => Reply::Error {
                        message: format!("input handled but its event is not durable: {e}"),
                    },
                }
            }
            Request::Status => Reply::Status(Box::new(self.status())),
            Request::Who => {
                let (tx, rx) = oneshot::channel();
                if self.door_tx.send(DoorMsg::Who { reply: tx }).await.is_err() {
                    return Reply::Error {
                        message: "the door task has stopped".into(),
                    };
                }
                match rx.await {
                    Ok(occupants) => Reply::Who { occupants },
                    Err(_) => Reply::Error {
                        message: "the door task has stopped".into(),
                    },
                }
            }
            Request::Events { limit } => {
                match self
                    .recorder
                    .store()
                    .recent_events(limit.unwrap_or(20).min(1000))
                {
                    Ok(events) => Reply::Events { events },
                    Err(e) => Reply::Error {
                        message: e.to_string(),
                    },
                }
            }
            Request::Capture { timeout_ms, reader } => {
                let by = match self.may_capture(peer) {
                    Ok(by) => by,
                    Err(message) => {
                        tracing::warn!(?peer, "capture refused: {message}");
                        self.record(
                            EventDraft::new(EventKind::ControlRefused)
                                .reason("capture_not_permitted")
                                .detail(format!(
                                    "capture over the control socket by {}",
                                    describe_peer(peer)
                                )),
                        );
                        let _ = self.flush().await;
                        return Reply::Error { message };
                    }
                };
                let timeout = timeout_ms.map_or(CAPTURE_DEFAULT, Duration::from_millis);
                match self.capture_by(timeout, reader, by).await {
                    Ok(captured) => Reply::Captured(captured),
                    Err(message) => Reply::Error { message },
                }
            }
        }
    }

    /// Whether the control socket's simulated taps and inputs would reach a real relay: a GPIO
    /// lock (or one injected by the embedder) on a door that is not a declared test bench.
    pub(super) fn drives_real_lock(&self) -> bool {
        self.cfg.lock != crate::door::config::LockHardware::Sim && !self.cfg.bench
    }

    /// Who may capture raw UIDs: root, pintud's own user, and members of
    /// `[control] capture_group`. `Ok` carries who it is, for the `card.captured` event.
    fn may_capture(&self, peer: Option<Peer>) -> Result<String, String> {
        let Some(peer) = peer else {
            return Err("capture refused: the client's credentials are unknown".into());
        };
        let who = describe_peer(Some(peer));
        if peer.uid == 0 || peer.uid == nix::unistd::geteuid().as_raw() {
            return Ok(who);
        }
        if let Some(group) = &self.cfg.capture_group {
            if peer_in_group(peer, group) {
                return Ok(who);
            }
        }
        Err(format!(
            "capture returns raw card UIDs: only root, the pintud user and members of [control] capture_group ({}) may capture; {who} may not",
            self.cfg.capture_group.as_deref().unwrap_or("not set")
        ))
    }

    pub(super) fn reader_names(&self) -> String {
        self.cfg
            .readers
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Current status.
    pub fn status(&self) -> Status {
        let now = self.recorder.now();
        let view = self.view.borrow().clone();
        let store = self.recorder.store();
        // Expiry on the time taps are decided on (the trusted-time floor when the clock is
        // behind it), as the door task's `list.expired` alarm does.
        let decided_at = view.clock.as_ref().map_or(now, |c| c.effective.max(now));
        Status {
            occupancy: view.occupancy,
            visitors_inside: view.visitors,
            clock: view.clock,
            site: self.cfg.site.clone(),
            door: self.cfg.door.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: self.started_at,
            now,
            list: store.active().map(|a| ActiveListSummary {
                version: a.meta.version,
                issued_at: a.meta.issued_at,
                expires_at: a.meta.expires_at,
                expired: decided_at >= a.meta.expires_at,
                entries: a.meta.entry_count,
                signed_by: a.meta.signed_by.clone(),
                sha256: hex::encode(a.meta.payload_digest),
            }),
            highest_list_version: store.highest_version(),
            lock: view.lock,
            lock_changes: self
                .lock_record
                .as_ref()
                .map(|r| r.changes())
                .unwrap_or_default(),
            outbox_depth: store.outbox_depth(),
            set_aside: store.set_aside_count(),
            delivery_refused: store.delivery_refused(),
            lockdown: view.lockdown.map(|r| r.as_str().to_string()),
            contact: view
                .contact
                .map(|open| if open { "open" } else { "closed" }.to_string()),
            readers: self
                .cfg
                .readers
                .iter()
                .map(|r| {
                    let health = crate::door::hw::health::get(&r.name);
                    let state = match (&r.backend, &health) {
                        (ReaderBackend::Sim, _) => "up",
                        (_, Some(h)) if h.up => "up",
                        (_, Some(_)) => "down",
                        (_, None) => "unknown",
                    };
                    ReaderStatus {
                        name: r.name.clone(),
                        role: r.role,
                        backend: r.backend.name().to_string(),
                        state: state.to_string(),
                        since: health.as_ref().map(|h| h.since),
                        detail: health.map(|h| h.detail),
                    }
                })
                .collect(),
            bench: self.cfg.bench,
        }
    }
}

/// A control-socket client for logs and events: `uid 1000 (ani)`.
fn describe_peer(peer: Option<Peer>) -> String {
    match peer {
        None => "an unknown client".into(),
        Some(p) => match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(p.uid)) {
            Ok(Some(user)) => format!("uid {} ({})", p.uid, bounded(&user.name, 64)),
            _ => format!("uid {}", p.uid),
        },
    }
}

/// Whether `peer` belongs to `group`: its primary group, or a supplementary one from the user
/// database (`getgrouplist`; the socket's peer credentials carry only uid and gid).
fn peer_in_group(peer: Peer, group: &str) -> bool {
    let Ok(Some(group)) = nix::unistd::Group::from_name(group) else {
        tracing::warn!(
            group,
            "[control] capture_group names no group on this system"
        );
        return false;
    };
    if peer.gid == group.gid.as_raw() {
        return true;
    }
    let Ok(Some(user)) = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(peer.uid)) else {
        return false;
    };
    let Ok(name) = std::ffi::CString::new(user.name) else {
        return false;
    };
    nix::unistd::getgrouplist(&name, user.gid).is_ok_and(|groups| groups.contains(&group.gid))
}
