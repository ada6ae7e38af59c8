//! Renders a planned montage: the sound first (an audio-only pass, cheap, so the whole
//! montage can be loudness-normalised before encoding), then the picture with one video
//! decode per segment feeding every output, with the sound interleaved segment by segment.

use std::{
    path::PathBuf,
    sync::atomic::{AtomicBool, Ordering},
};

use domain::jobs::OutputFormat;
use ffmpeg_next::{self as ffmpeg, codec, decoder, ffi, format, media, util::frame, Packet};
use planning::hud::Crop;
use planning::montage::{Plan, Segment, OUTPUT_FPS, SAMPLES_PER_FRAME, SAMPLE_RATE};
use planning::styles::StylePreset;

pub use super::output::EncoderSettings;
pub use super::video::Watermark;
use super::{
    audio::{frame_pts, AacEncoder, SegmentAudio},
    loudness,
    open::open_input,
    output::OutputFile,
    probe::ClipInfo,
    sequence::{AudioSequencer, VideoSequencer},
    video::{FrameSelector, VideoGraph},
    MediaError,
};

pub struct ClipSource {
    pub path: PathBuf,
    pub info: ClipInfo,
    /// Cropped off every frame first (HUD removal).
    pub crop: Option<Crop>,
}

pub struct OutputTarget {
    pub format: OutputFormat,
    pub path: PathBuf,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RenderedOutput {
    pub format: OutputFormat,
    pub path: PathBuf,
    pub poster_path: PathBuf,
    pub width: u32,
    pub height: u32,
    pub duration_seconds: f64,
}

/// Renders `montage` into every target. `stop` ends it early (with
/// [`MediaError::Stopped`]); `progress` receives the fraction done.
/// What to render: the clips, the plan over them, and the finish.
pub struct Montage<'a> {
    pub clips: &'a [ClipSource],
    pub plan: &'a Plan,
    pub style: &'a StylePreset,
    pub watermark: Option<&'a Watermark>,
}

pub fn render(
    montage: &Montage<'_>,
    targets: &[OutputTarget],
    settings: &EncoderSettings,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(f64),
) -> Result<Vec<RenderedOutput>, MediaError> {
    let Montage {
        clips,
        plan,
        style,
        watermark,
    } = *montage;
    let (left, right) = montage_audio(clips, plan, style)?;
    let mut soundtrack = Soundtrack {
        aac: AacEncoder::new()?,
        left,
        right,
        sent: 0,
    };
    let mut outputs = open_outputs(targets, plan, &soundtrack.aac, settings)?;
    let mut sequencer = VideoSequencer::new(plan, style, outputs.len());
    let grade = style.grade.filter();
    let total_frames: u64 = plan.segments.iter().map(|s| u64::from(s.frames)).sum();
    let mut frames_done = 0u64;
    for (index, segment) in plan.segments.iter().enumerate() {
        let mut pictures = SegmentPictures {
            index,
            segment,
            grade: grade.as_deref(),
            watermark,
            sequencer: &mut sequencer,
            stop,
        };
        render_video(
            &clips[segment.clip],
            &mut pictures,
            &mut outputs,
            &mut |done| progress((frames_done + u64::from(done)) as f64 / total_frames as f64),
        )
        .map_err(naming(segment))?;
        frames_done += u64::from(segment.frames);
        // Sound up to the last finished frame, so the files stay interleaved.
        let upto = (sequencer.emitted() * u64::from(SAMPLES_PER_FRAME)) as usize;
        soundtrack.send(Some(upto), &mut outputs)?;
    }
    soundtrack.send(None, &mut outputs)?;
    soundtrack.finish(&mut outputs)?;
    finish_outputs(targets, plan, outputs)
}

fn open_outputs(
    targets: &[OutputTarget],
    plan: &Plan,
    aac: &AacEncoder,
    settings: &EncoderSettings,
) -> Result<Vec<OutputFile>, MediaError> {
    // A third of the way in: past any fade-in, usually in the thick of it.
    let poster_frame = plan.output_frames() / 3;
    targets
        .iter()
        .map(|t| OutputFile::create(&t.path, t.format.dimensions(), aac, settings, poster_frame))
        .collect()
}

fn finish_outputs(
    targets: &[OutputTarget],
    plan: &Plan,
    outputs: Vec<OutputFile>,
) -> Result<Vec<RenderedOutput>, MediaError> {
    let duration_seconds = plan.output_frames() as f64 / f64::from(OUTPUT_FPS);
    targets
        .iter()
        .zip(outputs)
        .map(|(target, output)| {
            let (width, height) = output.size();
            let (path, poster_path) = output.finish()?;
            Ok(RenderedOutput {
                format: target.format,
                path,
                poster_path,
                width,
                height,
                duration_seconds,
            })
        })
        .collect()
}

/// The montage's sound, encoded once and written to every output as the pictures advance.
struct Soundtrack {
    aac: AacEncoder,
    left: Vec<f32>,
    right: Vec<f32>,
    /// Samples already encoded.
    sent: usize,
}

impl Soundtrack {
    /// Encodes the samples up to `upto` (all of them when `None`) into every output.
    fn send(&mut self, upto: Option<usize>, outputs: &mut [OutputFile]) -> Result<(), MediaError> {
        let upto = upto.unwrap_or(self.left.len());
        let time_base = self.aac.time_base();
        self.aac.push(
            &self.left[self.sent..upto],
            &self.right[self.sent..upto],
            &mut |packet: &Packet| {
                outputs
                    .iter_mut()
                    .try_for_each(|o| o.write_audio(packet, time_base))
            },
        )?;
        self.sent = upto;
        Ok(())
    }

    fn finish(mut self, outputs: &mut [OutputFile]) -> Result<(), MediaError> {
        let time_base = self.aac.time_base();
        self.aac.finish(&mut |packet: &Packet| {
            outputs
                .iter_mut()
                .try_for_each(|o| o.write_audio(packet, time_base))
        })
    }
}

/// Prefixes a clip's problem with which clip it is.
fn naming(segment: &Segment) -> impl Fn(MediaError) -> MediaError {
    let clip = segment.clip + 1;
    move |err| match err {
        MediaError::Invalid(why) => MediaError::Invalid(format!("Clip {clip} {why}")),
        other => other,
    }
}

/// The montage's whole sound: each segment's audio (silence where a clip has none), joined
/// as the style asks, then loudness-normalised.
fn montage_audio(
    clips: &[ClipSource],
    plan: &Plan,
    style: &StylePreset,
) -> Result<(Vec<f32>, Vec<f32>), MediaError> {
    let samples = (plan.output_frames() * u64::from(SAMPLES_PER_FRAME)) as usize;
    let (mut left, mut right) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
    let mut sequencer = AudioSequencer::new(plan, style);
    for (index, segment) in plan.segments.iter().enumerate() {
        let (l, r) = segment_audio(&clips[segment.clip], segment).map_err(naming(segment))?;
        let (l, r) = sequencer.push(index, l, r);
        left.extend_from_slice(&l);
        right.extend_from_slice(&r);
    }
    loudness::normalize(&mut left, &mut right);
    Ok((left, right))
}

/// Where a clip's timeline starts (seconds) and the index of its video stream.
fn video_origin(input: &format::context::Input) -> Result<(usize, f64, f64), MediaError> {
    let stream = input
        .streams()
        .best(media::Type::Video)
        .ok_or_else(|| MediaError::Invalid("has no video".into()))?;
    let time_base = f64::from(stream.time_base());
    let origin = match stream.start_time() {
        ffi::AV_NOPTS_VALUE => 0.0,
        start => start as f64 * time_base,
    };
    Ok((stream.index(), time_base, origin))
}

/// Seeks to the keyframe at or before `start` seconds into the clip (decoding then walks
/// up to it). A failed seek decodes from the beginning instead.
fn seek_to(input: &mut format::context::Input, origin: f64, start: f64) {
    if start > 0.0 {
        let target = ((origin + start) * f64::from(ffi::AV_TIME_BASE)) as i64;
        if let Err(err) = input.seek(target, ..target) {
            tracing::debug!(error = %err, "seek failed; decoding from the start");
        }
    }
}

fn segment_audio(clip: &ClipSource, segment: &Segment) -> Result<(Vec<f32>, Vec<f32>), MediaError> {
    let len = (segment.frames * SAMPLES_PER_FRAME) as usize;
    let start = (segment.start_seconds * f64::from(SAMPLE_RATE)).round() as i64;
    if !clip.info.has_audio {
        return Ok((vec![0.0; len], vec![0.0; len]));
    }
    let mut input = open_input(&clip.path)?;
    let (_, _, origin) = video_origin(&input)?;
    let Some(stream) = input.streams().best(media::Type::Audio) else {
        return Ok((vec![0.0; len], vec![0.0; len]));
    };
    let (index, time_base) = (stream.index(), stream.time_base());
    let mut decoder = codec::context::Context::from_parameters(stream.parameters())?
        .decoder()
        .audio()?;
    let mut audio = SegmentAudio::new(&decoder, time_base, start, len)?;
    let mut clock = AudioClock {
        origin: (origin / f64::from(time_base)).round() as i64,
        expected: 0,
    };
    seek_to(&mut input, origin, segment.start_seconds);
    for (stream, packet) in input.packets() {
        if stream.index() == index && decoder.send_packet(&packet).is_ok() {
            drain_audio(&mut decoder, &mut audio, &mut clock)?;
            if audio.is_complete() {
                break;
            }
        }
    }
    if !audio.is_complete() {
        let _ = decoder.send_eof();
        drain_audio(&mut decoder, &mut audio, &mut clock)?;
    }
    audio.finish()
}

/// One segment's place in the montage, for the picture pass.
struct SegmentPictures<'a> {
    index: usize,
    segment: &'a Segment,
    grade: Option<&'a str>,
    watermark: Option<&'a Watermark>,
    sequencer: &'a mut VideoSequencer,
    /// Checked every frame, so a cancelled or timed-out job stops within a frame's work.
    stop: &'a AtomicBool,
}

fn render_video(
    clip: &ClipSource,
    pictures: &mut SegmentPictures<'_>,
    outputs: &mut [OutputFile],
    progress: &mut dyn FnMut(u32),
) -> Result<(), MediaError> {
    let segment = pictures.segment;
    let mut input = open_input(&clip.path)?;
    let (video_index, video_time_base, origin) = video_origin(&input)?;
    let mut decoder = open_decoder(&input, video_index)?;
    seek_to(&mut input, origin, segment.start_seconds);

    let sizes: Vec<(u32, u32)> = outputs.iter().map(OutputFile::size).collect();
    let mut graph: Option<VideoGraph> = None;
    let mut scaled = frame::Video::empty();
    let mut emit = |picked: &mut frame::Video, slot: u32| -> Result<(), MediaError> {
        if pictures.stop.load(Ordering::Relaxed) {
            return Err(MediaError::Stopped);
        }
        let graph = match graph.as_mut() {
            Some(graph) => graph,
            None => graph.insert(VideoGraph::new(
                picked,
                clip.info.rotation,
                clip.crop.as_ref(),
                pictures.grade,
                pictures.watermark,
                &sizes,
            )?),
        };
        graph.push(picked, i64::from(slot))?;
        for (index, output) in outputs.iter_mut().enumerate() {
            while graph.pull(index, &mut scaled) {
                pictures.sequencer.push(
                    index,
                    &mut scaled,
                    pictures.index,
                    slot,
                    segment.frames,
                    &mut |f| output.encode_video(f),
                )?;
            }
        }
        if slot.is_multiple_of(OUTPUT_FPS) {
            progress(slot);
        }
        Ok(())
    };

    let mut selector = FrameSelector::new(segment.start_seconds, segment.frames);
    // Decodes what the decoder holds; whether the segment has all its frames.
    let mut drain = |decoder: &mut decoder::Video| {
        drain_video(decoder, &mut selector, video_time_base, origin, &mut emit)
            .map(|()| selector.is_done())
    };
    for (stream, packet) in input.packets() {
        // A corrupt packet loses a frame, not the job; the selector repeats its neighbour.
        if stream.index() == video_index
            && decoder.send_packet(&packet).is_ok()
            && drain(&mut decoder)?
        {
            return Ok(());
        }
    }
    let _ = decoder.send_eof();
    drain(&mut decoder)?;
    selector.finish(&mut emit)
}

/// A frame-threaded decoder for the clip's video stream.
fn open_decoder(
    input: &format::context::Input,
    index: usize,
) -> Result<decoder::Video, MediaError> {
    let parameters = input
        .stream(index)
        .expect("index from the same input")
        .parameters();
    let mut context = codec::context::Context::from_parameters(parameters)?;
    context.set_threading(codec::threading::Config {
        kind: codec::threading::Type::Frame,
        count: 0,
        ..Default::default()
    });
    Ok(context.decoder().video()?)
}

/// Hands every frame the decoder has ready to the selector, timed from the clip's start.
fn drain_video(
    decoder: &mut ffmpeg::decoder::Video,
    selector: &mut FrameSelector,
    time_base: f64,
    origin: f64,
    emit: &mut impl FnMut(&mut frame::Video, u32) -> Result<(), MediaError>,
) -> Result<(), MediaError> {
    let mut decoded = frame::Video::empty();
    while !selector.is_done() && decoder.receive_frame(&mut decoded).is_ok() {
        let time = decoded
            .timestamp()
            .map_or(0.0, |ts| ts as f64 * time_base - origin);
        selector.offer(
            std::mem::replace(&mut decoded, frame::Video::empty()),
            time,
            &mut *emit,
        )?;
    }
    Ok(())
}

/// Audio timestamps relative to the clip's start, continuing from the previous frame where
/// a frame has none.
struct AudioClock {
    origin: i64,
    expected: i64,
}

fn drain_audio(
    decoder: &mut ffmpeg::decoder::Audio,
    segment: &mut SegmentAudio,
    clock: &mut AudioClock,
) -> Result<(), MediaError> {
    let mut decoded = frame::Audio::empty();
    while decoder.receive_frame(&mut decoded).is_ok() {
        let pts = frame_pts(&decoded, clock.expected);
        clock.expected = pts + decoded.samples() as i64;
        decoded.set_pts(Some(pts - clock.origin));
        segment.push(&decoded)?;
    }
    Ok(())
}
