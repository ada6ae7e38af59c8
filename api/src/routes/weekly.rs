//! `/api/v2/weekly-montages`: each player's best of the week, made without asking; the
//! public list, the owner's own list and visibility choice, admins' featuring, and the
//! player's weekly settings.

use actix_web::{http::header, web, HttpResponse};
use chrono::{DateTime, Utc};
use domain::access::{Action, Resource};
use domain::error::ServiceError;
use domain::jobs::{JobStatus, OutputFormat, Style};
use domain::music::TrackId;
use domain::showcase::{Visibility, WeeklyOutcome};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use weekly::{WeeklyChoice, WeeklyFilter, WeeklyMontage, WeeklySettings};

use crate::error::{ok, ApiResult, Envelope, ErrorEnvelope};
use crate::routes::{policy::Paging, sharing::SharedFile, table::Area, Page};
use crate::state::{AppState, Caller, MaybeCaller};

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_weekly_montages,
    get_weekly_montage,
    weekly_montage_file,
    update_weekly_montage,
    feature_weekly_montage,
    weekly_settings,
    update_weekly_settings
))]
struct WeeklyApi;

pub fn area() -> Area {
    Area::new(<WeeklyApi as utoipa::OpenApi>::openapi())
        .handle("list_weekly_montages", list_weekly_montages)
        .handle("get_weekly_montage", get_weekly_montage)
        .handle("weekly_montage_file", weekly_montage_file)
        .handle("update_weekly_montage", update_weekly_montage)
        .handle("feature_weekly_montage", feature_weekly_montage)
        .handle("weekly_settings", weekly_settings)
        .handle("update_weekly_settings", update_weekly_settings)
        .permit(
            "feature_weekly_montage",
            Action::Write,
            Resource::WeeklyMontage,
        )
        .paged(Paging::Offset, &["list_weekly_montages"])
}

/// One output of a weekly montage, playable by whoever may see it.
#[derive(Serialize, ToSchema)]
pub struct PlayableView {
    pub format: OutputFormat,
    pub width: i32,
    pub height: i32,
    /// Seconds.
    pub duration: f64,
    /// Short-lived link to the MP4.
    pub video_url: String,
    /// Short-lived link to a JPEG still.
    pub poster_url: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct WeeklyMontageView {
    pub montage_id: Uuid,
    /// The owner's display name or username, if they chose one.
    pub owner: Option<String>,
    /// The week the montage covers: from `week_start` up to `week_end`.
    pub week_start: DateTime<Utc>,
    pub week_end: DateTime<Utc>,
    pub visibility: Visibility,
    pub featured: bool,
    pub featured_at: Option<DateTime<Utc>>,
    /// The rendering job's status; outputs are there once it is SUCCESS.
    pub status: JobStatus,
    pub job_id: Uuid,
    pub style: Style,
    /// Clips of the week it was made from.
    pub clip_count: i32,
    pub views: i64,
    pub outputs: Vec<PlayableView>,
    pub created_at: DateTime<Utc>,
}

impl From<WeeklyMontage> for WeeklyMontageView {
    fn from(montage: WeeklyMontage) -> Self {
        let row = montage.row;
        Self {
            montage_id: row.id,
            owner: montage.owner_name,
            week_start: row.week_start,
            week_end: row.week_end,
            visibility: row.visibility,
            featured: row.featured_at.is_some(),
            featured_at: row.featured_at,
            status: montage.job.status,
            job_id: montage.job.id,
            style: montage.job.style,
            clip_count: row.clip_count,
            views: montage.views,
            outputs: montage
                .outputs
                .into_iter()
                .map(|o| PlayableView {
                    format: o.format,
                    width: o.width,
                    height: o.height,
                    duration: o.duration_seconds,
                    video_url: o.video_url,
                    poster_url: o.poster_url,
                })
                .collect(),
            created_at: row.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct WeeklyMontageList {
    pub montages: Vec<WeeklyMontageView>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Deserialize, IntoParams)]
pub struct WeeklyQuery {
    /// Only featured montages, most recently featured first.
    featured_only: Option<bool>,
    /// The caller's own montages, private ones and unfinished ones included (needs a token).
    mine: Option<bool>,
}

/// Public weekly montages (anyone), or with `mine=true` the caller's own.
#[utoipa::path(
    get, path = "/api/v2/weekly-montages", tag = "weekly",
    params(Page, WeeklyQuery),
    security((), ("bearer" = [])),
    responses(
        (status = 200, body = inline(Envelope<WeeklyMontageList>)),
        (status = 401, description = "`mine=true` without a token, or a bad token", body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope),
    )
)]
pub async fn list_weekly_montages(
    state: web::Data<AppState>,
    caller: MaybeCaller,
    page: web::Query<Page>,
    query: web::Query<WeeklyQuery>,
) -> ApiResult<HttpResponse> {
    let (limit, offset) = page.bounds()?;
    let mine = match (query.mine.unwrap_or(false), caller.0) {
        (false, _) => None,
        (true, Some(user)) => Some(user),
        (true, None) => {
            return Err(ServiceError::unauthenticated(
                "Your own montages need a token: send Authorization: Bearer <token>",
            )
            .into())
        }
    };
    let filter = WeeklyFilter {
        mine,
        featured_only: query.featured_only.unwrap_or(false),
    };
    let page = state.weekly.list(filter, limit, offset).await?;
    Ok(HttpResponse::Ok().json(ok(WeeklyMontageList {
        montages: page.montages.into_iter().map(Into::into).collect(),
        total: page.total,
        limit,
        offset,
    })))
}

/// One weekly montage: a public one for anyone, a private one for its owner.
#[utoipa::path(
    get, path = "/api/v2/weekly-montages/{montage_id}", tag = "weekly",
    params(("montage_id" = Uuid, Path)),
    security((), ("bearer" = [])),
    responses(
        (status = 200, body = inline(Envelope<WeeklyMontageView>)),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "No such montage, or a private one of someone else", body = ErrorEnvelope),
    )
)]
pub async fn get_weekly_montage(
    state: web::Data<AppState>,
    caller: MaybeCaller,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let montage = state.weekly.get(caller.0, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(ok(WeeklyMontageView::from(montage))))
}

/// A public montage's video or poster in one format: the stable address listings give
/// (storage keys never leave the service); redirects to a short-lived link.
#[utoipa::path(
    get, path = "/api/v2/weekly-montages/{montage_id}/files/{format}/{file}", tag = "weekly",
    params(
        ("montage_id" = Uuid, Path),
        ("format" = inline(OutputFormat), Path),
        ("file" = inline(SharedFile), Path),
    ),
    responses(
        (status = 302, description = "A redirect", headers(("Location" = String, description = "A presigned URL"))),
        (status = 404, description = "No such file of a public montage", body = ErrorEnvelope),
    )
)]
pub async fn weekly_montage_file(
    state: web::Data<AppState>,
    path: web::Path<(Uuid, OutputFormat, SharedFile)>,
) -> ApiResult<HttpResponse> {
    let (id, format, file) = path.into_inner();
    let poster = matches!(file, SharedFile::Poster);
    let url = state.weekly.public_file(id, format, poster).await?;
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, url))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

#[derive(Deserialize, ToSchema)]
pub struct VisibilityChange {
    /// `private` (the default for new montages) or `public`.
    visibility: String,
}

/// The owner makes a montage public or private (private also unfeatures it).
#[utoipa::path(
    patch, path = "/api/v2/weekly-montages/{montage_id}", tag = "weekly", security(("bearer" = [])),
    params(("montage_id" = Uuid, Path)),
    request_body = VisibilityChange,
    responses(
        (status = 200, body = inline(Envelope<WeeklyMontageView>)),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "No such montage, or not yours", body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope),
    )
)]
pub async fn update_weekly_montage(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: web::Json<VisibilityChange>,
) -> ApiResult<HttpResponse> {
    let visibility = Visibility::parse_field("visibility", &body.visibility)?;
    let montage = state
        .weekly
        .set_visibility(caller.0, path.into_inner(), visibility)
        .await?;
    Ok(HttpResponse::Ok().json(ok(WeeklyMontageView::from(montage))))
}

#[derive(Deserialize, ToSchema)]
pub struct Featuring {
    /// True to feature the montage, false to stop.
    featured: bool,
}

/// Feature a public montage, or stop (admins: `write` on `WeeklyMontage`).
#[utoipa::path(
    put, path = "/api/v2/admin/weekly-montages/{montage_id}/featured", tag = "admin", security(("bearer" = [])),
    params(("montage_id" = Uuid, Path)),
    request_body = Featuring,
    responses(
        (status = 200, body = inline(Envelope<WeeklyMontageView>)),
        (status = 401, body = ErrorEnvelope),
        (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope),
        (status = 409, description = "The montage is private", body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope),
    )
)]
pub async fn feature_weekly_montage(
    state: web::Data<AppState>,
    path: web::Path<Uuid>,
    body: web::Json<Featuring>,
) -> ApiResult<HttpResponse> {
    let montage = state
        .weekly
        .feature(path.into_inner(), body.featured)
        .await?;
    Ok(HttpResponse::Ok().json(ok(WeeklyMontageView::from(montage))))
}

#[derive(Serialize, ToSchema)]
pub struct WeeklySettingsView {
    /// Whether the weekly run makes montages for this player (on by default).
    pub enabled: bool,
    /// The style of weekly montages; none: the style the player's jobs use most.
    pub style: Option<Style>,
    /// The track weekly montages are cut to (`GET /api/v2/music`); none: the game sound alone.
    #[schema(value_type = Option<String>)]
    pub music_id: Option<TrackId>,
    /// How the latest week the run looked at went.
    pub latest_week: Option<LatestWeek>,
}

#[derive(Serialize, ToSchema)]
pub struct LatestWeek {
    pub week_start: DateTime<Utc>,
    pub week_end: DateTime<Utc>,
    /// `built`; `too_little` (fewer analysed library clips than the run needs); or
    /// `over_quota` (the plan's storage is full, or the account's address is unconfirmed
    /// past its allowance of jobs).
    pub outcome: WeeklyOutcome,
    pub clip_count: i32,
    /// The montage, when one was built.
    pub montage_id: Option<Uuid>,
}

impl From<WeeklySettings> for WeeklySettingsView {
    fn from(settings: WeeklySettings) -> Self {
        Self {
            enabled: settings.choice.enabled,
            style: settings.choice.style,
            music_id: settings.choice.music,
            latest_week: settings.latest.map(|row| LatestWeek {
                week_start: row.week_start,
                week_end: row.week_end,
                outcome: row.outcome,
                clip_count: row.clip_count,
                montage_id: (row.outcome == WeeklyOutcome::Built).then_some(row.id),
            }),
        }
    }
}

/// The caller's weekly montage settings and how their latest week went.
#[utoipa::path(
    get, path = "/api/v2/users/me/weekly-montage", tag = "weekly", security(("bearer" = [])),
    responses(
        (status = 200, body = inline(Envelope<WeeklySettingsView>)),
        (status = 401, body = ErrorEnvelope),
    )
)]
pub async fn weekly_settings(
    state: web::Data<AppState>,
    caller: Caller,
) -> ApiResult<HttpResponse> {
    let settings = state.weekly.settings(caller.0).await?;
    Ok(HttpResponse::Ok().json(ok(WeeklySettingsView::from(settings))))
}

#[derive(Deserialize, ToSchema)]
pub struct WeeklySettingsForm {
    enabled: bool,
    /// A style name, or null for the one the player's jobs use most.
    style: Option<String>,
    /// A track from `GET /api/v2/music`, or null (or left out) for none.
    music_id: Option<String>,
}

/// Turn weekly montages on or off, and choose their style and music.
#[utoipa::path(
    put, path = "/api/v2/users/me/weekly-montage", tag = "weekly", security(("bearer" = [])),
    request_body = WeeklySettingsForm,
    responses(
        (status = 200, body = inline(Envelope<WeeklySettingsView>)),
        (status = 401, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope),
    )
)]
pub async fn update_weekly_settings(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<WeeklySettingsForm>,
) -> ApiResult<HttpResponse> {
    let choice = WeeklyChoice {
        enabled: body.enabled,
        style: (body.style.as_deref())
            .map(|raw| Style::parse_field("style", raw))
            .transpose()?,
        music: (body.music_id.as_deref())
            .map(|raw| state.music.find("music_id", raw))
            .transpose()?,
    };
    let settings = state.weekly.set_settings(caller.0, choice).await?;
    Ok(HttpResponse::Ok().json(ok(WeeklySettingsView::from(settings))))
}
