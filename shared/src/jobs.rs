//! Montage jobs: options that validate on parse, and the job lifecycle in PostgreSQL.

use std::{fmt, str::FromStr};

use chrono::Utc;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    auth::AuthUser,
    db::Db,
    error::{ErrorCode, ServiceError, ServiceResult},
    models::{JobInputRow, JobOutputRow, JobRow, NewJob},
    schema::{job_inputs, job_outputs, jobs},
};

pub const MIN_TARGET_DURATION: u32 = 10;
pub const DEFAULT_TARGET_DURATION: u32 = 60;
pub const MAX_PAGE_SIZE: i64 = 100;

/// Declares a string-backed enum with its wire names, `as_str`, `FromStr` and `ALL`.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
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

        impl FromStr for $name {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> {
                match s { $($wire => Ok($name::$variant),)+ _ => Err(()) }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

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
    JobStatus { Pending => "PENDING", Processing => "PROCESSING", Success => "SUCCESS", Failed => "FAILED" }
);
wire_enum!(
    /// What a job is doing now.
    Stage {
        Queued => "queued", Downloading => "downloading", Probing => "probing",
        Analyzing => "analyzing", Rendering => "rendering", Uploading => "uploading",
        Done => "done", Failed => "failed",
    }
);

impl OutputFormat {
    /// Width and height of the rendered video.
    pub fn dimensions(self) -> (u32, u32) {
        match self {
            Self::Landscape => (1920, 1080),
            Self::Portrait => (1080, 1920),
        }
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
}

pub const FORM_FIELDS: &[&str] = &[
    "files",
    "target_duration",
    "style",
    "formats",
    "hud_remove",
    "watermark",
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
        })
    }
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
    db: Db,
}

impl JobService {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Records a new PENDING job and its stored inputs in one transaction.
    pub async fn create(
        &self,
        user: AuthUser,
        job_id: Uuid,
        options: JobOptions,
        inputs: Vec<StoredInput>,
    ) -> ServiceResult<JobRow> {
        self.db
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
                    Ok(job)
                })
            })
            .await
    }

    /// Removes a job that never reached the queue.
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

    // ---- Worker side -------------------------------------------------------------

    /// Takes a job for processing. Returns `None` when the job is gone or already finished,
    /// so a redelivered queue entry is a no-op.
    pub async fn claim(&self, job_id: Uuid) -> ServiceResult<Option<(JobRow, Vec<JobInputRow>)>> {
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let now = Utc::now();
                    let job =
                        diesel::update(jobs::table.find(job_id).filter(jobs::status.eq_any([
                            JobStatus::Pending.as_str(),
                            JobStatus::Processing.as_str(),
                        ])))
                        .set((
                            jobs::status.eq(JobStatus::Processing.as_str()),
                            jobs::stage.eq(Stage::Downloading.as_str()),
                            jobs::progress.eq(0),
                            jobs::attempts.eq(jobs::attempts + 1),
                            jobs::started_at.eq(now),
                            jobs::updated_at.eq(now),
                        ))
                        .returning(JobRow::as_returning())
                        .get_result(conn)
                        .optional()?;
                    let Some(job) = job else { return Ok(None) };
                    let inputs = job_inputs::table
                        .filter(job_inputs::job_id.eq(job_id))
                        .order(job_inputs::position.asc())
                        .select(JobInputRow::as_select())
                        .load(conn)?;
                    Ok(Some((job, inputs)))
                })
            })
            .await
    }

    pub async fn set_progress(&self, job_id: Uuid, stage: Stage, percent: u8) -> ServiceResult<()> {
        self.db
            .run(move |conn| {
                diesel::update(
                    jobs::table
                        .find(job_id)
                        .filter(jobs::status.eq(JobStatus::Processing.as_str())),
                )
                .set((
                    jobs::stage.eq(stage.as_str()),
                    jobs::progress.eq(i16::from(percent.min(100))),
                    jobs::updated_at.eq(Utc::now()),
                ))
                .execute(conn)?;
                Ok(())
            })
            .await
    }

    /// Records the outputs and marks the job SUCCESS, atomically.
    pub async fn succeed(&self, job_id: Uuid, outputs: Vec<JobOutputRow>) -> ServiceResult<()> {
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
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
                    let now = Utc::now();
                    diesel::update(jobs::table.find(job_id))
                        .set((
                            jobs::status.eq(JobStatus::Success.as_str()),
                            jobs::stage.eq(Stage::Done.as_str()),
                            jobs::progress.eq(100),
                            jobs::finished_at.eq(now),
                            jobs::updated_at.eq(now),
                        ))
                        .execute(conn)?;
                    Ok(())
                })
            })
            .await
    }

    pub async fn fail(&self, job_id: Uuid, code: &str, message: &str) -> ServiceResult<()> {
        let (code, message) = (code.to_owned(), message.to_owned());
        self.db
            .run(move |conn| {
                let now = Utc::now();
                diesel::update(jobs::table.find(job_id))
                    .set((
                        jobs::status.eq(JobStatus::Failed.as_str()),
                        jobs::stage.eq(Stage::Failed.as_str()),
                        jobs::error_code.eq(code),
                        jobs::error_message.eq(message),
                        jobs::finished_at.eq(now),
                        jobs::updated_at.eq(now),
                    ))
                    .execute(conn)?;
                Ok(())
            })
            .await
    }
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
