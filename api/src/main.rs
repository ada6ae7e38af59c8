use std::net::TcpListener;

use anyhow::Context;
use api::{startup, state::AppState};
use shared::{config::Config, db::Db};

/// `api` serves; `api migrate` applies pending migrations and exits.
#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    shared::telemetry::init("info,actix_server=warn");
    let config = Config::from_env().context("invalid configuration")?;
    if std::env::args().nth(1).as_deref() == Some("migrate") {
        Db::new(&config.database_url, 1)
            .migrate()
            .await
            .context("migration failed")?;
        tracing::info!("migrations applied");
        return Ok(());
    }
    let address = std::env::var("API_BIND").unwrap_or_else(|_| "127.0.0.1:8000".to_owned());
    let state = AppState::build(config).await.context("could not start")?;
    let listener = TcpListener::bind(&address).with_context(|| format!("cannot bind {address}"))?;
    tracing::info!(%address, "API listening");
    startup::run(listener, state)?.await?;
    Ok(())
}
