//! One render job, from claim to SUCCESS or FAILED.

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, AtomicU8, Ordering},
    sync::Arc,
    time::Duration,
};

use shared::{
    error::ServiceError,
    hud::{self, Crop},
    jobs::{output_key, poster_key, JobService, OutputFormat, Stage},
    models::{JobInputRow, JobOutputRow, JobRow},
    montage::{highlight_scores, plan_montage, ClipScores},
    queue::RenderJob,
    storage::Storage,
    styles::preset,
};
use tokio::sync::watch;
use uuid::Uuid;

use crate::media::{
    analyze::{analyze, THUMB_HEIGHT, THUMB_WIDTH},
    probe::probe,
    render::{render, ClipSource, EncoderSettings, Montage, OutputTarget, Watermark},
    MediaError,
};

/// Why a running job has to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopReason {
    Cancelled = 1,
    TimedOut = 2,
}

/// Raised by the watcher, checked by the job between stages and by the renderer every frame.
#[derive(Default)]
struct Stop {
    flag: AtomicBool,
    reason: AtomicU8,
}

impl Stop {
    fn request(&self, reason: StopReason) {
        self.reason.store(reason as u8, Ordering::Relaxed);
        self.flag.store(true, Ordering::Release);
    }

    fn reason(&self) -> Option<StopReason> {
        match self.reason.load(Ordering::Relaxed) {
            1 => Some(StopReason::Cancelled),
            2 => Some(StopReason::TimedOut),
            _ => None,
        }
    }

    fn check(&self) -> Result<(), JobFailure> {
        if self.flag.load(Ordering::Acquire) {
            Err(MediaError::Stopped.into())
        } else {
            Ok(())
        }
    }
}

/// Raises `stop` when the owner cancels the job or it runs out of time; polls once a second.
async fn watch_for_stop(jobs: JobService, job_id: Uuid, limit: Duration, stop: Arc<Stop>) {
    let deadline = tokio::time::Instant::now() + limit;
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    loop {
        ticker.tick().await;
        if tokio::time::Instant::now() >= deadline {
            return stop.request(StopReason::TimedOut);
        }
        if jobs.cancel_requested(job_id).await.unwrap_or(false) {
            return stop.request(StopReason::Cancelled);
        }
    }
}

/// What a worker process shares between its jobs.
pub struct WorkerContext {
    pub jobs: JobService,
    pub storage: Storage,
    pub scratch_dir: PathBuf,
    pub encoder: EncoderSettings,
    pub watermark: Watermark,
    pub job_timeout: Duration,
}

/// Why a job failed, as its owner will read it.
#[derive(Debug)]
pub struct JobFailure {
    pub code: &'static str,
    pub message: String,
}

impl JobFailure {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<ServiceError> for JobFailure {
    fn from(err: ServiceError) -> Self {
        tracing::error!(error = %err, "job step failed");
        Self::new("INFRASTRUCTURE_ERROR", err.message)
    }
}

impl From<MediaError> for JobFailure {
    fn from(err: MediaError) -> Self {
        match err {
            MediaError::Invalid(message) => Self::new("INVALID_MEDIA", message),
            MediaError::Stopped => Self::new("STOPPED", "The job was stopped"),
            MediaError::Internal(message) => {
                tracing::error!(%message, "render failed");
                Self::new("RENDER_FAILED", "The montage could not be rendered")
            }
        }
    }
}

/// Handles one queue delivery. A job that is gone or already finished is acknowledged
/// without work, so redelivery is harmless.
pub async fn process(job: RenderJob, ctx: Arc<WorkerContext>) -> Result<(), ServiceError> {
    let Some((row, inputs)) = ctx.jobs.claim(job.job_id).await? else {
        tracing::info!(job_id = %job.job_id, "job already finished or deleted; skipping");
        return Ok(());
    };
    let scratch = ctx.scratch_dir.join(job.job_id.to_string());
    let stop = Arc::new(Stop::default());
    let watcher = tokio::spawn(watch_for_stop(
        ctx.jobs.clone(),
        row.id,
        ctx.job_timeout,
        stop.clone(),
    ));
    let result = run(&ctx, &row, &inputs, &scratch, &stop).await;
    watcher.abort();
    if let Err(err) = tokio::fs::remove_dir_all(&scratch).await {
        tracing::warn!(error = %err, path = %scratch.display(), "could not remove scratch directory");
    }
    match (stop.reason(), result) {
        (None, Ok(outputs)) => {
            ctx.jobs.succeed(row.id, outputs).await?;
            tracing::info!(job_id = %row.id, "job succeeded");
        }
        (None, Err(failure)) => {
            tracing::warn!(job_id = %row.id, code = failure.code, message = %failure.message, "job failed");
            ctx.jobs
                .fail(row.id, failure.code, &failure.message)
                .await?;
        }
        (Some(reason), result) => {
            // Stopped, possibly after outputs were uploaded: nothing of the job's work stays.
            if let Ok(outputs) = result {
                let keys: Vec<String> = outputs
                    .into_iter()
                    .flat_map(|o| std::iter::once(o.storage_key).chain(o.poster_key))
                    .collect();
                ctx.storage.delete(&keys).await?;
            }
            match reason {
                StopReason::Cancelled => {
                    tracing::info!(job_id = %row.id, "job cancelled");
                    ctx.jobs.mark_cancelled(row.id).await?;
                }
                StopReason::TimedOut => {
                    let message = format!(
                        "The job took longer than its {} s limit",
                        ctx.job_timeout.as_secs()
                    );
                    tracing::warn!(job_id = %row.id, "job timed out");
                    ctx.jobs.fail(row.id, "RENDER_TIMEOUT", &message).await?;
                }
            }
        }
    }
    Ok(())
}

async fn run(
    ctx: &WorkerContext,
    job: &JobRow,
    inputs: &[JobInputRow],
    scratch: &Path,
    stop: &Arc<Stop>,
) -> Result<Vec<JobOutputRow>, JobFailure> {
    tokio::fs::create_dir_all(scratch)
        .await
        .map_err(|e| JobFailure::from(MediaError::from(e)))?;

    let mut paths = Vec::with_capacity(inputs.len());
    for input in inputs {
        let path = scratch.join(format!("input-{:02}", input.position));
        ctx.storage.download_to(&input.storage_key, &path).await?;
        paths.push(path);
    }

    stop.check()?;
    ctx.jobs.set_progress(job.id, Stage::Probing, 5).await?;
    let mut clips = Vec::with_capacity(paths.len());
    for (input, path) in inputs.iter().zip(paths) {
        let probe_path = path.clone();
        let info = tokio::task::spawn_blocking(move || probe(&probe_path))
            .await
            .map_err(|e| JobFailure::from(ServiceError::internal(e)))?
            .map_err(|err| match err {
                MediaError::Invalid(why) => JobFailure::new(
                    "INVALID_MEDIA",
                    format!("Clip {} ({}) {why}", input.position + 1, input.label),
                ),
                other => other.into(),
            })?;
        tracing::debug!(job_id = %job.id, clip = input.position, ?info, "probed");
        clips.push(ClipSource {
            path,
            info,
            crop: None,
        });
    }

    stop.check()?;
    ctx.jobs.set_progress(job.id, Stage::Analyzing, 7).await?;
    let style = preset(job.style.parse().unwrap_or(shared::jobs::Style::Cinematic));
    let sources: Vec<(PathBuf, f64)> = clips
        .iter()
        .map(|c| (c.path.clone(), c.info.duration_seconds))
        .collect();
    let measurements = tokio::task::spawn_blocking(move || {
        sources
            .iter()
            .map(|(path, duration)| analyze(path, *duration))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| JobFailure::from(ServiceError::internal(e)))??;
    if job.hud_remove {
        for (clip, measured) in clips.iter_mut().zip(&measurements) {
            let found = hud::detect(
                &measured.change_map,
                THUMB_WIDTH as usize,
                THUMB_HEIGHT as usize,
            );
            tracing::debug!(job_id = %job.id, ?found, "HUD detection");
            clip.crop = Some(found.unwrap_or(Crop::margin(hud::FALLBACK_MARGIN)));
        }
    }
    let loudness: Vec<Vec<f64>> = measurements.iter().map(|m| m.loudness_db.clone()).collect();
    let motion: Vec<Vec<f64>> = measurements.into_iter().map(|m| m.motion).collect();
    let scores: Vec<ClipScores> = clips
        .iter()
        .zip(highlight_scores(&loudness, &motion))
        .map(|(c, scores)| ClipScores {
            duration_seconds: c.info.duration_seconds,
            scores,
        })
        .collect();
    let plan = plan_montage(&scores, job.target_duration as u32, style);
    if plan.segments.is_empty() {
        return Err(JobFailure::new(
            "CLIPS_TOO_SHORT",
            "The clips hold no usable video",
        ));
    }

    stop.check()?;
    ctx.jobs.set_progress(job.id, Stage::Rendering, 10).await?;
    let formats: Vec<OutputFormat> = job.formats.iter().filter_map(|f| f.parse().ok()).collect();
    let targets: Vec<OutputTarget> = formats
        .iter()
        .map(|&format| OutputTarget {
            format,
            path: scratch.join(format!("{format}.mp4")),
        })
        .collect();
    let rendered = {
        let (progress_tx, progress_rx) = watch::channel(0u8);
        let reporter = tokio::spawn(report_progress(ctx.jobs.clone(), job.id, progress_rx));
        let settings = ctx.encoder.clone();
        let watermark = job.watermark.then(|| ctx.watermark.clone());
        let stop = stop.clone();
        let result = tokio::task::spawn_blocking(move || {
            let montage = Montage {
                clips: &clips,
                plan: &plan,
                style,
                watermark: watermark.as_ref(),
            };
            render(&montage, &targets, &settings, &stop.flag, &mut |fraction| {
                // Rendering spans 10 % to 90 % of the job.
                let _ = progress_tx.send(10 + (fraction * 80.0).round().clamp(0.0, 80.0) as u8);
            })
        })
        .await;
        reporter.abort();
        result.map_err(|e| JobFailure::from(ServiceError::internal(e)))??
    };

    stop.check()?;
    ctx.jobs.set_progress(job.id, Stage::Uploading, 90).await?;
    let mut outputs = Vec::with_capacity(rendered.len());
    for output in rendered {
        let key = output_key(job.id, output.format);
        let size = tokio::fs::metadata(&output.path)
            .await
            .map_err(|e| JobFailure::from(MediaError::from(e)))?
            .len();
        ctx.storage
            .put_file(&key, &output.path, "video/mp4")
            .await?;
        let poster = poster_key(job.id, output.format);
        ctx.storage
            .put_file(&poster, &output.poster_path, "image/jpeg")
            .await?;
        outputs.push(JobOutputRow {
            job_id: job.id,
            format: output.format.as_str().to_owned(),
            storage_key: key,
            width: output.width as i32,
            height: output.height as i32,
            duration_seconds: output.duration_seconds,
            size_bytes: size as i64,
            created_at: chrono::Utc::now(),
            poster_key: Some(poster),
        });
    }
    Ok(outputs)
}

/// Writes render progress to the job row, at most twice a second.
async fn report_progress(jobs: JobService, job_id: Uuid, mut progress: watch::Receiver<u8>) {
    while progress.changed().await.is_ok() {
        let percent = *progress.borrow_and_update();
        if let Err(err) = jobs.set_progress(job_id, Stage::Rendering, percent).await {
            tracing::warn!(error = %err, "could not record progress");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
