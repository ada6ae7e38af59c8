//! Lays the montage's pictures out into one output's frame (fit over a blurred fill, fill,
//! or the portrait split under a streamer's camera), joins the segments and hands finished
//! frames to that output's encoder. Each output runs this on its own thread (see
//! `output.rs`).

use domain::facecam::Facecam;
use ffmpeg_next::util::frame;

use super::{
    sequence::VideoSequencer,
    video::{displayed_aspect, FilterChain},
    MediaError,
};

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

/// The montage's title: its text in a file (never parsed as filter syntax), the style's
/// typeface, and its length in characters (to size it to one line).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Caption {
    pub file: std::path::PathBuf,
    pub font: std::path::PathBuf,
    pub chars: usize,
}

/// Longest the title stays on screen, and how long it fades in and out.
pub const TITLE_SECONDS: f64 = 3.0;
const TITLE_FADE_SECONDS: f64 = 0.4;

impl Caption {
    /// A `drawtext` step (with its leading comma) that shows the title for `seconds` from the
    /// start of the first segment, centred in the upper part of a `width`x`height` frame.
    pub fn filter(&self, (width, height): (u32, u32), seconds: f64) -> String {
        let by_height = f64::from(height) / 12.0;
        let by_width = f64::from(width) * 0.9 / (0.62 * self.chars.max(1) as f64);
        let size = by_height.min(by_width).floor().max(12.0) as u32;
        let fade = TITLE_FADE_SECONDS.min(seconds / 3.0);
        format!(
            ",drawtext=fontfile='{}':textfile='{}':expansion=none:fontsize={size}:\
             fontcolor=white:borderw={}:bordercolor=black@0.6:x=(w-tw)/2:y=h*0.14:\
             alpha='min(1\\,t/{fade:.3})*max(0\\,min(1\\,({seconds:.3}-t)/{fade:.3}))'",
            self.font.display(),
            self.file.display(),
            (size / 16).max(2),
        )
    }
}

/// Aspect ratios closer than this fill the frame (a sliver is cropped) instead of getting
/// a blurred background.
const SAME_SHAPE: f64 = 0.03;

/// The chain that lays a picture of `source_aspect` into a `width`x`height` frame, then
/// `finish`: matching shapes fill it; otherwise the whole picture sits centred over a
/// blurred, zoomed, slightly darkened copy of itself (blurred at an eighth of the size, and
/// shrunk there with the cheapest filter: the blur hides it).
fn layout_chain(source_aspect: f64, (width, height): (u32, u32), finish: &str) -> String {
    let target_aspect = f64::from(width) / f64::from(height);
    if (source_aspect / target_aspect - 1.0).abs() < SAME_SHAPE {
        return format!(
            "[in]scale={width}:{height}:force_original_aspect_ratio=increase:flags=bicubic,\
             crop={width}:{height}{finish},setsar=1,format=yuv420p[out]"
        );
    }
    let (small_w, small_h) = ((width / 8) & !1, (height / 8) & !1);
    format!(
        "[in]split[bg][fg];\
         [bg]scale={small_w}:{small_h}:force_original_aspect_ratio=increase:flags=fast_bilinear,crop={small_w}:{small_h},\
         boxblur=6:2,eq=brightness=-0.08,scale={width}:{height}:flags=bilinear[blur];\
         [fg]scale={width}:{height}:force_original_aspect_ratio=decrease:force_divisible_by=2:flags=bicubic[fit];\
         [blur][fit]overlay=(W-w)/2:(H-h)/2{finish},setsar=1,format=yuv420p[out]"
    )
}

/// The portrait split: the camera's rectangle fills the top third; the gameplay fills the
/// rest, cropped at full height to that part's shape, centred unless the camera would show
/// in it, then moved clear of the camera (as far as the frame allows).
fn split_chain(
    source_aspect: f64,
    cam: Facecam,
    (width, height): (u32, u32),
    finish: &str,
) -> String {
    let top = (height / 3) & !1;
    let bottom = height - top;
    let share = (f64::from(width) / f64::from(bottom) / source_aspect).min(1.0);
    let start = gameplay_start(share, cam);
    let Facecam { x, y, w, h } = cam;
    format!(
        "[in]split[cam][game];\
         [cam]crop=iw*{w}:ih*{h}:iw*{x}:ih*{y},\
         scale={width}:{top}:force_original_aspect_ratio=increase:flags=bicubic,crop={width}:{top}[top];\
         [game]crop=iw*{share}:ih:iw*{start}:0,scale={width}:{bottom}:flags=bicubic,setsar=1[rest];\
         [top][rest]vstack{finish},setsar=1,format=yuv420p[out]"
    )
}

/// Where a full-height crop `share` of the frame's width starts: centred, or beside the
/// camera when centred would show it.
fn gameplay_start(share: f64, cam: Facecam) -> f64 {
    let centred = (1.0 - share) / 2.0;
    let overlaps = |start: f64| start < cam.x + cam.w && cam.x < start + share;
    if !overlaps(centred) {
        return centred;
    }
    let (left_of, right_of) = ((cam.x - share).max(0.0), (cam.x + cam.w).min(1.0 - share));
    let shown = |start: f64| (start + share).min(cam.x + cam.w) - start.max(cam.x);
    if shown(left_of) <= shown(right_of) {
        left_of
    } else {
        right_of
    }
}

/// One montage picture, upright and graded, for output slot `slot` of segment `segment`
/// (of `len` slots).
pub struct Picture {
    pub frame: frame::Video,
    pub segment: usize,
    pub slot: u32,
    pub len: u32,
}

/// One output's picture stage.
pub struct Layout {
    size: (u32, u32),
    /// For a portrait output, each segment's camera, if its clip has one: the split layout.
    facecams: Vec<Option<Facecam>>,
    /// The watermark step, if any, sized to this output.
    finish: String,
    /// The title step, if any, for the first segment's pictures.
    title: String,
    sequencer: VideoSequencer,
    /// The chain for the current segment (frames of another clip are shaped differently).
    chain: Option<(usize, FilterChain)>,
    laid: frame::Video,
}

impl Layout {
    /// An output of `size`; a portrait one is split under the camera of each segment that
    /// has one (`facecams`, by segment).
    pub fn new(
        size: (u32, u32),
        watermark: Option<&Watermark>,
        facecams: &[Option<Facecam>],
        title: String,
        sequencer: VideoSequencer,
    ) -> Self {
        let portrait = size.1 > size.0;
        Self {
            size,
            title,
            facecams: if portrait {
                facecams.to_vec()
            } else {
                Vec::new()
            },
            finish: watermark.map(|w| w.filter(size.1)).unwrap_or_default(),
            sequencer,
            chain: None,
            laid: frame::Video::empty(),
        }
    }

    /// Lays `picture` out and hands every frame it finishes to `encode`.
    pub fn place(
        &mut self,
        mut picture: Picture,
        encode: &mut dyn FnMut(&mut frame::Video) -> Result<(), MediaError>,
    ) -> Result<(), MediaError> {
        if self
            .chain
            .as_ref()
            .is_none_or(|(segment, _)| *segment != picture.segment)
        {
            let aspect = displayed_aspect(&picture.frame);
            let facecam = self.facecams.get(picture.segment).copied().flatten();
            let title = if picture.segment == 0 {
                self.title.as_str()
            } else {
                ""
            };
            let finish = format!("{title}{}", self.finish);
            let spec = match facecam {
                Some(cam) => split_chain(aspect, cam, self.size, &finish),
                None => layout_chain(aspect, self.size, &finish),
            };
            let chain = FilterChain::new(&picture.frame, &spec, self.sequencer.rate())?;
            self.chain = Some((picture.segment, chain));
        }
        let (_, chain) = self.chain.as_mut().expect("built above");
        let Picture {
            ref mut frame,
            segment,
            slot,
            len,
        } = picture;
        chain.push(frame, i64::from(slot))?;
        while chain.pull(&mut self.laid) {
            self.sequencer
                .push(&mut self.laid, segment, slot, len, &mut *encode)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cam(x: f64, w: f64) -> Facecam {
        Facecam::new(x, 0.05, w, 0.3).unwrap()
    }

    #[test]
    fn the_gameplay_is_cropped_clear_of_the_camera() {
        let share = 0.4746;
        // A corner camera does not show in the centre.
        assert!((gameplay_start(share, cam(0.75, 0.2)) - 0.2627).abs() < 1e-3);
        // One right of centre pushes the crop left of it, one left of centre right of it.
        let start = gameplay_start(share, cam(0.6, 0.2));
        assert!(start + share <= 0.6 + 1e-9, "{start}");
        let start = gameplay_start(share, cam(0.2, 0.2));
        assert!(start >= 0.4 - 1e-9, "{start}");
        // A camera in the middle cannot be avoided: the crop shows as little of it as it can.
        let start = gameplay_start(share, cam(0.3, 0.4));
        assert!((0.0..=1.0 - share).contains(&start), "{start}");
    }
}
