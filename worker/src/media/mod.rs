//! Everything libav: probing clips and rendering montages, in-process through ffmpeg-next.

pub mod analyze;
mod audio;
mod loudness;
mod open;
mod output;
mod poster;
pub mod probe;
pub mod render;
mod sequence;
mod video;

use std::sync::Once;

/// A clip or output the media code could not handle. `Invalid` is the client's problem
/// (the file is not usable video); `Internal` is ours.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("{0}")]
    Invalid(String),
    #[error("render failed: {0}")]
    Internal(String),
    /// The job was told to stop (cancelled or out of time) while rendering.
    #[error("stopped")]
    Stopped,
}

impl From<ffmpeg_next::Error> for MediaError {
    fn from(err: ffmpeg_next::Error) -> Self {
        Self::Internal(err.to_string())
    }
}

impl From<std::io::Error> for MediaError {
    fn from(err: std::io::Error) -> Self {
        Self::Internal(err.to_string())
    }
}

/// Initialises libav once per process and keeps its logging to errors only.
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        ffmpeg_next::init().expect("libav initialises");
        ffmpeg_next::log::set_level(ffmpeg_next::log::Level::Error);
    });
}
