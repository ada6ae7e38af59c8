//! Reading jobs: a user's jobs, their outputs and their usage against the plan's quotas.
//! Changes of state are in [`crate::lifecycle`].

use chrono::Utc;
use diesel::{
    pg::Pg,
    prelude::*,
    sql_types::{Bool, Nullable},
};
use uuid::Uuid;

use db::models::{JobOutputRow, JobRow};
use db::schema::{idempotency_keys, job_inputs, job_outputs, jobs};
use db::Db;
use domain::error::{ErrorCode, ServiceError, ServiceResult};
use domain::identity::AuthUser;
use domain::jobs::{music_key, JobStatus, OutputFormat, IDEMPOTENCY_WINDOW_HOURS};
use domain::music::Music;

use crate::admission::{usage_in, Usage};

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

    /// The storage keys (inputs, uploaded music, outputs, posters) of an ended job of `user`'s, so they can
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
        if details.job.music == Some(Music::Uploaded) {
            keys.push(music_key(job_id));
        }
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
        self.db.run(move |conn| usage_in(conn, user.id)).await
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
