//! The roles of the procedure, as the office stores them (`account_roles.role`).
//!
//! The pure workflow (`pintu_core::workflow`) decides which role may take which step; this is
//! the same set, used here for the API's checks.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A role an account holds (one person may hold several).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Files requests for a unit (pemohon).
    Requester,
    /// Front desk: visitors, badges, KTP, reports.
    Helpdesk,
    /// Verifies requests (koordinator).
    Coordinator,
    /// Approves and signs (Kabid / Kasi).
    Approver,
    /// Disposes requests (Kadis).
    Head,
    /// Escorts visitors (tim teknis).
    Technical,
    /// Reads everything, changes nothing.
    Auditor,
    /// Accounts and settings.
    Administrator,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 8] = [
        Role::Requester,
        Role::Helpdesk,
        Role::Coordinator,
        Role::Approver,
        Role::Head,
        Role::Technical,
        Role::Auditor,
        Role::Administrator,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Requester => "requester",
            Role::Helpdesk => "helpdesk",
            Role::Coordinator => "coordinator",
            Role::Approver => "approver",
            Role::Head => "head",
            Role::Technical => "technical",
            Role::Auditor => "auditor",
            Role::Administrator => "administrator",
        }
    }

    /// Whether logging in with this role needs a second factor (TOTP or a passkey).
    pub fn needs_second_factor(self) -> bool {
        matches!(self, Role::Approver | Role::Administrator)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown role {s:?}; roles: {}",
                    Role::ALL.map(Role::as_str).join(", ")
                )
            })
    }
}
