use std::net::TcpListener;

use anyhow::Context;
use api::{startup, state::AppState};
use db::Db;
use settings::Config;

/// `api` serves; `api migrate` applies pending migrations and exits.
/// Large buffers (8 MiB upload parts, argon2's 19 MiB working memory) go straight to mmap
/// and back to the OS when freed. glibc otherwise raises its mmap threshold after the first
/// such free and keeps later ones in the heap: about 20 MiB more resident for good.
fn return_large_buffers_to_the_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator tuning; called before other threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
    }
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    return_large_buffers_to_the_os();
    telemetry::logs::init("info,actix_server=warn");
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
    let tasks = state.tasks.clone();
    startup::run(listener, state)?.await?;
    tasks.shutdown().await;
    Ok(())
}
