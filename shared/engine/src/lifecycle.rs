//! The job state machine: every change of a job's status is a named function here, and
//! [`Transition`] lists which statuses each may start from and where it leads.
//!
//! A worker claims a job for one dispatch and holds a lease on it; every later write of the
//! attempt is fenced by the lease token (`held`), so a worker that lost its job (it stalled
//! past the lease and another worker took over) can no longer change it.
//!
//! ```text
//!  create ─▶ PENDING ─claim─▶ PROCESSING ─succeed─▶ SUCCESS
//!               ▲  ╲              │ │ ╲──fail──────▶ FAILED
//!   hand back / │   cancel        │ ╰──stop (cancel)─▶ CANCELLED
//!   orphan      │    ╲            retry
//!               │     ▶ CANCELLED  ▼
//!               ╰──────────── RETRYING ─claim─▶ PROCESSING
//!
//!  FAILED / CANCELLED ─rerun (an operator)─▶ PENDING
//! ```

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::{pg::PgConnection, prelude::*};
use uuid::Uuid;

use crate::jobs::{not_ended, JobScope, JobService};
use crate::queue::RenderJob;
use db::models::{ClipRow, JobInputRow, JobOutputRow, JobRow, NewJob};
use db::schema::{callback_deliveries, idempotency_keys, job_inputs, job_outputs, jobs};
use domain::clips::ClipSource;
use domain::error::{ServiceError, ServiceResult};
use domain::identity::AuthUser;
use domain::jobs::{
    FailureCode, JobOptions, JobStatus, Library, Stage, StoredInput, IDEMPOTENCY_WINDOW_HOURS,
};
use domain::timings::StageTimings;

/// A change of a job's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// [`JobService::create`]: a new job waits for dispatch.
    Create,
    /// [`dispatch_due`]: the relay picks a waiting job to push to the queue (its status
    /// stays; `dispatched_at` and `dispatches` change, and a claim must name that dispatch).
    Dispatch,
    /// [`JobService::claim`]: a worker takes a waiting job. (It may also take a PROCESSING
    /// job whose lease lapsed, as [`Transition::RecoverOrphan`] would, or fail it when its
    /// attempts are used up.)
    Claim,
    /// [`JobService::set_progress`]: the running attempt reports its stage.
    Progress,
    /// [`JobService::retry_later`]: the attempt failed transiently; the job waits to be tried
    /// again.
    Retry,
    /// [`JobService::hand_back`]: the worker shuts down; the job waits for another.
    HandBack,
    /// [`JobService::cancel`]: the owner cancels a job that has not started.
    Cancel,
    /// [`JobService::cancel`] on a running job: its worker is asked to stop.
    RequestCancel,
    /// [`JobService::mark_cancelled`]: the worker stopped the job its owner cancelled.
    StopCancelled,
    /// [`JobService::succeed`]: the outputs are stored.
    Succeed,
    /// [`JobService::fail`]: the attempt failed for good.
    Fail,
    /// [`JobService::recover_orphans`]: a worker died holding the job; it waits again.
    RecoverOrphan,
    /// [`JobService::discard`]: the owner deletes an ended job.
    Delete,
    /// [`JobService::rerun`]: an operator runs a failed or cancelled job again, afresh.
    Rerun,
}

impl Transition {
    pub const ALL: [Transition; 14] = [
        Self::Create,
        Self::Dispatch,
        Self::Claim,
        Self::Progress,
        Self::Retry,
        Self::HandBack,
        Self::Cancel,
        Self::RequestCancel,
        Self::StopCancelled,
        Self::Succeed,
        Self::Fail,
        Self::RecoverOrphan,
        Self::Delete,
        Self::Rerun,
    ];

    /// The statuses a job may have for this transition to apply (none: it makes the job).
    pub fn from(self) -> &'static [JobStatus] {
        use JobStatus::*;
        match self {
            Self::Create => &[],
            Self::Dispatch | Self::Claim => &[Pending, Retrying],
            Self::Progress
            | Self::RequestCancel
            | Self::Retry
            | Self::HandBack
            | Self::StopCancelled
            | Self::Succeed
            | Self::Fail
            | Self::RecoverOrphan => &[Processing],
            Self::Cancel => &[Pending, Retrying],
            Self::Delete => &[Success, Failed, Cancelled],
            Self::Rerun => &[Failed, Cancelled],
        }
    }

    /// The statuses it may lead to (none: the job is gone).
    pub fn to(self) -> &'static [JobStatus] {
        use JobStatus::*;
        match self {
            Self::Create | Self::HandBack | Self::Rerun => &[Pending],
            Self::Dispatch => &[Pending, Retrying],
            Self::Claim => &[Processing, Failed],
            Self::Progress | Self::RequestCancel => &[Processing],
            Self::Retry => &[Retrying],
            Self::Cancel | Self::StopCancelled => &[Cancelled],
            Self::Succeed => &[Success],
            Self::Fail => &[Failed],
            // Back to wait, or ended when it was cancelled or used up its attempts meanwhile.
            Self::RecoverOrphan => &[Pending, Cancelled, Failed],
            Self::Delete => &[],
        }
    }

    /// Whether some transition takes a job from `from` to `to`.
    pub fn is_legal(from: JobStatus, to: JobStatus) -> bool {
        Self::ALL
            .iter()
            .any(|t| t.from().contains(&from) && t.to().contains(&to))
    }
}

/// What a cancel request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancellation {
    /// The job had not started: it is CANCELLED now and will never run.
    Cancelled,
    /// The job is running: its worker stops it within seconds.
    Requested,
}

/// Whether a job creation made a new job or found the one an idempotency key names.
#[derive(Debug)]
pub enum Creation {
    New(JobRow),
    Existing(JobRow),
}

/// The request a job creation came from.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The client's `Idempotency-Key`: a second creation with it finds the first job.
    pub idempotency_key: Option<String>,
    /// Kept with the job, so the worker's log lines for it carry the request's id.
    pub request_id: Option<String>,
}

impl JobService {
    /// Records a new PENDING job and its stored inputs in one transaction, with its
    /// idempotency key if any. When a concurrent request with the same key won, returns
    /// that request's job instead.
    pub async fn create(
        &self,
        user: AuthUser,
        job_id: Uuid,
        options: JobOptions,
        inputs: Vec<StoredInput>,
        origin: Origin,
    ) -> ServiceResult<Creation> {
        let Origin {
            idempotency_key,
            request_id,
        } = origin;
        let lookup_key = idempotency_key.clone();
        let created = self
            .db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let job = insert_job(conn, user.id, job_id, options, inputs, request_id)?;
                    if let Some(key) = idempotency_key {
                        claim_idempotency_key(conn, user.id, key, job_id)?;
                    }
                    Ok(job)
                })
            })
            .await;
        match created {
            Ok(job) => Ok(Creation::New(job)),
            Err(err) if is_unique_violation(&err) && lookup_key.is_some() => {
                let existing = self
                    .find_by_idempotency_key(user, lookup_key.expect("checked"))
                    .await?;
                existing.map(Creation::Existing).ok_or(err)
            }
            Err(err) => Err(err),
        }
    }

    /// Cancels a job in `scope` (the owner's, or any for operators): a pending one at once,
    /// a running one by asking its worker. A job that already ended is a conflict.
    pub async fn cancel(
        &self,
        scope: impl Into<JobScope>,
        job_id: Uuid,
    ) -> ServiceResult<Cancellation> {
        let scope = scope.into();
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let job = jobs::table
                        .find(job_id)
                        .filter(scope.includes_owner_of())
                        .select(JobRow::as_select())
                        .for_update()
                        .first(conn)
                        .optional()?
                        .ok_or_else(|| ServiceError::not_found("Job"))?;
                    let now = Utc::now();
                    match job.status {
                        JobStatus::Pending | JobStatus::Retrying => {
                            diesel::update(jobs::table.find(job_id))
                                .set((
                                    jobs::status.eq(JobStatus::Cancelled),
                                    jobs::stage.eq(Stage::Cancelled),
                                    jobs::error_code.eq(None::<FailureCode>),
                                    jobs::error_message.eq(None::<String>),
                                    jobs::cancel_requested_at.eq(now),
                                    jobs::finished_at.eq(now),
                                    jobs::updated_at.eq(now),
                                ))
                                .execute(conn)?;
                            Ok(Cancellation::Cancelled)
                        }
                        JobStatus::Processing => {
                            diesel::update(
                                jobs::table
                                    .find(job_id)
                                    .filter(jobs::cancel_requested_at.is_null()),
                            )
                            .set((jobs::cancel_requested_at.eq(now), jobs::updated_at.eq(now)))
                            .execute(conn)?;
                            Ok(Cancellation::Requested)
                        }
                        _ => Err(ServiceError::conflict(format!(
                            "Job already ended ({})",
                            job.status
                        ))
                        .with_data(serde_json::json!({ "status": job.status }))),
                    }
                })
            })
            .await
    }

    /// Runs a failed or cancelled job again from the start (an operator's action): its
    /// attempts, error and timings are cleared and the relay dispatches it like a new one.
    /// Its uploaded clips must still be stored (library clips always are); a job in another
    /// status is a conflict.
    pub async fn rerun(&self, job_id: Uuid) -> ServiceResult<JobRow> {
        let rerun = self
            .db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let now = Utc::now();
                    let job = diesel::update(
                        jobs::table
                            .find(job_id)
                            .filter(jobs::status.eq_any(Transition::Rerun.from()))
                            // Library clips outlive the retention of uploaded ones.
                            .filter(
                                jobs::inputs_purged_at.is_null().or(diesel::dsl::not(
                                    diesel::dsl::exists(
                                        job_inputs::table
                                            .filter(job_inputs::job_id.eq(jobs::id))
                                            .filter(job_inputs::from_library.eq(false)),
                                    ),
                                )),
                            ),
                    )
                    .set((
                        jobs::status.eq(JobStatus::Pending),
                        jobs::stage.eq(Stage::Queued),
                        jobs::progress.eq(0),
                        jobs::attempts.eq(0),
                        jobs::error_code.eq(None::<FailureCode>),
                        jobs::error_message.eq(None::<String>),
                        jobs::started_at.eq(None::<DateTime<Utc>>),
                        jobs::finished_at.eq(None::<DateTime<Utc>>),
                        jobs::cancel_requested_at.eq(None::<DateTime<Utc>>),
                        jobs::dispatched_at.eq(None::<DateTime<Utc>>),
                        jobs::lease_token.eq(None::<Uuid>),
                        jobs::lease_expires_at.eq(None::<DateTime<Utc>>),
                        jobs::timings.eq(None::<StageTimings>),
                        jobs::run_after.eq(now),
                        jobs::updated_at.eq(now),
                    ))
                    .returning(JobRow::as_returning())
                    .get_result(conn)
                    .optional()?;
                    if job.is_some() {
                        // Its callback is sent again when it ends again.
                        diesel::delete(callback_deliveries::table.find(job_id)).execute(conn)?;
                    }
                    Ok(job)
                })
            })
            .await?;
        match rerun {
            Some(job) => Ok(job),
            None => Err(self.why_not_rerun(job_id).await),
        }
    }

    /// Why a job did not run again: its status, or its clips gone.
    async fn why_not_rerun(&self, job_id: Uuid) -> ServiceError {
        let status = match self.get(JobScope::Any, job_id).await {
            Ok(details) => details.job.status,
            Err(err) => return err,
        };
        let message = if Transition::Rerun.from().contains(&status) {
            "The job's clips were deleted at the end of their retention; it cannot run again".into()
        } else {
            format!("Only failed or cancelled jobs run again; this one is {status}")
        };
        ServiceError::conflict(message).with_data(serde_json::json!({ "status": status }))
    }

    /// Removes an ended job of `user`'s and everything that hangs off it (its stored
    /// objects are the caller's to remove first, see [`JobService::ended_job_keys`]). A job
    /// still waiting or running is a conflict: cancel it first.
    pub async fn discard(&self, user: AuthUser, job_id: Uuid) -> ServiceResult<()> {
        let ended = [JobStatus::Success, JobStatus::Failed, JobStatus::Cancelled];
        let removed = self
            .db
            .run(move |conn| {
                Ok(diesel::delete(
                    jobs::table
                        .find(job_id)
                        .filter(jobs::user_id.eq(user.id))
                        .filter(jobs::status.eq_any(ended)),
                )
                .execute(conn)?)
            })
            .await?;
        if removed == 0 {
            // Missing, someone else's, or not ended: `get` tells which.
            let details = self.get(user, job_id).await?;
            return Err(not_ended(details.job.status));
        }
        Ok(())
    }
}

/// What a queue delivery led to.
pub enum Claim {
    /// This worker now holds the job.
    Claimed(Box<ClaimedJob>),
    /// Nothing to do: the delivery is stale, the job ended, or another worker holds it.
    Skipped,
    /// The job's earlier attempts all died with their workers; it is FAILED now.
    Exhausted(Box<JobRow>),
}

pub struct ClaimedJob {
    pub job: JobRow,
    pub inputs: Vec<JobInputRow>,
    pub lease: LeaseToken,
}

/// Proof of holding a job's lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseToken(Uuid);

/// What a lease renewal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    Held {
        cancel_requested: bool,
    },
    /// The job was taken over, deleted or ended elsewhere: stop and write nothing.
    Lost,
}

fn lease_deadline(lease_for: Duration) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(lease_for).unwrap_or(chrono::Duration::MAX)
}

/// Applies `$changes` to the job if `$lease` still holds it: `Some(job)` after the change,
/// `None` when the lease was lost.
macro_rules! update_held {
    ($service:expr, $job_id:expr, $lease:expr, $changes:expr) => {{
        let (job_id, lease) = ($job_id, $lease);
        $service
            .db
            .run(move |conn| {
                Ok(diesel::update(held(job_id, lease))
                    .set($changes)
                    .returning(JobRow::as_returning())
                    .get_result(conn)
                    .optional()?)
            })
            .await
    }};
}

impl JobService {
    /// Takes a job for one queue delivery. Only the job's latest dispatch counts, and a
    /// running job only once its holder's lease has lapsed (the holder died), so duplicate
    /// and stale deliveries are no-ops. A job whose workers died `max_attempts` times fails.
    pub async fn claim(
        &self,
        delivery: RenderJob,
        lease_for: Duration,
        max_attempts: i32,
    ) -> ServiceResult<Claim> {
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let now = Utc::now();
                    let Some(current) = lock_delivered(conn, &delivery)? else {
                        return Ok(Claim::Skipped);
                    };
                    let orphaned = current.status == JobStatus::Processing
                        && current.lease_expires_at.is_some_and(|at| at < now);
                    let waiting =
                        [JobStatus::Pending, JobStatus::Retrying].contains(&current.status);
                    if !waiting && !orphaned {
                        return Ok(Claim::Skipped);
                    }
                    if orphaned && current.attempts >= max_attempts {
                        let failed = end_lapsed_lease(conn, &current, max_attempts, now)?;
                        return Ok(Claim::Exhausted(Box::new(failed)));
                    }
                    let token = Uuid::new_v4();
                    let job = diesel::update(jobs::table.find(current.id))
                        .set((
                            jobs::status.eq(JobStatus::Processing),
                            jobs::stage.eq(Stage::Downloading),
                            jobs::progress.eq(0),
                            jobs::attempts.eq(jobs::attempts + 1),
                            jobs::error_code.eq(None::<String>),
                            jobs::error_message.eq(None::<String>),
                            jobs::lease_token.eq(token),
                            jobs::lease_expires_at.eq(lease_deadline(lease_for)),
                            jobs::started_at.eq(now),
                            jobs::updated_at.eq(now),
                        ))
                        .returning(JobRow::as_returning())
                        .get_result(conn)?;
                    let inputs = job_inputs::table
                        .filter(job_inputs::job_id.eq(job.id))
                        .order(job_inputs::position.asc())
                        .select(JobInputRow::as_select())
                        .load(conn)?;
                    Ok(Claim::Claimed(Box::new(ClaimedJob {
                        job,
                        inputs,
                        lease: LeaseToken(token),
                    })))
                })
            })
            .await
    }

    /// Extends every lease given, in one statement, and reports for each job whether it is
    /// still held and whether its owner asked to cancel. One statement per worker process
    /// per renewal, however many jobs it runs, keeps renewals off the database's back.
    pub async fn renew_leases(
        &self,
        leases: Vec<(Uuid, LeaseToken)>,
        lease_for: Duration,
    ) -> ServiceResult<HashMap<Uuid, LeaseState>> {
        let (ids, tokens): (Vec<Uuid>, Vec<Uuid>) =
            leases.iter().map(|(id, token)| (*id, token.0)).unzip();
        let renewed: Vec<(Uuid, Option<DateTime<Utc>>)> = self
            .db
            .run(move |conn| {
                // Tokens are never reused, so a row holding one of them is that lease's job.
                Ok(diesel::update(
                    jobs::table
                        .filter(jobs::id.eq_any(ids))
                        .filter(jobs::lease_token.eq_any(tokens))
                        .filter(jobs::status.eq(JobStatus::Processing)),
                )
                .set(jobs::lease_expires_at.eq(lease_deadline(lease_for)))
                .returning((jobs::id, jobs::cancel_requested_at))
                .get_results(conn)?)
            })
            .await?;
        let mut states: HashMap<Uuid, LeaseState> = leases
            .iter()
            .map(|(id, _)| (*id, LeaseState::Lost))
            .collect();
        for (id, cancel) in renewed {
            let cancel_requested = cancel.is_some();
            states.insert(id, LeaseState::Held { cancel_requested });
        }
        Ok(states)
    }

    pub async fn set_progress(
        &self,
        job_id: Uuid,
        lease: LeaseToken,
        stage: Stage,
        percent: u8,
    ) -> ServiceResult<Option<JobRow>> {
        update_held!(
            self,
            job_id,
            lease,
            (
                jobs::stage.eq(stage),
                jobs::progress.eq(i16::from(percent.min(100))),
                jobs::updated_at.eq(Utc::now()),
            )
        )
    }

    /// Records the outputs and the attempt's stage times and marks the job SUCCESS,
    /// atomically. `None`: the lease was lost.
    pub async fn succeed(
        &self,
        job_id: Uuid,
        lease: LeaseToken,
        outputs: Vec<JobOutputRow>,
        timings: StageTimings,
    ) -> ServiceResult<Option<JobRow>> {
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let now = Utc::now();
                    let Some(job) = diesel::update(held(job_id, lease))
                        .set((
                            jobs::status.eq(JobStatus::Success),
                            jobs::timings.eq(timings),
                            jobs::stage.eq(Stage::Done),
                            jobs::progress.eq(100),
                            jobs::lease_token.eq(None::<Uuid>),
                            jobs::lease_expires_at.eq(None::<DateTime<Utc>>),
                            jobs::finished_at.eq(now),
                            jobs::updated_at.eq(now),
                        ))
                        .returning(JobRow::as_returning())
                        .get_result(conn)
                        .optional()?
                    else {
                        return Ok(None);
                    };
                    for output in &outputs {
                        diesel::insert_into(job_outputs::table)
                            .values(output)
                            .on_conflict((job_outputs::job_id, job_outputs::format))
                            .do_update()
                            .set((
                                job_outputs::storage_key.eq(&output.storage_key),
                                job_outputs::width.eq(output.width),
                                job_outputs::height.eq(output.height),
                                job_outputs::duration_seconds.eq(output.duration_seconds),
                                job_outputs::size_bytes.eq(output.size_bytes),
                                job_outputs::poster_key.eq(&output.poster_key),
                            ))
                            .execute(conn)?;
                    }
                    Ok(Some(job))
                })
            })
            .await
    }

    /// Ends the job as FAILED with a stable code.
    pub async fn fail(
        &self,
        job_id: Uuid,
        lease: LeaseToken,
        code: FailureCode,
        message: &str,
    ) -> ServiceResult<Option<JobRow>> {
        let message = message.to_owned();
        update_held!(self, job_id, lease, {
            let now = Utc::now();
            (
                jobs::status.eq(JobStatus::Failed),
                jobs::stage.eq(Stage::Failed),
                jobs::error_code.eq(code),
                jobs::error_message.eq(message),
                jobs::lease_token.eq(None::<Uuid>),
                jobs::lease_expires_at.eq(None::<DateTime<Utc>>),
                jobs::finished_at.eq(now),
                jobs::updated_at.eq(now),
            )
        })
    }

    /// Puts the job in RETRYING with the attempt's error; the relay dispatches it again
    /// once `delay` has passed.
    pub async fn retry_later(
        &self,
        job_id: Uuid,
        lease: LeaseToken,
        code: FailureCode,
        message: &str,
        delay: Duration,
    ) -> ServiceResult<Option<JobRow>> {
        let message = message.to_owned();
        update_held!(
            self,
            job_id,
            lease,
            (
                jobs::status.eq(JobStatus::Retrying),
                jobs::stage.eq(Stage::Queued),
                jobs::progress.eq(0),
                jobs::error_code.eq(code),
                jobs::error_message.eq(message),
                jobs::run_after.eq(lease_deadline(delay)),
                jobs::dispatched_at.eq(None::<DateTime<Utc>>),
                jobs::lease_token.eq(None::<Uuid>),
                jobs::lease_expires_at.eq(None::<DateTime<Utc>>),
                jobs::updated_at.eq(Utc::now()),
            )
        )
    }

    /// Gives an unfinished job back to the queue (the worker is shutting down). The attempt
    /// does not count against the job.
    pub async fn hand_back(
        &self,
        job_id: Uuid,
        lease: LeaseToken,
    ) -> ServiceResult<Option<JobRow>> {
        update_held!(
            self,
            job_id,
            lease,
            (
                jobs::status.eq(JobStatus::Pending),
                jobs::stage.eq(Stage::Queued),
                jobs::progress.eq(0),
                jobs::attempts.eq(jobs::attempts - 1),
                jobs::run_after.eq(Utc::now()),
                jobs::dispatched_at.eq(None::<DateTime<Utc>>),
                jobs::lease_token.eq(None::<Uuid>),
                jobs::lease_expires_at.eq(None::<DateTime<Utc>>),
                jobs::updated_at.eq(Utc::now()),
            )
        )
    }

    /// Ends a running job as CANCELLED.
    pub async fn mark_cancelled(
        &self,
        job_id: Uuid,
        lease: LeaseToken,
    ) -> ServiceResult<Option<JobRow>> {
        update_held!(self, job_id, lease, {
            let now = Utc::now();
            (
                jobs::status.eq(JobStatus::Cancelled),
                jobs::stage.eq(Stage::Cancelled),
                jobs::lease_token.eq(None::<Uuid>),
                jobs::lease_expires_at.eq(None::<DateTime<Utc>>),
                jobs::finished_at.eq(now),
                jobs::updated_at.eq(now),
            )
        })
    }

    /// Jobs still PROCESSING whose lease lapsed: their worker died (or stalled past the lease)
    /// and no redelivery took them up. Each goes back to be dispatched again, or ends when it
    /// was cancelled meanwhile or has used up its attempts.
    pub async fn recover_orphans(
        &self,
        max_attempts: i32,
        limit: i64,
    ) -> ServiceResult<Vec<JobRow>> {
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let now = Utc::now();
                    let orphans: Vec<JobRow> = jobs::table
                        .filter(jobs::status.eq(JobStatus::Processing))
                        .filter(jobs::lease_expires_at.lt(now))
                        .select(JobRow::as_select())
                        .limit(limit)
                        .for_update()
                        .skip_locked()
                        .load(conn)?;
                    orphans
                        .into_iter()
                        .map(|job| end_lapsed_lease(conn, &job, max_attempts, now))
                        .collect()
                })
            })
            .await
    }
}

/// Marks due jobs dispatched: plans with priority first, then oldest first. It skips jobs
/// whose owner already has their plan's number of active jobs (`$1` free, `$2` pro: running,
/// or dispatched and waiting), and keeps at most `$4` jobs waiting in Redis, so the backlog
/// waits here where priority can still reorder it. At most `$3` per pass.
const PICK_DUE: &str = "
WITH active AS (
    SELECT user_id, count(*) AS running FROM jobs
    WHERE status = 'PROCESSING'
       OR (status IN ('PENDING', 'RETRYING') AND dispatched_at IS NOT NULL)
    GROUP BY user_id
), waiting_in_queue AS (
    SELECT count(*) AS n FROM jobs
    WHERE status IN ('PENDING', 'RETRYING') AND dispatched_at IS NOT NULL
), ready AS (
    SELECT j.id, j.user_id, j.run_after, j.created_at, u.plan = 'pro' AS priority,
           CASE WHEN u.plan = 'pro' THEN $2 ELSE $1 END AS cap,
           row_number() OVER (PARTITION BY j.user_id ORDER BY j.run_after, j.created_at) AS place
    FROM jobs j JOIN users u ON u.id = j.user_id
    WHERE j.dispatched_at IS NULL AND j.status IN ('PENDING', 'RETRYING') AND j.run_after <= now()
), chosen AS (
    SELECT ready.id FROM ready LEFT JOIN active USING (user_id)
    WHERE COALESCE(active.running, 0) + ready.place <= ready.cap
    ORDER BY ready.priority DESC, ready.run_after, ready.created_at
    LIMIT GREATEST(0, LEAST($3, $4 - (SELECT n FROM waiting_in_queue)))
)
UPDATE jobs SET dispatched_at = now(), dispatches = jobs.dispatches + 1
FROM chosen WHERE jobs.id = chosen.id
RETURNING jobs.id, jobs.dispatches";

#[derive(QueryableByName)]
/// A job marked dispatched, to push to the queue as `(id, dispatches)`.
pub struct Dispatched {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub dispatches: i32,
}

/// Records a new PENDING job and its stored inputs on `conn`, inside the caller's
/// transaction (a job made with something else, like a weekly montage's row).
pub fn insert_job(
    conn: &mut PgConnection,
    user_id: Uuid,
    job_id: Uuid,
    options: JobOptions,
    inputs: Vec<StoredInput>,
    request_id: Option<String>,
) -> ServiceResult<JobRow> {
    let job = diesel::insert_into(jobs::table)
        .values(NewJob {
            id: job_id,
            user_id,
            stage: Some(Stage::Queued),
            target_duration: options.target_duration as i32,
            style: options.style,
            formats: options.formats,
            hud_remove: options.hud_remove,
            watermark: options.watermark,
            callback_url: options.callback_url,
            output_retention_secs: options.output_retention.map(|r| r.as_secs() as i64),
            request_id,
            music: options.music,
            facecam: options.facecam,
            title: options.title,
            fps: options.fps,
        })
        .returning(JobRow::as_returning())
        .get_result(conn)?;
    insert_inputs(conn, user_id, job_id, inputs)?;
    Ok(job)
}

fn insert_inputs(
    conn: &mut PgConnection,
    user_id: Uuid,
    job_id: Uuid,
    inputs: Vec<StoredInput>,
) -> ServiceResult<()> {
    let added: Vec<ClipRow> = inputs
        .iter()
        .filter_map(|input| match input.library {
            Library::Added(id) => Some(ClipRow::pending(
                id,
                user_id,
                ClipSource::Upload,
                None,
                input,
            )),
            Library::Outside | Library::Existing(_) => None,
        })
        .collect();
    library::insert::clips(conn, &added)?;
    let rows: Vec<JobInputRow> = inputs
        .into_iter()
        .enumerate()
        .map(|(position, input)| JobInputRow {
            job_id,
            position: position as i16,
            clip_id: input.library.clip_id(),
            from_library: input.library != Library::Outside,
            storage_key: input.storage_key,
            label: input.label,
            container: input.container,
            size_bytes: input.size_bytes as i64,
        })
        .collect();
    diesel::insert_into(job_inputs::table)
        .values(&rows)
        .execute(conn)?;
    Ok(())
}

/// Ties `key` to the new job; a concurrent request that took it first makes this fail
/// with a unique violation (see [`JobService::create`]).
fn claim_idempotency_key(
    conn: &mut PgConnection,
    user_id: Uuid,
    key: String,
    job_id: Uuid,
) -> ServiceResult<()> {
    let since = Utc::now() - chrono::Duration::hours(IDEMPOTENCY_WINDOW_HOURS);
    // An expired use of the key no longer counts.
    diesel::delete(
        idempotency_keys::table
            .filter(idempotency_keys::user_id.eq(user_id))
            .filter(idempotency_keys::key.eq(&key))
            .filter(idempotency_keys::created_at.le(since)),
    )
    .execute(conn)?;
    diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::user_id.eq(user_id),
            idempotency_keys::key.eq(key),
            idempotency_keys::job_id.eq(job_id),
        ))
        .execute(conn)?;
    Ok(())
}

/// [`Transition::Dispatch`]: marks up to `batch` due jobs dispatched (see [`PICK_DUE`]), in
/// the caller's transaction, which holds the relay lock.
pub fn dispatch_due(
    conn: &mut PgConnection,
    (free_cap, pro_cap): (i64, i64),
    batch: i64,
    prefetch: i64,
) -> ServiceResult<Vec<Dispatched>> {
    use diesel::sql_types::BigInt;
    Ok(diesel::sql_query(PICK_DUE)
        .bind::<BigInt, _>(free_cap)
        .bind::<BigInt, _>(pro_cap)
        .bind::<BigInt, _>(batch)
        .bind::<BigInt, _>(prefetch)
        .load(conn)?)
}

impl JobService {
    /// Undoes a dispatch whose queue push failed or whose queue entry vanished, so the
    /// relay dispatches the job again.
    pub async fn undispatch(&self, job_id: Uuid, dispatch: i32) -> ServiceResult<usize> {
        self.db
            .run(move |conn| {
                Ok(diesel::update(
                    jobs::table
                        .find(job_id)
                        .filter(jobs::dispatches.eq(dispatch))
                        .filter(jobs::status.eq_any([JobStatus::Pending, JobStatus::Retrying])),
                )
                .set(jobs::dispatched_at.eq(None::<DateTime<Utc>>))
                .execute(conn)?)
            })
            .await
    }
}

/// Ends a lapsed lease: the job goes back to be dispatched again, or ends when it was
/// cancelled meanwhile or has used up its attempts.
fn end_lapsed_lease(
    conn: &mut PgConnection,
    job: &JobRow,
    max_attempts: i32,
    now: DateTime<Utc>,
) -> ServiceResult<JobRow> {
    let target = jobs::table.find(job.id);
    let released = (
        jobs::lease_token.eq(None::<Uuid>),
        jobs::lease_expires_at.eq(None::<DateTime<Utc>>),
        jobs::updated_at.eq(now),
    );
    let row = if job.cancel_requested_at.is_some() {
        diesel::update(target)
            .set((
                released,
                jobs::status.eq(JobStatus::Cancelled),
                jobs::stage.eq(Stage::Cancelled),
                jobs::finished_at.eq(now),
            ))
            .returning(JobRow::as_returning())
            .get_result(conn)?
    } else if job.attempts >= max_attempts {
        diesel::update(target)
            .set((
                released,
                jobs::status.eq(JobStatus::Failed),
                jobs::stage.eq(Stage::Failed),
                // Workers kept dying on the job until its attempts ran out.
                jobs::error_code.eq(FailureCode::WorkerLost),
                jobs::error_message.eq("The job stopped its worker every time it was tried"),
                jobs::finished_at.eq(now),
            ))
            .returning(JobRow::as_returning())
            .get_result(conn)?
    } else {
        diesel::update(target)
            .set((
                released,
                jobs::status.eq(JobStatus::Pending),
                jobs::stage.eq(Stage::Queued),
                jobs::progress.eq(0),
                jobs::run_after.eq(now),
                jobs::dispatched_at.eq(None::<DateTime<Utc>>),
            ))
            .returning(JobRow::as_returning())
            .get_result(conn)?
    };
    Ok(row)
}

/// The job, if `lease` still holds it.
#[diesel::dsl::auto_type(no_type_alias)]
fn held(job_id: Uuid, lease: LeaseToken) -> _ {
    let token: Uuid = lease.0;
    let processing: JobStatus = JobStatus::Processing;
    jobs::table
        .find(job_id)
        .filter(jobs::lease_token.eq(token))
        .filter(jobs::status.eq(processing))
}

/// The wait before retrying after failed attempt `attempt` (1-based): exponential from
/// `base`, capped at `max`, with "equal jitter" (a random half) so retries of jobs that failed
/// together, e.g. during a storage outage, do not all return at once.
pub fn retry_delay(attempt: i32, base: Duration, max: Duration) -> Duration {
    let exponent = attempt.clamp(1, 20) as u32 - 1;
    let full = base.saturating_mul(1 << exponent).min(max);
    full.mul_f64(rand::Rng::gen_range(&mut rand::thread_rng(), 0.5..=1.0))
}

fn is_unique_violation(err: &ServiceError) -> bool {
    use std::error::Error;
    err.source()
        .and_then(|s| s.downcast_ref::<diesel::result::Error>())
        .is_some_and(|e| {
            matches!(
                e,
                diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _
                )
            )
        })
}

/// The delivered job, locked, if the delivery is its current one and no cancel is asked.
fn lock_delivered(conn: &mut PgConnection, delivery: &RenderJob) -> QueryResult<Option<JobRow>> {
    jobs::table
        .find(delivery.job_id)
        .filter(jobs::dispatches.eq(delivery.dispatch))
        .filter(jobs::cancel_requested_at.is_null())
        .select(JobRow::as_select())
        .for_update()
        .first(conn)
        .optional()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_exponentially_within_their_jitter_band() {
        let (base, max) = (Duration::from_secs(10), Duration::from_secs(600));
        for (attempt, full) in [(1, 10), (2, 20), (3, 40), (4, 80), (8, 600), (40, 600)] {
            for _ in 0..50 {
                let delay = retry_delay(attempt, base, max).as_secs_f64();
                let full = full as f64;
                assert!(
                    (full / 2.0..=full).contains(&delay),
                    "attempt {attempt}: {delay} s outside {}..={full}",
                    full / 2.0
                );
            }
        }
    }
}
