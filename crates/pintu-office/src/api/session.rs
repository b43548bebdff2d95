//! `POST /api/v1/session` (log in), `DELETE /api/v1/session` (log out), `GET /api/v1/me`.

use axum::extract::{Extension, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::{ApiError, AppState, ClientAddr};
use crate::auth::login::{self, LoginForm};
use crate::auth::{check_origin, cookie_name, session, Actor};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/session", post(log_in).delete(log_out))
        .route("/api/v1/me", get(me))
}

async fn log_in(
    State(state): State<AppState>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    Json(form): Json<LoginForm>,
) -> Result<Response, ApiError> {
    // A login from another site's page would log the browser into the attacker's account.
    check_origin(&headers, &state)?;
    let addr = client.map(|c| c.0 .0.ip().to_string()).unwrap_or_default();
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let done = login::attempt(&state, &form, &addr, agent).await?;
    let secure = if state.https { "; Secure" } else { "" };
    let cookie = format!(
        "{}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        cookie_name(state.https),
        done.token,
        state.settings.security.session_lifetime.as_secs()
    );
    let mut response = Json(json!({
        "account": done.account,
        "csrf_token": done.csrf_token,
    }))
    .into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    Ok(response)
}

async fn log_out(State(state): State<AppState>, actor: Actor) -> Result<Response, ApiError> {
    session::revoke(&state.db, &actor.session.token_hash).await?;
    let secure = if state.https { "; Secure" } else { "" };
    let cookie = format!(
        "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}",
        cookie_name(state.https)
    );
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    Ok(response)
}

async fn me(actor: Actor) -> Json<serde_json::Value> {
    let s = &actor.session;
    Json(json!({
        "id": s.account_id,
        "username": s.username,
        "display_name": s.display_name,
        "roles": s.roles,
        "csrf_token": s.csrf_token,
        "session_expires_at_ms": s.expires_at_ms,
    }))
}
