//! The API's errors: each becomes a status and a JSON body
//! `{"error": {"code": "...", "message": "...", "field": "..."}}` — `code` stable for programs,
//! `message` for people. Database and internal failures are logged with their detail and shown
//! as a plain "internal error" (no SQL or paths reach a browser).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::db::DbError;
use crate::input::FieldError;

/// A refused or failed API call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No session, or it ended.
    #[error("log in first (no session, or it ended)")]
    Unauthenticated,
    /// Login refused (the same message for an unknown login and a wrong password).
    #[error("{0}")]
    LoginRefused(String),
    /// The account lacks the role.
    #[error("this needs the role {needs}")]
    Forbidden {
        /// The role(s) needed.
        needs: String,
    },
    /// Refused for a reason other than a role (e.g. segregation of duties).
    #[error("{message}")]
    Refused {
        /// Stable code.
        code: &'static str,
        /// Why.
        message: String,
    },
    /// The CSRF token is missing or wrong.
    #[error("missing or wrong CSRF token (header X-CSRF-Token)")]
    Csrf,
    /// The request came from a page of another site.
    #[error("request from another origin ({0}) refused")]
    Origin(String),
    /// A field is wrong.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// Nothing there.
    #[error("{0} not found")]
    NotFound(String),
    /// The change conflicts with the current state.
    #[error("{message}")]
    Conflict {
        /// Stable code.
        code: &'static str,
        /// Why.
        message: String,
    },
    /// Too many attempts; retry after the given seconds.
    #[error("too many attempts; try again in {retry_after_secs} s")]
    TooMany {
        /// Seconds to wait.
        retry_after_secs: u64,
    },
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Anything else that is the service's fault.
    #[error("{0}")]
    Internal(String),
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Db(DbError::Query(e))
    }
}

impl ApiError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::LoginRefused(_) => "login_refused",
            ApiError::Forbidden { .. } => "forbidden",
            ApiError::Refused { code, .. } => code,
            ApiError::Csrf => "csrf",
            ApiError::Origin(_) => "origin",
            ApiError::Invalid(_) => "invalid",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict { code, .. } => code,
            ApiError::TooMany { .. } => "too_many_attempts",
            ApiError::Db(_) | ApiError::Internal(_) => "internal",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated | ApiError::LoginRefused(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. }
            | ApiError::Refused { .. }
            | ApiError::Csrf
            | ApiError::Origin(_) => StatusCode::FORBIDDEN,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::TooMany { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Db(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Db(e) => {
                tracing::error!(error = %e, "database failure");
                "internal error (logged)".to_string()
            }
            ApiError::Internal(e) => {
                tracing::error!(error = %e, "internal failure");
                "internal error (logged)".to_string()
            }
            other => other.to_string(),
        };
        let mut body = json!({ "code": self.code(), "message": message });
        if let ApiError::Invalid(e) = &self {
            body["field"] = json!(e.field);
        }
        let mut response = (status, axum::Json(json!({ "error": body }))).into_response();
        if let ApiError::TooMany { retry_after_secs } = self {
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}
