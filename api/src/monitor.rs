//! The health monitor: probes the dependencies every second in the background and keeps
//! the latest answer, so `/health` answers at once and floods of it cost nothing. Each probe
//! also sets the dependency gauges of the metrics; the job census sets the job gauges.

use std::{sync::Arc, time::Duration};

use db::Db;
use domain::error::ServiceError;
use engine::heartbeat::WorkerRegistry;
use engine::jobs::JobService;
use engine::tasks::{BackgroundTasks, Pass, Schedule, Task};
use serde::Serialize;
use storage::Storage;
use telemetry::metrics::{self, Dependency};
use tokio::sync::watch;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `healthy` or `unhealthy`.
    pub status: &'static str,
    /// `connected` or `disconnected`.
    pub database: &'static str,
    /// `connected` or `disconnected`.
    pub redis: &'static str,
    /// `accessible` or `inaccessible`.
    pub storage: &'static str,
    /// `connected` while at least one worker's heartbeat is fresh, else `disconnected`.
    pub worker: &'static str,
    /// Workers with a fresh heartbeat.
    pub workers: u64,
}

/// Every check runs at once and gives up after this long...
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// ...and the checks run this often, whoever asks: `/health` answers from the last run, so
/// polling it costs the dependencies nothing, and a dependency going down shows within
/// about two seconds.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// One check's answer within [`CHECK_TIMEOUT`], or why there is none.
async fn within<T, E: std::fmt::Display>(
    check: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(answer) => answer.map_err(|err| err.to_string()),
        Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
    }
}

/// Probes the dependencies in the background and keeps the latest answer.
#[derive(Clone)]
pub struct HealthMonitor {
    latest: watch::Receiver<Arc<Health>>,
}

impl HealthMonitor {
    /// Runs the first probe before returning, so the first answer is a real one; then
    /// probes every second on `tasks`.
    pub async fn start(tasks: &BackgroundTasks, probe: HealthProbe) -> Self {
        let (sender, latest) = watch::channel(Arc::new(probe.probe().await.health));
        tasks.spawn(ProbeTask { probe, sender }, Schedule::every(CHECK_EVERY));
        Self { latest }
    }

    pub fn current(&self) -> Arc<Health> {
        self.latest.borrow().clone()
    }
}

/// The dependencies a health probe checks.
pub struct HealthProbe {
    pub db: Db,
    pub workers: WorkerRegistry,
    pub storage: Storage,
    /// A worker without a heartbeat this long is gone.
    pub stale_after: Duration,
}

struct ProbeTask {
    probe: HealthProbe,
    sender: watch::Sender<Arc<Health>>,
}

impl Task for ProbeTask {
    const NAME: &'static str = "health-probe";

    async fn run(&mut self) -> Result<Pass, ServiceError> {
        let Probed { health, problems } = self.probe.probe().await;
        // Changes of state are logged, with why, so an operator can tell what a 503 was.
        let was = self.sender.borrow().status;
        if health.status != was {
            if problems.is_empty() {
                tracing::info!("healthy again");
            } else {
                tracing::warn!(problems = problems.join("; "), "unhealthy");
            }
        }
        self.sender.send_replace(Arc::new(health));
        Ok(Pass::Idle)
    }
}

/// A probe's answer, and what made it unhealthy.
struct Probed {
    health: Health,
    problems: Vec<String>,
}

impl HealthProbe {
    async fn probe(&self) -> Probed {
        let Self {
            db,
            workers,
            storage,
            stale_after,
        } = self;
        let (database, redis, storage, live) = tokio::join!(
            within(db.ping()),
            within(workers.ping()),
            within(storage.check()),
            within(workers.live_workers(*stale_after)),
        );
        let mut problems = Vec::new();
        let mut up = |name: &str, answer: Result<(), String>| {
            answer
                .map_err(|why| problems.push(format!("{name}: {why}")))
                .is_ok()
        };
        let (database, redis, storage) = (
            up("database", database.map(drop)),
            up("redis", redis.map(drop)),
            up("storage", storage.map(drop)),
        );
        let live = match live {
            Ok(0) => Err(format!(
                "no worker stamped its heartbeat within {stale_after:?}"
            )),
            counted => counted,
        };
        let live = live
            .map_err(|why| problems.push(format!("worker: {why}")))
            .unwrap_or(0);
        metrics::dependency_probed(Dependency::Database, database);
        metrics::dependency_probed(Dependency::Redis, redis);
        metrics::dependency_probed(Dependency::Storage, storage);
        metrics::live_workers(live);
        let (idle, in_use) = db.connections();
        metrics::db_pool(idle, in_use);
        let healthy = database && redis && storage && live > 0;
        let state = |up: bool, yes: &'static str, no: &'static str| if up { yes } else { no };
        let health = Health {
            status: state(healthy, "healthy", "unhealthy"),
            database: state(database, "connected", "disconnected"),
            redis: state(redis, "connected", "disconnected"),
            storage: state(storage, "accessible", "inaccessible"),
            worker: state(live > 0, "connected", "disconnected"),
            workers: live,
        };
        Probed { health, problems }
    }
}

/// How often the open jobs are counted for the metrics.
const CENSUS_EVERY: Duration = Duration::from_secs(10);

/// Counts the open jobs and the queue's depth for the metrics.
pub struct JobCensus(pub JobService);

impl JobCensus {
    pub fn start(self, tasks: &BackgroundTasks) {
        tasks.spawn(self, Schedule::every(CENSUS_EVERY));
    }
}

impl Task for JobCensus {
    const NAME: &'static str = "job-census";

    async fn run(&mut self) -> Result<Pass, ServiceError> {
        let census = self.0.census().await?;
        metrics::open_jobs(&census.open, census.due);
        Ok(Pass::Idle)
    }
}
