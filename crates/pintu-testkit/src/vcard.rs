//! PC/SC for real without a reader: pcscd with the vsmartcard-vpcd driver, and a virtual
//! contactless card (the Rust twin of `shared/tools/vpcd-card.py`). Used by `tests/pcsc.rs`,
//! `tests/faults.rs` and `benches/tap_pcsc.rs`.
//!
//! vpcd creates the readers "Virtual PCD 00 00" and "00 01" and waits on TCP 127.0.0.1:35963
//! (reader 00 00) for a card. A card is a TCP client; each message is a 2-byte big-endian length
//! and a payload. A 1-byte payload is a control (0 power off, 1 power on, 2 reset, 4 send the
//! ATR); anything longer is an APDU, answered with a length-prefixed response. Connecting is
//! "card placed", closing is "card removed".
//!
//! Only one card fits on reader 00 00 and test threads run in parallel, so every user of the
//! virtual reader first takes [`exclusive`] (a process mutex plus a file lock, so two test runs
//! on one machine do not mix either).

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

/// vpcd's port for reader 00 00.
pub const VPCD_PORT: u16 = 35963;
/// The reader vpcd's port [`VPCD_PORT`] feeds.
pub const READER: &str = "Virtual PCD 00 00";
/// Where the tests expect pcscd (Debian's package).
pub const PCSCD: &str = "/usr/sbin/pcscd";
/// A contactless card's ATR (PC/SC part 3), as the reference card sends.
const ATR: [u8; 20] = [
    0x3B, 0x8F, 0x80, 0x01, 0x80, 0x4F, 0x0C, 0xA0, 0x00, 0x00, 0x03, 0x06, 0x03, 0x00, 0x01, 0x00,
    0x00, 0x00, 0x00, 0x6A,
];

/// A card lying on reader 00 00; dropping it (or [`VirtualCard::remove`]) lifts it.
pub struct VirtualCard {
    stream: TcpStream,
    thread: Option<JoinHandle<()>>,
}

impl VirtualCard {
    /// Places a card whose UID is `uid` (hex) on the reader. Panics when vpcd is not listening.
    pub fn place(uid: &str) -> VirtualCard {
        let uid = hex::decode(uid).expect("hex UID");
        let deadline = Instant::now() + Duration::from_secs(5);
        let stream = loop {
            match TcpStream::connect(("127.0.0.1", VPCD_PORT)) {
                Ok(s) => break s,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => {
                    panic!("cannot reach vpcd on 127.0.0.1:{VPCD_PORT}: {e} (is pcscd running?)")
                }
            }
        };
        stream.set_nodelay(true).expect("nodelay");
        let mut conn = stream.try_clone().expect("clone stream");
        let thread = std::thread::spawn(move || {
            let _ = serve(&mut conn, &uid);
        });
        VirtualCard {
            stream,
            thread: Some(thread),
        }
    }

    /// Lifts the card off the reader.
    pub fn remove(self) {}
}

impl Drop for VirtualCard {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers vpcd until it closes the connection (or the card is lifted).
fn serve(conn: &mut TcpStream, uid: &[u8]) -> std::io::Result<()> {
    loop {
        let mut len = [0u8; 2];
        conn.read_exact(&mut len)?;
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
        conn.read_exact(&mut msg)?;
        let answer: Option<Vec<u8>> = match msg.as_slice() {
            [4] => Some(ATR.to_vec()),
            [_] => None, // power off / on / reset: nothing to answer
            [0xFF, 0xCA, ..] => Some([uid, &[0x90, 0x00]].concat()),
            _ => Some(vec![0x6D, 0x00]), // INS not supported
        };
        if let Some(a) = answer {
            let mut out = (a.len() as u16).to_be_bytes().to_vec();
            out.extend(a);
            conn.write_all(&out)?;
        }
    }
}

/// Exclusive use of the virtual reader for the caller's lifetime.
pub struct Exclusive {
    _file: Flock<File>,
    _guard: MutexGuard<'static, ()>,
}

/// Waits for exclusive use of the virtual reader (in this process and across processes).
pub fn exclusive() -> Exclusive {
    static LOCK: Mutex<()> = Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let file = File::create(std::env::temp_dir().join("pintu-vpcd.lock")).expect("lock file");
    let file = Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| e)
        .expect("flock");
    Exclusive {
        _file: file,
        _guard: guard,
    }
}

/// The pcscd this process started, if any (so it can be reaped when stopped).
static OURS: Mutex<Option<Child>> = Mutex::new(None);

/// Process ids of running pcscd daemons (zombies excluded).
pub fn pcscd_pids() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains("(pcscd) ") && !s.contains(") Z "))
                .unwrap_or(false)
        })
        .collect()
}

/// Starts `pcscd -f` (quitting 60 s after its last client leaves) unless one runs, then waits
/// until [`READER`] is listed.
pub fn ensure_pcscd() {
    if pcscd_pids().is_empty() {
        let child = Command::new(PCSCD)
            .args(["--foreground", "--auto-exit"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {PCSCD}: {e} (apt-get install pcscd vsmartcard-vpcd)")
            });
        *OURS.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
    }
    wait_for_reader(Duration::from_secs(10));
}

/// Stops every running pcscd (SIGTERM, then SIGKILL) and waits until they are gone.
pub fn stop_pcscd() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    for pid in pcscd_pids() {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !pcscd_pids().is_empty() {
        if Instant::now() > deadline {
            for pid in pcscd_pids() {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Some(mut child) = OURS.lock().unwrap_or_else(|e| e.into_inner()).take() {
        let _ = child.wait();
    }
}

/// Waits until pcscd lists [`READER`].
pub fn wait_for_reader(timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match pcsc::Context::establish(pcsc::Scope::System)
            .and_then(|c| c.list_readers_owned())
        {
            Ok(names) if names.iter().any(|n| n.to_string_lossy() == READER) => return,
            Ok(names) => format!("readers: {names:?}"),
            Err(e) => e.to_string(),
        };
        assert!(
            Instant::now() < deadline,
            "pcscd did not list {READER:?} within {timeout:?} ({last}); is vsmartcard-vpcd installed?"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
