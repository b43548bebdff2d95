//! The signing API (`docs/signing.md`, `docs/office-api.md`):
//!
//! - `GET  /api/v1/signing/keys` — every approver key (public halves, retired ones too);
//! - `POST /api/v1/signing/keys` `{"passphrase"}` — a new key for the caller, sealed in the
//!   service (approver); retires the caller's current key;
//! - `POST /api/v1/signing/keys/offline` `{"public_key"}` — register a key the caller holds
//!   offline (approver);
//! - `GET  /api/v1/signing/keys/{key_id}/pub` — the `.pub` file doors' `[[trust.keys]]` take;
//! - `GET  /api/v1/payloads` (pending) and `GET /api/v1/payloads/{id}` (one, with signatures);
//! - `POST /api/v1/payloads` `{"kind", "door", "payload"}` (payload: the bytes, base64) — put a
//!   list or command up for signature (administrator, technical team, approver);
//! - `POST /api/v1/payloads/{id}/signatures` `{"passphrase"}` — sign as the caller (approver);
//! - `GET  /api/v1/payloads/{id}/offline` — the offline-signing file (approver; audited);
//! - `POST /api/v1/payloads/{id}/offline-signatures` — upload a `pintuctl sign` signature file
//!   (approver, administrator);
//! - `POST /api/v1/payloads/{id}/publish` — publish a complete payload on the configured broker,
//!   or, with no broker, mark it published for a file (administrator, technical team, approver);
//! - `GET  /api/v1/payloads/{id}/envelope` — the signed envelope of a published list, as the
//!   file a door's inbox takes.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{
    ApproverKey, PayloadInfo, PayloadKind, Policy, Published, SignOutcome, Signer, SigningError,
};
use crate::api::{ApiError, AppState};
use crate::auth::{Actor, Role};
use crate::input::FieldError;

/// Largest `POST /api/v1/payloads` body: the largest payload file `pintuctl` reads, in base64,
/// with room for the JSON around it (axum's default of 2 MB would refuse a list of ~6,000
/// entries).
pub const PAYLOAD_UPLOAD_MAX_BYTES: usize =
    pintu::office::offline::MAX_PAYLOAD_FILE_BYTES.div_ceil(3) * 4 + (64 << 10);

/// The routes of this module (the lead merges them into the API).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/signing/keys", get(keys).post(create_key))
        .route("/api/v1/signing/keys/offline", post(register_offline_key))
        .route("/api/v1/signing/keys/{key_id}/pub", get(public_key_file))
        .route(
            "/api/v1/payloads",
            get(pending)
                .post(create_payload)
                .layer(DefaultBodyLimit::max(PAYLOAD_UPLOAD_MAX_BYTES)),
        )
        .route("/api/v1/payloads/{id}", get(one))
        .route("/api/v1/payloads/{id}/signatures", post(sign))
        .route("/api/v1/payloads/{id}/offline", get(export_offline))
        .route(
            "/api/v1/payloads/{id}/offline-signatures",
            post(upload_signature),
        )
        .route("/api/v1/payloads/{id}/publish", post(publish))
        .route("/api/v1/payloads/{id}/envelope", get(envelope))
}

/// The signer of the service: its database, key, `[site] threshold` and the passphrase
/// throttle of `[security]`.
pub fn signer(state: &AppState) -> Signer {
    let security = &state.settings.security;
    let policy = Policy {
        max_wrong_passphrases: security.max_wrong_passphrases,
        throttle_window: security.passphrase_window,
        ..Policy::new(state.settings.site.threshold)
    };
    Signer::new(state.db.clone(), (*state.key).clone(), policy)
}

/// A signing error as the API shows it.
pub fn signing_error(e: SigningError) -> ApiError {
    let code = e.code();
    let message = e.to_string();
    match e {
        SigningError::Db(e) => ApiError::Db(e),
        SigningError::Worker(_)
        | SigningError::Write { .. }
        | SigningError::NotAcknowledged { .. } => ApiError::Internal(message),
        SigningError::NoPayload(_) => ApiError::NotFound("payload".into()),
        SigningError::NoAccount(_) => ApiError::NotFound("account".into()),
        SigningError::Throttled { retry_after_s, .. } => ApiError::TooMany {
            retry_after_secs: retry_after_s.max(1) as u64,
        },
        SigningError::Passphrase(_) => ApiError::Invalid(FieldError::new("passphrase", message)),
        SigningError::InvalidPublicKey(_) => {
            ApiError::Invalid(FieldError::new("public_key", message))
        }
        SigningError::InvalidPayload { .. } => {
            ApiError::Invalid(FieldError::new("payload", message))
        }
        SigningError::Offline(_) => ApiError::Invalid(FieldError::new("file", message)),
        SigningError::WrongPassphrase { .. }
        | SigningError::SealedKeyDamaged(_)
        | SigningError::KeyHeldOffline(_)
        | SigningError::AccountDisabled(_)
        | SigningError::NotApprover(_)
        | SigningError::UnknownKey(_)
        | SigningError::KeyRetired(_)
        | SigningError::BadSignature(_)
        | SigningError::OtherBytes { .. } => ApiError::Refused { code, message },
        SigningError::NoKey(_)
        | SigningError::NotPending { .. }
        | SigningError::Expired(_)
        | SigningError::AlreadySigned { .. }
        | SigningError::NotComplete { .. }
        | SigningError::StaleVersion { .. }
        | SigningError::NoBroker
        | SigningError::Broker(_) => ApiError::Conflict { code, message },
    }
}

async fn keys(
    State(state): State<AppState>,
    _actor: Actor,
) -> Result<Json<Vec<ApproverKey>>, ApiError> {
    // Public halves only: any logged-in account may see which keys the doors should trust.
    Ok(Json(
        signer(&state).all_keys().await.map_err(signing_error)?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PassphraseBody {
    passphrase: String,
}

async fn create_key(
    State(state): State<AppState>,
    actor: Actor,
    Json(body): Json<PassphraseBody>,
) -> Result<Json<ApproverKey>, ApiError> {
    actor.require(Role::Approver)?;
    let passphrase = Zeroizing::new(body.passphrase);
    let key = signer(&state)
        .create_key(actor.account_id(), &passphrase, &actor.audit())
        .await
        .map_err(signing_error)?;
    Ok(Json(key))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublicKeyBody {
    public_key: String,
}

async fn register_offline_key(
    State(state): State<AppState>,
    actor: Actor,
    Json(body): Json<PublicKeyBody>,
) -> Result<Json<ApproverKey>, ApiError> {
    actor.require(Role::Approver)?;
    let key = signer(&state)
        .register_public_key(actor.account_id(), &body.public_key, &actor.audit())
        .await
        .map_err(signing_error)?;
    Ok(Json(key))
}

fn file_response(content_type: &'static str, name: &str, bytes: Vec<u8>) -> Response {
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Only characters safe in a quoted header parameter and a file name.
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

async fn public_key_file(
    State(state): State<AppState>,
    _actor: Actor,
    Path(key_id): Path<String>,
) -> Result<Response, ApiError> {
    let text = signer(&state)
        .public_key_file(&key_id)
        .await
        .map_err(|e| match e {
            SigningError::UnknownKey(_) => ApiError::NotFound("key".into()),
            other => signing_error(other),
        })?;
    Ok(file_response(
        "text/plain; charset=utf-8",
        &format!("{key_id}.pub"),
        text.into_bytes(),
    ))
}

async fn pending(
    State(state): State<AppState>,
    _actor: Actor,
) -> Result<Json<Vec<PayloadInfo>>, ApiError> {
    Ok(Json(signer(&state).pending().await.map_err(signing_error)?))
}

async fn one(
    State(state): State<AppState>,
    _actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<PayloadInfo>, ApiError> {
    Ok(Json(
        signer(&state).payload(&id).await.map_err(signing_error)?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPayload {
    kind: PayloadKind,
    #[serde(default)]
    door: Option<String>,
    /// The bytes to sign, base64.
    payload: String,
}

async fn create_payload(
    State(state): State<AppState>,
    actor: Actor,
    Json(new): Json<NewPayload>,
) -> Result<Json<PayloadInfo>, ApiError> {
    actor.require_any(&[Role::Administrator, Role::Technical, Role::Approver])?;
    let bytes = B64
        .decode(new.payload.as_bytes())
        .map_err(|_| ApiError::Invalid(FieldError::new("payload", "not base64")))?;
    let info = signer(&state)
        .create_payload(new.kind, new.door.as_deref(), &bytes, actor.account_id())
        .await
        .map_err(signing_error)?;
    Ok(Json(info))
}

async fn sign(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    Json(body): Json<PassphraseBody>,
) -> Result<Json<SignOutcome>, ApiError> {
    actor.require(Role::Approver)?;
    let passphrase = Zeroizing::new(body.passphrase);
    // Always the caller's own account: nobody signs as someone else.
    let outcome = signer(&state)
        .sign_with_passphrase(&id, actor.account_id(), &passphrase)
        .await
        .map_err(signing_error)?;
    Ok(Json(outcome))
}

async fn export_offline(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    actor.require(Role::Approver)?;
    let file = signer(&state)
        .export_offline(&id, &actor.audit())
        .await
        .map_err(signing_error)?;
    Ok(file_response(
        "application/json",
        &format!("payload-{id}.json"),
        file,
    ))
}

async fn upload_signature(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<SignOutcome>, ApiError> {
    actor.require_any(&[Role::Approver, Role::Administrator])?;
    if body.len() > pintu::office::offline::MAX_SIGNATURE_FILE_BYTES {
        return Err(ApiError::Invalid(FieldError::new(
            "file",
            "too large for a signature file",
        )));
    }
    let file =
        pintu::office::offline::SignatureFile::parse(&body).map_err(|e| signing_error(e.into()))?;
    if file.payload_id != id {
        return Err(ApiError::Invalid(FieldError::new(
            "payload_id",
            format!("the signature file is for payload {}", file.payload_id),
        )));
    }
    let outcome = signer(&state)
        .import_signature_file(&body, &actor.audit())
        .await
        .map_err(signing_error)?;
    Ok(Json(outcome))
}

async fn publish(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<Published>, ApiError> {
    actor.require_any(&[Role::Administrator, Role::Technical, Role::Approver])?;
    let broker = state
        .settings
        .broker()
        .map_err(|e| ApiError::Internal(format!("broker settings: {e}")))?;
    let s = signer(&state);
    let published = s
        .publish(&id, broker.as_ref(), &actor.audit())
        .await
        .map_err(signing_error)?;
    crate::lists::record_published(&state.db, &state.key, &s, &actor.audit(), &id)
        .await
        .map_err(crate::api::list_error)?;
    Ok(Json(published))
}

async fn envelope(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    actor.require_any(&[Role::Administrator, Role::Technical, Role::Approver])?;
    let s = signer(&state);
    let info = s.payload(&id).await.map_err(signing_error)?;
    if info.status != "published" {
        return Err(ApiError::Conflict {
            code: "not_published",
            message: format!("payload {id} is {}: publish it first", info.status),
        });
    }
    let bytes = s.envelope(&id).await.map_err(signing_error)?;
    let name = match (info.door.as_deref(), info.list_version) {
        (None, Some(v)) => format!("{}-v{v}.signed", info.site),
        (Some(d), Some(v)) => format!("{}-{d}-v{v}.signed", info.site),
        _ => format!("{}-command-{id}.signed", info.site),
    };
    Ok(file_response("application/json", &name, bytes))
}
