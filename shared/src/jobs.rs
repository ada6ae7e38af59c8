//! Montage jobs: options that validate on parse, and the job lifecycle in PostgreSQL.

use chrono::Utc;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    auth::AuthUser,
    db::Db,
    error::{ErrorCode, ServiceError, ServiceResult},
    models::{JobInputRow, JobOutputRow, JobRow, NewJob},
    schema::{idempotency_keys, job_inputs, job_outputs, jobs},
};

pub const MIN_TARGET_DURATION: u32 = 10;
pub const DEFAULT_TARGET_DURATION: u32 = 60;
pub const MAX_PAGE_SIZE: i64 = 100;

/// Declares a string-backed enum with its wire names, `as_str`, `FromStr` and `ALL`.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $wire:tt),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        pub enum $name { $(#[serde(rename = $wire)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }

            /// The accepted names, for error messages.
            pub fn names() -> String {
                [$($wire),+].join(", ")
            }
        }

        impl std::str::FromStr for $name {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> {
                match s { $($wire => Ok($name::$variant),)+ _ => Err(()) }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use wire_enum;

wire_enum!(
    /// A montage style preset.
    Style { Cinematic => "cinematic", Gaming => "gaming", Energetic => "energetic", Chill => "chill" }
);
wire_enum!(
    /// An output layout.
    OutputFormat { Landscape => "landscape", Portrait => "portrait" }
);
wire_enum!(
    /// Where a job is in its life.
    JobStatus {
        Pending => "PENDING", Processing => "PROCESSING", Retrying => "RETRYING",
        Success => "SUCCESS", Failed => "FAILED", Cancelled => "CANCELLED",
    }
);
wire_enum!(
    /// What a job is doing now.
    Stage {
        Queued => "queued", Downloading => "downloading", Probing => "probing",
        Analyzing => "analyzing", Rendering => "rendering", Uploading => "uploading",
        Done => "done", Failed => "failed", Cancelled => "cancelled",
    }
);

wire_enum!(
    /// Why a job failed, as its owner reads it in `error.code`.
    FailureCode {
        InvalidMedia => "INVALID_MEDIA", ClipsTooShort => "CLIPS_TOO_SHORT",
        RenderFailed => "RENDER_FAILED", RenderTimeout => "RENDER_TIMEOUT",
        MediaCrashed => "MEDIA_CRASHED", InfrastructureError => "INFRASTRUCTURE_ERROR",
        WorkerLost => "WORKER_LOST",
    }
);

impl JobStatus {
    /// Whether the job has ended and will not change again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Success | Self::Failed | Self::Cancelled)
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

/// How long an idempotency key keeps returning the same job.
pub const IDEMPOTENCY_WINDOW_HOURS: i64 = 24;

impl OutputFormat {
    /// Width and height of the rendered video.
    pub fn dimensions(self) -> (u32, u32) {
        match self {
            Self::Landscape => (1920, 1080),
            Self::Portrait => (1080, 1920),
        }
    }
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
    pub fn admit(&self, plan: &crate::config::PlanConfig) -> ServiceResult<u64> {
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

/// Validated options of a new job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobOptions {
    pub target_duration: u32,
    pub style: Style,
    pub formats: Vec<OutputFormat>,
    pub hud_remove: bool,
    pub watermark: bool,
    /// Where to POST the signed "job ended" webhook, if anywhere.
    pub callback_url: Option<String>,
    /// How long the outputs are kept once the job ends (the plan's), `None` for good.
    pub output_retention: Option<std::time::Duration>,
}

impl JobOptions {
    /// Refuses a `callback_url` whose host is, or resolves to, an internal address.
    pub async fn check_callback(&self, allow_private: bool) -> ServiceResult<()> {
        let Some(url) = self.callback_url.as_deref().filter(|_| !allow_private) else {
            return Ok(());
        };
        let url = url::Url::parse(url).map_err(ServiceError::internal)?;
        crate::egress::check_url(&url).await.map_err(|why| {
            ServiceError::invalid_field("callback_url", format!("callback_url {why}"))
        })
    }
}

/// Collects the text fields of a job-creation form one at a time (they may arrive in any
/// order, between file parts) and validates each as it comes.
#[derive(Debug, Default)]
pub struct JobOptionsForm {
    target_duration: Option<u32>,
    style: Option<Style>,
    formats: Option<Vec<OutputFormat>>,
    hud_remove: Option<bool>,
    watermark: Option<bool>,
    callback_url: Option<String>,
}

pub const FORM_FIELDS: &[&str] = &[
    "files",
    "target_duration",
    "style",
    "formats",
    "hud_remove",
    "watermark",
    "callback_url",
];

impl JobOptionsForm {
    pub fn set(&mut self, field: &str, raw: &str) -> ServiceResult<()> {
        let value = raw.trim();
        match field {
            "target_duration" => set_once(&mut self.target_duration, field, parse_duration(value)?),
            "style" => {
                let style = value.to_lowercase().parse().map_err(|()| {
                    ServiceError::invalid_field(
                        field,
                        format!("Unknown style {value:?}; choose one of {}", Style::names()),
                    )
                })?;
                set_once(&mut self.style, field, style)
            }
            "formats" => set_once(&mut self.formats, field, parse_formats(value)?),
            "hud_remove" => set_once(&mut self.hud_remove, field, parse_bool(field, value)?),
            "watermark" => set_once(&mut self.watermark, field, parse_bool(field, value)?),
            "callback_url" => set_once(&mut self.callback_url, field, parse_callback_url(value)?),
            other => Err(ServiceError::invalid_field(
                other,
                format!(
                    "Unknown field {other:?}; accepted fields are {}",
                    FORM_FIELDS.join(", ")
                ),
            )),
        }
    }

    /// Applies defaults and the caller's plan limit.
    pub fn finish(self, max_duration: u32) -> ServiceResult<JobOptions> {
        let target_duration = self
            .target_duration
            .unwrap_or(DEFAULT_TARGET_DURATION.min(max_duration));
        if target_duration > max_duration {
            return Err(ServiceError::invalid_field(
                "target_duration",
                format!("target_duration must be between {MIN_TARGET_DURATION} and {max_duration} seconds on your plan"),
            )
            .with_data(serde_json::json!({
                "field": "target_duration", "min": MIN_TARGET_DURATION, "max": max_duration
            })));
        }
        Ok(JobOptions {
            target_duration,
            style: self.style.unwrap_or(Style::Cinematic),
            formats: self
                .formats
                .unwrap_or_else(|| vec![OutputFormat::Landscape]),
            hud_remove: self.hud_remove.unwrap_or(false),
            watermark: self.watermark.unwrap_or(false),
            callback_url: self.callback_url,
            output_retention: None,
        })
    }
}

/// An absolute http(s) URL without credentials, up to 2048 characters.
fn parse_callback_url(value: &str) -> ServiceResult<String> {
    let invalid =
        |why: &str| ServiceError::invalid_field("callback_url", format!("callback_url {why}"));
    if value.len() > 2048 {
        return Err(invalid("is longer than 2048 characters"));
    }
    let url = url::Url::parse(value).map_err(|e| invalid(&format!("is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid("must be an http or https URL with a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("must not carry credentials"));
    }
    Ok(url.into())
}

fn set_once<T>(slot: &mut Option<T>, field: &str, value: T) -> ServiceResult<()> {
    if slot.is_some() {
        return Err(ServiceError::invalid_field(
            field,
            format!("{field} was given more than once"),
        ));
    }
    *slot = Some(value);
    Ok(())
}

fn parse_duration(value: &str) -> ServiceResult<u32> {
    value
        .parse::<u32>()
        .ok()
        .filter(|d| *d >= MIN_TARGET_DURATION)
        .ok_or_else(|| {
            ServiceError::invalid_field(
                "target_duration",
                format!("target_duration must be a whole number of seconds, at least {MIN_TARGET_DURATION}"),
            )
        })
}

fn parse_formats(value: &str) -> ServiceResult<Vec<OutputFormat>> {
    let mut formats = Vec::new();
    for name in value.split(',').map(str::trim) {
        let format: OutputFormat = name.to_lowercase().parse().map_err(|()| {
            ServiceError::invalid_field(
                "formats",
                format!(
                    "Unknown format {name:?}; use a comma-separated list of {}",
                    OutputFormat::names()
                ),
            )
        })?;
        if !formats.contains(&format) {
            formats.push(format);
        }
    }
    Ok(formats)
}

fn parse_bool(field: &str, value: &str) -> ServiceResult<bool> {
    match value.to_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ServiceError::invalid_field(
            field,
            format!("{field} must be true or false"),
        )),
    }
}

/// An input clip already stored, waiting for its job row.
#[derive(Debug, Clone)]
pub struct StoredInput {
    pub storage_key: String,
    pub label: String,
    pub container: String,
    pub size_bytes: u64,
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

/// The storage key of a job's input clip.
pub fn input_key(job_id: Uuid, position: usize) -> String {
    format!("jobs/{job_id}/inputs/{position:02}")
}

/// The storage key of a job's rendered output: deterministic, so a re-run overwrites
/// rather than duplicates.
pub fn output_key(job_id: Uuid, format: OutputFormat) -> String {
    format!("jobs/{job_id}/outputs/{}.mp4", format.as_str())
}

/// The storage key of an output's poster image.
pub fn poster_key(job_id: Uuid, format: OutputFormat) -> String {
    format!("jobs/{job_id}/outputs/{}.jpg", format.as_str())
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
                            stage: Some(Stage::Queued.as_str().to_owned()),
                            target_duration: options.target_duration as i32,
                            style: options.style.as_str().to_owned(),
                            formats: options
                                .formats
                                .iter()
                                .map(|f| f.as_str().to_owned())
                                .collect(),
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
                    match job.status.parse::<JobStatus>() {
                        Ok(JobStatus::Pending | JobStatus::Retrying) => {
                            diesel::update(jobs::table.find(job_id))
                                .set((
                                    jobs::status.eq(JobStatus::Cancelled.as_str()),
                                    jobs::stage.eq(Stage::Cancelled.as_str()),
                                    jobs::error_code.eq(None::<String>),
                                    jobs::error_message.eq(None::<String>),
                                    jobs::cancel_requested_at.eq(now),
                                    jobs::finished_at.eq(now),
                                    jobs::updated_at.eq(now),
                                ))
                                .execute(conn)?;
                            Ok(Cancellation::Cancelled)
                        }
                        Ok(JobStatus::Processing) => {
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
        if !details
            .job
            .status
            .parse::<JobStatus>()
            .is_ok_and(JobStatus::is_final)
        {
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
                        JobStatus::Pending.as_str(),
                        JobStatus::Processing.as_str(),
                        JobStatus::Retrying.as_str(),
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
        let status = details.job.status.parse::<JobStatus>().map_err(|()| {
            ServiceError::internal(format!("unknown status {}", details.job.status))
        })?;
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
            .find(|o| o.format == format.as_str())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn form(fields: &[(&str, &str)]) -> ServiceResult<JobOptions> {
        let mut form = JobOptionsForm::default();
        for (field, value) in fields {
            form.set(field, value)?;
        }
        form.finish(60)
    }

    #[test]
    fn defaults_follow_the_contract() {
        let options = form(&[]).unwrap();
        assert_eq!(options.target_duration, 60);
        assert_eq!(options.style, Style::Cinematic);
        assert_eq!(options.formats, vec![OutputFormat::Landscape]);
        assert!(!options.hud_remove && !options.watermark);
    }

    #[test]
    fn fields_parse_leniently_but_strictly() {
        let options = form(&[
            ("target_duration", " 30 "),
            ("style", "Energetic"),
            ("formats", "portrait, landscape,portrait"),
            ("hud_remove", "yes"),
            ("watermark", "0"),
        ])
        .unwrap();
        assert_eq!(options.target_duration, 30);
        assert_eq!(options.style, Style::Energetic);
        assert_eq!(
            options.formats,
            vec![OutputFormat::Portrait, OutputFormat::Landscape]
        );
        assert!(options.hud_remove && !options.watermark);
    }

    #[test]
    fn bad_values_name_their_field() {
        for (field, value) in [
            ("target_duration", "9"),
            ("target_duration", "61"),
            ("target_duration", "abc"),
            ("style", "vaporwave"),
            ("formats", "square"),
            ("formats", ""),
            ("hud_remove", "maybe"),
            ("colour", "red"),
        ] {
            let err = form(&[(field, value)]).unwrap_err();
            assert_eq!(err.code, ErrorCode::ValidationError, "{field}={value}");
            assert_eq!(err.data.unwrap()["field"], field, "{field}={value}");
        }
        let err = form(&[("style", "chill"), ("style", "gaming")]).unwrap_err();
        assert!(err.message.contains("more than once"));
    }
}
