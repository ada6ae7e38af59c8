//! `/api/v2/jobs`: what a job looks like from outside.

use chrono::{DateTime, Utc};
use domain::facecam::Facecam;
use domain::jobs::FrameRate;
use domain::jobs::{FailureCode, JobStatus, OutputFormat, Stage, Style};
use domain::music::TrackId;
use domain::timings::StageTimings;
use domain::title::Title;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobCreated {
    pub job_id: Uuid,
    pub status: JobStatus,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Progress {
    pub percent: u8,
    pub stage: Option<Stage>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobFailure {
    pub code: FailureCode,
    pub message: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobOutputView {
    pub format: OutputFormat,
    pub width: i32,
    pub height: i32,
    /// Seconds.
    pub duration: f64,
    /// Bytes.
    pub size: i64,
    /// Relative URL that redirects to a short-lived download link.
    pub download_url: String,
    /// Relative URL that redirects to a short-lived link to the poster (JPEG).
    pub poster_url: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobOptionsView {
    pub target_duration: i32,
    pub style: Style,
    pub formats: Vec<OutputFormat>,
    pub hud_remove: bool,
    pub watermark: bool,
    /// The catalogue track under the montage, if any.
    #[schema(value_type = Option<String>)]
    pub music_id: Option<TrackId>,
    /// The player sent their own track (the form's `music` file).
    pub music_uploaded: bool,
    /// Where the streamer's camera sits, if given: the portrait cut is split under it.
    pub facecam: Option<Facecam>,
    /// The frame rate chosen (30 or 60); none: as most of the footage is (60 when most of
    /// it is 50 fps or more). The outputs' own rate shows in each output's file.
    pub fps: Option<FrameRate>,
    /// Drawn over the first seconds, if given.
    #[schema(value_type = Option<String>)]
    pub title: Option<Title>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobView {
    pub job_id: Uuid,
    pub status: JobStatus,
    pub stage: Option<Stage>,
    pub progress: Progress,
    pub options: JobOptionsView,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// Present when the job FAILED.
    pub error: Option<JobFailure>,
    /// Present when the job succeeded (and its outputs have not expired).
    pub outputs: Vec<JobOutputView>,
    /// When the outputs will be deleted, on plans that keep them for a limited time.
    pub outputs_expire_at: Option<DateTime<Utc>>,
    /// The outputs were deleted at the end of the plan's retention (downloads answer 410).
    pub outputs_expired: bool,
    /// Where the successful attempt's time went, seconds per stage (present on SUCCESS).
    pub timings: Option<StageTimings>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobSummary {
    pub job_id: Uuid,
    pub status: JobStatus,
    pub stage: Option<Stage>,
    pub progress: Progress,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub style: Style,
    /// Seconds asked for.
    pub target_duration: i32,
    #[schema(value_type = Option<String>)]
    pub title: Option<Title>,
    /// The poster of its first format, once it succeeded and while its outputs are kept
    /// (a link like `outputs[].poster_url`).
    pub poster_url: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobList {
    pub jobs: Vec<JobSummary>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}
