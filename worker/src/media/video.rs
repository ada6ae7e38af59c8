//! Video: picks frames onto the constant output frame rate, and scales each picked frame
//! into every requested layout through one libavfilter graph per clip.

use ffmpeg_next::{self as ffmpeg, ffi, filter, util::frame};
use planning::hud::Crop;
use planning::montage::OUTPUT_FPS;

use super::MediaError;

/// Slack when comparing a frame's time with an output slot's time (floating point).
const TIME_EPSILON: f64 = 0.000_5;

/// Chooses, for each output frame slot of a segment, the latest decoded frame shown at
/// that instant: frames between slots are dropped, and a frame is repeated while the
/// source has none newer (what the `fps` filter does, but with an exact slot count).
pub struct FrameSelector {
    start: f64,
    slots: u32,
    next: u32,
    /// The newest frame offered, and its time: shown until a newer one comes.
    pending: Option<(frame::Video, f64)>,
}

impl FrameSelector {
    pub fn new(start: f64, slots: u32) -> Self {
        Self {
            start,
            slots,
            next: 0,
            pending: None,
        }
    }

    pub fn is_done(&self) -> bool {
        self.next >= self.slots
    }

    /// Where the segment starts, seconds from the clip's start.
    pub fn start(&self) -> f64 {
        self.start
    }

    /// The newest frame offered, with its time (for the next segment of the same clip).
    pub fn take_newest(&mut self) -> Option<(frame::Video, f64)> {
        self.pending.take()
    }

    fn slot_time(&self, slot: u32) -> f64 {
        self.start + f64::from(slot) / f64::from(OUTPUT_FPS)
    }

    /// Whether a frame shown from `time` (seconds from the clip's start) for `duration` can
    /// fill a slot still to come. One that cannot (before the segment, or between slots of a
    /// faster source) need not be decoded unless later frames refer to it.
    pub fn wants(&self, time: f64, duration: f64) -> bool {
        if self.is_done() {
            return false;
        }
        // The first slot not before `time`; the frame fills it if it is still showing then.
        let first = ((time - TIME_EPSILON - self.start) * f64::from(OUTPUT_FPS)).ceil();
        let slot = first.max(f64::from(self.next));
        slot < f64::from(self.slots)
            && self.start + slot / f64::from(OUTPUT_FPS) + TIME_EPSILON < time + duration
    }

    /// Takes a decoded frame shown from `time` (seconds from the clip's start) and emits
    /// every slot that is now decided.
    pub fn offer(
        &mut self,
        decoded: frame::Video,
        time: f64,
        mut emit: impl FnMut(&mut frame::Video, u32) -> Result<(), MediaError>,
    ) -> Result<(), MediaError> {
        // The first frame also covers any slots before it (after an inexact seek).
        let mut incoming = Some((decoded, time));
        if self.pending.is_none() {
            self.pending = incoming.take();
        }
        while !self.is_done() && self.slot_time(self.next) + TIME_EPSILON < time {
            let slot = self.next;
            emit(&mut self.pending.as_mut().expect("set above").0, slot)?;
            self.next += 1;
        }
        if incoming.is_some() {
            self.pending = incoming;
        }
        Ok(())
    }

    /// At the end of the clip: the last frame holds for the remaining slots.
    pub fn finish(
        &mut self,
        mut emit: impl FnMut(&mut frame::Video, u32) -> Result<(), MediaError>,
    ) -> Result<(), MediaError> {
        let Some((last, _)) = self.pending.as_mut() else {
            return Err(MediaError::Invalid(
                "has no decodable frames in the chosen segment".into(),
            ));
        };
        while self.next < self.slots {
            emit(last, self.next)?;
            self.next += 1;
        }
        Ok(())
    }
}

/// A semi-transparent text mark in the bottom-right corner.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Watermark {
    /// Plain text (checked at configuration: nothing that needs escaping).
    pub text: String,
    pub font: std::path::PathBuf,
}

impl Watermark {
    /// A `drawtext` step (with its leading comma) sized to the output.
    fn filter(&self, height: u32) -> String {
        let size = (height / 28).max(12);
        let margin = height / 36;
        format!(
            ",drawtext=fontfile='{}':text='{}':fontsize={size}:fontcolor=white@0.6:\
             shadowcolor=black@0.45:shadowx=2:shadowy=2:x=w-tw-{margin}:y=h-th-{margin}",
            self.font.display(),
            self.text
        )
    }
}

/// One clip's filter graph: upright the picture, then one branch per output layout that
/// scales and lays it out at the exact frame size, in yuv420p.
pub struct VideoGraph {
    graph: filter::Graph,
    outputs: usize,
}

fn transpose_for(rotation: u32) -> &'static str {
    match rotation {
        90 => "transpose=clock,",
        180 => "hflip,vflip,",
        270 => "transpose=cclock,",
        _ => "",
    }
}

/// Aspect ratios closer than this fill the frame (a sliver is cropped) instead of getting
/// a blurred background.
const SAME_SHAPE: f64 = 0.03;

/// The filter branch that lays a picture of `source_aspect` into a `width`x`height` frame:
/// matching shapes fill it; otherwise the whole picture sits centred over a blurred,
/// zoomed, slightly darkened copy of itself (blurred at an eighth of the size, for speed).
fn layout_branch(
    input: &str,
    output: &str,
    source_aspect: f64,
    (width, height): (u32, u32),
    finish: &str,
) -> String {
    let target_aspect = f64::from(width) / f64::from(height);
    if (source_aspect / target_aspect - 1.0).abs() < SAME_SHAPE {
        return format!(
            "[{input}]scale={width}:{height}:force_original_aspect_ratio=increase:flags=bicubic,\
             crop={width}:{height}{finish},setsar=1,format=yuv420p[{output}]"
        );
    }
    let (small_w, small_h) = ((width / 8) & !1, (height / 8) & !1);
    format!(
        "[{input}]split[{output}bg][{output}fg];\
         [{output}bg]scale={small_w}:{small_h}:force_original_aspect_ratio=increase,crop={small_w}:{small_h},\
         boxblur=6:2,eq=brightness=-0.08,scale={width}:{height}:flags=bilinear[{output}blur];\
         [{output}fg]scale={width}:{height}:force_original_aspect_ratio=decrease:force_divisible_by=2:flags=bicubic[{output}fit];\
         [{output}blur][{output}fit]overlay=(W-w)/2:(H-h)/2{finish},setsar=1,format=yuv420p[{output}]"
    )
}

/// The frame's sample aspect ratio, square when unknown.
fn pixel_aspect(sample: &frame::Video) -> (i32, i32) {
    let aspect = sample.aspect_ratio();
    if aspect.numerator() > 0 && aspect.denominator() > 0 {
        (aspect.numerator(), aspect.denominator())
    } else {
        (1, 1)
    }
}

/// The crop step (with its trailing comma, or empty), and the displayed aspect ratio of
/// what it keeps once turned upright.
fn upright_crop(sample: &frame::Video, crop: Option<&Crop>, rotation: u32) -> (String, f64) {
    let (sar_num, sar_den) = pixel_aspect(sample);
    let (crop, kept_width, kept_height) = match crop {
        Some(crop) => {
            let (w, h, x, y) = crop.pixels(sample.width(), sample.height());
            (format!("crop={w}:{h}:{x}:{y},"), w, h)
        }
        None => (String::new(), sample.width(), sample.height()),
    };
    let displayed = f64::from(kept_width) * f64::from(sar_num) / f64::from(sar_den);
    let aspect = if rotation % 180 == 90 {
        f64::from(kept_height) / displayed
    } else {
        displayed / f64::from(kept_height)
    };
    (crop, aspect)
}

impl VideoGraph {
    /// Builds the graph for frames shaped like `sample`: upright it, apply `grade` (a
    /// filter chain, if any), then lay it out into each of `sizes`.
    pub fn new(
        sample: &frame::Video,
        rotation: u32,
        crop: Option<&Crop>,
        grade: Option<&str>,
        watermark: Option<&Watermark>,
        sizes: &[(u32, u32)],
    ) -> Result<Self, MediaError> {
        let mut graph = filter::Graph::new();
        let (sar_num, sar_den) = pixel_aspect(sample);
        let args = format!(
            "video_size={}x{}:pix_fmt={}:time_base=1/{OUTPUT_FPS}:pixel_aspect={sar_num}/{sar_den}",
            sample.width(),
            sample.height(),
            ffi::AVPixelFormat::from(sample.format()) as i32,
        );
        let buffer = filter::find("buffer")
            .ok_or_else(|| MediaError::Internal("no buffer filter".into()))?;
        let sink = filter::find("buffersink")
            .ok_or_else(|| MediaError::Internal("no buffersink filter".into()))?;
        graph.add(&buffer, "in", &args)?;
        let (crop, source_aspect) = upright_crop(sample, crop, rotation);
        let grade = grade.map(|g| format!("{g},")).unwrap_or_default();
        let mut spec = format!(
            "[in]{crop}{}{grade}split={}",
            transpose_for(rotation),
            sizes.len()
        );
        for index in 0..sizes.len() {
            spec.push_str(&format!("[s{index}]"));
        }
        for (index, size) in sizes.iter().enumerate() {
            graph.add(&sink, &format!("out{index}"), "")?;
            spec.push(';');
            let finish = watermark.map(|w| w.filter(size.1)).unwrap_or_default();
            spec.push_str(&layout_branch(
                &format!("s{index}"),
                &format!("out{index}"),
                source_aspect,
                *size,
                &finish,
            ));
        }
        let mut parser = graph.output("in", 0)?;
        for index in 0..sizes.len() {
            parser = parser.input(&format!("out{index}"), 0)?;
        }
        parser.parse(&spec)?;
        graph.validate()?;
        Ok(Self {
            graph,
            outputs: sizes.len(),
        })
    }

    /// Feeds a frame (kept by the caller: it may be fed again for a repeated slot).
    pub fn push(&mut self, frame: &mut frame::Video, pts: i64) -> Result<(), MediaError> {
        frame.set_pts(Some(pts));
        let mut source = self
            .graph
            .get("in")
            .ok_or_else(|| MediaError::Internal("graph lost its source".into()))?;
        // SAFETY: both pointers are valid; KEEP_REF makes libav take a new reference
        // instead of emptying our frame.
        let status = unsafe {
            ffi::av_buffersrc_add_frame_flags(
                source.as_mut_ptr(),
                frame.as_mut_ptr(),
                ffi::AV_BUFFERSRC_FLAG_KEEP_REF as i32,
            )
        };
        if status < 0 {
            return Err(ffmpeg::Error::from(status).into());
        }
        Ok(())
    }

    /// The next scaled frame for output `index`, if one is ready.
    pub fn pull(&mut self, index: usize, into: &mut frame::Video) -> bool {
        debug_assert!(index < self.outputs);
        self.graph
            .get(&format!("out{index}"))
            .is_some_and(|mut sink| sink.sink().frame(into).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_at(marker: u32) -> frame::Video {
        let mut f = frame::Video::new(ffmpeg::format::Pixel::GRAY8, 2, 2);
        f.set_pts(Some(i64::from(marker)));
        f
    }

    /// Feeds frames at the given times and returns, per slot, which frame filled it.
    fn select(start: f64, slots: u32, times: &[f64]) -> Vec<i64> {
        let mut selector = FrameSelector::new(start, slots);
        let mut picked = Vec::new();
        for (i, time) in times.iter().enumerate() {
            selector
                .offer(frame_at(i as u32), *time, |f, _| {
                    picked.push(f.pts().unwrap());
                    Ok(())
                })
                .unwrap();
        }
        selector
            .finish(|f, _| {
                picked.push(f.pts().unwrap());
                Ok(())
            })
            .unwrap();
        picked
    }

    #[test]
    fn sixty_fps_drops_every_other_frame() {
        let times: Vec<f64> = (0..12).map(|i| f64::from(i) / 60.0).collect();
        assert_eq!(select(0.0, 6, &times), vec![0, 2, 4, 6, 8, 10]);
    }

    #[test]
    fn fifteen_fps_repeats_each_frame() {
        let times: Vec<f64> = (0..3).map(|i| f64::from(i) / 15.0).collect();
        assert_eq!(select(0.0, 6, &times), vec![0, 0, 1, 1, 2, 2]);
    }

    #[test]
    fn starts_at_the_frame_shown_at_the_segment_start() {
        // Decoding after a seek starts at a keyframe before the segment.
        let times: Vec<f64> = (0..60).map(|i| f64::from(i) / 30.0).collect();
        assert_eq!(select(1.0, 3, &times), vec![30, 31, 32]);
    }

    #[test]
    fn wants_only_frames_a_slot_shows() {
        let selector = FrameSelector::new(1.0, 30);
        let sixtieth = 1.0 / 60.0;
        // Before the segment: nothing shows them.
        assert!(!selector.wants(0.5, sixtieth));
        // The frame shown at the segment's start, and the one just before it.
        assert!(selector.wants(1.0, sixtieth));
        assert!(selector.wants(1.0 - sixtieth / 2.0, sixtieth));
        // 60 fps into 30: every other frame falls between two slots.
        assert!(!selector.wants(1.0 + sixtieth, sixtieth));
        assert!(selector.wants(1.0 + 2.0 * sixtieth, sixtieth));
        // A slower source: every frame shows in some slot.
        assert!(selector.wants(1.0 + 0.01, 1.0 / 25.0));
        // After the segment's last slot.
        assert!(!selector.wants(2.0, sixtieth));
    }

    #[test]
    fn a_short_clip_holds_its_last_frame() {
        assert_eq!(select(0.0, 4, &[0.0, 1.0 / 30.0]), vec![0, 1, 1, 1]);
    }
}
