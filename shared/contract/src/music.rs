//! `/api/v2/music`: the catalogue of tracks a montage can be cut to.

use domain::music::{Mood, TrackId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One track of the catalogue.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TrackView {
    /// The job's `music_id`.
    #[schema(value_type = String, example = "energetic_electronic_2")]
    pub id: TrackId,
    pub title: String,
    pub artist: String,
    /// The licence the track is used under (every catalogue track may be redistributed).
    pub licence: String,
    pub mood: Mood,
    /// The tempo the track was made at, as its source lists it.
    pub bpm: Option<u16>,
    pub duration_seconds: f64,
    /// The track itself (Ogg Opus), to listen to before choosing it.
    pub preview_url: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MusicList {
    /// By mood, then id. Empty when this deployment ships no music.
    pub tracks: Vec<TrackView>,
}
