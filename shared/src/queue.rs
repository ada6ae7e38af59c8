//! The render queue: apalis 1.0 over Redis. PostgreSQL stays the source of truth for job
//! state; the queue only delivers job ids to workers.

use std::time::Duration;

use apalis::prelude::TaskSink;
use apalis_redis::{ConnectionManager, RedisStorage};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    config::Config,
    error::{ServiceError, ServiceResult},
};

/// The message a worker receives: which job to render.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenderJob {
    pub job_id: Uuid,
}

/// apalis settings shared by producers and consumers. Heartbeats are explicit because the
/// library's default treats a worker as dead only after ten missed minutes.
pub fn storage_config(config: &Config) -> apalis_redis::Config {
    apalis_redis::Config::default()
        .queue(format!("{}:render", config.queue_name))
        .heartbeat_interval(config.render.heartbeat_interval)
        .missed_heartbeats(config.render.missed_heartbeats)
        .batch_size(1)
}

pub type RenderStorage = RedisStorage<RenderJob>;

/// Connects to Redis, retrying for up to `patience` so services can start in any order.
pub async fn connect(redis_url: &str, patience: Duration) -> ServiceResult<ConnectionManager> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match apalis_redis::connect(redis_url).await {
            Ok(conn) => return Ok(conn),
            Err(err) if tokio::time::Instant::now() >= deadline => {
                return Err(ServiceError::unavailable("queue", err));
            }
            Err(err) => {
                tracing::warn!(error = %err, "Redis not reachable yet; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// Pushes render jobs.
#[derive(Clone)]
pub struct JobQueue {
    storage: RenderStorage,
}

impl JobQueue {
    pub fn new(conn: ConnectionManager, config: &Config) -> Self {
        Self {
            storage: RedisStorage::new(conn).with_config(storage_config(config)),
        }
    }

    pub async fn enqueue(&self, job: RenderJob) -> ServiceResult<()> {
        let mut storage = self.storage.clone();
        tokio::time::timeout(Duration::from_secs(5), storage.push(job))
            .await
            .map_err(|elapsed| ServiceError::unavailable("queue", elapsed))?
            .map_err(|e| ServiceError::unavailable("queue", e.to_string()))
    }
}
