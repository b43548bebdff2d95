//! PC/SC tap latency through the real stack: a virtual card placed on pcscd's vpcd reader (the
//! TCP connect of the testkit's virtual card) → pintud's decision, seen as its `tap` log line.
//! p50/p99 over `PINTU_BENCH_TAPS` presentations (default 300; quick 50).
//!
//! `cargo bench --bench tap_pcsc` runs it (pcscd and vsmartcard-vpcd installed: `scripts/test`
//! installs them; pcscd is started when none runs). Under `cargo test --benches` it only makes
//! three presentations. pintud is the release binary, its config has one `pcsc` reader on
//! "Virtual PCD 00 00" and a 1,000-entry list; every presentation is a different known card.
//! After each presentation the card is lifted and the bench waits (through its own PC/SC context)
//! until pcscd reports the reader empty, so every presentation is seen as a new one; then it
//! pauses 0–500 ms at random, so cards arrive at any moment of pcscd's polling cycle.
//!
//! What dominates: pcscd learns of a virtual card by polling the vpcd driver (pcsc-lite polls
//! readers without their own event thread every 400 ms), so the figure is mostly pcscd's
//! detection delay; the door's share (GET DATA, decision, relay) is the `micros` of the log line.

use pintu_testkit::vcard;

mod common;
#[allow(unused_imports)]
use common::BenchSite as _;

use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{fmt_dur, known_uid, result_line, Site, Stats};
use pcsc::{Context, ReaderState, Scope, State};

/// Entries in the door's list.
const ENTRIES: usize = 1000;

fn main() {
    let taps = if !common::bench_mode() {
        3
    } else if common::quick() {
        common::env_usize("PINTU_BENCH_TAPS", 50)
    } else {
        common::env_usize("PINTU_BENCH_TAPS", 300)
    };
    let _reader = vcard::exclusive();
    vcard::ensure_pcscd();
    let dir = common::temp_dir();
    let site = Site::new();
    let door = Door::start(&site, dir.path());
    let ctx = Context::establish(Scope::System).expect("PC/SC context");

    let mut total = Vec::with_capacity(taps);
    let mut door_part = Vec::with_capacity(taps);
    let mut rng = common::Rng::new(42);
    for i in 0..taps {
        let uid = known_uid(i % ENTRIES).to_hex();
        // A person's card arrives at any moment of pcscd's polling cycle, not right after it.
        std::thread::sleep(Duration::from_millis(rng.below(500) as u64));
        let placed = Instant::now();
        let card = vcard::VirtualCard::place(&uid);
        let (seen, micros) = door.next_tap(Duration::from_secs(5)).unwrap_or_else(|| {
            panic!(
                "presentation {i}: no decision within 5 s; pintud log:\n{}",
                door.log()
            )
        });
        total.push(seen - placed);
        door_part.push(Duration::from_micros(micros));
        card.remove();
        wait_empty(&ctx);
    }
    let s = Stats::of(total);
    let d = Stats::of(door_part);
    println!(
        "PC/SC tap, virtual card placed → decision logged, {taps} presentations:\n  \
         min {}  p50 {}  p90 {}  p99 {}  max {}\n  the door's part (read → relay command): p50 {}  p99 {}  max {}",
        fmt_dur(s.min),
        fmt_dur(s.median),
        fmt_dur(s.p90),
        fmt_dur(s.p99),
        fmt_dur(s.max),
        fmt_dur(d.median),
        fmt_dur(d.p99),
        fmt_dur(d.max),
    );
    result_line(
        "PC/SC tap, virtual card placed → decision",
        &format!(
            "p50 {}, p99 {} ({taps} taps)",
            fmt_dur(s.median),
            fmt_dur(s.p99)
        ),
        "—",
        "info",
    );
    result_line(
        "PC/SC tap, door's part (card read → relay)",
        &format!("p50 {}, p99 {}", fmt_dur(d.median), fmt_dur(d.p99)),
        "—",
        "info",
    );
}

/// Waits until pcscd reports the virtual reader empty.
fn wait_empty(ctx: &Context) {
    let name = std::ffi::CString::new(vcard::READER).expect("reader name");
    let mut states = vec![ReaderState::new(name, State::UNAWARE)];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        ctx.get_status_change(Duration::from_secs(1), &mut states)
            .or_else(|e| match e {
                pcsc::Error::Timeout => Ok(()),
                e => Err(e),
            })
            .unwrap_or_else(|e| {
                panic!("reader status: {e}: pcscd went away during the run (crashed or stopped)")
            });
        if states[0].event_state().contains(State::EMPTY) {
            return;
        }
        assert!(Instant::now() < deadline, "the card was not seen lifted");
        states[0].sync_current_state();
    }
}

/// pintud as a process, its log lines timestamped as they arrive.
struct Door {
    child: Child,
    taps: mpsc::Receiver<(Instant, u64)>,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Door {
    fn start(site: &Site, dir: &std::path::Path) -> Door {
        std::fs::write(dir.join("card.key"), site.card_key.to_hex()).expect("card key");
        std::fs::write(
            dir.join("list.signed"),
            site.signed_synthetic_list(1, ENTRIES),
        )
        .expect("list");
        let config_path = common::write_door_config(
            dir,
            &site.keys[0].1.verifying_key(),
            &format!(
                "name = \"entry\"\nbackend = \"pcsc\"\npcsc_reader = \"{}\"",
                vcard::READER
            ),
        );
        let (child, lines) = common::spawn_pintud(&config_path, &dir.join("list.signed"));
        let (tx, taps) = mpsc::channel();
        let (ready_tx, ready) = mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for (at, line) in lines {
                if line.contains("pintu::door::runtime::task: tap ") {
                    let micros = line
                        .split("micros=")
                        .nth(1)
                        .and_then(|m| m.split_whitespace().next())
                        .and_then(|m| m.parse().ok())
                        .unwrap_or(0);
                    let _ = tx.send((at, micros));
                } else if line.contains("PC/SC reader present") {
                    let _ = ready_tx.send(());
                }
                let mut log = sink.lock().unwrap_or_else(|e| e.into_inner());
                log.push_str(&line);
                log.push('\n');
            }
        });
        let door = Door { child, taps, log };
        if ready.recv_timeout(Duration::from_secs(20)).is_err() {
            panic!(
                "pintud did not see the virtual reader; log:\n{}",
                door.log()
            );
        }
        door
    }

    /// The next decision's arrival time and the door's own microseconds.
    fn next_tap(&self, within: Duration) -> Option<(Instant, u64)> {
        self.taps.recv_timeout(within).ok()
    }

    fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for Door {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}
