//! What the handle and the door task say to each other: the requests the handle sends the door
//! task ([`DoorMsg`], each answered on a oneshot where the caller waits), and the view the task
//! publishes of its state ([`DoorView`], read by status, `pintuctl who` and the command checks).
//!
//! The door task owns its policy state (lockdown, door contact, presence, the lock's state);
//! nothing else writes it. The handle asks the task to change it and reads the published view.

use std::time::Instant;

use jiff::Timestamp;
use tokio::sync::oneshot;

use crate::core::list::Role;
use crate::door::control::{Captured, ClockInfo, Occupant, TapOutcome};
use crate::door::hw::{CardRead, DoorInput, LockState};

/// A request to the door task.
pub(crate) enum DoorMsg {
    /// Health probe for the watchdog: answered only if the door task's loop is turning.
    Ping { reply: oneshot::Sender<()> },
    /// A card read: decided (or captured); the outcome goes to `reply` if someone waits.
    Tap {
        read: CardRead,
        reply: Option<oneshot::Sender<TapOutcome>>,
    },
    /// A door input change (contact, exit button).
    Input {
        input: DoorInput,
        reply: oneshot::Sender<()>,
    },
    /// A signed `unlock_once` command: release as for a grant (its event is already recorded).
    RemoteRelease { reply: oneshot::Sender<()> },
    /// A verified command's `issued_at` (the office's clock): a basis for how far clock readings
    /// may raise the trusted-time floor.
    CommandTime { issued_at: Timestamp },
    /// A signed `reset_time_floor`: the floor becomes `to`; replies with the floor before.
    ResetTimeFloor {
        to: Timestamp,
        reply: oneshot::Sender<Option<Timestamp>>,
    },
    /// A signed `lockdown` (`Some(role)`) or `release_lockdown` (`None`); replies with the
    /// lockdown in force before.
    SetLockdown {
        role: Option<Role>,
        reply: oneshot::Sender<Option<Role>>,
    },
    /// Who is inside, built for the asker (status carries only the counts).
    Who {
        reply: oneshot::Sender<Vec<Occupant>>,
    },
    /// Enrollment: the next tap (on `reader`, or any) before `deadline` is captured, not decided.
    Capture {
        reader: Option<String>,
        deadline: Instant,
        by: String,
        reply: oneshot::Sender<Result<Captured, String>>,
    },
}

/// The door task's state as it last published it (a `tokio::sync::watch` value).
#[derive(Debug, Clone)]
pub(crate) struct DoorView {
    /// The lock's state after the last command that succeeded.
    pub lock: LockState,
    /// The role still admitted during a lockdown (signed command).
    pub lockdown: Option<Role>,
    /// Door contact as last reported (`true` = open); `None` until an input says.
    pub contact: Option<bool>,
    /// How many are inside (the list itself is asked of the task: [`DoorMsg::Who`]).
    pub occupancy: usize,
    /// How many of them are visitors.
    pub visitors: usize,
    /// The clock as the procedure sees it; `None` until the task's first look.
    pub clock: Option<ClockInfo>,
}

impl DoorView {
    /// The view before the door task runs: lock secured (the start drove it so), nobody inside.
    pub fn at_start(lockdown: Option<Role>) -> Self {
        DoorView {
            lock: LockState::Secured,
            lockdown,
            contact: None,
            occupancy: 0,
            visitors: 0,
            clock: None,
        }
    }

    /// The time taps are decided on and commands checked against: `wall`, or the trusted time
    /// the door task last saw (at most a second old) if that is later (the clock is behind the
    /// floor).
    pub fn trusted_now(&self, wall: Timestamp) -> Timestamp {
        self.clock.as_ref().map_or(wall, |c| c.effective.max(wall))
    }
}
