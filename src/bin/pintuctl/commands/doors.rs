//! `pintuctl doors`: every door's retained status from the site broker.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use pintu::office::client;
use pintu::office::register::LoadedRegister;

use crate::broker_args::MqttArgs;
use crate::output::{outln, print_table};

/// Every door's retained status from MQTT: online, list version, outbox, lock, occupancy.
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  pintuctl doors --broker broker.dc1.example --register register.toml\n  pintuctl doors --office office.toml --site diskominfo --json"
)]
pub struct DoorsArgs {
    /// Site id (default: the register's site).
    #[arg(long)]
    site: Option<String>,
    /// Register, for the site id.
    #[arg(long, env = "PINTU_REGISTER", default_value = "register.toml")]
    register: PathBuf,
    #[command(flatten)]
    mqtt: MqttArgs,
    /// How long to collect retained status after subscribing.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    wait: Duration,
    /// Print JSON (the status messages as the doors published them).
    #[arg(long)]
    json: bool,
}

pub fn exec(args: DoorsArgs) -> Result<ExitCode> {
    let DoorsArgs {
        site,
        register,
        mqtt,
        wait,
        json,
    } = args;
    let site = match site {
        Some(s) => s,
        None => LoadedRegister::load(&register)
            .map(|r| r.register.site)
            .context("give --site, or --register for the site id")?,
    };
    let mqtt = client::OfficeMqtt::from_args(&mqtt)?
        .context("no MQTT broker: give --broker (or --office with an [mqtt] table)")?;
    let filter = mqtt.status_filter(&site);
    let got = client::block_on(mqtt.collect(&filter, wait))??;
    // The latest message per topic wins.
    let mut doors: std::collections::BTreeMap<String, serde_json::Value> = Default::default();
    for m in got {
        let door = m
            .topic
            .rsplit('/')
            .nth(1)
            .unwrap_or(m.topic.as_str())
            .to_string();
        let value = serde_json::from_slice(&m.payload).unwrap_or_else(
            |_| serde_json::json!({"state": "unreadable", "raw": String::from_utf8_lossy(&m.payload)}),
        );
        doors.insert(door, value);
    }
    if json {
        let items: Vec<_> = doors.values().collect();
        outln!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(ExitCode::SUCCESS);
    }
    if doors.is_empty() {
        outln!("no door status on {filter} at {}", mqtt.broker());
        return Ok(ExitCode::SUCCESS);
    }
    let field = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "-".to_string(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let rows: Vec<Vec<String>> = doors
        .iter()
        .map(|(door, s)| {
            vec![
                door.clone(),
                field(&s["state"]),
                field(&s["list"]["version"]),
                field(&s["outbox"]["depth"]),
                field(&s["lock"]),
                field(&s["occupancy"]),
                field(&s["clock"]["trusted"]),
                field(&s["time"]),
            ]
        })
        .collect();
    print_table(
        &[
            "DOOR",
            "STATE",
            "LIST",
            "OUTBOX",
            "LOCK",
            "INSIDE",
            "CLOCK TRUSTED",
            "AS OF",
        ],
        &rows,
    )?;
    Ok(ExitCode::SUCCESS)
}
