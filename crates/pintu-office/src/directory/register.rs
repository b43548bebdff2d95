//! The register as a file: import of today's `register.toml` into the database, export of the
//! database as the same TOML (for backup and git), and the snapshot the signed list is built
//! from.
//!
//! The snapshot is the export text parsed by `pintu::office::register::LoadedRegister`, so the
//! list comes out of the very code `pintuctl` runs (`LoadedRegister::build_list`), in the same
//! entry order (rows keep the register's order in `position`): a list built from an imported
//! register is byte-identical to one built from the file.
//!
//! Import is additive and idempotent: what the database lacks is added; what it holds already
//! is left as the database has it (the database is the source of truth once imported) and a
//! difference is reported as skipped, with why. A malformed file is refused with file, line and
//! key before anything is written.

use std::path::Path;

use jiff::tz::TimeZone;
use pintu::core::card::{CardKey, Uid};
use pintu::core::list::Role;
use pintu::core::schedule::Window;
use pintu::office::register::{DateSpec, LoadedRegister};
use serde::Serialize;
use sha2::Digest;
use sqlx::Row;

use super::cards::{card_owner, insert_card};
use super::holders::{doors_json, insert_holder, schedule_json, Holder};
use super::places::{door_ids_in, insert_door, Door};
use super::{masked_hash, open_uid, seal_uid, DirectoryError};
use crate::audit::{self, AuditActor, Entry};
use crate::db::{new_id, now_ms, Db, Tx};
use crate::secret::ServiceKey;

/// The name of the snapshot "file" in messages about a register built from the database.
pub const SNAPSHOT_NAME: &str = "(office database)";

/// Added, unchanged and skipped items of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// New in the database.
    pub added: u64,
    /// Already there, the same.
    pub unchanged: u64,
    /// Not taken (see the report's `skipped`).
    pub skipped: u64,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// The register's site.
    pub site: String,
    /// SHA-256 of the file's text.
    pub sha256: String,
    /// Doors.
    pub doors: Counts,
    /// Holders.
    pub holders: Counts,
    /// Holders' cards.
    pub cards: Counts,
    /// Pool badges.
    pub badges: Counts,
    /// Visits.
    pub visits: Counts,
    /// Revocation records.
    pub revocations: Counts,
    /// Each item not taken, and why.
    pub skipped: Vec<String>,
}

impl ImportReport {
    /// Whether the import added anything.
    pub fn changed(&self) -> bool {
        [
            self.doors,
            self.holders,
            self.cards,
            self.badges,
            self.visits,
            self.revocations,
        ]
        .iter()
        .any(|c| c.added > 0)
    }
}

/// The `imported_into` marker of a site's register (in the file after import, and in exports).
pub fn marker(site: &str) -> String {
    format!("pintu-office (site {site})")
}

/// Imports `reg` (checked first: a bad file writes nothing). `card_key` hashes the UIDs as the
/// doors do. Audited as `register.import` with the report.
pub async fn import(
    db: &Db,
    key: &ServiceKey,
    card_key: &CardKey,
    actor: &AuditActor,
    reg: &LoadedRegister,
) -> Result<ImportReport, DirectoryError> {
    reg.check()?;
    let r = &reg.register;
    let tz = reg.time_zone()?;
    let valid_for = raw_valid_for(&reg.text);
    let mut report = ImportReport {
        site: r.site.clone(),
        sha256: hex::encode(sha2::Sha256::digest(reg.text.as_bytes())),
        ..ImportReport::default()
    };
    let mut tx = db.begin_write().await?;
    import_site(&mut tx, reg, &valid_for, &mut report).await?;

    let known = door_ids_in(&mut tx).await?;
    for door in &r.doors {
        if known.contains(door) {
            report.doors.unchanged += 1;
        } else {
            let d = Door {
                id: door.clone(),
                name: door.clone(),
                room_id: None,
            };
            insert_door(&mut tx, &d).await?;
            report.doors.added += 1;
        }
    }

    for h in &r.holders {
        import_holder(&mut tx, key, card_key, &tz, h, &mut report).await?;
    }

    for b in &r.badges {
        let uid = uid_of(&b.card)?;
        let hash = card_key.hash(&uid).to_hex();
        let by_label: Option<String> =
            sqlx::query("SELECT card_hash FROM cards WHERE badge_label = $1")
                .bind(&b.id)
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| row.try_get(0))
                .transpose()?;
        match by_label {
            Some(h) if h == hash => report.badges.unchanged += 1,
            Some(_) => skip(
                &mut report.badges,
                &mut report.skipped,
                format!(
                    "badge {}: the database's badge {} has another card; kept the database's",
                    b.id, b.id
                ),
            ),
            None => match card_owner(&mut tx, &hash).await? {
                Some(owner) => skip(
                    &mut report.badges,
                    &mut report.skipped,
                    format!(
                        "badge {}: card {} is held by {owner} in the database",
                        b.id,
                        masked_hash(&hash)
                    ),
                ),
                None => {
                    insert_card(&mut tx, key, None, Some(&b.id), &hash, &uid).await?;
                    report.badges.added += 1;
                }
            },
        }
    }

    for v in &r.visits {
        let fields = [
            v.visitor.clone(),
            v.host.clone(),
            v.escort.clone().unwrap_or_default(),
            v.badge.clone(),
            v.from.0.clone(),
            v.until.0.clone(),
            v.request_ref.clone(),
            v.approver.clone(),
            v.ended_at.as_ref().map(|d| d.0.clone()).unwrap_or_default(),
        ];
        let row = sqlx::query(
            "SELECT visitor, host, COALESCE(escort, ''), badge, window_from, window_until, \
             request_ref, approver, COALESCE(ended_at, '') FROM visits WHERE id = $1",
        )
        .bind(&v.id)
        .fetch_optional(&mut *tx)
        .await?;
        match row {
            Some(row) => {
                let stored = (0..9)
                    .map(|c| row.try_get::<String, _>(c))
                    .collect::<Result<Vec<_>, _>>()?;
                if stored == fields {
                    report.visits.unchanged += 1;
                } else {
                    skip(
                        &mut report.visits,
                        &mut report.skipped,
                        format!(
                            "visit {}: differs from the database's; kept the database's",
                            v.id
                        ),
                    );
                }
            }
            None => {
                let next = next_position(&mut tx, "visits").await?;
                sqlx::query(
                    "INSERT INTO visits (id, visitor, host, escort, badge, window_from, \
                     window_until, request_ref, approver, ended_at, position) VALUES ($1, $2, \
                     $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(&v.id)
                .bind(&v.visitor)
                .bind(&v.host)
                .bind(&v.escort)
                .bind(&v.badge)
                .bind(&v.from.0)
                .bind(&v.until.0)
                .bind(&v.request_ref)
                .bind(&v.approver)
                .bind(v.ended_at.as_ref().map(|d| d.0.clone()))
                .bind(next)
                .execute(&mut *tx)
                .await?;
                report.visits.added += 1;
            }
        }
    }

    for rev in &r.revoked {
        let uid = uid_of(&rev.card)?;
        let hash = card_key.hash(&uid).to_hex();
        let exists = sqlx::query(
            "SELECT id FROM card_revocations WHERE card_hash = $1 AND revoked_at = $2 \
             AND COALESCE(holder, '') = $3 AND COALESCE(badge, '') = $4",
        )
        .bind(&hash)
        .bind(&rev.at.0)
        .bind(rev.holder.clone().unwrap_or_default())
        .bind(rev.badge.clone().unwrap_or_default())
        .fetch_optional(&mut *tx)
        .await?;
        if exists.is_some() {
            report.revocations.unchanged += 1;
            continue;
        }
        let next = next_position(&mut tx, "card_revocations").await?;
        sqlx::query(
            "INSERT INTO card_revocations (id, holder, badge, card_hash, uid_enc, revoked_at, \
             reason, request_ref, by_name, position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
             $9, $10)",
        )
        .bind(new_id())
        .bind(&rev.holder)
        .bind(&rev.badge)
        .bind(&hash)
        .bind(seal_uid(key, &uid))
        .bind(&rev.at.0)
        .bind(&rev.reason)
        .bind(&rev.request_ref)
        .bind(&rev.by)
        .bind(next)
        .execute(&mut *tx)
        .await?;
        report.revocations.added += 1;
    }

    audit::record(
        &mut tx,
        key,
        db.backend(),
        actor,
        Entry::new("register.import", format!("register:{}", r.site)).after(&report),
    )
    .await?;
    tx.commit().await?;
    Ok(report)
}

fn skip(counts: &mut Counts, skipped: &mut Vec<String>, why: String) {
    counts.skipped += 1;
    skipped.push(why);
}

fn uid_of(text: &str) -> Result<Uid, DirectoryError> {
    // The register was checked: every UID parses.
    text.parse::<Uid>()
        .map_err(|e| DirectoryError::Conflict(format!("card {text}: {e}")))
}

async fn next_position(tx: &mut Tx, table: &'static str) -> Result<i64, DirectoryError> {
    let sql = match table {
        "visits" => "SELECT COALESCE(MAX(position), -1) + 1 FROM visits",
        _ => "SELECT COALESCE(MAX(position), -1) + 1 FROM card_revocations",
    };
    Ok(sqlx::query(sql).fetch_one(&mut **tx).await?.try_get(0)?)
}

/// `list_valid_for` as written in the file (the parsed form lost the spelling).
fn raw_valid_for(text: &str) -> String {
    toml::from_str::<toml::Table>(text)
        .ok()
        .and_then(|t| {
            t.get("list_valid_for")
                .and_then(|v| v.as_str().map(String::from))
        })
        .unwrap_or_else(|| "30days".into())
}

async fn import_site(
    tx: &mut Tx,
    reg: &LoadedRegister,
    valid_for: &str,
    report: &mut ImportReport,
) -> Result<(), DirectoryError> {
    let r = &reg.register;
    let row = sqlx::query("SELECT site, time_zone, list_version FROM site_register WHERE id = 1")
        .fetch_optional(&mut **tx)
        .await?;
    match row {
        None => {
            sqlx::query(
                "INSERT INTO site_register (id, site, time_zone, card_key_file, list_valid_for, \
                 list_version, updated_at_ms) VALUES (1, $1, $2, $3, $4, $5, $6)",
            )
            .bind(&r.site)
            .bind(&r.time_zone)
            .bind(r.card_key_file.display().to_string())
            .bind(valid_for)
            .bind(i64::try_from(r.list.version).unwrap_or(i64::MAX))
            .bind(now_ms())
            .execute(&mut **tx)
            .await?;
        }
        Some(row) => {
            let site: String = row.try_get(0)?;
            let zone: String = row.try_get(1)?;
            let version: i64 = row.try_get(2)?;
            if site != r.site {
                return Err(DirectoryError::Conflict(format!(
                    "the database holds site {site:?}; this register is for site {:?}: \
                     nothing imported",
                    r.site
                )));
            }
            if zone != r.time_zone {
                report.skipped.push(format!(
                    "time_zone: the database's {zone:?} kept (the file says {:?})",
                    r.time_zone
                ));
            }
            let file_version = i64::try_from(r.list.version).unwrap_or(i64::MAX);
            if file_version > version {
                // A list signed from the file after an earlier import: never go back below it.
                sqlx::query("UPDATE site_register SET list_version = $1 WHERE id = 1")
                    .bind(file_version)
                    .execute(&mut **tx)
                    .await?;
            }
        }
    }
    Ok(())
}

async fn import_holder(
    tx: &mut Tx,
    key: &ServiceKey,
    card_key: &CardKey,
    tz: &TimeZone,
    h: &pintu::office::register::Holder,
    report: &mut ImportReport,
) -> Result<(), DirectoryError> {
    let resolve = |d: &DateSpec| {
        d.resolve(tz)
            .map(|t| t.as_millisecond())
            .map_err(|m| DirectoryError::Conflict(format!("holder {}: {m}", h.id)))
    };
    let file = Holder {
        id: new_id(),
        key: h.id.clone(),
        name: h.name.clone(),
        nip: None,
        unit: h.unit.clone(),
        kind: h.role,
        ktp: None,
        doors: h.doors.clone(),
        schedule: h.schedule.clone(),
        valid_from: h.valid_from.0.clone(),
        valid_until: h.valid_until.0.clone(),
        valid_from_ms: resolve(&h.valid_from)?,
        valid_until_ms: resolve(&h.valid_until)?,
        request_ref: h.request_ref.clone(),
        approver: h.approver.clone(),
        cards: 0,
    };
    let stored = sqlx::query(
        "SELECT id, name, unit, kind, doors_json, schedule_json, valid_from, valid_until, \
         request_ref, approver FROM holders WHERE holder_key = $1",
    )
    .bind(&h.id)
    .fetch_optional(&mut **tx)
    .await?;
    let holder_id = match stored {
        None => {
            insert_holder(tx, &file).await?;
            report.holders.added += 1;
            file.id.clone()
        }
        Some(row) => {
            let same = row.try_get::<String, _>(1)? == file.name
                && row.try_get::<String, _>(2)? == file.unit
                && row.try_get::<String, _>(3)? == file.kind.as_str()
                && row.try_get::<Option<String>, _>(4)? == doors_json(&file.doors)
                && row.try_get::<String, _>(5)? == schedule_json(&file.schedule)
                && row.try_get::<String, _>(6)? == file.valid_from
                && row.try_get::<String, _>(7)? == file.valid_until
                && row.try_get::<String, _>(8)? == file.request_ref
                && row.try_get::<String, _>(9)? == file.approver;
            if same {
                report.holders.unchanged += 1;
            } else {
                skip(
                    &mut report.holders,
                    &mut report.skipped,
                    format!(
                        "holder {}: differs from the database's; kept the database's \
                         (change it in pintu-office)",
                        h.id
                    ),
                );
            }
            row.try_get(0)?
        }
    };
    for text in &h.cards {
        let uid = uid_of(text)?;
        let hash = card_key.hash(&uid).to_hex();
        match card_owner(tx, &hash).await? {
            Some(owner) if owner == format!("holder {}", h.id) => report.cards.unchanged += 1,
            Some(owner) => skip(
                &mut report.cards,
                &mut report.skipped,
                format!(
                    "holder {}: card {} is held by {owner} in the database",
                    h.id,
                    masked_hash(&hash)
                ),
            ),
            None => {
                insert_card(tx, key, Some(&holder_id), None, &hash, &uid).await?;
                report.cards.added += 1;
            }
        }
    }
    Ok(())
}

/// A date as the register writes it: a TOML date(-time) when it is one, else a string.
#[derive(Serialize)]
#[serde(untagged)]
enum DateOut {
    Date(toml::value::Datetime),
    Text(String),
}

fn date_out(text: &str) -> DateOut {
    match text.parse::<toml::value::Datetime>() {
        // Only when it prints back the same: the export's text must not drift.
        Ok(d) if d.to_string() == text => DateOut::Date(d),
        _ => DateOut::Text(text.to_string()),
    }
}

#[derive(Serialize)]
struct OutRegister {
    site: String,
    time_zone: String,
    doors: Vec<String>,
    card_key_file: String,
    list_valid_for: String,
    imported_into: String,
    list: OutList,
    #[serde(rename = "holder", skip_serializing_if = "Vec::is_empty")]
    holders: Vec<OutHolder>,
    #[serde(rename = "badge", skip_serializing_if = "Vec::is_empty")]
    badges: Vec<OutBadge>,
    #[serde(rename = "visit", skip_serializing_if = "Vec::is_empty")]
    visits: Vec<OutVisit>,
    #[serde(rename = "revoked", skip_serializing_if = "Vec::is_empty")]
    revoked: Vec<OutRevoked>,
}

#[derive(Serialize)]
struct OutList {
    version: i64,
}

#[derive(Serialize)]
struct OutHolder {
    id: String,
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    unit: String,
    role: Role,
    cards: Vec<String>,
    valid_from: DateOut,
    valid_until: DateOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    doors: Option<Vec<String>>,
    request_ref: String,
    approver: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    schedule: Vec<Window>,
}

#[derive(Serialize)]
struct OutBadge {
    id: String,
    card: String,
}

#[derive(Serialize)]
struct OutVisit {
    id: String,
    visitor: String,
    host: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    escort: Option<String>,
    badge: String,
    from: DateOut,
    until: DateOut,
    request_ref: String,
    approver: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ended_at: Option<DateOut>,
}

#[derive(Serialize)]
struct OutRevoked {
    #[serde(skip_serializing_if = "Option::is_none")]
    holder: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    badge: Option<String>,
    card: String,
    at: DateOut,
    reason: String,
    request_ref: String,
    by: String,
}

/// The database as register TOML (raw UIDs included: the file is for the administrator's
/// backup, like today's register). Not audited: [`export`] is the audited form.
pub async fn export_text(db: &Db, key: &ServiceKey) -> Result<String, DirectoryError> {
    let pool = db.pool();
    let site = sqlx::query(
        "SELECT site, time_zone, card_key_file, list_valid_for, list_version \
         FROM site_register WHERE id = 1",
    )
    .fetch_optional(pool)
    .await?
    .ok_or(DirectoryError::NoSite)?;
    let site_id: String = site.try_get(0)?;
    let doors = sqlx::query("SELECT id FROM doors ORDER BY position, id")
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<Vec<String>, _>>()?;

    let mut holders = Vec::new();
    let rows = sqlx::query(
        "SELECT id, holder_key, name, unit, kind, doors_json, schedule_json, valid_from, \
         valid_until, request_ref, approver FROM holders ORDER BY position, holder_key",
    )
    .fetch_all(pool)
    .await?;
    let bad = |what: &str| DirectoryError::Conflict(format!("stored holder has a bad {what}"));
    for r in &rows {
        let id: String = r.try_get(0)?;
        let cards =
            sqlx::query("SELECT uid_enc FROM cards WHERE holder_id = $1 ORDER BY position, id")
                .bind(&id)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|c| Ok(open_uid(key, &c.try_get::<String, _>(0)?)?.to_hex()))
                .collect::<Result<Vec<String>, DirectoryError>>()?;
        let kind: String = r.try_get(4)?;
        let doors: Option<String> = r.try_get(5)?;
        let schedule: String = r.try_get(6)?;
        holders.push(OutHolder {
            id: r.try_get(1)?,
            name: r.try_get(2)?,
            unit: r.try_get(3)?,
            role: serde_json::from_value(serde_json::Value::String(kind))
                .map_err(|_| bad("kind"))?,
            cards,
            valid_from: date_out(&r.try_get::<String, _>(7)?),
            valid_until: date_out(&r.try_get::<String, _>(8)?),
            doors: match doors {
                None => None,
                Some(d) => Some(serde_json::from_str(&d).map_err(|_| bad("doors"))?),
            },
            request_ref: r.try_get(9)?,
            approver: r.try_get(10)?,
            schedule: serde_json::from_str(&schedule).map_err(|_| bad("schedule"))?,
        });
    }

    let badges = sqlx::query(
        "SELECT badge_label, uid_enc FROM cards WHERE kind = 'badge' ORDER BY position, id",
    )
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(OutBadge {
            id: r.try_get(0)?,
            card: open_uid(key, &r.try_get::<String, _>(1)?)?.to_hex(),
        })
    })
    .collect::<Result<Vec<_>, DirectoryError>>()?;

    let visits = sqlx::query(
        "SELECT id, visitor, host, escort, badge, window_from, window_until, request_ref, \
         approver, ended_at FROM visits ORDER BY position, id",
    )
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(OutVisit {
            id: r.try_get(0)?,
            visitor: r.try_get(1)?,
            host: r.try_get(2)?,
            escort: r.try_get(3)?,
            badge: r.try_get(4)?,
            from: date_out(&r.try_get::<String, _>(5)?),
            until: date_out(&r.try_get::<String, _>(6)?),
            request_ref: r.try_get(7)?,
            approver: r.try_get(8)?,
            ended_at: r.try_get::<Option<String>, _>(9)?.map(|d| date_out(&d)),
        })
    })
    .collect::<Result<Vec<_>, DirectoryError>>()?;

    let revoked = sqlx::query(
        "SELECT holder, badge, uid_enc, revoked_at, reason, request_ref, by_name \
         FROM card_revocations ORDER BY position, id",
    )
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| {
        Ok(OutRevoked {
            holder: r.try_get(0)?,
            badge: r.try_get(1)?,
            card: open_uid(key, &r.try_get::<String, _>(2)?)?.to_hex(),
            at: date_out(&r.try_get::<String, _>(3)?),
            reason: r.try_get(4)?,
            request_ref: r.try_get(5)?,
            by: r.try_get(6)?,
        })
    })
    .collect::<Result<Vec<_>, DirectoryError>>()?;

    let out = OutRegister {
        imported_into: marker(&site_id),
        site: site_id,
        time_zone: site.try_get(1)?,
        doors,
        card_key_file: site.try_get(2)?,
        list_valid_for: site.try_get(3)?,
        list: OutList {
            version: site.try_get(4)?,
        },
        holders,
        badges,
        visits,
        revoked,
    };
    let body = toml::to_string(&out)
        .map_err(|e| DirectoryError::Conflict(format!("the register does not print: {e}")))?;
    Ok(format!(
        "# The register of site {}, exported by pintu-office (docs/office-data.md).\n\
         # The office database is the source of truth: this file is a backup. Restore it into an\n\
         # empty database with `pintu-office register import`; pintuctl only reads it.\n{body}",
        out.site
    ))
}

/// [`export_text`], recorded in the audit trail (`register.export`).
pub async fn export(
    db: &Db,
    key: &ServiceKey,
    actor: &AuditActor,
) -> Result<String, DirectoryError> {
    let text = export_text(db, key).await?;
    audit::record_alone(
        db,
        key,
        actor,
        Entry::new("register.export", "register").after(serde_json::json!({
            "sha256": hex::encode(sha2::Sha256::digest(text.as_bytes())),
            "bytes": text.len(),
        })),
    )
    .await?;
    Ok(text)
}

/// The register as the database holds it, parsed by the code `pintuctl` runs: call
/// `build_list` on it to make the payload of a signed list. Errors name lines of the export
/// text (file [`SNAPSHOT_NAME`]).
pub async fn snapshot(db: &Db, key: &ServiceKey) -> Result<LoadedRegister, DirectoryError> {
    let text = export_text(db, key).await?;
    Ok(LoadedRegister::parse(Path::new(SNAPSHOT_NAME), &text)?)
}

/// The site id of the imported register (`None` before an import).
pub async fn registered_site(db: &Db) -> Result<Option<String>, DirectoryError> {
    let row = sqlx::query("SELECT site FROM site_register WHERE id = 1")
        .fetch_optional(db.pool())
        .await?;
    Ok(match row {
        Some(row) => Some(row.try_get(0)?),
        None => None,
    })
}

/// Records `version` as the last list version signed (never lowers it).
pub async fn record_list_version(
    db: &Db,
    key: &ServiceKey,
    actor: &AuditActor,
    version: u64,
) -> Result<(), DirectoryError> {
    let version = i64::try_from(version).unwrap_or(i64::MAX);
    let mut tx = db.begin_write().await?;
    let before: i64 = sqlx::query("SELECT list_version FROM site_register WHERE id = 1")
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(DirectoryError::NoSite)?
        .try_get(0)?;
    if version > before {
        sqlx::query("UPDATE site_register SET list_version = $1, updated_at_ms = $2 WHERE id = 1")
            .bind(version)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        audit::record(
            &mut tx,
            key,
            db.backend(),
            actor,
            Entry::new("register.list_version", "register")
                .before(serde_json::json!({ "version": before }))
                .after(serde_json::json!({ "version": version })),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Marks the register file at `path` (text `text`) as imported: prepends the
/// `imported_into` line, so `pintuctl`'s writing commands refuse it from now on. Returns
/// `false` when it already carries the marker.
pub fn mark_file(path: &Path, text: &str, site: &str) -> std::io::Result<bool> {
    let already = toml::from_str::<toml::Table>(text)
        .ok()
        .is_some_and(|t| t.contains_key("imported_into"));
    if already {
        return Ok(false);
    }
    let marked = format!(
        "# Imported into the office database: pintu-office is the source of truth now and\n\
         # pintuctl only reads this file (docs/operator.md, \"Moving to pintu-office\").\n\
         imported_into = {:?}\n{text}",
        marker(site)
    );
    let mode = std::fs::metadata(path)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)
        .unwrap_or(0o640);
    pintu::util::files::write_atomic(path, marked.as_bytes(), mode)?;
    Ok(true)
}
