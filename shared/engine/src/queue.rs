//! The render queue: apalis 1.0 over Redis. PostgreSQL stays the source of truth for job
//! state; the queue only delivers job ids to workers.

use std::time::Duration;

use apalis::prelude::{TaskBuilder, TaskId, TaskSink};
use apalis_redis::{ConnectionManager, RedisStorage};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use domain::error::{ServiceError, ServiceResult};
use futures::StreamExt;

use crate::tasks::{Pass, Task};
use settings::Config;

/// The message a worker receives: which job to render, and which dispatch of it this is.
/// A worker acts only on the job's latest dispatch, so stale or duplicate messages are no-ops.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct RenderJob {
    pub job_id: Uuid,
    pub dispatch: i32,
}

impl RenderJob {
    /// The queue's task id: one per dispatch, so pushing the same dispatch twice is a no-op.
    fn task_id(self) -> String {
        format!("{}.{}", self.job_id.simple(), self.dispatch)
    }
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

/// Where [`JobQueue::enqueue`] announces each push. (apalis's own `emit_events` announces
/// only tasks without a run time, and its task builder gives every task one.)
fn pushed_channel(config: &Config) -> String {
    format!("{}:render:pushed", config.queue_name)
}

/// Calls `on_push` whenever a job is pushed onto the queue, for as long as the subscription
/// lasts (then the task runs again on its schedule), so idle workers fetch at once instead
/// of waiting for their next poll.
pub struct PushWatch<F> {
    redis_url: String,
    channel: String,
    on_push: F,
}

impl<F: FnMut() + Send + 'static> PushWatch<F> {
    pub fn new(config: &Config, on_push: F) -> Self {
        Self {
            redis_url: config.redis_url.clone(),
            channel: pushed_channel(config),
            on_push,
        }
    }
}

impl<F: FnMut() + Send + 'static> Task for PushWatch<F> {
    const NAME: &'static str = "push-watch";

    async fn run(&mut self) -> Result<Pass, ServiceError> {
        let unavailable = |err| ServiceError::unavailable("redis", err);
        let mut pubsub = redis::Client::open(self.redis_url.as_str())
            .map_err(unavailable)?
            .get_async_pubsub()
            .await
            .map_err(unavailable)?;
        pubsub.subscribe(&self.channel).await.map_err(unavailable)?;
        let mut pushes = pubsub.on_message();
        while pushes.next().await.is_some() {
            (self.on_push)();
        }
        Err(ServiceError::unavailable(
            "redis",
            "the queue push subscription ended",
        ))
    }
}

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

/// A connection to `url` for one of Redis's roles: `shared`'s own when it names the same
/// server, so a single-Redis deployment keeps one connection.
pub async fn connect_role(
    url: &str,
    shared: (&str, &ConnectionManager),
    patience: Duration,
) -> ServiceResult<ConnectionManager> {
    if url == shared.0 {
        return Ok(shared.1.clone());
    }
    connect(url, patience).await
}

/// Pushes render jobs and answers whether a pushed one is still waiting or running.
#[derive(Clone)]
pub struct JobQueue {
    storage: RenderStorage,
    conn: ConnectionManager,
    config: apalis_redis::Config,
    pushed_channel: String,
}

/// How long one queue operation may take before the queue counts as unavailable.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(5);

impl JobQueue {
    pub fn new(conn: ConnectionManager, config: &Config) -> Self {
        let pushed_channel = pushed_channel(config);
        let config = storage_config(config);
        Self {
            storage: RedisStorage::new(conn.clone()).with_config(config.clone()),
            conn,
            config,
            pushed_channel,
        }
    }

    pub async fn enqueue(&self, job: RenderJob) -> ServiceResult<()> {
        let mut storage = self.storage.clone();
        let task = TaskBuilder::new(job)
            .task_id(TaskId::from_string(job.task_id()))
            .build();
        tokio::time::timeout(QUEUE_TIMEOUT, storage.push_task(task))
            .await
            .map_err(|elapsed| ServiceError::unavailable("queue", elapsed))?
            .map_err(|e| ServiceError::unavailable("queue", e.to_string()))?;
        // Wakes idle workers. Best effort: a lost announcement only waits for their poll.
        let mut conn = self.conn.clone();
        let mut announce = redis::cmd("PUBLISH");
        announce.arg(&self.pushed_channel).arg(job.task_id());
        let announced = announce.query_async::<i64>(&mut conn);
        if let Ok(Err(err)) = tokio::time::timeout(QUEUE_TIMEOUT, announced).await {
            tracing::debug!(error = %err, "could not announce a pushed job");
        }
        Ok(())
    }

    /// Whether the queue still holds `job` in a state it will deliver (again): not lost
    /// (Redis restarted without its data, or vacuumed) and not given up on as dead.
    pub async fn holds(&self, job: RenderJob) -> ServiceResult<bool> {
        let mut conn = self.conn.clone();
        let task_id = job.task_id();
        let mut pipe = redis::pipe();
        pipe.hexists(self.config.job_data_hash(), &task_id)
            .sismember(self.config.dead_jobs_set(), &task_id);
        let query = pipe.query_async::<(bool, bool)>(&mut conn);
        let (stored, dead) = tokio::time::timeout(QUEUE_TIMEOUT, query)
            .await
            .map_err(|elapsed| ServiceError::unavailable("queue", elapsed))?
            .map_err(|e| ServiceError::unavailable("queue", e))?;
        Ok(stored && !dead)
    }
}
