//! How the door-local commands (tap, input, status, who, events, `card enroll --door`) reach a
//! door: its control socket, named directly or found in its configuration file.
//!
//! The flags are accepted after the command (`pintuctl status --config FILE`, [`DoorArgs`]) and,
//! as scripts and the README have always written them, before it (`pintuctl --config FILE tap
//! …`, [`DoorDefaults`], which also reads `PINTU_SOCKET` / `PINTU_CONFIG`). A flag after the
//! command wins. Office commands have neither.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;

use pintu::door::config;
use pintu::door::control::{self, Reply, Request};

/// Default door configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/pintu/pintu.toml";

/// `--socket` / `--config` before the command, for the door-local commands.
#[derive(Args, Debug, Clone)]
pub struct DoorDefaults {
    /// Door control socket, for the door-local commands (default: the one named by --config).
    #[arg(long, env = "PINTU_SOCKET")]
    pub socket: Option<PathBuf>,
    /// Door configuration file, for the door-local commands (to find the control socket) and
    /// verify (its trusted keys).
    #[arg(long, env = "PINTU_CONFIG", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
}

/// `--socket` / `--config` of a door-local command.
#[derive(Args, Debug, Clone, Default)]
pub struct DoorArgs {
    /// Door control socket (default: $PINTU_SOCKET, else the one named by --config).
    #[arg(long)]
    pub socket: Option<PathBuf>,
    /// Door configuration file, used to find the control socket (default: $PINTU_CONFIG, else
    /// /etc/pintu/pintu.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Which door's control socket to talk to.
#[derive(Debug, Clone)]
pub struct Target {
    socket: Option<PathBuf>,
    config: PathBuf,
}

impl DoorArgs {
    /// The door these flags name, the flags before the command filling in.
    pub fn target(&self, defaults: &DoorDefaults) -> Target {
        // As when both were global flags: a socket (flag or PINTU_SOCKET) beats a config.
        Target {
            socket: self.socket.clone().or_else(|| defaults.socket.clone()),
            config: self
                .config
                .clone()
                .unwrap_or_else(|| defaults.config.clone()),
        }
    }
}

impl Target {
    /// Sends `req` and waits up to 10 s for the reply.
    pub fn ask(&self, req: &Request) -> Result<Reply> {
        self.ask_within(req, Duration::from_secs(10))
    }

    /// Sends `req` and waits up to `timeout` for the reply.
    pub fn ask_within(&self, req: &Request, timeout: Duration) -> Result<Reply> {
        let socket = match &self.socket {
            Some(s) => s.clone(),
            None => config::socket_path_from_file(&self.config)
                .with_context(|| "cannot find the control socket: pass --socket or --config")?,
        };
        Ok(control::request(&socket, req, timeout)?)
    }
}

/// The error for a reply of the wrong kind.
pub fn unexpected<T>(reply: Reply) -> Result<T> {
    match reply {
        Reply::Error { message } => bail!("the door refused: {message}"),
        other => bail!("unexpected reply from the door: {other:?}"),
    }
}
