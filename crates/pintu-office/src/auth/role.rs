//! The roles of the procedure: the pure workflow's [`Role`] (stored by its lowercase name in
//! `account_roles.role`), and what the office adds to it.

pub use pintu_core::workflow::Role;

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

/// Whether logging in with this role needs a second factor (TOTP or a passkey): approvers
/// sign lists, administrators manage accounts.
pub fn needs_second_factor(role: Role) -> bool {
    matches!(role, Role::Approver | Role::Administrator)
}
