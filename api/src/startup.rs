//! Builds the application from configuration and runs it.

use std::{net::TcpListener, sync::Arc, time::Duration};

use actix_web::{dev::Server, middleware::from_fn, web, App, HttpServer};
use shared::{
    auth::AuthService,
    billing::BillingService,
    config::Config,
    db::Db,
    dispatch::Relay,
    error::ServiceResult,
    events::{JobEvents, WsTickets},
    heartbeat::WorkerRegistry,
    jobs::JobService,
    queue,
    storage::Storage,
};
use tokio::sync::Notify;

use crate::{
    middleware::request_context,
    routes::{self, live::EventHub},
    state::AppState,
};

/// How long start-up waits for Redis before giving up.
const REDIS_PATIENCE: Duration = Duration::from_secs(30);

impl AppState {
    /// Connects to every dependency (migrating the database first) and starts this
    /// instance's relay.
    pub async fn build(config: Config) -> ServiceResult<Self> {
        let db = Db::new(&config.database_url, config.database_pool_size);
        db.migrate().await?;
        let storage = Storage::new(&config.s3);
        storage.ensure_bucket().await?;
        let redis = queue::connect(&config.redis_url, REDIS_PATIENCE).await?;
        let dispatch = Arc::new(Notify::new());
        let events = JobEvents::new(redis.clone(), &config.queue_name);
        let relay = Relay::new(
            db.clone(),
            queue::JobQueue::new(redis.clone(), &config),
            events.clone(),
            &config,
        );
        tokio::spawn(relay.run(dispatch.clone()));
        Ok(Self {
            auth: AuthService::new(db.clone(), config.auth.clone()),
            billing: BillingService::new(db.clone(), config.billing.clone())?,
            jobs: JobService::new(db.clone()),
            hub: EventHub::start(config.redis_url.clone(), events.clone()),
            events,
            tickets: WsTickets::new(redis.clone(), &config.queue_name),
            workers: WorkerRegistry::new(redis, &config.queue_name),
            dispatch,
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
