//! Rooms and doors. A door's id is the one the door itself uses (`door_id` in `pintu.toml`, a
//! topic level in MQTT), so it is chosen by the administrator, never generated; the doors'
//! order is the order of the signed list's `doors`.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{DirectoryError, Page, Paged};
use crate::audit::{self, AuditActor, Entry};
use crate::db::{new_id, now_ms, Db, Tx};
use crate::input::{single_line, FieldError};
use crate::secret::ServiceKey;

/// A room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Room {
    /// Its id.
    pub id: String,
    /// Its name, unique (`Ruang Server Lt. 2`).
    pub name: String,
}

/// A door.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Door {
    /// The door's own id.
    pub id: String,
    /// A name for people.
    pub name: String,
    /// The room it leads into.
    pub room_id: Option<String>,
}

/// A door to add, or a door's changes (`None` keeps a field).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoorInput {
    /// The door's own id (only when adding).
    #[serde(default)]
    pub id: Option<String>,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// Room id; `""` takes the door out of its room.
    #[serde(default)]
    pub room_id: Option<String>,
}

/// Rooms whose name matches the page's search, by name.
pub async fn list_rooms(db: &Db, page: &Page) -> Result<Paged<Room>, DirectoryError> {
    let total: i64 =
        sqlx::query("SELECT COUNT(*) FROM rooms WHERE LOWER(name) LIKE $1 ESCAPE '\\'")
            .bind(&page.pattern)
            .fetch_one(db.pool())
            .await?
            .try_get(0)?;
    let rows = sqlx::query(
        "SELECT id, name FROM rooms WHERE LOWER(name) LIKE $1 ESCAPE '\\' \
         ORDER BY name, id LIMIT $2 OFFSET $3",
    )
    .bind(&page.pattern)
    .bind(page.per_page)
    .bind(page.offset())
    .fetch_all(db.pool())
    .await?;
    let items = rows
        .iter()
        .map(|r| {
            Ok(Room {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(Paged {
        items,
        page: page.page,
        per_page: page.per_page,
        total,
    })
}

/// Adds a room.
pub async fn create_room(
    db: &Db,
    key: &ServiceKey,
    actor: &AuditActor,
    name: &str,
) -> Result<Room, DirectoryError> {
    let name = single_line("name", name, 100)?;
    let mut tx = db.begin_write().await?;
    if sqlx::query("SELECT id FROM rooms WHERE name = $1")
        .bind(&name)
        .fetch_optional(&mut *tx)
        .await?
        .is_some()
    {
        return Err(DirectoryError::Conflict(format!(
            "a room named {name:?} exists"
        )));
    }
    let room = Room { id: new_id(), name };
    let now = now_ms();
    sqlx::query(
        "INSERT INTO rooms (id, name, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $3)",
    )
    .bind(&room.id)
    .bind(&room.name)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        key,
        db.backend(),
        actor,
        Entry::new("room.create", format!("room:{}", room.id)).after(&room),
    )
    .await?;
    tx.commit().await?;
    Ok(room)
}

/// Doors matching the page's search (id or name), in list order.
pub async fn list_doors(db: &Db, page: &Page) -> Result<Paged<Door>, DirectoryError> {
    let total: i64 = sqlx::query(
        "SELECT COUNT(*) FROM doors \
         WHERE LOWER(id) LIKE $1 ESCAPE '\\' OR LOWER(name) LIKE $2 ESCAPE '\\'",
    )
    .bind(&page.pattern)
    .bind(&page.pattern)
    .fetch_one(db.pool())
    .await?
    .try_get(0)?;
    let rows = sqlx::query(
        "SELECT id, name, room_id FROM doors \
         WHERE LOWER(id) LIKE $1 ESCAPE '\\' OR LOWER(name) LIKE $2 ESCAPE '\\' \
         ORDER BY position, id LIMIT $3 OFFSET $4",
    )
    .bind(&page.pattern)
    .bind(&page.pattern)
    .bind(page.per_page)
    .bind(page.offset())
    .fetch_all(db.pool())
    .await?;
    let items = rows.iter().map(door_of).collect::<Result<_, _>>()?;
    Ok(Paged {
        items,
        page: page.page,
        per_page: page.per_page,
        total,
    })
}

fn door_of(r: &sqlx::any::AnyRow) -> Result<Door, sqlx::Error> {
    Ok(Door {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        room_id: r.try_get(2)?,
    })
}

/// Every door id, in list order (the list's `doors`).
pub async fn door_ids(db: &Db) -> Result<Vec<String>, DirectoryError> {
    let rows = sqlx::query("SELECT id FROM doors ORDER BY position, id")
        .fetch_all(db.pool())
        .await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?)
}

/// The same, inside a transaction.
pub(crate) async fn door_ids_in(tx: &mut Tx) -> Result<Vec<String>, DirectoryError> {
    let rows = sqlx::query("SELECT id FROM doors ORDER BY position, id")
        .fetch_all(&mut **tx)
        .await?;
    Ok(rows
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?)
}

/// Inserts door `id` at the end of the list order (no audit: the caller records).
pub(crate) async fn insert_door(tx: &mut Tx, door: &Door) -> Result<(), DirectoryError> {
    let next: i64 = sqlx::query("SELECT COALESCE(MAX(position), -1) + 1 FROM doors")
        .fetch_one(&mut **tx)
        .await?
        .try_get(0)?;
    let now = now_ms();
    sqlx::query(
        "INSERT INTO doors (id, room_id, name, position, created_at_ms, updated_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(&door.id)
    .bind(&door.room_id)
    .bind(&door.name)
    .bind(next)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn check_room(tx: &mut Tx, room: Option<&str>) -> Result<Option<String>, DirectoryError> {
    match room.map(str::trim).filter(|r| !r.is_empty()) {
        None => Ok(None),
        Some(room) => {
            let found = sqlx::query("SELECT id FROM rooms WHERE id = $1")
                .bind(room)
                .fetch_optional(&mut **tx)
                .await?;
            match found {
                Some(_) => Ok(Some(room.to_string())),
                None => Err(FieldError::new("room_id", format!("no room {room:?}")).into()),
            }
        }
    }
}

/// Adds a door (at the end of the list's door order).
pub async fn create_door(
    db: &Db,
    key: &ServiceKey,
    actor: &AuditActor,
    input: &DoorInput,
) -> Result<Door, DirectoryError> {
    let id = single_line("id", input.id.as_deref().unwrap_or(""), 64)?;
    if !pintu::core::list::is_identifier(&id) {
        return Err(FieldError::new(
            "id",
            "the door's own id: letters, digits, '-', '_' or '.' (as door_id in pintu.toml)",
        )
        .into());
    }
    let name = match input.name.as_deref() {
        Some(n) => single_line("name", n, 100)?,
        None => id.clone(),
    };
    let mut tx = db.begin_write().await?;
    let room_id = check_room(&mut tx, input.room_id.as_deref()).await?;
    if door_ids_in(&mut tx).await?.contains(&id) {
        return Err(DirectoryError::Conflict(format!("door {id} exists")));
    }
    let door = Door { id, name, room_id };
    insert_door(&mut tx, &door).await?;
    audit::record(
        &mut tx,
        key,
        db.backend(),
        actor,
        Entry::new("door.create", format!("door:{}", door.id)).after(&door),
    )
    .await?;
    tx.commit().await?;
    Ok(door)
}

/// Renames a door or moves it to another room.
pub async fn update_door(
    db: &Db,
    key: &ServiceKey,
    actor: &AuditActor,
    id: &str,
    input: &DoorInput,
) -> Result<Door, DirectoryError> {
    if input.id.as_deref().is_some_and(|new| new != id) {
        return Err(FieldError::new(
            "id",
            "a door's id cannot change (the door itself uses it); add a new door instead",
        )
        .into());
    }
    let mut tx = db.begin_write().await?;
    let row = sqlx::query("SELECT id, name, room_id FROM doors WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| DirectoryError::NotFound(format!("door {id}")))?;
    let before = door_of(&row)?;
    let mut after = before.clone();
    if let Some(name) = &input.name {
        after.name = single_line("name", name, 100)?;
    }
    if let Some(room) = &input.room_id {
        after.room_id = check_room(&mut tx, Some(room)).await?;
    }
    if after != before {
        sqlx::query("UPDATE doors SET name = $1, room_id = $2, updated_at_ms = $3 WHERE id = $4")
            .bind(&after.name)
            .bind(&after.room_id)
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        audit::record(
            &mut tx,
            key,
            db.backend(),
            actor,
            Entry::new("door.update", format!("door:{id}"))
                .before(&before)
                .after(&after),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(after)
}
