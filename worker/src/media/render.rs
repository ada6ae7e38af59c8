//! Renders a planned montage: the sound first (an audio-only pass, cheap, so the whole
//! montage can be loudness-normalised before encoding), then the picture with one video
//! decode per segment feeding every output, with the sound interleaved segment by segment.

use std::{
    path::PathBuf,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use domain::facecam::Facecam;
use domain::jobs::OutputFormat;
use domain::timings::{StageTimings, TimedStage};
use ffmpeg_next::{self as ffmpeg, codec, media, util::frame, Packet};
use planning::hud::Crop;
use planning::montage::{FrameRate, Plan, Segment, SAMPLE_RATE};
use planning::styles::StylePreset;

pub use super::layout::{Caption, Watermark};
pub use super::output::EncoderSettings;
use super::{
    audio::{frame_pts, AacEncoder, SegmentAudio},
    layout::{Layout, Picture, TITLE_SECONDS},
    loudness,
    music::{mix_under, MusicBed},
    open::open_input,
    output::{OutputFile, OutputThread},
    probe::ClipInfo,
    reader::{seek_to, video_origin, ClipReader},
    sequence::{AudioSequencer, VideoSequencer},
    spawn_named,
    video::{make_writable, share, shift_chroma, upright_chain, FilterChain, FrameSelector},
    MediaError,
};

pub struct ClipSource {
    pub path: PathBuf,
    pub info: ClipInfo,
    /// Cropped off every frame first (HUD removal).
    pub crop: Option<Crop>,
    /// Where the streamer's camera sits: portrait outputs split this clip's pictures.
    pub facecam: Option<Facecam>,
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

/// What to render: the clips, the plan over them, and the finish.
pub struct Montage<'a> {
    pub clips: &'a [ClipSource],
    pub plan: &'a Plan,
    pub style: &'a StylePreset,
    pub watermark: Option<&'a Watermark>,
    /// Music under the game sound, if the job asked for it.
    pub music: Option<&'a MusicBed>,
    /// The title over the first seconds, if the job has one.
    pub title: Option<&'a Caption>,
}

/// How to run a render: encoder settings, the stop flag (checked every frame; a raised
/// one ends the render with [`MediaError::Stopped`]) and where its stage times go.
pub struct RenderRun<'a> {
    pub settings: &'a EncoderSettings,
    pub stop: &'a AtomicBool,
    pub timings: &'a mut StageTimings,
}

/// Renders `montage` into every target; `progress` receives the fraction done.
pub fn render(
    montage: &Montage<'_>,
    targets: &[OutputTarget],
    run: RenderRun<'_>,
    progress: &mut dyn FnMut(f64),
) -> Result<Vec<RenderedOutput>, MediaError> {
    let Montage {
        clips,
        plan,
        style,
        music,
        ..
    } = *montage;
    std::thread::scope(|scope| {
        // The sound is made on its own thread while the pictures start: it is first needed
        // when the first segment's pictures are done.
        let making = spawn_named(scope, "soundtrack", move || {
            let started = Instant::now();
            montage_audio(clips, plan, style, music).map(|sound| (sound, started.elapsed()))
        })?;
        let soundtrack = Soundtrack {
            aac: AacEncoder::new()?,
            making: Some(making),
            left: Vec::new(),
            right: Vec::new(),
            sent: 0,
            made_in: Duration::ZERO,
        };
        render_pictures(scope, montage, targets, run, soundtrack, progress)
    })
}

/// The pictures, segment by segment, each followed by the sound up to its end. Each output
/// lays out, joins and encodes them on a thread of `scope`.
fn render_pictures<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    montage: &Montage<'_>,
    targets: &[OutputTarget],
    run: RenderRun<'_>,
    mut soundtrack: Soundtrack<'_>,
    progress: &mut dyn FnMut(f64),
) -> Result<Vec<RenderedOutput>, MediaError> {
    let Montage {
        clips, plan, style, ..
    } = *montage;
    let started = Instant::now();
    let mut outputs = open_outputs(scope, targets, montage, &soundtrack.aac, run.settings)?;
    let grade = GradeSteps::of(style);
    let total_frames: u64 = plan.segments.iter().map(|s| u64::from(s.frames)).sum();
    let mut frames_done = 0u64;
    // Consecutive segments of one clip share a reader, so the decode can carry on.
    let mut reader: Option<(usize, ClipReader)> = None;
    for (index, segment) in plan.segments.iter().enumerate() {
        if reader
            .as_ref()
            .is_none_or(|(clip, _)| *clip != segment.clip)
        {
            let opened = ClipReader::open(&clips[segment.clip].path).map_err(naming(segment))?;
            reader = Some((segment.clip, opened));
        }
        let next = plan.segments.get(index + 1);
        let mut pictures = SegmentPictures {
            index,
            segment,
            next_start: next
                .filter(|n| n.clip == segment.clip)
                .map(|n| n.start_seconds),
            grade: &grade,
            rate: plan.rate,
            stop: run.stop,
        };
        render_video(
            &clips[segment.clip],
            &mut reader.as_mut().expect("opened above").1,
            &mut pictures,
            &mut outputs,
            &mut |done| progress((frames_done + u64::from(done)) as f64 / total_frames as f64),
        )
        .map_err(naming(segment))?;
        frames_done += u64::from(segment.frames);
        // Sound up to the last finished frame, so the files stay interleaved.
        let upto =
            (plan.frames_final_through(index) * u64::from(plan.samples_per_frame())) as usize;
        soundtrack.send(Some(upto), &mut outputs)?;
    }
    soundtrack.send(None, &mut outputs)?;
    run.timings
        .add(TimedStage::Audio, soundtrack.finish(&mut outputs)?);
    let rendered = finish_outputs(targets, plan, outputs)?;
    run.timings.add(TimedStage::Video, started.elapsed());
    Ok(rendered)
}

fn open_outputs<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    targets: &[OutputTarget],
    montage: &Montage<'_>,
    aac: &AacEncoder,
    settings: &EncoderSettings,
) -> Result<Vec<OutputThread<'scope>>, MediaError> {
    let Montage {
        clips,
        plan,
        style,
        watermark,
        title,
        ..
    } = *montage;
    // On the first shot, for as long as it lasts up to the title's time.
    let title_seconds = plan.segments.first().map_or(0.0, |first| {
        first.duration_seconds(plan.rate).min(TITLE_SECONDS)
    });
    // The camera of each segment's clip, for portrait outputs.
    let facecams: Vec<Option<Facecam>> = plan
        .segments
        .iter()
        .map(|s| clips[s.clip].facecam)
        .collect();
    // A third of the way in: past any fade-in, usually in the thick of it.
    let poster_frame = plan.output_frames() / 3;
    targets
        .iter()
        .map(|t| {
            let size = t.format.dimensions();
            let output =
                OutputFile::create(&t.path, size, aac, settings, (plan.rate, poster_frame))?;
            let sequencer = VideoSequencer::new(plan, style);
            let title = title
                .map(|t| t.filter(size, title_seconds))
                .unwrap_or_default();
            let layout = Layout::new(size, watermark, &facecams, title, sequencer);
            OutputThread::spawn(scope, &format!("output-{}", t.format), output, layout)
        })
        .collect()
}

fn finish_outputs(
    targets: &[OutputTarget],
    plan: &Plan,
    outputs: Vec<OutputThread<'_>>,
) -> Result<Vec<RenderedOutput>, MediaError> {
    let duration_seconds = plan.seconds(plan.output_frames());
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

type Sound = (Vec<f32>, Vec<f32>);

/// The montage's sound, encoded once and written to every output as the pictures advance.
struct Soundtrack<'scope> {
    aac: AacEncoder,
    /// The thread making the samples, until they are first needed.
    making: Option<std::thread::ScopedJoinHandle<'scope, Result<(Sound, Duration), MediaError>>>,
    left: Vec<f32>,
    right: Vec<f32>,
    /// Samples already encoded.
    sent: usize,
    /// How long making the samples took.
    made_in: Duration,
}

impl Soundtrack<'_> {
    /// Waits for the samples the first time they are needed.
    fn samples(&mut self) -> Result<(), MediaError> {
        if let Some(making) = self.making.take() {
            let ((left, right), made_in) = making
                .join()
                .map_err(|_| MediaError::Internal("the sound thread panicked".into()))??;
            (self.left, self.right, self.made_in) = (left, right, made_in);
        }
        Ok(())
    }

    /// Encodes the samples up to `upto` (all of them when `None`) into every output.
    fn send(
        &mut self,
        upto: Option<usize>,
        outputs: &mut [OutputThread<'_>],
    ) -> Result<(), MediaError> {
        self.samples()?;
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

    /// Flushes the encoder; how long making the samples took.
    fn finish(mut self, outputs: &mut [OutputThread<'_>]) -> Result<Duration, MediaError> {
        self.samples()?;
        let time_base = self.aac.time_base();
        self.aac.finish(&mut |packet: &Packet| {
            outputs
                .iter_mut()
                .try_for_each(|o| o.write_audio(packet, time_base))
        })?;
        Ok(self.made_in)
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
/// as the style asks, over the music if any, then loudness-normalised.
fn montage_audio(
    clips: &[ClipSource],
    plan: &Plan,
    style: &StylePreset,
    music: Option<&MusicBed>,
) -> Result<(Vec<f32>, Vec<f32>), MediaError> {
    let samples = (plan.output_frames() * u64::from(plan.samples_per_frame())) as usize;
    let (mut left, mut right) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
    let mut sequencer = AudioSequencer::new(plan, style);
    for (index, segment) in plan.segments.iter().enumerate() {
        let (l, r) = segment_audio(&clips[segment.clip], segment, plan).map_err(naming(segment))?;
        let (l, r) = sequencer.push(index, l, r);
        left.extend_from_slice(&l);
        right.extend_from_slice(&r);
    }
    if let Some(bed) = music {
        mix_under(bed, &mut left, &mut right);
    }
    loudness::normalize(&mut left, &mut right);
    Ok((left, right))
}

fn segment_audio(
    clip: &ClipSource,
    segment: &Segment,
    plan: &Plan,
) -> Result<(Vec<f32>, Vec<f32>), MediaError> {
    let len = (segment.frames * plan.samples_per_frame()) as usize;
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
    /// Where the next segment starts, when it comes from the same clip.
    next_start: Option<f64>,
    grade: &'a GradeSteps,
    rate: FrameRate,
    /// Checked every frame, so a cancelled or timed-out job stops within a frame's work.
    stop: &'a AtomicBool,
}

impl SegmentPictures<'_> {
    /// Hands a reference to `frame`, the picture for `slot`, to every output.
    fn fan_out(
        &self,
        frame: &frame::Video,
        slot: u32,
        outputs: &mut [OutputThread<'_>],
    ) -> Result<(), MediaError> {
        outputs.iter_mut().try_for_each(|output| {
            output.place(Picture {
                frame: share(frame)?,
                segment: self.index,
                slot,
                len: self.segment.frames,
            })
        })
    }
}

/// A style's grade as the renderer applies it: a filter, then a shift of the chroma planes.
struct GradeSteps {
    filter: Option<String>,
    chroma_shift: Option<(i16, i16)>,
}

impl GradeSteps {
    fn of(style: &StylePreset) -> Self {
        Self {
            filter: style.grade.filter(),
            chroma_shift: style.grade.chroma_shift(),
        }
    }
}

/// Makes a clip's picked frames into montage pictures: crop, upright and grade.
struct Upright<'a> {
    clip: &'a ClipSource,
    grade: &'a GradeSteps,
    rate: FrameRate,
    /// Built at the first frame (its shape decides the crop); `None` inside when the
    /// frames need no crop, turn or grade filter.
    chain: Option<Option<FilterChain>>,
    graded: frame::Video,
}

impl Upright<'_> {
    /// Makes `picked` into the picture for `slot` and hands it to `each`.
    fn make(
        &mut self,
        picked: &mut frame::Video,
        slot: u32,
        mut each: impl FnMut(&frame::Video) -> Result<(), MediaError>,
    ) -> Result<(), MediaError> {
        let chain = match self.chain.as_mut() {
            Some(chain) => chain,
            None => {
                let GradeSteps {
                    filter,
                    chroma_shift,
                } = self.grade;
                let spec = upright_chain(
                    picked,
                    self.clip.crop.as_ref(),
                    self.clip.info.rotation,
                    filter.as_deref(),
                    chroma_shift.is_some(),
                );
                let chain = spec
                    .map(|spec| FilterChain::new(picked, &spec, self.rate))
                    .transpose()?;
                self.chain.insert(chain)
            }
        };
        let Some(chain) = chain else {
            return each(picked);
        };
        chain.push(picked, i64::from(slot))?;
        while chain.pull(&mut self.graded) {
            if let Some(shift) = self.grade.chroma_shift {
                // Copies only a frame the chain passed through untouched (still the
                // decoder's); one the filter made is ours already.
                make_writable(&mut self.graded)?;
                shift_chroma(&mut self.graded, shift);
            }
            each(&self.graded)?;
        }
        Ok(())
    }
}

fn render_video(
    clip: &ClipSource,
    reader: &mut ClipReader,
    pictures: &mut SegmentPictures<'_>,
    outputs: &mut [OutputThread<'_>],
    progress: &mut dyn FnMut(u32),
) -> Result<(), MediaError> {
    let segment = pictures.segment;
    let mut upright = Upright {
        clip,
        grade: pictures.grade,
        rate: pictures.rate,
        chain: None,
        graded: frame::Video::empty(),
    };
    let mut emit = |picked: &mut frame::Video, slot: u32| -> Result<(), MediaError> {
        if pictures.stop.load(Ordering::Relaxed) {
            return Err(MediaError::Stopped);
        }
        upright.make(picked, slot, |picture| {
            pictures.fan_out(picture, slot, outputs)
        })?;
        if slot.is_multiple_of(pictures.rate.fps()) {
            progress(slot);
        }
        Ok(())
    };
    let mut selector = FrameSelector::new(segment.start_seconds, segment.frames, pictures.rate);
    reader.read_segment(&mut selector, pictures.next_start, &mut emit)
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
