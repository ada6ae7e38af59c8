//! Montage jobs: their states, kinds and options, which validate on parse.

use uuid::Uuid;

use crate::error::{ServiceError, ServiceResult};
use crate::facecam::Facecam;
use crate::music::{Music, TrackId};
use crate::title::Title;
use crate::wire::wire_enum;

pub const MIN_TARGET_DURATION: u32 = 10;
pub const DEFAULT_TARGET_DURATION: u32 = 60;
/// Most items one page of a listing holds (jobs, and the admin's accounts and jobs).
pub const MAX_PAGE_SIZE: i64 = 100;

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

/// An output frame rate: every output is constant frame rate. Written as the number (30,
/// 60) in forms, JSON and the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[cfg_attr(
    feature = "diesel",
    derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow),
    diesel(sql_type = diesel::sql_types::SmallInt)
)]
#[serde(try_from = "u32", into = "u32")]
pub enum FrameRate {
    Thirty,
    Sixty,
}

impl FrameRate {
    /// Frames per second.
    pub const fn fps(self) -> u32 {
        match self {
            Self::Thirty => 30,
            Self::Sixty => 60,
        }
    }

    /// The rate a montage of footage shot at these rates (frames per second, each with its
    /// length in seconds) plays at without asking: 60 when most of the footage is 50 fps or
    /// more, else 30.
    pub fn for_footage(clips: impl IntoIterator<Item = (f64, f64)>) -> Self {
        let (mut fast, mut all) = (0.0, 0.0);
        for (fps, seconds) in clips {
            all += seconds;
            if fps >= 50.0 {
                fast += seconds;
            }
        }
        if all > 0.0 && fast * 2.0 > all {
            Self::Sixty
        } else {
            Self::Thirty
        }
    }

    pub fn parse_field(field: &str, raw: &str) -> ServiceResult<Self> {
        raw.trim()
            .parse::<u32>()
            .ok()
            .and_then(|fps| Self::try_from(fps).ok())
            .ok_or_else(|| ServiceError::invalid_field(field, format!("{field} must be 30 or 60")))
    }
}

/// In the document: the integer 30 or 60.
impl utoipa::PartialSchema for FrameRate {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Integer)
            .enum_values(Some([30, 60]))
            .description(Some("Frames per second"))
            .into()
    }
}

impl utoipa::ToSchema for FrameRate {}

impl TryFrom<u32> for FrameRate {
    type Error = String;

    fn try_from(fps: u32) -> Result<Self, String> {
        match fps {
            30 => Ok(Self::Thirty),
            60 => Ok(Self::Sixty),
            other => Err(format!("{other} is not a frame rate (30 or 60)")),
        }
    }
}

impl From<FrameRate> for u32 {
    fn from(rate: FrameRate) -> u32 {
        rate.fps()
    }
}

#[cfg(feature = "diesel")]
impl diesel::serialize::ToSql<diesel::sql_types::SmallInt, diesel::pg::Pg> for FrameRate {
    fn to_sql<'b>(
        &'b self,
        out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
    ) -> diesel::serialize::Result {
        use std::io::Write;
        out.write_all(&(self.fps() as i16).to_be_bytes())?;
        Ok(diesel::serialize::IsNull::No)
    }
}

#[cfg(feature = "diesel")]
impl diesel::deserialize::FromSql<diesel::sql_types::SmallInt, diesel::pg::Pg> for FrameRate {
    fn from_sql(value: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
        let fps = <i16 as diesel::deserialize::FromSql<
            diesel::sql_types::SmallInt,
            diesel::pg::Pg,
        >>::from_sql(value)?;
        Ok(Self::try_from(u32::try_from(fps)?)?)
    }
}

impl JobStatus {
    /// Whether the job has ended and will not change again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Success | Self::Failed | Self::Cancelled)
    }
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

/// Validated options of a new job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobOptions {
    pub target_duration: u32,
    pub style: Style,
    pub formats: Vec<OutputFormat>,
    pub hud_remove: bool,
    pub watermark: bool,
    /// A track to lay under the montage, cut on its beats.
    pub music: Option<Music>,
    /// Where the streamer's camera sits: the portrait cut puts it in its top third.
    pub facecam: Option<Facecam>,
    /// The outputs' frame rate; `None`: as the footage asks ([`FrameRate::for_footage`]).
    pub fps: Option<FrameRate>,
    /// Drawn over the first seconds in the style's typography.
    pub title: Option<Title>,
    /// Where to POST the signed "job ended" webhook, if anywhere.
    pub callback_url: Option<String>,
    /// How long the outputs are kept once the job ends (the plan's), `None` for good.
    pub output_retention: Option<std::time::Duration>,
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
    music: Option<TrackId>,
    facecam: Option<Facecam>,
    fps: Option<FrameRate>,
    title: Option<Title>,
    callback_url: Option<String>,
}

pub const FORM_FIELDS: &[&str] = &[
    "files",
    "target_duration",
    "style",
    "formats",
    "hud_remove",
    "watermark",
    "music_id",
    "music",
    "facecam",
    "fps",
    "title",
    "callback_url",
    "clip_ids",
    "save_to_library",
];

impl JobOptionsForm {
    pub fn set(&mut self, field: &str, raw: &str) -> ServiceResult<()> {
        let value = raw.trim();
        match field {
            "target_duration" => set_once(&mut self.target_duration, field, parse_duration(value)?),
            "style" => set_once(&mut self.style, field, Style::parse_field(field, value)?),
            "formats" => add_formats(self.formats.get_or_insert_with(Vec::new), value),
            "hud_remove" => set_once(&mut self.hud_remove, field, parse_bool(field, value)?),
            "watermark" => set_once(&mut self.watermark, field, parse_bool(field, value)?),
            "music_id" => set_once(&mut self.music, field, TrackId::parse(field, value)?),
            "facecam" => set_once(&mut self.facecam, field, Facecam::parse(field, value)?),
            "fps" => set_once(&mut self.fps, field, FrameRate::parse_field(field, value)?),
            "title" => set_once(&mut self.title, field, Title::parse(field, raw)?),
            "callback_url" => set_once(&mut self.callback_url, field, parse_callback_url(value)?),
            other => Err(unknown_field(other)),
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
            music: self.music.map(Music::Track),
            facecam: self.facecam,
            fps: self.fps,
            title: self.title,
            callback_url: self.callback_url,
            output_retention: None,
        })
    }
}

/// The refusal of a field the job form does not have.
pub fn unknown_field(name: &str) -> ServiceError {
    ServiceError::invalid_field(
        name,
        format!(
            "Unknown field {name:?}; accepted fields are {}",
            FORM_FIELDS.join(", ")
        ),
    )
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

/// `formats` may repeat (an array in the form) and each may be a comma-separated list;
/// a format named twice counts once.
fn add_formats(formats: &mut Vec<OutputFormat>, value: &str) -> ServiceResult<()> {
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
    Ok(())
}

/// A form's boolean: true/false, 1/0, yes/no or on/off.
pub fn parse_bool(field: &str, value: &str) -> ServiceResult<bool> {
    match value.trim().to_lowercase().as_str() {
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
    pub library: Library,
}

/// Whether a job's input is a library clip: one already there, or one the upload adds.
/// A library clip's object stays when the job's inputs are purged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Library {
    Outside,
    Existing(Uuid),
    /// Stored under the clip's key; its library row is written with the job.
    Added(Uuid),
}

impl Library {
    pub fn clip_id(self) -> Option<Uuid> {
        match self {
            Self::Outside => None,
            Self::Existing(id) | Self::Added(id) => Some(id),
        }
    }
}

/// The storage prefix every object of a job is under.
pub fn job_prefix(job_id: Uuid) -> String {
    format!("jobs/{job_id}/")
}

/// The storage key of the track a job's form uploaded (`music`).
pub fn music_key(job_id: Uuid) -> String {
    format!("jobs/{job_id}/music")
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

/// Where the styles' samples are kept. The version part changes when the styles' look does,
/// so that workers render them again and no stale sample is shown.
pub const STYLE_SAMPLES_PREFIX: &str = "samples/v1/";

/// The storage key of the service's own short sample of `style`.
pub fn style_sample_key(style: Style) -> String {
    format!("{STYLE_SAMPLES_PREFIX}{}.mp4", style.as_str())
}

/// The storage key of an output's poster image.
pub fn poster_key(job_id: Uuid, format: OutputFormat) -> String {
    format!("jobs/{job_id}/outputs/{}.jpg", format.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn form(fields: &[(&str, &str)]) -> ServiceResult<JobOptions> {
        let mut form = JobOptionsForm::default();
        for (field, value) in fields {
            form.set(field, value)?;
        }
        form.finish(60)
    }

    #[test]
    fn the_frame_rate_is_30_or_60_and_follows_most_of_the_footage() {
        assert_eq!(form(&[("fps", "60")]).unwrap().fps, Some(FrameRate::Sixty));
        assert_eq!(form(&[]).unwrap().fps, None);
        for bad in ["24", "60.0", "sixty", ""] {
            assert!(form(&[("fps", bad)]).is_err(), "{bad:?}");
        }
        assert_eq!(
            FrameRate::for_footage([(59.94, 30.0), (30.0, 20.0)]),
            FrameRate::Sixty
        );
        assert_eq!(
            FrameRate::for_footage([(60.0, 20.0), (30.0, 20.0)]),
            FrameRate::Thirty
        );
        assert_eq!(FrameRate::for_footage([(50.0, 1.0)]), FrameRate::Sixty);
        assert_eq!(FrameRate::for_footage([]), FrameRate::Thirty);
        assert_eq!(serde_json::to_string(&FrameRate::Sixty).unwrap(), "60");
        assert!(serde_json::from_str::<FrameRate>("25").is_err());
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
    fn formats_may_repeat_as_an_array() {
        let options = form(&[("formats", "portrait"), ("formats", "landscape")]).unwrap();
        assert_eq!(
            options.formats,
            vec![OutputFormat::Portrait, OutputFormat::Landscape]
        );
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
