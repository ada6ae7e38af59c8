//! Render workers: consume job ids from the apalis queue and render in-process.

pub mod media;
mod process;
pub mod sandbox;

use std::{future::Future, sync::Arc};

use apalis::prelude::*;
use apalis_core::backend::ext::poll_strategy::Strategy;
use apalis_core::backend::Vacuum;
use apalis_redis::RedisStorage;
use db::Db;
use domain::error::ServiceError;
use engine::callbacks::CallbackSender;
use engine::dispatch::Relay;
use engine::events::JobEvents;
use engine::heartbeat::WorkerRegistry;
use engine::jobs::JobService;
use engine::queue;
use engine::tasks::{BackgroundTasks, Pass, Schedule, Task as BackgroundTask};
use futures::channel::mpsc;
use settings::Config;
use tokio::sync::{watch, Notify};

use crate::process::WorkerContext;

/// A name no other worker process has: apalis tracks liveness per name, and two processes
/// sharing one would keep each other's orphaned jobs from ever being recovered.
pub fn unique_worker_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".into());
    format!(
        "worker-{host}-{}-{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// Runs one worker process until `shutdown` resolves. Then it takes no new jobs, lets running
/// ones finish for the grace period, and hands back to the queue whatever is still running.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let name = unique_worker_name();
    let db = Db::new(&config.database_url, config.database_pool_size);
    let redis = queue::connect(&config.redis_url, std::time::Duration::from_secs(30)).await?;
    let registry = WorkerRegistry::new(redis.clone(), &config.queue_name);
    remove_dead_workers_scratch(&config, &registry).await;
    let scratch_dir = scratch_root(&config).join(&name);
    tokio::fs::create_dir_all(&scratch_dir).await?;
    let (hand_back_tx, hand_back) = watch::channel(false);
    let dispatch = Arc::new(Notify::new());
    let events = JobEvents::new(redis.clone(), &config.queue_name);
    let context = Arc::new(WorkerContext::new(
        &config,
        JobService::new(db.clone()),
        events.clone(),
        hand_back,
        dispatch.clone(),
        scratch_dir.clone(),
    )?);
    let backend = RedisStorage::<queue::RenderJob>::new(redis.clone())
        .with_config(queue::storage_config(&config));
    let tasks = BackgroundTasks::new();
    tasks.spawn(
        Heartbeat {
            registry: registry.clone(),
            name: name.clone(),
        },
        Schedule::every(config.render.heartbeat_interval),
    );
    let relay = Relay::new(
        db.clone(),
        queue::JobQueue::new(redis, &config),
        events,
        &config,
    );
    relay.spawn_on(&tasks, dispatch);
    CallbackSender::new(db, config.callbacks.clone())?.spawn_on(&tasks);
    let housekeeping = Housekeeping {
        queue: backend.clone(),
        context: context.clone(),
        retention: config.render.input_retention,
    };
    tasks.spawn(
        housekeeping,
        Schedule::every(config.render.queue_vacuum_interval),
    );
    let wakeups = watch_pushes(&config, &tasks);
    let result = consume(
        &config,
        &name,
        backend,
        context,
        wakeups,
        shutdown,
        hand_back_tx,
    )
    .await;
    tasks.shutdown().await;
    let _ = registry.leave(&name).await;
    let _ = tokio::fs::remove_dir_all(&scratch_dir).await;
    tracing::info!(%name, "worker stopped");
    result
}

/// Wake-ups for this worker's queue poller: one whenever a job is pushed.
fn watch_pushes(config: &Config, tasks: &BackgroundTasks) -> mpsc::Receiver<()> {
    let (mut wake, wakeups) = mpsc::channel(1);
    let pushes = queue::PushWatch::new(config, move || {
        // A full channel already holds a wake-up the poller has not taken: one is enough.
        let _ = wake.try_send(());
    });
    tasks.spawn(pushes, Schedule::every(config.engine.poll_interval));
    wakeups
}

/// Takes jobs from the queue until `shutdown`; then takes no new ones, lets running ones
/// finish for the grace period, and has the rest handed back (through `hand_back`).
async fn consume(
    config: &Config,
    name: &str,
    backend: RedisStorage<queue::RenderJob>,
    context: Arc<WorkerContext>,
    wakeups: mpsc::Receiver<()>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    hand_back: watch::Sender<bool>,
) -> anyhow::Result<()> {
    // Without a wake-up, an idle worker looks for new jobs only on its heartbeat, so a job
    // would wait up to WORKER_HEARTBEAT_SECS to start. A push wakes it at once; the interval
    // covers pushes whose notification was lost.
    let poll = Strategy::new()
        .stream(wakeups)
        .interval(config.engine.poll_interval);
    let worker = WorkerBuilder::new(name.to_owned())
        .backend(backend.poll_with_strategy(poll))
        .data(context)
        .concurrency(config.render.worker_concurrency)
        .build(handle);
    tracing::info!(%name, concurrency = config.render.worker_concurrency, "worker started");
    let grace = config.engine.shutdown_grace;
    let result = worker
        .run_until(async move {
            shutdown.await;
            tracing::info!(
                ?grace,
                "shutting down: no new jobs; running ones get the grace period"
            );
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                let _ = hand_back.send(true);
            });
            Ok::<(), std::io::Error>(())
        })
        .await;
    result.map_err(|e| anyhow::anyhow!("worker failed: {e}"))
}

/// Marks this worker alive in Redis.
struct Heartbeat {
    registry: WorkerRegistry,
    name: String,
}

impl BackgroundTask for Heartbeat {
    const NAME: &'static str = "heartbeat";

    async fn run(&mut self) -> Result<Pass, ServiceError> {
        self.registry.beat(&self.name).await.map(|()| Pass::Idle)
    }
}

/// Periodic clean-up: finished queue entries (PostgreSQL keeps every job's state, so they
/// only make Redis grow) and uploaded clips of jobs that ended longer than `retention` ago.
struct Housekeeping {
    queue: RedisStorage<queue::RenderJob>,
    context: Arc<WorkerContext>,
    retention: std::time::Duration,
}

impl BackgroundTask for Housekeeping {
    const NAME: &'static str = "housekeeping";

    async fn run(&mut self) -> Result<Pass, ServiceError> {
        const PURGE_BATCH: i64 = 50;
        let retention = chrono::Duration::from_std(self.retention).unwrap_or(chrono::Duration::MAX);
        match self.queue.vacuum().await {
            Ok(0) => {}
            Ok(removed) => tracing::debug!(removed, "vacuumed finished queue entries"),
            Err(err) => tracing::warn!(error = %err, "queue vacuum failed"),
        }
        let jobs = &self.context.jobs;
        let purged = jobs.take_inputs_to_purge(retention, PURGE_BATCH).await;
        delete_taken(&self.context, purged, Purge::Clips).await;
        let expired = jobs.take_outputs_to_expire(PURGE_BATCH).await;
        delete_taken(&self.context, expired, Purge::Outputs).await;
        Ok(Pass::Idle)
    }
}

/// What a purge pass deletes.
#[derive(Debug, Clone, Copy)]
enum Purge {
    /// Uploaded clips past the input retention.
    Clips,
    /// Outputs past their plan's retention.
    Outputs,
}

/// Deletes what a purge pass took; a job whose objects could not be deleted is given back,
/// so a later pass tries again.
async fn delete_taken(
    context: &WorkerContext,
    taken: Result<Vec<(uuid::Uuid, Vec<String>)>, domain::error::ServiceError>,
    what: Purge,
) {
    let due = match taken {
        Ok(due) => due,
        Err(err) => {
            tracing::warn!(error = %err, ?what, "could not list objects to purge");
            return;
        }
    };
    for (job_id, keys) in due {
        if let Err(err) = context.storage.delete(&keys).await {
            tracing::warn!(%job_id, error = %err, ?what, "could not purge; will retry");
            let undone = match what {
                Purge::Clips => context.jobs.unmark_purged(job_id).await,
                Purge::Outputs => context.jobs.unmark_expired(job_id).await,
            };
            if let Err(err) = undone {
                tracing::warn!(%job_id, error = %err, "could not give back a purge");
            }
        }
    }
}

/// Scratch space of this deployment's workers: per queue namespace, so deployments (or test
/// runs) sharing a machine never clean up each other's work.
fn scratch_root(config: &Config) -> std::path::PathBuf {
    config.render.scratch_dir.join(&config.queue_name)
}

/// Scratch directories of workers that died without cleaning up: any whose owner has no
/// fresh heartbeat. Best effort; a failure here must not keep the worker from starting.
async fn remove_dead_workers_scratch(config: &Config, registry: &WorkerRegistry) {
    let Ok(live) = registry.live_names(config.worker_stale_after()).await else {
        return;
    };
    let Ok(mut entries) = tokio::fs::read_dir(scratch_root(config)).await else {
        return;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("worker-") && !live.contains(&name) {
            tracing::info!(%name, "removing a dead worker's scratch directory");
            let _ = tokio::fs::remove_dir_all(entry.path()).await;
        }
    }
}

async fn handle(
    job: queue::RenderJob,
    context: Data<Arc<WorkerContext>>,
) -> Result<(), BoxDynError> {
    process::process(job, Arc::clone(&context))
        .await
        .map_err(|e| Box::new(e) as BoxDynError)
}
