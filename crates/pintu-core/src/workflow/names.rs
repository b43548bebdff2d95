//! The workflow's named things: the roles of the SOP, the kinds of request, the label language.
//!
//! Each has a stable lowercase wire name (`as_str`, `FromStr`, serde) that the office database and
//! API store, and labels in Indonesian and English for the console. Wire names never change; labels
//! may.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::text::quoted;

/// The language of a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Bahasa Indonesia (the console's default).
    Id,
    /// English.
    En,
}

/// A name that is not one of a closed set (a role, a request kind, a stage, an action).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown {what} {}; expected one of: {expected}", quoted(name))]
pub struct UnknownName {
    /// What was being named ("role", "request kind", ...).
    pub what: &'static str,
    /// The name given.
    pub name: String,
    /// The accepted names, comma-separated.
    pub expected: &'static str,
}

/// Implements `as_str`, `ALL`, `Display` and `FromStr` for a fieldless enum from one table, so
/// the wire names exist in exactly one place.
macro_rules! named {
    ($ty:ident, $what:literal, $expected:literal, [$($variant:ident => $name:literal),+ $(,)?]) => {
        impl $ty {
            /// Every value, in the SOP's order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The stable wire name (database, API, config).
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $ty {
            type Err = $crate::workflow::UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    _ => Err($crate::workflow::UnknownName { what: $what, name: s.to_owned(), expected: $expected }),
                }
            }
        }
    };
}
pub(crate) use named;

/// A role of the SOP. One person (account) may hold several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Files requests (pemohon: a unit's staff, a host of a visit).
    Requester,
    /// Registers visitors, keeps their KTP, carries out approved requests, tells the requester.
    Helpdesk,
    /// Verifies a request against the current list and the facts (koordinator).
    Coordinator,
    /// Approves or rejects (Kepala Bidang / Kepala Seksi); signs lists.
    Approver,
    /// Disposes incoming requests to the chain (Kepala Dinas).
    Head,
    /// The technical team: escorts visitors, works in the server room.
    Technical,
    /// Reads everything, changes nothing.
    Auditor,
    /// Manages accounts and configuration.
    Administrator,
}

named!(Role, "role",
    "requester, helpdesk, coordinator, approver, head, technical, auditor, administrator", [
    Requester => "requester",
    Helpdesk => "helpdesk",
    Coordinator => "coordinator",
    Approver => "approver",
    Head => "head",
    Technical => "technical",
    Auditor => "auditor",
    Administrator => "administrator",
]);

impl Role {
    /// The label shown to people.
    pub fn label(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Role::Requester, Lang::Id) => "Pemohon",
            (Role::Requester, Lang::En) => "Requester",
            (Role::Helpdesk, _) => "Helpdesk",
            (Role::Coordinator, Lang::Id) => "Koordinator",
            (Role::Coordinator, Lang::En) => "Coordinator",
            (Role::Approver, Lang::Id) => "Kepala Bidang (Kabid)",
            (Role::Approver, Lang::En) => "Approver (Head of Division)",
            (Role::Head, Lang::Id) => "Kepala Dinas (Kadis)",
            (Role::Head, Lang::En) => "Head of Agency (Kadis)",
            (Role::Technical, Lang::Id) => "Tim Teknis",
            (Role::Technical, Lang::En) => "Technical team",
            (Role::Auditor, _) => "Auditor",
            (Role::Administrator, _) => "Administrator",
        }
    }
}

/// What a request asks for. Decides what fulfilling it means (see [`super::Effect::Fulfil`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// Access for a staff member: fulfilled by enrolling a card and publishing the list.
    StaffAccess,
    /// A visit: fulfilled by reserving a visitor badge for the approved window.
    Visit,
    /// Removal of access: fulfilled by revoking and publishing the list.
    Removal,
    /// Server custody (colocation: a server placed in or taken out of the room): fulfilled by
    /// recording the custody.
    ServerCustody,
}

named!(RequestKind, "request kind", "staff_access, visit, removal, server_custody", [
    StaffAccess => "staff_access",
    Visit => "visit",
    Removal => "removal",
    ServerCustody => "server_custody",
]);

impl RequestKind {
    /// The label shown to people.
    pub fn label(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (RequestKind::StaffAccess, Lang::Id) => "Akses pegawai",
            (RequestKind::StaffAccess, Lang::En) => "Staff access",
            (RequestKind::Visit, Lang::Id) => "Kunjungan",
            (RequestKind::Visit, Lang::En) => "Visit",
            (RequestKind::Removal, Lang::Id) => "Pencabutan akses",
            (RequestKind::Removal, Lang::En) => "Access removal",
            (RequestKind::ServerCustody, Lang::Id) => "Penitipan server",
            (RequestKind::ServerCustody, Lang::En) => "Server custody",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_str_and_serde() {
        for &r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
            assert_eq!(serde_json::to_string(&r).ok(), Some(format!("\"{r}\"")));
            assert!(!r.label(Lang::Id).is_empty() && !r.label(Lang::En).is_empty());
        }
        for &k in RequestKind::ALL {
            assert_eq!(k.as_str().parse::<RequestKind>(), Ok(k));
            assert_eq!(serde_json::to_string(&k).ok(), Some(format!("\"{k}\"")));
        }
        assert_eq!(Role::ALL.len(), 8);
    }

    #[test]
    fn sop_labels() {
        assert_eq!(Role::Head.label(Lang::Id), "Kepala Dinas (Kadis)");
        assert_eq!(Role::Approver.label(Lang::Id), "Kepala Bidang (Kabid)");
        assert_eq!(Role::Coordinator.label(Lang::Id), "Koordinator");
        assert_eq!(Role::Technical.label(Lang::Id), "Tim Teknis");
        assert_eq!(Role::Requester.label(Lang::Id), "Pemohon");
    }

    #[test]
    fn unknown_names_say_what_is_accepted() {
        let e = "kabid".parse::<Role>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown role \"kabid\"; expected one of: requester, helpdesk, coordinator, approver, \
             head, technical, auditor, administrator"
        );
        // Names are exact: no case folding, so the database holds one spelling.
        assert!("Head".parse::<Role>().is_err());
        assert!("visit ".parse::<RequestKind>().is_err());
    }
}
