//! Lock commands: what the door state machine ([`super::doorstate`]) asks of the relay.

/// What to do with the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockCommand {
    /// Release the lock (energise or de-energise as wired).
    Unlock,
    /// Return to the locked, safe state.
    Secure,
}
