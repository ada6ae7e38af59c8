//! `/api/v2/jobs`: create (multipart), status, list, download.

use actix_multipart::Multipart;
use actix_web::{http::header, web, HttpMessage, HttpRequest, HttpResponse};
use contract::jobs::{
    JobCreated, JobFailure, JobList, JobOptionsView, JobOutputView, JobSummary, JobView, Progress,
};
use db::models::{JobOutputRow, JobRow};
use domain::error::ServiceError;
use domain::identity::AuthUser;
use domain::jobs::{FrameRate, JobOptions, JobStatus, OutputFormat, StoredInput, Style};
use domain::music::Music;
use engine::admission::{entitle, Requester};
use engine::egress::check_callback_url;
use engine::jobs::{JobDetails, JobScope};
use engine::lifecycle::{Cancellation, Creation, Origin};
use serde::{Deserialize, Serialize};
use settings::{Limits, PlanConfig};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::etag::conditional;
use crate::routes::{
    policy::{Paging, RateClass},
    table::Area,
    Page,
};
use crate::{
    error::{ok, ApiResult, Envelope, ErrorEnvelope},
    middleware::RequestId,
    state::{AppState, Caller},
    upload::{drain, Upload, UploadLimits},
};

/// This area's routes, with their documentation.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    create_job, list_jobs, get_job, download, poster, cancel_job, delete_job
))]
struct JobsApi;

pub fn area() -> Area {
    Area::new(<JobsApi as utoipa::OpenApi>::openapi())
        .handle("create_job", create_job)
        .handle("list_jobs", list_jobs)
        .handle("get_job", get_job)
        .handle("download", download)
        .handle("poster", poster)
        .handle("cancel_job", cancel_job)
        .handle("delete_job", delete_job)
        .rate(RateClass::Upload, &["create_job"])
        .paged(Paging::Offset, &["list_jobs"])
}

/// What the job's creation answers.
pub fn job_created(job: &JobRow) -> JobCreated {
    JobCreated {
        job_id: job.id,
        status: job.status,
        created_at: job.created_at,
    }
}

fn progress_of(job: &JobRow) -> Progress {
    Progress {
        percent: job.progress.clamp(0, 100) as u8,
        stage: job.stage,
    }
}

fn output_view(job_id: Uuid, output: JobOutputRow) -> JobOutputView {
    let format = output.format;
    JobOutputView {
        format,
        width: output.width,
        height: output.height,
        duration: output.duration_seconds,
        size: output.size_bytes,
        download_url: format!("/api/v2/jobs/{job_id}/download?format={format}"),
        poster_url: output
            .poster_key
            .map(|_| format!("/api/v2/jobs/{job_id}/poster?format={format}")),
    }
}

/// The failure a job shows: its code and message, when it has both.
pub fn failure_of(job: &JobRow) -> Option<JobFailure> {
    match (&job.error_code, &job.error_message) {
        (Some(code), Some(message)) => Some(JobFailure {
            code: *code,
            message: message.clone(),
        }),
        _ => None,
    }
}

pub fn job_summary(job: &JobRow) -> JobSummary {
    let kept = job.status == JobStatus::Success && job.outputs_expired_at.is_none();
    let poster_url = job
        .formats
        .first()
        .filter(|_| kept)
        .map(|format| format!("/api/v2/jobs/{}/poster?format={format}", job.id));
    JobSummary {
        job_id: job.id,
        status: job.status,
        stage: job.stage,
        progress: progress_of(job),
        created_at: job.created_at,
        finished_at: job.finished_at,
        style: job.style,
        target_duration: job.target_duration,
        title: job.title.clone(),
        poster_url,
    }
}

fn options_view(job: &JobRow) -> JobOptionsView {
    JobOptionsView {
        target_duration: job.target_duration,
        style: job.style,
        formats: job.formats.clone(),
        hud_remove: job.hud_remove,
        watermark: job.watermark,
        music_id: job.music.as_ref().and_then(Music::track).cloned(),
        music_uploaded: job.music == Some(Music::Uploaded),
        facecam: job.facecam,
        fps: job.fps,
        title: job.title.clone(),
    }
}

/// A job as its owner sees it; expired outputs are not listed.
pub fn job_view(JobDetails { job, outputs }: JobDetails) -> JobView {
    let outputs_expire_at = job
        .output_retention_secs
        .zip(job.finished_at)
        .filter(|_| job.outputs_expired_at.is_none())
        .map(|(seconds, finished)| finished + chrono::Duration::seconds(seconds));
    let outputs_expired = job.outputs_expired_at.is_some();
    JobView {
        timings: job.timings,
        outputs_expire_at,
        outputs_expired,
        job_id: job.id,
        status: job.status,
        stage: job.stage,
        progress: progress_of(&job),
        options: options_view(&job),
        attempts: job.attempts,
        created_at: job.created_at,
        started_at: job.started_at,
        finished_at: job.finished_at,
        updated_at: job.updated_at,
        error: failure_of(&job),
        outputs: outputs
            .into_iter()
            .filter(|_| !outputs_expired)
            .map(|o| output_view(job.id, o))
            .collect(),
    }
}

/// The multipart form of a new job. Send the options first and the files last: the options,
/// the plan's limits, `callback_url` and the `clip_ids` named so far are checked before any
/// file is stored, and a refusal comes before the upload. An option after the first file is
/// refused (422, naming it); only `clip_ids` may come between files (their place is the
/// order). A file that is not a video is refused at its first 512 bytes. This type exists
/// only to describe the form in the OpenAPI document; the handler reads the parts as a stream.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CreateJobForm {
    /// 1 to 20 video files (MP4, MOV, WebM, MKV, AVI, FLV, MPEG-TS), repeated field.
    #[schema(value_type = Vec<String>, format = Binary)]
    files: Vec<Vec<u8>>,
    /// Seconds, 10 up to the plan's limit (60 on the free plan). Default 60.
    target_duration: Option<u32>,
    /// Default `cinematic`.
    style: Option<Style>,
    /// The layouts to render; the field may repeat, and each may be a comma-separated
    /// list. Default `landscape`.
    formats: Option<Vec<OutputFormat>>,
    hud_remove: Option<bool>,
    /// Forced on by plans with a watermark (free).
    watermark: Option<bool>,
    /// A track from `GET /api/v2/music`: its most energetic stretch plays under the
    /// montage, every cut lands on its beat, and the game's sound rises over it at
    /// highlights. None by default (the game's sound alone).
    music_id: Option<String>,
    /// Or the player's own track, treated like `music_id`'s: MP3, AAC/M4A, Opus/Ogg, FLAC
    /// or WAV, recognised from its first bytes (415 otherwise), within the per-file limit,
    /// up to 10 minutes played. A file part like `files` (after the options); one at most,
    /// and not with `music_id` (422). A file that only looks like audio fails the job
    /// (`INVALID_MEDIA`).
    #[schema(value_type = Option<String>, format = Binary)]
    music: Option<Vec<u8>>,
    /// Where the streamer's camera sits in the clips, as `x,y,w,h` fractions of the frame
    /// (`0.75,0.05,0.2,0.3`: the top-right corner). The portrait cut is then split: the
    /// camera fills its top third and the gameplay, cropped clear of the camera, the rest;
    /// the landscape cut keeps the whole picture. `hud_remove` does not apply with it.
    #[schema(example = "0.75,0.05,0.2,0.3")]
    facecam: Option<String>,
    /// Frames per second of the outputs, 30 or 60. Default: 60 when most of the footage
    /// (by length) is 50 fps or more, else 30.
    fps: Option<FrameRate>,
    /// One line of up to 40 characters drawn over the first seconds (at most 3) in the
    /// style's typeface; refused (422, naming the character) when the typeface has no glyph
    /// for one of its characters.
    #[schema(example = "1v4 clutch on Mirage")]
    title: Option<String>,
    /// http(s) URL that receives a signed `job.ended` webhook (see docs/engine.md).
    callback_url: Option<String>,
    /// Library clips to use (yours, not REJECTED), comma-separated; the field may repeat.
    /// They take their place among the files in the order the fields arrive; files and
    /// clips together count against the per-job limit.
    clip_ids: Option<Vec<Uuid>>,
    /// Keep the uploaded files in your library (they count against your storage and are
    /// not purged with the job's inputs). Send it before the files.
    save_to_library: Option<bool>,
}

/// Upload clips and start a montage job. Send the option fields before the files: they are
/// checked before any file is stored (see the form's description).
#[utoipa::path(
    post, path = "/api/v2/jobs", tag = "jobs", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Repeat-safe creation: the same key within 24 hours returns the first job")),
    request_body(content = CreateJobForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = inline(Envelope<JobCreated>), links(
            ("status" = (operation_id = "get_job", parameters(("job_id" = "$response.body#/data/job_id")))),
            ("cancel" = (operation_id = "cancel_job", parameters(("job_id" = "$response.body#/data/job_id")))),
        )),
        (status = 200, description = "Replay: this Idempotency-Key was used in the last 24 h; the first job is returned (header Idempotent-Replayed: true)", body = inline(Envelope<JobCreated>), links(
            ("status" = (operation_id = "get_job", parameters(("job_id" = "$response.body#/data/job_id")))),
        )),
        (status = 400, description = "Malformed multipart body", body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "A clip in `clip_ids` is not in your library", body = ErrorEnvelope),
        (status = 403, description = "The plan's quota is used up: jobs waiting or running, or stored bytes (QUOTA_EXCEEDED); or the account's address is unverified and its allowance of jobs used (EMAIL_NOT_VERIFIED); nothing was kept", body = ErrorEnvelope),
        (status = 413, description = "A file or the whole upload exceeds its limit", body = ErrorEnvelope),
        (status = 415, description = "Not multipart, or a file is not a recognised video container (`files`) or audio format (`music`)", body = ErrorEnvelope),
        (status = 422, description = "Unknown field, bad value, no files or too many", body = ErrorEnvelope),
        (status = 503, description = "Storage or database unavailable; nothing was kept. (A queue outage does not refuse jobs: they wait in PENDING and are queued when it returns.)", body = ErrorEnvelope),
    )
)]
pub async fn create_job(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    mut multipart: Multipart,
) -> ApiResult<HttpResponse> {
    let origin = origin_of(&request)?;
    if let Some(key) = &origin.idempotency_key {
        if let Some(job) = state
            .jobs
            .find_by_idempotency_key(caller.0, key.clone())
            .await?
        {
            // The first request's job stands; this body is skipped, not stored.
            drain(&mut multipart).await;
            return Ok(replayed(&job));
        }
    }
    // Entitlements follow the plan: quotas, duration limit, forced watermark, retention.
    let plan = state.billing.plan(state.billing.plan_of(caller.0).await?);
    let allowance = state.email.unverified_job_allowance();
    let usage = state.jobs.usage(caller.0).await;
    let admitted = usage.and_then(|usage| usage.admit(plan, allowance, Requester::Player));
    let quota_bytes = match admitted {
        Ok(left) => left,
        Err(err) => {
            // Read the body anyway, so a client still sending gets this answer, not a reset.
            drain(&mut multipart).await;
            return Err(err.into());
        }
    };
    let job_id = Uuid::now_v7();
    let limits = upload_limits(&state.config.limits, quota_bytes);
    let mut upload = Upload::new(&state.storage, limits, job_id, caller.0.id);
    let submission = Submission {
        state: &state,
        caller: caller.0,
        plan,
        origin,
    };
    let created = submission.submit(&mut upload, &mut multipart).await;
    match created {
        Ok(Creation::New(job)) => {
            tracing::info!(%job_id, files = upload.inputs.len(), "job created");
            Ok(HttpResponse::Created()
                .insert_header((header::LOCATION, format!("/api/v2/jobs/{job_id}")))
                .json(ok(job_created(&job))))
        }
        Ok(Creation::Existing(job)) => {
            // A concurrent request with the same key won; this one's uploads go.
            upload.discard().await;
            Ok(replayed(&job))
        }
        Err(err) => {
            upload.discard().await;
            upload.drain(&mut multipart).await;
            Err(err)
        }
    }
}

/// Where a creation request came from: its idempotency key and request id.
fn origin_of(request: &HttpRequest) -> Result<Origin, ServiceError> {
    Ok(Origin {
        idempotency_key: idempotency_key(request)?,
        request_id: request
            .extensions()
            .get::<RequestId>()
            .map(|id| id.0.clone()),
    })
}

fn upload_limits(limits: &Limits, quota_bytes: u64) -> UploadLimits {
    UploadLimits {
        max_file_bytes: limits.max_file_bytes,
        max_total_bytes: limits.max_upload_bytes,
        quota_bytes,
        max_files: limits.max_files,
        part_bytes: limits.upload_part_bytes,
        part_concurrency: limits.upload_part_concurrency,
    }
}

/// One admitted job creation: what it needs once the plan let it in.
struct Submission<'a> {
    state: &'a AppState,
    caller: AuthUser,
    plan: &'a PlanConfig,
    origin: Origin,
}

impl Submission<'_> {
    /// Checks the options (the fields before the first file) against the plan, then stores
    /// the clips as they arrive and records the job (or finds the one its idempotency key
    /// names).
    async fn submit(
        self,
        upload: &mut Upload<'_>,
        multipart: &mut Multipart,
    ) -> ApiResult<Creation> {
        let first_file = upload.receive_options(multipart).await?;
        let (mut options, named_first) = self.admit(upload).await?;
        upload.track_chosen = options.music.is_some();
        if let Some(first) = first_file {
            upload.receive_files(first, multipart).await?;
        }
        if upload.music {
            options.music = Some(Music::Uploaded);
        }
        let inputs = self.inputs(upload, named_first).await?;
        let created = self
            .state
            .jobs
            .create(self.caller, upload.job_id(), options, inputs, self.origin)
            .await?;
        // The relay pushes it to the queue now, or once Redis is reachable again.
        self.state.dispatch.notify_one();
        Ok(created)
    }

    /// What needs no file: the options within the plan, a callback URL that is not internal,
    /// and the library clips named so far are the caller's and usable (answered, in order).
    async fn admit(&self, upload: &mut Upload<'_>) -> ApiResult<(JobOptions, Vec<StoredInput>)> {
        let mut options = std::mem::take(&mut upload.form).finish(self.plan.max_duration)?;
        entitle(&mut options, self.plan);
        let allow_private = self.state.config.callbacks.allow_private;
        check_callback_url(options.callback_url.as_deref(), allow_private).await?;
        if let Some(track) = options.music.as_ref().and_then(Music::track) {
            self.state.music.require("music_id", track)?;
        }
        if let Some(title) = &options.title {
            self.state.title_fonts.require(options.style, title)?;
        }
        let named = upload.clip_ids.iter().map(|(_, id)| *id).collect();
        let named = self.state.clips.for_job(self.caller, named).await?;
        Ok((options, named))
    }
}

impl Submission<'_> {
    /// The uploaded files and the named library clips, in the order the form gave them;
    /// `named_first` are the clips admitted before the files, only later ones are looked up.
    async fn inputs(
        &self,
        upload: &Upload<'_>,
        mut named: Vec<StoredInput>,
    ) -> ApiResult<Vec<StoredInput>> {
        let (places, ids): (Vec<usize>, Vec<Uuid>) = upload.clip_ids.iter().copied().unzip();
        let later = ids[named.len()..].to_vec();
        named.extend(self.state.clips.for_job(self.caller, later).await?);
        let mut named = places.into_iter().zip(named).peekable();
        let mut files = upload.inputs.iter().cloned();
        let inputs: Vec<StoredInput> = (0..upload.inputs.len() + upload.clip_ids.len())
            .filter_map(|place| match named.next_if(|(at, _)| *at == place) {
                Some((_, clip)) => Some(clip),
                None => files.next(),
            })
            .collect();
        if inputs.is_empty() {
            return Err(ServiceError::invalid_field(
                "files",
                "Attach at least one video file in `files`, or name library clips in `clip_ids`",
            )
            .into());
        }
        Ok(inputs)
    }
}

/// The `Idempotency-Key` header, if sent: 1 to 255 visible ASCII characters.
fn idempotency_key(request: &HttpRequest) -> Result<Option<String>, ServiceError> {
    let Some(value) = request.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()));
    key.map(|k| Some(k.to_owned())).ok_or_else(|| {
        ServiceError::invalid_field(
            "Idempotency-Key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        )
    })
}

/// The answer to a repeated request: the first job, marked as a replay.
fn replayed(job: &JobRow) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Idempotent-Replayed", "true"))
        .insert_header((header::LOCATION, format!("/api/v2/jobs/{}", job.id)))
        .json(ok(job_created(job)))
}

/// Cancel a job: a pending one never starts; a running one stops within seconds.
#[utoipa::path(
    post, path = "/api/v2/jobs/{job_id}/cancel", tag = "jobs", security(("bearer" = [])),
    params(("job_id" = Uuid, Path)),
    responses(
        (status = 200, description = "Cancelled (it had not started)", body = inline(Envelope<JobView>)),
        (status = 202, description = "Cancellation requested; the worker stops it within seconds", body = inline(Envelope<JobView>)),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "No such job, or not yours", body = ErrorEnvelope),
        (status = 409, description = "The job already ended", body = ErrorEnvelope),
    )
)]
pub async fn cancel_job(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    cancel_in(&state, caller.0.into(), path.into_inner()).await
}

/// Cancels a job in `scope` and answers it: 200 when it ended at once, 202 when its worker
/// was asked to stop.
pub(crate) async fn cancel_in(
    state: &AppState,
    scope: JobScope,
    job_id: Uuid,
) -> ApiResult<HttpResponse> {
    let outcome = state.jobs.cancel(scope, job_id).await?;
    let details = state.jobs.get(scope, job_id).await?;
    if outcome == Cancellation::Cancelled {
        state.events.publish(&details.job).await;
    }
    let view = job_view(details);
    Ok(match outcome {
        Cancellation::Cancelled => HttpResponse::Ok().json(ok(view)),
        Cancellation::Requested => HttpResponse::Accepted().json(ok(view)),
    })
}

/// Delete an ended job with its uploaded clips, outputs and posters.
#[utoipa::path(
    delete, path = "/api/v2/jobs/{job_id}", tag = "jobs", security(("bearer" = [])),
    params(("job_id" = Uuid, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "No such job, or not yours", body = ErrorEnvelope),
        (status = 409, description = "The job is pending or running: cancel it first", body = ErrorEnvelope),
    )
)]
pub async fn delete_job(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let job_id = path.into_inner();
    let keys = state.jobs.ended_job_keys(caller.0, job_id).await?;
    // Objects first: if storage fails, the job is still there to delete again.
    state.storage.delete(&keys).await?;
    state.jobs.discard(caller.0, job_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A job's status, progress, error and outputs, as committed when the request arrived.
/// Pollers send back the `ETag` in `If-None-Match` and get 304 while nothing changed.
#[utoipa::path(
    get, path = "/api/v2/jobs/{job_id}", tag = "jobs", security(("bearer" = [])),
    params(
        ("job_id" = Uuid, Path),
        ("If-None-Match" = Option<String>, Header, description = "The `ETag` of the status the client holds"),
    ),
    responses(
        (status = 200, body = inline(Envelope<JobView>),
            headers(("ETag" = String, description = "Changes whenever the status does")),
            links(
                ("download" = (operation_id = "download", parameters(("job_id" = "$request.path.job_id")))),
                ("poster" = (operation_id = "poster", parameters(("job_id" = "$request.path.job_id")))),
                ("delete" = (operation_id = "delete_job", parameters(("job_id" = "$request.path.job_id")))),
            )),
        (status = 304, description = "The status is still the one the client holds"),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "No such job, or not yours", body = ErrorEnvelope),
    )
)]
pub async fn get_job(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    request: HttpRequest,
) -> ApiResult<HttpResponse> {
    let details = state.status.get(caller.0, path.into_inner()).await?;
    Ok(conditional(&request, &ok(job_view(details))))
}

/// The caller's jobs, newest first.
#[utoipa::path(
    get, path = "/api/v2/jobs", tag = "jobs", security(("bearer" = [])), params(Page),
    responses(
        (status = 200, body = inline(Envelope<JobList>)),
        (status = 401, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope),
    )
)]
pub async fn list_jobs(
    state: web::Data<AppState>,
    caller: Caller,
    page: web::Query<Page>,
) -> ApiResult<HttpResponse> {
    let (limit, offset) = page.bounds()?;
    let page = state.status.list(caller.0, limit, offset).await?;
    let jobs = page.jobs.iter().map(job_summary).collect();
    Ok(HttpResponse::Ok().json(ok(JobList {
        jobs,
        total: page.total,
        limit,
        offset,
    })))
}

#[derive(Deserialize, IntoParams)]
pub struct DownloadQuery {
    /// Default `landscape`.
    format: Option<OutputFormat>,
    /// `false`: answer the link as JSON instead of redirecting (a browser's `fetch` cannot
    /// read where a redirect goes). Default `true`.
    redirect: Option<bool>,
}

/// A short-lived link to an output's file.
#[derive(Serialize, ToSchema)]
pub struct OutputLink {
    pub url: String,
}

/// Redirects to a short-lived link to the rendered video.
#[utoipa::path(
    get, path = "/api/v2/jobs/{job_id}/download", tag = "jobs", security(("bearer" = []), ("file_pass" = [])),
    params(("job_id" = Uuid, Path), DownloadQuery),
    responses(
        (status = 302, description = "A redirect", headers(("Location" = String, description = "Presigned URL, valid for a few minutes"))),
        (status = 200, description = "With `redirect=false`: the presigned URL", body = inline(Envelope<OutputLink>)),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "No such job, or not yours, or that format was not requested", body = ErrorEnvelope),
        (status = 409, description = "The job has not succeeded (yet)", body = ErrorEnvelope),
        (status = 410, description = "The outputs were deleted at the end of the plan's retention (OUTPUTS_EXPIRED)", body = ErrorEnvelope),
        (status = 422, description = "Unknown format", body = ErrorEnvelope),
    )
)]
pub async fn download(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    query: web::Query<DownloadQuery>,
) -> ApiResult<HttpResponse> {
    redirect_to_output(&state, caller, path.into_inner(), &query, Artefact::Video).await
}

/// Redirects to a short-lived link to an output's poster image (JPEG).
#[utoipa::path(
    get, path = "/api/v2/jobs/{job_id}/poster", tag = "jobs", security(("bearer" = []), ("file_pass" = [])),
    params(("job_id" = Uuid, Path), DownloadQuery),
    responses(
        (status = 302, description = "A redirect", headers(("Location" = String, description = "Presigned URL, valid for a few minutes"))),
        (status = 200, description = "With `redirect=false`: the presigned URL", body = inline(Envelope<OutputLink>)),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "No such job, or not yours, or no poster for that format", body = ErrorEnvelope),
        (status = 409, description = "The job has not succeeded (yet)", body = ErrorEnvelope),
        (status = 410, description = "The outputs were deleted at the end of the plan's retention (OUTPUTS_EXPIRED)", body = ErrorEnvelope),
        (status = 422, description = "Unknown format", body = ErrorEnvelope),
    )
)]
pub async fn poster(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    query: web::Query<DownloadQuery>,
) -> ApiResult<HttpResponse> {
    redirect_to_output(&state, caller, path.into_inner(), &query, Artefact::Poster).await
}

enum Artefact {
    Video,
    Poster,
}

async fn redirect_to_output(
    state: &AppState,
    caller: Caller,
    job_id: Uuid,
    query: &DownloadQuery,
    artefact: Artefact,
) -> ApiResult<HttpResponse> {
    let format = query.format.unwrap_or(OutputFormat::Landscape);
    let output = state.jobs.output(caller.0, job_id, format).await?;
    let (key, name) = match artefact {
        Artefact::Video => (
            Some(output.storage_key),
            format!("montage-{job_id}-{format}.mp4"),
        ),
        Artefact::Poster => (output.poster_key, format!("montage-{job_id}-{format}.jpg")),
    };
    let key =
        key.ok_or_else(|| ServiceError::not_found(&format!("The {format} poster of this job")))?;
    let url = state.storage.presign_get(&key, &name).await?;
    if query.redirect == Some(false) {
        return Ok(HttpResponse::Ok().json(ok(OutputLink { url })));
    }
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, url))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}
