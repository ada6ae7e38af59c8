//! The relay from PostgreSQL to the queue. The jobs table is the outbox: creating a job only
//! writes rows, and the relay pushes due jobs to Redis afterwards. A job is therefore never
//! lost to a Redis outage, and never pushed for a transaction that rolled back. The relay
//! also enforces the per-user cap on active jobs (extra jobs wait undispatched) and
//! reconciles the two stores: a job whose queue entry vanished, or whose worker died, goes
//! back to be dispatched again. Every API and worker process runs one; an advisory lock
//! keeps their passes from overlapping.

use std::sync::Arc;

use chrono::Utc;
use diesel::{
    prelude::*,
    sql_query,
    sql_types::{BigInt, Bool},
};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::events::JobEvents;
use crate::jobs::JobService;
use crate::lifecycle::{dispatch_due, Dispatched};
use crate::queue::{JobQueue, RenderJob};
use crate::tasks::{BackgroundTasks, Pass, Schedule, Task};
use db::schema::jobs;
use db::Db;
use domain::error::ServiceResult;
use domain::jobs::JobStatus;
use settings::{Config, EngineConfig};

/// Arbitrary constant shared by every instance: the lock one relay pass holds.
const RELAY_LOCK_KEY: i64 = 0x6d6f_6e74_6167_6502;
/// Jobs handled per pass; a backlog drains over consecutive passes.
const BATCH: i64 = 100;

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

#[derive(Clone)]
pub struct Relay {
    jobs: JobService,
    db: Db,
    queue: JobQueue,
    events: JobEvents,
    config: EngineConfig,
    /// Active-job caps of the free and pro plans.
    caps: (i64, i64),
}

impl Relay {
    pub fn new(db: Db, queue: JobQueue, events: JobEvents, config: &Config) -> Self {
        Self {
            events,
            jobs: JobService::new(db.clone()),
            db,
            queue,
            config: config.engine.clone(),
            caps: (
                i64::from(config.billing.free.active_jobs),
                i64::from(config.billing.pro.active_jobs),
            ),
        }
    }

    /// Pushes due jobs to the queue. Returns how many were pushed.
    pub async fn dispatch_due(&self) -> ServiceResult<usize> {
        let ((free_cap, pro_cap), prefetch) = (self.caps, self.config.queue_prefetch);
        let picked: Vec<Dispatched> = self
            .db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let lock = sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
                        .bind::<BigInt, _>(RELAY_LOCK_KEY)
                        .get_result::<Locked>(conn)?;
                    if !lock.locked {
                        return Ok(Vec::new());
                    }
                    dispatch_due(conn, (free_cap, pro_cap), BATCH, prefetch)
                })
            })
            .await?;
        // Pushed after the commit: a crash in between leaves jobs marked dispatched but not
        // queued, which `reconcile` finds and sends again.
        for (done, job) in picked.iter().enumerate() {
            let delivery = RenderJob {
                job_id: job.id,
                dispatch: job.dispatches,
            };
            if let Err(err) = self.queue.enqueue(delivery).await {
                for job in &picked[done..] {
                    self.jobs.undispatch(job.id, job.dispatches).await?;
                }
                return Err(err);
            }
        }
        Ok(picked.len())
    }

    /// Repairs drift between the jobs table and the queue. Returns how many jobs it moved.
    pub async fn reconcile(&self) -> ServiceResult<usize> {
        let lost_after =
            chrono::Duration::from_std(self.config.requeue_after).unwrap_or(chrono::Duration::MAX);
        let waiting: Vec<(Uuid, i32)> = self
            .db
            .run(move |conn| {
                Ok(jobs::table
                    .filter(jobs::status.eq_any([JobStatus::Pending, JobStatus::Retrying]))
                    .filter(jobs::dispatched_at.lt(Utc::now() - lost_after))
                    .select((jobs::id, jobs::dispatches))
                    .limit(BATCH)
                    .load(conn)?)
            })
            .await?;
        let mut moved = 0;
        for (job_id, dispatch) in waiting {
            if !self.queue.holds(RenderJob { job_id, dispatch }).await? {
                tracing::warn!(%job_id, dispatch, "job missing from the queue; dispatching again");
                moved += self.jobs.undispatch(job_id, dispatch).await?;
            }
        }
        for job in self
            .jobs
            .recover_orphans(self.config.max_attempts, BATCH)
            .await?
        {
            tracing::warn!(job_id = %job.id, status = %job.status, "recovered a job whose worker stopped renewing its lease");
            self.events.publish(&job).await;
            moved += 1;
        }
        Ok(moved)
    }

    /// Runs the relay on `tasks`: a dispatch pass at once when `wake` is notified (a job was
    /// created or a slot freed), otherwise every `relay_interval`; a reconcile pass every
    /// `reconcile_interval`.
    pub fn spawn_on(self, tasks: &BackgroundTasks, wake: Arc<Notify>) {
        let (relay_every, reconcile_every) =
            (self.config.relay_interval, self.config.reconcile_interval);
        tasks.spawn(
            DispatchPass(self.clone()),
            Schedule::every(relay_every).woken_by(wake),
        );
        tasks.spawn(ReconcilePass(self), Schedule::every(reconcile_every));
    }
}

struct DispatchPass(Relay);

impl Task for DispatchPass {
    const NAME: &'static str = "relay";

    async fn run(&mut self) -> ServiceResult<Pass> {
        let pushed = self.0.dispatch_due().await?;
        Ok(if pushed as i64 >= BATCH {
            Pass::More
        } else {
            Pass::Idle
        })
    }
}

struct ReconcilePass(Relay);

impl Task for ReconcilePass {
    const NAME: &'static str = "reconcile";

    async fn run(&mut self) -> ServiceResult<Pass> {
        self.0.reconcile().await.map(|_| Pass::Idle)
    }
}
