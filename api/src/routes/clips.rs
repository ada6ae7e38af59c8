//! `/api/v2/clips`: the caller's clip library.

use actix_web::{http::header, web, HttpResponse};
use chrono::{DateTime, Utc};
use db::models::ClipRow;
use domain::clips::{ClipSource, ClipStatus};
use domain::error::ServiceError;
use domain::facecam::Facecam;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::{ok, ApiResult, Envelope, ErrorEnvelope};
use crate::routes::{policy::Paging, table::Area, Page};
use crate::state::{AppState, Caller};

#[derive(utoipa::OpenApi)]
#[openapi(paths(list_clips, get_clip, delete_clip, clip_thumbnail, set_clip_facecam))]
struct ClipsApi;

pub fn area() -> Area {
    Area::new(<ClipsApi as utoipa::OpenApi>::openapi())
        .handle("list_clips", list_clips)
        .handle("get_clip", get_clip)
        .handle("delete_clip", delete_clip)
        .handle("clip_thumbnail", clip_thumbnail)
        .handle("set_clip_facecam", set_clip_facecam)
        .paged(Paging::Offset, &["list_clips"])
}

/// A library clip. The probe facts and the thumbnail are there once it is READY.
#[derive(Serialize, ToSchema)]
pub struct ClipView {
    pub clip_id: Uuid,
    pub source: ClipSource,
    /// The platform's id of an imported clip.
    pub external_id: Option<String>,
    /// The file name it was uploaded with, or the imported clip's title.
    pub name: String,
    /// PENDING while a worker examines it, READY to use, REJECTED when it is not usable
    /// video (see `rejection`; the file is gone).
    pub status: ClipStatus,
    pub rejection: Option<String>,
    /// Bytes.
    pub size: i64,
    /// The container recognised on upload (mp4, webm…).
    pub container: String,
    /// Seconds.
    pub duration: Option<f64>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub has_audio: Option<bool>,
    /// Relative URL that redirects to a short-lived link to a JPEG thumbnail.
    pub thumbnail_url: Option<String>,
    /// Where the streamer's camera sits in the clip, if its owner said: montages made from
    /// it split their portrait cut under it.
    pub facecam: Option<Facecam>,
    pub created_at: DateTime<Utc>,
}

impl From<ClipRow> for ClipView {
    fn from(clip: ClipRow) -> Self {
        Self {
            thumbnail_url: clip
                .thumbnail_key
                .map(|_| format!("/api/v2/clips/{}/thumbnail", clip.id)),
            clip_id: clip.id,
            source: clip.source,
            external_id: clip.external_id,
            name: clip.label,
            status: clip.status,
            rejection: clip.rejection,
            size: clip.size_bytes,
            container: clip.container,
            duration: clip.duration_seconds,
            width: clip.width,
            height: clip.height,
            has_audio: clip.has_audio,
            facecam: clip.facecam,
            created_at: clip.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ClipList {
    pub clips: Vec<ClipView>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Deserialize, IntoParams)]
pub struct SourceFilter {
    /// Only the clips from this source (`upload`, `twitch`).
    source: Option<String>,
}

impl SourceFilter {
    fn parse(&self) -> Result<Option<ClipSource>, ServiceError> {
        self.source
            .as_deref()
            .map(|raw| ClipSource::parse_field("source", raw))
            .transpose()
    }
}

/// The caller's library, newest first.
#[utoipa::path(
    get, path = "/api/v2/clips", tag = "clips", security(("bearer" = [])),
    params(Page, SourceFilter),
    responses(
        (status = 200, body = inline(Envelope<ClipList>)),
        (status = 401, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope),
    )
)]
pub async fn list_clips(
    state: web::Data<AppState>,
    caller: Caller,
    page: web::Query<Page>,
    filter: web::Query<SourceFilter>,
) -> ApiResult<HttpResponse> {
    let (limit, offset) = page.bounds()?;
    let source = filter.parse()?;
    let page = state.clips.list(caller.0, source, limit, offset).await?;
    Ok(HttpResponse::Ok().json(ok(ClipList {
        clips: page.clips.into_iter().map(ClipView::from).collect(),
        total: page.total,
        limit,
        offset,
    })))
}

/// One library clip.
#[utoipa::path(
    get, path = "/api/v2/clips/{clip_id}", tag = "clips", security(("bearer" = [])),
    params(("clip_id" = Uuid, Path)),
    responses(
        (status = 200, body = inline(Envelope<ClipView>)),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "No such clip, or not yours", body = ErrorEnvelope),
    )
)]
pub async fn get_clip(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let clip = state.clips.get(caller.0, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(ok(ClipView::from(clip))))
}

/// The streamer's camera in a clip.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FacecamChoice {
    /// Fractions of the frame; `null` forgets it.
    facecam: Option<Facecam>,
}

/// Where the streamer's camera sits in a library clip, kept with the clip: every montage
/// made from it shows the camera in the top third of its portrait cut (a job's own
/// `facecam` applies to clips that have none).
#[utoipa::path(
    put, path = "/api/v2/clips/{clip_id}/facecam", tag = "clips", security(("bearer" = [])),
    params(("clip_id" = Uuid, Path)),
    request_body = FacecamChoice,
    responses(
        (status = 200, body = inline(Envelope<ClipView>)),
        (status = 422, description = "Not a camera rectangle inside the frame (VALIDATION_ERROR)", body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "No such clip, or not yours", body = ErrorEnvelope),
    )
)]
pub async fn set_clip_facecam(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: web::Json<FacecamChoice>,
) -> ApiResult<HttpResponse> {
    let facecam = body.into_inner().facecam;
    let clip = state
        .clips
        .set_facecam(caller.0, path.into_inner(), facecam)
        .await?;
    Ok(HttpResponse::Ok().json(ok(ClipView::from(clip))))
}

/// Delete a library clip and its file. Finished jobs that used it keep their outputs.
#[utoipa::path(
    delete, path = "/api/v2/clips/{clip_id}", tag = "clips", security(("bearer" = [])),
    params(("clip_id" = Uuid, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "No such clip, or not yours", body = ErrorEnvelope),
        (status = 409, description = "A waiting or running job uses it", body = ErrorEnvelope),
    )
)]
pub async fn delete_clip(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    state.clips.delete(caller.0, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Redirects to a short-lived link to the clip's thumbnail (JPEG).
#[utoipa::path(
    get, path = "/api/v2/clips/{clip_id}/thumbnail", tag = "clips", security(("bearer" = []), ("file_pass" = [])),
    params(("clip_id" = Uuid, Path)),
    responses(
        (status = 302, description = "A redirect", headers(("Location" = String, description = "Presigned URL, valid for a few minutes"))),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "No such clip, or not yours", body = ErrorEnvelope),
        (status = 409, description = "No thumbnail yet (the clip is PENDING) or ever (REJECTED)", body = ErrorEnvelope),
    )
)]
pub async fn clip_thumbnail(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let url = state
        .clips
        .thumbnail_url(caller.0, path.into_inner())
        .await?;
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, url))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}
