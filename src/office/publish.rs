//! Signing the register into a list and delivering it, in the one order that never uses a list
//! version twice.
//!
//! `pintuctl sign`, `pintuctl publish` and `pintuctl card revoke --publish` all go through a
//! [`DeliveryPlan`]:
//! 1. [`DeliveryPlan::prepare`] checks everything that can be checked before anything changes:
//!    a signing key is given and loads, the card key loads, the list has somewhere to go (a
//!    broker and/or a file) and the file's directory exists.
//! 2. [`DeliveryPlan::deliver`] signs the list at the register's next version, connects to the
//!    broker when there is one (an unreachable broker changes nothing), then records the version
//!    in the register ([`record_version`], written before the list leaves the office), then
//!    writes the file and publishes the list (retained).
//!
//! A failure after the version is recorded leaves a gap in versions, which doors accept; reusing
//! a version for a different list would be refused by every door that holds the first one.
//! The broker is a [`ListChannel`], so the order is tested here without one.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use jiff::Timestamp;

use crate::core::card::CardKey;
use crate::core::list::{self, Payload};
use crate::core::visit::Visit;
use crate::office::client::{self, OfficeError, OfficeMqtt};
use crate::office::keys::{self, KeyError};
use crate::office::register::{LoadedRegister, RegisterError};

/// Why a list was not signed or delivered.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// No signing key was given.
    #[error("--key is required to sign the list (the approver's signing key)")]
    NoKey,
    /// Neither a broker nor a file to deliver to.
    #[error("nowhere to deliver the list: give --broker (or --office with an [mqtt] table) and/or --out FILE")]
    NoDestination,
    /// The output file's directory does not exist.
    #[error("{}: directory {} does not exist (is the USB stick mounted?)", .out.display(), .dir.display())]
    NoOutputDir {
        /// The output file.
        out: PathBuf,
        /// Its missing directory.
        dir: PathBuf,
    },
    /// A key file could not be loaded.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The register does not sign, or could not be written.
    #[error(transparent)]
    Register(#[from] RegisterError),
    /// The broker settings are wrong, or no async runtime could be started.
    #[error(transparent)]
    Broker(OfficeError),
    /// The list could not be encoded.
    #[error("encoding the list: {0}")]
    Encode(#[from] serde_json::Error),
    /// The signed list could not be written to its file.
    #[error("writing {}", .path.display())]
    Write {
        /// The output file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The broker could not be reached: nothing changed.
    #[error("nothing was changed: deliver the list with --out FILE, or try again")]
    Connect(#[source] OfficeError),
    /// The version is recorded but the broker did not acknowledge the list.
    #[error("the register records version {version}, but the list was not acknowledged: run `pintuctl publish` again")]
    NotAcknowledged {
        /// The version recorded in the register.
        version: u64,
        /// The cause.
        source: OfficeError,
    },
}

/// Where a signed list is published: the site broker ([`OfficeMqtt`]), or a fake in tests.
pub trait ListChannel {
    /// A connection the broker has accepted, not yet used.
    type Link: ListLink;
    /// `host:port`, for messages.
    fn broker(&self) -> String;
    /// The retained topic of `site`'s list.
    fn list_topic(&self, site: &str) -> String;
    /// Connects for a list of `len` bytes.
    fn connect(&self, len: usize) -> impl Future<Output = Result<Self::Link, OfficeError>>;
}

/// A connection a list is published on.
pub trait ListLink {
    /// Publishes `list` on `topic`, retained, and waits for the broker's acknowledgement;
    /// returns the time from connecting to it.
    fn publish_retained(
        self,
        topic: &str,
        list: Vec<u8>,
    ) -> impl Future<Output = Result<Duration, OfficeError>>;
}

impl ListChannel for OfficeMqtt {
    type Link = client::Connection;

    fn broker(&self) -> String {
        OfficeMqtt::broker(self)
    }

    fn list_topic(&self, site: &str) -> String {
        self.site_list_topic(site)
    }

    fn connect(&self, len: usize) -> impl Future<Output = Result<Self::Link, OfficeError>> {
        OfficeMqtt::connect(self, len)
    }
}

impl ListLink for client::Connection {
    fn publish_retained(
        self,
        topic: &str,
        list: Vec<u8>,
    ) -> impl Future<Output = Result<Duration, OfficeError>> {
        client::Connection::publish_retained(self, topic, list)
    }
}

/// A list signed from the register, not yet delivered.
#[derive(Debug, Clone)]
pub struct SignedList {
    /// Its version: the register's last signed version + 1.
    pub version: u64,
    /// What it carries.
    pub payload: Payload,
    /// The open visits it carries.
    pub visits: Vec<Visit>,
    /// The signed envelope, as doors read it.
    pub bytes: Vec<u8>,
    /// Key ids of its signatures.
    pub signers: Vec<String>,
}

/// Signs the register at its next version, issued at `now`. The register is not changed.
pub fn sign_list(
    reg: &LoadedRegister,
    card_key: &CardKey,
    signing_keys: &[(String, SigningKey)],
    now: Timestamp,
) -> Result<SignedList, PublishError> {
    let version = reg.register.list.version + 1;
    let (payload, visits) = reg.build_list(card_key, version, now)?;
    let bytes = list::payload_bytes(&payload, &visits)?;
    Ok(SignedList {
        version,
        bytes: list::sign(&bytes, signing_keys),
        payload,
        visits,
        signers: signing_keys.iter().map(|(id, _)| id.clone()).collect(),
    })
}

/// Records `version` as the register's last signed version and writes the register (with any
/// other edit made in memory), keeping its comments and layout: the one way every command
/// records a version, before the list leaves the office.
pub fn record_version(reg: &mut LoadedRegister, version: u64) -> Result<(), RegisterError> {
    reg.bump_version(version)?;
    reg.save()
}

/// A list published on the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The retained topic.
    pub topic: String,
    /// `host:port`.
    pub broker: String,
    /// From connecting to the broker's acknowledgement.
    pub took: Duration,
}

/// What [`DeliveryPlan::deliver`] did.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// The list, as signed (its version is recorded in the register).
    pub list: SignedList,
    /// The file it was written to.
    pub written: Option<PathBuf>,
    /// Where it was published.
    pub published: Option<Published>,
}

/// How a list is signed and where it goes, checked before anything changes.
pub struct DeliveryPlan<C> {
    signing_keys: Vec<(String, SigningKey)>,
    card_key: CardKey,
    out: Option<PathBuf>,
    channel: Option<C>,
}

impl<C: ListChannel> DeliveryPlan<C> {
    /// Checks the delivery of `reg`'s next list: signed with the keys in `key_paths`, written to
    /// `out` and/or published on the channel `channel` resolves to (asked only once a key is
    /// given). Nothing is changed.
    pub fn prepare(
        reg: &LoadedRegister,
        key_paths: &[PathBuf],
        out: Option<&Path>,
        channel: impl FnOnce() -> Result<Option<C>, OfficeError>,
    ) -> Result<DeliveryPlan<C>, PublishError> {
        if key_paths.is_empty() {
            return Err(PublishError::NoKey);
        }
        let channel = channel().map_err(PublishError::Broker)?;
        if channel.is_none() && out.is_none() {
            return Err(PublishError::NoDestination);
        }
        if let Some(out) = out {
            let dir = out.parent().filter(|d| !d.as_os_str().is_empty());
            if let Some(dir) = dir.filter(|d| !d.is_dir()) {
                return Err(PublishError::NoOutputDir {
                    out: out.to_path_buf(),
                    dir: dir.to_path_buf(),
                });
            }
        }
        let signing_keys = key_paths
            .iter()
            .map(|p| keys::load_signing_key(p))
            .collect::<Result<Vec<_>, _>>()?;
        let card_key = keys::load_card_key(&reg.card_key_path())?;
        Ok(DeliveryPlan {
            signing_keys,
            card_key,
            out: out.map(Path::to_path_buf),
            channel,
        })
    }

    /// Signs `reg` (issued at `now`), connects to the broker (when there is one), then records
    /// the version in the register and writes and/or publishes the list. An unreachable broker
    /// changes nothing.
    pub async fn deliver(
        self,
        reg: &mut LoadedRegister,
        now: Timestamp,
    ) -> Result<Delivered, PublishError> {
        let list = sign_list(reg, &self.card_key, &self.signing_keys, now)?;
        let link = match &self.channel {
            Some(channel) => Some(
                channel
                    .connect(list.bytes.len())
                    .await
                    .map_err(PublishError::Connect)?,
            ),
            None => None,
        };
        // The version is recorded before the list leaves: never used for two different lists.
        record_version(reg, list.version)?;
        if let Some(out) = &self.out {
            crate::util::files::write_atomic(out, &list.bytes, 0o600).map_err(|source| {
                PublishError::Write {
                    path: out.clone(),
                    source,
                }
            })?;
        }
        let published = match (&self.channel, link) {
            (Some(channel), Some(link)) => {
                let topic = channel.list_topic(&list.payload.site);
                let took = link
                    .publish_retained(&topic, list.bytes.clone())
                    .await
                    .map_err(|source| PublishError::NotAcknowledged {
                        version: list.version,
                        source,
                    })?;
                Some(Published {
                    topic,
                    broker: channel.broker(),
                    took,
                })
            }
            _ => None,
        };
        Ok(Delivered {
            list,
            written: self.out,
            published,
        })
    }

    /// [`DeliveryPlan::deliver`] for a synchronous caller (on a fresh current-thread runtime).
    pub fn deliver_blocking(
        self,
        reg: &mut LoadedRegister,
        now: Timestamp,
    ) -> Result<Delivered, PublishError> {
        client::block_on(self.deliver(reg, now)).map_err(PublishError::Broker)?
    }
}

/// Signs `reg`'s next list and writes it to `out` (`pintuctl sign`): the delivery of a plan
/// without a broker, so the output path is checked before the version is raised.
pub fn sign_to_file(
    reg: &mut LoadedRegister,
    key_paths: &[PathBuf],
    out: &Path,
    now: Timestamp,
) -> Result<Delivered, PublishError> {
    DeliveryPlan::<OfficeMqtt>::prepare(reg, key_paths, Some(out), || Ok(None))?
        .deliver_blocking(reg, now)
}

#[cfg(test)]
mod tests;
