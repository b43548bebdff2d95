//! `GET /api/v1/audit` (the trail, paged by seq), `GET /api/v1/audit/verify` — for auditors and
//! administrators. Reading the trail is itself recorded (`audit.read`): an export is an event.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, AppState};
use crate::audit::{self, Entry};
use crate::auth::{Actor, Role};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/audit", get(list))
        .route("/api/v1/audit/verify", get(verify))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Page {
    #[serde(default)]
    after: i64,
    #[serde(default = "default_limit")]
    limit: i64,
}

fn default_limit() -> i64 {
    100
}

async fn list(
    State(state): State<AppState>,
    actor: Actor,
    Query(page): Query<Page>,
) -> Result<Json<serde_json::Value>, ApiError> {
    actor.require_any(&[Role::Auditor, Role::Administrator])?;
    let limit = page.limit.clamp(1, 1000);
    let rows = audit::list(&state.db, page.after.max(0), limit).await?;
    audit::record_alone(
        &state.db,
        &state.key,
        &actor.audit(),
        Entry::new("audit.read", "audit").after(json!({
            "after": page.after, "rows": rows.len()
        })),
    )
    .await?;
    let next = rows.last().map(|r| r.seq);
    Ok(Json(json!({ "rows": rows, "next_after": next })))
}

async fn verify(
    State(state): State<AppState>,
    actor: Actor,
) -> Result<Json<serde_json::Value>, ApiError> {
    actor.require_any(&[Role::Auditor, Role::Administrator])?;
    let verdict = audit::verify(&state.db, &state.key).await?;
    let message = verdict.problem.as_ref().map(|p| p.to_string());
    Ok(Json(json!({ "verdict": verdict, "message": message })))
}
