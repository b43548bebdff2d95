//! Cards in service — holders' cards and the visitor-badge pool: list and search (paged on the
//! server), enrol, add, revoke. Each change and its audit record (never a raw UID: cards are
//! named by their short hash) commit in one transaction. A revoked card leaves its holder (who
//! stays, for the review) and is recorded in `card_revocations`, as the register's `[[revoked]]`.

use jiff::Timestamp;
use pintu::core::card::{CardKey, Uid};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::holders::{holder_in, site_tz};
use super::{masked_hash, open_uid, seal_uid, DirectoryError, Page, Paged, RevokeInput};
use crate::audit::{self, AuditActor, Entry};
use crate::db::{new_id, now_ms, Db, Tx};
use crate::input::{single_line, FieldError};
use crate::secret::ServiceKey;

/// A card in service: a holder's card or a pool badge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Card {
    /// Row id.
    pub id: String,
    /// Holder id (the register's), for a holder's card.
    pub holder: Option<String>,
    /// Badge label, for a pool badge.
    pub badge: Option<String>,
    /// The keyed hash the doors use (hex).
    pub card_hash: String,
    /// Short form of the hash (`c:1a2b3c4d`), as door events show it.
    pub label: String,
    /// The raw UID (hex): only for helpdesk and administrators.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// When it was enrolled (Unix ms).
    pub enrolled_at_ms: i64,
    /// For a badge: the open visit using it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visit: Option<String>,
}

/// The columns of a card row, in the order [`card_of`] reads them.
macro_rules! card_cols {
    () => {
        "c.id, h.holder_key, c.badge_label, c.card_hash, c.uid_enc, c.enrolled_at_ms, \
         (SELECT v.id FROM visits v WHERE v.badge = c.badge_label AND v.ended_at IS NULL \
          ORDER BY v.position LIMIT 1)"
    };
}

fn card_of(r: &AnyRow, key: &ServiceKey, show_uid: bool) -> Result<Card, DirectoryError> {
    let hash: String = r.try_get(3)?;
    let uid = if show_uid {
        let sealed: String = r.try_get(4)?;
        Some(open_uid(key, &sealed)?.to_hex())
    } else {
        None
    };
    Ok(Card {
        id: r.try_get(0)?,
        holder: r.try_get(1)?,
        badge: r.try_get(2)?,
        label: masked_hash(&hash),
        card_hash: hash,
        uid,
        enrolled_at_ms: r.try_get(5)?,
        visit: r.try_get(6)?,
    })
}

/// Cards in service whose holder id, holder name, badge label or hash matches the search;
/// `kind` is `holder`, `badge` or `None` for both. Raw UIDs only when `show_uids`.
pub async fn list_cards(
    db: &Db,
    key: &ServiceKey,
    page: &Page,
    kind: Option<&str>,
    show_uids: bool,
) -> Result<Paged<Card>, DirectoryError> {
    let kind = kind.unwrap_or("%");
    let total: i64 = sqlx::query(
        "SELECT COUNT(*) FROM cards c LEFT JOIN holders h ON h.id = c.holder_id \
         WHERE c.kind LIKE $1 AND (LOWER(COALESCE(h.holder_key, '')) LIKE $2 ESCAPE '\\' \
         OR LOWER(COALESCE(h.name, '')) LIKE $3 ESCAPE '\\' \
         OR LOWER(COALESCE(c.badge_label, '')) LIKE $4 ESCAPE '\\' \
         OR c.card_hash LIKE $5 ESCAPE '\\')",
    )
    .bind(kind)
    .bind(&page.pattern)
    .bind(&page.pattern)
    .bind(&page.pattern)
    .bind(&page.pattern)
    .fetch_one(db.pool())
    .await?
    .try_get(0)?;
    let rows = sqlx::query(concat!(
        "SELECT ",
        card_cols!(),
        " FROM cards c LEFT JOIN holders h ON h.id = c.holder_id \
         WHERE c.kind LIKE $1 AND (LOWER(COALESCE(h.holder_key, '')) LIKE $2 ESCAPE '\\' \
         OR LOWER(COALESCE(h.name, '')) LIKE $3 ESCAPE '\\' \
         OR LOWER(COALESCE(c.badge_label, '')) LIKE $4 ESCAPE '\\' \
         OR c.card_hash LIKE $5 ESCAPE '\\') \
         ORDER BY c.kind DESC, COALESCE(h.position, 0), c.position, c.id LIMIT $6 OFFSET $7"
    ))
    .bind(kind)
    .bind(&page.pattern)
    .bind(&page.pattern)
    .bind(&page.pattern)
    .bind(&page.pattern)
    .bind(page.per_page)
    .bind(page.offset())
    .fetch_all(db.pool())
    .await?;
    Ok(Paged {
        items: rows
            .iter()
            .map(|r| card_of(r, key, show_uids))
            .collect::<Result<_, _>>()?,
        page: page.page,
        per_page: page.per_page,
        total,
    })
}

/// The cards in service of holder `holder_key`, in order; raw UIDs only when `show_uids`.
pub async fn holder_cards(
    db: &Db,
    key: &ServiceKey,
    holder_key: &str,
    show_uids: bool,
) -> Result<Vec<Card>, DirectoryError> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        card_cols!(),
        " FROM cards c JOIN holders h ON h.id = c.holder_id WHERE h.holder_key = $1 \
         ORDER BY c.position, c.id"
    ))
    .bind(holder_key)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(|r| card_of(r, key, show_uids)).collect()
}

/// Who holds the card with hash `hash`, if anyone: `holder X` or `badge Y`.
pub(crate) async fn card_owner(tx: &mut Tx, hash: &str) -> Result<Option<String>, DirectoryError> {
    let row = sqlx::query(
        "SELECT h.holder_key, c.badge_label FROM cards c LEFT JOIN holders h \
         ON h.id = c.holder_id WHERE c.card_hash = $1",
    )
    .bind(hash)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(match row {
        None => None,
        Some(r) => {
            let holder: Option<String> = r.try_get(0)?;
            let badge: Option<String> = r.try_get(1)?;
            Some(match (holder, badge) {
                (Some(h), _) => format!("holder {h}"),
                (None, Some(b)) => format!("badge {b}"),
                (None, None) => "an unknown owner".into(),
            })
        }
    })
}

/// Inserts a card (the caller audits): a holder's (`holder_id`) or a badge (`badge`).
pub(crate) async fn insert_card(
    tx: &mut Tx,
    key: &ServiceKey,
    holder_id: Option<&str>,
    badge: Option<&str>,
    hash: &str,
    uid: &Uid,
) -> Result<String, DirectoryError> {
    let next: i64 = match holder_id {
        Some(h) => {
            sqlx::query("SELECT COALESCE(MAX(position), -1) + 1 FROM cards WHERE holder_id = $1")
                .bind(h)
                .fetch_one(&mut **tx)
                .await?
                .try_get(0)?
        }
        None => {
            sqlx::query("SELECT COALESCE(MAX(position), -1) + 1 FROM cards WHERE kind = 'badge'")
                .fetch_one(&mut **tx)
                .await?
                .try_get(0)?
        }
    };
    let id = new_id();
    sqlx::query(
        "INSERT INTO cards (id, holder_id, badge_label, card_hash, uid_enc, kind, position, \
         enrolled_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(holder_id)
    .bind(badge)
    .bind(hash)
    .bind(seal_uid(key, uid))
    .bind(if holder_id.is_some() {
        "holder"
    } else {
        "badge"
    })
    .bind(next)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

fn parse_uid(text: &str) -> Result<Uid, FieldError> {
    text.parse::<Uid>()
        .map_err(|e| FieldError::new("uid", e.to_string()))
}

/// Enrols card `uid` (hex, as a reader shows it) for holder `holder_key`. Returns the card
/// with its UID (enrolment is done by the helpdesk, who sees it).
pub async fn enrol_card(
    db: &Db,
    key: &ServiceKey,
    card_key: &CardKey,
    actor: &AuditActor,
    holder_key: &str,
    uid: &str,
) -> Result<Card, DirectoryError> {
    let uid = parse_uid(uid)?;
    let mut tx = db.begin_write().await?;
    let card = enrol_card_in(&mut tx, db, key, card_key, actor, holder_key, &uid, None).await?;
    tx.commit().await?;
    Ok(card)
}

/// [`enrol_card`] inside the caller's transaction; `request_id`: the request whose fulfilment
/// enrols it (recorded on the card).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn enrol_card_in(
    tx: &mut Tx,
    db: &Db,
    key: &ServiceKey,
    card_key: &CardKey,
    actor: &AuditActor,
    holder_key: &str,
    uid: &Uid,
    request_id: Option<&str>,
) -> Result<Card, DirectoryError> {
    let hash = card_key.hash(uid).to_hex();
    let holder = holder_in(tx, holder_key).await?;
    if let Some(owner) = card_owner(tx, &hash).await? {
        return Err(DirectoryError::Conflict(format!(
            "card {} is already held by {owner}; revoke it there first to move it",
            masked_hash(&hash)
        )));
    }
    let id = insert_card(tx, key, Some(&holder.id), None, &hash, uid).await?;
    if let Some(request_id) = request_id {
        sqlx::query("UPDATE cards SET request_id = $1 WHERE id = $2")
            .bind(request_id)
            .bind(&id)
            .execute(&mut **tx)
            .await?;
    }
    audit::record(
        tx,
        key,
        db.backend(),
        actor,
        Entry::new("card.enrol", format!("holder:{holder_key}"))
            .after(serde_json::json!({ "card": masked_hash(&hash), "holder": holder_key })),
    )
    .await?;
    card_in(tx, key, &id, true).await
}

async fn card_in(
    tx: &mut Tx,
    key: &ServiceKey,
    id: &str,
    show_uid: bool,
) -> Result<Card, DirectoryError> {
    let row = sqlx::query(concat!(
        "SELECT ",
        card_cols!(),
        " FROM cards c LEFT JOIN holders h ON h.id = c.holder_id WHERE c.id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| DirectoryError::NotFound(format!("card {id}")))?;
    card_of(&row, key, show_uid)
}

/// Adds badge `label` with card `uid` to the visitor-badge pool.
pub async fn add_badge(
    db: &Db,
    key: &ServiceKey,
    card_key: &CardKey,
    actor: &AuditActor,
    label: &str,
    uid: &str,
) -> Result<Card, DirectoryError> {
    let label = single_line("label", label, 32)?;
    if !pintu::core::list::is_identifier(&label) {
        return Err(FieldError::new("label", "letters, digits, '-', '_' or '.' (VB-01)").into());
    }
    let uid = parse_uid(uid)?;
    let hash = card_key.hash(&uid).to_hex();
    let mut tx = db.begin_write().await?;
    if sqlx::query("SELECT id FROM cards WHERE badge_label = $1")
        .bind(&label)
        .fetch_optional(&mut *tx)
        .await?
        .is_some()
    {
        return Err(DirectoryError::Conflict(format!("badge {label} exists")));
    }
    if let Some(owner) = card_owner(&mut tx, &hash).await? {
        return Err(DirectoryError::Conflict(format!(
            "card {} is already held by {owner}",
            masked_hash(&hash)
        )));
    }
    let id = insert_card(&mut tx, key, None, Some(&label), &hash, &uid).await?;
    audit::record(
        &mut tx,
        key,
        db.backend(),
        actor,
        Entry::new("badge.create", format!("badge:{label}"))
            .after(serde_json::json!({ "badge": label, "card": masked_hash(&hash) })),
    )
    .await?;
    let card = card_in(&mut tx, key, &id, true).await?;
    tx.commit().await?;
    Ok(card)
}

/// Takes card `card_id` out of service (a holder's card or a pool badge): removed from the
/// cards in service, recorded in `card_revocations`. A badge out on an open visit is refused.
pub async fn revoke_card(
    db: &Db,
    key: &ServiceKey,
    actor: &AuditActor,
    card_id: &str,
    input: &RevokeInput,
) -> Result<Card, DirectoryError> {
    let input = input.check()?;
    let mut tx = db.begin_write().await?;
    let card = card_in(&mut tx, key, card_id, false).await?;
    revoke_in(&mut tx, db, key, actor, &card, &input, None).await?;
    tx.commit().await?;
    Ok(card)
}

/// Revokes badge `label` (see [`revoke_card`]).
pub async fn revoke_badge(
    db: &Db,
    key: &ServiceKey,
    actor: &AuditActor,
    label: &str,
    input: &RevokeInput,
) -> Result<Card, DirectoryError> {
    let input = input.check()?;
    let mut tx = db.begin_write().await?;
    let id: String = sqlx::query("SELECT id FROM cards WHERE badge_label = $1")
        .bind(label)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| DirectoryError::NotFound(format!("badge {label}")))?
        .try_get(0)?;
    let card = card_in(&mut tx, key, &id, false).await?;
    revoke_in(&mut tx, db, key, actor, &card, &input, None).await?;
    tx.commit().await?;
    Ok(card)
}

/// Revokes every card of holder `holder_key` (who stays, with no card). Refused while they host
/// or escort an open visit, or have no card.
pub async fn revoke_holder(
    db: &Db,
    key: &ServiceKey,
    actor: &AuditActor,
    holder_key: &str,
    input: &RevokeInput,
) -> Result<Vec<Card>, DirectoryError> {
    let input = input.check()?;
    let mut tx = db.begin_write().await?;
    let out = revoke_holder_in(&mut tx, db, key, actor, holder_key, &input, None).await?;
    tx.commit().await?;
    Ok(out)
}

/// [`revoke_holder`] inside the caller's transaction (`input` checked); `request_id`: the
/// removal request whose fulfilment revokes (recorded on the revocations).
pub(crate) async fn revoke_holder_in(
    tx: &mut Tx,
    db: &Db,
    key: &ServiceKey,
    actor: &AuditActor,
    holder_key: &str,
    input: &RevokeInput,
    request_id: Option<&str>,
) -> Result<Vec<Card>, DirectoryError> {
    let holder = holder_in(tx, holder_key).await?;
    if let Some(row) =
        sqlx::query("SELECT id FROM visits WHERE ended_at IS NULL AND (host = $1 OR escort = $2)")
            .bind(holder_key)
            .bind(holder_key)
            .fetch_optional(&mut **tx)
            .await?
    {
        let visit: String = row.try_get(0)?;
        return Err(DirectoryError::Conflict(format!(
            "holder {holder_key} hosts or escorts open visit {visit}: end it first"
        )));
    }
    let ids = sqlx::query("SELECT id FROM cards WHERE holder_id = $1 ORDER BY position")
        .bind(&holder.id)
        .fetch_all(&mut **tx)
        .await?;
    if ids.is_empty() {
        return Err(DirectoryError::Conflict(format!(
            "holder {holder_key} has no card to revoke"
        )));
    }
    let mut out = Vec::new();
    for row in ids {
        let id: String = row.try_get(0)?;
        let card = card_in(tx, key, &id, false).await?;
        revoke_in(tx, db, key, actor, &card, input, request_id).await?;
        out.push(card);
    }
    Ok(out)
}

async fn revoke_in(
    tx: &mut Tx,
    db: &Db,
    key: &ServiceKey,
    actor: &AuditActor,
    card: &Card,
    input: &RevokeInput,
    request_id: Option<&str>,
) -> Result<(), DirectoryError> {
    if let Some(visit) = &card.visit {
        return Err(DirectoryError::Conflict(format!(
            "badge {} is out on open visit {visit}: end the visit first",
            card.badge.as_deref().unwrap_or("?")
        )));
    }
    let tz = site_tz(tx).await?;
    let at = Timestamp::now()
        .to_zoned(tz)
        .strftime("%Y-%m-%d %H:%M")
        .to_string();
    let sealed: String = sqlx::query("SELECT uid_enc FROM cards WHERE id = $1")
        .bind(&card.id)
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
    let next: i64 = sqlx::query("SELECT COALESCE(MAX(position), -1) + 1 FROM card_revocations")
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
    sqlx::query(
        "INSERT INTO card_revocations (id, holder, badge, card_hash, uid_enc, revoked_at, \
         reason, request_ref, by_name, position, request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, \
         $8, $9, $10, $11)",
    )
    .bind(new_id())
    .bind(&card.holder)
    .bind(&card.badge)
    .bind(&card.card_hash)
    .bind(&sealed)
    .bind(&at)
    .bind(&input.reason)
    .bind(&input.request_ref)
    .bind(&actor.name)
    .bind(next)
    .bind(request_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM cards WHERE id = $1")
        .bind(&card.id)
        .execute(&mut **tx)
        .await?;
    let target = match (&card.holder, &card.badge) {
        (Some(h), _) => format!("holder:{h}"),
        (None, Some(b)) => format!("badge:{b}"),
        (None, None) => format!("card:{}", card.label),
    };
    audit::record(
        tx,
        key,
        db.backend(),
        actor,
        Entry::new("card.revoke", target)
            .before(serde_json::json!({ "card": card.label, "holder": card.holder, "badge": card.badge }))
            .after(serde_json::json!({ "revoked_at": at, "reason": input.reason, "request_ref": input.request_ref })),
    )
    .await?;
    Ok(())
}
