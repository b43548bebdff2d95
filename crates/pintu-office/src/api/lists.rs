//! `POST /api/v1/lists`: build the site's next access list from the database and put it up for
//! the approvers' signatures (helpdesk, administrator). Signing and publishing are the
//! payload routes (`/api/v1/payloads/...`).

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};

use super::{ApiError, AppState};
use crate::auth::{Actor, Role};
use crate::lists::{self, ListError};
use crate::signing::api::{signer, signing_error};
use crate::signing::PayloadInfo;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/lists", post(prepare))
}

async fn prepare(
    State(state): State<AppState>,
    actor: Actor,
) -> Result<Json<PayloadInfo>, ApiError> {
    actor.require_any(&[Role::Helpdesk, Role::Administrator])?;
    let info = lists::prepare(
        &state.db,
        &state.key,
        &signer(&state),
        state.settings.site.card_key_file.as_deref(),
        actor.account_id(),
    )
    .await
    .map_err(list_error)?;
    Ok(Json(info))
}

/// A list error as the API shows it.
pub fn list_error(e: ListError) -> ApiError {
    match e {
        ListError::Directory(e) => e.into(),
        ListError::Signing(e) => signing_error(e),
        ListError::Encode(e) => ApiError::Internal(e),
        ListError::Db(e) => ApiError::Db(e),
    }
}
