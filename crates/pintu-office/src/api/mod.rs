//! The HTTP API the console uses (`/api/v1/…`, JSON; documented in `docs/office-api.md`).
//! Every handler that changes state takes an [`Actor`](crate::auth::Actor) (a session, CSRF token
//! and origin checked), checks the role the step needs, and writes its change and its audit
//! record in one transaction.
//!
//! Each area adds its routes here: [`session`] (login, logout, me), [`accounts`] (account
//! administration), [`audit_api`] (the trail, for auditors), [`requests`] (requests and their
//! steps), `signing::api` (approver keys, payloads, signatures, publishing), [`directory`]
//! (holders, cards, badges, visits, doors, rooms; register import/export), [`lists`] (the next
//! list from the database, for signature), [`commands`] (a door command, for signature), `archive::api` (the door-event archive, read only).

mod accounts;
mod audit_api;
mod commands;
mod directory;
mod error;
mod lists;
mod requests;
mod session;

use std::sync::Arc;

use axum::http::{header, HeaderValue};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

pub use error::ApiError;
pub use lists::list_error;

use crate::config::Settings;
use crate::db::Db;
use crate::secret::ServiceKey;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub db: Db,
    /// The service key.
    pub key: Arc<ServiceKey>,
    /// The settings.
    pub settings: Arc<Settings>,
    /// Whether this listener serves HTTPS (cookie names and flags depend on it).
    pub https: bool,
}

/// The client's address, put on each request by the server (for logs, throttling, audit).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub std::net::SocketAddr);

/// The whole API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/health", get(health))
        .merge(session::routes())
        .merge(accounts::routes())
        .merge(audit_api::routes())
        .merge(requests::routes())
        .merge(crate::signing::api::routes())
        .merge(directory::routes())
        .merge(lists::routes())
        .merge(commands::routes())
        .merge(crate::archive::api::routes())
        .fallback(not_found)
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

async fn health(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "database": state.db.backend().as_str(),
        "site": state.settings.site.name,
    }))
}

async fn not_found() -> ApiError {
    ApiError::NotFound("this path".into())
}

/// Headers on every answer: no caching of personal data, no framing, no sniffing.
async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}
