//! The measuring itself: one pass over one stretch of a clip. Pictures are sampled on a
//! fixed grid (`grid`), so a stretch that starts on a grid point samples
//! exactly the frames a pass over the whole clip would; what one stretch cannot know (the
//! change from the previous stretch's last sample) is added when the stretches are joined.

use ffmpeg_next::{
    codec, ffi, media,
    software::scaling,
    util::{format::Pixel, frame},
    Discard,
};
use planning::montage::ANALYSIS_WINDOW_SECONDS;
use settings::ClipLimits;

use super::grid::{grid_after, TIME_SLACK};
use super::{stretch::Stretch, SILENCE_DB, THUMB_HEIGHT, THUMB_WIDTH};
use crate::media::{audio::resampler, open::open_input, video::share, MediaError};

const MEASURE_RATE: i32 = 8_000;

fn window_of(time: f64) -> usize {
    (time.max(0.0) / ANALYSIS_WINDOW_SECONDS) as usize
}

/// What one stretch measured, to be joined with its neighbours in clip order.
pub struct Piece {
    pub motion_sum: Windows<f64>,
    pub motion_count: Windows<u32>,
    pub change_sum: Vec<u32>,
    pub change_count: u32,
    /// The first and last thumbnails sampled, the first with its time.
    pub first: Option<(f64, frame::Video)>,
    pub last: Option<frame::Video>,
    /// The newest sampled picture up to the still's time, and whether it reached it.
    pub still: Option<(frame::Video, bool)>,
    pub frames: u64,
    pub video_end: f64,
    /// The sound's energy and sample count per window (the first stretch only).
    pub sound: Option<(Windows<f64>, Windows<u64>)>,
}

impl Piece {
    /// Adds the stretch that follows this one (or this run of them) in the clip.
    pub fn append(&mut self, next: Piece) {
        // The change from this stretch's last sample to the next one's first, which
        // neither stretch could measure alone.
        if let (Some(before), Some((time, first))) = (&self.last, &next.first) {
            *self.motion_sum.at(window_of(*time)) +=
                accumulate_difference(before, first, &mut self.change_sum);
            *self.motion_count.at(window_of(*time)) += 1;
            self.change_count += 1;
        }
        self.motion_sum.add(next.motion_sum);
        self.motion_count.add(next.motion_count);
        for (sum, add) in self.change_sum.iter_mut().zip(&next.change_sum) {
            *sum += add;
        }
        self.change_count += next.change_count;
        self.first = self.first.take().or(next.first);
        self.last = next.last.or(self.last.take());
        self.frames += next.frames;
        self.video_end = self.video_end.max(next.video_end);
        self.sound = self.sound.take().or(next.sound);
        // The first stretch that reached the still's time has it; else the newest sample.
        if !self.still.as_ref().is_some_and(|(_, taken)| *taken) {
            self.still = next.still.or(self.still.take());
        }
    }
}

/// Measures one stretch of the clip at `path` with a decoder of `threads` threads (0: as
/// many as libavcodec likes). The first stretch also measures the whole clip's sound.
pub fn measure_stretch(
    path: &std::path::Path,
    limits: &ClipLimits,
    stretch: &Stretch,
    still_at: Option<f64>,
    threads: usize,
) -> Result<Piece, MediaError> {
    let mut input = open_input(path)?;
    let stream = input
        .streams()
        .best(media::Type::Video)
        .ok_or_else(|| MediaError::Invalid("has no video".into()))?;
    let mut video = VideoMeter::open(&stream, stretch, still_at, threads)?;
    let mut audio = match input.streams().best(media::Type::Audio) {
        Some(stream) if stretch.measures_sound() => Some(AudioMeter::open(&stream, &video)?),
        _ => None,
    };
    stretch.seek(&mut input)?;
    let mut reality = Reality::new(limits, stretch);
    for (stream, packet) in input.packets() {
        if stream.index() == video.index {
            video.packet(Some(&packet), &mut reality)?;
            if video.done && audio.is_none() {
                break;
            }
        } else if let Some(audio) = audio.as_mut().filter(|a| a.index == stream.index()) {
            audio.packet(Some(&packet), limits)?;
        }
    }
    video.packet(None, &mut reality)?;
    if let Some(audio) = audio.as_mut() {
        audio.packet(None, limits)?;
    }
    Ok(video.finish(reality, audio.map(|a| (a.energy, a.samples))))
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
    /// Frames from this on belong to the next stretch.
    until: Option<f64>,
    /// A frame at or past `until` came out: this stretch is measured.
    done: bool,
    next_sample: f64,
    piece: Piece,
    /// When a still is wanted, the time it is taken at.
    still_at: Option<f64>,
}

impl VideoMeter {
    fn open(
        stream: &ffmpeg_next::Stream,
        stretch: &Stretch,
        still_at: Option<f64>,
        threads: usize,
    ) -> Result<Self, MediaError> {
        let mut context = codec::context::Context::from_parameters(stream.parameters())?;
        context.set_threading(codec::threading::Config {
            kind: codec::threading::Type::Frame,
            count: threads,
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
            until: stretch.until,
            done: false,
            next_sample: stretch.from,
            piece: Piece {
                motion_sum: Windows::default(),
                motion_count: Windows::default(),
                change_sum: vec![0u32; (THUMB_WIDTH * THUMB_HEIGHT) as usize],
                change_count: 0,
                first: None,
                last: None,
                still: None,
                frames: 0,
                video_end: 0.0,
                sound: None,
            },
            // A stretch that ends before the still's time cannot hold it.
            still_at: still_at.filter(|at| stretch.until.is_none_or(|until| *at < until)),
        })
    }

    /// Decodes a packet (`None`: the end of the stream) and measures what comes out.
    fn packet(
        &mut self,
        packet: Option<&ffmpeg_next::Packet>,
        reality: &mut Reality,
    ) -> Result<(), MediaError> {
        if self.done || !feed(&mut self.decoder, packet) {
            return Ok(());
        }
        while self.decoder.receive_frame(&mut self.decoded).is_ok() {
            let time = self
                .decoded
                .timestamp()
                .map_or(0.0, |ts| (ts - self.origin) as f64 * self.time_base);
            if self.until.is_some_and(|until| time + TIME_SLACK >= until) {
                self.done = true;
                return Ok(());
            }
            if reality.video_frame(&self.decoded, time)? && time + TIME_SLACK >= self.next_sample {
                self.next_sample = grid_after(time);
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
        let piece = &mut self.piece;
        if let Some(at) = self.still_at {
            if !piece.still.as_ref().is_some_and(|(_, taken)| *taken) {
                // A new reference, not a copy; the newest sample until the wanted time.
                piece.still = Some((share(decoded)?, time + TIME_SLACK >= at));
            }
        }
        match &piece.last {
            Some(before) => {
                *piece.motion_sum.at(window_of(time)) +=
                    accumulate_difference(before, &thumb, &mut piece.change_sum);
                *piece.motion_count.at(window_of(time)) += 1;
                piece.change_count += 1;
            }
            None => piece.first = Some((time, share(&thumb)?)),
        }
        piece.last = Some(thumb);
        Ok(())
    }

    fn finish(mut self, reality: Reality, sound: Option<(Windows<f64>, Windows<u64>)>) -> Piece {
        self.piece.frames = reality.frames;
        self.piece.video_end = reality.video_end;
        self.piece.sound = sound;
        self.piece
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
}

/// RMS level per window, in dBFS, from each window's energy and sample count.
pub fn loudness(energy: Windows<f64>, samples: Windows<u64>, windows: usize) -> Vec<f64> {
    let energy = energy.finish(windows);
    let samples = samples.finish(windows);
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
pub struct Windows<T>(Vec<T>);

impl<T> Default for Windows<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<T: Default + Clone + std::ops::AddAssign> Windows<T> {
    pub fn at(&mut self, window: usize) -> &mut T {
        if window >= self.0.len() {
            self.0.resize(window + 1, T::default());
        }
        &mut self.0[window]
    }

    /// Adds another stretch's sums, window by window.
    pub fn add(&mut self, other: Self) {
        for (window, value) in other.0.into_iter().enumerate() {
            *self.at(window) += value;
        }
    }

    /// Exactly `windows` entries: later ones (a stray audio tail) fold into the last.
    pub fn finish(mut self, windows: usize) -> Vec<T> {
        self.0.resize(self.0.len().max(windows), T::default());
        let tail: Vec<T> = self.0.drain(windows..).collect();
        for extra in tail {
            self.0[windows - 1] += extra;
        }
        self.0
    }
}

/// What decoding actually finds in one stretch, checked against the limits as it goes: a
/// header can claim anything, so the frames themselves are measured.
struct Reality {
    limits: ClipLimits,
    /// Frames before this belong to the previous stretch (the first stretch takes all).
    from: Option<f64>,
    frames: u64,
    video_end: f64,
}

impl Reality {
    fn new(limits: &ClipLimits, stretch: &Stretch) -> Self {
        Self {
            limits: *limits,
            from: (stretch.from > 0.0).then_some(stretch.from),
            frames: 0,
            video_end: 0.0,
        }
    }

    /// Checks a decoded frame; true when it is this stretch's to measure.
    fn video_frame(&mut self, frame: &frame::Video, time: f64) -> Result<bool, MediaError> {
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
        if self.from.is_some_and(|from| time + TIME_SLACK < from) {
            return Ok(false);
        }
        self.frames += 1;
        self.video_end = self.video_end.max(time);
        check_duration(limits, time)?;
        check_frame_rate(
            limits,
            self.frames,
            self.video_end - self.from.unwrap_or(0.0),
        )?;
        Ok(true)
    }
}

/// Refuses `frames` frames in a stretch of `seconds` (give or take a second) at more than
/// the frame-rate limit.
pub fn check_frame_rate(limits: &ClipLimits, frames: u64, seconds: f64) -> Result<(), MediaError> {
    if frames as f64 > limits.max_fps * (seconds + 1.0) {
        return Err(MediaError::Invalid(format!(
            "holds more frames than {} per second",
            limits.max_fps
        )));
    }
    Ok(())
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
