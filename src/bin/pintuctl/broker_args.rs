//! The broker flags of the office commands that reach the site broker: one set for all of them,
//! [`pintu::mqtt::BrokerArgs`] (`--broker`, `--mqtt-ca`, `--mqtt-user`, ...; the archive's
//! older names such as `--ca-file` and `--username` are aliases), flattened into publish,
//! doors, `card revoke --publish` and the archive.

use std::path::PathBuf;

pub use pintu::mqtt::BrokerArgs as MqttArgs;

/// Office service: archive every door's events from the broker (persistent session, stored
/// before acknowledged, de-duplicated by door and seq); --gaps and --stats read an archive.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  pintuctl archive --db /var/lib/pintu-archive --broker broker.dc1.example:8883 --site dc1 \\
      --username office --password-file /etc/pintu/archive.password --ca-file /etc/pintu/mqtt-ca.pem
  pintuctl archive --db /var/lib/pintu-archive --gaps
  pintuctl archive --db /var/lib/pintu-archive --stats --json")]
pub struct ArchiveArgs {
    /// Archive store directory (a sled database; created if missing).
    #[arg(long, env = "PINTU_ARCHIVE_DB")]
    pub db: PathBuf,
    /// Print the missing seq ranges of every door and exit (status 3 if there are any).
    #[arg(long, conflicts_with = "stats")]
    pub gaps: bool,
    /// Print the archive's counters and per-door ranges and exit.
    #[arg(long)]
    pub stats: bool,
    /// With --gaps or --stats: print JSON.
    #[arg(long)]
    pub json: bool,
    /// Site id: the archive subscribes to {prefix}/{site}/+/events.
    #[arg(long, env = "PINTU_ARCHIVE_SITE", required_unless_present_any = ["gaps", "stats"])]
    pub site: Option<String>,
    /// The broker (the archive also reads its older PINTU_ARCHIVE_* variables).
    #[command(flatten)]
    pub broker: MqttArgs,
}
