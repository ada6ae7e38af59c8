//! The worker's side of the job lifecycle. A worker claims a job for one dispatch and holds a
//! lease on it; every later write is fenced by the lease token, so a worker that lost its job
//! (it stalled past the lease and another worker took over) can no longer change it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::{pg::PgConnection, prelude::*};
use uuid::Uuid;

use crate::jobs::JobService;
use crate::queue::RenderJob;
use db::models::{JobInputRow, JobOutputRow, JobRow};
use db::schema::{job_inputs, job_outputs, jobs};
use domain::error::ServiceResult;
use domain::jobs::{FailureCode, JobStatus, Stage};

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
                    let Some(current) = jobs::table
                        .find(delivery.job_id)
                        .filter(jobs::dispatches.eq(delivery.dispatch))
                        .filter(jobs::cancel_requested_at.is_null())
                        .select(JobRow::as_select())
                        .for_update()
                        .first(conn)
                        .optional()?
                    else {
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

    /// Extends the lease and reports whether the owner asked to cancel.
    pub async fn renew_lease(
        &self,
        job_id: Uuid,
        lease: LeaseToken,
        lease_for: Duration,
    ) -> ServiceResult<LeaseState> {
        self.db
            .run(move |conn| {
                let renewed: Option<Option<DateTime<Utc>>> = diesel::update(held(job_id, lease))
                    .set(jobs::lease_expires_at.eq(lease_deadline(lease_for)))
                    .returning(jobs::cancel_requested_at)
                    .get_result(conn)
                    .optional()?;
                Ok(match renewed {
                    Some(cancel) => LeaseState::Held {
                        cancel_requested: cancel.is_some(),
                    },
                    None => LeaseState::Lost,
                })
            })
            .await
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

    /// Records the outputs and marks the job SUCCESS, atomically. `None`: the lease was lost.
    pub async fn succeed(
        &self,
        job_id: Uuid,
        lease: LeaseToken,
        outputs: Vec<JobOutputRow>,
    ) -> ServiceResult<Option<JobRow>> {
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let now = Utc::now();
                    let Some(job) = diesel::update(held(job_id, lease))
                        .set((
                            jobs::status.eq(JobStatus::Success),
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

    /// Takes up to `limit` jobs that ended more than `retention` ago and still have their
    /// uploaded clips, marks them purged, and returns (job, input keys) for the caller to
    /// delete. Workers running this at once never take the same job (SKIP LOCKED).
    pub async fn take_inputs_to_purge(
        &self,
        retention: chrono::Duration,
        limit: i64,
    ) -> ServiceResult<Vec<(Uuid, Vec<String>)>> {
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let now = Utc::now();
                    let due: Vec<Uuid> = jobs::table
                        .filter(jobs::inputs_purged_at.is_null())
                        .filter(jobs::finished_at.le(now - retention))
                        .order(jobs::finished_at.asc())
                        .limit(limit)
                        .select(jobs::id)
                        .for_update()
                        .skip_locked()
                        .load(conn)?;
                    diesel::update(jobs::table.filter(jobs::id.eq_any(&due)))
                        .set(jobs::inputs_purged_at.eq(now))
                        .execute(conn)?;
                    let keys: Vec<(Uuid, String)> = job_inputs::table
                        .filter(job_inputs::job_id.eq_any(&due))
                        .select((job_inputs::job_id, job_inputs::storage_key))
                        .load(conn)?;
                    Ok(keys_by_job(due, keys))
                })
            })
            .await
    }

    /// Marks up to `limit` jobs whose outputs outlived their plan's retention as expired,
    /// and returns their outputs' and posters' storage keys, for deletion.
    pub async fn take_outputs_to_expire(
        &self,
        limit: i64,
    ) -> ServiceResult<Vec<(Uuid, Vec<String>)>> {
        use diesel::{dsl::sql, sql_types::Bool};
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let due: Vec<Uuid> = jobs::table
                        .filter(jobs::outputs_expired_at.is_null())
                        .filter(jobs::output_retention_secs.is_not_null())
                        .filter(sql::<Bool>(
                            "finished_at + output_retention_secs * interval '1 second' <= now()",
                        ))
                        .order(jobs::finished_at.asc())
                        .limit(limit)
                        .select(jobs::id)
                        .for_update()
                        .skip_locked()
                        .load(conn)?;
                    diesel::update(jobs::table.filter(jobs::id.eq_any(&due)))
                        .set(jobs::outputs_expired_at.eq(Utc::now()))
                        .execute(conn)?;
                    let outputs: Vec<(Uuid, String, Option<String>)> = job_outputs::table
                        .filter(job_outputs::job_id.eq_any(&due))
                        .select((
                            job_outputs::job_id,
                            job_outputs::storage_key,
                            job_outputs::poster_key,
                        ))
                        .load(conn)?;
                    let keys = outputs.into_iter().flat_map(|(job, key, poster)| {
                        std::iter::once((job, key)).chain(poster.map(|p| (job, p)))
                    });
                    Ok(keys_by_job(due, keys))
                })
            })
            .await
    }

    /// Undoes [`JobService::take_outputs_to_expire`] for a job whose outputs could not be
    /// deleted, so a later pass tries again.
    pub async fn unmark_expired(&self, job_id: Uuid) -> ServiceResult<()> {
        self.db
            .run(move |conn| {
                diesel::update(jobs::table.find(job_id))
                    .set(jobs::outputs_expired_at.eq(None::<chrono::DateTime<Utc>>))
                    .execute(conn)?;
                Ok(())
            })
            .await
    }

    /// Undoes [`JobService::take_inputs_to_purge`] for a job whose clips could not be deleted.
    pub async fn unmark_purged(&self, job_id: Uuid) -> ServiceResult<()> {
        self.db
            .run(move |conn| {
                diesel::update(jobs::table.find(job_id))
                    .set(jobs::inputs_purged_at.eq(None::<DateTime<Utc>>))
                    .execute(conn)?;
                Ok(())
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

/// Groups `(job, key)` pairs under each job of `jobs`, in that order.
fn keys_by_job(
    jobs: Vec<Uuid>,
    keys: impl IntoIterator<Item = (Uuid, String)>,
) -> Vec<(Uuid, Vec<String>)> {
    let mut grouped: Vec<(Uuid, Vec<String>)> =
        jobs.into_iter().map(|id| (id, Vec::new())).collect();
    for (job, key) in keys {
        if let Some((_, of_job)) = grouped.iter_mut().find(|(id, _)| *id == job) {
            of_job.push(key);
        }
    }
    grouped
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
