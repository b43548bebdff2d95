//! Who is asking: accounts and roles, passwords, server-side sessions, and the [`Actor`]
//! extractor every API handler that needs a login takes. The extractor also guards every state
//! change (any method but GET/HEAD/OPTIONS) against cross-site requests: the `Origin` header, when
//! a browser sends one, must be one of the service's origins, and the `X-CSRF-Token` header must
//! carry the session's CSRF token.

pub mod accounts;
pub mod login;
pub mod password;
pub mod role;
pub mod session;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use subtle::ConstantTimeEq;

pub use role::Role;
pub use session::Session;

use crate::api::{ApiError, AppState};
use crate::audit::AuditActor;

/// The session cookie's name: `__Host-` over HTTPS (the browser then insists on Secure, Path=/
/// and no Domain).
pub fn cookie_name(https: bool) -> &'static str {
    if https {
        "__Host-pintu_session"
    } else {
        "pintu_session"
    }
}

/// The logged-in account making a request.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Its session.
    pub session: Session,
}

impl Actor {
    /// Whether the account holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.session.roles.contains(&role)
    }

    /// Refuses unless the account holds `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        self.require_any(&[role])
    }

    /// Refuses unless the account holds one of `roles`.
    pub fn require_any(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.iter().any(|r| self.has(*r)) {
            return Ok(());
        }
        Err(ApiError::Forbidden {
            needs: roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(" or "),
        })
    }

    /// The account as the audit trail names it.
    pub fn audit(&self) -> AuditActor {
        AuditActor {
            id: self.session.account_id.clone(),
            name: self.session.username.clone(),
        }
    }

    /// The account id.
    pub fn account_id(&self) -> &str {
        &self.session.account_id
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Refuses a state change whose `Origin` is not the service's own. Requests without `Origin`
/// (programs, not browsers: browsers send it on every state-changing request) pass; they still
/// need the CSRF token.
pub fn check_origin(headers: &HeaderMap, state: &AppState) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("(not text)");
    let configured = &state.settings.server.public_origins;
    let allowed = if configured.is_empty() {
        // No origin configured: the origin the browser used to reach us (Host header).
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let scheme = if state.https { "https" } else { "http" };
        !host.is_empty() && origin == format!("{scheme}://{host}")
    } else {
        configured.iter().any(|o| o == origin)
    };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::Origin(pintu_core::text::bounded(origin, 100)))
    }
}

impl FromRequestParts<AppState> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Actor, ApiError> {
        let token =
            cookie(&parts.headers, cookie_name(state.https)).ok_or(ApiError::Unauthenticated)?;
        let session = session::lookup(&state.db, token, state.settings.security.session_idle)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        if !parts.method.is_safe() {
            check_origin(&parts.headers, state)?;
            let sent = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !bool::from(sent.as_bytes().ct_eq(session.csrf_token.as_bytes())) {
                return Err(ApiError::Csrf);
            }
        }
        Ok(Actor { session })
    }
}
