//! The door's local control socket: a Unix socket (owner and group only) speaking one JSON object
//! per line each way. `pintuctl` uses it for status, recent events, enrollment capture, and — with
//! simulated readers — to tap cards and press buttons. Protocol reference: `docs/control-socket.md`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::codec::{Framed, LinesCodec};
use tokio_util::sync::CancellationToken;

use crate::core::event::Event;
use crate::core::procedure::Direction;
use crate::door::hw::sim::LockChange;
use crate::door::hw::{DoorInput, LockState};

/// A control-socket client's credentials (`SO_PEERCRED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

/// Longest request line accepted.
pub const MAX_LINE: usize = 64 * 1024;

/// A request to the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Present a card to a simulated reader.
    Tap {
        /// Card UID in hex.
        uid: String,
        /// Reader name; default: the first entry reader.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reader: Option<String>,
    },
    /// Change a simulated door input.
    Input {
        /// The input change.
        input: DoorInput,
    },
    /// Door status.
    Status,
    /// Who is inside (presence).
    Who,
    /// Recent events from the outbox.
    Events {
        /// How many (default 20, at most 1000).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
    },
    /// Enrollment: capture the next tap instead of deciding it, and return its UID.
    Capture {
        /// How long to wait for a tap, in milliseconds (default [`CAPTURE_DEFAULT`], at most
        /// [`CAPTURE_MAX`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
        /// Only a tap on this reader; default any reader.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reader: Option<String>,
    },
}

/// How long a capture waits by default.
pub const CAPTURE_DEFAULT: Duration = Duration::from_secs(30);
/// The longest capture accepted.
pub const CAPTURE_MAX: Duration = Duration::from_secs(600);

impl Request {
    /// The command name, safe to log.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Tap { .. } => "tap",
            Request::Input { .. } => "input",
            Request::Status => "status",
            Request::Who => "who",
            Request::Events { .. } => "events",
            Request::Capture { .. } => "capture",
        }
    }
}

/// The daemon's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// A tap was decided (and its event is durable).
    Tap(TapOutcome),
    /// An input change was taken.
    Input {
        /// The input.
        input: DoorInput,
    },
    /// Door status.
    Status(Box<Status>),
    /// Who is inside, in order of entry.
    Who {
        /// The people inside.
        occupants: Vec<Occupant>,
    },
    /// Recent events, oldest first.
    Events {
        /// The events.
        events: Vec<Event>,
    },
    /// A tap was captured for enrollment (and its event is durable).
    Captured(Captured),
    /// The request failed.
    Error {
        /// What went wrong.
        message: String,
    },
}

/// The result of a tap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TapOutcome {
    /// Reader name.
    pub reader: String,
    /// Masked card id.
    pub card: String,
    /// Holder id, when the card is in the list.
    pub holder: Option<String>,
    /// `grant`, `deny`, `await_escort` (a visitor waiting for an escort's tap) or `captured`.
    pub decision: String,
    /// Deny reason.
    pub reason: Option<String>,
    /// Microseconds from the read to the relay command.
    pub micros: u64,
    /// Sequence number of the tap's event.
    pub seq: Option<u64>,
}

/// A tap captured for enrollment. The only reply that carries a raw UID: capturing is an
/// explicit operator action on a socket limited to the door's operators, and the UID is what
/// enrollment needs. It is never logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Captured {
    /// Reader name.
    pub reader: String,
    /// The card's UID, upper-case hex.
    pub uid: String,
    /// Masked card id, as events show it.
    pub card: String,
    /// Holder id, when the card is already in the door's list.
    pub holder: Option<String>,
    /// Sequence number of the `card.captured` event.
    pub seq: Option<u64>,
}

/// The active list, as status reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveListSummary {
    /// Version.
    pub version: u64,
    /// Signing time.
    pub issued_at: Timestamp,
    /// Expiry.
    pub expires_at: Timestamp,
    /// Whether it has expired (taps are then denied).
    pub expired: bool,
    /// Entries.
    pub entries: usize,
    /// Keys that signed it.
    pub signed_by: Vec<String>,
    /// SHA-256 of its payload bytes, hex: which list exactly (two lists never share a version).
    #[serde(default)]
    pub sha256: String,
}

/// A configured reader, as status reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReaderStatus {
    /// Name.
    pub name: String,
    /// Entry or exit.
    pub role: Direction,
    /// Backend name.
    pub backend: String,
    /// `up` (the reader can deliver taps: simulated, or its device open / present in pcscd),
    /// `down`, or `unknown` (not reported yet).
    #[serde(default = "unknown_state")]
    pub state: String,
    /// Since when, and why, once the reader has reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    /// The device or the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

fn unknown_state() -> String {
    "unknown".into()
}

/// Door status.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// Site id.
    pub site: String,
    /// Door id.
    pub door: String,
    /// pintud version.
    pub version: String,
    /// Start time.
    pub started_at: Timestamp,
    /// The door's clock now.
    pub now: Timestamp,
    /// Active list, if any.
    pub list: Option<ActiveListSummary>,
    /// The rollback floor: a new list must be above it ([`crate::door::store::Store::highest_version`]).
    pub highest_list_version: u64,
    /// Lock state.
    pub lock: LockState,
    /// Recent lock changes (simulated lock only).
    pub lock_changes: Vec<LockChange>,
    /// Events not yet delivered.
    pub outbox_depth: u64,
    /// Readers.
    pub readers: Vec<ReaderStatus>,
    /// The lockdown in force (the role still admitted), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lockdown: Option<String>,
    /// Door contact, `open` or `closed`, once an input has reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// People inside (presence).
    #[serde(default)]
    pub occupancy: usize,
    /// Visitors inside.
    #[serde(default)]
    pub visitors_inside: usize,
    /// The door's clock: trusted or not, and the trusted-time floor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockInfo>,
    /// A test bench (`[door] bench = true`): a real lock next to simulated readers or inputs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bench: bool,
    /// Events the MQTT link set aside (could not be delivered on their own; kept in the store).
    #[serde(default)]
    pub set_aside: u64,
    /// Why the broker refuses the door's events, while it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_refused: Option<String>,
}

/// The door's clock as the procedure sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockInfo {
    /// Whether the wall clock is at or above the trusted-time floor.
    pub trusted: bool,
    /// The trusted-time floor (newest list `issued_at` or event time seen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor: Option<Timestamp>,
    /// The time decisions use (the floor plus elapsed time while untrusted).
    pub effective: Timestamp,
    /// Kernel NTP state: `synchronized`, `unsynchronized` or `unknown`.
    pub ntp: String,
}

/// Someone inside, for `pintuctl who` (no raw UID; the card masked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Occupant {
    /// Holder id.
    pub holder: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Masked card id.
    pub card: String,
    /// When they entered.
    pub entered_at: Timestamp,
    /// Visit id, for a visitor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visit: Option<String>,
    /// Escort's holder id, for a visitor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escort: Option<String>,
}

/// Control-socket client failures.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// Could not connect.
    #[error("cannot connect to the control socket {path} (is pintud running, and are you in its group?)")]
    Connect {
        /// Socket path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The exchange failed.
    #[error("control socket {path}: {message}")]
    Protocol {
        /// Socket path.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// Sends one request and waits for the reply (blocking; used by `pintuctl`).
pub fn request(socket: &Path, req: &Request, timeout: Duration) -> Result<Reply, ControlError> {
    let proto = |message: String| ControlError::Protocol {
        path: socket.to_path_buf(),
        message,
    };
    let mut stream = std::os::unix::net::UnixStream::connect(socket).map_err(|source| {
        ControlError::Connect {
            path: socket.to_path_buf(),
            source,
        }
    })?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| proto(e.to_string()))?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| proto(e.to_string()))?;
    let mut line = serde_json::to_string(req).map_err(|e| proto(e.to_string()))?;
    line.push('\n');
    stream
        .write_all(line.as_bytes())
        .map_err(|e| proto(format!("send: {e}")))?;
    let mut reply = String::new();
    BufReader::new(stream)
        .read_line(&mut reply)
        .map_err(|e| proto(format!("no reply: {e}")))?;
    if reply.is_empty() {
        return Err(proto(
            "the daemon closed the connection without replying".into(),
        ));
    }
    serde_json::from_str(&reply).map_err(|e| proto(format!("bad reply: {e}")))
}

/// Binds the socket: parent directory created, a stale socket replaced (a live one is an error),
/// mode and group applied before the first connection can arrive.
pub fn bind(path: &Path, mode: u32, group: Option<&str>) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        crate::util::files::create_dir_with_mode(dir, 0o750)?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("{} is in use: is another pintud running?", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let gid = match group {
        None => None,
        Some(name) => Some(
            nix::unistd::Group::from_name(name)
                .map_err(std::io::Error::other)?
                .ok_or_else(|| {
                    std::io::Error::other(format!("control.group: no group named {name:?}"))
                })?
                .gid,
        ),
    };
    // Bind under a restrictive umask so there is no window where the socket is world-accessible.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound?;
    if let Some(gid) = gid {
        // A setgid socket directory of that group (the unit's /run/pintu) already gave it: no
        // chown then, which the unit's SystemCallFilter=~@privileged would refuse.
        use std::os::unix::fs::MetadataExt;
        if std::fs::metadata(path)?.gid() != gid.as_raw() {
            std::os::unix::fs::chown(path, None, Some(gid.as_raw())).map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "control.group: cannot give {} its group: {e} (pintud must be a member, \
                         or the socket's directory setgid to that group: docs/install.md)",
                        path.display()
                    ),
                )
            })?;
        }
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(listener)
}

/// What answers the control socket's requests (the daemon's handle). The server only moves
/// lines; it knows nothing of the door, so the door's runtime depends on this module and not the
/// reverse.
pub trait Responder: Send + Sync + 'static {
    /// Answers one request from `peer` (the client's credentials, if the socket gave them).
    fn respond(
        &self,
        req: Request,
        peer: Option<Peer>,
    ) -> impl std::future::Future<Output = Reply> + Send;
}

/// Serves connections until `shutdown`, each request answered by `handle`.
pub async fn serve<R: Responder>(
    listener: UnixListener,
    handle: Arc<R>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let handle = handle.clone();
                    let shutdown = shutdown.clone();
                    tokio::spawn(async move { serve_connection(stream, handle, shutdown).await });
                }
                Err(e) => {
                    tracing::warn!("control socket accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

async fn serve_connection<R: Responder>(
    stream: UnixStream,
    handle: Arc<R>,
    shutdown: CancellationToken,
) {
    let peer = stream.peer_cred().ok().map(|c| Peer {
        uid: c.uid(),
        gid: c.gid(),
    });
    let mut framed = Framed::new(stream, LinesCodec::new_with_max_length(MAX_LINE));
    loop {
        let line = tokio::select! {
            _ = shutdown.cancelled() => return,
            line = framed.next() => line,
        };
        let reply = match line {
            None => return,
            Some(Err(e)) => Reply::Error {
                message: format!("bad request line: {e}"),
            },
            Some(Ok(line)) => match serde_json::from_str::<Request>(&line) {
                Err(e) => Reply::Error {
                    message: format!("bad request: {e}"),
                },
                Ok(req) => {
                    // Only the command name: a tap request carries a raw UID, which never goes to logs.
                    tracing::debug!(?peer, cmd = req.name(), "control request");
                    if matches!(req, Request::Capture { .. }) {
                        // A capture can wait long: a client that hangs up cancels it (dropping
                        // the wait voids the door's capture), so a later tap is decided.
                        tokio::select! {
                            reply = handle.respond(req, peer) => reply,
                            next = framed.next() => match next {
                                None | Some(Err(_)) => return,
                                Some(Ok(_)) => Reply::Error {
                                    message: "capture cancelled: another request arrived while it waited".into(),
                                },
                            },
                        }
                    } else {
                        handle.respond(req, peer).await
                    }
                }
            },
        };
        let text = match serde_json::to_string(&reply) {
            Ok(t) => t,
            Err(e) => format!("{{\"reply\":\"error\",\"message\":\"cannot encode reply: {e}\"}}"),
        };
        if framed.send(text).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers every request with the request's name (or an error for `who`), and counts peers.
    struct Echo;

    impl Responder for Echo {
        async fn respond(&self, req: Request, peer: Option<Peer>) -> Reply {
            assert!(peer.is_some(), "a Unix socket knows its peer");
            match req {
                Request::Who => Reply::Error {
                    message: "no who here".into(),
                },
                other => Reply::Error {
                    message: format!("echo {}", other.name()),
                },
            }
        }
    }

    #[tokio::test]
    async fn the_server_moves_lines_between_a_client_and_any_responder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let listener = bind(&path, 0o600, None).unwrap();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve(listener, Arc::new(Echo), shutdown.clone()));
        let p = path.clone();
        let (status, who) = tokio::task::spawn_blocking(move || {
            let ask = |req| request(&p, &req, Duration::from_secs(5)).unwrap();
            (ask(Request::Status), ask(Request::Who))
        })
        .await
        .unwrap();
        let message = |reply: Reply| match reply {
            Reply::Error { message } => message,
            other => panic!("{other:?}"),
        };
        assert_eq!(message(status), "echo status");
        assert_eq!(message(who), "no who here");
        // A line that is not a request is answered, not dropped.
        let p = path.clone();
        let raw = tokio::task::spawn_blocking(move || {
            let mut stream = std::os::unix::net::UnixStream::connect(&p).unwrap();
            stream.write_all(b"{\"cmd\":\"dance\"}\n").unwrap();
            let mut line = String::new();
            BufReader::new(stream).read_line(&mut line).unwrap();
            line
        })
        .await
        .unwrap();
        assert!(raw.contains("bad request"), "{raw}");
        shutdown.cancel();
        server.await.unwrap();
    }
}
