//! Visits: an approved visit binds a badge of the pool to a visitor for a window, with a host and
//! an escort (the register's `[[visit]]`, `docs/visits.md`). Issued when a visit request is
//! fulfilled, ended when the badge comes back. The rules are `pintuctl visit issue`'s: the badge
//! is in the pool and not out on another open visit, the host and escort are holders who are
//! not visitors, the window ends after it starts, and a visitor is named, never identified by a
//! national ID number.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::holders::site_tz;
use super::{DirectoryError, Page, Paged};
use crate::audit::{self, AuditActor, Entry};
use crate::db::{Db, Tx};
use crate::input::{single_line, FieldError};
use crate::secret::ServiceKey;

/// A visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Visit {
    /// Visit id (`V-2026-0042`).
    pub id: String,
    /// Who visits (name and company).
    pub visitor: String,
    /// Holder id of the host.
    pub host: String,
    /// Holder id of the escort, if named.
    pub escort: Option<String>,
    /// Badge label.
    pub badge: String,
    /// Window start, as written.
    pub from: String,
    /// Window end (exclusive), as written.
    pub until: String,
    /// Reference of the visit request.
    pub request_ref: String,
    /// Who approved it.
    pub approver: String,
    /// When it was ended (site-local), `None` while open.
    pub ended_at: Option<String>,
}

/// A visit to issue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisitInput {
    /// Visit id; default the next `V-YEAR-NNNN`.
    #[serde(default)]
    pub id: Option<String>,
    /// Who visits.
    pub visitor: String,
    /// Host holder id.
    pub host: String,
    /// Escort holder id.
    #[serde(default)]
    pub escort: Option<String>,
    /// Badge label from the pool.
    pub badge: String,
    /// Window start (`2026-11-24 09:00` site time, or RFC 3339); default now.
    #[serde(default)]
    pub from: Option<String>,
    /// Window end.
    pub until: String,
    /// Reference of the visit request.
    pub request_ref: String,
    /// Who approved it.
    pub approver: String,
}

fn visit_of(r: &AnyRow) -> Result<Visit, sqlx::Error> {
    Ok(Visit {
        id: r.try_get(0)?,
        visitor: r.try_get(1)?,
        host: r.try_get(2)?,
        escort: r.try_get(3)?,
        badge: r.try_get(4)?,
        from: r.try_get(5)?,
        until: r.try_get(6)?,
        request_ref: r.try_get(7)?,
        approver: r.try_get(8)?,
        ended_at: r.try_get(9)?,
    })
}

/// Visits whose id, visitor, host or badge matches the search, newest first; `open` keeps the
/// open ones only.
pub async fn list_visits(db: &Db, page: &Page, open: bool) -> Result<Paged<Visit>, DirectoryError> {
    let open = if open { 1i64 } else { 0 };
    let total: i64 = sqlx::query(
        "SELECT COUNT(*) FROM visits WHERE ($1 = 0 OR ended_at IS NULL) AND \
         (LOWER(id) LIKE $2 ESCAPE '\\' OR LOWER(visitor) LIKE $3 ESCAPE '\\' \
         OR LOWER(host) LIKE $4 ESCAPE '\\' OR LOWER(badge) LIKE $5 ESCAPE '\\')",
    )
    .bind(open)
    .bind(&page.pattern)
    .bind(&page.pattern)
    .bind(&page.pattern)
    .bind(&page.pattern)
    .fetch_one(db.pool())
    .await?
    .try_get(0)?;
    let rows = sqlx::query(
        "SELECT id, visitor, host, escort, badge, window_from, window_until, request_ref, \
         approver, ended_at FROM visits WHERE ($1 = 0 OR ended_at IS NULL) AND \
         (LOWER(id) LIKE $2 ESCAPE '\\' OR LOWER(visitor) LIKE $3 ESCAPE '\\' \
         OR LOWER(host) LIKE $4 ESCAPE '\\' OR LOWER(badge) LIKE $5 ESCAPE '\\') \
         ORDER BY position DESC, id LIMIT $6 OFFSET $7",
    )
    .bind(open)
    .bind(&page.pattern)
    .bind(&page.pattern)
    .bind(&page.pattern)
    .bind(&page.pattern)
    .bind(page.per_page)
    .bind(page.offset())
    .fetch_all(db.pool())
    .await?;
    Ok(Paged {
        items: rows.iter().map(visit_of).collect::<Result<_, _>>()?,
        page: page.page,
        per_page: page.per_page,
        total,
    })
}

async fn visit_in(tx: &mut Tx, id: &str) -> Result<Option<Visit>, DirectoryError> {
    let row = sqlx::query(
        "SELECT id, visitor, host, escort, badge, window_from, window_until, request_ref, \
         approver, ended_at FROM visits WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.as_ref().map(visit_of).transpose()?)
}

/// A run of 16 digits: how an Indonesian NIK (KTP number) looks. Visits record names only.
fn looks_like_national_id(text: &str) -> bool {
    let mut run = 0;
    for c in text.chars() {
        if c.is_ascii_digit() {
            run += 1;
            if run >= 16 {
                return true;
            }
        } else if c != ' ' && c != '.' {
            run = 0;
        }
    }
    false
}

async fn check_person(tx: &mut Tx, field: &str, key: &str) -> Result<(), DirectoryError> {
    let kind: Option<String> = sqlx::query("SELECT kind FROM holders WHERE holder_key = $1")
        .bind(key)
        .fetch_optional(&mut **tx)
        .await?
        .map(|r| r.try_get(0))
        .transpose()?;
    match kind.as_deref() {
        None => Err(FieldError::new(field, format!("{key:?} is not a holder")).into()),
        Some("visitor") => Err(FieldError::new(
            field,
            format!("{key:?} is a visitor; a {field} is staff or escort"),
        )
        .into()),
        Some(_) => Ok(()),
    }
}

/// Issues a visit: the badge leaves the pool for the window.
pub async fn issue_visit(
    db: &Db,
    key: &ServiceKey,
    actor: &AuditActor,
    input: &VisitInput,
) -> Result<Visit, DirectoryError> {
    let mut tx = db.begin_write().await?;
    let visit = issue_visit_in(&mut tx, db, key, actor, input, None).await?;
    tx.commit().await?;
    Ok(visit)
}

/// [`issue_visit`] inside the caller's transaction; `request_id`: the visit request whose
/// fulfilment reserves the badge (recorded on the visit).
pub(crate) async fn issue_visit_in(
    tx: &mut Tx,
    db: &Db,
    key: &ServiceKey,
    actor: &AuditActor,
    input: &VisitInput,
    request_id: Option<&str>,
) -> Result<Visit, DirectoryError> {
    let visitor = single_line("visitor", &input.visitor, 100)?;
    if looks_like_national_id(&visitor) {
        return Err(
            FieldError::new("visitor", "a name and company, never a national ID number").into(),
        );
    }
    let tz = site_tz(tx).await?;
    let now = Timestamp::now();
    let from = match &input.from {
        Some(f) => single_line("from", f, 40)?,
        None => now
            .to_zoned(tz.clone())
            .strftime("%Y-%m-%d %H:%M")
            .to_string(),
    };
    let until = single_line("until", &input.until, 40)?;
    let resolve = |field: &str, text: &str| {
        pintu::office::register::DateSpec(text.to_string())
            .resolve(&tz)
            .map_err(|m| FieldError::new(field, m))
    };
    if resolve("until", &until)? <= resolve("from", &from)? {
        return Err(FieldError::new("until", "the window ends before it starts").into());
    }
    check_person(tx, "host", &input.host).await?;
    if let Some(escort) = &input.escort {
        check_person(tx, "escort", escort).await?;
    }
    if sqlx::query("SELECT id FROM cards WHERE badge_label = $1")
        .bind(&input.badge)
        .fetch_optional(&mut **tx)
        .await?
        .is_none()
    {
        return Err(
            FieldError::new("badge", format!("no badge {:?} in the pool", input.badge)).into(),
        );
    }
    if let Some(row) = sqlx::query("SELECT id FROM visits WHERE badge = $1 AND ended_at IS NULL")
        .bind(&input.badge)
        .fetch_optional(&mut **tx)
        .await?
    {
        let other: String = row.try_get(0)?;
        return Err(DirectoryError::Conflict(format!(
            "badge {} is out on open visit {other}",
            input.badge
        )));
    }
    let year = now.to_zoned(tz).year();
    let id = match &input.id {
        Some(id) => single_line("id", id, 40)?,
        None => {
            let n: i64 = sqlx::query("SELECT COUNT(*) FROM visits")
                .fetch_one(&mut **tx)
                .await?
                .try_get(0)?;
            let mut n = n + 1;
            loop {
                let candidate = format!("V-{year}-{n:04}");
                if visit_in(tx, &candidate).await?.is_none() {
                    break candidate;
                }
                n += 1;
            }
        }
    };
    if visit_in(tx, &id).await?.is_some() {
        return Err(DirectoryError::Conflict(format!("visit {id} exists")));
    }
    let visit = Visit {
        id,
        visitor,
        host: input.host.clone(),
        escort: input.escort.clone(),
        badge: input.badge.clone(),
        from,
        until,
        request_ref: single_line("request_ref", &input.request_ref, 100)?,
        approver: single_line("approver", &input.approver, 100)?,
        ended_at: None,
    };
    let next: i64 = sqlx::query("SELECT COALESCE(MAX(position), -1) + 1 FROM visits")
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
    sqlx::query(
        "INSERT INTO visits (id, visitor, host, escort, badge, window_from, window_until, \
         request_ref, approver, ended_at, position, request_id) VALUES ($1, $2, $3, $4, $5, $6, \
         $7, $8, $9, NULL, $10, $11)",
    )
    .bind(&visit.id)
    .bind(&visit.visitor)
    .bind(&visit.host)
    .bind(&visit.escort)
    .bind(&visit.badge)
    .bind(&visit.from)
    .bind(&visit.until)
    .bind(&visit.request_ref)
    .bind(&visit.approver)
    .bind(next)
    .bind(request_id)
    .execute(&mut **tx)
    .await?;
    audit::record(
        tx,
        key,
        db.backend(),
        actor,
        Entry::new("visit.issue", format!("visit:{}", visit.id)).after(&visit),
    )
    .await?;
    Ok(visit)
}

/// Ends open visit `id`: its badge is back in the pool.
pub async fn end_visit(
    db: &Db,
    key: &ServiceKey,
    actor: &AuditActor,
    id: &str,
) -> Result<Visit, DirectoryError> {
    let mut tx = db.begin_write().await?;
    let tz = site_tz(&mut tx).await?;
    let before = visit_in(&mut tx, id)
        .await?
        .ok_or_else(|| DirectoryError::NotFound(format!("visit {id}")))?;
    if before.ended_at.is_some() {
        return Err(DirectoryError::Conflict(format!(
            "visit {id} has ended already"
        )));
    }
    let at = Timestamp::now()
        .to_zoned(tz)
        .strftime("%Y-%m-%d %H:%M")
        .to_string();
    sqlx::query("UPDATE visits SET ended_at = $1 WHERE id = $2")
        .bind(&at)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let after = Visit {
        ended_at: Some(at),
        ..before.clone()
    };
    audit::record(
        &mut tx,
        key,
        db.backend(),
        actor,
        Entry::new("visit.end", format!("visit:{id}"))
            .before(&before)
            .after(&after),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}
