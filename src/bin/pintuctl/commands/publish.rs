//! `pintuctl publish`: the register signed and delivered, retained on the site broker and/or
//! written to a file, in the order of office::publish.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use jiff::Timestamp;

use pintu::office::client::OfficeMqtt;
use pintu::office::publish::{Delivered, DeliveryPlan};
use pintu::office::register::LoadedRegister;

use crate::broker_args::MqttArgs;
use crate::output::outln;
use crate::register_args::RegisterPath;

const PUBLISH_EXAMPLES: &str = "Examples:
  pintuctl publish --key keys/kabid-2026.key --office office.toml
  pintuctl publish --key keys/kabid-2026.key --broker 10.0.0.5 --mqtt-user office \\
      --mqtt-password-file /etc/pintu/office.password --mqtt-ca /etc/pintu/mqtt-ca.pem
  pintuctl publish --key keys/kabid-2026.key --out /media/usb/list.signed   # no MQTT";

/// Sign the register and deliver the list: retained on the site's MQTT list topic, and/or
/// written to --out (e.g. a USB stick for the door's inbox).
#[derive(Args, Debug)]
#[command(after_help = PUBLISH_EXAMPLES)]
pub struct PublishCommandArgs {
    #[command(flatten)]
    reg: RegisterPath,
    #[command(flatten)]
    publish: PublishArgs,
}

/// How a list is signed and delivered.
#[derive(Args, Debug, Clone, Default)]
pub struct PublishArgs {
    /// Signing key file(s); one signature each.
    #[arg(long = "key")]
    keys: Vec<PathBuf>,
    /// Also write the signed list to this file (e.g. on a USB stick, for a door's inbox).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    mqtt: MqttArgs,
}

impl PublishArgs {
    /// The checked plan for `reg`'s next list; nothing changes.
    pub fn plan(&self, reg: &LoadedRegister) -> Result<DeliveryPlan<OfficeMqtt>> {
        Ok(DeliveryPlan::prepare(
            reg,
            &self.keys,
            self.out.as_deref(),
            || OfficeMqtt::from_args(&self.mqtt),
        )?)
    }
}

/// Carries out `plan` on `reg` and says what was delivered where.
pub fn deliver(plan: DeliveryPlan<OfficeMqtt>, reg: &mut LoadedRegister) -> Result<()> {
    let Delivered {
        list,
        written,
        published,
    } = plan.deliver_blocking(reg, Timestamp::now())?;
    let what = format!(
        "version {}, {} entries, {} visit(s), site {}, expires {}, signed by {}",
        list.version,
        list.payload.entries.len(),
        list.visits.len(),
        list.payload.site,
        list.payload.expires_at,
        list.signers.join(", ")
    );
    if let Some(out) = written {
        outln!("{}: {what}", out.display());
    }
    if let Some(p) = published {
        outln!(
            "published {what} to {} on {} (retained, acknowledged in {} ms)",
            p.topic,
            p.broker,
            p.took.as_millis()
        );
    }
    Ok(())
}

pub fn exec(args: PublishCommandArgs) -> Result<ExitCode> {
    let mut reg = LoadedRegister::load(&args.reg.register)?;
    reg.refuse_if_imported(
        "publish",
        "pintu-office's signing and publishing (docs/signing.md)",
    )?;
    let plan = args.publish.plan(&reg)?;
    deliver(plan, &mut reg)?;
    Ok(ExitCode::SUCCESS)
}
