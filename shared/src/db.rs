//! PostgreSQL access: an r2d2 pool of Diesel connections, used only from blocking threads.

use std::time::Duration;

use diesel::{
    pg::PgConnection,
    r2d2::{ConnectionManager, Pool, PooledConnection},
    sql_query, RunQueryDsl,
};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::{ServiceError, ServiceResult};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// Arbitrary constant shared by every instance: the advisory lock that serialises migrations.
const MIGRATION_LOCK_KEY: i64 = 0x6d6f_6e74_6167_6501;

pub type PgPool = Pool<ConnectionManager<PgConnection>>;
pub type PgConn = PooledConnection<ConnectionManager<PgConnection>>;

/// Cheap to clone; every query runs on tokio's blocking pool, never on an executor thread.
#[derive(Clone)]
pub struct Db {
    pool: PgPool,
}

impl Db {
    /// Builds the pool without connecting, so a service can start (and report itself
    /// unhealthy) while the database is still down.
    pub fn new(database_url: &str, max_size: u32) -> Self {
        let manager = ConnectionManager::<PgConnection>::new(database_url);
        let pool = Pool::builder()
            .max_size(max_size)
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(3))
            .test_on_check_out(true)
            .build_unchecked(manager);
        Self { pool }
    }

    /// Runs `f` with a pooled connection on a blocking thread.
    pub async fn run<T, F>(&self, f: F) -> ServiceResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut PgConn) -> ServiceResult<T> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool
                .get()
                .map_err(|e| ServiceError::unavailable("database", e))?;
            f(&mut conn)
        })
        .await
        .map_err(ServiceError::internal)?
    }

    /// Applies pending migrations. Safe when several instances start at once: they take
    /// turns under a PostgreSQL advisory lock.
    pub async fn migrate(&self) -> ServiceResult<()> {
        self.run(|conn| {
            sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")).execute(conn)?;
            let result = conn.run_pending_migrations(MIGRATIONS).map(|_| ());
            sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")).execute(conn)?;
            result.map_err(|e| ServiceError::internal(e.to_string()))
        })
        .await
    }

    pub async fn ping(&self) -> ServiceResult<()> {
        self.run(|conn| {
            sql_query("SELECT 1").execute(conn)?;
            Ok(())
        })
        .await
    }
}
