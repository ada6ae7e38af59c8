//! Renders a planned montage: one decode per segment, every output fed from that decode.

use std::path::PathBuf;

use ffmpeg_next::{self as ffmpeg, codec, ffi, format, media, util::frame, Packet};
use shared::{
    jobs::OutputFormat,
    montage::{Plan, Segment, OUTPUT_FPS, SAMPLES_PER_FRAME, SAMPLE_RATE},
    styles::StylePreset,
};

pub use super::output::EncoderSettings;
use super::{
    audio::{frame_pts, AacEncoder, SegmentAudio},
    output::OutputFile,
    probe::ClipInfo,
    sequence::{AudioSequencer, VideoSequencer},
    video::{FrameSelector, VideoGraph},
    MediaError,
};

pub struct ClipSource {
    pub path: PathBuf,
    pub info: ClipInfo,
}

pub struct OutputTarget {
    pub format: OutputFormat,
    pub path: PathBuf,
}

#[derive(Debug)]
pub struct RenderedOutput {
    pub format: OutputFormat,
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    pub duration_seconds: f64,
}

/// How far past a segment's end the demuxer reads for late audio before giving up on it.
const AUDIO_LAG_SECONDS: f64 = 2.0;

/// Renders `plan` of `clips` in `style` into every target. `progress` receives the
/// fraction done.
pub fn render(
    clips: &[ClipSource],
    plan: &Plan,
    style: &StylePreset,
    targets: &[OutputTarget],
    settings: &EncoderSettings,
    progress: &mut dyn FnMut(f64),
) -> Result<Vec<RenderedOutput>, MediaError> {
    let mut aac = AacEncoder::new()?;
    let mut outputs = targets
        .iter()
        .map(|t| OutputFile::create(&t.path, t.format.dimensions(), &aac, settings))
        .collect::<Result<Vec<_>, _>>()?;
    let mut timeline = Timeline {
        video: VideoSequencer::new(plan, style, outputs.len()),
        audio: AudioSequencer::new(plan, style),
        grade: style.grade.filter(),
    };
    let total_frames: u64 = plan.segments.iter().map(|s| u64::from(s.frames)).sum();
    let mut frames_done = 0u64;
    for (index, segment) in plan.segments.iter().enumerate() {
        let clip = &clips[segment.clip];
        render_segment(
            clip,
            index,
            segment,
            &mut outputs,
            &mut aac,
            &mut timeline,
            &mut |done| progress((frames_done + u64::from(done)) as f64 / total_frames as f64),
        )
        .map_err(|err| match err {
            MediaError::Invalid(why) => {
                MediaError::Invalid(format!("Clip {} {why}", segment.clip + 1))
            }
            other => other,
        })?;
        frames_done += u64::from(segment.frames);
    }
    let audio_time_base = aac.time_base();
    aac.finish(&mut |packet: &Packet| {
        outputs
            .iter_mut()
            .try_for_each(|o| o.write_audio(packet, audio_time_base))
    })?;
    let duration_seconds = plan.output_frames() as f64 / f64::from(OUTPUT_FPS);
    targets
        .iter()
        .zip(outputs)
        .map(|(target, output)| {
            let (width, height) = output.size();
            let path = output.finish()?;
            Ok(RenderedOutput {
                format: target.format,
                path,
                width,
                height,
                duration_seconds,
            })
        })
        .collect()
}

/// What joins segments: the sequencers and the style's colour grade.
struct Timeline {
    video: VideoSequencer,
    audio: AudioSequencer,
    grade: Option<String>,
}

fn render_segment(
    clip: &ClipSource,
    segment_index: usize,
    segment: &Segment,
    outputs: &mut [OutputFile],
    aac: &mut AacEncoder,
    timeline: &mut Timeline,
    progress: &mut dyn FnMut(u32),
) -> Result<(), MediaError> {
    let mut input = format::input(&clip.path)
        .map_err(|e| MediaError::Invalid(format!("could not be reopened ({e})")))?;
    let video_stream = input
        .streams()
        .best(media::Type::Video)
        .ok_or_else(|| MediaError::Invalid("has no video".into()))?;
    let video_index = video_stream.index();
    let video_time_base = f64::from(video_stream.time_base());
    let origin = match video_stream.start_time() {
        ffi::AV_NOPTS_VALUE => 0.0,
        start => start as f64 * video_time_base,
    };
    let mut video_context = codec::context::Context::from_parameters(video_stream.parameters())?;
    video_context.set_threading(codec::threading::Config {
        kind: codec::threading::Type::Frame,
        count: 0,
        ..Default::default()
    });
    let mut video_decoder = video_context.decoder().video()?;

    let audio = if clip.info.has_audio {
        input.streams().best(media::Type::Audio)
    } else {
        None
    };
    let audio_index = audio.as_ref().map(|s| s.index());
    let audio_time_base = audio
        .as_ref()
        .map(|s| s.time_base())
        .unwrap_or(ffmpeg::Rational(1, SAMPLE_RATE as i32));
    let mut audio_decoder = match &audio {
        Some(stream) => Some(
            codec::context::Context::from_parameters(stream.parameters())?
                .decoder()
                .audio()?,
        ),
        None => None,
    };
    let origin_in_audio = (origin / f64::from(audio_time_base)).round() as i64;
    let mut segment_audio = SegmentAudio::new(
        audio_decoder.as_ref(),
        audio_time_base,
        (segment.start_seconds * f64::from(SAMPLE_RATE)).round() as i64,
        (segment.frames * SAMPLES_PER_FRAME) as usize,
    )?;

    if segment.start_seconds > 0.0 {
        let target = ((origin + segment.start_seconds) * f64::from(ffi::AV_TIME_BASE)) as i64;
        // Lands on the keyframe at or before the target; decoding then walks up to it.
        if let Err(err) = input.seek(target, ..target) {
            tracing::debug!(error = %err, "seek failed; decoding from the start");
        }
    }

    let sizes: Vec<(u32, u32)> = outputs.iter().map(OutputFile::size).collect();
    let mut graph: Option<VideoGraph> = None;
    let mut scaled = frame::Video::empty();
    let mut emit = |picked: &mut frame::Video, slot: u32| -> Result<(), MediaError> {
        let graph = match graph.as_mut() {
            Some(graph) => graph,
            None => graph.insert(VideoGraph::new(
                picked,
                clip.info.rotation,
                timeline.grade.as_deref(),
                &sizes,
            )?),
        };
        graph.push(picked, i64::from(slot))?;
        for (index, output) in outputs.iter_mut().enumerate() {
            while graph.pull(index, &mut scaled) {
                timeline.video.push(
                    index,
                    &mut scaled,
                    segment_index,
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
    let segment_end = segment.start_seconds + segment.duration_seconds();
    let mut audio_clock = AudioClock {
        origin: origin_in_audio,
        expected: 0,
    };
    for (stream, packet) in input.packets() {
        let index = stream.index();
        if index == video_index && !selector.is_done() {
            // A corrupt packet loses a frame, not the job; the selector repeats its neighbour.
            if video_decoder.send_packet(&packet).is_ok() {
                drain_video(
                    &mut video_decoder,
                    &mut selector,
                    video_time_base,
                    origin,
                    &mut emit,
                )?;
            }
        } else if Some(index) == audio_index && !segment_audio.is_complete() {
            if let Some(decoder) = audio_decoder.as_mut() {
                if decoder.send_packet(&packet).is_ok() {
                    drain_audio(decoder, &mut segment_audio, &mut audio_clock)?;
                }
            }
        }
        let packet_time = packet.pts().map_or(0.0, |pts| {
            pts as f64 * f64::from(stream.time_base()) - origin
        });
        if selector.is_done()
            && (segment_audio.is_complete() || packet_time > segment_end + AUDIO_LAG_SECONDS)
        {
            break;
        }
    }
    if !selector.is_done() {
        let _ = video_decoder.send_eof();
        drain_video(
            &mut video_decoder,
            &mut selector,
            video_time_base,
            origin,
            &mut emit,
        )?;
        selector.finish(&mut emit)?;
    }
    if let Some(decoder) = audio_decoder
        .as_mut()
        .filter(|_| !segment_audio.is_complete())
    {
        let _ = decoder.send_eof();
        drain_audio(decoder, &mut segment_audio, &mut audio_clock)?;
    }
    let (left, right) = segment_audio.finish()?;
    let (left, right) = timeline.audio.push(segment_index, left, right);
    let time_base = aac.time_base();
    aac.push(&left, &right, &mut |packet: &Packet| {
        outputs
            .iter_mut()
            .try_for_each(|o| o.write_audio(packet, time_base))
    })?;
    Ok(())
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
    while decoder.receive_frame(&mut decoded).is_ok() {
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
