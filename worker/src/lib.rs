//! Render workers: consume job ids from the apalis queue and render in-process.

mod examine;
mod leases;
mod linked;
pub mod media;
mod process;
mod samples;
pub mod sandbox;
#[cfg(feature = "scale-bench")]
pub mod simulated;
mod stop;
mod weekly_run;

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
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
use engine::queue;
use engine::tasks::{BackgroundTasks, Pass, Schedule, Task as BackgroundTask};
use futures::{FutureExt, Stream};
use library::uploads::DirectUploads;
use linking::import::{ImportLimits, Importer};
use linking::posting::Poster;
use linking::Linking;
use settings::Config;
use telemetry::MetricsListener;
use tokio::sync::{watch, Notify};

pub use crate::process::Render;
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

/// Serves this worker's `/metrics` on its own listener, when configured. Running more
/// workers on one host is how it scales: when the port is taken (by a sibling), this one
/// takes a free port on the same address and logs it, instead of not starting.
async fn serve_metrics(config: &Config, tasks: &BackgroundTasks) -> anyhow::Result<()> {
    let Some(address) = config.metrics.worker_bind else {
        return Ok(());
    };
    let token = config.metrics.token.clone();
    let listener = match MetricsListener::bind(address, token.clone()).await {
        Err(err) if err.kind() == std::io::ErrorKind::AddrInUse => {
            let any_port = std::net::SocketAddr::new(address.ip(), 0);
            let listener = MetricsListener::bind(any_port, token).await;
            let listener = listener.with_context(|| format!("cannot bind {any_port}"))?;
            tracing::warn!(wanted = %address, address = %listener.local_addr(),
                "the metrics port is taken (another worker?): serving metrics on a free port");
            listener
        }
        bound => bound.with_context(|| format!("cannot bind the metrics listener {address}"))?,
    };
    tracing::info!(address = %listener.local_addr(), "metrics listening");
    tasks.spawn_service(listener.serve());
    Ok(())
}

/// Runs one worker process until `shutdown` resolves. Then it takes no new jobs, lets running
/// ones finish for the grace period, and hands back to the queue whatever is still running.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_with(config, shutdown, Render::Media).await
}

/// [`run`], with the attempts' work given: only the scale bench gives another.
pub async fn run_with(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
    render: Render,
) -> anyhow::Result<()> {
    let name = unique_worker_name();
    let db = Db::new(&config.database_url, config.database_pool_size);
    let redis = queue::connect(&config.redis_url, std::time::Duration::from_secs(30)).await?;
    let registry = WorkerRegistry::new(redis.clone(), &config.queue_name);
    let scratch_dir = arrive(&config, &registry, &name).await?;
    let (hand_back_tx, hand_back) = watch::channel(false);
    let dispatch = Arc::new(Notify::new());
    let events_redis = queue::connect_role(
        &config.events_redis_url,
        (config.redis_url.as_str(), &redis),
        std::time::Duration::from_secs(30),
    )
    .await?;
    let events = JobEvents::new(events_redis, &config.queue_name);
    let context = Arc::new(WorkerContext {
        render,
        ..WorkerContext::new(
            &config,
            db.clone(),
            events.clone(),
            hand_back,
            dispatch.clone(),
            scratch_dir.clone(),
        )?
    });
    let backend = RedisStorage::<queue::RenderJob>::new(redis.clone())
        .with_config(queue::storage_config(&config));
    let tasks = BackgroundTasks::new();
    serve_metrics(&config, &tasks).await?;
    spawn_liveness(&config, &tasks, (&registry, &name), &context);
    let queue = queue::JobQueue::new(redis, &config);
    Relay::new(db.clone(), queue, events, &config).spawn_on(&tasks, dispatch.clone());
    CallbackSender::new(db.clone(), config.callbacks.clone())?.spawn_on(&tasks);
    spawn_housekeeping(&config, &tasks, &db, backend.clone(), &context);
    weekly_run::spawn_on(&tasks, &config, db.clone(), dispatch);
    spawn_library_work(&config, &tasks, db, &context)?;
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

/// What tells the others that this worker and its jobs live: its heartbeat (for the queue)
/// and its running jobs' leases (for the database).
fn spawn_liveness(
    config: &Config,
    tasks: &BackgroundTasks,
    (registry, name): (&WorkerRegistry, &str),
    context: &Arc<WorkerContext>,
) {
    tasks.spawn(
        Heartbeat {
            registry: registry.clone(),
            name: name.to_owned(),
        },
        Schedule::every(config.render.heartbeat_interval),
    );
    tasks.spawn(
        leases::LeaseRenewal {
            leases: context.leases.clone(),
            jobs: context.jobs.clone(),
            lease_for: config.engine.lease,
        },
        Schedule::every(config.engine.lease_renewal),
    );
}

/// Announces this worker and makes its scratch directory, once the ones dead workers left
/// are gone; answers the directory.
async fn arrive(
    config: &Config,
    registry: &WorkerRegistry,
    name: &str,
) -> anyhow::Result<std::path::PathBuf> {
    // Stamped before its scratch directory exists, so siblings starting now know it lives.
    if let Err(err) = registry.beat(name).await {
        tracing::warn!(error = %err, "could not stamp the first heartbeat");
    }
    remove_dead_workers_scratch(config, registry).await;
    let scratch_dir = scratch_root(config).join(name);
    tokio::fs::create_dir_all(&scratch_dir).await?;
    Ok(scratch_dir)
}

/// The periodic clean-up: the queue's finished entries, abandoned direct uploads, and
/// inputs past their retention.
fn spawn_housekeeping(
    config: &Config,
    tasks: &BackgroundTasks,
    db: &Db,
    queue: RedisStorage<queue::RenderJob>,
    context: &Arc<WorkerContext>,
) {
    let uploads = DirectUploads::new(db.clone(), context.storage.clone(), (&config.limits).into());
    let housekeeping = Housekeeping {
        queue,
        uploads,
        context: context.clone(),
        retention: config.render.input_retention,
    };
    tasks.spawn(
        housekeeping,
        Schedule::every(config.render.queue_vacuum_interval),
    );
}

/// The library's work on this worker: examining clips, importing them from linked
/// accounts, posting montages to them, and the styles' samples.
fn spawn_library_work(
    config: &Config,
    tasks: &BackgroundTasks,
    db: Db,
    context: &Arc<WorkerContext>,
) -> anyhow::Result<()> {
    let poll = Schedule::every(config.render.library_poll);
    let examination = examine::Examination {
        context: context.clone(),
    };
    tasks.spawn(examination, poll.clone());
    if let Some(clips) = config.render.style_sample_clips.clone() {
        let samples = samples::StyleSamples {
            context: context.clone(),
            clips,
        };
        tasks.spawn(samples, Schedule::every(SAMPLES_LOOK_EVERY));
    }
    let importer = Importer {
        linking: Linking::new(db, config)?,
        storage: context.storage.clone(),
        limits: ImportLimits {
            max_file_bytes: config.limits.max_file_bytes,
            part_bytes: config.limits.upload_part_bytes,
            part_concurrency: config.limits.upload_part_concurrency,
        },
        events: context.events.clone(),
    };
    let poster = Poster {
        linking: importer.linking.clone(),
        storage: context.storage.clone(),
        events: context.events.clone(),
        chunk_bytes: config.linking.post_chunk_bytes,
        retry_base: config.linking.post_retry_base,
        retry_max: config.linking.post_retry_max,
        max_attempts: config.linking.post_max_attempts,
    };
    let syncs = linked::AccountSyncs {
        importer,
        every: config.linking.sync_every,
    };
    tasks.spawn(syncs, poll.clone());
    tasks.spawn(linked::SocialPosts { poster }, poll);
    Ok(())
}

/// Wake-ups for this worker's queue poller: the count of jobs pushed, bumped at each push.
/// A watch, so each incarnation of the poller (see [`consume`]) follows it with its own
/// receiver.
fn watch_pushes(config: &Config, tasks: &BackgroundTasks) -> watch::Receiver<u64> {
    let (wake, wakeups) = watch::channel(0u64);
    let pushes = queue::PushWatch::new(config, move || {
        wake.send_modify(|pushed| *pushed = pushed.wrapping_add(1));
    });
    tasks.spawn(pushes, Schedule::every(config.engine.poll_interval));
    wakeups
}

/// A stream that yields once per change of `wakeups` (several pushes between two polls
/// yield once: one look at the queue finds them all).
fn wakeup_stream(wakeups: &watch::Receiver<u64>) -> Pin<Box<dyn Stream<Item = ()> + Send + Sync>> {
    Box::pin(futures::stream::unfold(
        wakeups.clone(),
        |mut wakeups| async move { wakeups.changed().await.ok().map(|()| ((), wakeups)) },
    ))
}

/// The first pause after the queue fails; it doubles at each failure in a row, up to
/// [`QUEUE_RETRY_MAX`].
/// How often a worker looks for a style sample storage lacks (one is rendered at start).
const SAMPLES_LOOK_EVERY: Duration = Duration::from_secs(3600);
const QUEUE_RETRY_FIRST: Duration = Duration::from_millis(500);
const QUEUE_RETRY_MAX: Duration = Duration::from_secs(30);

/// Takes jobs from the queue until `shutdown`; then takes no new ones, lets running ones
/// finish for the grace period, and has the rest handed back (through `hand_back`).
///
/// apalis ends a worker at its first failed poll (Redis restarting, or a reply slower than
/// the connection's timeout). The process does not end with it: its running jobs carry on
/// (each is a task of its own), and after a pause a new apalis worker takes jobs again,
/// under a new name so that apalis hands the old name's unfinished entries back to the
/// queue once its heartbeat goes stale.
async fn consume(
    config: &Config,
    name: &str,
    backend: RedisStorage<queue::RenderJob>,
    context: Arc<WorkerContext>,
    wakeups: watch::Receiver<u64>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    hand_back: watch::Sender<bool>,
) -> anyhow::Result<()> {
    let shutdown = shutdown.shared();
    hand_back_after_grace(config.engine.shutdown_grace, shutdown.clone(), hand_back);
    let mut pause = QUEUE_RETRY_FIRST;
    for incarnation in 0u32.. {
        let started = Instant::now();
        let apalis_name = match incarnation {
            0 => name.to_owned(),
            n => format!("{name}-{n}"),
        };
        let worker = Incarnation {
            config,
            name: apalis_name,
            backend: backend.clone(),
            context: context.clone(),
            wakeups: &wakeups,
        };
        match worker.take_jobs(shutdown.clone()).await {
            Ok(()) => break,
            Err(WorkerError::BackendError(err)) => {
                if started.elapsed() > QUEUE_RETRY_MAX {
                    pause = QUEUE_RETRY_FIRST;
                }
                tracing::error!(error = %err, ?pause, "the queue failed; running jobs carry on, new ones are taken after a pause");
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = shutdown.clone() => break,
                }
                pause = (pause * 2).min(QUEUE_RETRY_MAX);
            }
            Err(err) => return Err(anyhow::anyhow!("worker failed: {err}")),
        }
    }
    context.running.close();
    context.running.wait().await;
    Ok(())
}

/// Once `shutdown` comes, waits out the grace period and then asks running jobs to hand
/// themselves back.
fn hand_back_after_grace(
    grace: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
    hand_back: watch::Sender<bool>,
) {
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!(
            ?grace,
            "shutting down: no new jobs; running ones get the grace period"
        );
        tokio::time::sleep(grace).await;
        let _ = hand_back.send(true);
    });
}

/// One apalis worker taking jobs for this process, until shutdown or a queue failure.
struct Incarnation<'a> {
    config: &'a Config,
    name: String,
    backend: RedisStorage<queue::RenderJob>,
    context: Arc<WorkerContext>,
    wakeups: &'a watch::Receiver<u64>,
}

impl Incarnation<'_> {
    async fn take_jobs(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), WorkerError> {
        let concurrency = self.config.render.worker_concurrency;
        // Without a wake-up, an idle worker looks for new jobs only on its heartbeat, so a
        // job would wait up to WORKER_HEARTBEAT_SECS to start. A push wakes it at once; the
        // interval covers pushes whose notification was lost.
        let poll = Strategy::new()
            .stream(wakeup_stream(self.wakeups))
            .interval(self.config.engine.poll_interval);
        tracing::info!(name = %self.name, concurrency, "taking jobs");
        WorkerBuilder::new(self.name)
            .backend(self.backend.poll_with_strategy(poll))
            .data(self.context)
            .concurrency(concurrency)
            .build(handle)
            .run_until(async move {
                shutdown.await;
                Ok::<(), std::io::Error>(())
            })
            .await
    }
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
/// only make Redis grow), uploaded clips of jobs that ended longer than `retention` ago,
/// expired outputs, the objects of deleted accounts, and abandoned direct uploads.
struct Housekeeping {
    queue: RedisStorage<queue::RenderJob>,
    uploads: DirectUploads,
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
        empty_prefixes(&self.context, PURGE_BATCH).await;
        match self.uploads.abort_expired(PURGE_BATCH).await {
            Ok(0) => {}
            Ok(aborted) => tracing::info!(aborted, "aborted abandoned direct uploads"),
            Err(err) => tracing::warn!(error = %err, "could not abort abandoned direct uploads"),
        }
        Ok(Pass::Idle)
    }
}

/// Deletes everything under the storage prefixes of deleted accounts and jobs; a prefix
/// that could not be emptied is retried by a later pass.
async fn empty_prefixes(context: &WorkerContext, limit: i64) {
    let prefixes = match context.jobs.take_storage_purges(limit).await {
        Ok(prefixes) => prefixes,
        Err(err) => {
            tracing::warn!(error = %err, "could not list storage prefixes to purge");
            return;
        }
    };
    for prefix in prefixes {
        let emptied = async {
            let keys = context.storage.keys_under(&prefix).await?;
            context.storage.delete(&keys).await?;
            context.jobs.finish_storage_purge(prefix.clone()).await
        };
        if let Err(err) = emptied.await {
            tracing::warn!(%prefix, error = %err, "could not purge a prefix; will retry");
        }
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

/// Scratch directories of workers known to be gone: their heartbeat expired, or they have
/// none and the directory is older than a job's lease (a sibling starting at this moment
/// has a young directory and is left alone). Best effort; a failure here must not keep the
/// worker from starting.
async fn remove_dead_workers_scratch(config: &Config, registry: &WorkerRegistry) {
    let Ok(stamps) = registry.stamps().await else {
        return;
    };
    let Ok(mut entries) = tokio::fs::read_dir(scratch_root(config)).await else {
        return;
    };
    let now = std::time::SystemTime::now();
    let stale_before = now - config.worker_stale_after();
    while let Ok(Some(entry)) = entries.next_entry().await {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("worker-") {
            continue;
        }
        let gone = match stamps.iter().find(|(worker, _)| *worker == name) {
            Some((_, stamped)) => {
                std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(*stamped) < stale_before
            }
            None => entry
                .metadata()
                .await
                .and_then(|meta| meta.modified())
                .is_ok_and(|modified| modified + config.engine.lease < now),
        };
        if gone {
            tracing::info!(%name, "removing a dead worker's scratch directory");
            let _ = tokio::fs::remove_dir_all(entry.path()).await;
        }
    }
}

async fn handle(
    job: queue::RenderJob,
    context: Data<Arc<WorkerContext>>,
) -> Result<(), BoxDynError> {
    let context = Arc::clone(&context);
    let running = context
        .running
        .spawn(process::process(job, context.clone()));
    running
        .await
        .map_err(|e| Box::new(e) as BoxDynError)?
        .map_err(|e| Box::new(e) as BoxDynError)
}
