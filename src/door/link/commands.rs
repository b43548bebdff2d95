//! Signed commands from the office (`{prefix}/{site}/{door}/commands`): verified against the
//! command policy on the trusted time, recorded durably by id (never carried out twice), then
//! handed to the door.

use crate::core::command;
use crate::core::event::{EventDraft, EventKind};
use crate::core::text::bounded;

use super::Link;

impl Link {
    pub(super) async fn on_command(&mut self, bytes: &[u8]) {
        let Some(policy) = &self.policy else { return };
        // Windows are checked on the trusted time: a clock set back does not reopen them.
        let clocks = command::CommandClocks {
            trusted: self.handle.trusted_now(),
            wall: self.handle.now(),
        };
        let verified = match command::verify_at(bytes, policy, clocks) {
            Ok(v) => v,
            Err(why) => {
                tracing::warn!(reason = why.code(), "command rejected: {why}");
                self.handle.record(
                    EventDraft::new(EventKind::CommandRejected)
                        .reason(why.code())
                        .detail(bounded(&why.to_string(), 300)),
                );
                return;
            }
        };
        let store = self.handle.store().clone();
        let (id, expires_at) = (verified.payload.id, verified.payload.expires_at);
        // Ids are kept until their window is below the trusted-time floor; a reset's for good
        // (its window is checked on the wall clock).
        let floor = self.handle.time_floor();
        let forever = verified.payload.command.is_reset();
        let fresh = tokio::task::spawn_blocking(move || {
            store.remember_command(id, expires_at, floor, forever)
        })
        .await;
        match fresh {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                let why = command::CommandRejection::Replayed(id);
                tracing::warn!(%id, "command rejected: {why}");
                self.handle.record(
                    EventDraft::new(EventKind::CommandRejected)
                        .reason(why.code())
                        .detail(why.to_string()),
                );
                return;
            }
            Ok(Err(e)) => {
                // Without a durable record the command could fire twice: refuse it.
                tracing::error!(%id, "cannot record the command id: {e}; command not carried out");
                return;
            }
            Err(e) => {
                tracing::error!("command task failed: {e}");
                return;
            }
        }
        self.handle.execute_command(verified).await;
        self.status_due = true;
    }
}
