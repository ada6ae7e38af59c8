//! Throwaway databases for the tests of the crates above this one: each made fresh from the
//! migrations and dropped when done. Needs `TEST_ADMIN_DATABASE_URL` (`scripts/test` sets it).

use diesel::{pg::PgConnection, sql_query, Connection, RunQueryDsl};
use diesel_migrations::MigrationHarness;

pub struct ScratchDatabase {
    admin_url: String,
    name: String,
    /// Connects to the new database.
    pub url: String,
}

impl ScratchDatabase {
    /// A new, migrated database named after `purpose` and this process.
    pub fn create(purpose: &str) -> Self {
        let admin_url = std::env::var("TEST_ADMIN_DATABASE_URL").expect(
            "TEST_ADMIN_DATABASE_URL must name a PostgreSQL admin database (scripts/test sets it)",
        );
        let name = format!(
            "{purpose}_{}_{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        );
        let mut admin = PgConnection::establish(&admin_url).expect("admin connection");
        sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .expect("create the scratch database");
        let (server, _) = admin_url
            .rsplit_once('/')
            .expect("TEST_ADMIN_DATABASE_URL ends with a database name");
        let url = format!("{server}/{name}");
        PgConnection::establish(&url)
            .expect("scratch database")
            .run_pending_migrations(crate::MIGRATIONS)
            .expect("migrations run");
        Self {
            admin_url,
            name,
            url,
        }
    }

    pub fn connect(&self) -> PgConnection {
        PgConnection::establish(&self.url).expect("scratch database")
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            let _ = sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin);
        }
    }
}
