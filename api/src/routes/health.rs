//! `GET /health`: each dependency's state, and 503 when any is down.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

#[derive(Serialize, ToSchema)]
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

/// Every check runs at once and gives up after this long.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

async fn within<T, E>(check: impl std::future::Future<Output = Result<T, E>>) -> Option<T> {
    tokio::time::timeout(CHECK_TIMEOUT, check).await.ok()?.ok()
}

/// Liveness of the API and its dependencies.
#[utoipa::path(
    get, path = "/health", tag = "system",
    responses((status = 200, body = Health), (status = 503, description = "A dependency is down", body = Health))
)]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    let stale_after = state.config.worker_stale_after();
    let (database, redis, storage, workers) = tokio::join!(
        within(state.db.ping()),
        within(state.workers.ping()),
        within(state.storage.check()),
        within(state.workers.live_workers(stale_after)),
    );
    let workers = workers.unwrap_or(0);
    let body = Health {
        status: "healthy",
        database: if database.is_some() {
            "connected"
        } else {
            "disconnected"
        },
        redis: if redis.is_some() {
            "connected"
        } else {
            "disconnected"
        },
        storage: if storage.is_some() {
            "accessible"
        } else {
            "inaccessible"
        },
        worker: if workers > 0 {
            "connected"
        } else {
            "disconnected"
        },
        workers,
    };
    let healthy = database.is_some() && redis.is_some() && storage.is_some() && workers > 0;
    if healthy {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(Health {
            status: "unhealthy",
            ..body
        })
    }
}
