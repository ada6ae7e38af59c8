//! Highlight analysis: how loud and how busy each half-second of a clip is. Video is
//! sampled at a reduced rate and size (the decoder still decodes every reference frame, but
//! skips its loop filter and non-reference frames); audio is measured at 8 kHz mono. Long
//! clips are cut into stretches at keyframes ([`stretch`]) that are measured side by side
//! and joined; the result is the same as one pass over the clip.

mod grid;
mod meters;
pub mod stretch;

use std::path::Path;

use domain::clips::ANALYSIS_VERSION;
use settings::ClipLimits;

use self::{
    grid::SAMPLES_PER_SECOND,
    meters::{check_frame_rate, loudness, measure_stretch, Piece},
    stretch::{stretches, Stretch},
};
use super::{in_parallel, poster::write_thumbnail, MediaError};
use planning::montage::ANALYSIS_WINDOW_SECONDS;

/// Motion and static regions are measured on frames this small.
pub const THUMB_WIDTH: u32 = 160;
pub const THUMB_HEIGHT: u32 = 90;
/// Loudness of a window with no sound at all.
pub const SILENCE_DB: f64 = -90.0;

/// Per-window measurements of one clip. Serialised for the library, which keeps each
/// clip's analysis for every later job ([`ClipMeasurements::stored`]).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ClipMeasurements {
    /// How long the decoded picture actually runs, whatever the header said.
    pub duration_seconds: f64,
    /// RMS level in dBFS per window.
    pub loudness_db: Vec<f64>,
    /// Mean absolute luma change between sampled thumbnails, 0-255, per window.
    pub motion: Vec<f64>,
    /// Mean change of each thumbnail pixel over the whole clip (row-major,
    /// [`THUMB_WIDTH`] x [`THUMB_HEIGHT`]), for HUD detection.
    #[serde(with = "packed_floats")]
    pub change_map: Vec<f32>,
}

impl ClipMeasurements {
    /// The form the library stores.
    pub fn stored(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).expect("measurements serialise");
        value["version"] = ANALYSIS_VERSION.into();
        value
    }

    /// A stored analysis, if it is of this version and well-formed.
    pub fn from_stored(value: &serde_json::Value) -> Option<Self> {
        if value.get("version")?.as_u64()? != u64::from(ANALYSIS_VERSION) {
            return None;
        }
        let measurements: Self = serde_json::from_value(value.clone()).ok()?;
        let cells = (THUMB_WIDTH * THUMB_HEIGHT) as usize;
        let windows = measurements.motion.len();
        (measurements.change_map.len() == cells
            && windows > 0
            && measurements.loudness_db.len() == windows)
            .then_some(measurements)
    }
}

/// 14,400 floats as base64 of their little-endian bytes: a fifth of their JSON text.
mod packed_floats {
    use base64::{engine::general_purpose::STANDARD, Engine as _};
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(values: &[f32], serializer: S) -> Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<f32>, D::Error> {
        let text = String::deserialize(deserializer)?;
        let bytes = STANDARD.decode(text).map_err(D::Error::custom)?;
        if bytes.len() % 4 != 0 {
            return Err(D::Error::custom("not a whole number of floats"));
        }
        Ok(bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }
}

/// A thumbnail to take while analysing: the picture shown `at` seconds in (or the last one
/// sampled, if the clip ends sooner), turned upright.
pub struct Still<'a> {
    pub at: f64,
    pub rotation: u32,
    pub path: &'a Path,
}

/// One clip to analyse, as probed.
pub struct ClipToAnalyse<'a> {
    pub path: &'a Path,
    pub duration_seconds: f64,
    /// What decoding it all takes, in any unit common to the clips (pixels times seconds).
    pub cost: f64,
    pub still: Option<Still<'a>>,
}

/// Analyses one clip in one pass.
pub fn analyze(
    path: &Path,
    limits: &ClipLimits,
    still: Option<Still<'_>>,
) -> Result<ClipMeasurements, MediaError> {
    let still_at = still.as_ref().map(|s| s.at);
    let piece = measure_stretch(path, limits, &Stretch::WHOLE, still_at, 0)?;
    join(vec![piece], limits, still)
}

/// Analyses the clips side by side, on every core. Each clip is cut into stretches so that
/// the work comes in pieces of at most a quarter of each core's share; the biggest pieces
/// go first, so the last to finish are small. Returns each clip's result in order.
pub fn analyze_all(
    clips: Vec<ClipToAnalyse<'_>>,
    limits: &ClipLimits,
) -> Result<Vec<Result<ClipMeasurements, MediaError>>, MediaError> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let total: f64 = clips.iter().map(|c| c.cost).sum();
    let largest_piece = total / (4 * cores) as f64;
    let cut: Vec<Vec<Stretch>> = clips
        .iter()
        .map(|clip| {
            let pieces = (clip.cost / largest_piece).ceil().clamp(1.0, 16.0) as usize;
            stretches(clip.path, clip.duration_seconds, pieces)
        })
        .collect();
    let work: Vec<(usize, &Stretch, f64)> = clips
        .iter()
        .zip(&cut)
        .enumerate()
        .flat_map(|(index, (clip, stretches))| {
            stretches.iter().map(move |stretch| {
                let share = stretch.seconds(clip.duration_seconds) / clip.duration_seconds;
                (index, stretch, clip.cost * share)
            })
        })
        .collect();
    let mut order: Vec<usize> = (0..work.len()).collect();
    order.sort_by(|&a, &b| work[b].2.total_cmp(&work[a].2));
    // With a piece for every core, single-threaded decoders waste nothing on handing
    // frames between threads; a lone piece gets a frame-threaded one.
    let threads = if work.len() >= cores { 1 } else { 0 };
    let mut pieces = in_parallel("analysis", &order, |i| {
        let (index, stretch, _) = work[i];
        let still_at = clips[index].still.as_ref().map(|s| s.at);
        measure_stretch(clips[index].path, limits, stretch, still_at, threads)
    })?
    .into_iter();
    Ok(clips
        .into_iter()
        .zip(&cut)
        .map(|(clip, stretches)| {
            // All of this clip's pieces are taken before any error ends the collecting.
            let measured: Vec<Result<Piece, MediaError>> =
                pieces.by_ref().take(stretches.len()).collect();
            join(
                measured.into_iter().collect::<Result<_, _>>()?,
                limits,
                clip.still,
            )
        })
        .collect())
}

/// Joins a clip's stretches, in order, into its measurements (and writes its still).
fn join(
    pieces: Vec<Piece>,
    limits: &ClipLimits,
    still: Option<Still<'_>>,
) -> Result<ClipMeasurements, MediaError> {
    let piece = pieces
        .into_iter()
        .reduce(|mut joined, next| {
            joined.append(next);
            joined
        })
        .ok_or_else(|| MediaError::Internal("a clip was cut into no stretches".into()))?;
    check_frame_rate(limits, piece.frames, piece.video_end)?;
    let duration_seconds = if piece.frames == 0 {
        0.0
    } else {
        piece.video_end + 1.0 / SAMPLES_PER_SECOND
    };
    let windows = ((duration_seconds / ANALYSIS_WINDOW_SECONDS).ceil() as usize).max(1);
    if let (Some(still), Some((picture, _))) = (still, &piece.still) {
        write_thumbnail(picture, still.rotation, still.path)?;
    }
    let samples = piece.change_count.max(1) as f32;
    Ok(ClipMeasurements {
        duration_seconds,
        loudness_db: match piece.sound {
            Some((energy, samples)) => loudness(energy, samples, windows),
            None => vec![SILENCE_DB; windows],
        },
        motion: piece
            .motion_sum
            .finish(windows)
            .iter()
            .zip(piece.motion_count.finish(windows))
            .map(|(&sum, n)| if n == 0 { 0.0 } else { sum / f64::from(n) })
            .collect(),
        change_map: piece
            .change_sum
            .iter()
            .map(|&sum| sum as f32 / samples)
            .collect(),
    })
}
