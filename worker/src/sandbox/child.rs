//! The media process: does one job's work and reports on stdout.

use std::{io::Write, sync::atomic::AtomicBool, time::Instant};

use domain::jobs::{FailureCode, Stage};
use domain::timings::{StageTimings, TimedStage};
use planning::hud;
use planning::hud::Crop;
use planning::montage::{highlight_scores, plan_montage, ClipScores, FrameRate, Plan};
use planning::styles::{preset, StylePreset};

use super::{ClipReport, MediaDone, MediaMessage, MediaRequest};
use crate::media::{
    analyze::{analyze_all, ClipMeasurements, ClipToAnalyse, Still, THUMB_HEIGHT, THUMB_WIDTH},
    music::{self, MusicBed},
    probe::probe,
    render::{render, ClipSource, Montage, OutputTarget, RenderRun, RenderedOutput},
    MediaError,
};

/// Does one job's media work, reporting progress and then one outcome on stdout. A crash
/// (a signal, an abort, an allocation failure) reports nothing; the worker reads the exit.
pub(super) fn serve(request: &MediaRequest) {
    let mut timings = StageTimings::default();
    let outcome = match run(request, &mut timings, &mut |stage, percent| {
        send(&MediaMessage::Progress { stage, percent })
    }) {
        Ok((outputs, clips)) => MediaMessage::Done(MediaDone {
            outputs,
            clips,
            timings,
        }),
        Err((code, message)) => MediaMessage::Failed { code, message },
    };
    send(&outcome);
}

fn send(message: &MediaMessage) {
    let mut stdout = std::io::stdout().lock();
    let line = serde_json::to_string(message).expect("messages serialise");
    // The parent gone means nobody needs the answer; the process ends with the job anyway.
    let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
}

type Failure = (FailureCode, String);

fn failure(err: MediaError) -> Failure {
    match err {
        MediaError::Invalid(message) => (FailureCode::InvalidMedia, message),
        MediaError::Stopped | MediaError::Internal(_) => {
            tracing::error!(error = %err, "render failed");
            (
                FailureCode::RenderFailed,
                "The montage could not be rendered".into(),
            )
        }
    }
}

/// Probe, analysis, plan and render (or, with no formats asked, probe and analysis only).
fn run(
    request: &MediaRequest,
    timings: &mut StageTimings,
    report: &mut dyn FnMut(Stage, u8),
) -> Result<(Vec<RenderedOutput>, Vec<ClipReport>), Failure> {
    report(Stage::Probing, 5);
    let mut clips = probe_all(request)?;
    report(Stage::Analyzing, 7);
    let started = Instant::now();
    let measured = measure_all(request, &clips)?;
    timings.add(TimedStage::Analysis, started.elapsed());
    let scores = apply_measurements(request, &mut clips, &measured);
    let reports = clips
        .iter()
        .zip(measured)
        .map(|(clip, (measurements, fresh))| ClipReport {
            duration_seconds: clip.info.duration_seconds,
            width: clip.info.width,
            height: clip.info.height,
            has_audio: clip.info.has_audio,
            analysis: fresh.then_some(measurements),
        })
        .collect();
    if request.formats.is_empty() {
        return Ok((Vec::new(), reports));
    }
    render_montage(request, &clips, &scores, timings, report).map(|outputs| (outputs, reports))
}

/// Plans the montage from the clips' scores and renders every format asked.
fn render_montage(
    request: &MediaRequest,
    clips: &[ClipSource],
    scores: &[ClipScores],
    timings: &mut StageTimings,
    report: &mut dyn FnMut(Stage, u8),
) -> Result<Vec<RenderedOutput>, Failure> {
    let style = preset(request.style);
    let (plan, music) = plan_for(request, clips, scores, style)?;
    if plan.segments.is_empty() {
        return Err((
            FailureCode::ClipsTooShort,
            "The clips hold no usable video".into(),
        ));
    }
    report(Stage::Rendering, 10);
    let targets: Vec<OutputTarget> = request
        .formats
        .iter()
        .map(|&format| OutputTarget {
            format,
            path: request.scratch.join(format!("{format}.mp4")),
        })
        .collect();
    let montage = Montage {
        clips,
        plan: &plan,
        style,
        watermark: request.watermark.as_ref(),
        music: music.as_ref(),
        title: request.title.as_ref(),
    };
    // The parent stops this process with a signal; nothing here raises the flag.
    let never = AtomicBool::new(false);
    let mut last = 10u8;
    let mut progress = |fraction: f64| {
        // Rendering spans 10 % to 90 % of the job.
        let percent = 10 + (fraction * 80.0).round().clamp(0.0, 80.0) as u8;
        if percent != last {
            last = percent;
            report(Stage::Rendering, percent);
        }
    };
    let run = RenderRun {
        settings: &request.encoder,
        stop: &never,
        timings,
    };
    render(&montage, &targets, run, &mut progress).map_err(failure)
}

/// The montage's plan at the job's frame rate (or the footage's), on the music's beats when
/// there is music.
fn plan_for(
    request: &MediaRequest,
    clips: &[ClipSource],
    scores: &[ClipScores],
    style: &StylePreset,
) -> Result<(Plan, Option<MusicBed>), Failure> {
    let footage = clips
        .iter()
        .map(|c| (c.info.frame_rate, c.info.duration_seconds));
    let rate = request
        .fps
        .unwrap_or_else(|| FrameRate::for_footage(footage));
    let target = request.target_duration;
    Ok(match &request.music {
        Some(path) => {
            let (plan, bed) =
                music::plan_to_music(path, scores, target, style, rate).map_err(failure)?;
            (plan, Some(bed))
        }
        None => (plan_montage(scores, target, style, rate), None),
    })
}

/// Each clip's measurements, and whether they were measured now: the library's stored
/// analysis where there is one (and it reads back), otherwise the clip is analysed (with
/// its thumbnail, when asked for).
fn measure_all(
    request: &MediaRequest,
    clips: &[ClipSource],
) -> Result<Vec<(ClipMeasurements, bool)>, Failure> {
    let mut stored: Vec<Option<ClipMeasurements>> = request
        .clips
        .iter()
        .map(|input| input.analysis.as_deref().and_then(read_stored))
        .collect();
    let fresh: Vec<usize> = (0..clips.len()).filter(|&i| stored[i].is_none()).collect();
    let to_analyse = fresh
        .iter()
        .map(|&index| ClipToAnalyse {
            path: &clips[index].path,
            duration_seconds: clips[index].info.duration_seconds,
            cost: clips[index].info.decode_cost(),
            still: request.clips[index].thumbnail.as_deref().map(|path| Still {
                at: clips[index].info.duration_seconds / 3.0,
                rotation: clips[index].info.rotation,
                path,
            }),
        })
        .collect();
    let analysed = analyze_all(to_analyse, &request.limits).map_err(failure)?;
    let mut analysed = fresh.into_iter().zip(analysed).peekable();
    let mut measured = Vec::with_capacity(clips.len());
    for (position, input) in request.clips.iter().enumerate() {
        let next = match analysed.next_if(|(at, _)| *at == position) {
            Some((_, result)) => result
                .map(|measurements| (measurements, true))
                .map_err(|err| failure(name_clip(err, position, &input.label)))?,
            None => (
                stored[position].take().expect("stored unless analysed"),
                false,
            ),
        };
        measured.push(next);
    }
    Ok(measured)
}

/// A stored analysis the worker wrote for this run; none when it does not read back.
fn read_stored(path: &std::path::Path) -> Option<ClipMeasurements> {
    let bytes = std::fs::read(path).ok()?;
    ClipMeasurements::from_stored(&serde_json::from_slice(&bytes).ok()?)
}

/// Takes what the measurements found: each clip's real duration (what decoding found wins
/// over what the header claimed), its HUD when asked, and its highlight scores.
fn apply_measurements(
    request: &MediaRequest,
    clips: &mut [ClipSource],
    measured: &[(ClipMeasurements, bool)],
) -> Vec<ClipScores> {
    for (clip, (measured, _)) in clips.iter_mut().zip(measured) {
        if measured.duration_seconds > 0.0 {
            clip.info.duration_seconds = clip.info.duration_seconds.min(measured.duration_seconds);
        }
        // The camera's rectangle refers to the whole picture: no HUD crop under it.
        if request.hud_remove && clip.facecam.is_none() {
            let (width, height) = (THUMB_WIDTH as usize, THUMB_HEIGHT as usize);
            let found = hud::detect(&measured.change_map, width, height);
            clip.crop = Some(found.unwrap_or(Crop::margin(hud::FALLBACK_MARGIN)));
        }
    }
    let loudness: Vec<Vec<f64>> = measured
        .iter()
        .map(|(m, _)| m.loudness_db.clone())
        .collect();
    let motion: Vec<Vec<f64>> = measured.iter().map(|(m, _)| m.motion.clone()).collect();
    clips
        .iter()
        .zip(highlight_scores(&loudness, &motion))
        .map(|(c, scores)| ClipScores {
            duration_seconds: c.info.duration_seconds,
            scores,
        })
        .collect()
}

fn probe_all(request: &MediaRequest) -> Result<Vec<ClipSource>, Failure> {
    request
        .clips
        .iter()
        .enumerate()
        .map(|(position, input)| {
            let info = probe(&input.path, &request.limits)
                .map_err(|err| name_clip(err, position, &input.label))
                .map_err(failure)?;
            tracing::debug!(job_id = %request.job_id, clip = position, ?info, "probed");
            Ok(ClipSource {
                path: input.path.clone(),
                info,
                crop: None,
                facecam: input.facecam.or(request.facecam),
            })
        })
        .collect()
}

/// Puts the clip's number and name in front of what is wrong with it.
fn name_clip(err: MediaError, position: usize, label: &str) -> MediaError {
    match err {
        MediaError::Invalid(why) => {
            MediaError::Invalid(format!("Clip {} ({label}) {why}", position + 1))
        }
        other => other,
    }
}
