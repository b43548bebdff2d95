//! The runtime without a process: a door task on the simulated lock and a temp store, driven
//! through its handle as the control server and the MQTT link drive it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use ed25519_dalek::SigningKey;
use jiff::{SignedDuration, Timestamp};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::core::card::{CardKey, Uid};
use crate::core::command::{Action, CommandPayload, VerifiedCommand, COMMAND_PAYLOAD_FORMAT};
use crate::core::event::{Event, EventKind};
use crate::core::list::{self, Entry, Payload, Rejection, Role};
use crate::door::clock::SystemClock;
use crate::door::config::Config;
use crate::door::control::{Reply, Request};
use crate::door::hw::sim::{LockRecord, SimLock};
use crate::door::hw::{DoorInput, LockState};
use crate::door::runtime::handle::DaemonHandle;
use crate::door::runtime::intake::Intake;
use crate::door::runtime::task::{assemble, DoorParts};
use crate::door::store::{Store, StoreOptions};
use crate::util::files::FileId;

const STAFF: &str = "04A1B2C3D4E5F6";
const ESCORT: &str = "04A1B2C3D4E5F7";

/// A running door task and its handle.
struct Door {
    dir: tempfile::TempDir,
    key: SigningKey,
    handle: Arc<DaemonHandle>,
    task: JoinHandle<()>,
    shutdown: CancellationToken,
    lock: LockRecord,
}

fn config(dir: &Path, key: &SigningKey) -> Config {
    std::fs::write(dir.join("card.key"), CardKey::from_bytes([7; 32]).to_hex()).unwrap();
    let text = format!(
        r#"site = "site-a"
state_dir = "state"

[door]
id = "door-1"
unlock_for = "1s"

[trust]
threshold = 1
card_key_file = "card.key"

[[trust.keys]]
id = "k1"
public_key = "{}"

[[reader]]
name = "entry"
role = "entry"
backend = "sim"

[control]
socket = "control.sock"

[store]
cache_size = "4MiB"
"#,
        base64::engine::general_purpose::STANDARD.encode(key.verifying_key().to_bytes())
    );
    let path = dir.join("pintu.toml");
    Config::parse(&path, &text).unwrap()
}

/// Starts a door in a new temp dir; `setup` runs on its store first.
async fn door_with(setup: impl FnOnce(&Store)) -> Door {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::from_bytes(&[11; 32]);
    let cfg = Arc::new(config(dir.path(), &key));
    let (store, _) = Store::open(&StoreOptions::for_config(&cfg), &cfg.trust).unwrap();
    setup(&store);
    let sim = SimLock::new();
    let lock = sim.record();
    let shutdown = CancellationToken::new();
    let (handle, task) = assemble(DoorParts {
        cfg,
        store: Arc::new(store),
        clock: Arc::new(SystemClock),
        lock: Box::new(sim),
        lock_record: Some(lock.clone()),
        store_failed: CancellationToken::new(),
        lock_failed: CancellationToken::new(),
        ntp: || None,
    })
    .unwrap();
    let task = tokio::spawn(task.run(shutdown.clone()));
    Door {
        dir,
        key,
        handle,
        task,
        shutdown,
        lock,
    }
}

async fn door() -> Door {
    door_with(|_| {}).await
}

impl Door {
    fn entry(&self, uid: &str, holder: &str, role: Role) -> Entry {
        let uid: Uid = uid.parse().unwrap();
        Entry {
            card: CardKey::from_bytes([7; 32]).hash(&uid),
            holder: holder.into(),
            name: format!("Holder {holder}"),
            role,
            valid_from: "2020-01-01T00:00:00Z".parse().unwrap(),
            valid_until: "2099-01-01T00:00:00Z".parse().unwrap(),
            doors: None,
            schedule: vec![],
            request_ref: format!("REQ-{holder}"),
            approver: "kabid".into(),
        }
    }

    /// A signed list (version `version`) with a staff card and an escort card.
    fn list(&self, version: u64) -> Vec<u8> {
        let now = Timestamp::now();
        let payload = Payload {
            format: list::PAYLOAD_FORMAT,
            site: "site-a".into(),
            doors: vec!["door-1".into()],
            version,
            issued_at: now - SignedDuration::from_hours(1),
            expires_at: now + SignedDuration::from_hours(24),
            time_zone: "Asia/Jakarta".into(),
            entries: vec![
                self.entry(STAFF, "budi", Role::Staff),
                self.entry(ESCORT, "siti", Role::Escort),
            ],
        };
        list::sign(
            &serde_json::to_vec(&payload).unwrap(),
            &[("k1".to_string(), self.key.clone())],
        )
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    async fn with_list(self) -> Self {
        let bytes = self.list(1);
        let h = self.handle.clone();
        let applied = tokio::task::spawn_blocking(move || h.apply_list(&bytes, "test"))
            .await
            .unwrap();
        assert!(matches!(applied, Ok(Ok(_))), "{applied:?}");
        self
    }

    fn events(&self) -> Vec<Event> {
        let mut events = self.handle.store().recent_events(100).unwrap();
        events.sort_by_key(|e| e.seq);
        events
    }

    fn event(&self, seq: Option<u64>) -> Event {
        let seq = seq.expect("a seq");
        self.events().into_iter().find(|e| e.seq == seq).unwrap()
    }

    fn kinds_after(&self, seq: u64) -> Vec<EventKind> {
        self.events()
            .into_iter()
            .filter(|e| e.seq > seq)
            .map(|e| e.kind)
            .collect()
    }

    fn last_seq(&self) -> u64 {
        self.events().last().map_or(0, |e| e.seq)
    }

    async fn command(&self, command: Action) {
        let now = Timestamp::now();
        let cmd = VerifiedCommand {
            payload: CommandPayload {
                format: COMMAND_PAYLOAD_FORMAT,
                site: "site-a".into(),
                doors: vec!["door-1".into()],
                id: Uuid::new_v4(),
                issued_at: now,
                expires_at: now + SignedDuration::from_mins(5),
                operator: "ani".into(),
                command,
            },
            signed_by: vec!["k1".into()],
        };
        self.handle.execute_command(cmd).await;
    }

    async fn stop(mut self) -> Self {
        self.shutdown.cancel();
        (&mut self.task).await.unwrap();
        self
    }
}

#[tokio::test]
async fn a_tap_is_acknowledged_with_the_seq_of_its_own_event_and_releases_the_lock() {
    let door = door().await.with_list().await;
    let before = door.last_seq();
    let outcome = door.handle.tap(STAFF, None).await.unwrap();
    assert_eq!(outcome.decision, "grant");
    assert_eq!(outcome.holder.as_deref(), Some("budi"));
    let own = door.event(outcome.seq);
    assert_eq!(own.kind, EventKind::AccessGranted);
    assert_eq!(own.holder.as_deref(), Some("budi"));
    // Granted, then released: the relay's event comes after the tap's.
    assert_eq!(
        door.kinds_after(before),
        [EventKind::AccessGranted, EventKind::LockReleased]
    );
    assert_eq!(door.handle.status().lock, LockState::Released);
    assert_eq!(door.lock.state(), LockState::Released);
    let unknown = door.handle.tap("04000000000001", None).await.unwrap();
    assert_eq!(
        (unknown.decision.as_str(), unknown.reason.as_deref()),
        ("deny", Some("unknown_card"))
    );
    assert_eq!(door.event(unknown.seq).kind, EventKind::AccessDenied);
}

#[tokio::test]
async fn a_lockdown_is_decided_by_the_door_task_and_kept_in_the_store() {
    let door = door().await.with_list().await;
    let before = door.last_seq();
    door.command(Action::Lockdown {
        allow_role: Role::Escort,
    })
    .await;
    assert_eq!(
        door.kinds_after(before),
        [EventKind::CommandAccepted, EventKind::LockdownStarted]
    );
    assert_eq!(door.handle.status().lockdown.as_deref(), Some("escort"));
    assert_eq!(
        door.handle.store().lockdown().unwrap().as_deref(),
        Some("escort")
    );
    let staff = door.handle.tap(STAFF, None).await.unwrap();
    assert_eq!(
        (staff.decision.as_str(), staff.reason.as_deref()),
        ("deny", Some("lockdown"))
    );
    let own = door.event(staff.seq);
    assert_eq!(
        (own.kind, own.reason.as_deref(), own.holder.as_deref()),
        (EventKind::AccessDenied, Some("lockdown"), Some("budi"))
    );
    assert_eq!(
        door.handle.tap(ESCORT, None).await.unwrap().decision,
        "grant"
    );

    let before = door.last_seq();
    door.command(Action::ReleaseLockdown {}).await;
    assert_eq!(
        door.kinds_after(before),
        [EventKind::CommandAccepted, EventKind::LockdownEnded]
    );
    assert_eq!(door.handle.status().lockdown, None);
    assert_eq!(door.handle.store().lockdown().unwrap(), None);
    assert_eq!(
        door.handle.tap(STAFF, None).await.unwrap().decision,
        "grant"
    );
    // Releasing again: accepted, but no lockdown.ended for a lockdown that was not there.
    let before = door.last_seq();
    door.command(Action::ReleaseLockdown {}).await;
    assert_eq!(door.kinds_after(before), [EventKind::CommandAccepted]);
    let accepted = door.events().pop().unwrap();
    assert!(accepted
        .detail
        .unwrap_or_default()
        .starts_with("release lockdown: no lockdown was in force"));
}

#[tokio::test]
async fn a_lockdown_in_the_store_holds_from_the_start() {
    let door = door_with(|store| store.set_lockdown(Some("escort")).unwrap())
        .await
        .with_list()
        .await;
    assert_eq!(door.handle.status().lockdown.as_deref(), Some("escort"));
    let staff = door.handle.tap(STAFF, None).await.unwrap();
    assert_eq!(staff.reason.as_deref(), Some("lockdown"));
}

#[tokio::test]
async fn contact_and_presence_are_what_the_door_task_published() {
    let door = door().await.with_list().await;
    assert_eq!(door.handle.status().contact, None);
    let reply = door
        .handle
        .handle(
            Request::Input {
                input: DoorInput::DoorOpened,
            },
            None,
        )
        .await;
    assert!(matches!(reply, Reply::Input { .. }), "{reply:?}");
    assert_eq!(door.handle.status().contact.as_deref(), Some("open"));
    door.handle
        .handle(
            Request::Input {
                input: DoorInput::DoorClosed,
            },
            None,
        )
        .await;
    assert_eq!(door.handle.status().contact.as_deref(), Some("closed"));

    door.handle.tap(STAFF, None).await.unwrap();
    let Reply::Who { occupants } = door.handle.handle(Request::Who, None).await else {
        panic!("not a who reply");
    };
    let inside: Vec<_> = occupants.iter().map(|o| o.holder.as_str()).collect();
    assert_eq!(inside, ["budi"]);
    let status = door.handle.status();
    assert_eq!((status.occupancy, status.visitors_inside), (1, 0));
    assert!(status.clock.is_some(), "the task published its clock");
}

#[tokio::test]
async fn list_intake_outcomes() {
    let door = door().await;
    let intake = door.handle.intake().clone();
    let good = door.write("v1.list", &door.list(1));
    let garbage = door.write("garbage.list", b"not a signed list at all");
    let link = door.dir.path().join("link.list");
    std::os::unix::fs::symlink(&good, &link).unwrap();
    let other = FileId::of(&std::fs::metadata(&garbage).unwrap());
    // As the inbox scan saw it (lstat): the link itself, which is not a regular file.
    let link_id = FileId::of(&std::fs::symlink_metadata(&link).unwrap());
    let replay = std::fs::read(&good).unwrap();
    let h = door.handle.clone();
    let (outcomes, at_start, later) = tokio::task::spawn_blocking(move || {
        let outcomes = [
            intake.take_file(&good, Some(other), false).unwrap(),
            intake.take_file(&good, None, false).unwrap(),
            intake.take_file(&garbage, None, false).unwrap(),
            intake.take_file(&link, Some(link_id), false).unwrap(),
        ];
        let at_start = h.apply_list_from(&replay, "start").unwrap();
        let later = h.apply_list(&replay, "again").unwrap();
        (outcomes, at_start, later)
    })
    .await
    .unwrap();
    assert_eq!(
        outcomes,
        [
            Intake::Changed,
            Intake::Applied,
            Intake::Rejected,
            Intake::Rejected
        ]
    );
    assert!(
        matches!(at_start, Err(Rejection::Replay { version: 1 })),
        "{at_start:?}"
    );
    assert!(matches!(later, Err(Rejection::Replay { version: 1 })));
    // The replay at start is logged only; the later one is an alarm.
    let lists: Vec<_> = door
        .events()
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::ListApplied | EventKind::ListRejected))
        .map(|e| (e.kind, e.reason))
        .collect();
    let rejected = |r: &str| (EventKind::ListRejected, Some(r.to_string()));
    assert_eq!(lists[0], (EventKind::ListApplied, None));
    assert_eq!(lists[1].0, EventKind::ListRejected);
    assert_eq!(lists[2], rejected("not_a_file"));
    assert_eq!(lists[3], rejected("replay"));
    assert_eq!(lists.len(), 4);
}

#[tokio::test]
async fn a_capture_takes_the_next_tap_instead_of_deciding_it() {
    let door = door().await.with_list().await;
    let h = door.handle.clone();
    let capture = tokio::spawn(async move { h.capture(Duration::from_secs(10), None).await });
    // The capture is armed once the door task has its message; a tap queued after it is taken.
    let mut outcome = door.handle.tap(STAFF, None).await.unwrap();
    for _ in 0..50 {
        if outcome.decision == "captured" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        outcome = door.handle.tap(STAFF, None).await.unwrap();
    }
    assert_eq!(outcome.decision, "captured");
    let captured = capture.await.unwrap().unwrap();
    assert_eq!(captured.uid, STAFF);
    assert_eq!(captured.holder.as_deref(), Some("budi"));
    assert_eq!(door.event(captured.seq).kind, EventKind::CardCaptured);
    let next = door.handle.tap(STAFF, None).await.unwrap();
    assert_eq!(next.decision, "grant", "decided again after the capture");
}

#[tokio::test]
async fn the_door_task_stops_with_the_lock_secured() {
    let door = door().await.with_list().await;
    door.handle.tap(STAFF, None).await.unwrap();
    assert_eq!(door.lock.state(), LockState::Released);
    let door = door.stop().await;
    assert_eq!(door.lock.state(), LockState::Secured);
    assert_eq!(door.handle.status().lock, LockState::Secured);
    let last = door.events().pop().unwrap();
    assert_eq!(
        (last.kind, last.reason.as_deref()),
        (EventKind::DaemonStopping, Some("secured"))
    );
    // The door task is gone: requests say so instead of hanging.
    assert!(door.handle.tap(STAFF, None).await.is_err());
}

mod presence;
