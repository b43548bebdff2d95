//! The requests' rows: filing, stepping, reading, listing.

use pintu_core::workflow::{self, Action, Chain, Request, Stage, StepRecord};
use serde::Serialize;
use sqlx::Row;

use super::signature::{self, SignedDecision};
use super::{
    due_ms, may_see, ts, workflow_actor, Awaiting, NewRequest, RequestError, RequestView, StepView,
    READ_ALL,
};
use crate::audit::{self, Entry};
use crate::auth::Actor;
use crate::db::{new_id, now_ms, Backend, Db, Tx};
use crate::input::{note, single_line, FieldError};
use crate::secret::ServiceKey;

/// Longest door list of one request.
const MAX_DOORS: usize = 64;

/// Files a request for `actor` (requester or helpdesk).
pub async fn submit(
    db: &Db,
    key: &ServiceKey,
    chain: &Chain,
    actor: &Actor,
    new: NewRequest,
) -> Result<RequestView, RequestError> {
    let now = now_ms();
    let request = workflow::submit(new.kind, &workflow_actor(actor), ts(now))?;
    let unit = single_line("unit", &new.unit, 120)?;
    let subject_name = single_line("subject_name", &new.subject_name, 120)?;
    let subject_nip = match new
        .subject_nip
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        Some(nip) => {
            if let Some(message) = crate::auth::accounts::nip_problem(nip) {
                return Err(FieldError::new("subject_nip", message).into());
            }
            Some(nip.to_string())
        }
        None => None,
    };
    let reason = note("reason", Some(&new.reason), workflow::TEXT_MAX_CHARS)?
        .ok_or_else(|| FieldError::new("reason", "must not be empty"))?;
    if new.doors.len() > MAX_DOORS {
        return Err(FieldError::new("doors", format!("at most {MAX_DOORS} doors")).into());
    }
    let mut doors = Vec::with_capacity(new.doors.len());
    for (i, door) in new.doors.iter().enumerate() {
        let door = door.trim();
        if !pintu_core::list::is_identifier(door) {
            return Err(FieldError::new(
                format!("doors[{i}]"),
                format!("not a door id: {}", pintu_core::text::quoted(door)),
            )
            .into());
        }
        doors.push(door.to_string());
    }
    if let (Some(from), Some(until)) = (new.window_from, new.window_until) {
        if until <= from {
            return Err(FieldError::new("window_until", "must be after window_from").into());
        }
    }
    let letter_name = match new.letter_name.as_deref() {
        Some(name) => Some(single_line("letter_name", name, 200)?),
        None => None,
    };
    let letter_sha256 = match new.letter_sha256.as_deref().map(str::trim) {
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Some(h.to_ascii_lowercase())
        }
        Some(_) => return Err(FieldError::new("letter_sha256", "expected 64 hex digits").into()),
        None => None,
    };

    let mut tx = db.begin_write().await?;
    lock_requests(&mut tx, db.backend()).await?;
    let year = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .year();
    let prefix = format!("REQ-{year}-");
    let count: i64 = sqlx::query("SELECT COUNT(*) FROM requests WHERE reference LIKE $1")
        .bind(format!("{prefix}%"))
        .fetch_one(&mut *tx)
        .await?
        .try_get(0)?;
    let reference = format!("{prefix}{:04}", count + 1);
    let id = new_id();
    let due = due_ms(chain, &request);
    sqlx::query(
        "INSERT INTO requests (id, reference, kind, stage, requester_id, unit, subject_name, \
         subject_nip, reason, doors_json, window_from_ms, window_until_ms, letter_name, \
         letter_sha256, entered_stage_at_ms, due_at_ms, created_at_ms, updated_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $15, $15)",
    )
    .bind(&id)
    .bind(&reference)
    .bind(new.kind.as_str())
    .bind(Stage::Submitted.as_str())
    .bind(actor.account_id())
    .bind(&unit)
    .bind(&subject_name)
    .bind(&subject_nip)
    .bind(&reason)
    .bind(serde_json::to_string(&doors).unwrap_or_else(|_| "[]".into()))
    .bind(new.window_from.map(|t| t.as_millisecond()))
    .bind(new.window_until.map(|t| t.as_millisecond()))
    .bind(&letter_name)
    .bind(&letter_sha256)
    .bind(now)
    .bind(due)
    .execute(&mut *tx)
    .await?;
    let view = load(&mut tx, chain, actor, &id).await?;
    audit::record(
        &mut tx,
        key,
        db.backend(),
        &actor.audit(),
        Entry::new("request.submit", format!("request:{reference}")).after(&view),
    )
    .await?;
    tx.commit().await?;
    Ok(view)
}

/// A step as it is taken: the workflow's action, and what goes with it.
#[derive(Debug)]
pub struct Step<'a> {
    /// The action (stored and audited).
    pub action: Action,
    /// An approval's or rejection's signed statement ([`super::sign_decision`], made before
    /// the write transaction opens); stored with the step.
    pub signed: Option<SignedDecision>,
    /// A fulfilment's details, carried out in the step's transaction.
    pub fulfil: super::FulfilContext<'a>,
}

impl Step<'_> {
    /// A step with nothing beside its action (dispose, verify, inform, withdraw, a fulfil
    /// that records its note only).
    pub fn plain(action: Action) -> Step<'static> {
        Step {
            action,
            signed: None,
            fulfil: super::FulfilContext::default(),
        }
    }
}

/// `actor` takes `step` on request `id` (or its reference), in one transaction with what goes
/// with it (the decision's signature, the fulfilment's directory changes) and its audit rows.
pub async fn act(
    db: &Db,
    key: &ServiceKey,
    chain: &Chain,
    actor: &Actor,
    id: &str,
    step: Step<'_>,
) -> Result<RequestView, RequestError> {
    let Step {
        action,
        signed,
        fulfil,
    } = step;
    if fulfil.details.is_some() && !matches!(action, Action::Fulfil { .. }) {
        return Err(FieldError::new("fulfilment", "only with the fulfil action").into());
    }
    let mut tx = db.begin_write().await?;
    lock_requests(&mut tx, db.backend()).await?;
    let before = load(&mut tx, chain, actor, id).await?;
    let request = state_of(&before);
    let outcome = workflow::step(
        chain,
        &request,
        &workflow_actor(actor),
        &action,
        ts(now_ms()),
    )?;
    signature::check(signed.as_ref(), &before, actor.account_id(), &action)?;
    let mut after_state = request.clone();
    after_state.apply(&outcome);
    let StepRecord {
        role, from, to, at, ..
    } = &outcome.record;
    let n = before.history.len() as i64 + 1;
    sqlx::query(
        "INSERT INTO request_steps (request_id, n, action, action_json, actor_id, role, \
         from_stage, to_stage, at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&before.id)
    .bind(n)
    .bind(action.kind().as_str())
    .bind(serde_json::to_string(&action).unwrap_or_default())
    .bind(actor.account_id())
    .bind(role.as_str())
    .bind(from.as_str())
    .bind(to.as_str())
    .bind(at.as_millisecond())
    .execute(&mut *tx)
    .await?;
    if let Some(s) = &signed {
        signature::store(&mut tx, &before.id, n, s).await?;
    }
    let updated = sqlx::query(
        "UPDATE requests SET stage = $1, entered_stage_at_ms = $2, due_at_ms = $3, \
         updated_at_ms = $2 WHERE id = $4 AND stage = $5",
    )
    .bind(to.as_str())
    .bind(at.as_millisecond())
    .bind(due_ms(chain, &after_state))
    .bind(&before.id)
    .bind(from.as_str())
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Err(RequestError::Changed);
    }
    if matches!(action, Action::Fulfil { .. }) {
        // In this transaction: a refused enrolment leaves no step behind.
        super::fulfil::carry_out(&mut tx, db, key, actor, &before, fulfil).await?;
    }
    let after = load(&mut tx, chain, actor, &before.id).await?;
    audit::record(
        &mut tx,
        key,
        db.backend(),
        &actor.audit(),
        Entry::new(
            audit_action(action.kind()),
            format!("request:{}", before.reference),
        )
        .before(serde_json::json!({ "stage": before.stage }))
        .after(signature::audit_after(
            serde_json::json!({ "stage": after.stage, "action": action }),
            signed.as_ref(),
        )),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

fn audit_action(kind: workflow::ActionKind) -> &'static str {
    use workflow::ActionKind as K;
    match kind {
        K::Dispose => "request.dispose",
        K::Verify => "request.verify",
        K::Approve => "request.approve",
        K::Reject => "request.reject",
        K::Fulfil => "request.fulfil",
        K::Inform => "request.inform",
        K::Withdraw => "request.withdraw",
    }
}

/// Serialises request writers on PostgreSQL (the reference counter, the stage check); SQLite's
/// `BEGIN IMMEDIATE` already does. The audit append takes the same lock, so one lock order.
async fn lock_requests(tx: &mut Tx, backend: Backend) -> Result<(), RequestError> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(7281001)")
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// The workflow's state of a loaded request.
pub(super) fn state_of(view: &RequestView) -> Request {
    Request {
        kind: view.kind,
        stage: view.stage,
        requester: view.requester_id.clone(),
        entered_at: ts(view.entered_stage_at_ms),
        history: view
            .history
            .iter()
            .map(|s| StepRecord {
                account: s.actor_id.clone(),
                role: s.role,
                action: s.action.clone(),
                from: s.from,
                to: s.to,
                at: ts(s.at_ms),
            })
            .collect(),
    }
}

const COLUMNS: &str = "r.id, r.reference, r.kind, r.stage, r.requester_id, a.username, r.unit, \
    r.subject_name, r.subject_nip, r.reason, r.doors_json, r.window_from_ms, r.window_until_ms, \
    r.letter_name, r.letter_sha256, r.created_at_ms, r.entered_stage_at_ms, r.due_at_ms";

fn parse<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, RequestError> {
    text.parse().map_err(|_| {
        RequestError::Db(crate::db::DbError::Query(sqlx::Error::Decode(
            format!("stored {what} {text:?} is not known to this version").into(),
        )))
    })
}

fn view_of(row: &sqlx::any::AnyRow, chain: &Chain) -> Result<RequestView, RequestError> {
    let kind: String = row.try_get(2)?;
    let stage: String = row.try_get(3)?;
    let doors: String = row.try_get(10)?;
    let mut view = RequestView {
        id: row.try_get(0)?,
        reference: row.try_get(1)?,
        kind: parse(&kind, "request kind")?,
        stage: parse(&stage, "stage")?,
        requester_id: row.try_get(4)?,
        requester_name: row.try_get(5)?,
        unit: row.try_get(6)?,
        subject_name: row.try_get(7)?,
        subject_nip: row.try_get(8)?,
        reason: row.try_get(9)?,
        doors: serde_json::from_str(&doors).unwrap_or_default(),
        window_from_ms: row.try_get(11)?,
        window_until_ms: row.try_get(12)?,
        letter_name: row.try_get(13)?,
        letter_sha256: row.try_get(14)?,
        created_at_ms: row.try_get(15)?,
        entered_stage_at_ms: row.try_get(16)?,
        due_at_ms: row.try_get(17)?,
        overdue: false,
        awaiting: None,
        history: Vec::new(),
        allowed_actions: Vec::new(),
        fulfilment: None,
    };
    view.overdue = view.due_at_ms.is_some_and(|due| due < now_ms());
    let state = state_of(&view);
    view.awaiting = workflow::awaiting(chain, &state).map(|s| Awaiting {
        step: s.step,
        role: s.role,
    });
    Ok(view)
}

/// Loads one request (by id or reference) with its history and its decisions' signatures
/// (verified now), checking the viewer may see it.
async fn load(
    tx: &mut Tx,
    chain: &Chain,
    actor: &Actor,
    id: &str,
) -> Result<RequestView, RequestError> {
    let mut view = load_unchecked(tx, chain, id).await?;
    if !may_see(actor, &view.requester_id) {
        return Err(RequestError::NotFound);
    }
    signature::attach(tx, &mut view).await?;
    view.allowed_actions =
        workflow::allowed_actions(chain, &state_of(&view), &workflow_actor(actor));
    view.fulfilment = super::fulfil::view_in(tx, &view.id).await?;
    Ok(view)
}

/// Loads one request with its history, whoever asks (no signatures, no allowed actions).
pub(super) async fn load_unchecked(
    tx: &mut Tx,
    chain: &Chain,
    id: &str,
) -> Result<RequestView, RequestError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM requests r JOIN accounts a ON a.id = r.requester_id \
         WHERE r.id = $1 OR r.reference = $1"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or(RequestError::NotFound)?;
    let mut view = view_of(&row, chain)?;
    let steps = sqlx::query(
        "SELECT s.n, s.action_json, s.actor_id, a.username, s.role, s.from_stage, s.to_stage, \
         s.at_ms FROM request_steps s JOIN accounts a ON a.id = s.actor_id \
         WHERE s.request_id = $1 ORDER BY s.n",
    )
    .bind(&view.id)
    .fetch_all(&mut **tx)
    .await?;
    for s in steps {
        let action: String = s.try_get(1)?;
        let role: String = s.try_get(4)?;
        let from: String = s.try_get(5)?;
        let to: String = s.try_get(6)?;
        view.history.push(StepView {
            n: s.try_get(0)?,
            action: serde_json::from_str(&action).map_err(|e| {
                RequestError::Db(crate::db::DbError::Query(sqlx::Error::Decode(e.into())))
            })?,
            actor_id: s.try_get(2)?,
            actor_name: s.try_get(3)?,
            role: parse(&role, "role")?,
            from: parse(&from, "stage")?,
            to: parse(&to, "stage")?,
            at_ms: s.try_get(7)?,
            signature: None,
        });
    }
    Ok(view)
}

/// One request, as `actor` sees it.
pub async fn get(
    db: &Db,
    chain: &Chain,
    actor: &Actor,
    id: &str,
) -> Result<RequestView, RequestError> {
    // A read transaction gives one consistent view of the request and its steps.
    let mut tx = db.pool().begin().await?;
    let view = load(&mut tx, chain, actor, id).await?;
    tx.commit().await?;
    Ok(view)
}

/// Which requests to list.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListFilter {
    /// Only this stage.
    #[serde(default)]
    pub stage: Option<Stage>,
    /// Only open requests past their SLA deadline.
    #[serde(default)]
    pub overdue: bool,
    /// Only those awaiting a step the viewer's roles may take.
    #[serde(default)]
    pub mine_to_act: bool,
    /// Search in reference, subject and unit.
    #[serde(default)]
    pub q: Option<String>,
    /// Page, from 1.
    #[serde(default)]
    pub page: Option<u32>,
    /// Rows per page (1–200, default 50).
    #[serde(default)]
    pub per_page: Option<u32>,
}

/// A page of requests (without their histories).
#[derive(Debug, Clone, Serialize)]
pub struct RequestPage {
    /// The rows.
    pub requests: Vec<RequestView>,
    /// All matching rows.
    pub total: i64,
    /// This page.
    pub page: u32,
    /// Rows per page.
    pub per_page: u32,
}

/// Requests `actor` may see, newest first, filtered and paged on the server.
pub async fn list(
    db: &Db,
    chain: &Chain,
    actor: &Actor,
    filter: &ListFilter,
) -> Result<RequestPage, RequestError> {
    let per_page = filter.per_page.unwrap_or(50).clamp(1, 200);
    let page = filter.page.unwrap_or(1).max(1);
    let mut conditions = vec!["1 = 1".to_string()];
    let mut binds: Vec<String> = Vec::new();
    let mut bind = |value: String| {
        binds.push(value);
        format!("${}", binds.len())
    };
    if !READ_ALL.iter().any(|r| actor.has(*r)) {
        conditions.push(format!(
            "r.requester_id = {}",
            bind(actor.account_id().into())
        ));
    }
    if let Some(stage) = filter.stage {
        conditions.push(format!("r.stage = {}", bind(stage.as_str().into())));
    }
    if filter.mine_to_act {
        // Stages whose awaited step one of the viewer's roles takes.
        let stages: Vec<String> = Stage::ALL
            .iter()
            .filter(|stage| {
                let probe = Request {
                    kind: pintu_core::workflow::RequestKind::StaffAccess,
                    stage: **stage,
                    requester: String::new(),
                    entered_at: jiff::Timestamp::UNIX_EPOCH,
                    history: Vec::new(),
                };
                workflow::awaiting(chain, &probe).is_some_and(|s| actor.has(s.role))
            })
            .map(|s| bind(s.as_str().into()))
            .collect();
        if stages.is_empty() {
            conditions.push("1 = 0".into());
        } else {
            conditions.push(format!("r.stage IN ({})", stages.join(", ")));
        }
    }
    let q = match filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        Some(q) => Some(single_line("q", q, 100)?),
        None => None,
    };
    if let Some(q) = q {
        let escaped = q
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let pattern = bind(format!("%{}%", escaped.to_lowercase()));
        conditions.push(format!(
            "(LOWER(r.reference) LIKE {pattern} ESCAPE '\\' OR LOWER(r.subject_name) LIKE \
             {pattern} ESCAPE '\\' OR LOWER(r.unit) LIKE {pattern} ESCAPE '\\')"
        ));
    }
    let now = now_ms();
    if filter.overdue {
        conditions.push(format!("r.due_at_ms < {now}"));
    }
    let where_sql = conditions.join(" AND ");
    let count_sql = format!("SELECT COUNT(*) FROM requests r WHERE {where_sql}");
    let mut count = sqlx::query(sqlx::AssertSqlSafe(count_sql));
    for b in &binds {
        count = count.bind(b);
    }
    let total: i64 = count.fetch_one(db.pool()).await?.try_get(0)?;
    let rows_sql = format!(
        "SELECT {COLUMNS} FROM requests r JOIN accounts a ON a.id = r.requester_id \
         WHERE {where_sql} ORDER BY r.created_at_ms DESC, r.id LIMIT {per_page} OFFSET {}",
        (i64::from(page) - 1) * i64::from(per_page)
    );
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(rows_sql));
    for b in &binds {
        rows = rows.bind(b);
    }
    let rows = rows.fetch_all(db.pool()).await?;
    let requests = rows
        .iter()
        .map(|row| view_of(row, chain))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RequestPage {
        requests,
        total,
        page,
        per_page,
    })
}
