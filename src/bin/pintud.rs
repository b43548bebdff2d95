//! `pintud`: the door daemon.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tokio_util::sync::CancellationToken;

use pintu::clock::SystemClock;
use pintu::config::{Config, LogFormat};
use pintu::daemon::{self, RunOptions};

/// Pintu door daemon: decides taps offline from a signed, locally cached access list.
#[derive(Parser, Debug)]
#[command(
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
    /// A signed list to offer at start (verified like any other).
    #[arg(long, value_name = "FILE")]
    list: Option<PathBuf>,
    /// Drive the configured lock relay to its de-energised state and exit (systemd's
    /// ExecStopPost: after any stop, crash or watchdog kill). Fail-secure locks end locked.
    #[arg(long, conflicts_with_all = ["check_config", "list"])]
    safe_state: bool,
}

const EXIT_CONFIG: u8 = 2;
const EXIT_RUNTIME: u8 = 1;

fn main() -> ExitCode {
    let args = Args::parse();
    if args.safe_state {
        return safe_state(&args.config);
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
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pintud: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let result = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        daemon::run(
            cfg,
            RunOptions {
                list: args.list,
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
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let message = pintu::error_chain(&e);
            tracing::error!("pintud stopped: {message}");
            eprintln!("pintud: {message}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// `--safe-state`: open the relay (which starts it de-energised) and release it de-energised.
fn safe_state(config: &std::path::Path) -> ExitCode {
    // The whole config is validated; with an invalid one only the wiring holds the relay.
    let cfg = match Config::load(config) {
        Ok(cfg) => cfg,
        Err(errors) => {
            eprintln!("{errors}");
            eprintln!(
                "pintud --safe-state: cannot read the lock settings; the wiring holds the relay"
            );
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match pintu::hw::gpio::open_lock(&cfg.lock, cfg.lock_type) {
        None => {
            println!("pintud --safe-state: simulated lock, nothing to drive");
            ExitCode::SUCCESS
        }
        Some(Ok(lock)) => {
            drop(lock); // dropping drives the relay de-energised
            println!(
                "pintud --safe-state: relay de-energised ({:?} lock)",
                cfg.lock_type
            );
            ExitCode::SUCCESS
        }
        Some(Err(e)) => {
            eprintln!("pintud --safe-state: {e}");
            ExitCode::from(EXIT_RUNTIME)
        }
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
