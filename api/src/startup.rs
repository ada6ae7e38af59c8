//! Builds the application from configuration and runs it.

use std::{net::TcpListener, sync::Arc, time::Duration};

use actix_web::{dev::Server, middleware::from_fn, web, App, HttpServer};
use shared::{
    auth::AuthService, config::Config, db::Db, error::ServiceResult, heartbeat::WorkerRegistry,
    jobs::JobService, queue, storage::Storage,
};

use crate::{middleware::request_context, routes, state::AppState};

/// How long start-up waits for Redis before giving up.
const REDIS_PATIENCE: Duration = Duration::from_secs(30);

impl AppState {
    /// Connects to every dependency; applies database migrations first.
    pub async fn build(config: Config) -> ServiceResult<Self> {
        let db = Db::new(&config.database_url, config.database_pool_size);
        db.migrate().await?;
        let storage = Storage::new(&config.s3);
        storage.ensure_bucket().await?;
        let redis = queue::connect(&config.redis_url, REDIS_PATIENCE).await?;
        Ok(Self {
            auth: AuthService::new(db.clone(), config.auth.clone()),
            jobs: JobService::new(db.clone()),
            queue: queue::JobQueue::new(redis.clone(), &config),
            workers: WorkerRegistry::new(redis, &config.queue_name),
            storage,
            db,
            config: Arc::new(config),
        })
    }
}

/// Starts serving on `listener` (bind port 0 in tests).
pub fn run(listener: TcpListener, state: AppState) -> std::io::Result<Server> {
    let state = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(from_fn(request_context))
            .configure(routes::configure)
    })
    .listen(listener)?
    .shutdown_timeout(30)
    .run();
    Ok(server)
}
