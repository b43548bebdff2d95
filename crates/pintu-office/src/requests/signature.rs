//! A request's decision is the approver's signature (`docs/workflow.md`, "The decision is a
//! signature").
//!
//! To approve or reject, the approver gives their passphrase: [`sign_decision`] checks with the
//! workflow that they may decide, unlocks their own active key (the signing service's unlock,
//! with its throttle on wrong passphrases), signs the [`DecisionStatement`] built from the
//! request as it is now and checks the signature, all **before** the write transaction opens
//! (Argon2id takes about half a second; no write lock is held through it). `act` then checks
//! inside its transaction that the request still gives the same statement ([`check`]; a change
//! meanwhile is `RequestError::Changed`) and stores it with the step ([`store`]), the audit row
//! naming the key and the signature's digest ([`audit_after`]). The passphrase is never stored,
//! logged or audited.
//!
//! Reading a request rebuilds each decision's statement from the rows and verifies the stored
//! signature against the key's registered public half ([`attach`]); [`verify_all`] does it for
//! every request (`pintu-office requests verify`), so a decision edited with plain SQL is found.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _};
use pintu_core::workflow::{
    decision_of, history_sha256, Action, Chain, DecisionStatement, StepRecord,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::store::state_of;
use super::{RequestError, RequestView, StepView};
use crate::auth::Actor;
use crate::db::{now_ms, Db, Tx};
use crate::input::FieldError;
use crate::signing::{Signer, SigningError};

/// A decision signed by its approver, ready to be stored with its step.
#[derive(Debug, Clone)]
pub struct SignedDecision {
    /// The statement's exact bytes (UTF-8 text).
    pub statement: String,
    /// ed25519 signature over them, base64.
    pub signature: String,
    /// The key that signed.
    pub key_id: String,
    /// The approver's account id.
    pub account_id: String,
    /// The site named in the statement.
    pub site: String,
    /// When it was signed (Unix ms).
    pub signed_at_ms: i64,
    /// `service` (unlocked here with the passphrase).
    pub how: &'static str,
}

/// A decision step's signature as the request view shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StepSignature {
    /// The key that signed.
    pub key_id: String,
    /// The approver (account id).
    pub approver_id: String,
    /// When it was signed (Unix ms).
    pub signed_at_ms: i64,
    /// `service` or `offline`.
    pub how: String,
    /// SHA-256 of the signed statement, hex.
    pub statement_sha256: String,
    /// The signature, base64.
    pub signature: String,
    /// Whether, now, the statement rebuilt from the request's rows is the stored one and the
    /// signature verifies over it with the key's registered public half.
    pub verified: bool,
    /// Why not, when it does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The statement of deciding `action` on `view`, as step `n` (from 1), by `approver` with
/// `key_id` at `signed_at_ms`: the request's content and the steps before `n`. `None` when the
/// action is no decision.
pub fn statement_of(
    view: &RequestView,
    n: usize,
    action: &Action,
    approver: &str,
    site: &str,
    key_id: &str,
    signed_at_ms: i64,
) -> Option<DecisionStatement> {
    let (decision, text) = decision_of(action)?;
    let state = state_of(view);
    let earlier: &[StepRecord] = &state.history[..n.saturating_sub(1).min(state.history.len())];
    Some(DecisionStatement {
        site: site.to_string(),
        request_id: view.id.clone(),
        reference: view.reference.clone(),
        kind: view.kind,
        unit: view.unit.clone(),
        subject_name: view.subject_name.clone(),
        subject_nip: view.subject_nip.clone(),
        doors: view.doors.clone(),
        window_from_ms: view.window_from_ms,
        window_until_ms: view.window_until_ms,
        reason: view.reason.clone(),
        letter_sha256: view.letter_sha256.clone(),
        decision,
        text: text.to_string(),
        approver: approver.to_string(),
        key_id: key_id.to_string(),
        signed_at_ms,
        history_sha256: history_sha256(earlier),
    })
}

/// The approver `actor` signs deciding `action` on request `id`, unlocking their key with
/// `passphrase`. Refused, before anything is unlocked, when the workflow refuses the step.
#[allow(clippy::too_many_arguments)]
pub async fn sign_decision(
    db: &Db,
    chain: &Chain,
    signer: &Signer,
    site: &str,
    actor: &Actor,
    id: &str,
    action: &Action,
    passphrase: &str,
) -> Result<SignedDecision, RequestError> {
    // The workflow decides first: a refused step must not cost a passphrase attempt.
    let view = super::offline::decidable(db, chain, actor, id, action, "passphrase").await?;
    let account = signer.account(actor.account_id()).await.map_err(signing)?;
    let target = format!("request:{}", view.reference);
    let (key, secret) = signer
        .unlock(&account, passphrase, &target)
        .await
        .map_err(signing)?;
    let signed_at_ms = now_ms();
    let n = view.history.len() + 1;
    let Some(statement) = statement_of(
        &view,
        n,
        action,
        &account.id,
        site,
        &key.key_id,
        signed_at_ms,
    ) else {
        return Err(FieldError::new("action", "not a decision").into());
    };
    let bytes = statement.to_bytes();
    let signature = secret.sign(&bytes);
    // The secret is zeroized here, before anything else is awaited.
    drop(secret);
    if !verifies(&key.public_key, &bytes, &signature.to_bytes()) {
        return Err(RequestError::Signing(SigningError::SealedKeyDamaged(
            key.key_id,
        )));
    }
    Ok(SignedDecision {
        statement: String::from_utf8_lossy(&bytes).into_owned(),
        signature: B64.encode(signature.to_bytes()),
        key_id: key.key_id,
        account_id: account.id,
        site: site.to_string(),
        signed_at_ms,
        how: "service",
    })
}

fn signing(e: SigningError) -> RequestError {
    match e {
        SigningError::NoKey(account) => RequestError::NoKey { account },
        SigningError::KeyHeldOffline(key_id) => RequestError::KeyHeldOffline { key_id },
        e => RequestError::Signing(e),
    }
}

/// Inside `act`'s transaction, with the request as loaded there (`before`): a decision needs its
/// signature, and the signature must be over the statement this request gives now, by the
/// acting account. Other actions carry none.
pub(super) fn check(
    signed: Option<&SignedDecision>,
    before: &RequestView,
    actor_id: &str,
    action: &Action,
) -> Result<(), RequestError> {
    let decision = decision_of(action).is_some();
    match signed {
        None if decision => Err(FieldError::new(
            "passphrase",
            "an approval or a rejection is the approver's signature: give the passphrase of \
             your signing key (or, for a key held offline, `signature_file`)",
        )
        .into()),
        None => Ok(()),
        Some(_) if !decision => {
            Err(FieldError::new("passphrase", "only an approval or a rejection is signed").into())
        }
        Some(s) => {
            let rebuilt = statement_of(
                before,
                before.history.len() + 1,
                action,
                actor_id,
                &s.site,
                &s.key_id,
                s.signed_at_ms,
            )
            .map(|st| st.to_bytes());
            if s.account_id != actor_id || rebuilt.as_deref() != Some(s.statement.as_bytes()) {
                // Someone stepped or edited the request between the signature and now.
                return Err(RequestError::Changed);
            }
            Ok(())
        }
    }
}

/// Stores the signature of step `n`, in `act`'s transaction.
pub(super) async fn store(
    tx: &mut Tx,
    request_id: &str,
    n: i64,
    s: &SignedDecision,
) -> Result<(), RequestError> {
    sqlx::query(
        "INSERT INTO request_signatures (request_id, n, key_id, account_id, site, \
         signed_at_ms, statement, signature, how) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(request_id)
    .bind(n)
    .bind(&s.key_id)
    .bind(&s.account_id)
    .bind(&s.site)
    .bind(s.signed_at_ms)
    .bind(&s.statement)
    .bind(&s.signature)
    .bind(s.how)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The step's audit `after`, with the key and the digests of the statement and signature
/// (never the passphrase) when signed.
pub(super) fn audit_after(
    mut after: serde_json::Value,
    signed: Option<&SignedDecision>,
) -> serde_json::Value {
    if let (Some(s), Some(map)) = (signed, after.as_object_mut()) {
        map.insert(
            "signature".into(),
            serde_json::json!({
                "key": s.key_id,
                "how": s.how,
                "statement_sha256": hex::encode(Sha256::digest(s.statement.as_bytes())),
                "signature_sha256": hex::encode(Sha256::digest(s.signature.as_bytes())),
            }),
        );
    }
    after
}

fn verifies(public_key: &str, message: &[u8], signature: &[u8]) -> bool {
    let Ok(public) = pintu::core::list::decode_public_key(public_key) else {
        return false;
    };
    let Ok(raw) = <[u8; 64]>::try_from(signature) else {
        return false;
    };
    public
        .verify_strict(message, &Signature::from_bytes(&raw))
        .is_ok()
}

/// One stored signature row with its key's registered public half and account.
struct Row_ {
    n: i64,
    key_id: String,
    account_id: String,
    site: String,
    signed_at_ms: i64,
    statement: String,
    signature: String,
    how: String,
    public_key: Option<String>,
    key_account: Option<String>,
}

async fn rows_of(tx: &mut Tx, request_id: &str) -> Result<Vec<Row_>, RequestError> {
    let rows = sqlx::query(
        "SELECT s.n, s.key_id, s.account_id, s.site, s.signed_at_ms, s.statement, s.signature, \
         s.how, k.public_key, k.account_id FROM request_signatures s \
         LEFT JOIN approver_keys k ON k.id = s.key_id WHERE s.request_id = $1 ORDER BY s.n",
    )
    .bind(request_id)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Row_ {
                n: r.try_get(0)?,
                key_id: r.try_get(1)?,
                account_id: r.try_get(2)?,
                site: r.try_get(3)?,
                signed_at_ms: r.try_get(4)?,
                statement: r.try_get(5)?,
                signature: r.try_get(6)?,
                how: r.try_get(7)?,
                public_key: r.try_get(8)?,
                key_account: r.try_get(9)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(RequestError::from)
}

/// Why the stored signature of `row` does not hold for `view` now, if it does not.
fn problem_of(view: &RequestView, row: &Row_) -> Option<String> {
    let Some(step) = usize::try_from(row.n)
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|i| view.history.get(i))
    else {
        return Some(format!("step {} does not exist", row.n));
    };
    if decision_of(&step.action).is_none() {
        return Some(format!(
            "step {} is a {}, not a decision",
            row.n,
            step.action.kind()
        ));
    }
    if step.actor_id != row.account_id {
        return Some(format!(
            "step {} was taken by {:?}, the signature is by {:?}",
            row.n, step.actor_id, row.account_id
        ));
    }
    let (Some(public), Some(key_account)) = (&row.public_key, &row.key_account) else {
        return Some(format!("key {:?} is not registered", row.key_id));
    };
    if *key_account != row.account_id {
        return Some(format!(
            "key {:?} belongs to {key_account:?}, not to the approver",
            row.key_id
        ));
    }
    let rebuilt = statement_of(
        view,
        row.n as usize,
        &step.action,
        &row.account_id,
        &row.site,
        &row.key_id,
        row.signed_at_ms,
    )?
    .to_bytes();
    if rebuilt != row.statement.as_bytes() {
        return Some(
            "the request's rows no longer give the statement that was signed (edited after \
             the decision)"
                .into(),
        );
    }
    let raw = B64.decode(row.signature.trim()).unwrap_or_default();
    if !verifies(public, &rebuilt, &raw) {
        return Some(format!(
            "the signature does not verify with key {:?}",
            row.key_id
        ));
    }
    None
}

/// Puts each decision step's signature, verified now, on `view` (loaded in `tx`).
pub(super) async fn attach(tx: &mut Tx, view: &mut RequestView) -> Result<(), RequestError> {
    for row in rows_of(tx, &view.id).await? {
        let problem = problem_of(view, &row);
        let shown = StepSignature {
            key_id: row.key_id.clone(),
            approver_id: row.account_id.clone(),
            signed_at_ms: row.signed_at_ms,
            how: row.how.clone(),
            statement_sha256: hex::encode(Sha256::digest(row.statement.as_bytes())),
            signature: row.signature.clone(),
            verified: problem.is_none(),
            problem,
        };
        if let Some(step) = view.history.iter_mut().find(|s| s.n == row.n) {
            step.signature = Some(shown);
        }
    }
    Ok(())
}

/// One decision that does not hold.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Failure {
    /// The request's reference.
    pub reference: String,
    /// The step.
    pub n: i64,
    /// What is wrong.
    pub problem: String,
}

/// What [`verify_all`] found.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Verdict {
    /// Decision steps checked.
    pub decisions: usize,
    /// Signatures that verified.
    pub verified: usize,
    /// Every decision that did not.
    pub failures: Vec<Failure>,
}

/// Checks every decision of every request: each approve or reject step must have a signature
/// whose statement, rebuilt from the rows now, is the stored one and verifies with the key's
/// registered public half; a signature row of no decision step is reported too.
pub async fn verify_all(db: &Db, chain: &Chain) -> Result<Verdict, RequestError> {
    let ids: Vec<String> = sqlx::query(
        "SELECT id FROM requests WHERE id IN (SELECT request_id FROM request_steps WHERE \
         action IN ('approve', 'reject')) OR id IN (SELECT request_id FROM request_signatures) \
         ORDER BY created_at_ms, id",
    )
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|r| r.try_get(0))
    .collect::<Result<_, _>>()?;
    let mut verdict = Verdict::default();
    for id in ids {
        // One read transaction per request: its rows and signatures as one snapshot.
        let mut tx = db.pool().begin().await?;
        let view = super::store::load_unchecked(&mut tx, chain, &id).await?;
        let rows = rows_of(&mut tx, &id).await?;
        tx.commit().await?;
        let mut fail = |n: i64, problem: String| {
            verdict.failures.push(Failure {
                reference: view.reference.clone(),
                n,
                problem,
            })
        };
        for step in view.history.iter().filter(|s| is_decision(s)) {
            verdict.decisions += 1;
            match rows.iter().find(|r| r.n == step.n) {
                None => fail(step.n, "the decision has no signature".into()),
                Some(row) => match problem_of(&view, row) {
                    None => verdict.verified += 1,
                    Some(problem) => fail(step.n, problem),
                },
            }
        }
        for row in &rows {
            let of_decision = view.history.iter().any(|s| s.n == row.n && is_decision(s));
            if !of_decision {
                fail(
                    row.n,
                    format!("a signature for step {}, which is no decision", row.n),
                );
            }
        }
    }
    Ok(verdict)
}

fn is_decision(step: &StepView) -> bool {
    decision_of(&step.action).is_some()
}
