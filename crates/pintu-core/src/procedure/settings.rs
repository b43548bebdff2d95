//! The procedure's settings: everything it needs from the door's config, with the defaults.

use std::time::Duration;

use crate::escort::EscortSettings;
use crate::flood::FloodSettings;
use crate::presence::AntiPassback;

/// Everything the procedure needs from the door's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcedureSettings {
    /// This door's id (entries may name doors).
    pub door: String,
    /// The escort rule.
    pub escort: EscortSettings,
    /// Anti-passback mode. Default off.
    pub anti_passback: AntiPassback,
    /// How often `visit.overstay` repeats while a visitor stays past the window. Default 15 min.
    pub overstay_repeat: Duration,
    /// Unknown-card flood lockout.
    pub flood: FloodSettings,
    /// A wall clock this far below the trusted floor still counts as trusted. Default 5 s.
    pub clock_tolerance: Duration,
    /// Let visitor badges open while the clock is untrusted (decided on the floor, a lower bound
    /// that cannot show a window has not ended). Default false: they are denied
    /// `clock_untrusted`.
    pub visitors_when_clock_untrusted: bool,
    /// How far past the newest signed time (a list's `issued_at`) a wall-clock reading may raise
    /// the trusted-time floor ([`clock_ceiling`](super::trusted_time::clock_ceiling)). Default 1 h.
    pub clock_max_ahead: Duration,
    /// Someone recorded inside this long is dropped from presence (`presence.expired`): a door
    /// without exit information cannot see anyone leave. `None`: never. Default `None` (the
    /// config gives entry-only doors 12 h).
    pub presence_expiry: Option<Duration>,
}

impl ProcedureSettings {
    /// The defaults for `door`.
    pub fn new(door: impl Into<String>) -> Self {
        ProcedureSettings {
            door: door.into(),
            escort: EscortSettings::default(),
            anti_passback: AntiPassback::Off,
            overstay_repeat: Duration::from_secs(15 * 60),
            flood: FloodSettings::default(),
            clock_tolerance: Duration::from_secs(5),
            visitors_when_clock_untrusted: false,
            clock_max_ahead: Duration::from_secs(3600),
            presence_expiry: None,
        }
    }
}
