//! `pintuctl sign`, two ways:
//! - `pintuctl sign --register R --key K --out LIST`: the register signed into a list file (no
//!   broker);
//! - `pintuctl sign --key K PAYLOADFILE`: a payload exported by `pintu-office` for offline
//!   signing, signed with one key file into a signature file to upload (`docs/signing.md`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use jiff::Timestamp;

use pintu::office::register::LoadedRegister;
use pintu::office::{keys, offline, publish};

use crate::output::outln;

/// Sign the register into a list (bumps the register's version, writes the signed list), or,
/// given PAYLOADFILE, sign a payload exported by pintu-office into a signature file.
#[derive(Args, Debug)]
pub struct SignArgs {
    /// A payload exported by pintu-office for offline signing (then one --key; the signature
    /// goes to --out, by default PAYLOADFILE.sig).
    #[arg(value_name = "PAYLOADFILE", conflicts_with = "register")]
    payload: Option<PathBuf>,
    /// Register file.
    #[arg(long, required_unless_present = "payload")]
    register: Option<PathBuf>,
    /// Signing key file(s); one signature each.
    #[arg(long = "key", required = true)]
    keys: Vec<PathBuf>,
    /// Output: the signed list (with --register), or the signature file.
    #[arg(long, required_unless_present = "payload")]
    out: Option<PathBuf>,
}

pub fn exec(args: SignArgs) -> Result<ExitCode> {
    match (&args.payload, &args.register, &args.out) {
        (Some(payload), _, out) => sign_payload(payload, &args.keys, out.as_deref()),
        (None, Some(register), Some(out)) => sign_register(register, &args.keys, out),
        // clap requires --register and --out without PAYLOADFILE.
        _ => bail!("give --register and --out, or a PAYLOADFILE"),
    }
}

fn sign_register(register: &Path, keys: &[PathBuf], out: &Path) -> Result<ExitCode> {
    let mut reg = LoadedRegister::load(register)?;
    reg.refuse_if_imported(
        "sign --register",
        "pintu-office's signing (docs/signing.md)",
    )?;
    // The output path is checked before the version is raised; the version is recorded before
    // the file is written, as publish does (office::publish).
    let done = publish::sign_to_file(&mut reg, keys, out, Timestamp::now())?;
    let l = &done.list;
    outln!(
        "{}: version {}, {} entries, {} visit(s), site {}, doors {}, expires {}, signed by {}",
        out.display(),
        l.version,
        l.payload.entries.len(),
        l.visits.len(),
        l.payload.site,
        l.payload.doors.join(","),
        l.payload.expires_at,
        l.signers.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

fn sign_payload(path: &Path, key_paths: &[PathBuf], out: Option<&Path>) -> Result<ExitCode> {
    let [key_path] = key_paths else {
        bail!("a payload file is signed with one --key (each approver signs with their own key)");
    };
    let bytes = pintu::util::files::read_capped(path, offline::MAX_PAYLOAD_FILE_BYTES)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let (file, payload) =
        offline::PayloadFile::parse(&bytes).with_context(|| path.display().to_string())?;
    // What is signed is read from the bytes, not from the header's summary.
    let what =
        offline::describe(file.kind, &payload).with_context(|| path.display().to_string())?;
    let (key_id, key) = keys::load_signing_key(key_path)?;
    let signature = offline::sign_file(&file, &payload, &key_id, &key);
    let out = out.map_or_else(
        || {
            let mut name = path.as_os_str().to_owned();
            name.push(".sig");
            PathBuf::from(name)
        },
        Path::to_path_buf,
    );
    pintu::util::files::write_atomic(&out, &signature.to_bytes(), 0o644)
        .with_context(|| format!("writing {}", out.display()))?;
    outln!(
        "{}: signed payload {} ({what}) with key {key_id}; sha256 {}",
        out.display(),
        file.payload_id,
        signature.sha256
    );
    Ok(ExitCode::SUCCESS)
}
