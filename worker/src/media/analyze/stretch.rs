//! Cutting a clip's analysis into stretches at keyframes, so that several decoders share
//! one long clip and every core stays busy to the end. A stretch measures from a sampling
//! grid point a little after a keyframe (past any pictures shown before the keyframe) up to
//! where the next stretch measures from. It decodes from the last keyframe before its start
//! (the seek finds it), and the stretch before decodes on until a picture reaches that point.

use std::path::Path;

use ffmpeg_next::{ffi, format, media};

use super::meters::grid_at_or_after;
use crate::media::{open::open_input, MediaError};

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

    /// Puts `input` at the last keyframe of its stream `video` before this stretch starts.
    pub fn seek(&self, input: &mut format::context::Input, video: usize) -> Result<(), MediaError> {
        if self.from == 0.0 {
            return Ok(());
        }
        let stream = input.stream(video).expect("the caller's stream");
        let (origin, time_base) = origin_and_time_base(&stream);
        let target = origin + (self.from / time_base).round() as i64;
        // A presentation time on the stream's own clock: no keyframe after it qualifies.
        // SAFETY: a plain libavformat call on a context we own, with a stream index it has.
        let status = unsafe {
            ffi::avformat_seek_file(
                input.as_mut_ptr(),
                video as i32,
                i64::MIN,
                target,
                target,
                0,
            )
        };
        if status < 0 {
            return Err(MediaError::Internal(format!(
                "could not seek within the clip ({})",
                ffmpeg_next::Error::from(status)
            )));
        }
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
    let Some(stream) = input.streams().best(media::Type::Video) else {
        return Vec::new();
    };
    let (origin, time_base) = origin_and_time_base(&stream);
    // SAFETY: reads of the stream's own index, which lives as long as `input`.
    unsafe {
        let raw = stream.as_ptr().cast_mut();
        let count = ffi::avformat_index_get_entries_count(raw);
        (0..count)
            .filter_map(|i| ffi::avformat_index_get_entry(raw, i).as_ref())
            .filter(|entry| entry.flags() & ffi::AVINDEX_KEYFRAME != 0)
            .map(|entry| (entry.timestamp - origin) as f64 * time_base)
            .collect()
    }
}

/// Where the stream's clock starts, and its tick in seconds.
fn origin_and_time_base(stream: &ffmpeg_next::Stream) -> (i64, f64) {
    let origin = match stream.start_time() {
        ffi::AV_NOPTS_VALUE => 0,
        start => start,
    };
    (origin, f64::from(stream.time_base()))
}
