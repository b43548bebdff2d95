//! Enrolling a card into the register (`pintuctl card enroll`): everything that can be checked
//! is checked before anyone is asked to present a card ([`Enrollment::prepare`]); once the card
//! is read, it is added to the holder, or the holder is created with it, and the whole register
//! must still sign before it is written ([`Enrollment::add`]).
//!
//! Reading the card (a desk PC/SC reader, or a capture at the door) is the caller's: this module
//! only sees the UID.

use std::path::{Path, PathBuf};

use jiff::Timestamp;

use crate::core::card::{CardKey, Uid};
use crate::core::list::Role;
use crate::office::keys::{self, KeyError};
use crate::office::register::{Enrolled, Holder, LoadedRegister, NewHolder, RegisterError};

/// Why an enrollment cannot happen.
#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    /// Some of the new holder's options are given, not all the required ones.
    #[error("a new holder needs --name, --role, --valid-until, --request-ref and --approver (missing: {})", .0.join(", "))]
    Incomplete(Vec<&'static str>),
    /// New-holder options without a register to add the holder to.
    #[error("--name and the other new-holder options need --register and --holder")]
    NoRegister,
    /// The holder is not in the register and no new holder is described.
    #[error("{}: no holder {holder:?}: give --name, --role, --valid-until, --request-ref and --approver to add one", .path.display())]
    NoHolder {
        /// The register.
        path: PathBuf,
        /// The holder id.
        holder: String,
    },
    /// A new holder is described for a holder who exists.
    #[error("{}: holder {holder:?} already exists: --name, --role and the other new-holder options are only for a new holder", .path.display())]
    HolderExists {
        /// The register.
        path: PathBuf,
        /// The holder id.
        holder: String,
    },
    /// The register cannot be read, edited, checked or written.
    #[error(transparent)]
    Register(#[from] RegisterError),
    /// The card key cannot be loaded.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The holder is missing after the edit (a bug).
    #[error("the enrolled holder is missing from the saved register")]
    Lost,
}

/// The new-holder options of `card enroll`, as given (each optional).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewHolderOptions {
    /// Display name.
    pub name: Option<String>,
    /// Organisational unit.
    pub unit: Option<String>,
    /// Role.
    pub role: Option<Role>,
    /// Start of access.
    pub valid_from: Option<String>,
    /// End of access (exclusive).
    pub valid_until: Option<String>,
    /// Reference of the approved access request.
    pub request_ref: Option<String>,
    /// Who approved it.
    pub approver: Option<String>,
}

impl NewHolderOptions {
    /// The new holder the options describe: `None` when none is given; every required one when
    /// any is.
    pub fn new_holder(self) -> Result<Option<NewHolder>, EnrollError> {
        if self == NewHolderOptions::default() {
            return Ok(None);
        }
        let missing: Vec<&'static str> = [
            ("--name", self.name.is_none()),
            ("--role", self.role.is_none()),
            ("--valid-until", self.valid_until.is_none()),
            ("--request-ref", self.request_ref.is_none()),
            ("--approver", self.approver.is_none()),
        ]
        .into_iter()
        .filter_map(|(flag, absent)| absent.then_some(flag))
        .collect();
        match (
            self.name,
            self.role,
            self.valid_until,
            self.request_ref,
            self.approver,
        ) {
            (Some(name), Some(role), Some(valid_until), Some(request_ref), Some(approver)) => {
                Ok(Some(NewHolder {
                    name,
                    unit: self.unit,
                    role,
                    valid_from: self.valid_from,
                    valid_until,
                    request_ref,
                    approver,
                }))
            }
            _ => Err(EnrollError::Incomplete(missing)),
        }
    }
}

/// What an enrollment did.
#[derive(Debug, Clone)]
pub enum EnrollOutcome {
    /// The holder already had the card: nothing was written.
    AlreadyEnrolled,
    /// A new holder was created with the card.
    HolderCreated(Holder),
    /// The card was added to the holder.
    CardAdded(Holder),
}

/// A checked enrollment, waiting for the card.
pub struct Enrollment {
    reg: LoadedRegister,
    holder: String,
    new: Option<NewHolder>,
    card_key: CardKey,
}

impl Enrollment {
    /// Checks an enrollment into `into` (register, holder id), creating the holder from `new`
    /// when given: the register loads, the holder exists exactly when no new holder is given,
    /// the card key loads. `None` when there is no register (the UID is only shown).
    pub fn prepare(
        into: Option<(&Path, &str)>,
        new: Option<NewHolder>,
    ) -> Result<Option<Enrollment>, EnrollError> {
        let Some((path, holder)) = into else {
            return match new {
                Some(_) => Err(EnrollError::NoRegister),
                None => Ok(None),
            };
        };
        let reg = LoadedRegister::load(path)?;
        reg.refuse_if_imported("enroll", "the console or POST /api/v1/holders/ID/cards")?;
        let exists = reg.register.holders.iter().any(|h| h.id == holder);
        match (exists, &new) {
            (false, None) => {
                return Err(EnrollError::NoHolder {
                    path: path.to_path_buf(),
                    holder: holder.to_string(),
                })
            }
            (true, Some(_)) => {
                return Err(EnrollError::HolderExists {
                    path: path.to_path_buf(),
                    holder: holder.to_string(),
                })
            }
            _ => {}
        }
        let card_key = keys::load_card_key(&reg.card_key_path())?;
        Ok(Some(Enrollment {
            reg,
            holder: holder.to_string(),
            new,
            card_key,
        }))
    }

    /// The register.
    pub fn register(&self) -> &LoadedRegister {
        &self.reg
    }

    /// The holder id.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// `uid`'s keyed hash, masked as doors' events show it.
    pub fn masked(&self, uid: &Uid) -> String {
        self.card_key.hash(uid).masked()
    }

    /// Adds the card to the holder (or creates the holder with it), checks that the whole
    /// register still signs (dates, schedules, duplicates; as of `now`) and writes it.
    pub fn add(&mut self, uid: &Uid, now: Timestamp) -> Result<EnrollOutcome, EnrollError> {
        let change = self.reg.enroll(&self.holder, uid, self.new.as_ref())?;
        if change == Enrolled::AlreadyEnrolled {
            return Ok(EnrollOutcome::AlreadyEnrolled);
        }
        self.reg
            .build_payload(&self.card_key, self.reg.register.list.version + 1, now)?;
        self.reg.save()?;
        let holder = self
            .reg
            .register
            .holders
            .iter()
            .find(|h| h.id == self.holder)
            .cloned()
            .ok_or(EnrollError::Lost)?;
        Ok(match change {
            Enrolled::HolderCreated => EnrollOutcome::HolderCreated(holder),
            _ => EnrollOutcome::CardAdded(holder),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::office::register::testing::{office_dir as office, REGISTER};

    fn budi() -> NewHolderOptions {
        NewHolderOptions {
            name: Some("Budi".into()),
            role: Some(Role::Escort),
            valid_until: Some("2098-01-01".into()),
            request_ref: Some("R-2".into()),
            approver: Some("kabid".into()),
            ..NewHolderOptions::default()
        }
    }

    fn uid(s: &str) -> Uid {
        s.parse().unwrap()
    }

    #[test]
    fn new_holder_options_are_all_or_nothing() {
        assert_eq!(NewHolderOptions::default().new_holder().unwrap(), None);
        let e = NewHolderOptions {
            name: Some("X".into()),
            ..NewHolderOptions::default()
        }
        .new_holder()
        .unwrap_err();
        assert!(
            e.to_string()
                .ends_with("(missing: --role, --valid-until, --request-ref, --approver)"),
            "{e}"
        );
        assert_eq!(budi().new_holder().unwrap().unwrap().name, "Budi");
    }

    #[test]
    fn everything_is_checked_before_the_card_is_read() {
        let (_dir, path) = office();
        let new = budi().new_holder().unwrap();
        assert!(matches!(
            Enrollment::prepare(None, new.clone()),
            Err(EnrollError::NoRegister)
        ));
        assert!(Enrollment::prepare(None, None).unwrap().is_none());
        assert!(matches!(
            Enrollment::prepare(Some((&path, "budi")), None),
            Err(EnrollError::NoHolder { .. })
        ));
        assert!(matches!(
            Enrollment::prepare(Some((&path, "alice")), new),
            Err(EnrollError::HolderExists { .. })
        ));
        std::fs::remove_file(path.with_file_name("card.key")).unwrap();
        assert!(matches!(
            Enrollment::prepare(Some((&path, "alice")), None),
            Err(EnrollError::Key(_))
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), REGISTER);
    }

    #[test]
    fn a_card_is_added_or_a_holder_created_and_the_register_written() {
        let (_dir, path) = office();
        let mut e = Enrollment::prepare(Some((&path, "alice")), None)
            .unwrap()
            .unwrap();
        match e.add(&uid("0A0B0C0D"), Timestamp::now()).unwrap() {
            EnrollOutcome::CardAdded(h) => assert_eq!(h.cards, ["04A1B2C3", "0A0B0C0D"]),
            other => panic!("{other:?}"),
        }
        let mut again = Enrollment::prepare(Some((&path, "alice")), None)
            .unwrap()
            .unwrap();
        let before = std::fs::read_to_string(&path).unwrap();
        assert!(matches!(
            again.add(&uid("0A0B0C0D"), Timestamp::now()).unwrap(),
            EnrollOutcome::AlreadyEnrolled
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);

        let mut new = Enrollment::prepare(Some((&path, "budi")), budi().new_holder().unwrap())
            .unwrap()
            .unwrap();
        match new.add(&uid("01020304"), Timestamp::now()).unwrap() {
            EnrollOutcome::HolderCreated(h) => {
                assert_eq!((h.id.as_str(), h.role), ("budi", Role::Escort))
            }
            other => panic!("{other:?}"),
        }
        let saved = LoadedRegister::load(&path).unwrap();
        assert_eq!(saved.register.holders.len(), 2);
    }

    #[test]
    fn a_card_held_by_another_holder_is_refused_and_nothing_is_written() {
        let (_dir, path) = office();
        let mut e = Enrollment::prepare(Some((&path, "budi")), budi().new_holder().unwrap())
            .unwrap()
            .unwrap();
        let err = e.add(&uid("04A1B2C3"), Timestamp::now()).unwrap_err();
        assert!(
            err.to_string().contains("already held by \"alice\""),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), REGISTER);
    }
}
