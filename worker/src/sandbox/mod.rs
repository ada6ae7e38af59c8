//! A job's media work (probe, analysis, audio pass, render) runs in a process of its own.
//! libav parsing hostile files is the riskiest code we run, so each job gets a fresh address
//! space with memory and CPU caps, and a stop is a SIGKILL that works in every stage. A crash
//! fails that one job; the worker carries on.
//!
//! The processes are forked by a fork server, the worker binary in media mode
//! ([`fork_server`]), so that a job does not pay for loading libav. The media process gets its
//! [`MediaRequest`] in the fork and answers with [`MediaMessage`] JSON lines on stdout
//! (progress, then one outcome). Logs go to stderr.

mod child;
mod fork_server;
mod parent;

use std::path::PathBuf;

use domain::facecam::Facecam;
use domain::jobs::{FailureCode, FrameRate, OutputFormat, Stage, Style};
use domain::timings::StageTimings;
use serde::{Deserialize, Serialize};
use settings::ClipLimits;
use uuid::Uuid;

use crate::media::analyze::ClipMeasurements;
use crate::media::render::{Caption, EncoderSettings, RenderedOutput, Watermark};

pub use fork_server::run_media_mode;
pub use parent::{MediaSandbox, SandboxError, SandboxLimits};

/// The argument that starts the worker binary in media mode, as the fork server.
pub const MEDIA_MODE_ARG: &str = "media";

/// One clip, already downloaded to the scratch directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClipInput {
    pub path: PathBuf,
    /// The sanitised upload name, used in messages to the owner.
    pub label: String,
    /// A file holding the library's stored analysis of this clip: it is not analysed again.
    pub analysis: Option<PathBuf>,
    /// Where to write a thumbnail of the clip (a library clip not examined yet).
    pub thumbnail: Option<PathBuf>,
    /// Where the streamer's camera sits in this clip, as its library row keeps it.
    pub facecam: Option<Facecam>,
}

/// What the media process found out about one clip, for the library.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClipReport {
    pub duration_seconds: f64,
    pub width: u32,
    pub height: u32,
    pub has_audio: bool,
    /// Present when this run analysed the clip (it had no stored analysis).
    pub analysis: Option<ClipMeasurements>,
}

/// Everything the media process needs for one job. With no `formats` it only examines
/// the clips (probe, analysis, thumbnails): a library clip's examination.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MediaRequest {
    pub job_id: Uuid,
    pub clips: Vec<ClipInput>,
    pub scratch: PathBuf,
    pub style: Style,
    pub target_duration: u32,
    pub formats: Vec<OutputFormat>,
    pub hud_remove: bool,
    /// A track to lay under the montage, cut on its beats.
    pub music: Option<PathBuf>,
    /// The montage's title, drawn over its first seconds.
    pub title: Option<Caption>,
    /// Where the streamer's camera sits in clips that do not say: portrait outputs are split.
    pub facecam: Option<Facecam>,
    /// The outputs' frame rate; `None`: as most of the footage is.
    pub fps: Option<FrameRate>,
    pub watermark: Option<Watermark>,
    pub encoder: EncoderSettings,
    pub limits: ClipLimits,
}

/// What a successful media process made: files in the scratch directory, and its stage
/// times (analysis, audio and video; the parent counts the rest of its life as probe).
#[derive(Debug, Serialize, Deserialize)]
pub struct MediaDone {
    pub outputs: Vec<RenderedOutput>,
    /// One per clip, in the request's order.
    pub clips: Vec<ClipReport>,
    pub timings: StageTimings,
}

/// One line from the media process.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaMessage {
    Progress { stage: Stage, percent: u8 },
    Done(MediaDone),
    Failed { code: FailureCode, message: String },
}
