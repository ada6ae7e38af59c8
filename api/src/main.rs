use std::net::TcpListener;

use accounts::access::AccessService;
use accounts::auth::Email;
use anyhow::Context;
use api::{startup, state::AppState};
use db::Db;
use settings::Config;

/// `api` serves; `api migrate` applies pending migrations and exits; `api admin grant EMAIL`
/// gives that account the admin role.
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => serve(config).await,
        ["migrate"] => migrate(&config).await.map(drop),
        ["admin", "grant", email] => grant_admin(&config, email).await,
        _ => anyhow::bail!("usage: api [migrate | admin grant EMAIL]"),
    }
}

async fn migrate(config: &Config) -> anyhow::Result<Db> {
    let db = Db::new(&config.database_url, 1);
    db.migrate().await.context("migration failed")?;
    tracing::info!("migrations applied");
    Ok(db)
}

/// The first admin comes from the operator, never from an open endpoint.
async fn grant_admin(config: &Config, email: &str) -> anyhow::Result<()> {
    let db = migrate(config).await?;
    let email = Email::parse(email).context("not an email address")?;
    let user_id = AccessService::new(db)
        .grant_admin_by_email(email)
        .await
        .context("could not grant the admin role")?;
    tracing::info!(%user_id, "admin role granted");
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let address = std::env::var("API_BIND").unwrap_or_else(|_| "127.0.0.1:8000".to_owned());
    let state = AppState::build(config).await.context("could not start")?;
    let listener = TcpListener::bind(&address).with_context(|| format!("cannot bind {address}"))?;
    tracing::info!(%address, "API listening");
    let tasks = state.tasks.clone();
    startup::run(listener, state)?.await?;
    tasks.shutdown().await;
    Ok(())
}
