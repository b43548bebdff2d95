//! The one database: SQLite (one file, WAL) by default, PostgreSQL when the config gives a
//! `postgres://` URL. Both are reached through sqlx's `Any` driver, so every query is written
//! once (`$1` placeholders, portable SQL: `TEXT` ids, `BIGINT` integers and Unix-millisecond
//! times, no engine-specific types) and the migrations in `migrations/` serve both.
//!
//! Writes go through [`Db::begin_write`]: on SQLite it takes the write lock at `BEGIN` (a
//! deferred transaction that upgrades later can fail at once with "database is locked" instead
//! of waiting its turn); on PostgreSQL it is a plain transaction.

use std::str::FromStr;
use std::sync::Once;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Executor, Transaction};

/// A write transaction on either engine.
pub type Tx = Transaction<'static, Any>;

/// The migrations, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Which engine is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A database error, with what the service was doing.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL names no engine the service knows.
    #[error("database URL {0:?}: expected sqlite://PATH or postgres://USER@HOST/DB")]
    Url(String),
    /// Connecting failed.
    #[error("cannot open the database {url}: {source}")]
    Connect {
        /// The URL, password removed.
        url: String,
        /// The cause.
        source: sqlx::Error,
    },
    /// Applying the migrations failed.
    #[error("cannot apply the database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("database: {0}")]
    Query(#[from] sqlx::Error),
}

/// The pool and its engine.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

static DRIVERS: Once = Once::new();

impl Db {
    /// Opens `url` (`sqlite:PATH`, `sqlite://PATH` or `postgres://…`) with at most
    /// `max_connections`. A SQLite file is created when missing and switched to WAL.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Db, DbError> {
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let (backend, url) = normalise(url)?;
        if backend == Backend::Sqlite {
            create_private(&url).map_err(|source| DbError::Connect {
                url: redact(&url),
                source: sqlx::Error::Io(source),
            })?;
        }
        let options = AnyConnectOptions::from_str(&url).map_err(|source| DbError::Connect {
            url: redact(&url),
            source,
        })?;
        let mut pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(30));
        if backend == Backend::Sqlite {
            pool = pool.after_connect(|conn, _meta| {
                Box::pin(async move {
                    // WAL: readers (the console, reports) never wait for the ingest writer.
                    // synchronous=FULL: a committed event batch survives a power cut before
                    // the broker is told it is stored. The busy timeout makes a second writer
                    // wait its turn instead of failing.
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 15000;",
                    )
                    .await?;
                    Ok(())
                })
            });
        }
        let pool = pool
            .connect_with(options)
            .await
            .map_err(|source| DbError::Connect {
                url: redact(&url),
                source,
            })?;
        Ok(Db { pool, backend })
    }

    /// Applies the migrations not yet applied (idempotent), then indexes for search the
    /// holders that have no search terms yet (what SQL cannot do: `0007_holder_search`).
    pub async fn migrate(&self) -> Result<(), DbError> {
        MIGRATOR.run(&self.pool).await?;
        crate::directory::holder_search::index_missing(self).await?;
        Ok(())
    }

    /// The pool, for reads.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The engine.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Starts a write transaction (see the module docs).
    pub async fn begin_write(&self) -> Result<Tx, DbError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Closes the pool (waits for connections in use to come back).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The engine of `url` and the URL sqlx understands (`sqlite://PATH?mode=rwc`).
fn normalise(url: &str) -> Result<(Backend, String), DbError> {
    let url = url.trim();
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path.is_empty() {
            return Err(DbError::Url(url.into()));
        }
        let mode = if query.contains("mode=") {
            query.to_string()
        } else if query.is_empty() {
            "mode=rwc".to_string()
        } else {
            format!("{query}&mode=rwc")
        };
        return Ok((Backend::Sqlite, format!("sqlite://{path}?{mode}")));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Backend::Postgres, url.to_string()));
    }
    Err(DbError::Url(url.into()))
}

/// Creates a missing SQLite file with mode 0600 before SQLite does (it would use the umask):
/// the file holds password hashes and sealed secrets. SQLite gives its `-wal` and `-shm` files
/// the same mode.
fn create_private(url: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let rest = url.strip_prefix("sqlite://").unwrap_or(url);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if query.contains("mode=ro") || path == ":memory:" || path.is_empty() {
        return Ok(());
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// `url` without its password, for messages and logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Now, in Unix milliseconds (how every time is stored).
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// A new random id (UUID v4 text: portable and unguessable).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_are_normalised_and_created_when_missing() {
        let cases = [
            ("sqlite:/var/lib/o.db", "sqlite:///var/lib/o.db?mode=rwc"),
            ("sqlite:///var/lib/o.db", "sqlite:///var/lib/o.db?mode=rwc"),
            ("sqlite://rel.db", "sqlite://rel.db?mode=rwc"),
            ("sqlite:///o.db?mode=ro", "sqlite:///o.db?mode=ro"),
        ];
        for (given, want) in cases {
            assert_eq!(
                normalise(given).unwrap(),
                (Backend::Sqlite, want.to_string()),
                "{given}"
            );
        }
        assert!(matches!(normalise("mysql://x"), Err(DbError::Url(_))));
        assert!(matches!(normalise("sqlite:"), Err(DbError::Url(_))));
    }

    #[tokio::test]
    async fn a_new_sqlite_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("office.db");
        let db = Db::connect(&format!("sqlite://{}", path.display()), 1)
            .await
            .unwrap();
        db.migrate().await.unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn passwords_never_reach_a_message() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite:///x.db"), "sqlite:///x.db");
    }
}
