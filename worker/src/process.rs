//! One render job, from claim to SUCCESS, FAILED, CANCELLED or RETRYING.

use std::{
    path::{Path, PathBuf},
    sync::atomic::AtomicBool,
    sync::Arc,
    time::{Duration, Instant},
};

use std::collections::HashMap;

use db::models::{ClipRow, JobInputRow, JobOutputRow, JobRow};
use db::Db;
use domain::clips::clip_thumbnail_key;
use domain::error::{ErrorCode, ServiceError};
use domain::jobs::{
    music_key, output_key, poster_key, FailureCode, OutputFormat, Stage, Style, MIN_TARGET_DURATION,
};
use domain::music::Music;
use domain::timings::{StageTimings, TimedStage};
use engine::events::JobEvents;
use engine::jobs::JobService;
use engine::lifecycle::{retry_delay, Claim, ClaimedJob, LeaseToken};
use engine::queue::RenderJob;
use futures::{StreamExt, TryStreamExt};
use library::{ClipFacts, ClipLibrary};
use music::Catalogue;
use settings::{ClipLimits, Config, EngineConfig};
use storage::{Storage, StoreError};
use telemetry::metrics::{self, AttemptEnd, Transfer};
use tokio::sync::watch;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::Instrument;
use uuid::Uuid;

#[cfg(feature = "scale-bench")]
use crate::simulated::SimulatedRender;
use crate::{
    leases::Leases,
    media::analyze::ClipMeasurements,
    media::render::{Caption, EncoderSettings, RenderedOutput, Watermark},
    sandbox::{
        ClipInput, ClipReport, MediaDone, MediaRequest, MediaSandbox, SandboxError, SandboxLimits,
    },
    stop::{Stop, StopReason},
};

/// Clips downloaded, or outputs uploaded, at once per job.
const PARALLEL_TRANSFERS: usize = 4;

/// Downloads the job's clips into `scratch`, a few at a time: each download mostly waits
/// on the store. A library clip brings its stored analysis, or asks for a thumbnail.
async fn download_inputs(
    storage: &Storage,
    inputs: &[JobInputRow],
    library: &HashMap<Uuid, ClipRow>,
    scratch: &Path,
) -> Result<Vec<ClipInput>, StoreError> {
    let downloads: Vec<_> = inputs
        .iter()
        .map(|input| {
            let key = input.storage_key.clone();
            let row = input.clip_id.and_then(|id| library.get(&id));
            // Handed over as a file: a few clips' analyses outgrow the launch message.
            let stored = row
                .and_then(|clip| clip.analysis.as_ref())
                .filter(|analysis| ClipMeasurements::from_stored(analysis).is_some())
                .map(|analysis| {
                    let path = scratch.join(format!("analysis-{:02}.json", input.position));
                    (
                        path,
                        serde_json::to_vec(analysis).expect("JSON values serialise"),
                    )
                });
            let clip = ClipInput {
                path: scratch.join(format!("input-{:02}", input.position)),
                label: input.label.clone(),
                thumbnail: row
                    .filter(|clip| clip.thumbnail_key.is_none())
                    .map(|_| scratch.join(format!("thumbnail-{:02}.jpg", input.position))),
                analysis: stored.as_ref().map(|(path, _)| path.clone()),
                facecam: row.and_then(|clip| clip.facecam),
            };
            let size = input.size_bytes.max(0) as u64;
            async move {
                if let Some((path, json)) = stored {
                    tokio::fs::write(path, json).await?;
                }
                storage.download_to(&key, &clip.path).await?;
                metrics::transferred(Transfer::Download, size);
                Ok(clip)
            }
        })
        .collect();
    futures::stream::iter(downloads)
        .buffered(PARALLEL_TRANSFERS)
        .try_collect()
        .await
}

/// Keeps what a job or an examination found about a library clip: its facts, its
/// analysis (for every later job) and its thumbnail. Only newly measured clips are written;
/// a failure here costs a later job the analysis, not this job its result.
pub async fn record_examination(
    ctx: &WorkerContext,
    clip: &ClipRow,
    report: ClipReport,
    thumbnail: Option<&Path>,
) {
    let Some(analysis) = report.analysis else {
        return;
    };
    let stored = match thumbnail {
        Some(path) => {
            let key = clip_thumbnail_key(clip.user_id, clip.id);
            ctx.storage.put_file(&key, path, "image/jpeg").await
        }
        None => Ok(()),
    };
    let facts = ClipFacts {
        duration_seconds: report.duration_seconds,
        width: report.width as i32,
        height: report.height as i32,
        has_audio: report.has_audio,
        analysis: analysis.stored(),
        thumbnail: thumbnail.is_some() && stored.is_ok(),
    };
    if let Err(err) = stored {
        tracing::warn!(clip_id = %clip.id, error = %err, "could not store a clip's thumbnail");
    }
    if let Err(err) = ctx.clips.examined(clip, facts).await {
        tracing::warn!(clip_id = %clip.id, error = %err, "could not record a clip's examination");
    }
}

/// Raises `stop` when the job runs out of time or the worker's shutdown grace period ends;
/// the process's [`Leases`] raise it when the owner cancels the job or its lease is lost.
async fn watch_job(ctx: Arc<WorkerContext>, stop: Arc<Stop>, attempt_over: CancellationToken) {
    let deadline = tokio::time::Instant::now() + ctx.job_timeout;
    let mut hand_back = ctx.hand_back.clone();
    tokio::select! {
        () = attempt_over.cancelled() => {}
        () = tokio::time::sleep_until(deadline) => stop.request(StopReason::TimedOut),
        Ok(_) = hand_back.wait_for(|over| *over) => stop.request(StopReason::ShuttingDown),
    }
}

/// What a worker process shares between its jobs.
pub struct WorkerContext {
    pub jobs: JobService,
    /// The library: its clips' stored analyses, and what jobs and examinations find.
    pub clips: ClipLibrary,
    pub storage: Storage,
    pub events: JobEvents,
    pub scratch_dir: PathBuf,
    pub sandbox: MediaSandbox,
    pub clip_limits: ClipLimits,
    pub encoder: EncoderSettings,
    pub watermark: Watermark,
    pub job_timeout: Duration,
    /// The tracks jobs may lay under their montages.
    pub music: Catalogue,
    /// Where the styles' title typefaces are.
    pub font_dir: PathBuf,
    pub engine: EngineConfig,
    /// Turns true when the shutdown grace period is over: running jobs go back to the queue.
    pub hand_back: watch::Receiver<bool>,
    /// Wakes this process's relay: a claim or an end frees a slot for a waiting job.
    pub dispatch: Arc<tokio::sync::Notify>,
    /// Every job this process runs. A job is a task of its own, so it carries on when the
    /// queue's connection fails under it; shutdown waits for all of them.
    pub running: TaskTracker,
    /// The running jobs' leases, renewed together.
    pub leases: Arc<Leases>,
    pub render: Render,
}

/// What an attempt does between its claim and its end.
pub enum Render {
    /// The product's: the clips rendered into the montage in the media sandbox.
    Media,
    /// The scale bench's stand-in, which only waits and reports progress; it exists only in
    /// builds with the `scale-bench` feature, which production images never enable.
    #[cfg(feature = "scale-bench")]
    Simulated(SimulatedRender),
}

impl WorkerContext {
    pub fn new(
        config: &Config,
        db: Db,
        events: JobEvents,
        hand_back: watch::Receiver<bool>,
        dispatch: Arc<tokio::sync::Notify>,
        scratch_dir: PathBuf,
    ) -> anyhow::Result<Self> {
        let sandbox_limits = SandboxLimits {
            memory_bytes: config.media.memory_bytes,
            cpu_seconds: config.media.cpu_seconds,
        };
        let storage = Storage::new(&config.s3);
        Ok(Self {
            jobs: JobService::new(db.clone()),
            clips: ClipLibrary::new(db, storage.clone()),
            storage,
            events,
            engine: config.engine.clone(),
            hand_back,
            dispatch,
            running: TaskTracker::new(),
            leases: Arc::default(),
            render: Render::Media,
            scratch_dir,
            sandbox: MediaSandbox::new(config.media.program.clone(), sandbox_limits)?,
            clip_limits: config.media.clip_limits,
            encoder: EncoderSettings {
                preset: config.render.x264_preset.clone(),
                threads: config.render.encoder_threads,
            },
            job_timeout: config.render.job_timeout,
            music: Catalogue::load(config.music_dir.as_deref())?,
            watermark: Watermark {
                text: config.render.watermark_text.clone(),
                font: config.render.watermark_font.clone(),
            },
            font_dir: config.render.font_dir.clone(),
        })
    }
}

impl WorkerContext {
    /// A request for media work of the service's own (an examination, a style sample): no
    /// music, title, camera or watermark, at the shortest length.
    pub fn own_media_request(
        &self,
        id: Uuid,
        clips: Vec<ClipInput>,
        scratch: &Path,
        formats: Vec<OutputFormat>,
    ) -> MediaRequest {
        MediaRequest {
            job_id: id,
            clips,
            scratch: scratch.to_owned(),
            style: Style::Cinematic,
            target_duration: MIN_TARGET_DURATION,
            formats,
            hud_remove: false,
            music: None,
            title: None,
            facecam: None,
            fps: None,
            watermark: None,
            encoder: self.encoder.clone(),
            limits: self.clip_limits,
        }
    }

    /// Media work no owner follows: never stopped, its progress unread, bounded by the job
    /// timeout.
    pub async fn run_own_media(
        &self,
        request: &MediaRequest,
    ) -> Result<Result<MediaDone, SandboxError>, tokio::time::error::Elapsed> {
        let never = AtomicBool::new(false);
        let (progress, _) = watch::channel((Stage::Probing, 0u8));
        let run = self.sandbox.run(request, &never, &progress);
        tokio::time::timeout(self.job_timeout, run).await
    }
}

/// Why a job attempt failed, as its owner will read it.
#[derive(Debug)]
pub struct JobFailure {
    pub code: FailureCode,
    pub message: String,
    /// A fault of our infrastructure (storage, database), worth another attempt; a fault of
    /// the input is permanent.
    pub transient: bool,
}

impl JobFailure {
    fn new(code: FailureCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            transient: false,
        }
    }
}

impl From<ServiceError> for JobFailure {
    fn from(err: ServiceError) -> Self {
        tracing::error!(error = %err, "job step failed");
        let transient = err.code == ErrorCode::ServiceUnavailable;
        Self {
            code: FailureCode::InfrastructureError,
            message: err.message,
            transient,
        }
    }
}

/// A storage failure: an outage is worth another attempt; anything else (a clip deleted
/// with its job or purged, a local disk error) is not.
impl From<StoreError> for JobFailure {
    fn from(err: StoreError) -> Self {
        tracing::error!(error = %err, "storage step failed");
        Self {
            code: FailureCode::InfrastructureError,
            transient: err.is_transient(),
            message: match err {
                StoreError::NotFound(_) => "A clip of this job is no longer stored".to_owned(),
                StoreError::Unavailable(_) => "Storage is unavailable".to_owned(),
                StoreError::File(_) | StoreError::Invalid(_) => {
                    "The worker could not handle a stored file".to_owned()
                }
            },
        }
    }
}

/// A failure of an attempt whose scratch directory vanished under it (removed by something
/// else on the host) says nothing of the input: the attempt is tried again.
fn blame_vanished_scratch(failure: JobFailure, scratch: &Path) -> JobFailure {
    if scratch.exists() || failure.transient {
        return failure;
    }
    tracing::error!(path = %scratch.display(), code = %failure.code, message = %failure.message,
        "the attempt's scratch directory vanished");
    JobFailure {
        transient: true,
        ..JobFailure::new(
            FailureCode::InfrastructureError,
            "The worker's working files vanished",
        )
    }
}

impl From<SandboxError> for JobFailure {
    fn from(err: SandboxError) -> Self {
        match err {
            SandboxError::Failed { code, message } => Self::new(code, message),
            // The same bytes would crash the next worker too: permanent.
            SandboxError::Crashed(message) => Self::new(FailureCode::MediaCrashed, message),
            // Only reached with a stop reason set, which decides the outcome instead.
            SandboxError::Stopped => Self::new(FailureCode::RenderFailed, "The job was stopped"),
            SandboxError::Io(err) => {
                tracing::error!(error = %err, "could not run the media process");
                Self {
                    transient: true,
                    ..Self::new(
                        FailureCode::InfrastructureError,
                        "The media process could not run",
                    )
                }
            }
        }
    }
}

impl From<std::io::Error> for JobFailure {
    fn from(err: std::io::Error) -> Self {
        SandboxError::Io(err).into()
    }
}

/// Handles one queue delivery. Stale, duplicate and late deliveries are acknowledged without
/// work (see [`JobService::claim`]), so at-least-once delivery never renders a job twice at
/// once. An error is returned only when the outcome could not be recorded.
pub async fn process(delivery: RenderJob, ctx: Arc<WorkerContext>) -> Result<(), ServiceError> {
    let claimed = match ctx
        .jobs
        .claim(delivery, ctx.engine.lease, ctx.engine.max_attempts)
        .await?
    {
        Claim::Claimed(claimed) => claimed,
        Claim::Skipped => {
            tracing::debug!(job_id = %delivery.job_id, dispatch = delivery.dispatch, "stale or duplicate delivery; skipping");
            return Ok(());
        }
        Claim::Exhausted(job) => {
            tracing::warn!(job_id = %job.id, "job failed: its workers kept dying");
            metrics::attempt_ended(AttemptEnd::Failed);
            if let Some(code) = job.error_code {
                metrics::attempt_failed(code);
            }
            ctx.events.publish(&job).await;
            return Ok(());
        }
    };
    let span = tracing::info_span!(
        "job",
        job_id = %claimed.job.id,
        request_id = claimed.job.request_id.as_deref().unwrap_or_default(),
    );
    run_claimed(*claimed, ctx).instrument(span).await
}

/// Runs a claimed attempt to its end: every log line of it names the job and the request
/// that created it.
async fn run_claimed(claimed: ClaimedJob, ctx: Arc<WorkerContext>) -> Result<(), ServiceError> {
    let ClaimedJob { job, inputs, lease } = claimed;
    if let Some(started) = job.started_at {
        // From when the job could start (created, or due again after a retry's delay).
        metrics::attempt_claimed((started - job.run_after).to_std().unwrap_or_default());
    }
    ctx.events.publish(&job).await;
    ctx.dispatch.notify_one();
    let scratch = ctx.scratch_dir.join(job.id.to_string());
    let stop = Arc::new(Stop::default());
    let attempt_over = CancellationToken::new();
    let held = ctx.leases.hold(job.id, lease, stop.clone());
    let watcher = tokio::spawn(watch_job(ctx.clone(), stop.clone(), attempt_over.clone()));
    let attempt = Attempt {
        ctx: &ctx,
        job: &job,
        lease,
        claimed: Instant::now(),
        row_stage: std::sync::Mutex::new(job.stage),
    };
    let result = match &ctx.render {
        Render::Media => attempt.run(&inputs, &scratch, &stop).await,
        #[cfg(feature = "scale-bench")]
        Render::Simulated(simulated) => attempt.simulate(simulated, &scratch, &stop).await,
    };
    let result = result.map_err(|failure| blame_vanished_scratch(failure, &scratch));
    attempt_over.cancel();
    let _ = watcher.await;
    drop(held);
    if let Err(err) = tokio::fs::remove_dir_all(&scratch).await {
        tracing::warn!(error = %err, path = %scratch.display(), "could not remove scratch directory");
    }
    if let Some(ended) = attempt.end(stop.reason(), result).await? {
        ctx.events.publish(&ended).await;
    }
    ctx.dispatch.notify_one();
    Ok(())
}

/// One attempt at a claimed job; every write goes through its lease.
struct Attempt<'a> {
    ctx: &'a WorkerContext,
    job: &'a JobRow,
    lease: LeaseToken,
    claimed: Instant,
    /// The stage the job's row has: progress within it goes to Redis only.
    row_stage: std::sync::Mutex<Option<Stage>>,
}

/// What a successful attempt stored, and where its time went.
struct Stored {
    outputs: Vec<JobOutputRow>,
    timings: StageTimings,
}

impl Attempt<'_> {
    /// Ends the attempt with the transition its outcome calls for; the job as it is now,
    /// or `None` when the lease was lost.
    async fn end(
        &self,
        stopped: Option<StopReason>,
        result: Result<Stored, JobFailure>,
    ) -> Result<Option<JobRow>, ServiceError> {
        let (ctx, job, lease) = (self.ctx, self.job, self.lease);
        let ended = match (stopped, result) {
            (None, Ok(Stored { outputs, timings })) => {
                tracing::info!(job_id = %job.id, ?timings, "job succeeded");
                metrics::attempt_ended(AttemptEnd::Succeeded);
                let montage = outputs
                    .iter()
                    .map(|o| o.duration_seconds)
                    .fold(0.0, f64::max);
                metrics::job_rendered(&timings, montage);
                ctx.jobs.succeed(job.id, lease, outputs, timings).await?
            }
            (None, Err(failure)) => self.fail(failure).await?,
            // Another worker holds the job and writes the same output keys: leave everything
            // (unless the job is gone, see below).
            (Some(StopReason::LeaseLost), _) => {
                tracing::warn!(job_id = %job.id, "lost the job's lease: another worker took it over, or it was deleted");
                metrics::attempt_ended(AttemptEnd::LeaseLost);
                None
            }
            (Some(StopReason::ShuttingDown), _) => {
                tracing::info!(job_id = %job.id, "shutting down; handing the job back");
                metrics::attempt_ended(AttemptEnd::HandedBack);
                ctx.jobs.hand_back(job.id, lease).await?
            }
            (Some(reason), result) => self.stop(reason, result.ok().map(|s| s.outputs)).await?,
        };
        // A lost lease may mean the job was deleted (with its account) while it ran: what
        // this attempt stored would then be nobody's.
        if ended.is_none() && ctx.jobs.purge_if_gone(job.id).await? {
            tracing::info!(job_id = %job.id, "the job was deleted while it ran; purging its objects");
        }
        Ok(ended)
    }

    /// A failed attempt: retried later while the failure is transient and attempts remain.
    async fn fail(&self, failure: JobFailure) -> Result<Option<JobRow>, ServiceError> {
        let (ctx, job, lease) = (self.ctx, self.job, self.lease);
        metrics::attempt_failed(failure.code);
        if failure.transient && job.attempts < ctx.engine.max_attempts {
            metrics::attempt_ended(AttemptEnd::Retried);
            let delay = retry_delay(job.attempts, ctx.engine.retry_base, ctx.engine.retry_max);
            tracing::warn!(job_id = %job.id, attempt = job.attempts, code = %failure.code, message = %failure.message, ?delay, "attempt failed; retrying");
            return ctx
                .jobs
                .retry_later(job.id, lease, failure.code, &failure.message, delay)
                .await;
        }
        tracing::warn!(job_id = %job.id, code = %failure.code, message = %failure.message, "job failed");
        metrics::attempt_ended(AttemptEnd::Failed);
        ctx.jobs
            .fail(job.id, lease, failure.code, &failure.message)
            .await
    }

    /// A stopped attempt (cancelled or timed out), possibly after its outputs were
    /// uploaded: nothing of the job's work stays.
    async fn stop(
        &self,
        reason: StopReason,
        outputs: Option<Vec<JobOutputRow>>,
    ) -> Result<Option<JobRow>, ServiceError> {
        let (ctx, job, lease) = (self.ctx, self.job, self.lease);
        if let Some(outputs) = outputs {
            let keys: Vec<String> = outputs
                .into_iter()
                .flat_map(|o| std::iter::once(o.storage_key).chain(o.poster_key))
                .collect();
            ctx.storage.delete(&keys).await?;
        }
        if reason == StopReason::Cancelled {
            tracing::info!(job_id = %job.id, "job cancelled");
            metrics::attempt_ended(AttemptEnd::Cancelled);
            return ctx.jobs.mark_cancelled(job.id, lease).await;
        }
        let limit = ctx.job_timeout.as_secs();
        let message = format!("The job took longer than its {limit} s limit");
        tracing::warn!(job_id = %job.id, "job timed out");
        metrics::attempt_ended(AttemptEnd::TimedOut);
        metrics::attempt_failed(FailureCode::RenderTimeout);
        ctx.jobs
            .fail(job.id, lease, FailureCode::RenderTimeout, &message)
            .await
    }

    /// Reports the attempt's stage and how far it is within it. A new stage is written to
    /// the job's row (fenced by the lease, like every write of the attempt); progress within
    /// a stage is only kept in Redis and published, which spares the database a write per
    /// tick per running job.
    async fn progress(&self, stage: Stage, percent: u8) -> Result<(), ServiceError> {
        let row_stage = *self.row_stage.lock().expect("no holder panics");
        if row_stage == Some(stage) {
            self.ctx
                .events
                .publish_progress(self.job, stage, percent)
                .await;
            return Ok(());
        }
        if let Some(job) = self
            .ctx
            .jobs
            .set_progress(self.job.id, self.lease, stage, percent)
            .await?
        {
            *self.row_stage.lock().expect("no holder panics") = Some(stage);
            self.ctx.events.publish(&job).await;
        }
        Ok(())
    }

    async fn run(
        &self,
        inputs: &[JobInputRow],
        scratch: &Path,
        stop: &Arc<Stop>,
    ) -> Result<Stored, JobFailure> {
        let ctx = self.ctx;
        let started = Instant::now();
        tokio::fs::create_dir_all(scratch).await?;
        let library = ctx
            .clips
            .rows(inputs.iter().filter_map(|i| i.clip_id).collect())
            .await?;
        let clips = download_inputs(&ctx.storage, inputs, &library, scratch).await?;
        let thumbnails: Vec<Option<PathBuf>> = clips.iter().map(|c| c.thumbnail.clone()).collect();
        let music = self.stage_music(scratch).await?;
        let title = self.stage_title(scratch).await?;
        let download = started.elapsed();
        stop.check()?;
        let request = self.media_request(clips, Staged { music, title }, scratch);
        let (progress_tx, progress_rx) = watch::channel((Stage::Probing, 5u8));
        let media = ctx.sandbox.run(&request, &stop.flag, &progress_tx);
        let reporting = self.report_progress(progress_rx);
        tokio::pin!(media, reporting);
        // The reporter paces itself with pauses; it must not hold the job up once the media
        // work is over, so it is dropped then (the job's end is written right after).
        let mut reported = false;
        let media = loop {
            tokio::select! {
                biased;
                result = &mut media => break result?,
                () = &mut reporting, if !reported => reported = true,
            }
        };
        stop.check()?;
        self.progress(Stage::Uploading, 90).await?;
        let started = Instant::now();
        let outputs = futures::stream::iter(media.outputs)
            .map(|output| self.upload(output))
            .buffered(PARALLEL_TRANSFERS)
            .try_collect()
            .await?;
        let found = inputs.iter().zip(media.clips).zip(thumbnails);
        for ((input, report), thumbnail) in found {
            metrics::clip_analysis(report.analysis.is_none());
            if let Some(clip) = input.clip_id.and_then(|id| library.get(&id)) {
                record_examination(ctx, clip, report, thumbnail.as_deref()).await;
            }
        }
        let mut timings = media.timings;
        timings.add(TimedStage::Download, download);
        timings.add(TimedStage::Upload, started.elapsed());
        timings.finish(self.claimed);
        Ok(Stored { outputs, timings })
    }

    /// Puts the job's track in the scratch directory, where the media process reads: a copy
    /// of the catalogue's, or the player's own from storage (the media process proves what
    /// it is, as it does clips).
    async fn stage_music(&self, scratch: &Path) -> Result<Option<PathBuf>, JobFailure> {
        let staged = scratch.join("music");
        match &self.job.music {
            None => return Ok(None),
            Some(Music::Uploaded) => {
                let size = self
                    .ctx
                    .storage
                    .download_to(&music_key(self.job.id), &staged)
                    .await?;
                metrics::transferred(Transfer::Download, size);
            }
            Some(Music::Track(id)) => {
                let track = self.ctx.music.get(id).ok_or_else(|| {
                    JobFailure::new(
                        FailureCode::InvalidMedia,
                        format!("The music track {id:?} is no longer offered"),
                    )
                })?;
                tokio::fs::copy(&track.path, &staged).await?;
            }
        }
        Ok(Some(staged))
    }

    /// Writes the job's title into the scratch directory, where the title filter reads it
    /// (a file: its text is never parsed as filter syntax).
    async fn stage_title(&self, scratch: &Path) -> Result<Option<Caption>, JobFailure> {
        let Some(title) = &self.job.title else {
            return Ok(None);
        };
        let file = scratch.join("title.txt");
        tokio::fs::write(&file, title.as_str()).await?;
        Ok(Some(Caption {
            file,
            font: self
                .ctx
                .font_dir
                .join(planning::styles::preset(self.job.style).title_font),
            chars: title.as_str().chars().count(),
        }))
    }

    fn media_request(&self, clips: Vec<ClipInput>, staged: Staged, scratch: &Path) -> MediaRequest {
        let (ctx, job) = (self.ctx, self.job);
        MediaRequest {
            job_id: job.id,
            clips,
            scratch: scratch.to_owned(),
            style: job.style,
            target_duration: job.target_duration as u32,
            formats: job.formats.clone(),
            hud_remove: job.hud_remove,
            music: staged.music,
            title: staged.title,
            facecam: job.facecam,
            fps: job.fps,
            watermark: job.watermark.then(|| ctx.watermark.clone()),
            encoder: ctx.encoder.clone(),
            limits: ctx.clip_limits,
        }
    }

    /// Stores one rendered output and its poster.
    async fn upload(&self, output: RenderedOutput) -> Result<JobOutputRow, JobFailure> {
        let (ctx, job) = (self.ctx, self.job);
        let key = output_key(job.id, output.format);
        let size = tokio::fs::metadata(&output.path).await?.len();
        ctx.storage
            .put_file(&key, &output.path, "video/mp4")
            .await?;
        let poster = poster_key(job.id, output.format);
        ctx.storage
            .put_file(&poster, &output.poster_path, "image/jpeg")
            .await?;
        let poster_size = tokio::fs::metadata(&output.poster_path).await?.len();
        metrics::transferred(Transfer::Upload, size + poster_size);
        Ok(JobOutputRow {
            job_id: job.id,
            format: output.format,
            storage_key: key,
            width: output.width as i32,
            height: output.height as i32,
            duration_seconds: output.duration_seconds,
            size_bytes: size as i64,
            created_at: chrono::Utc::now(),
            poster_key: Some(poster),
        })
    }

    /// Reports the media process's progress, at most twice a second.
    async fn report_progress(&self, mut progress: watch::Receiver<(Stage, u8)>) {
        progress.mark_changed();
        while progress.changed().await.is_ok() {
            let (stage, percent) = *progress.borrow_and_update();
            if let Err(err) = self.progress(stage, percent).await {
                tracing::warn!(error = %err, "could not record progress");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

#[cfg(feature = "scale-bench")]
impl Attempt<'_> {
    /// The scale bench's attempt: the simulated render's wait, its progress reported as a
    /// render's, then nothing stored.
    async fn simulate(
        &self,
        render: &SimulatedRender,
        scratch: &Path,
        stop: &Stop,
    ) -> Result<Stored, JobFailure> {
        // As a render's: the engine tells a stopped job from one whose files vanished by it.
        tokio::fs::create_dir_all(scratch).await?;
        render
            .wait(stop, |percent| self.progress(Stage::Rendering, percent))
            .await?;
        render.record_effect(self.job.id)?;
        Ok(Stored {
            outputs: Vec::new(),
            timings: StageTimings::default(),
        })
    }
}

/// What a job's render reads from the scratch directory besides its clips.
struct Staged {
    music: Option<PathBuf>,
    title: Option<Caption>,
}
