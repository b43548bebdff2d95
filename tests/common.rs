//! Shared fixtures: a site with keys in a temp dir, list building and signing, a running pintud,
//! and pintuctl invocations.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use jiff::Timestamp;
use pintu::core::card::{CardKey, Uid};
use pintu::core::event::Event;
use pintu::core::list::{self, Entry, Payload, Role, TrustPolicy, TrustedKey};
use pintu::door::control::{self, Reply, Request, Status, TapOutcome};

pub const SITE: &str = "site-a";
pub const DOOR: &str = "door-1";

/// A site: temp dir, two signing keys (`k1`, `k2`), a card key, and a state dir.
pub struct Site {
    pub dir: tempfile::TempDir,
    pub keys: Vec<(String, SigningKey)>,
    pub card_key: CardKey,
}

impl Site {
    pub fn new() -> Site {
        let dir = tempfile::tempdir().expect("temp dir");
        let keys = vec![
            ("k1".to_string(), SigningKey::from_bytes(&[11; 32])),
            ("k2".to_string(), SigningKey::from_bytes(&[22; 32])),
        ];
        let card_key = CardKey::from_bytes([7; 32]);
        std::fs::write(dir.path().join("card.key"), card_key.to_hex()).expect("write card key");
        Site {
            dir,
            keys,
            card_key,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn state_dir(&self) -> PathBuf {
        self.path("state")
    }

    pub fn inbox(&self) -> PathBuf {
        self.state_dir().join("inbox")
    }

    pub fn socket(&self) -> PathBuf {
        self.path("control.sock")
    }

    /// A door config trusting `k1` (threshold 1), fast inbox polling. `extra` is appended.
    pub fn config_text(&self, extra: &str) -> String {
        format!(
            r#"site = "{SITE}"
state_dir = "state"

[door]
id = "{DOOR}"
unlock_for = "1s"

[trust]
threshold = 1
card_key_file = "card.key"

[[trust.keys]]
id = "k1"
public_key = "{}"

[list]
poll_interval = "100ms"
max_size = "1MiB"

[[reader]]
name = "entry"
role = "entry"
backend = "sim"

[control]
socket = "control.sock"
mode = "0600"

[store]
cache_size = "4MiB"

[log]
level = "debug"
{extra}"#,
            B64.encode(self.keys[0].1.verifying_key().to_bytes())
        )
    }

    pub fn write_config(&self, extra: &str) -> PathBuf {
        let path = self.path("pintu.toml");
        std::fs::write(&path, self.config_text(extra)).expect("write config");
        path
    }

    /// Store options for this site's state dir (a small cache: test lists are small).
    pub fn store_options(&self) -> pintu::door::store::StoreOptions {
        pintu::door::store::StoreOptions {
            state_dir: self.state_dir(),
            cache_size: 4 << 20,
            cache_size_max: 4 << 20,
            site: SITE.into(),
            door: DOOR.into(),
        }
    }

    /// The trust policy matching [`Site::config_text`].
    pub fn policy(&self) -> TrustPolicy {
        TrustPolicy {
            keys: vec![TrustedKey {
                id: "k1".into(),
                key: self.keys[0].1.verifying_key(),
            }],
            threshold: 1,
            site: Some(SITE.into()),
            door: Some(DOOR.into()),
            max_bytes: 1 << 20,
        }
    }

    /// An entry for `uid`, valid from `from` until `until`.
    pub fn entry(&self, uid: &str, holder: &str, from: &str, until: &str) -> Entry {
        let uid: Uid = uid.parse().expect("uid");
        Entry {
            card: self.card_key.hash(&uid),
            holder: holder.into(),
            name: format!("Holder {holder}"),
            role: Role::Staff,
            valid_from: from.parse().expect("from"),
            valid_until: until.parse().expect("until"),
            doors: None,
            schedule: vec![],
            request_ref: format!("REQ-{holder}"),
            approver: "kabid".into(),
        }
    }

    /// A list payload for this site and door, issued an hour ago, expiring in 30 days.
    pub fn payload(&self, version: u64, entries: Vec<Entry>) -> Payload {
        let now = Timestamp::now();
        Payload {
            format: list::PAYLOAD_FORMAT,
            site: SITE.into(),
            doors: vec![DOOR.into()],
            version,
            issued_at: now - jiff::SignedDuration::from_hours(1),
            expires_at: now + jiff::SignedDuration::from_hours(24 * 30),
            time_zone: "Asia/Jakarta".into(),
            entries,
        }
    }

    /// Signs a payload with `k1`.
    pub fn sign(&self, payload: &Payload) -> Vec<u8> {
        sign_with(payload, &self.keys[..1])
    }
}

pub fn sign_with(payload: &Payload, keys: &[(String, SigningKey)]) -> Vec<u8> {
    list::sign(&serde_json::to_vec(payload).expect("payload json"), keys)
}

/// A running pintud, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Pintud {
    pub child: Child,
    pub socket: PathBuf,
    pub log: PathBuf,
}

impl Pintud {
    /// Starts pintud with `config` and waits until its control socket answers.
    pub fn start(config: &Path, socket: &Path, extra_args: &[&str]) -> Pintud {
        Pintud::start_with_env(config, socket, extra_args, &[])
    }

    /// [`Pintud::start`] with extra environment variables (e.g. libfaketime's).
    pub fn start_with_env(
        config: &Path,
        socket: &Path,
        extra_args: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Pintud {
        let log = config.with_extension("log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_pintud"))
            .arg("--config")
            .arg(config)
            .args(extra_args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn pintud");
        let mut d = Pintud {
            child,
            socket: socket.to_path_buf(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = d.child.try_wait() {
                panic!("pintud exited early with {status}; log:\n{}", d.log_text());
            }
            if d.socket.exists()
                && control::request(&d.socket, &Request::Status, Duration::from_secs(2)).is_ok()
            {
                return d;
            }
            assert!(
                Instant::now() < deadline,
                "pintud did not become ready; log:\n{}",
                d.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn request(&self, req: &Request) -> Reply {
        control::request(&self.socket, req, Duration::from_secs(10)).expect("control request")
    }

    pub fn tap(&self, uid: &str) -> TapOutcome {
        match self.request(&Request::Tap {
            uid: uid.into(),
            reader: None,
        }) {
            Reply::Tap(t) => t,
            other => panic!("unexpected reply to tap: {other:?}"),
        }
    }

    pub fn status(&self) -> Status {
        match self.request(&Request::Status) {
            Reply::Status(s) => *s,
            other => panic!("unexpected reply to status: {other:?}"),
        }
    }

    pub fn events(&self) -> Vec<Event> {
        match self.request(&Request::Events { limit: Some(1000) }) {
            Reply::Events { events } => events,
            other => panic!("unexpected reply to events: {other:?}"),
        }
    }

    /// Waits until `pred` holds on the status, or panics with the log.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&Status) -> bool) -> Status {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let s = self.status();
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGTERM and waits for exit; returns the exit status code.
    pub fn stop(mut self) -> Option<i32> {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "pintud did not stop on SIGTERM; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Pintud {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            for _ in 0..100 {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs pintuctl with `args`.
pub fn pintuctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pintuctl"))
        .args(args)
        .output()
        .expect("run pintuctl")
}

/// Runs pintud with `args` (for `--check-config` and other one-shot uses).
pub fn pintud(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pintud"))
        .args(args)
        .output()
        .expect("run pintud")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A tmpfs of a given size (root only: `mount` fails otherwise), unmounted (lazily) on drop. For
/// disk-full tests: fill it, and writes under it fail with `ENOSPC`.
pub struct TinyDisk {
    path: PathBuf,
    // The mount point, when the disk made its own (removed after the unmount).
    _dir: Option<tempfile::TempDir>,
}

impl TinyDisk {
    /// Mounts a tmpfs of `size` (`mount -o size=`, e.g. `"8m"`) on a new temp dir; `None` when
    /// not root.
    pub fn mount(size: &str) -> Option<TinyDisk> {
        if !nix::unistd::geteuid().is_root() {
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let mut disk = TinyDisk::mount_at(dir.path(), size)?;
        disk._dir = Some(dir);
        Some(disk)
    }

    /// Mounts a tmpfs of `size` on `path`, an existing directory; `None` when not root.
    pub fn mount_at(path: &Path, size: &str) -> Option<TinyDisk> {
        if !nix::unistd::geteuid().is_root() {
            return None;
        }
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .expect("run mount");
        assert!(status.success(), "mounting a tmpfs as root failed");
        Some(TinyDisk {
            path: path.to_path_buf(),
            _dir: None,
        })
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fills the disk: writes zeros until the file system says it is full. Returns the filler
    /// file (remove it to free the space).
    pub fn fill(&self) -> PathBuf {
        use std::io::Write as _;
        let path = self.path.join("filler");
        let mut f = std::fs::File::create(&path).expect("filler");
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        path
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// A tap's decision and deny reason, as compared in the tables of tests.
pub fn decision(door: &Pintud, uid: &str) -> (String, Option<String>) {
    let t = door.tap(uid);
    (t.decision, t.reason)
}

/// The expected [`decision`] of a granted tap.
pub fn grant() -> (String, Option<String>) {
    ("grant".into(), None)
}

/// The expected [`decision`] of a tap denied for `reason`.
pub fn deny(reason: &str) -> (String, Option<String>) {
    ("deny".into(), Some(reason.into()))
}
