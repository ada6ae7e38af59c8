//! The media process: does one job's work and reports on stdout.

use std::{io::Write, sync::atomic::AtomicBool, time::Instant};

use domain::jobs::{FailureCode, Stage};
use domain::timings::{StageTimings, TimedStage};
use planning::hud;
use planning::hud::Crop;
use planning::montage::{highlight_scores, plan_montage, ClipScores};
use planning::styles::preset;

use super::{MediaDone, MediaMessage, MediaRequest};
use crate::media::{
    analyze::{analyze, THUMB_HEIGHT, THUMB_WIDTH},
    in_parallel,
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
        Ok(outputs) => MediaMessage::Done(MediaDone { outputs, timings }),
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

/// Probe, analysis, plan and render: what used to run inside the worker.
fn run(
    request: &MediaRequest,
    timings: &mut StageTimings,
    report: &mut dyn FnMut(Stage, u8),
) -> Result<Vec<RenderedOutput>, Failure> {
    report(Stage::Probing, 5);
    let mut clips = probe_all(request)?;
    report(Stage::Analyzing, 7);
    let style = preset(request.style);
    let started = Instant::now();
    let scores = measure_all(request, &mut clips)?;
    timings.add(TimedStage::Analysis, started.elapsed());
    let plan = plan_montage(&scores, request.target_duration, style);
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
        clips: &clips,
        plan: &plan,
        style,
        watermark: request.watermark.as_ref(),
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

/// Analyses every clip: its highlight scores, its measured duration (what decoding found
/// wins over what the header claimed) and, when asked, where its HUD is.
fn measure_all(
    request: &MediaRequest,
    clips: &mut [ClipSource],
) -> Result<Vec<ClipScores>, Failure> {
    // The biggest clips first, so the last one to finish is a small one.
    let mut order: Vec<usize> = (0..clips.len()).collect();
    order.sort_by(|&a, &b| {
        clips[b]
            .info
            .decode_cost()
            .total_cmp(&clips[a].info.decode_cost())
    });
    let analysed = in_parallel(&order, |index| analyze(&clips[index].path, &request.limits));
    let mut measurements = Vec::with_capacity(clips.len());
    for ((position, clip), measured) in clips.iter_mut().enumerate().zip(analysed) {
        let measured = measured
            .map_err(|err| name_clip(err, position, &request.clips[position].label))
            .map_err(failure)?;
        if measured.duration_seconds > 0.0 {
            clip.info.duration_seconds = clip.info.duration_seconds.min(measured.duration_seconds);
        }
        if request.hud_remove {
            let (width, height) = (THUMB_WIDTH as usize, THUMB_HEIGHT as usize);
            let found = hud::detect(&measured.change_map, width, height);
            clip.crop = Some(found.unwrap_or(Crop::margin(hud::FALLBACK_MARGIN)));
        }
        measurements.push(measured);
    }
    let loudness: Vec<Vec<f64>> = measurements.iter().map(|m| m.loudness_db.clone()).collect();
    let motion: Vec<Vec<f64>> = measurements.into_iter().map(|m| m.motion).collect();
    Ok(clips
        .iter()
        .zip(highlight_scores(&loudness, &motion))
        .map(|(c, scores)| ClipScores {
            duration_seconds: c.info.duration_seconds,
            scores,
        })
        .collect())
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
