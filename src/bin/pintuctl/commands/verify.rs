//! `pintuctl verify`: a signed list checked as a door checks it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use jiff::Timestamp;

use pintu::core::list::{self, Role, TrustPolicy, TrustedKey};
use pintu::door::config::Config;
use pintu::office::keys;

use crate::door_args::DoorDefaults;
use crate::output::outln;

/// Check a signed list: say exactly what is wrong, or print its summary.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Signed list file.
    file: PathBuf,
    /// Trust these public key files instead of the door config's keys.
    #[arg(long = "pubkey")]
    pubkeys: Vec<PathBuf>,
    /// Signatures required (with --pubkey).
    #[arg(long, default_value_t = 1)]
    threshold: usize,
    /// Check the list is newer than this version, as a door holding it would.
    #[arg(long)]
    current_version: Option<u64>,
    /// Door configuration whose [trust] is used (default: $PINTU_CONFIG, else
    /// /etc/pintu/pintu.toml).
    #[arg(long)]
    config: Option<PathBuf>,
}

pub fn exec(args: VerifyArgs, defaults: &DoorDefaults) -> Result<ExitCode> {
    let policy = if args.pubkeys.is_empty() {
        let config = args.config.as_ref().unwrap_or(&defaults.config);
        let cfg = Config::load(config).map_err(|e| anyhow::anyhow!("{e}"))?;
        cfg.trust
    } else {
        let keys = args
            .pubkeys
            .iter()
            .map(|p| keys::load_public_key(p).map(|(id, key)| TrustedKey { id, key }))
            .collect::<Result<Vec<_>, _>>()?;
        TrustPolicy {
            keys,
            threshold: args.threshold,
            site: None,
            door: None,
            max_bytes: 1 << 30,
        }
    };
    let file = &args.file;
    let bytes = pintu::util::files::read_capped(file, policy.max_bytes)
        .with_context(|| format!("{}", file.display()))?;
    let current = args.current_version.map(|version| list::Accepted {
        version,
        payload_digest: None,
    });
    match list::verify(&bytes, &policy, current, Some(Timestamp::now())) {
        Err(why) => {
            outln!("{}: REJECTED ({}): {why}", file.display(), why.code());
            Ok(ExitCode::from(1))
        }
        Ok(v) => {
            let p = &v.payload;
            let count = |r: Role| p.entries.iter().filter(|e| e.role == r).count();
            outln!("{}: OK", file.display());
            outln!("  site        {}", p.site);
            outln!("  doors       {}", p.doors.join(", "));
            outln!("  version     {}", p.version);
            outln!("  issued at   {}", p.issued_at);
            outln!("  expires at  {}", p.expires_at);
            outln!("  time zone   {}", p.time_zone);
            outln!(
                "  entries     {} (staff {}, escort {}, visitor {})",
                p.entries.len(),
                count(Role::Staff),
                count(Role::Escort),
                count(Role::Visitor)
            );
            outln!("  signed by   {}", v.meta.signed_by.join(", "));
            Ok(ExitCode::SUCCESS)
        }
    }
}
