//! The fulfil step carries the request out, in the step's own transaction: the directory
//! changes, their audit rows, the step and its audit row commit together or not at all
//! (`docs/workflow.md`, "Fulfilment"). Per kind:
//!
//! - staff access: the card read at the desk is enrolled for a holder (an existing one, or one
//!   created from the request's subject with its doors and window);
//! - removal: every card of the subject's holder is revoked, the request as the reason;
//! - visit: a pool badge is reserved for the request's window (a visit is issued; the desk
//!   check-in with the KTP is issue 19);
//! - server custody: nothing to change yet (no custody model, issue 19): the note records it.
//!
//! The directory's rows keep the request they came from (`migrations/0009_request_links.sql`),
//! and the request view lists what the fulfilment changed and whether the list carrying the
//! change has been published (a published list above the version known at fulfilment whose
//! bytes carry the change).

use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use pintu::core::card::Uid;
use pintu::core::list::Role as ListRole;
use pintu_core::workflow::{ActionKind, RequestKind};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{RequestError, RequestView};
use crate::audit::{self, AuditActor, Entry};
use crate::auth::Actor;
use crate::db::{now_ms, Db, Tx};
use crate::directory::holders::{holder_in, HolderInput};
use crate::directory::visits::VisitInput;
use crate::directory::{self, cards, masked_hash, DirectoryError, RevokeInput};
use crate::input::{single_line, FieldError};
use crate::secret::ServiceKey;

/// What the helpdesk gives with the fulfil step (the `fulfilment` field of the step's body).
/// Which fields apply depends on the request's kind; a field given for another kind is refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fulfilment {
    /// Staff access: the card's UID (hex) as the desk reader shows it.
    #[serde(default)]
    pub uid: Option<String>,
    /// Staff access: the holder (register id) the card is for; with `create_holder`, the key
    /// of the holder to create (default the subject's NIP). Removal: whose cards are revoked
    /// (default the holder the request names, else the one whose NIP is the subject's).
    #[serde(default)]
    pub holder: Option<String>,
    /// Staff access: create the holder from the request's subject (name, NIP, unit), doors and
    /// window.
    #[serde(default)]
    pub create_holder: bool,
    /// Visit: the pool badge to reserve.
    #[serde(default)]
    pub badge: Option<String>,
    /// Visit: the host (a staff holder's key).
    #[serde(default)]
    pub host: Option<String>,
    /// Visit: the escort (a holder's key), if named.
    #[serde(default)]
    pub escort: Option<String>,
}

/// The fulfil step's details and what carrying them out needs from the office config.
#[derive(Debug, Clone, Copy, Default)]
pub struct FulfilContext<'a> {
    /// The details sent with the step; `None` records the step (and its note) only.
    pub details: Option<&'a Fulfilment>,
    /// `[site] card_key_file` (a staff access enrolment hashes the card with it).
    pub card_key_file: Option<&'a Path>,
}

/// One change a fulfilment made to the directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `holder.create`, `card.enrol`, `card.revoke` or `visit.reserve`.
    pub change: String,
    /// The holder's key.
    pub holder: Option<String>,
    /// The card's short hash (`c:1a2b3c4d`).
    pub card: Option<String>,
    /// The reserved badge.
    pub badge: Option<String>,
    /// The visit id.
    pub visit: Option<String>,
    /// The card's whole keyed hash (hex), to find it in a published list; not shown.
    #[serde(skip)]
    pub card_hash: Option<String>,
}

/// Whether the list carrying a fulfilment's change has gone out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListFollow {
    /// The highest list version known at fulfilment: the change is in lists above it.
    pub after_version: i64,
    /// The list version recorded at the last publication.
    pub published_version: i64,
    /// A list above `after_version` that carries the change (the enrolled card or the visit
    /// in it, the revoked card out of it) was published: the doors have the change.
    pub published: bool,
    /// The version of the first such list.
    pub published_in: Option<i64>,
    /// The newest list above `after_version` prepared for signature, if any (the signing
    /// queue's payload that carries the change).
    pub prepared_version: Option<i64>,
}

/// What a request's fulfilment changed, as the request view shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FulfilmentView {
    /// The changes, in order.
    pub changes: Vec<Change>,
    /// The list that carries them; `None` when nothing a list carries changed.
    pub list: Option<ListFollow>,
}

/// Why a fulfilment failed: what it was doing and the directory's refusal.
#[derive(Debug, thiserror::Error)]
#[error("fulfilling {request}: {doing}: {source}")]
pub struct FulfilError {
    /// The request's reference.
    pub request: String,
    /// What it was doing (`enrolling card c:… for holder budi`).
    pub doing: String,
    /// The directory's refusal.
    #[source]
    pub source: DirectoryError,
}

/// Carries out `request` (being fulfilled by `actor`) inside the step's transaction. Without
/// details only the step is recorded (the change was made through the directory API).
pub(crate) async fn carry_out(
    tx: &mut Tx,
    db: &Db,
    key: &ServiceKey,
    actor: &Actor,
    request: &RequestView,
    ctx: FulfilContext<'_>,
) -> Result<(), RequestError> {
    let Some(details) = ctx.details else {
        return Ok(());
    };
    check_fields(request.kind, details)?;
    let run = Run {
        db,
        key,
        actor: actor.audit(),
        approver: approver_of(request, actor),
        request,
    };
    let changes = match request.kind {
        RequestKind::StaffAccess => run.staff_access(tx, details, ctx.card_key_file).await?,
        RequestKind::Removal => run.removal(tx, details).await?,
        RequestKind::Visit => run.visit(tx, details).await?,
        // No custody model yet (issue 19): the step's note is the record.
        RequestKind::ServerCustody => return Ok(()),
    };
    record(tx, db, key, actor, request, &changes).await
}

/// One fulfilment under way: what every kind's path needs.
struct Run<'a> {
    db: &'a Db,
    key: &'a ServiceKey,
    actor: AuditActor,
    /// Who approved the request (the directory's `approver` fields).
    approver: String,
    request: &'a RequestView,
}

impl Run<'_> {
    /// A directory refusal, with the request and what was being done.
    fn failed(&self, doing: String) -> impl FnOnce(DirectoryError) -> RequestError {
        let request = self.request.reference.clone();
        move |source| {
            RequestError::Fulfilment(Box::new(FulfilError {
                request,
                doing,
                source,
            }))
        }
    }

    /// Staff access: the card is enrolled for an existing holder or one created from the
    /// request.
    async fn staff_access(
        &self,
        tx: &mut Tx,
        details: &Fulfilment,
        card_key_file: Option<&Path>,
    ) -> Result<Vec<Change>, RequestError> {
        let request = self.request;
        let uid_text = details.uid.as_deref().ok_or_else(|| {
            FieldError::new(
                "fulfilment.uid",
                "required: the card's UID read at the desk",
            )
        })?;
        let uid: Uid = uid_text
            .trim()
            .parse()
            .map_err(|e| FieldError::new("fulfilment.uid", format!("{e}")))?;
        let card_key = directory::load_card_key(card_key_file)
            .map_err(self.failed("loading the site card key".into()))?;
        let mut changes = Vec::new();
        let holder_key = if details.create_holder {
            let holder_key = new_holder_key(request, details)?;
            let input = holder_from_request(request, &holder_key, &self.approver)?;
            directory::holders::create_holder_in(
                tx,
                self.db,
                self.key,
                &self.actor,
                &holder_key,
                &input,
            )
            .await
            .map_err(self.failed(format!(
                "creating holder {holder_key} from the request's subject"
            )))?;
            changes.push(Change::holder("holder.create", &holder_key));
            holder_key
        } else {
            let holder_key = holder_field(details)?;
            let holder = holder_in(tx, &holder_key)
                .await
                .map_err(self.failed(format!("finding holder {holder_key}")))?;
            check_access(request, &holder)?;
            holder_key
        };
        let hash = masked_hash(&card_key.hash(&uid).to_hex());
        let card = cards::enrol_card_in(
            tx,
            self.db,
            self.key,
            &card_key,
            &self.actor,
            &holder_key,
            &uid,
            Some(&request.id),
        )
        .await
        .map_err(self.failed(format!("enrolling card {hash} for holder {holder_key}")))?;
        changes.push(Change {
            card: Some(card.label),
            card_hash: Some(card.card_hash),
            ..Change::holder("card.enrol", &holder_key)
        });
        Ok(changes)
    }

    /// Removal: every card of the subject's holder is revoked.
    async fn removal(
        &self,
        tx: &mut Tx,
        details: &Fulfilment,
    ) -> Result<Vec<Change>, RequestError> {
        let request = self.request;
        let holder_key = match &details.holder {
            Some(h) => single_line("fulfilment.holder", h, 64)?,
            None => holder_by_nip(tx, request).await?,
        };
        let input = RevokeInput {
            reason: format!("removal request {}", request.reference),
            request_ref: request.reference.clone(),
        }
        .check()?;
        let revoked = cards::revoke_holder_in(
            tx,
            self.db,
            self.key,
            &self.actor,
            &holder_key,
            &input,
            Some(&request.id),
        )
        .await
        .map_err(self.failed(format!("revoking the cards of holder {holder_key}")))?;
        Ok(revoked
            .into_iter()
            .map(|card| Change {
                card: Some(card.label),
                card_hash: Some(card.card_hash),
                ..Change::holder("card.revoke", &holder_key)
            })
            .collect())
    }

    /// Visit: a pool badge is reserved for the request's window.
    async fn visit(&self, tx: &mut Tx, details: &Fulfilment) -> Result<Vec<Change>, RequestError> {
        let request = self.request;
        let until = request.window_until_ms.ok_or_else(|| {
            FieldError::new(
                "fulfilment",
                "the visit request has no window end (window_until): a badge is reserved for a \
                 bounded window",
            )
        })?;
        let badge = details
            .badge
            .as_deref()
            .ok_or_else(|| FieldError::new("fulfilment.badge", "required: a pool badge"))?;
        let host = details.host.as_deref().ok_or_else(|| {
            FieldError::new("fulfilment.host", "required: the host (a staff holder)")
        })?;
        let input = VisitInput {
            id: None,
            visitor: request.subject_name.clone(),
            host: host.trim().to_string(),
            escort: details.escort.as_deref().map(|e| e.trim().to_string()),
            badge: badge.trim().to_string(),
            from: request.window_from_ms.map(|ms| super::ts(ms).to_string()),
            until: super::ts(until).to_string(),
            request_ref: request.reference.clone(),
            approver: self.approver.clone(),
        };
        let visit = directory::visits::issue_visit_in(
            tx,
            self.db,
            self.key,
            &self.actor,
            &input,
            Some(&request.id),
        )
        .await
        .map_err(self.failed(format!("reserving badge {} for the visit", input.badge)))?;
        Ok(vec![Change {
            badge: Some(visit.badge),
            visit: Some(visit.id),
            ..Change::holder("visit.reserve", &visit.host)
        }])
    }
}

/// Refuses fields that do not belong to the request's kind.
fn check_fields(kind: RequestKind, d: &Fulfilment) -> Result<(), FieldError> {
    let given = [
        (
            "uid",
            d.uid.is_some(),
            [RequestKind::StaffAccess].as_slice(),
        ),
        (
            "create_holder",
            d.create_holder,
            &[RequestKind::StaffAccess],
        ),
        (
            "holder",
            d.holder.is_some(),
            &[RequestKind::StaffAccess, RequestKind::Removal],
        ),
        ("badge", d.badge.is_some(), &[RequestKind::Visit]),
        ("host", d.host.is_some(), &[RequestKind::Visit]),
        ("escort", d.escort.is_some(), &[RequestKind::Visit]),
    ];
    for (field, present, kinds) in given {
        if present && !kinds.contains(&kind) {
            let message = if kind == RequestKind::ServerCustody {
                "server custody has nothing to carry out yet (no custody model): leave the \
                 details out and write what was done in the note"
                    .to_string()
            } else {
                format!("not used when fulfilling a {} request", kind.as_str())
            };
            return Err(FieldError::new(format!("fulfilment.{field}"), message));
        }
    }
    Ok(())
}

/// Who approved the request (the approve step's account name), for the directory's
/// `approver` fields; the fulfilling account if the chain has none.
fn approver_of(request: &RequestView, actor: &Actor) -> String {
    request
        .history
        .iter()
        .rev()
        .find(|s| s.action.kind() == ActionKind::Approve)
        .map(|s| s.actor_name.clone())
        .unwrap_or_else(|| actor.session.username.clone())
}

fn holder_field(d: &Fulfilment) -> Result<String, FieldError> {
    let holder = d.holder.as_deref().ok_or_else(|| {
        FieldError::new(
            "fulfilment.holder",
            "required: the holder the card is for, or create_holder: true",
        )
    })?;
    single_line("fulfilment.holder", holder, 64)
}

/// The key of a holder created from the request: `holder`, else the subject's NIP.
fn new_holder_key(request: &RequestView, d: &Fulfilment) -> Result<String, FieldError> {
    let key = match (&d.holder, &request.subject_nip) {
        (Some(h), _) => single_line("fulfilment.holder", h, 64)?,
        (None, Some(nip)) => nip.clone(),
        (None, None) => {
            return Err(FieldError::new(
                "fulfilment.holder",
                "required: the subject has no NIP to use as the new holder's key",
            ))
        }
    };
    if !pintu::core::list::is_identifier(&key) {
        return Err(FieldError::new(
            "fulfilment.holder",
            "letters, digits, '-', '_' or '.' (an employee number or NIP)",
        ));
    }
    Ok(key)
}

/// A holder from the request's subject: its doors and window are the holder's doors and
/// validity (the directory keeps access per holder, not per card).
fn holder_from_request(
    request: &RequestView,
    holder_key: &str,
    approver: &str,
) -> Result<HolderInput, FieldError> {
    if request.doors.is_empty() {
        return Err(FieldError::new(
            "fulfilment.create_holder",
            "the request names no door: a holder made from it would open every door; create \
             the holder through the directory and name it in fulfilment.holder",
        ));
    }
    let until = request.window_until_ms.ok_or_else(|| {
        FieldError::new(
            "fulfilment.create_holder",
            "the request has no window end (window_until): a holder's validity ends",
        )
    })?;
    Ok(HolderInput {
        key: Some(holder_key.to_string()),
        name: Some(request.subject_name.clone()),
        nip: request.subject_nip.clone(),
        unit: Some(request.unit.clone()),
        kind: Some(ListRole::Staff),
        doors: Some(request.doors.clone()),
        valid_from: request.window_from_ms.map(|ms| super::ts(ms).to_string()),
        valid_until: Some(super::ts(until).to_string()),
        request_ref: Some(request.reference.clone()),
        approver: Some(approver.to_string()),
        ..HolderInput::default()
    })
}

/// An existing holder's access must cover the request's doors and window (a card has its
/// holder's access; more than the holder has would need a holder change and its own grant).
fn check_access(
    request: &RequestView,
    holder: &directory::holders::Holder,
) -> Result<(), FieldError> {
    if let Some(doors) = &holder.doors {
        if let Some(missing) = request.doors.iter().find(|d| !doors.contains(d)) {
            return Err(FieldError::new(
                "fulfilment.holder",
                format!(
                    "holder {} may not open door {missing:?} the request asks for: change \
                     the holder's doors (with this request's reference) first",
                    holder.key
                ),
            ));
        }
    }
    let until = request.window_until_ms.unwrap_or(i64::MAX);
    if until > holder.valid_until_ms {
        return Err(FieldError::new(
            "fulfilment.holder",
            format!(
                "holder {} is valid until {}, before the request's window ends: extend the \
                 holder's validity (with this request's reference) first",
                holder.key, holder.valid_until
            ),
        ));
    }
    Ok(())
}

/// The removal request's subject as a holder: the one the request names (`subject_holder_id`),
/// else the one holder whose NIP is the subject's.
async fn holder_by_nip(tx: &mut Tx, request: &RequestView) -> Result<String, RequestError> {
    if let Some(row) = sqlx::query(
        "SELECT h.holder_key FROM requests r JOIN holders h ON h.id = r.subject_holder_id \
         WHERE r.id = $1",
    )
    .bind(&request.id)
    .fetch_optional(&mut **tx)
    .await?
    {
        return Ok(row.try_get(0)?);
    }
    let needed = || {
        FieldError::new(
            "fulfilment.holder",
            "required: no single holder has the subject's NIP; name the holder",
        )
    };
    let nip = request.subject_nip.as_deref().ok_or_else(needed)?;
    let rows = sqlx::query("SELECT holder_key FROM holders WHERE nip = $1 LIMIT 2")
        .bind(nip)
        .fetch_all(&mut **tx)
        .await?;
    match rows.as_slice() {
        [row] => Ok(row.try_get(0)?),
        _ => Err(needed().into()),
    }
}

/// Records the changes and the list version they follow, with an audit row naming them.
async fn record(
    tx: &mut Tx,
    db: &Db,
    key: &ServiceKey,
    actor: &Actor,
    request: &RequestView,
    changes: &[Change],
) -> Result<(), RequestError> {
    for (n, c) in changes.iter().enumerate() {
        sqlx::query(
            "INSERT INTO request_changes (request_id, n, change, holder_key, card, badge, \
             visit_id, card_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&request.id)
        .bind(n as i64 + 1)
        .bind(&c.change)
        .bind(&c.holder)
        .bind(&c.card)
        .bind(&c.badge)
        .bind(&c.visit)
        .bind(&c.card_hash)
        .execute(&mut **tx)
        .await?;
    }
    let before = known_list_version(tx).await?;
    sqlx::query(
        "INSERT INTO request_fulfilments (request_id, list_version_before, at_ms) \
         VALUES ($1, $2, $3)",
    )
    .bind(&request.id)
    .bind(before)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    audit::record(
        tx,
        key,
        db.backend(),
        &actor.audit(),
        Entry::new(
            "request.fulfilment",
            format!("request:{}", request.reference),
        )
        .after(serde_json::json!({ "changes": changes, "list_after_version": before })),
    )
    .await?;
    Ok(())
}

/// The highest list version recorded at publication or stored for signature.
async fn known_list_version(tx: &mut Tx) -> Result<i64, sqlx::Error> {
    let recorded: Option<i64> =
        sqlx::query("SELECT MAX(list_version) FROM site_register WHERE id = 1")
            .fetch_one(&mut **tx)
            .await?
            .try_get(0)?;
    let stored: Option<i64> =
        sqlx::query("SELECT MAX(list_version) FROM payloads WHERE kind = 'list'")
            .fetch_one(&mut **tx)
            .await?
            .try_get(0)?;
    Ok(recorded.unwrap_or(0).max(stored.unwrap_or(0)))
}

/// What request `request_id`'s fulfilment changed, if it changed anything.
pub(crate) async fn view_in(
    tx: &mut Tx,
    request_id: &str,
) -> Result<Option<FulfilmentView>, sqlx::Error> {
    let Some(row) =
        sqlx::query("SELECT list_version_before FROM request_fulfilments WHERE request_id = $1")
            .bind(request_id)
            .fetch_optional(&mut **tx)
            .await?
    else {
        return Ok(None);
    };
    let before: Option<i64> = row.try_get(0)?;
    let rows = sqlx::query(
        "SELECT change, holder_key, card, badge, visit_id, card_hash FROM request_changes \
         WHERE request_id = $1 ORDER BY n",
    )
    .bind(request_id)
    .fetch_all(&mut **tx)
    .await?;
    let changes = rows
        .iter()
        .map(|r| {
            Ok(Change {
                change: r.try_get(0)?,
                holder: r.try_get(1)?,
                card: r.try_get(2)?,
                badge: r.try_get(3)?,
                visit: r.try_get(4)?,
                card_hash: r.try_get(5)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let list = match before {
        None => None,
        Some(after_version) => {
            let published_version: Option<i64> =
                sqlx::query("SELECT MAX(list_version) FROM site_register WHERE id = 1")
                    .fetch_one(&mut **tx)
                    .await?
                    .try_get(0)?;
            let published_version = published_version.unwrap_or(0);
            let prepared_version: Option<i64> = sqlx::query(
                "SELECT MAX(list_version) FROM payloads WHERE kind = 'list' \
                 AND list_version > $1 AND status <> 'superseded'",
            )
            .bind(after_version)
            .fetch_one(&mut **tx)
            .await?
            .try_get(0)?;
            let published_in = first_carrying(tx, after_version, &changes).await?;
            Some(ListFollow {
                after_version,
                published_version,
                published: published_in.is_some(),
                published_in,
                prepared_version,
            })
        }
    };
    Ok(Some(FulfilmentView { changes, list }))
}

impl Change {
    fn holder(change: &str, holder: &str) -> Change {
        Change {
            change: change.to_string(),
            holder: Some(holder.to_string()),
            card: None,
            badge: None,
            visit: None,
            card_hash: None,
        }
    }

    /// Whether the list payload `body` (its JSON bytes) carries this change.
    fn carried_by(&self, body: &str) -> bool {
        let quoted = |text: &str| body.contains(&format!("\"{text}\""));
        match (self.change.as_str(), &self.card_hash, &self.visit) {
            ("card.enrol", Some(hash), _) => quoted(hash),
            ("card.revoke", Some(hash), _) => !quoted(hash),
            ("visit.reserve", _, Some(visit)) => quoted(visit),
            _ => true,
        }
    }
}

/// Most published lists looked at for a fulfilment's change: the first list above the
/// fulfilment normally carries it; the next ones cover a list prepared at the same moment.
const LISTS_CHECKED: i64 = 8;

/// The first published list above `after_version` that carries every change. Version numbers
/// alone cannot tell: a list prepared from a snapshot read just before the fulfilment
/// committed has a higher version without the change.
async fn first_carrying(
    tx: &mut Tx,
    after_version: i64,
    changes: &[Change],
) -> Result<Option<i64>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT list_version, body_b64 FROM payloads WHERE kind = 'list' \
         AND status = 'published' AND list_version > $1 ORDER BY list_version LIMIT $2",
    )
    .bind(after_version)
    .bind(LISTS_CHECKED)
    .fetch_all(&mut **tx)
    .await?;
    for row in rows {
        let version: i64 = row.try_get(0)?;
        let body: String = row.try_get(1)?;
        // A body that does not decode carries nothing we can see.
        let Ok(bytes) = B64.decode(body.as_bytes()) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        if changes.iter().all(|c| c.carried_by(&text)) {
            return Ok(Some(version));
        }
    }
    Ok(None)
}
