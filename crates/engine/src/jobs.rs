//! Montage jobs: options that validate on parse, and the job lifecycle in PostgreSQL.

use chrono::Utc;
use diesel::prelude::*;
use uuid::Uuid;

use db::models::{JobInputRow, JobOutputRow, JobRow, NewJob};
use db::schema::{idempotency_keys, job_inputs, job_outputs, jobs};
use db::Db;
use domain::error::{ErrorCode, ServiceError, ServiceResult};
use domain::identity::AuthUser;
use domain::jobs::{
    FailureCode, JobOptions, JobStatus, OutputFormat, Stage, StoredInput, IDEMPOTENCY_WINDOW_HOURS,
};

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

/// What a user has open and stored, against the plan's quotas.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// Jobs waiting or running.
    pub open_jobs: i64,
    /// Clips not yet purged and outputs not yet expired.
    pub stored_bytes: u64,
}

impl Usage {
    /// Refuses a new job past the plan's quotas; otherwise the bytes it may still store.
    pub fn admit(&self, plan: &settings::PlanConfig) -> ServiceResult<u64> {
        if self.open_jobs >= plan.open_jobs {
            return Err(ServiceError::new(
                ErrorCode::QuotaExceeded,
                format!(
                    "You have {} jobs waiting or running; your plan allows {} at a time",
                    self.open_jobs, plan.open_jobs
                ),
            )
            .with_data(serde_json::json!({ "quota": "open_jobs", "limit": plan.open_jobs })));
        }
        let left = plan.storage_bytes.saturating_sub(self.stored_bytes);
        if left == 0 {
            return Err(ServiceError::new(
                ErrorCode::QuotaExceeded,
                "Your plan's storage is full: delete finished jobs to make room",
            )
            .with_data(
                serde_json::json!({ "quota": "storage", "limit_bytes": plan.storage_bytes }),
            ));
        }
        Ok(left)
    }
}

/// A job with its outputs, as its owner sees it.
#[derive(Debug, Clone)]
pub struct JobDetails {
    pub job: JobRow,
    pub outputs: Vec<JobOutputRow>,
}

/// A page of a user's jobs.
#[derive(Debug)]
pub struct JobPage {
    pub jobs: Vec<JobRow>,
    pub total: i64,
}

#[derive(Clone)]
pub struct JobService {
    pub(crate) db: Db,
}

impl JobService {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// The job an idempotency key of `user` names, if it was used within the window.
    pub async fn find_by_idempotency_key(
        &self,
        user: AuthUser,
        key: String,
    ) -> ServiceResult<Option<JobRow>> {
        self.db
            .run(move |conn| {
                let since = Utc::now() - chrono::Duration::hours(IDEMPOTENCY_WINDOW_HOURS);
                Ok(idempotency_keys::table
                    .inner_join(jobs::table)
                    .filter(idempotency_keys::user_id.eq(user.id))
                    .filter(idempotency_keys::key.eq(key))
                    .filter(idempotency_keys::created_at.gt(since))
                    .select(JobRow::as_select())
                    .first(conn)
                    .optional()?)
            })
            .await
    }

    /// Records a new PENDING job and its stored inputs in one transaction, with its
    /// idempotency key if any. When a concurrent request with the same key won, returns
    /// that request's job instead.
    pub async fn create(
        &self,
        user: AuthUser,
        job_id: Uuid,
        options: JobOptions,
        inputs: Vec<StoredInput>,
        idempotency_key: Option<String>,
    ) -> ServiceResult<Creation> {
        let lookup_key = idempotency_key.clone();
        let created = self
            .db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let job = diesel::insert_into(jobs::table)
                        .values(NewJob {
                            id: job_id,
                            user_id: user.id,
                            stage: Some(Stage::Queued),
                            target_duration: options.target_duration as i32,
                            style: options.style,
                            formats: options.formats,
                            hud_remove: options.hud_remove,
                            watermark: options.watermark,
                            callback_url: options.callback_url,
                            output_retention_secs: options
                                .output_retention
                                .map(|r| r.as_secs() as i64),
                        })
                        .returning(JobRow::as_returning())
                        .get_result(conn)?;
                    let rows: Vec<JobInputRow> = inputs
                        .into_iter()
                        .enumerate()
                        .map(|(position, input)| JobInputRow {
                            job_id,
                            position: position as i16,
                            storage_key: input.storage_key,
                            label: input.label,
                            container: input.container,
                            size_bytes: input.size_bytes as i64,
                        })
                        .collect();
                    diesel::insert_into(job_inputs::table)
                        .values(&rows)
                        .execute(conn)?;
                    if let Some(key) = idempotency_key {
                        let since = Utc::now() - chrono::Duration::hours(IDEMPOTENCY_WINDOW_HOURS);
                        // An expired use of the key no longer counts.
                        diesel::delete(
                            idempotency_keys::table
                                .filter(idempotency_keys::user_id.eq(user.id))
                                .filter(idempotency_keys::key.eq(&key))
                                .filter(idempotency_keys::created_at.le(since)),
                        )
                        .execute(conn)?;
                        diesel::insert_into(idempotency_keys::table)
                            .values((
                                idempotency_keys::user_id.eq(user.id),
                                idempotency_keys::key.eq(key),
                                idempotency_keys::job_id.eq(job_id),
                            ))
                            .execute(conn)?;
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

    /// Cancels a job of `user`'s: a pending one at once, a running one by asking its
    /// worker. A job that already ended is a conflict.
    pub async fn cancel(&self, user: AuthUser, job_id: Uuid) -> ServiceResult<Cancellation> {
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let job = jobs::table
                        .find(job_id)
                        .filter(jobs::user_id.eq(user.id))
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

    /// The storage keys (inputs, outputs, posters) of an ended job of `user`'s, so they can
    /// be removed before the job itself ([`JobService::discard`]). A job still pending or
    /// running is a conflict: cancel it first.
    pub async fn ended_job_keys(&self, user: AuthUser, job_id: Uuid) -> ServiceResult<Vec<String>> {
        let details = self.get(user, job_id).await?;
        if !details.job.status.is_final() {
            return Err(
                ServiceError::conflict("Only ended jobs can be deleted; cancel it first")
                    .with_data(serde_json::json!({ "status": details.job.status })),
            );
        }
        let mut keys: Vec<String> = self
            .db
            .run(move |conn| {
                Ok(job_inputs::table
                    .filter(job_inputs::job_id.eq(job_id))
                    .select(job_inputs::storage_key)
                    .load(conn)?)
            })
            .await?;
        for output in details.outputs {
            keys.push(output.storage_key);
            keys.extend(output.poster_key);
        }
        Ok(keys)
    }

    /// Removes a job row and everything that hangs off it (its stored objects are the
    /// caller's to remove).
    pub async fn discard(&self, job_id: Uuid) -> ServiceResult<()> {
        self.db
            .run(move |conn| {
                diesel::delete(jobs::table.find(job_id)).execute(conn)?;
                Ok(())
            })
            .await
    }

    /// A job of `user`'s; another user's job is "not found", exactly like a missing one.
    pub async fn get(&self, user: AuthUser, job_id: Uuid) -> ServiceResult<JobDetails> {
        self.db
            .run(move |conn| {
                let job = jobs::table
                    .find(job_id)
                    .filter(jobs::user_id.eq(user.id))
                    .select(JobRow::as_select())
                    .first(conn)
                    .optional()?
                    .ok_or_else(|| ServiceError::not_found("Job"))?;
                let outputs = job_outputs::table
                    .filter(job_outputs::job_id.eq(job_id))
                    .order(job_outputs::format.asc())
                    .select(JobOutputRow::as_select())
                    .load(conn)?;
                Ok(JobDetails { job, outputs })
            })
            .await
    }

    /// The caller's jobs, newest first.
    pub async fn list(&self, user: AuthUser, limit: i64, offset: i64) -> ServiceResult<JobPage> {
        self.db
            .run(move |conn| {
                let jobs = jobs::table
                    .filter(jobs::user_id.eq(user.id))
                    .order((jobs::created_at.desc(), jobs::id.desc()))
                    .limit(limit)
                    .offset(offset)
                    .select(JobRow::as_select())
                    .load(conn)?;
                let total = jobs::table
                    .filter(jobs::user_id.eq(user.id))
                    .count()
                    .get_result(conn)?;
                Ok(JobPage { jobs, total })
            })
            .await
    }

    /// What `user` has open and stored, for the plan's quotas.
    pub async fn usage(&self, user: AuthUser) -> ServiceResult<Usage> {
        use diesel::{
            dsl::{count_star, sql},
            sql_types::{BigInt, Nullable},
        };
        // SUM of BIGINT is NUMERIC in PostgreSQL; cast it back.
        let total = |column: &str| sql::<Nullable<BigInt>>(&format!("SUM({column})::int8"));
        self.db
            .run(move |conn| {
                let open_jobs: i64 = jobs::table
                    .filter(jobs::user_id.eq(user.id))
                    .filter(jobs::status.eq_any([
                        JobStatus::Pending,
                        JobStatus::Processing,
                        JobStatus::Retrying,
                    ]))
                    .select(count_star())
                    .first(conn)?;
                let inputs: Option<i64> = job_inputs::table
                    .inner_join(jobs::table)
                    .filter(jobs::user_id.eq(user.id))
                    .filter(jobs::inputs_purged_at.is_null())
                    .select(total("job_inputs.size_bytes"))
                    .first(conn)?;
                let outputs: Option<i64> = job_outputs::table
                    .inner_join(jobs::table)
                    .filter(jobs::user_id.eq(user.id))
                    .filter(jobs::outputs_expired_at.is_null())
                    .select(total("job_outputs.size_bytes"))
                    .first(conn)?;
                Ok(Usage {
                    open_jobs,
                    stored_bytes: (inputs.unwrap_or(0) + outputs.unwrap_or(0)).max(0) as u64,
                })
            })
            .await
    }

    /// The stored output of a finished job, for download.
    pub async fn output(
        &self,
        user: AuthUser,
        job_id: Uuid,
        format: OutputFormat,
    ) -> ServiceResult<JobOutputRow> {
        let details = self.get(user, job_id).await?;
        let status = details.job.status;
        if details.job.outputs_expired_at.is_some() {
            return Err(ServiceError::new(
                ErrorCode::OutputsExpired,
                "This job's outputs were deleted at the end of the plan's retention",
            ));
        }
        if status != JobStatus::Success {
            return Err(ServiceError::new(
                ErrorCode::JobNotReady,
                format!("Job is {status}; its outputs are available once it is SUCCESS"),
            )
            .with_data(serde_json::json!({ "status": status })));
        }
        details
            .outputs
            .into_iter()
            .find(|o| o.format == format)
            .ok_or_else(|| {
                ServiceError::not_found(&format!("The {format} output of this job"))
                    .with_data(serde_json::json!({ "format": format }))
            })
    }
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
