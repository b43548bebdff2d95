//! Holders: list and search (paged on the server; the search index is
//! [`super::holder_search`]), create, update. Each change and its audit
//! record (before/after) commit in one transaction. The rules are the register's
//! (`docs/register.md`): a holder keeps their request reference and approver, and a change of
//! access (role, doors, schedule, validity) needs a new request reference and approver. Their
//! cards are in [`super::cards`].

use jiff::tz::TimeZone;
use jiff::Timestamp;
use pintu::core::list::Role;
use pintu::core::schedule::Window;
use pintu::office::register::DateSpec;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{DirectoryError, Page, Paged};
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

/// The same columns, for statements built at run time ([`super::holder_search`]).
pub(super) const HOLDER_COLUMNS: &str = holder_cols!();

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

pub(super) fn holder_of(r: &AnyRow) -> Result<Holder, DirectoryError> {
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

/// Holders in register order, a page of them; with a search, those matching every word of it
/// (word prefixes of name, id, unit and NIP: [`super::holder_search`]).
pub async fn list_holders(db: &Db, page: &Page) -> Result<Paged<Holder>, DirectoryError> {
    match page.search.as_deref() {
        Some([]) => Ok(Paged {
            // Searched for nothing a word can hold (`%`, `-`): no holder matches.
            items: Vec::new(),
            page: page.page,
            per_page: page.per_page,
            total: 0,
        }),
        Some(words) => super::holder_search::search(db, page, words).await,
        None => {
            // No filter: the count reads the smallest index, the page walks `holders_order`.
            // The page's ids first: PostgreSQL computes the select list (the card count) of
            // every row it skips for OFFSET.
            let total: i64 = sqlx::query("SELECT COUNT(*) FROM holders")
                .fetch_one(db.pool())
                .await?
                .try_get(0)?;
            let rows = sqlx::query(concat!(
                "SELECT ",
                holder_cols!(),
                " FROM holders WHERE id IN (SELECT id FROM holders \
                 ORDER BY position, holder_key LIMIT $1 OFFSET $2) ORDER BY position, holder_key"
            ))
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
    }
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

pub(crate) async fn holder_in(tx: &mut Tx, key: &str) -> Result<Holder, DirectoryError> {
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
    let h = create_holder_in(&mut tx, db, key, actor, &holder_key, input).await?;
    tx.commit().await?;
    Ok(h)
}

/// [`create_holder`] inside the caller's transaction (a request's fulfilment creates the
/// holder and enrols the card in one); `holder_key` is checked already.
pub(crate) async fn create_holder_in(
    tx: &mut Tx,
    db: &Db,
    key: &ServiceKey,
    actor: &AuditActor,
    holder_key: &str,
    input: &HolderInput,
) -> Result<Holder, DirectoryError> {
    let holder_key = holder_key.to_string();
    let tz = site_tz(tx).await?;
    let doors = super::places::door_ids_in(tx).await?;
    if sqlx::query("SELECT id FROM holders WHERE holder_key = $1")
        .bind(&holder_key)
        .fetch_optional(&mut **tx)
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
    insert_holder(tx, &h).await?;
    audit::record(
        tx,
        key,
        db.backend(),
        actor,
        Entry::new("holder.create", format!("holder:{}", h.key)).after(&h),
    )
    .await?;
    Ok(h)
}

/// Inserts holder `h` at the end of the register order, with its search terms (the caller
/// audits). Creation and the register import both come here.
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
    super::holder_search::index_holder(tx, h).await
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
        super::holder_search::index_holder(&mut tx, &h).await?;
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
