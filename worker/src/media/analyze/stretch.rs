//! Cutting a clip's analysis into stretches at keyframes, so that several decoders share
//! one long clip and every core stays busy to the end. A stretch measures from a sampling
//! grid point a little after a keyframe (past any pictures shown before the keyframe) up to
//! where the next stretch measures from. It decodes from the last keyframe before its start
//! (the seek finds it), and the stretch before decodes on until a picture reaches that point.

use std::path::Path;

use ffmpeg_next::{ffi, format};

use super::grid::grid_at_or_after;
use crate::media::{
    open::open_input,
    reader::{seek_to, video_origin},
    MediaError,
};

/// No stretch is shorter than this: each one opens the clip and a decoder again.
const SHORTEST_SECONDS: f64 = 2.0;
/// How far past its keyframe a stretch starts measuring. The index gives the keyframe's
/// decoding time; pictures shown before it (reordered B-frames, open-GOP leading pictures)
/// belong to the stretch before, and sit within this margin.
const REORDER_MARGIN_SECONDS: f64 = 0.25;

/// One stretch of a clip to measure.
#[derive(Debug, Clone, PartialEq)]
pub struct Stretch {
    /// Seconds into the clip: pictures are measured from here...
    pub from: f64,
    /// ...to before here (none: to the end).
    pub until: Option<f64>,
}

impl Stretch {
    pub const WHOLE: Self = Self {
        from: 0.0,
        until: None,
    };

    /// The first stretch measures the whole clip's sound (cheap next to the pictures).
    pub fn measures_sound(&self) -> bool {
        self.from == 0.0
    }

    pub fn seconds(&self, duration: f64) -> f64 {
        (self.until.unwrap_or(duration) - self.from).max(0.0)
    }

    /// Puts `input` at the last keyframe before this stretch starts (a failed seek leaves
    /// it at the start: the frames before the stretch are decoded and not measured).
    pub fn seek(&self, input: &mut format::context::Input) -> Result<(), MediaError> {
        let (_, _, origin) = video_origin(input)?;
        seek_to(input, origin, self.from);
        Ok(())
    }
}

/// Cuts a clip of `duration` seconds into up to `pieces` stretches of about equal length,
/// at keyframes its container's index lists. A clip without an index (or too short to
/// cut) is one stretch.
pub fn stretches(path: &Path, duration: f64, pieces: usize) -> Vec<Stretch> {
    let keyframes = if pieces > 1 {
        keyframes(path)
    } else {
        Vec::new()
    };
    let mut cut = Vec::with_capacity(pieces);
    let mut current = Stretch::WHOLE;
    for piece in 1..pieces {
        let ideal = duration * piece as f64 / pieces as f64;
        let nearest = keyframes
            .iter()
            .filter(|&&at| {
                at >= current.from + SHORTEST_SECONDS && at <= duration - SHORTEST_SECONDS
            })
            .min_by(|a, b| (*a - ideal).abs().total_cmp(&(*b - ideal).abs()));
        let Some(&at) = nearest else {
            continue;
        };
        let boundary = grid_at_or_after(at + REORDER_MARGIN_SECONDS);
        current.until = Some(boundary);
        cut.push(std::mem::replace(
            &mut current,
            Stretch {
                from: boundary,
                until: None,
            },
        ));
    }
    cut.push(current);
    cut
}

/// When the video keyframes the container's index lists are decoded, in seconds into
/// the clip.
fn keyframes(path: &Path) -> Vec<f64> {
    let Ok(input) = open_input(path) else {
        return Vec::new();
    };
    let Ok((index, time_base, origin)) = video_origin(&input) else {
        return Vec::new();
    };
    let stream = input.stream(index).expect("index from the same input");
    // SAFETY: reads of the stream's own index, which lives as long as `input`.
    unsafe {
        let raw = stream.as_ptr().cast_mut();
        let count = ffi::avformat_index_get_entries_count(raw);
        (0..count)
            .filter_map(|i| ffi::avformat_index_get_entry(raw, i).as_ref())
            .filter(|entry| entry.flags() & ffi::AVINDEX_KEYFRAME != 0)
            .map(|entry| entry.timestamp as f64 * time_base - origin)
            .collect()
    }
}
