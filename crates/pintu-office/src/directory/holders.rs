//! Holders, their cards and the visitor-badge pool: list and search (paged on the server),
//! create, update, enrol, revoke. Each change and its audit record (before/after, never a raw
//! UID) commit in one transaction. The rules are the register's (`docs/register.md`): a holder
//! keeps their request reference and approver, and a change of access (role, doors, schedule,
//! validity) needs a new request reference and approver; a revoked card leaves its holder (who
//! stays, for the review) and is recorded in `card_revocations`.

use jiff::tz::TimeZone;
use jiff::Timestamp;
use pintu::core::card::{CardKey, Uid};
use pintu::core::list::Role;
use pintu::core::schedule::Window;
use pintu::office::register::DateSpec;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{masked_hash, open_uid, seal_uid, DirectoryError, Page, Paged, RevokeInput};
use crate::audit::{self, AuditActor, Entry};
use crate::db::{new_id, now_ms, Db, Tx};
use crate::input::{single_line, FieldError};
use crate::secret::ServiceKey;

/// The columns of a holder row, in the order [`holder_of`] reads them.
macro_rules! holder_cols {
    () => {
        "id, holder_key, name, nip, unit, kind, ktp_type, ktp_last4, doors_json, schedule_json, \
         valid_from, valid_until, valid_from_ms, valid_until_ms, request_ref, approver, \
         (SELECT COUNT(*) FROM cards c WHERE c.holder_id = holders.id)"
    };
}

/// A KTP as stored: its type and last four digits only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ktp {
    /// The document's type (`KTP`, `SIM`, `paspor`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Its last four digits.
    pub last4: String,
}

/// A holder, as every reader sees them (no card UIDs here).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Holder {
    /// Row id (requests refer to it).
    pub id: String,
    /// The register's holder id (in lists and door events).
    pub key: String,
    /// Name.
    pub name: String,
    /// NIP of a civil servant.
    pub nip: Option<String>,
    /// Organisational unit.
    pub unit: String,
    /// `staff`, `escort` or `visitor`.
    pub kind: Role,
    /// KTP type and last four digits, if recorded.
    pub ktp: Option<Ktp>,
    /// Doors; `None` is every door of the list.
    pub doors: Option<Vec<String>>,
    /// Weekly windows; empty is at any time.
    pub schedule: Vec<Window>,
    /// Start of validity, as written (`2027-01-01`).
    pub valid_from: String,
    /// End of validity (exclusive), as written.
    pub valid_until: String,
    /// The same, resolved (Unix ms).
    pub valid_from_ms: i64,
    /// The same, resolved (Unix ms).
    pub valid_until_ms: i64,
    /// Request reference of the grant.
    pub request_ref: String,
    /// Who approved it.
    pub approver: String,
    /// Cards in service.
    pub cards: i64,
}

/// A holder to create, or a holder's changes (`None` keeps a field).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HolderInput {
    /// The register's holder id (e.g. the NIP or employee number); only when creating.
    #[serde(default)]
    pub key: Option<String>,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// NIP (18 digits); `""` removes it.
    #[serde(default)]
    pub nip: Option<String>,
    /// Unit.
    #[serde(default)]
    pub unit: Option<String>,
    /// `staff`, `escort` or `visitor`.
    #[serde(default)]
    pub kind: Option<Role>,
    /// KTP type and last four digits.
    #[serde(default)]
    pub ktp: Option<Ktp>,
    /// Doors (ids); see `all_doors`.
    #[serde(default)]
    pub doors: Option<Vec<String>>,
    /// `true`: every door of the list (clears `doors`).
    #[serde(default)]
    pub all_doors: Option<bool>,
    /// Weekly windows.
    #[serde(default)]
    pub schedule: Option<Vec<Window>>,
    /// Start of validity (`2027-01-01`, site-local date-time, or RFC 3339); default today.
    #[serde(default)]
    pub valid_from: Option<String>,
    /// End of validity (exclusive).
    #[serde(default)]
    pub valid_until: Option<String>,
    /// Request reference (required when creating and when access changes).
    #[serde(default)]
    pub request_ref: Option<String>,
    /// Who approved (required when creating and when access changes).
    #[serde(default)]
    pub approver: Option<String>,
}

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

fn holder_of(r: &AnyRow) -> Result<Holder, DirectoryError> {
    let bad = |what: &str| DirectoryError::Conflict(format!("stored holder has a bad {what}"));
    let kind: String = r.try_get(5)?;
    let ktp_type: Option<String> = r.try_get(6)?;
    let ktp_last4: Option<String> = r.try_get(7)?;
    let doors: Option<String> = r.try_get(8)?;
    let schedule: String = r.try_get(9)?;
    Ok(Holder {
        id: r.try_get(0)?,
        key: r.try_get(1)?,
        name: r.try_get(2)?,
        nip: r.try_get(3)?,
        unit: r.try_get(4)?,
        kind: serde_json::from_value(serde_json::Value::String(kind)).map_err(|_| bad("kind"))?,
        ktp: match (ktp_type, ktp_last4) {
            (Some(kind), Some(last4)) => Some(Ktp { kind, last4 }),
            _ => None,
        },
        doors: match doors {
            None => None,
            Some(json) => Some(serde_json::from_str(&json).map_err(|_| bad("doors"))?),
        },
        schedule: serde_json::from_str(&schedule).map_err(|_| bad("schedule"))?,
        valid_from: r.try_get(10)?,
        valid_until: r.try_get(11)?,
        valid_from_ms: r.try_get(12)?,
        valid_until_ms: r.try_get(13)?,
        request_ref: r.try_get(14)?,
        approver: r.try_get(15)?,
        cards: r.try_get(16)?,
    })
}

/// Holders whose name, id, unit or NIP matches the page's search, in register order.
pub async fn list_holders(db: &Db, page: &Page) -> Result<Paged<Holder>, DirectoryError> {
    let total: i64 = sqlx::query(
        "SELECT COUNT(*) FROM holders WHERE LOWER(name) LIKE $1 ESCAPE '\\' \
         OR LOWER(holder_key) LIKE $2 ESCAPE '\\' OR LOWER(unit) LIKE $3 ESCAPE '\\' \
         OR COALESCE(nip, '') LIKE $4 ESCAPE '\\'",
    )
    .bind(&page.pattern)
    .bind(&page.pattern)
    .bind(&page.pattern)
    .bind(&page.pattern)
    .fetch_one(db.pool())
    .await?
    .try_get(0)?;
    let rows = sqlx::query(concat!(
        "SELECT ",
        holder_cols!(),
        " FROM holders WHERE LOWER(name) LIKE $1 ESCAPE '\\' \
         OR LOWER(holder_key) LIKE $2 ESCAPE '\\' OR LOWER(unit) LIKE $3 ESCAPE '\\' \
         OR COALESCE(nip, '') LIKE $4 ESCAPE '\\' \
         ORDER BY position, holder_key LIMIT $5 OFFSET $6"
    ))
    .bind(&page.pattern)
    .bind(&page.pattern)
    .bind(&page.pattern)
    .bind(&page.pattern)
    .bind(page.per_page)
    .bind(page.offset())
    .fetch_all(db.pool())
    .await?;
    Ok(Paged {
        items: rows.iter().map(holder_of).collect::<Result<_, _>>()?,
        page: page.page,
        per_page: page.per_page,
        total,
    })
}

/// Holder `key` (the register's id).
pub async fn get_holder(db: &Db, key: &str) -> Result<Holder, DirectoryError> {
    let row = sqlx::query(concat!(
        "SELECT ",
        holder_cols!(),
        " FROM holders WHERE holder_key = $1"
    ))
    .bind(key)
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| DirectoryError::NotFound(format!("holder {key}")))?;
    holder_of(&row)
}

async fn holder_in(tx: &mut Tx, key: &str) -> Result<Holder, DirectoryError> {
    let row = sqlx::query(concat!(
        "SELECT ",
        holder_cols!(),
        " FROM holders WHERE holder_key = $1"
    ))
    .bind(key)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| DirectoryError::NotFound(format!("holder {key}")))?;
    holder_of(&row)
}

/// The site's time zone (the register's `time_zone`).
pub(crate) async fn site_tz(tx: &mut Tx) -> Result<TimeZone, DirectoryError> {
    let zone: String = sqlx::query("SELECT time_zone FROM site_register WHERE id = 1")
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(DirectoryError::NoSite)?
        .try_get(0)?;
    TimeZone::get(&zone).map_err(|_| DirectoryError::Conflict(format!("bad time zone {zone}")))
}

fn resolve(field: &str, text: &str, tz: &TimeZone) -> Result<(String, i64), FieldError> {
    let text = single_line(field, text, 40)?;
    let at = DateSpec(text.clone())
        .resolve(tz)
        .map_err(|m| FieldError::new(field, m))?;
    Ok((text, at.as_millisecond()))
}

/// Applies `input` to `h` (a new holder starts from a blank one) and checks the result.
fn apply(
    h: &mut Holder,
    input: &HolderInput,
    creating: bool,
    doors: &[String],
    tz: &TimeZone,
) -> Result<(), DirectoryError> {
    let before = h.clone();
    if let Some(name) = &input.name {
        h.name = single_line("name", name, 100)?;
    }
    if let Some(nip) = &input.nip {
        let nip = nip.trim();
        let is_nip = nip.len() == 18 && nip.chars().all(|c| c.is_ascii_digit());
        if !nip.is_empty() && !is_nip {
            return Err(FieldError::new("nip", "a NIP is 18 digits").into());
        }
        h.nip = (!nip.is_empty()).then(|| nip.to_string());
    }
    if let Some(unit) = &input.unit {
        h.unit = crate::input::note("unit", Some(unit), 100)?
            .map(|u| u.replace('\n', " "))
            .unwrap_or_default();
    }
    if let Some(kind) = input.kind {
        h.kind = kind;
    }
    if let Some(ktp) = &input.ktp {
        let kind = single_line("ktp.type", &ktp.kind, 20)?;
        if !(ktp.last4.len() == 4 && ktp.last4.chars().all(|c| c.is_ascii_digit())) {
            return Err(FieldError::new(
                "ktp.last4",
                "only the last four digits are kept (never the whole number)",
            )
            .into());
        }
        h.ktp = Some(Ktp {
            kind,
            last4: ktp.last4.clone(),
        });
    }
    if input.all_doors == Some(true) {
        h.doors = None;
    } else if let Some(list) = &input.doors {
        if list.is_empty() {
            return Err(FieldError::new("doors", "name at least one door, or all_doors").into());
        }
        if let Some(unknown) = list.iter().find(|d| !doors.contains(d)) {
            return Err(FieldError::new("doors", format!("no door {unknown:?}")).into());
        }
        h.doors = Some(list.clone());
    }
    if let Some(schedule) = &input.schedule {
        for (i, w) in schedule.iter().enumerate() {
            w.validate()
                .map_err(|m| FieldError::new(format!("schedule[{i}]"), m))?;
        }
        h.schedule = schedule.clone();
    }
    if let Some(from) = &input.valid_from {
        (h.valid_from, h.valid_from_ms) = resolve("valid_from", from, tz)?;
    } else if creating {
        let today = Timestamp::now().to_zoned(tz.clone()).date().to_string();
        (h.valid_from, h.valid_from_ms) = resolve("valid_from", &today, tz)?;
    }
    if let Some(until) = &input.valid_until {
        (h.valid_until, h.valid_until_ms) = resolve("valid_until", until, tz)?;
    } else if creating {
        return Err(FieldError::new("valid_until", "required").into());
    }
    if h.valid_until_ms <= h.valid_from_ms {
        return Err(FieldError::new("valid_until", "must be after valid_from").into());
    }
    let access_changed = creating
        || h.kind != before.kind
        || h.doors != before.doors
        || h.schedule != before.schedule
        || h.valid_from_ms != before.valid_from_ms
        || h.valid_until_ms != before.valid_until_ms;
    for (field, value, target) in [
        ("request_ref", &input.request_ref, &mut h.request_ref),
        ("approver", &input.approver, &mut h.approver),
    ] {
        match value {
            Some(v) => *target = single_line(field, v, 100)?,
            None if access_changed => {
                return Err(FieldError::new(
                    field,
                    "required: a change of access needs the request and who approved it",
                )
                .into())
            }
            None => {}
        }
    }
    Ok(())
}

/// Creates a holder (no card yet: enrol one with [`enrol_card`]).
pub async fn create_holder(
    db: &Db,
    key: &ServiceKey,
    actor: &AuditActor,
    input: &HolderInput,
) -> Result<Holder, DirectoryError> {
    let holder_key = single_line("key", input.key.as_deref().unwrap_or(""), 64)?;
    if !pintu::core::list::is_identifier(&holder_key) {
        return Err(FieldError::new(
            "key",
            "letters, digits, '-', '_' or '.' (an employee number or NIP)",
        )
        .into());
    }
    let mut tx = db.begin_write().await?;
    let tz = site_tz(&mut tx).await?;
    let doors = super::places::door_ids_in(&mut tx).await?;
    if sqlx::query("SELECT id FROM holders WHERE holder_key = $1")
        .bind(&holder_key)
        .fetch_optional(&mut *tx)
        .await?
        .is_some()
    {
        return Err(DirectoryError::Conflict(format!(
            "holder {holder_key} exists"
        )));
    }
    let mut h = Holder {
        id: new_id(),
        key: holder_key,
        name: String::new(),
        nip: None,
        unit: String::new(),
        kind: Role::Staff,
        ktp: None,
        doors: None,
        schedule: Vec::new(),
        valid_from: String::new(),
        valid_until: String::new(),
        valid_from_ms: 0,
        valid_until_ms: 0,
        request_ref: String::new(),
        approver: String::new(),
        cards: 0,
    };
    if input.name.is_none() {
        return Err(FieldError::new("name", "required").into());
    }
    if input.kind.is_none() {
        return Err(FieldError::new("kind", "required: staff, escort or visitor").into());
    }
    apply(&mut h, input, true, &doors, &tz)?;
    insert_holder(&mut tx, &h).await?;
    audit::record(
        &mut tx,
        key,
        db.backend(),
        actor,
        Entry::new("holder.create", format!("holder:{}", h.key)).after(&h),
    )
    .await?;
    tx.commit().await?;
    Ok(h)
}

/// Inserts holder `h` at the end of the register order (the caller audits).
pub(crate) async fn insert_holder(tx: &mut Tx, h: &Holder) -> Result<(), DirectoryError> {
    let next: i64 = sqlx::query("SELECT COALESCE(MAX(position), -1) + 1 FROM holders")
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
    let now = now_ms();
    sqlx::query(
        "INSERT INTO holders (id, holder_key, name, nip, unit, kind, ktp_type, ktp_last4, \
         doors_json, schedule_json, valid_from, valid_until, valid_from_ms, valid_until_ms, \
         request_ref, approver, position, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, \
         $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
    )
    .bind(&h.id)
    .bind(&h.key)
    .bind(&h.name)
    .bind(&h.nip)
    .bind(&h.unit)
    .bind(h.kind.as_str())
    .bind(h.ktp.as_ref().map(|k| k.kind.clone()))
    .bind(h.ktp.as_ref().map(|k| k.last4.clone()))
    .bind(doors_json(&h.doors))
    .bind(schedule_json(&h.schedule))
    .bind(&h.valid_from)
    .bind(&h.valid_until)
    .bind(h.valid_from_ms)
    .bind(h.valid_until_ms)
    .bind(&h.request_ref)
    .bind(&h.approver)
    .bind(next)
    .bind(now)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) fn doors_json(doors: &Option<Vec<String>>) -> Option<String> {
    doors
        .as_ref()
        .map(|d| serde_json::to_string(d).unwrap_or_else(|_| "[]".into()))
}

pub(crate) fn schedule_json(schedule: &[Window]) -> String {
    serde_json::to_string(schedule).unwrap_or_else(|_| "[]".into())
}

/// Changes holder `holder_key`.
pub async fn update_holder(
    db: &Db,
    key: &ServiceKey,
    actor: &AuditActor,
    holder_key: &str,
    input: &HolderInput,
) -> Result<Holder, DirectoryError> {
    if input.key.as_deref().is_some_and(|k| k != holder_key) {
        return Err(FieldError::new(
            "key",
            "a holder's id cannot change (lists and door events use it)",
        )
        .into());
    }
    let mut tx = db.begin_write().await?;
    let tz = site_tz(&mut tx).await?;
    let doors = super::places::door_ids_in(&mut tx).await?;
    let before = holder_in(&mut tx, holder_key).await?;
    let mut h = before.clone();
    apply(&mut h, input, false, &doors, &tz)?;
    if h != before {
        sqlx::query(
            "UPDATE holders SET name = $1, nip = $2, unit = $3, kind = $4, ktp_type = $5, \
             ktp_last4 = $6, doors_json = $7, schedule_json = $8, valid_from = $9, \
             valid_until = $10, valid_from_ms = $11, valid_until_ms = $12, request_ref = $13, \
             approver = $14, updated_at_ms = $15 WHERE id = $16",
        )
        .bind(&h.name)
        .bind(&h.nip)
        .bind(&h.unit)
        .bind(h.kind.as_str())
        .bind(h.ktp.as_ref().map(|k| k.kind.clone()))
        .bind(h.ktp.as_ref().map(|k| k.last4.clone()))
        .bind(doors_json(&h.doors))
        .bind(schedule_json(&h.schedule))
        .bind(&h.valid_from)
        .bind(&h.valid_until)
        .bind(h.valid_from_ms)
        .bind(h.valid_until_ms)
        .bind(&h.request_ref)
        .bind(&h.approver)
        .bind(now_ms())
        .bind(&h.id)
        .execute(&mut *tx)
        .await?;
        audit::record(
            &mut tx,
            key,
            db.backend(),
            actor,
            Entry::new("holder.update", format!("holder:{holder_key}"))
                .before(&before)
                .after(&h),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(h)
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
    let hash = card_key.hash(&uid).to_hex();
    let mut tx = db.begin_write().await?;
    let holder = holder_in(&mut tx, holder_key).await?;
    if let Some(owner) = card_owner(&mut tx, &hash).await? {
        return Err(DirectoryError::Conflict(format!(
            "card {} is already held by {owner}; revoke it there first to move it",
            masked_hash(&hash)
        )));
    }
    let id = insert_card(&mut tx, key, Some(&holder.id), None, &hash, &uid).await?;
    audit::record(
        &mut tx,
        key,
        db.backend(),
        actor,
        Entry::new("card.enrol", format!("holder:{holder_key}"))
            .after(serde_json::json!({ "card": masked_hash(&hash), "holder": holder_key })),
    )
    .await?;
    let card = card_in(&mut tx, key, &id, true).await?;
    tx.commit().await?;
    Ok(card)
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
    revoke_in(&mut tx, db, key, actor, &card, &input).await?;
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
    revoke_in(&mut tx, db, key, actor, &card, &input).await?;
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
    let holder = holder_in(&mut tx, holder_key).await?;
    if let Some(row) =
        sqlx::query("SELECT id FROM visits WHERE ended_at IS NULL AND (host = $1 OR escort = $2)")
            .bind(holder_key)
            .bind(holder_key)
            .fetch_optional(&mut *tx)
            .await?
    {
        let visit: String = row.try_get(0)?;
        return Err(DirectoryError::Conflict(format!(
            "holder {holder_key} hosts or escorts open visit {visit}: end it first"
        )));
    }
    let ids = sqlx::query("SELECT id FROM cards WHERE holder_id = $1 ORDER BY position")
        .bind(&holder.id)
        .fetch_all(&mut *tx)
        .await?;
    if ids.is_empty() {
        return Err(DirectoryError::Conflict(format!(
            "holder {holder_key} has no card to revoke"
        )));
    }
    let mut out = Vec::new();
    for row in ids {
        let id: String = row.try_get(0)?;
        let card = card_in(&mut tx, key, &id, false).await?;
        revoke_in(&mut tx, db, key, actor, &card, &input).await?;
        out.push(card);
    }
    tx.commit().await?;
    Ok(out)
}

async fn revoke_in(
    tx: &mut Tx,
    db: &Db,
    key: &ServiceKey,
    actor: &AuditActor,
    card: &Card,
    input: &RevokeInput,
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
         reason, request_ref, by_name, position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
