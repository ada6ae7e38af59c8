//! Reading jobs: a user's jobs, their outputs and their usage against the plan's quotas.
//! Changes of state are in [`crate::lifecycle`].

use chrono::Utc;
use diesel::{
    pg::{Pg, PgConnection},
    prelude::*,
    sql_types::{Bool, Nullable},
};
use uuid::Uuid;

use db::models::{JobOutputRow, JobRow};
use db::schema::{clips, direct_uploads, idempotency_keys, job_inputs, job_outputs, jobs, users};
use db::Db;
use domain::clips::ClipStatus;
use domain::error::{ErrorCode, ServiceError, ServiceResult};
use domain::identity::AuthUser;
use domain::jobs::{JobStatus, OutputFormat, IDEMPOTENCY_WINDOW_HOURS};

/// What a user has open and stored, against the plan's quotas.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// Jobs waiting or running.
    pub open_jobs: i64,
    /// Uploaded clips not yet purged, library clips, direct uploads under way (their
    /// declared size), and outputs not yet expired.
    pub stored_bytes: u64,
    /// Jobs ever created while the account's address is unverified (for its allowance);
    /// `None` once verified.
    pub unverified_jobs: Option<i64>,
}

impl Usage {
    /// Refuses a new job past the plan's quotas, or past `unverified_allowance` jobs while
    /// the account's address is unverified; otherwise the bytes it may still store.
    pub fn admit(
        &self,
        plan: &settings::PlanConfig,
        unverified_allowance: i64,
    ) -> ServiceResult<u64> {
        if self
            .unverified_jobs
            .is_some_and(|made| made >= unverified_allowance)
        {
            return Err(ServiceError::new(
                ErrorCode::EmailNotVerified,
                format!(
                    "Email not verified: confirm your address with the link we mailed to make more than {unverified_allowance} montages"
                ),
            )
            .with_data(serde_json::json!({ "allowance": unverified_allowance })));
        }
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
        let left = self.storage_left(plan);
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

    /// The bytes the plan lets this user store on top of what they have.
    pub fn storage_left(&self, plan: &settings::PlanConfig) -> u64 {
        plan.storage_bytes.saturating_sub(self.stored_bytes)
    }
}

/// A job with its outputs, as its owner sees it.
#[derive(Debug, Clone)]
pub struct JobDetails {
    pub job: JobRow,
    pub outputs: Vec<JobOutputRow>,
}

/// The jobs not yet ended, for operators (the metrics).
#[derive(Debug, Clone, Default)]
pub struct Census {
    /// Open jobs by status.
    pub open: Vec<(JobStatus, i64)>,
    /// Jobs due to start that no worker holds: the queue's depth.
    pub due: i64,
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

/// Whose jobs an operation may touch: the owner's own, or (for operators) anyone's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobScope {
    Owner(Uuid),
    Any,
}

impl JobScope {
    /// A filter on `jobs` for the rows in scope (every row for [`JobScope::Any`]).
    pub(crate) fn includes_owner_of(
        self,
    ) -> Box<dyn BoxableExpression<jobs::table, Pg, SqlType = Nullable<Bool>>> {
        let owner = match self {
            Self::Owner(owner) => Some(owner),
            Self::Any => None,
        };
        Box::new(
            jobs::user_id
                .nullable()
                .eq(owner)
                .or(owner.is_none().into_sql::<Bool>()),
        )
    }
}

impl From<AuthUser> for JobScope {
    fn from(user: AuthUser) -> Self {
        Self::Owner(user.id)
    }
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

    /// The storage keys (inputs, outputs, posters) of an ended job of `user`'s, so they can
    /// be removed before the job itself ([`JobService::discard`]). A job still pending or
    /// running is a conflict: cancel it first.
    pub async fn ended_job_keys(&self, user: AuthUser, job_id: Uuid) -> ServiceResult<Vec<String>> {
        let details = self.get(user, job_id).await?;
        if !details.job.status.is_final() {
            return Err(not_ended(details.job.status));
        }
        let mut keys: Vec<String> = self
            .db
            .run(move |conn| {
                // Library clips stay in the library.
                Ok(job_inputs::table
                    .filter(job_inputs::job_id.eq(job_id))
                    .filter(job_inputs::from_library.eq(false))
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

    /// A job in `scope`; for an owner, another user's job is "not found", exactly like a
    /// missing one.
    pub async fn get(&self, scope: impl Into<JobScope>, job_id: Uuid) -> ServiceResult<JobDetails> {
        let scope = scope.into();
        self.db
            .run(move |conn| {
                let job = jobs::table
                    .find(job_id)
                    .filter(scope.includes_owner_of())
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
        self.page(None, Some(user.id), limit, offset).await
    }

    /// Any user's jobs for operators, newest first: `per_page` from page `page` (from 1),
    /// with the status and owner given, if any.
    pub async fn all(
        &self,
        status: Option<JobStatus>,
        owner: Option<Uuid>,
        page: i64,
        per_page: i64,
    ) -> ServiceResult<JobPage> {
        self.page(status, owner, per_page, (page - 1) * per_page)
            .await
    }

    /// `limit` jobs from `offset`, newest first, with the status and owner given, and how
    /// many match.
    async fn page(
        &self,
        status: Option<JobStatus>,
        owner: Option<Uuid>,
        limit: i64,
        offset: i64,
    ) -> ServiceResult<JobPage> {
        let filtered = move || {
            let mut query = jobs::table.into_boxed();
            if let Some(status) = status {
                query = query.filter(jobs::status.eq(status));
            }
            if let Some(owner) = owner {
                query = query.filter(jobs::user_id.eq(owner));
            }
            query
        };
        self.db
            .run(move |conn| {
                let total = filtered().count().get_result(conn)?;
                let jobs = filtered()
                    .order((jobs::created_at.desc(), jobs::id.desc()))
                    .limit(limit)
                    .offset(offset)
                    .select(JobRow::as_select())
                    .load(conn)?;
                Ok(JobPage { jobs, total })
            })
            .await
    }

    /// What `user` has open and stored, for the plan's quotas.
    pub async fn usage(&self, user: AuthUser) -> ServiceResult<Usage> {
        use diesel::dsl::count_star;
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
                let stored_bytes = stored_bytes(conn, user.id)?;
                let verified_at: Option<chrono::DateTime<Utc>> = users::table
                    .find(user.id)
                    .select(users::email_verified_at)
                    .first(conn)
                    .optional()?
                    .ok_or_else(ServiceError::account_gone)?;
                // Counting every job a busy account made is only needed before it verifies.
                let unverified_jobs = match verified_at {
                    Some(_) => None,
                    None => Some(
                        jobs::table
                            .filter(jobs::user_id.eq(user.id))
                            .select(count_star())
                            .first(conn)?,
                    ),
                };
                Ok(Usage {
                    open_jobs,
                    stored_bytes,
                    unverified_jobs,
                })
            })
            .await
    }

    /// Counts the open jobs (through the index of active jobs: the ended ones, most of the
    /// table, are not read).
    pub async fn census(&self) -> ServiceResult<Census> {
        use diesel::dsl::{count_star, now};
        const OPEN: [JobStatus; 3] = [
            JobStatus::Pending,
            JobStatus::Processing,
            JobStatus::Retrying,
        ];
        self.db
            .run(|conn| {
                let open = jobs::table
                    .filter(jobs::status.eq_any(OPEN))
                    .group_by(jobs::status)
                    .select((jobs::status, count_star()))
                    .load(conn)?;
                let due = jobs::table
                    .filter(jobs::status.eq_any([JobStatus::Pending, JobStatus::Retrying]))
                    .filter(jobs::run_after.le(now))
                    .select(count_star())
                    .first(conn)?;
                Ok(Census { open, due })
            })
            .await
    }

    /// The stored output of a finished job, for download.
    pub async fn output(
        &self,
        scope: impl Into<JobScope>,
        job_id: Uuid,
        format: OutputFormat,
    ) -> ServiceResult<JobOutputRow> {
        let details = self.get(scope, job_id).await?;
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

/// The answer to deleting a job that is still waiting or running.
pub(crate) fn not_ended(status: JobStatus) -> ServiceError {
    ServiceError::conflict("Only ended jobs can be deleted; cancel it first")
        .with_data(serde_json::json!({ "status": status }))
}

/// The bytes `user` has stored: job inputs, library clips, direct uploads under way, outputs.
fn stored_bytes(conn: &mut PgConnection, user: Uuid) -> QueryResult<u64> {
    use diesel::{dsl::sql, sql_types::BigInt};
    // SUM of BIGINT is NUMERIC in PostgreSQL; cast it back.
    let total = |column: &str| sql::<Nullable<BigInt>>(&format!("SUM({column})::int8"));
    // A library clip counts once, as the clip, however many jobs use it.
    let inputs: Option<i64> = job_inputs::table
        .inner_join(jobs::table)
        .filter(jobs::user_id.eq(user))
        .filter(jobs::inputs_purged_at.is_null())
        .filter(job_inputs::from_library.eq(false))
        .select(total("job_inputs.size_bytes"))
        .first(conn)?;
    // A completed upload counts as its clip.
    let uploading: Option<i64> = direct_uploads::table
        .filter(direct_uploads::user_id.eq(user))
        .filter(direct_uploads::completed_at.is_null())
        .select(total("direct_uploads.size_bytes"))
        .first(conn)?;
    let library: Option<i64> = clips::table
        .filter(clips::user_id.eq(user))
        .filter(clips::status.ne(ClipStatus::Rejected))
        .select(total("clips.size_bytes"))
        .first(conn)?;
    let outputs: Option<i64> = job_outputs::table
        .inner_join(jobs::table)
        .filter(jobs::user_id.eq(user))
        .filter(jobs::outputs_expired_at.is_null())
        .select(total("job_outputs.size_bytes"))
        .first(conn)?;
    Ok([inputs, library, uploading, outputs]
        .into_iter()
        .map(|bytes| bytes.unwrap_or(0).max(0) as u64)
        .sum())
}
