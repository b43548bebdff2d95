//! `pintud`: the door daemon.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tokio_util::sync::CancellationToken;

use pintu::door::clock::SystemClock;
use pintu::door::config::{Config, LogFormat};
use pintu::door::daemon::{self, RunOptions};

/// Pintu door daemon: decides taps offline from a signed, locally cached access list.
#[derive(Parser, Debug)]
#[command(
    name = "pintud",
    version,
    about,
    after_help = "Examples:\n  pintud --config /etc/pintu/pintu.toml\n  pintud --check-config /etc/pintu/pintu.toml\n  pintud --config demo.toml --list first-list.signed"
)]
struct Args {
    /// Configuration file.
    #[arg(
        short,
        long,
        default_value = "/etc/pintu/pintu.toml",
        env = "PINTU_CONFIG"
    )]
    config: PathBuf,
    /// Validate this configuration file, print the result and exit (0 valid, 2 invalid).
    #[arg(long, value_name = "FILE", conflicts_with = "list")]
    check_config: Option<PathBuf>,
    /// A signed list to offer at start (verified like any other). It must exist: a missing or
    /// non-regular FILE stops pintud with exit code 2.
    #[arg(long, value_name = "FILE")]
    list: Option<PathBuf>,
    /// Drive the configured lock relay to its de-energised state and exit (systemd's
    /// ExecStopPost: after any stop, crash or watchdog kill). Fail-secure locks end locked.
    #[arg(long, conflicts_with_all = ["check_config", "list"])]
    safe_state: bool,
    /// Record that systemd gave up on pintud (a `daemon.failed` event) and, with [mqtt], set the
    /// door's retained status to `failed` and publish the outbox; then exit
    /// (pintud-failed.service, started by pintud.service's OnFailure=).
    #[arg(long, conflicts_with_all = ["check_config", "list", "safe_state"])]
    report_failure: bool,
}

const EXIT_CONFIG: u8 = 2;
const EXIT_RUNTIME: u8 = 1;
const EXIT_PANIC: u8 = 101;

/// Set by the panic hook: the run ended because something panicked.
static PANICKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Any panic, in any task: log it and stop the daemon the orderly way (the door task secures the
/// lock), then exit non-zero so systemd restarts a whole daemon. A panic in the door task itself
/// also secures the lock while unwinding.
fn install_panic_hook(shutdown: CancellationToken) {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICKED.store(true, std::sync::atomic::Ordering::SeqCst);
        tracing::error!("panic: {info}; securing the lock and stopping");
        default_hook(info);
        shutdown.cancel();
    }));
}

/// systemd's watchdog (`WatchdogSec=`), if it is enabled for this process.
fn systemd_watchdog() -> Option<daemon::Watchdog> {
    let mut usec = 0u64;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return None;
    }
    Some(daemon::Watchdog {
        period: std::time::Duration::from_micros(usec),
        ping: Box::new(|| {
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Watchdog]);
        }),
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.safe_state {
        return safe_state(&args.config);
    }
    if args.report_failure {
        return report_failure(&args.config);
    }
    if let Some(path) = &args.check_config {
        return match Config::load(path) {
            Ok(cfg) => {
                println!(
                    "{}: OK (site {}, door {}, {} trusted key(s), threshold {}, {} reader(s))",
                    path.display(),
                    cfg.site,
                    cfg.door,
                    cfg.trust.keys.len(),
                    cfg.trust.threshold,
                    cfg.readers.len()
                );
                ExitCode::SUCCESS
            }
            Err(errors) => {
                eprintln!("{errors}");
                ExitCode::from(EXIT_CONFIG)
            }
        };
    }
    // A list named on the command line that is not there is a mistake to fix, not a door to
    // start without a list: refuse before anything starts. (Whether it verifies is checked
    // later, like any list, and reported as `list.rejected`.)
    if let Some(path) = &args.list {
        if let Err(e) = pintu::util::files::open_regular(path, None) {
            eprintln!("pintud: --list {}: {e}", path.display());
            eprintln!(
                "pintud: not started: give an existing signed list file, or start without --list"
            );
            return ExitCode::from(EXIT_CONFIG);
        }
    }
    let cfg = match Config::load(&args.config) {
        Ok(cfg) => cfg,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("pintud: not started: fix the configuration (check it with `pintud --check-config FILE`)");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    init_logging(&cfg);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        // Blocking file and store work; with sled's I/O pool (up to 128) well under the unit's
        // TasksMax=256 (tokio's default alone is 512).
        .max_blocking_threads(32)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pintud: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let shutdown = CancellationToken::new();
    install_panic_hook(shutdown.clone());
    let result = runtime.block_on(async {
        tokio::spawn(stop_on_signal(shutdown.clone()));
        daemon::run(
            cfg,
            RunOptions {
                list: args.list,
                watchdog: systemd_watchdog(),
                ..RunOptions::default()
            },
            Arc::new(SystemClock),
            shutdown,
            || {
                let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
            },
        )
        .await
    });
    if PANICKED.load(std::sync::atomic::Ordering::SeqCst) {
        eprintln!("pintud: stopped after a panic (lock secured); systemd restarts it");
        return ExitCode::from(EXIT_PANIC);
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let message = pintu::util::error_chain(&e);
            tracing::error!("pintud stopped: {message}");
            eprintln!("pintud: {message}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// `--safe-state`: open the relay (which starts it de-energised) and release it de-energised.
fn safe_state(config: &std::path::Path) -> ExitCode {
    // Only the lock settings are read and checked: no secret (under systemd the credentials may
    // be gone by ExecStopPost), nothing else that could keep the relay from being driven. With
    // invalid lock settings only the wiring holds the relay.
    let (lock_hw, lock_type) = match pintu::door::config::lock_from_file(config) {
        Ok(lock) => lock,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!(
                "pintud --safe-state: cannot read the lock settings; the wiring holds the relay"
            );
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match pintu::door::hw::gpio::open_lock(&lock_hw, lock_type) {
        None => {
            println!("pintud --safe-state: simulated lock, nothing to drive");
            ExitCode::SUCCESS
        }
        Some(Ok(lock)) => {
            drop(lock); // dropping drives the relay de-energised
            println!("pintud --safe-state: relay de-energised ({lock_type:?} lock)");
            ExitCode::SUCCESS
        }
        Some(Err(e)) => {
            eprintln!("pintud --safe-state: {e}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// `--report-failure`: exit 0 once `daemon.failed` is durable (whatever MQTT did), 2 on a bad
/// configuration, 1 when it could not be recorded (the `failed` status is published anyway).
fn report_failure(config: &std::path::Path) -> ExitCode {
    let cfg = match Config::load(config) {
        Ok(cfg) => cfg,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!("pintud --report-failure: cannot read the configuration; nothing recorded");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    init_logging(&cfg);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pintud --report-failure: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let info = pintu::door::failure::FailureInfo::from_env();
    let now = pintu::door::clock::Clock::now(&SystemClock);
    let report = runtime.block_on(pintu::door::failure::report(
        &cfg,
        &info,
        now,
        pintu::door::failure::MQTT_DEADLINE,
    ));
    let recorded = match (report.seq, &report.record_error) {
        (Some(seq), _) => format!(
            "daemon.failed recorded (seq {seq}, reason {})",
            info.reason()
        ),
        (None, Some(e)) => format!("daemon.failed NOT recorded: {e}"),
        (None, None) => "daemon.failed NOT recorded".into(),
    };
    let mqtt = if cfg.mqtt.is_none() {
        "no [mqtt]".to_string()
    } else {
        format!(
            "status failed published: {}; {} events published{}",
            if report.status_published { "yes" } else { "no" },
            report.events_published,
            report
                .mqtt_error
                .as_deref()
                .map(|e| format!("; MQTT: {e}"))
                .unwrap_or_default()
        )
    };
    let left = report
        .outbox_left
        .map(|n| format!("; {n} left in the outbox"))
        .unwrap_or_default();
    if report.seq.is_some() {
        println!("pintud --report-failure: {recorded}; {mqtt}{left}");
        ExitCode::SUCCESS
    } else {
        eprintln!("pintud --report-failure: {recorded}; {mqtt}{left}");
        ExitCode::from(EXIT_RUNTIME)
    }
}

fn init_logging(cfg: &Config) {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match cfg.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!(
            "cannot install signal handlers; stop pintud with SIGKILL only as a last resort"
        );
        return;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!("{name} received: securing the lock and stopping");
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
    shutdown.cancel();
}
