//! A plain Mosquitto on a free loopback port (no persistence, large queues), for benchmarks and
//! tests that need a broker and nothing more (the TLS and ACL brokers of the MQTT tests are in
//! `tests/`).

use std::path::Path;
use std::time::{Duration, Instant};

/// A Mosquitto on a free loopback port: no persistence, large queues.
/// Stopped (SIGCONT, then SIGTERM) when dropped.
pub struct Mosquitto {
    child: Option<std::process::Child>,
    pub port: u16,
}

impl Mosquitto {
    /// Writes its config in `dir`, starts it and waits until it accepts connections.
    pub fn start(dir: &Path) -> Mosquitto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .expect("addr")
            .port();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 1000000\nmax_queued_bytes 0\n"
            ),
        )
        .expect("mosquitto.conf");
        let program = if Path::new("/usr/sbin/mosquitto").exists() {
            "/usr/sbin/mosquitto"
        } else {
            "mosquitto"
        };
        let child = std::process::Command::new(program)
            .arg("-c")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start mosquitto (apt-get install mosquitto)");
        let broker = Mosquitto {
            child: Some(child),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not start in 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        broker
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<nix::unistd::Pid> {
        self.child
            .as_ref()
            .map(|c| nix::unistd::Pid::from_raw(c.id() as i32))
    }

    /// Sends it a signal (SIGSTOP stalls it with its connections open).
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        if let Some(pid) = self.pid() {
            let _ = nix::sys::signal::kill(pid, signal);
        }
    }

    /// Stops it (SIGTERM) and waits.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let _ = child.wait();
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}
