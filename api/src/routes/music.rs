//! `/api/v2/music`: the tracks a montage can be cut to (`music_id` on a job), and a preview
//! of each for players to listen to first.

use actix_web::{http::header, web, HttpResponse};
use domain::error::ServiceError;
use domain::music::{Mood, TrackId};
use music::Track;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ok, ApiResult, Envelope, ErrorEnvelope};
use crate::routes::table::Area;
use crate::state::AppState;

/// This area's routes, with their documentation.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list_music, music_preview))]
struct MusicApi;

pub fn area() -> Area {
    Area::new(<MusicApi as utoipa::OpenApi>::openapi())
        .handle("list_music", list_music)
        .handle("music_preview", music_preview)
}

/// One track of the catalogue.
#[derive(Serialize, ToSchema)]
pub struct TrackView {
    /// The job's `music_id`.
    #[schema(value_type = String, example = "energetic_electronic_2")]
    pub id: TrackId,
    pub title: String,
    pub artist: &'static str,
    /// The licence the track is used under (every catalogue track may be redistributed).
    pub licence: &'static str,
    pub mood: Mood,
    /// The tempo the track was made at, as its source lists it.
    pub bpm: Option<u16>,
    pub duration_seconds: f64,
    /// The track itself (Ogg Opus), to listen to before choosing it.
    pub preview_url: String,
}

impl From<&Track> for TrackView {
    fn from(track: &Track) -> Self {
        Self {
            preview_url: format!("/api/v2/music/{}/preview", track.id),
            id: track.id.clone(),
            title: track.title.clone(),
            artist: track.artist,
            licence: track.licence,
            mood: track.mood,
            bpm: track.bpm,
            duration_seconds: track.duration_seconds,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MusicList {
    /// By mood, then id. Empty when this deployment ships no music.
    pub tracks: Vec<TrackView>,
}

/// The music catalogue: tracks a montage's cuts can follow (`music_id` on `POST /api/v2/jobs`).
#[utoipa::path(
    get, path = "/api/v2/music", tag = "music",
    responses((status = 200, body = inline(Envelope<MusicList>)))
)]
pub async fn list_music(state: web::Data<AppState>) -> HttpResponse {
    let tracks = state.music.tracks().iter().map(TrackView::from).collect();
    HttpResponse::Ok().json(ok(MusicList { tracks }))
}

/// One track's sound, to listen to before choosing it.
#[utoipa::path(
    get, path = "/api/v2/music/{track_id}/preview", tag = "music",
    params(("track_id" = String, Path, description = "A track's `id`")),
    responses(
        (status = 200, description = "The track, Ogg Opus", content_type = "audio/ogg", body = String),
        (status = 404, body = ErrorEnvelope),
    )
)]
pub async fn music_preview(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let track = TrackId::parse("track_id", &path)
        .ok()
        .and_then(|id| state.music.get(&id))
        .ok_or_else(|| ServiceError::not_found("Track"))?;
    let sound = tokio::fs::read(&track.path)
        .await
        .map_err(|err| ServiceError::internal(format!("reading {}: {err}", track.id)))?;
    Ok(HttpResponse::Ok()
        .content_type("audio/ogg")
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(sound))
}
