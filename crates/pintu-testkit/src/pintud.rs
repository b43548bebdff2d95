//! A running `pintud` (started, asked over its control socket, stopped), and one-shot runs of
//! `pintud` and `pintuctl`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use pintu::core::event::Event;
use pintu::door::control::{self, Reply, Request, Status, TapOutcome};

use crate::bin;

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
        let child = Command::new(bin("pintud"))
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

    /// Waits (up to 15 s) until `pred` holds on the status, or panics with the log.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&Status) -> bool) -> Status {
        self.wait_for_within(what, Duration::from_secs(15), pred)
    }

    /// [`Pintud::wait_for`] with its own limit, for work that is slow in a debug build on a busy
    /// machine (a 100k-entry list): a limit that only catches a hang, never a timing target.
    pub fn wait_for_within(
        &self,
        what: &str,
        limit: Duration,
        pred: impl Fn(&Status) -> bool,
    ) -> Status {
        let deadline = Instant::now() + limit;
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
    Command::new(bin("pintuctl"))
        .args(args)
        .output()
        .expect("run pintuctl")
}

/// Runs pintud with `args` (for `--check-config` and other one-shot uses).
pub fn pintud(args: &[&str]) -> Output {
    Command::new(bin("pintud"))
        .args(args)
        .output()
        .expect("run pintud")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Starts pintud on `config`, offering `list`; a thread forwards each stderr line with the time
/// it arrived (the timestamp the end-to-end benches measure to).
pub fn spawn_pintud_with_log_lines(
    config: &Path,
    list: &Path,
) -> (
    std::process::Child,
    std::sync::mpsc::Receiver<(Instant, String)>,
) {
    use std::io::BufRead as _;
    let mut child = Command::new(bin("pintud"))
        .arg("--config")
        .arg(config)
        .arg("--list")
        .arg(list)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn pintud");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if tx.send((Instant::now(), line)).is_err() {
                return;
            }
        }
    });
    (child, rx)
}
