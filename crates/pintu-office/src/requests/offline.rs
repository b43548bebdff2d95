//! Deciding with a key held offline (`docs/workflow.md`, "Approvers with an offline key"): the
//! approver downloads the decision statement as an offline-signing file
//! ([`decision_file`]), signs it with `pintuctl sign --key KEY FILE` on their own machine, and
//! takes the step with the signature file in the body ([`offline_decision`]). The service
//! rebuilds the statement from the request as it is then, checks the file is for exactly those
//! bytes and that the signature verifies with the approver's registered public key; the step is
//! then stored like a decision signed in the service (`how` = `offline`).
//!
//! The file's `payload_id` is `request:<request id>:<signed_at_ms>`: the moment the statement
//! was made is part of what is signed, so it travels with the file.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::Signature;
use pintu::office::offline::{self, PayloadFile, PayloadKind, SignatureFile};
use pintu_core::workflow::{self, decision_of, Action, Chain};

use super::signature::{statement_of, SignedDecision};
use super::store::state_of;
use super::{RequestError, RequestView};
use crate::audit::{self, Entry};
use crate::auth::Actor;
use crate::db::{now_ms, Db};
use crate::input::FieldError;
use crate::secret::ServiceKey;
use crate::signing::{Signer, SigningError};

/// Loads the request and checks, before anything else, that `actor` may take `action` now and
/// that it is a decision (else a refusal naming `field`, what carried the attempt to sign).
pub(super) async fn decidable(
    db: &Db,
    chain: &Chain,
    actor: &Actor,
    id: &str,
    action: &Action,
    field: &'static str,
) -> Result<RequestView, RequestError> {
    let view = super::get(db, chain, actor, id).await?;
    workflow::step(
        chain,
        &state_of(&view),
        &super::workflow_actor(actor),
        action,
        super::ts(now_ms()),
    )?;
    if decision_of(action).is_none() {
        return Err(FieldError::new(field, "only an approval or a rejection is signed").into());
    }
    Ok(view)
}

/// The offline-signing file of `actor`'s decision `action` on request `id`, for their active
/// key (audited as `request.decision_file`). `pintuctl sign --key KEY FILE` signs it.
#[allow(clippy::too_many_arguments)]
pub async fn decision_file(
    db: &Db,
    key: &ServiceKey,
    chain: &Chain,
    signer: &Signer,
    site: &str,
    actor: &Actor,
    id: &str,
    action: &Action,
) -> Result<PayloadFile, RequestError> {
    let view = decidable(db, chain, actor, id, action, "action").await?;
    let Some(active) = signer
        .active_key(actor.account_id())
        .await
        .map_err(RequestError::Signing)?
    else {
        return Err(RequestError::NoKey {
            account: actor.account_id().to_string(),
        });
    };
    let signed_at_ms = now_ms();
    let statement = statement_of(
        &view,
        view.history.len() + 1,
        action,
        actor.account_id(),
        site,
        &active.key_id,
        signed_at_ms,
    )
    .ok_or_else(|| FieldError::new("action", "not a decision"))?;
    let bytes = statement.to_bytes();
    let summary = offline::describe(PayloadKind::Decision, &bytes)
        .unwrap_or_else(|_| format!("decision on request {}", view.reference));
    let file = PayloadFile::new(
        &format!("request:{}:{signed_at_ms}", view.id),
        PayloadKind::Decision,
        &summary,
        &bytes,
    );
    audit::record_alone(
        db,
        key,
        &actor.audit(),
        Entry::new(
            "request.decision_file",
            format!("request:{}", view.reference),
        )
        .after(serde_json::json!({ "key": active.key_id, "statement_sha256": file.sha256 })),
    )
    .await?;
    Ok(file)
}

/// Checks a signature file made offline for `actor`'s decision `action` on request `id` and
/// returns it as a signed decision for `act`. A refused file is audited (`signing.fail`).
#[allow(clippy::too_many_arguments)]
pub async fn offline_decision(
    db: &Db,
    chain: &Chain,
    signer: &Signer,
    site: &str,
    actor: &Actor,
    id: &str,
    action: &Action,
    file: &[u8],
) -> Result<SignedDecision, RequestError> {
    let view = decidable(db, chain, actor, id, action, "action").await?;
    let file =
        SignatureFile::parse(file).map_err(|e| FieldError::new("signature_file", e.to_string()))?;
    let signed_at_ms = file
        .payload_id
        .strip_prefix(&format!("request:{}:", view.id))
        .and_then(|ms| ms.parse::<i64>().ok())
        .ok_or_else(|| {
            FieldError::new(
                "signature_file",
                format!(
                    "the file is for {:?}, not for a decision on request {}",
                    file.payload_id, view.reference
                ),
            )
        })?;
    let target = format!("request:{}", view.reference);
    let refuse = |reason: &'static str, error: SigningError| {
        let target = target.clone();
        let key_id = file.key_id.clone();
        async move {
            signer
                .record_fail_as(&actor.audit(), &target, reason, actor.account_id(), &key_id)
                .await
                .map_err(RequestError::Signing)?;
            Err::<SignedDecision, _>(RequestError::Signing(error))
        }
    };
    let found = signer
        .key_by_public(&file.public_key)
        .await
        .map_err(RequestError::Signing)?;
    let Some(key) = found else {
        return refuse("unknown_key", SigningError::UnknownKey(file.key_id.clone())).await;
    };
    if key.account_id != actor.account_id() {
        return refuse("not_own_key", SigningError::UnknownKey(file.key_id.clone())).await;
    }
    if key.retired_at_ms.is_some() {
        return refuse("key_retired", SigningError::KeyRetired(key.key_id.clone())).await;
    }
    let statement = statement_of(
        &view,
        view.history.len() + 1,
        action,
        actor.account_id(),
        site,
        &key.key_id,
        signed_at_ms,
    )
    .ok_or_else(|| FieldError::new("action", "not a decision"))?;
    let bytes = statement.to_bytes();
    let sha256 = offline::sha256_hex(&bytes);
    if !file.sha256.eq_ignore_ascii_case(&sha256) {
        // The request (or the action's text) is not what was downloaded and signed.
        return refuse(
            "other_bytes",
            SigningError::OtherBytes {
                payload: file.payload_id.clone(),
                file: file.sha256.clone(),
                stored: sha256,
            },
        )
        .await;
    }
    let verified = pintu::core::list::decode_public_key(&key.public_key)
        .ok()
        .zip(
            B64.decode(file.signature.trim())
                .ok()
                .and_then(|raw| <[u8; 64]>::try_from(raw).ok()),
        )
        .is_some_and(|(public, raw)| {
            public
                .verify_strict(
                    &offline::signing_message(PayloadKind::Decision, &bytes),
                    &Signature::from_bytes(&raw),
                )
                .is_ok()
        });
    if !verified {
        return refuse("bad_signature", SigningError::BadSignature(key.key_id)).await;
    }
    Ok(SignedDecision {
        statement: String::from_utf8_lossy(&bytes).into_owned(),
        signature: file.signature.trim().to_string(),
        key_id: key.key_id,
        account_id: actor.account_id().to_string(),
        site: site.to_string(),
        signed_at_ms,
        how: "offline",
    })
}
