//! `/api/v2/uploads`: direct uploads of large clips, straight from the client to storage.

use actix_web::{http::header, web, HttpResponse};
use chrono::{DateTime, Utc};
use library::uploads::UploadState;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ok, ApiResult, Envelope, ErrorEnvelope};
use crate::routes::{clips::ClipView, table::Area};
use crate::state::{AppState, Caller};
use crate::upload::sanitize_label;

#[derive(utoipa::OpenApi)]
#[openapi(paths(start_upload, get_upload, complete_upload, cancel_upload))]
struct UploadsApi;

pub fn area() -> Area {
    Area::new(<UploadsApi as utoipa::OpenApi>::openapi())
        .handle("start_upload", start_upload)
        .handle("get_upload", get_upload)
        .handle("complete_upload", complete_upload)
        .handle("cancel_upload", cancel_upload)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartUpload {
    /// The file's name (kept as the clip's name, sanitised).
    pub name: String,
    /// The file's exact size in bytes.
    pub size: u64,
}

/// A part stored so far.
#[derive(Serialize, ToSchema)]
pub struct StoredPartView {
    pub part_number: i32,
    pub size: u64,
}

/// A part still to send: PUT exactly `size` bytes to `url` (keep the `ETag` header S3
/// answers; nothing else is needed from it).
#[derive(Serialize, ToSchema)]
pub struct PartToSend {
    pub part_number: i32,
    pub size: u64,
    /// Presigned; valid for a few minutes. Ask the upload again for fresh ones.
    pub url: String,
}

#[derive(Serialize, ToSchema)]
pub struct UploadView {
    pub upload_id: Uuid,
    /// The library clip the upload becomes once completed.
    pub clip_id: Uuid,
    pub name: String,
    pub size: i64,
    /// Every part is this long but the last.
    pub part_size: i64,
    pub parts_stored: Vec<StoredPartView>,
    pub parts_to_send: Vec<PartToSend>,
    /// An upload not completed by then is aborted and its parts deleted.
    pub expires_at: DateTime<Utc>,
}

impl From<UploadState> for UploadView {
    fn from(state: UploadState) -> Self {
        let upload = state.upload;
        Self {
            upload_id: upload.id,
            clip_id: upload.clip_id,
            name: upload.label,
            size: upload.size_bytes,
            part_size: upload.part_bytes,
            parts_stored: state
                .stored
                .into_iter()
                .map(|part| StoredPartView {
                    part_number: part.number,
                    size: part.size,
                })
                .collect(),
            parts_to_send: state
                .missing
                .into_iter()
                .map(|part| PartToSend {
                    part_number: part.number,
                    size: part.size,
                    url: part.url,
                })
                .collect(),
            expires_at: upload.expires_at,
        }
    }
}

/// Start a direct upload: answers presigned URLs for each part. Each URL is signed for its
/// part's exact `Content-Length`: storage refuses a body of any other size. The declared
/// size counts against the storage quota until the upload is completed or abandoned; a
/// plan allows a number of open uploads at once (`FREE_OPEN_UPLOADS`, `PRO_OPEN_UPLOADS`).
#[utoipa::path(
    post, path = "/api/v2/uploads", tag = "uploads", security(("bearer" = [])),
    request_body = StartUpload,
    responses(
        (status = 201, body = inline(Envelope<UploadView>)),
        (status = 401, body = ErrorEnvelope),
        (status = 403, description = "The clip would exceed the plan's storage, or the plan's open uploads (`OPEN_UPLOADS`) are all in use (QUOTA_EXCEEDED)", body = ErrorEnvelope),
        (status = 413, description = "Larger than the per-file limit", body = ErrorEnvelope),
        (status = 415, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope),
        (status = 503, body = ErrorEnvelope),
    )
)]
pub async fn start_upload(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<StartUpload>,
) -> ApiResult<HttpResponse> {
    let StartUpload { name, size } = body.into_inner();
    let label = sanitize_label(&name).ok_or_else(|| {
        domain::error::ServiceError::invalid_field("name", "name must hold a file name")
    })?;
    let plan = state.billing.plan(state.billing.plan_of(caller.0).await?);
    let left = state.jobs.usage(caller.0).await?.storage_left(plan);
    let upload = state
        .uploads
        .start(caller.0, label, size, left, plan)
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/api/v2/uploads/{}", upload.upload.id),
        ))
        .json(ok(UploadView::from(upload))))
}

/// A direct upload: the parts stored so far, and fresh links for the rest (to resume).
#[utoipa::path(
    get, path = "/api/v2/uploads/{upload_id}", tag = "uploads", security(("bearer" = [])),
    params(("upload_id" = Uuid, Path)),
    responses(
        (status = 200, body = inline(Envelope<UploadView>)),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "No such upload (or not yours, completed, abandoned or expired)", body = ErrorEnvelope),
    )
)]
pub async fn get_upload(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let upload = state.uploads.status(caller.0, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(ok(UploadView::from(upload))))
}

/// Complete a direct upload: every part must be stored at its size, and the file must be a
/// video container. It becomes a library clip, PENDING until a worker has examined it.
#[utoipa::path(
    post, path = "/api/v2/uploads/{upload_id}/complete", tag = "uploads", security(("bearer" = [])),
    params(("upload_id" = Uuid, Path)),
    responses(
        (status = 201, body = inline(Envelope<ClipView>)),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "No such upload", body = ErrorEnvelope),
        (status = 409, description = "Parts are missing (`data.missing_parts`), or another completion of this upload is under way", body = ErrorEnvelope),
        (status = 415, description = "Not a video container: the file was deleted", body = ErrorEnvelope),
        (status = 422, description = "A part's size differs from what was declared", body = ErrorEnvelope),
        (status = 503, body = ErrorEnvelope),
    )
)]
pub async fn complete_upload(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let clip = state.uploads.complete(caller.0, path.into_inner()).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v2/clips/{}", clip.id)))
        .json(ok(ClipView::from(clip))))
}

/// Abandon a direct upload and the parts it stored.
#[utoipa::path(
    delete, path = "/api/v2/uploads/{upload_id}", tag = "uploads", security(("bearer" = [])),
    params(("upload_id" = Uuid, Path)),
    responses(
        (status = 204, description = "Abandoned"),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "No such upload", body = ErrorEnvelope),
    )
)]
pub async fn cancel_upload(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    state.uploads.cancel(caller.0, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
