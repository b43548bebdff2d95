//! Test fixtures shared by the unit tests and `tests/`: a fresh database on each engine, so
//! every test that touches the database runs on both (see [`db_test!`](crate::db_test)).
//! Not part of the service's behaviour.

use crate::db::Db;
use crate::secret::ServiceKey;

/// The environment variable naming the throwaway PostgreSQL server (`scripts/with-postgres`).
pub const POSTGRES_ENV: &str = "PINTU_TEST_POSTGRES";

/// A migrated, empty database and the key of its service.
pub struct TestDb {
    /// The database.
    pub db: Db,
    /// The service key (fixed bytes).
    pub key: ServiceKey,
    /// Its URL (for a second instance or a command run).
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A new SQLite file in a temporary folder.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary folder");
        let url = format!("sqlite://{}", dir.path().join("office.db").display());
        Self::open(url, Some(dir)).await
    }

    /// A new database on the PostgreSQL server of `PINTU_TEST_POSTGRES`. Panics with how to
    /// get one when the variable is not set: the PostgreSQL half of a test is never skipped.
    pub async fn postgres() -> TestDb {
        let base = std::env::var(POSTGRES_ENV).unwrap_or_else(|_| {
            panic!(
                "{POSTGRES_ENV} is not set: run the tests under scripts/with-postgres \
                 (scripts/test does), e.g. `scripts/with-postgres cargo test -p pintu-office`"
            )
        });
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let admin = Db::connect(&format!("{base}/postgres"), 1)
            .await
            .expect("connect to the test PostgreSQL server");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(admin.pool())
            .await
            .expect("create a test database");
        admin.close().await;
        Self::open(format!("{base}/{name}"), None).await
    }

    async fn open(url: String, dir: Option<tempfile::TempDir>) -> TestDb {
        let db = Db::connect(&url, 4).await.expect("open the test database");
        db.migrate().await.expect("migrate the test database");
        TestDb {
            db,
            key: ServiceKey::from_bytes(&[0x42; 32]),
            url,
            _dir: dir,
        }
    }
}

/// Defines one async test twice, as `NAME::sqlite` and `NAME::postgres`, each with a fresh
/// [`TestDb`] bound to the given name:
///
/// ```ignore
/// db_test!(async fn chain_holds(t) {
///     audit::record_alone(&t.db, &t.key, &actor, entry).await.unwrap();
/// });
/// ```
#[macro_export]
macro_rules! db_test {
    ($(#[$meta:meta])* async fn $name:ident($t:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $t = $crate::testing::TestDb::sqlite().await;
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let $t = $crate::testing::TestDb::postgres().await;
                $body
            }
        }
    };
}
