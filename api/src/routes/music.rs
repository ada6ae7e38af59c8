//! `/api/v2/music`: the tracks a montage can be cut to (`music_id` on a job), and a preview
//! of each for players to listen to first.

use actix_web::{http::header, web, HttpResponse};
use contract::music::{MusicList, TrackView};
use domain::error::ServiceError;
use domain::music::TrackId;
use music::Track;

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

fn track_view(track: &Track) -> TrackView {
    TrackView {
        preview_url: format!("/api/v2/music/{}/preview", track.id),
        id: track.id.clone(),
        title: track.title.clone(),
        artist: track.artist.to_owned(),
        licence: track.licence.to_owned(),
        mood: track.mood,
        bpm: track.bpm,
        duration_seconds: track.duration_seconds,
    }
}

/// The music catalogue: tracks a montage's cuts can follow (`music_id` on `POST /api/v2/jobs`).
#[utoipa::path(
    get, path = "/api/v2/music", tag = "music",
    responses((status = 200, body = inline(Envelope<MusicList>)))
)]
pub async fn list_music(state: web::Data<AppState>) -> HttpResponse {
    let tracks = state.music.tracks().iter().map(track_view).collect();
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
