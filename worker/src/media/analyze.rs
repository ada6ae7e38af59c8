//! Highlight analysis: how loud and how busy each half-second of a clip is. Video is
//! sampled at a reduced rate and size (the decoder still decodes every reference frame, but
//! skips its loop filter and non-reference frames); audio is measured at 8 kHz mono.

use std::path::Path;

use ffmpeg_next::{
    codec, ffi, media,
    software::scaling,
    util::{format::Pixel, frame},
    Discard,
};
use planning::montage::ANALYSIS_WINDOW_SECONDS;

use settings::ClipLimits;

use super::{audio::resampler, open::open_input, MediaError};

/// Motion and static regions are measured on frames this small...
pub const THUMB_WIDTH: u32 = 160;
pub const THUMB_HEIGHT: u32 = 90;
/// ...sampled this often.
const SAMPLES_PER_SECOND: f64 = 8.0;
const MEASURE_RATE: i32 = 8_000;
/// Loudness of a window with no sound at all.
pub const SILENCE_DB: f64 = -90.0;

/// Per-window measurements of one clip.
#[derive(Debug, Clone)]
pub struct ClipMeasurements {
    /// How long the decoded picture actually runs, whatever the header said.
    pub duration_seconds: f64,
    /// RMS level in dBFS per window.
    pub loudness_db: Vec<f64>,
    /// Mean absolute luma change between sampled thumbnails, 0-255, per window.
    pub motion: Vec<f64>,
    /// Mean change of each thumbnail pixel over the whole clip (row-major,
    /// [`THUMB_WIDTH`] x [`THUMB_HEIGHT`]), for HUD detection.
    pub change_map: Vec<f32>,
}

pub fn analyze(path: &Path, limits: &ClipLimits) -> Result<ClipMeasurements, MediaError> {
    let window_of = |time: f64| (time.max(0.0) / ANALYSIS_WINDOW_SECONDS) as usize;
    let mut input = open_input(path)?;
    let video = input
        .streams()
        .best(media::Type::Video)
        .ok_or_else(|| MediaError::Invalid("has no video".into()))?;
    let video_index = video.index();
    let video_time_base = f64::from(video.time_base());
    let origin = match video.start_time() {
        ffi::AV_NOPTS_VALUE => 0,
        start => start,
    };
    let mut context = codec::context::Context::from_parameters(video.parameters())?;
    context.set_threading(codec::threading::Config {
        kind: codec::threading::Type::Frame,
        count: 0,
        ..Default::default()
    });
    // Thumbnails need no bit-exact decoding: allow the decoders' speed shortcuts.
    // SAFETY: plain field on a context not yet opened.
    unsafe { (*context.as_mut_ptr()).flags2 |= ffi::AV_CODEC_FLAG2_FAST };
    let mut video_decoder = context.decoder().video()?;
    video_decoder.skip_loop_filter(Discard::All);
    video_decoder.skip_frame(Discard::NonReference);

    let audio = input.streams().best(media::Type::Audio);
    let audio_index = audio.as_ref().map(|s| s.index());
    let (mut audio_decoder, mut meter) = match &audio {
        Some(stream) => {
            let decoder = codec::context::Context::from_parameters(stream.parameters())?
                .decoder()
                .audio()?;
            let origin_in_audio =
                (origin as f64 * video_time_base / f64::from(stream.time_base())).round() as i64;
            let graph = resampler(
                &decoder,
                stream.time_base(),
                &format!("aresample={MEASURE_RATE},aformat=sample_fmts=flt:channel_layouts=mono"),
            )?;
            (Some(decoder), Some((graph, origin_in_audio)))
        }
        None => (None, None),
    };

    // Grown as decoded timestamps arrive, never sized from what the header claims.
    let mut energy = Windows::<f64>::default();
    let mut samples = Windows::<u64>::default();
    let mut motion_sum = Windows::<f64>::default();
    let mut motion_count = Windows::<u32>::default();
    let mut reality = Reality::new(limits);
    let mut change_sum = vec![0u32; (THUMB_WIDTH * THUMB_HEIGHT) as usize];
    let mut change_count = 0u32;
    let mut scaler: Option<scaling::Context> = None;
    let mut previous: Option<frame::Video> = None;
    let mut next_sample = 0.0f64;
    let mut decoded = frame::Video::empty();
    let mut decoded_audio = frame::Audio::empty();
    let mut measured = frame::Audio::empty();

    let mut on_video = |decoded: &frame::Video| -> Result<(), MediaError> {
        let time = decoded
            .timestamp()
            .map_or(0.0, |ts| (ts - origin) as f64 * video_time_base);
        reality.video_frame(decoded, time)?;
        if time + 1e-6 < next_sample {
            return Ok(());
        }
        next_sample = time + 1.0 / SAMPLES_PER_SECOND;
        let scaler = match scaler.as_mut() {
            Some(s) => s,
            None => scaler.insert(scaling::Context::get(
                decoded.format(),
                decoded.width(),
                decoded.height(),
                Pixel::GRAY8,
                THUMB_WIDTH,
                THUMB_HEIGHT,
                scaling::Flags::FAST_BILINEAR,
            )?),
        };
        let mut thumb = frame::Video::empty();
        scaler.run(decoded, &mut thumb)?;
        if let Some(before) = &previous {
            let window = window_of(time);
            *motion_sum.at(window) += accumulate_difference(before, &thumb, &mut change_sum);
            *motion_count.at(window) += 1;
            change_count += 1;
        }
        previous = Some(thumb);
        Ok(())
    };
    let mut on_audio = |decoded: &mut frame::Audio| -> Result<(), MediaError> {
        let Some((graph, origin_in_audio)) = meter.as_mut() else {
            return Ok(());
        };
        if let Some(pts) = decoded.timestamp() {
            decoded.set_pts(Some(pts - *origin_in_audio));
        }
        graph
            .get("in")
            .expect("source exists")
            .source()
            .add(decoded)?;
        while graph
            .get("out")
            .expect("sink exists")
            .sink()
            .frame(&mut measured)
            .is_ok()
        {
            let start = measured.pts().unwrap_or(0);
            let plane = measured.plane::<f32>(0);
            let end = (start + plane.len() as i64) as f64 / f64::from(MEASURE_RATE);
            check_duration(limits, end)?;
            for (i, sample) in plane.iter().enumerate() {
                let window = window_of((start + i as i64) as f64 / f64::from(MEASURE_RATE));
                *energy.at(window) += f64::from(*sample) * f64::from(*sample);
                *samples.at(window) += 1;
            }
        }
        Ok(())
    };

    for (stream, packet) in input.packets() {
        if stream.index() == video_index {
            if video_decoder.send_packet(&packet).is_ok() {
                while video_decoder.receive_frame(&mut decoded).is_ok() {
                    on_video(&decoded)?;
                }
            }
        } else if Some(stream.index()) == audio_index {
            if let Some(decoder) = audio_decoder.as_mut() {
                if decoder.send_packet(&packet).is_ok() {
                    while decoder.receive_frame(&mut decoded_audio).is_ok() {
                        on_audio(&mut decoded_audio)?;
                    }
                }
            }
        }
    }
    let _ = video_decoder.send_eof();
    while video_decoder.receive_frame(&mut decoded).is_ok() {
        on_video(&decoded)?;
    }
    if let Some(decoder) = audio_decoder.as_mut() {
        let _ = decoder.send_eof();
        while decoder.receive_frame(&mut decoded_audio).is_ok() {
            on_audio(&mut decoded_audio)?;
        }
    }

    let windows = reality.windows();
    let (energy, samples) = (energy.finish(windows), samples.finish(windows));
    let (motion_sum, motion_count) = (motion_sum.finish(windows), motion_count.finish(windows));
    let loudness_db = energy
        .iter()
        .zip(&samples)
        .map(|(&e, &n)| {
            if n == 0 || e <= 0.0 {
                SILENCE_DB
            } else {
                (10.0 * (e / n as f64).log10()).max(SILENCE_DB)
            }
        })
        .collect();
    let motion = motion_sum
        .iter()
        .zip(&motion_count)
        .map(|(&sum, &n)| if n == 0 { 0.0 } else { sum / f64::from(n) })
        .collect();
    let change_map = change_sum
        .iter()
        .map(|&sum| sum as f32 / change_count.max(1) as f32)
        .collect();
    Ok(ClipMeasurements {
        duration_seconds: reality.duration_seconds(),
        loudness_db,
        motion,
        change_map,
    })
}

/// Adds each pixel's change to `per_pixel`; returns the mean change.
fn accumulate_difference(a: &frame::Video, b: &frame::Video, per_pixel: &mut [u32]) -> f64 {
    let (width, height) = (THUMB_WIDTH as usize, THUMB_HEIGHT as usize);
    let (sa, sb) = (a.stride(0), b.stride(0));
    let (da, db) = (a.data(0), b.data(0));
    let mut total = 0u64;
    for row in 0..height {
        let ra = &da[row * sa..row * sa + width];
        let rb = &db[row * sb..row * sb + width];
        for ((x, y), sum) in ra
            .iter()
            .zip(rb)
            .zip(&mut per_pixel[row * width..(row + 1) * width])
        {
            let change = u32::from(x.abs_diff(*y));
            *sum += change;
            total += u64::from(change);
        }
    }
    total as f64 / (width * height) as f64
}

/// Per-window sums, grown to the windows that decoded media reaches.
struct Windows<T>(Vec<T>);

impl<T> Default for Windows<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<T: Default + Clone> Windows<T> {
    fn at(&mut self, window: usize) -> &mut T {
        if window >= self.0.len() {
            self.0.resize(window + 1, T::default());
        }
        &mut self.0[window]
    }

    /// Exactly `windows` entries: later ones (a stray audio tail) fold into the last.
    fn finish(mut self, windows: usize) -> Vec<T>
    where
        T: std::ops::AddAssign,
    {
        self.0.resize(self.0.len().max(windows), T::default());
        let tail: Vec<T> = self.0.drain(windows..).collect();
        for extra in tail {
            self.0[windows - 1] += extra;
        }
        self.0
    }
}

/// What decoding actually finds, checked against the limits as it goes: a header can claim
/// anything, so the frames themselves are measured.
struct Reality {
    limits: ClipLimits,
    frames: u64,
    video_end: f64,
}

impl Reality {
    fn new(limits: &ClipLimits) -> Self {
        Self {
            limits: *limits,
            frames: 0,
            video_end: 0.0,
        }
    }

    fn video_frame(&mut self, frame: &frame::Video, time: f64) -> Result<(), MediaError> {
        let limits = &self.limits;
        if frame.width() > limits.max_width || frame.height() > limits.max_height {
            return Err(MediaError::Invalid(format!(
                "has {}x{} frames; the limit is {}x{}",
                frame.width(),
                frame.height(),
                limits.max_width,
                limits.max_height
            )));
        }
        self.frames += 1;
        self.video_end = self.video_end.max(time);
        check_duration(limits, time)?;
        let allowed_frames = limits.max_fps * (self.video_end + 1.0);
        if self.frames as f64 > allowed_frames {
            return Err(MediaError::Invalid(format!(
                "holds more frames than {} per second",
                limits.max_fps
            )));
        }
        Ok(())
    }

    /// Where the last decoded picture ends (one sample interval past its start).
    fn duration_seconds(&self) -> f64 {
        if self.frames == 0 {
            0.0
        } else {
            self.video_end + 1.0 / SAMPLES_PER_SECOND
        }
    }

    fn windows(&self) -> usize {
        ((self.duration_seconds() / ANALYSIS_WINDOW_SECONDS).ceil() as usize).max(1)
    }
}

fn check_duration(limits: &ClipLimits, time: f64) -> Result<(), MediaError> {
    // A second of slack: the last frame's timestamp may sit just past a round limit.
    if time > limits.max_duration_seconds + 1.0 {
        return Err(MediaError::Invalid(format!(
            "runs longer than the {} s limit for a clip",
            limits.max_duration_seconds
        )));
    }
    Ok(())
}
