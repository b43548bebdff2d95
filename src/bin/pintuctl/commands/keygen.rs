//! `pintuctl keygen`: an ed25519 signing key pair for lists and commands.

use std::os::unix::fs::DirBuilderExt as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use pintu::office::keys;

use crate::output::outln;

/// Create an ed25519 signing key pair: ID.key (secret, 0600) and ID.pub.
#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Key id, named by signatures and by doors' [[trust.keys]].
    #[arg(long)]
    id: String,
    /// Directory for the key files (created, owner-only, if missing).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
}

pub fn exec(args: KeygenArgs) -> Result<ExitCode> {
    // The README's `keygen --dir keys/` on a fresh checkout: make the directory, readable by
    // its owner only, as the secret key in it is. An existing directory is left as it is.
    if !args.dir.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&args.dir)
            .with_context(|| format!("creating the key directory {}", args.dir.display()))?;
    }
    let (secret, public, key) = keys::keygen(&args.dir, &args.id)?;
    outln!(
        "secret key: {} (mode 0600; keep it at the office, never on a door)",
        secret.display()
    );
    outln!("public key: {}", public.display());
    outln!(
        "\nAdd to each door's config:\n\n[[trust.keys]]\nid = \"{}\"\npublic_key = \"{}\"",
        key.key_id,
        key.public_key
    );
    Ok(ExitCode::SUCCESS)
}
