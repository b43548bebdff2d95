//! `POST /api/v1/commands`: an order to one door (unlock once, lockdown, release the lockdown,
//! capture a card for enrolment, …), built here as the door's command payload and stored for the
//! approvers' signatures like a list; once k approvers signed, `POST
//! /api/v1/payloads/{id}/publish` sends it to the door's command topic. Administrators, the
//! technical team and approvers may order.

use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use jiff::Timestamp;
use pintu::core::command::{self, Action, CommandPayload};
use serde::Deserialize;

use super::{ApiError, AppState};
use crate::auth::{Actor, Role};
use crate::input::FieldError;
use crate::signing::api::{signer, signing_error};
use crate::signing::{PayloadInfo, PayloadKind};

/// How long an order stays valid when the caller does not say (the door's limit for narrow
/// commands such as an unlock is shorter than for a lockdown; the door's own check applies).
const DEFAULT_VALID: Duration = Duration::from_secs(5 * 60);

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/commands", post(order))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Order {
    /// The door.
    door: String,
    /// What to do: the door's command JSON, e.g. `{"type": "unlock_once", "reason": "…"}`.
    command: Action,
    /// Validity in seconds from now (default 300).
    #[serde(default)]
    valid_for_secs: Option<u64>,
}

async fn order(
    State(state): State<AppState>,
    actor: Actor,
    Json(order): Json<Order>,
) -> Result<Json<PayloadInfo>, ApiError> {
    actor.require_any(&[Role::Administrator, Role::Technical, Role::Approver])?;
    let door = order.door.trim().to_string();
    if !pintu::core::list::is_identifier(&door) {
        return Err(FieldError::new("door", "not a door id").into());
    }
    let site = match &state.settings.site.id {
        Some(id) => id.clone(),
        None => crate::directory::register::registered_site(&state.db)
            .await?
            .ok_or_else(|| ApiError::Conflict {
                code: "no_site",
                message: "the doors' site is unknown: set [site] id or import the register".into(),
            })?,
    };
    let valid = order
        .valid_for_secs
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_VALID);
    let window = jiff::SignedDuration::try_from(valid)
        .map_err(|_| FieldError::new("valid_for_secs", "too long"))?;
    let now = Timestamp::now();
    let payload = CommandPayload {
        format: command::COMMAND_PAYLOAD_FORMAT,
        site,
        doors: vec![door.clone()],
        id: uuid::Uuid::new_v4(),
        issued_at: now,
        expires_at: now
            .checked_add(window)
            .map_err(|_| FieldError::new("valid_for_secs", "too long"))?,
        operator: actor.session.username.clone(),
        command: order.command,
    };
    let bytes = serde_json::to_vec(&payload).map_err(|e| ApiError::Internal(e.to_string()))?;
    let info = signer(&state)
        .create_payload(
            PayloadKind::Command,
            Some(&door),
            &bytes,
            actor.account_id(),
        )
        .await
        .map_err(signing_error)?;
    Ok(Json(info))
}
