//! Joins rendered segments into the montage: dissolves, flashes and cuts between segments,
//! fades at the ends, and click-free audio joins. Frames and samples arrive in playing
//! order; what leaves here goes straight to the encoders.

use std::f32::consts::FRAC_PI_2;

use ffmpeg_next::util::frame;
use planning::montage::{samples_per_frame, FrameRate, Plan, SAMPLE_RATE};
use planning::styles::{StylePreset, Transition};

use super::{
    video::{make_writable, planes},
    MediaError,
};

/// Length of the fade on each side of a hard cut, so the sound does not click.
const CUT_FADE_SAMPLES: usize = (SAMPLE_RATE / 200) as usize;

const WHITE: [u8; 3] = [235, 128, 128];
const BLACK: [u8; 3] = [16, 128, 128];

/// Frame counts of the joins, shared by picture and sound.
#[derive(Debug, Clone, Copy)]
struct Joins {
    overlap: u32,
    flash: u32,
    fade: u32,
    segments: usize,
    total: u64,
    rate: FrameRate,
}

impl Joins {
    fn new(plan: &Plan, style: &StylePreset) -> Self {
        let frames = |seconds: f64| (seconds * f64::from(plan.fps())).round() as u32;
        let flash = match style.transition {
            Transition::Flash { seconds } => frames(seconds),
            Transition::Cut | Transition::Dissolve { .. } => 0,
        };
        Self {
            overlap: plan.overlap_frames,
            flash,
            fade: frames(style.fade_seconds),
            segments: plan.segments.len(),
            total: plan.output_frames(),
            rate: plan.rate,
        }
    }

    /// How far frame `index` of the montage is faded to black (a 0..=256 weight), if it is
    /// in the fade-in or the fade-out.
    fn fade_to_black(&self, index: u64) -> Option<u32> {
        let (fade, total) = (u64::from(self.fade), self.total);
        if fade == 0 {
            None
        } else if index < fade {
            Some(256 - ramp(index as u32, self.fade))
        } else if index + fade >= total {
            Some(ramp((index + fade - total) as u32, self.fade))
        } else {
            None
        }
    }
}

/// 0..=256 weight for step `index` (0-based) of a ramp of `steps` that excludes both ends.
fn ramp(index: u32, steps: u32) -> u32 {
    (256 * (index + 1) / (steps + 1)).min(256)
}

/// The picture side, for one output.
pub struct VideoSequencer {
    joins: Joins,
    /// The tail of the previous segment, waiting to dissolve into the next.
    held: Vec<frame::Video>,
    next: u64,
}

impl VideoSequencer {
    pub fn new(plan: &Plan, style: &StylePreset) -> Self {
        Self {
            joins: Joins::new(plan, style),
            held: Vec::new(),
            next: 0,
        }
    }

    /// The frame rate of the montage being joined.
    pub fn rate(&self) -> FrameRate {
        self.joins.rate
    }

    /// Places frame `slot` of segment `segment` (of `len` frames), and hands every finished
    /// frame, with its final timestamp, to `encode` (which may take it).
    pub fn push(
        &mut self,
        picture: &mut frame::Video,
        segment: usize,
        slot: u32,
        len: u32,
        encode: &mut dyn FnMut(&mut frame::Video) -> Result<(), MediaError>,
    ) -> Result<(), MediaError> {
        let Joins {
            overlap,
            flash,
            segments,
            ..
        } = self.joins;
        let last = segment + 1 == segments;
        if overlap > 0 {
            if !last && slot >= len - overlap {
                self.held.push(picture.clone());
                return Ok(());
            }
            if segment > 0 && slot < overlap {
                make_writable(picture)?;
                mix(
                    picture,
                    &self.held[slot as usize],
                    256 - ramp(slot, overlap),
                );
                if slot + 1 == overlap {
                    self.held.clear();
                }
            }
        }
        if flash > 0 && segment > 0 && slot < flash {
            // A hard cut to white that fades into the new shot.
            make_writable(picture)?;
            tint(picture, WHITE, 256 * (flash - slot) / flash);
        }
        let index = self.next;
        if let Some(weight) = self.joins.fade_to_black(index) {
            make_writable(picture)?;
            tint(picture, BLACK, weight);
        }
        picture.set_pts(Some(index as i64));
        self.next += 1;
        encode(picture)
    }
}

/// `picture = picture * (256 - weight) + other * weight`, per pixel.
fn mix(picture: &mut frame::Video, other: &frame::Video, weight: u32) {
    for (plane, (width, height)) in planes(picture).into_iter().enumerate() {
        let (stride, other_stride) = (picture.stride(plane), other.stride(plane));
        let source = other.data(plane);
        let target = picture.data_mut(plane);
        for row in 0..height {
            let a = &mut target[row * stride..row * stride + width];
            let b = &source[row * other_stride..row * other_stride + width];
            for (x, y) in a.iter_mut().zip(b) {
                *x = ((u32::from(*x) * (256 - weight) + u32::from(*y) * weight) >> 8) as u8;
            }
        }
    }
}

/// Moves every pixel `weight`/256 of the way towards `colour` (Y, U, V).
fn tint(picture: &mut frame::Video, colour: [u8; 3], weight: u32) {
    for (plane, (width, height)) in planes(picture).into_iter().enumerate() {
        let stride = picture.stride(plane);
        let towards = u32::from(colour[plane]) * weight;
        let target = picture.data_mut(plane);
        for row in 0..height {
            for x in &mut target[row * stride..row * stride + width] {
                *x = ((u32::from(*x) * (256 - weight) + towards) >> 8) as u8;
            }
        }
    }
}

/// The sound side: cross-fades for dissolves, short fades at cuts, fades at the ends.
pub struct AudioSequencer {
    joins: Joins,
    held: (Vec<f32>, Vec<f32>),
    emitted: u64,
}

impl AudioSequencer {
    pub fn new(plan: &Plan, style: &StylePreset) -> Self {
        Self {
            joins: Joins::new(plan, style),
            held: (Vec::new(), Vec::new()),
            emitted: 0,
        }
    }

    /// Takes a whole segment's samples; returns those now final.
    pub fn push(
        &mut self,
        segment: usize,
        mut left: Vec<f32>,
        mut right: Vec<f32>,
    ) -> (Vec<f32>, Vec<f32>) {
        let Joins {
            overlap,
            fade,
            segments,
            total,
            rate,
            ..
        } = self.joins;
        let samples_per_frame = samples_per_frame(rate);
        let last = segment + 1 == segments;
        let overlap = (overlap * samples_per_frame) as usize;
        if overlap > 0 {
            if segment > 0 {
                for i in 0..overlap.min(left.len()) {
                    // Equal-power cross-fade keeps the loudness steady through the join.
                    let angle = (i + 1) as f32 / (overlap + 1) as f32 * FRAC_PI_2;
                    let (fade_out, fade_in) = (angle.cos(), angle.sin());
                    left[i] = self.held.0[i] * fade_out + left[i] * fade_in;
                    right[i] = self.held.1[i] * fade_out + right[i] * fade_in;
                }
            }
            if !last {
                let keep = left.len().saturating_sub(overlap);
                self.held = (left.split_off(keep), right.split_off(keep));
            }
        } else {
            let n = left.len();
            for i in 0..CUT_FADE_SAMPLES.min(n / 2) {
                let gain = i as f32 / CUT_FADE_SAMPLES as f32;
                if segment > 0 {
                    left[i] *= gain;
                    right[i] *= gain;
                }
                if !last {
                    left[n - 1 - i] *= gain;
                    right[n - 1 - i] *= gain;
                }
            }
        }
        self.fade_ends(
            &mut left,
            &mut right,
            fade * samples_per_frame,
            total * u64::from(samples_per_frame),
        );
        self.emitted += left.len() as u64;
        (left, right)
    }

    /// Fades the montage in at its start and out at its end (`fade` and `total` in samples),
    /// on the samples that follow the ones emitted so far.
    fn fade_ends(&self, left: &mut [f32], right: &mut [f32], fade: u32, total: u64) {
        let fade = u64::from(fade);
        if fade == 0 {
            return;
        }
        for (i, (l, r)) in left.iter_mut().zip(right.iter_mut()).enumerate() {
            let position = self.emitted + i as u64;
            let gain = if position < fade {
                position as f32 / fade as f32
            } else if position + fade >= total {
                (total - position) as f32 / fade as f32
            } else {
                continue;
            };
            *l *= gain;
            *r *= gain;
        }
    }
}
