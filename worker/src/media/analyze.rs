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

use domain::clips::ANALYSIS_VERSION;
use settings::ClipLimits;

use super::{
    audio::resampler, open::open_input, poster::write_thumbnail, video::share, MediaError,
};

/// Motion and static regions are measured on frames this small...
pub const THUMB_WIDTH: u32 = 160;
pub const THUMB_HEIGHT: u32 = 90;
/// ...sampled this often.
const SAMPLES_PER_SECOND: f64 = 8.0;
const MEASURE_RATE: i32 = 8_000;
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

fn window_of(time: f64) -> usize {
    (time.max(0.0) / ANALYSIS_WINDOW_SECONDS) as usize
}

/// A thumbnail to take while analysing: the picture shown `at` seconds in (or the last one
/// sampled, if the clip ends sooner), turned upright.
pub struct Still<'a> {
    pub at: f64,
    pub rotation: u32,
    pub path: &'a Path,
}

pub fn analyze(
    path: &Path,
    limits: &ClipLimits,
    still: Option<Still<'_>>,
) -> Result<ClipMeasurements, MediaError> {
    let mut input = open_input(path)?;
    let stream = input
        .streams()
        .best(media::Type::Video)
        .ok_or_else(|| MediaError::Invalid("has no video".into()))?;
    let mut video = VideoMeter::open(&stream, still.as_ref().map(|s| s.at))?;
    let mut audio = match input.streams().best(media::Type::Audio) {
        Some(stream) => Some(AudioMeter::open(&stream, &video)?),
        None => None,
    };
    let mut reality = Reality::new(limits);
    for (stream, packet) in input.packets() {
        if stream.index() == video.index {
            video.packet(Some(&packet), &mut reality)?;
        } else if let Some(audio) = audio.as_mut().filter(|a| a.index == stream.index()) {
            audio.packet(Some(&packet), limits)?;
        }
    }
    video.packet(None, &mut reality)?;
    if let Some(audio) = audio.as_mut() {
        audio.packet(None, limits)?;
    }
    let windows = reality.windows();
    if let (Some(still), Some(picture)) = (still, video.still.take()) {
        write_thumbnail(&picture, still.rotation, still.path)?;
    }
    let (motion, change_map) = video.finish(windows);
    Ok(ClipMeasurements {
        duration_seconds: reality.duration_seconds(),
        loudness_db: audio.map_or_else(|| vec![SILENCE_DB; windows], |a| a.finish(windows)),
        motion,
        change_map,
    })
}

/// Hands a packet (`None`: the end of the stream) to a decoder; false when it refused it.
fn feed(decoder: &mut ffmpeg_next::decoder::Opened, packet: Option<&ffmpeg_next::Packet>) -> bool {
    match packet {
        Some(packet) => decoder.send_packet(packet),
        None => decoder.send_eof(),
    }
    .is_ok()
}

/// How busy the picture is: small grey thumbnails sampled a few times a second, compared
/// with the previous one.
struct VideoMeter {
    index: usize,
    time_base: f64,
    /// The stream's start, which counts as time zero.
    origin: i64,
    decoder: ffmpeg_next::decoder::Video,
    decoded: frame::Video,
    scaler: Option<scaling::Context>,
    previous: Option<frame::Video>,
    next_sample: f64,
    motion_sum: Windows<f64>,
    motion_count: Windows<u32>,
    change_sum: Vec<u32>,
    change_count: u32,
    /// When a still is wanted: the time it is taken at, and whether it has been.
    still_at: Option<(f64, bool)>,
    still: Option<frame::Video>,
}

impl VideoMeter {
    fn open(stream: &ffmpeg_next::Stream, still_at: Option<f64>) -> Result<Self, MediaError> {
        let mut context = codec::context::Context::from_parameters(stream.parameters())?;
        context.set_threading(codec::threading::Config {
            kind: codec::threading::Type::Frame,
            count: 0,
            ..Default::default()
        });
        // Thumbnails need no bit-exact decoding: allow the decoders' speed shortcuts.
        // SAFETY: plain field on a context not yet opened.
        unsafe { (*context.as_mut_ptr()).flags2 |= ffi::AV_CODEC_FLAG2_FAST };
        let mut decoder = context.decoder().video()?;
        decoder.skip_loop_filter(Discard::All);
        decoder.skip_frame(Discard::NonReference);
        Ok(Self {
            index: stream.index(),
            time_base: f64::from(stream.time_base()),
            origin: match stream.start_time() {
                ffi::AV_NOPTS_VALUE => 0,
                start => start,
            },
            decoder,
            decoded: frame::Video::empty(),
            scaler: None,
            previous: None,
            next_sample: 0.0,
            motion_sum: Windows::default(),
            motion_count: Windows::default(),
            change_sum: vec![0u32; (THUMB_WIDTH * THUMB_HEIGHT) as usize],
            change_count: 0,
            still_at: still_at.map(|at| (at, false)),
            still: None,
        })
    }

    /// Decodes a packet (`None`: the end of the stream) and measures what comes out.
    fn packet(
        &mut self,
        packet: Option<&ffmpeg_next::Packet>,
        reality: &mut Reality,
    ) -> Result<(), MediaError> {
        if !feed(&mut self.decoder, packet) {
            return Ok(());
        }
        while self.decoder.receive_frame(&mut self.decoded).is_ok() {
            let time = self
                .decoded
                .timestamp()
                .map_or(0.0, |ts| (ts - self.origin) as f64 * self.time_base);
            reality.video_frame(&self.decoded, time)?;
            if time + 1e-6 >= self.next_sample {
                self.next_sample = time + 1.0 / SAMPLES_PER_SECOND;
                self.sample(time)?;
            }
        }
        Ok(())
    }

    fn sample(&mut self, time: f64) -> Result<(), MediaError> {
        let decoded = &self.decoded;
        let scaler = match self.scaler.as_mut() {
            Some(s) => s,
            None => self.scaler.insert(scaling::Context::get(
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
        if let Some((at, taken @ false)) = self.still_at.as_mut() {
            // A new reference, not a copy; the newest sample until the wanted time.
            self.still = Some(share(decoded)?);
            *taken = time + 1e-6 >= *at;
        }
        if let Some(before) = &self.previous {
            let window = window_of(time);
            *self.motion_sum.at(window) +=
                accumulate_difference(before, &thumb, &mut self.change_sum);
            *self.motion_count.at(window) += 1;
            self.change_count += 1;
        }
        self.previous = Some(thumb);
        Ok(())
    }

    /// Mean motion per window, and the mean change of each thumbnail pixel.
    fn finish(self, windows: usize) -> (Vec<f64>, Vec<f32>) {
        let sums = self.motion_sum.finish(windows);
        let counts = self.motion_count.finish(windows);
        let motion = sums
            .iter()
            .zip(&counts)
            .map(|(&sum, &n)| if n == 0 { 0.0 } else { sum / f64::from(n) })
            .collect();
        let samples = self.change_count.max(1) as f32;
        let change_map = self
            .change_sum
            .iter()
            .map(|&sum| sum as f32 / samples)
            .collect();
        (motion, change_map)
    }
}

/// How loud each window is: the sound resampled to 8 kHz mono, its energy summed.
struct AudioMeter {
    index: usize,
    decoder: ffmpeg_next::decoder::Audio,
    graph: ffmpeg_next::filter::Graph,
    /// The video's start, in the audio's time base: audio times count from it.
    origin: i64,
    decoded: frame::Audio,
    measured: frame::Audio,
    energy: Windows<f64>,
    samples: Windows<u64>,
}

impl AudioMeter {
    fn open(stream: &ffmpeg_next::Stream, video: &VideoMeter) -> Result<Self, MediaError> {
        let decoder = codec::context::Context::from_parameters(stream.parameters())?
            .decoder()
            .audio()?;
        let origin =
            (video.origin as f64 * video.time_base / f64::from(stream.time_base())).round() as i64;
        let graph = resampler(
            &decoder,
            stream.time_base(),
            &format!("aresample={MEASURE_RATE},aformat=sample_fmts=flt:channel_layouts=mono"),
        )?;
        Ok(Self {
            index: stream.index(),
            decoder,
            graph,
            origin,
            decoded: frame::Audio::empty(),
            measured: frame::Audio::empty(),
            energy: Windows::default(),
            samples: Windows::default(),
        })
    }

    /// Decodes a packet (`None`: the end of the stream) and measures what comes out.
    fn packet(
        &mut self,
        packet: Option<&ffmpeg_next::Packet>,
        limits: &ClipLimits,
    ) -> Result<(), MediaError> {
        if !feed(&mut self.decoder, packet) {
            return Ok(());
        }
        while self.decoder.receive_frame(&mut self.decoded).is_ok() {
            if let Some(pts) = self.decoded.timestamp() {
                self.decoded.set_pts(Some(pts - self.origin));
            }
            self.graph
                .get("in")
                .expect("source exists")
                .source()
                .add(&self.decoded)?;
            self.drain(limits)?;
        }
        Ok(())
    }

    fn drain(&mut self, limits: &ClipLimits) -> Result<(), MediaError> {
        let mut sink = self.graph.get("out").expect("sink exists");
        while sink.sink().frame(&mut self.measured).is_ok() {
            let start = self.measured.pts().unwrap_or(0);
            let plane = self.measured.plane::<f32>(0);
            let end = (start + plane.len() as i64) as f64 / f64::from(MEASURE_RATE);
            check_duration(limits, end)?;
            for (i, sample) in plane.iter().enumerate() {
                let window = window_of((start + i as i64) as f64 / f64::from(MEASURE_RATE));
                *self.energy.at(window) += f64::from(*sample) * f64::from(*sample);
                *self.samples.at(window) += 1;
            }
        }
        Ok(())
    }

    /// RMS level per window, in dBFS.
    fn finish(self, windows: usize) -> Vec<f64> {
        let energy = self.energy.finish(windows);
        let samples = self.samples.finish(windows);
        energy
            .iter()
            .zip(&samples)
            .map(|(&e, &n)| {
                if n == 0 || e <= 0.0 {
                    SILENCE_DB
                } else {
                    (10.0 * (e / n as f64).log10()).max(SILENCE_DB)
                }
            })
            .collect()
    }
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
