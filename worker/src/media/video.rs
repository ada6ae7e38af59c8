//! Video: picks frames onto the constant output frame rate and makes them upright and
//! graded, through a libavfilter chain per segment. The layouts are in `layout.rs`.

use ffmpeg_next::{self as ffmpeg, ffi, filter, util::frame};
use planning::hud::Crop;
use planning::montage::FrameRate;

use super::MediaError;

/// Slack when comparing a frame's time with an output slot's time (floating point).
const TIME_EPSILON: f64 = 0.000_5;

/// Chooses, for each output frame slot of a segment, the latest decoded frame shown at
/// that instant: frames between slots are dropped, and a frame is repeated while the
/// source has none newer (what the `fps` filter does, but with an exact slot count).
pub struct FrameSelector {
    start: f64,
    /// Output frames per second.
    fps: f64,
    slots: u32,
    next: u32,
    /// The newest frame offered, and its time: shown until a newer one comes.
    pending: Option<(frame::Video, f64)>,
}

impl FrameSelector {
    pub fn new(start: f64, slots: u32, rate: FrameRate) -> Self {
        Self {
            start,
            fps: f64::from(rate.fps()),
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
        self.start + f64::from(slot) / self.fps
    }

    /// Whether a frame shown from `time` (seconds from the clip's start) for `duration` can
    /// fill a slot still to come. One that cannot (before the segment, or between slots of a
    /// faster source) need not be decoded unless later frames refer to it.
    pub fn wants(&self, time: f64, duration: f64) -> bool {
        if self.is_done() {
            return false;
        }
        // The first slot not before `time`; the frame fills it if it is still showing then.
        let first = ((time - TIME_EPSILON - self.start) * self.fps).ceil();
        let slot = first.max(f64::from(self.next));
        slot < f64::from(self.slots)
            && self.start + slot / self.fps + TIME_EPSILON < time + duration
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

/// A libavfilter chain with one input and one output, built for frames shaped like the
/// first one fed.
pub struct FilterChain {
    graph: filter::Graph,
}

impl FilterChain {
    /// Builds `spec` (which reads `[in]` and writes `[out]`) for frames shaped like
    /// `sample`, timed in output frames at `rate`.
    pub fn new(sample: &frame::Video, spec: &str, rate: FrameRate) -> Result<Self, MediaError> {
        let mut graph = filter::Graph::new();
        let (sar_num, sar_den) = pixel_aspect(sample);
        let args = format!(
            "video_size={}x{}:pix_fmt={}:time_base=1/{}:pixel_aspect={sar_num}/{sar_den}",
            sample.width(),
            sample.height(),
            ffi::AVPixelFormat::from(sample.format()) as i32,
            rate.fps(),
        );
        let buffer = filter::find("buffer")
            .ok_or_else(|| MediaError::Internal("no buffer filter".into()))?;
        let sink = filter::find("buffersink")
            .ok_or_else(|| MediaError::Internal("no buffersink filter".into()))?;
        graph.add(&buffer, "in", &args)?;
        graph.add(&sink, "out", "")?;
        graph.output("in", 0)?.input("out", 0)?.parse(spec)?;
        graph.validate()?;
        Ok(Self { graph })
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

    /// The next filtered frame, if one is ready.
    pub fn pull(&mut self, into: &mut frame::Video) -> bool {
        self.graph
            .get("out")
            .is_some_and(|mut sink| sink.sink().frame(into).is_ok())
    }
}

/// A new reference to `frame`'s pictures (no copy). Whoever writes to a shared frame makes
/// it writable first ([`make_writable`]).
pub fn share(frame: &frame::Video) -> Result<frame::Video, MediaError> {
    let mut shared = frame::Video::empty();
    // SAFETY: both pointers are valid and `shared` holds no reference yet.
    let status = unsafe { ffi::av_frame_ref(shared.as_mut_ptr(), frame.as_ptr()) };
    if status < 0 {
        return Err(ffmpeg::Error::from(status).into());
    }
    Ok(shared)
}

/// Gives `frame` pictures of its own (copying them only if another reference shares them),
/// so that writing to it changes nothing else: not the decoder's reference frames, not a
/// frame held for a repeated slot, not another output's copy.
pub fn make_writable(frame: &mut frame::Video) -> Result<(), MediaError> {
    // SAFETY: the pointer is valid; libav copies the data only when it is shared.
    let status = unsafe { ffi::av_frame_make_writable(frame.as_mut_ptr()) };
    if status < 0 {
        return Err(ffmpeg::Error::from(status).into());
    }
    Ok(())
}

/// Visible plane sizes of an 8-bit 4:2:0 frame.
pub fn planes(picture: &frame::Video) -> [(usize, usize); 3] {
    let (w, h) = (picture.width() as usize, picture.height() as usize);
    let chroma = (w.div_ceil(2), h.div_ceil(2));
    [(w, h), chroma, chroma]
}

/// Chroma levels of limited-range 8-bit video.
const CHROMA_RANGE: (i16, i16) = (16, 240);

/// Adds `(cb, cr)` to the chroma planes of an 8-bit 4:2:0 `picture`, within the video
/// range (what `lutyuv=u=val+cb:v=val+cr` does, without a lookup for every luma sample).
/// The caller makes the picture writable.
pub fn shift_chroma(picture: &mut frame::Video, (cb, cr): (i16, i16)) {
    for (plane, shift) in [(1, cb), (2, cr)] {
        let (width, height) = planes(picture)[plane];
        let stride = picture.stride(plane);
        let target = picture.data_mut(plane);
        for row in 0..height {
            for x in &mut target[row * stride..row * stride + width] {
                *x = (i16::from(*x) + shift).clamp(CHROMA_RANGE.0, CHROMA_RANGE.1) as u8;
            }
        }
    }
}

fn transpose_for(rotation: u32) -> &'static str {
    match rotation {
        90 => "transpose=clock,",
        180 => "hflip,vflip,",
        270 => "transpose=cclock,",
        _ => "",
    }
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

/// The displayed width over height of `frame`'s pictures.
pub fn displayed_aspect(frame: &frame::Video) -> f64 {
    let (sar_num, sar_den) = pixel_aspect(frame);
    f64::from(frame.width()) * f64::from(sar_num) / (f64::from(sar_den) * f64::from(frame.height()))
}

/// The chain that makes a clip's decoded frames into the montage's pictures: crop the HUD,
/// turn upright, grade; then 8-bit 4:2:0 when `for_chroma_shift` (for [`shift_chroma`]).
/// `None` when the frames are fine as they are.
pub fn upright_chain(
    sample: &frame::Video,
    crop: Option<&Crop>,
    rotation: u32,
    grade: Option<&str>,
    for_chroma_shift: bool,
) -> Option<String> {
    let crop = crop
        .map(|crop| {
            let (w, h, x, y) = crop.pixels(sample.width(), sample.height());
            format!("crop={w}:{h}:{x}:{y},")
        })
        .unwrap_or_default();
    let grade = grade.map(|g| format!("{g},")).unwrap_or_default();
    let planar = if for_chroma_shift {
        "format=yuv420p,"
    } else {
        ""
    };
    let steps = format!("{crop}{}{grade}{planar}", transpose_for(rotation));
    let steps = steps.strip_suffix(',')?;
    Some(format!("[in]{steps}[out]"))
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
        let mut selector = FrameSelector::new(start, slots, FrameRate::Thirty);
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
        let selector = FrameSelector::new(1.0, 30, FrameRate::Thirty);
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
    fn chroma_shifts_stay_in_the_video_range_and_leave_luma_alone() {
        let mut picture = frame::Video::new(ffmpeg::format::Pixel::YUV420P, 4, 2);
        for (plane, value) in [(0, 100), (1, 20), (2, 236)] {
            picture.data_mut(plane).fill(value);
        }
        shift_chroma(&mut picture, (-6, 3));
        let visible = |picture: &frame::Video, plane: usize| {
            let (width, _) = planes(picture)[plane];
            picture.data(plane)[..width].to_vec()
        };
        assert_eq!(visible(&picture, 0), vec![100; 4]);
        assert_eq!(visible(&picture, 1), vec![16; 2]);
        assert_eq!(visible(&picture, 2), vec![239; 2]);
    }

    #[test]
    fn a_short_clip_holds_its_last_frame() {
        assert_eq!(select(0.0, 4, &[0.0, 1.0 / 30.0]), vec![0, 1, 1, 1]);
    }
}
