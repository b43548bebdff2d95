//! The office's data of the site: rooms, doors, holders (staff, escorts, visitors), their cards,
//! the visitor-badge pool, visits and the record of revoked cards — what today's TOML register
//! holds (`docs/register.md`), one row per item in the tables of `migrations/0003_directory.sql`.
//!
//! - [`places`]: rooms and doors.
//! - [`holders`]: holders: list/search (paged on the server), create, update; their search
//!   index (word prefixes, case- and accent-insensitive) is [`holder_search`].
//! - [`cards`]: holders' cards and the badge pool: list/search, enrol, add, revoke.
//! - [`visits`]: visits (a pool badge lent for a window): list, issue, end.
//!
//!   Every change is written with its audit record in one transaction.
//! - [`register`]: import of a `register.toml`, export as TOML, and the snapshot the list is
//!   built from ([`register::snapshot`]): the same `LoadedRegister` code that `pintuctl` runs,
//!   so a list built from the database is byte-identical to one built from the file.
//!
//! Privacy (`docs/office-data.md`): raw card UIDs are stored only sealed with the service key
//! (context [`UID_CONTEXT`]) and opened only for helpdesk and administrators (enrolment) and the
//! export; every other reader sees the keyed hash the doors use. Of a KTP only its type and last
//! four digits are stored. The audit trail never holds a raw UID.

pub mod cards;
pub mod holder_search;
pub mod holders;
pub mod places;
pub mod register;
#[cfg(test)]
mod tests;
pub mod visits;

use std::path::Path;

use pintu::core::card::{CardKey, Uid};
use pintu::office::register::RegisterError;
use serde::{Deserialize, Serialize};

use crate::db::DbError;
use crate::input::FieldError;
use crate::secret::ServiceKey;

/// The sealing context of a raw card UID (a sealed UID copied to another column does not open).
pub const UID_CONTEXT: &str = "card-uid";

/// Most rows a page may ask for.
pub const MAX_PER_PAGE: u32 = 100;

/// What went wrong in the directory.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A field is wrong.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// Nothing by that name.
    #[error("{0} not found")]
    NotFound(String),
    /// The change conflicts with what the database holds.
    #[error("{0}")]
    Conflict(String),
    /// A register file is malformed (file, line and key named); nothing was written.
    #[error(transparent)]
    Register(#[from] RegisterError),
    /// No register was imported yet: the site (id, time zone) is unknown.
    #[error(
        "the database holds no site yet: import the site's register first \
         (pintu-office register import FILE)"
    )]
    NoSite,
    /// The site card key is not configured or cannot be read.
    #[error("site card key: {0}")]
    CardKey(String),
    /// A sealed UID does not open: the service key is not the one that sealed it.
    #[error("a sealed card UID does not open with this service's key (wrong secret key file?)")]
    Sealed,
}

impl From<sqlx::Error> for DirectoryError {
    fn from(e: sqlx::Error) -> Self {
        DirectoryError::Db(DbError::Query(e))
    }
}

/// The site card key named by `[site] card_key_file` in the office config.
pub fn load_card_key(file: Option<&Path>) -> Result<CardKey, DirectoryError> {
    let file = file.ok_or_else(|| {
        DirectoryError::CardKey(
            "no [site] card_key_file in the office config: name the site's card key file \
             (the one pintuctl used, root-only)"
                .into(),
        )
    })?;
    pintu::office::keys::load_card_key(file).map_err(|e| DirectoryError::CardKey(e.to_string()))
}

/// Seals a raw UID for storage.
pub(crate) fn seal_uid(key: &ServiceKey, uid: &Uid) -> String {
    key.seal(UID_CONTEXT, uid.as_bytes())
}

/// Opens a sealed UID.
pub(crate) fn open_uid(key: &ServiceKey, sealed: &str) -> Result<Uid, DirectoryError> {
    let bytes = key
        .open(UID_CONTEXT, sealed)
        .map_err(|_| DirectoryError::Sealed)?;
    Uid::from_bytes(&bytes).map_err(|_| DirectoryError::Sealed)
}

/// `?q=&page=&per_page=` of a list call, as sent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Search text: for holders, words that must each start a word of the holder's name, id,
    /// unit or NIP ([`holder_search`]); for the other lists, text matched anywhere in names
    /// and ids. Case-insensitive.
    #[serde(default)]
    pub q: Option<String>,
    /// Page number, from 1.
    #[serde(default)]
    pub page: Option<u32>,
    /// Rows per page, 1 to [`MAX_PER_PAGE`] (default 25).
    #[serde(default)]
    pub per_page: Option<u32>,
}

/// A checked page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The `LIKE` pattern of the search (`%` alone when none).
    pub pattern: String,
    /// The search's normalised words ([`holder_search::words`]), `None` when none was given
    /// (an empty list: a search with nothing a word can hold, which matches nothing).
    pub search: Option<Vec<String>>,
    /// Page number, from 1.
    pub page: i64,
    /// Rows per page.
    pub per_page: i64,
}

impl PageQuery {
    /// Checks the bounds: a page request never makes the server read more than one page.
    pub fn check(&self) -> Result<Page, FieldError> {
        let page = self.page.unwrap_or(1);
        if !(1..=1_000_000).contains(&page) {
            return Err(FieldError::new("page", "expected 1 to 1000000"));
        }
        let per_page = self.per_page.unwrap_or(25);
        if !(1..=MAX_PER_PAGE).contains(&per_page) {
            return Err(FieldError::new(
                "per_page",
                format!("expected 1 to {MAX_PER_PAGE}"),
            ));
        }
        let (pattern, search) = match self.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            None => ("%".to_string(), None),
            Some(q) => {
                let q = crate::input::single_line("q", q, 100)?;
                let mut words = holder_search::words(&q);
                words.sort();
                words.dedup();
                if words.len() > holder_search::MAX_WORDS {
                    return Err(FieldError::new(
                        "q",
                        format!("at most {} words", holder_search::MAX_WORDS),
                    ));
                }
                (format!("%{}%", escape_like(&q.to_lowercase())), Some(words))
            }
        };
        Ok(Page {
            pattern,
            search,
            page: i64::from(page),
            per_page: i64::from(per_page),
        })
    }
}

impl Page {
    /// The first page of 25 rows, no search.
    pub fn first() -> Page {
        Page {
            pattern: "%".into(),
            search: None,
            page: 1,
            per_page: 25,
        }
    }

    /// Rows to skip.
    pub fn offset(&self) -> i64 {
        (self.page - 1) * self.per_page
    }
}

/// `LIKE` text with its wildcards escaped (the queries say `ESCAPE '\'`).
fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One page of a list.
#[derive(Debug, Clone, Serialize)]
pub struct Paged<T> {
    /// The rows.
    pub items: Vec<T>,
    /// This page's number.
    pub page: i64,
    /// Rows per page.
    pub per_page: i64,
    /// Rows matching the search, on every page.
    pub total: i64,
}

/// Who revokes and why (a removal request, a lost card, …).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeInput {
    /// Why.
    pub reason: String,
    /// Reference of the removal request.
    pub request_ref: String,
}

impl RevokeInput {
    pub(crate) fn check(&self) -> Result<RevokeInput, FieldError> {
        Ok(RevokeInput {
            reason: crate::input::single_line("reason", &self.reason, 200)?,
            request_ref: crate::input::single_line("request_ref", &self.request_ref, 100)?,
        })
    }
}

/// A card's short public form: `c:` and the first 8 hex digits of its hash.
pub fn masked_hash(hash_hex: &str) -> String {
    format!("c:{}", hash_hex.get(..8).unwrap_or(hash_hex))
}
