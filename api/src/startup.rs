//! Builds the application from configuration and runs it.

use std::{
    net::{SocketAddr, TcpListener},
    sync::Arc,
    time::Duration,
};

use accounts::access::AccessService;
use accounts::auth::AuthService;
use accounts::closure::{AccountClosure, Outside};
use accounts::ratelimit::RateLimiter;
use accounts::sessions::EndedSessions;
use accounts::userdata::{DataQuota, UserDataService};
use accounts::verification::EmailService;
use actix_web::{dev::Server, middleware::from_fn, web, App, HttpServer};
use billing::BillingService;
use db::Db;
use domain::error::{ServiceError, ServiceResult};
use engine::admission::TitleFonts;
use engine::dispatch::Relay;
use engine::events::{JobEvents, WsTickets};
use engine::heartbeat::WorkerRegistry;
use engine::jobs::JobService;
use engine::queue;
use engine::status::StatusReader;
use engine::tasks::{BackgroundTasks, Pass, Schedule, Task};
use insights::Insights;
use library::{uploads::DirectUploads, ClipLibrary};
use linking::Linking;
use music::Catalogue;
use redis::aio::ConnectionManager;
use settings::Config;
use storage::Storage;
use telemetry::MetricsListener;
use tokio::sync::Notify;
use tracing_actix_web::TracingLogger;
use weekly::WeeklyMontages;

use crate::{
    guard::guard,
    hub::EventHub,
    middleware::{idle_body_timeout, request_context, RequestSpan},
    monitor::{HealthMonitor, HealthProbe, JobCensus},
    rate_limit::rate_limit,
    routes::{self, docs::ApiDocument},
    state::AppState,
};

/// How long start-up waits for Redis before giving up.
const REDIS_PATIENCE: Duration = Duration::from_secs(30);

/// A connection for each of Redis's roles; one shared when their URLs name one server.
struct RedisRoles {
    queue: ConnectionManager,
    events: ConnectionManager,
    limiter: ConnectionManager,
}

impl RedisRoles {
    async fn connect(config: &Config) -> ServiceResult<Self> {
        let queue = queue::connect(&config.redis_url, REDIS_PATIENCE).await?;
        let shared = (config.redis_url.as_str(), &queue);
        Ok(Self {
            events: queue::connect_role(&config.events_redis_url, shared, REDIS_PATIENCE).await?,
            limiter: queue::connect_role(&config.limiter_redis_url, shared, REDIS_PATIENCE).await?,
            queue,
        })
    }
}

impl AppState {
    /// Connects to every dependency (migrating the database first) and starts this
    /// instance's relay.
    pub async fn build(config: Config) -> ServiceResult<Self> {
        let db = Db::new(&config.database_url, config.database_pool_size);
        db.migrate().await?;
        let storage = Storage::new(&config.s3);
        storage.ensure_bucket().await?;
        let redis = RedisRoles::connect(&config).await?;
        let dispatch = Arc::new(Notify::new());
        let events = JobEvents::new(redis.events.clone(), &config.queue_name);
        let tasks = BackgroundTasks::new();
        // First, so that every measurement from here on is recorded.
        let metrics_address = serve_metrics(&config, &tasks, &db).await?;
        let queue = queue::JobQueue::new(redis.queue.clone(), &config);
        Relay::new(db.clone(), queue, events.clone(), &config).spawn_on(&tasks, dispatch.clone());
        let limiter = RateLimiter::new(redis.limiter, &config.queue_name);
        let workers = WorkerRegistry::new(redis.queue, &config.queue_name);
        let health = start_health(&tasks, &db, &workers, &storage, &config).await;
        let auth = start_auth(&db, &config, &limiter, &tasks).await?;
        let billing = BillingService::new(db.clone(), config.billing.clone())?;
        let jobs = JobService::new(db.clone());
        let linking = Linking::new(db.clone(), &config)?;
        let uploads = DirectUploads::new(db.clone(), storage.clone(), (&config.limits).into());
        let (weekly, insights) = showcase(&db, &storage, &billing, &jobs, &config);
        Ok(Self {
            closure: closure(&auth, &billing, &linking, &uploads),
            email: EmailService::new(auth.clone(), config.mail.clone())?,
            auth,
            access: AccessService::new(db.clone()),
            clips: ClipLibrary::new(db.clone(), storage.clone()),
            weekly,
            insights,
            linking,
            uploads,
            user_data: UserDataService::new(db.clone(), DataQuota::from(&config.limits)),
            limiter,
            health,
            billing,
            jobs,
            status: StatusReader::start(db.clone(), events.clone())
                .map_err(ServiceError::internal)?,
            hub: EventHub::start(
                &tasks,
                config.events_redis_url.clone(),
                events.clone(),
                &config.http,
            ),
            tasks,
            events,
            tickets: WsTickets::new(redis.events, &config.queue_name),
            workers,
            dispatch,
            storage,
            db,
            music: Arc::new(
                Catalogue::load(config.music_dir.as_deref()).map_err(ServiceError::internal)?,
            ),
            title_fonts: TitleFonts::load(&config.render.font_dir)?,
            config: Arc::new(config),
            metrics_address,
        })
    }
}

/// The health monitor, probing every dependency in the background.
/// Account deletion, which reaches into billing, linked accounts and direct uploads.
fn closure(
    auth: &AuthService,
    billing: &BillingService,
    linking: &Linking,
    uploads: &DirectUploads,
) -> AccountClosure {
    let outside = Outside {
        billing: billing.clone(),
        linking: linking.clone(),
        uploads: uploads.clone(),
    };
    AccountClosure::new(auth.clone(), outside)
}

async fn start_health(
    tasks: &BackgroundTasks,
    db: &Db,
    workers: &WorkerRegistry,
    storage: &Storage,
    config: &Config,
) -> HealthMonitor {
    let probe = HealthProbe {
        db: db.clone(),
        workers: workers.clone(),
        storage: storage.clone(),
        stale_after: config.worker_stale_after(),
    };
    HealthMonitor::start(tasks, probe).await
}

/// What the public pages show: weekly montages, and share links with their statistics.
fn showcase(
    db: &Db,
    storage: &Storage,
    billing: &BillingService,
    jobs: &JobService,
    config: &Config,
) -> (WeeklyMontages, Insights) {
    let public_base_url = &config.showcase.public_base_url;
    let weekly = WeeklyMontages::new(db.clone(), storage.clone(), public_base_url);
    let insights = Insights::new(
        db.clone(),
        storage.clone(),
        billing.clone(),
        jobs.clone(),
        public_base_url,
    );
    (weekly, insights)
}

/// The accounts' authentication, with the sessions ended so far loaded and the next ones
/// watched for.
async fn start_auth(
    db: &Db,
    config: &Config,
    limiter: &RateLimiter,
    tasks: &BackgroundTasks,
) -> ServiceResult<AuthService> {
    let auth = AuthService::new(db.clone(), config.auth.clone(), limiter.clone());
    // Before the first request: a restarted instance must not forget who logged out.
    auth.ended_sessions().refresh().await?;
    tasks.spawn(
        SessionWatch(auth.ended_sessions().clone()),
        Schedule::every(SESSION_POLL),
    );
    Ok(auth)
}

/// How soon a session another instance ended is refused here too.
const SESSION_POLL: Duration = Duration::from_secs(1);

/// Keeps this instance's list of ended sessions current.
struct SessionWatch(EndedSessions);

impl Task for SessionWatch {
    const NAME: &'static str = "ended-sessions";

    async fn run(&mut self) -> Result<Pass, ServiceError> {
        self.0.refresh().await?;
        Ok(Pass::Idle)
    }
}

/// Starts the metrics listener and the job census that feeds it, when configured.
async fn serve_metrics(
    config: &Config,
    tasks: &BackgroundTasks,
    db: &Db,
) -> ServiceResult<Option<SocketAddr>> {
    let Some(address) = config.metrics.api_bind else {
        return Ok(None);
    };
    let listener = MetricsListener::bind(address, config.metrics.token.clone())
        .await
        .map_err(|err| {
            ServiceError::internal(format!("cannot bind the metrics listener {address}: {err}"))
        })?;
    let bound = listener.local_addr();
    tracing::info!(address = %bound, "metrics listening");
    tasks.spawn_service(listener.serve());
    JobCensus(JobService::new(db.clone())).start(tasks);
    Ok(Some(bound))
}

/// Starts serving on `listener` (bind port 0 in tests).
pub fn run(listener: TcpListener, state: AppState) -> std::io::Result<Server> {
    let http = state.config.http.clone();
    let state = web::Data::new(state);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let table = web::Data::new(routes::table(&http));
    let document = web::Data::new(ApiDocument::new(&table));
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(document.clone())
            .app_data(table.clone())
            .wrap(from_fn(idle_body_timeout))
            .wrap(from_fn(guard))
            .wrap(from_fn(rate_limit))
            .wrap(TracingLogger::<RequestSpan>::new())
            .wrap(from_fn(request_context))
            .configure(routes::configure(&table))
    })
    .workers(threads)
    // actix counts connections per server thread.
    .max_connections(http.max_connections.div_ceil(threads))
    .client_request_timeout(http.header_timeout)
    .listen(listener)?
    .shutdown_timeout(30)
    .run();
    Ok(server)
}
