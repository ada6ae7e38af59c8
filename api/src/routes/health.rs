//! `GET /health`: each dependency's state, and 503 when any is down.

use std::{sync::Arc, time::Duration};

use actix_web::{web, HttpResponse};
use db::Db;
use engine::heartbeat::WorkerRegistry;
use serde::Serialize;
use storage::Storage;
use tokio::sync::watch;
use utoipa::ToSchema;

use crate::state::AppState;

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

async fn within<T, E>(check: impl std::future::Future<Output = Result<T, E>>) -> Option<T> {
    tokio::time::timeout(CHECK_TIMEOUT, check).await.ok()?.ok()
}

/// Probes the dependencies in the background and keeps the latest answer.
#[derive(Clone)]
pub struct HealthMonitor {
    latest: watch::Receiver<Arc<Health>>,
}

impl HealthMonitor {
    /// Runs the first probe before returning, so the first answer is a real one.
    pub async fn start(
        db: Db,
        workers: WorkerRegistry,
        storage: Storage,
        stale_after: Duration,
    ) -> Self {
        let probe = move || {
            let (db, workers, storage) = (db.clone(), workers.clone(), storage.clone());
            async move { Arc::new(probe(&db, &workers, &storage, stale_after).await) }
        };
        let (sender, latest) = watch::channel(probe().await);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(CHECK_EVERY);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            while !sender.is_closed() {
                ticker.tick().await;
                sender.send_replace(probe().await);
            }
        });
        Self { latest }
    }

    pub fn current(&self) -> Arc<Health> {
        self.latest.borrow().clone()
    }
}

async fn probe(
    db: &Db,
    workers: &WorkerRegistry,
    storage: &Storage,
    stale_after: Duration,
) -> Health {
    let (database, redis, storage, live) = tokio::join!(
        within(db.ping()),
        within(workers.ping()),
        within(storage.check()),
        within(workers.live_workers(stale_after)),
    );
    let live = live.unwrap_or(0);
    let healthy = database.is_some() && redis.is_some() && storage.is_some() && live > 0;
    let state = |up: bool, yes: &'static str, no: &'static str| if up { yes } else { no };
    Health {
        status: state(healthy, "healthy", "unhealthy"),
        database: state(database.is_some(), "connected", "disconnected"),
        redis: state(redis.is_some(), "connected", "disconnected"),
        storage: state(storage.is_some(), "accessible", "inaccessible"),
        worker: state(live > 0, "connected", "disconnected"),
        workers: live,
    }
}

/// Liveness of the API and its dependencies, as last probed (at most a second ago).
#[utoipa::path(
    get, path = "/health", tag = "system",
    responses((status = 200, body = Health), (status = 503, description = "A dependency is down", body = Health))
)]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let health = state.health.current();
    let mut response = if health.status == "healthy" {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    response.json(&*health)
}
