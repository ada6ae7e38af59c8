//! `/api/v2/analytics`: views reported by the owner's own clients, and the caller's numbers.

use actix_web::{http::header, web, HttpRequest, HttpResponse};
use domain::error::ServiceError;
use insights::stats::UserStats;
use insights::views::Viewer;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ok, ApiResult, Envelope, ErrorEnvelope};
use crate::rate_limit::client_address;
use crate::routes::table::Area;
use crate::state::{AppState, Caller};

#[derive(utoipa::OpenApi)]
#[openapi(paths(track_view, user_stats))]
struct AnalyticsApi;

pub fn area() -> Area {
    Area::new(<AnalyticsApi as utoipa::OpenApi>::openapi())
        .handle("track_view", track_view)
        .handle("user_stats", user_stats)
}

#[derive(Deserialize, ToSchema)]
pub struct TrackedView {
    /// The client's own id for the person watching (say, an install id), when it reports
    /// views for others; without it the request's address and browser stand for the viewer.
    /// Never stored as given.
    viewer_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ViewCounted {
    /// False when this viewer was already counted for this montage today.
    pub counted: bool,
}

/// Count a view of one of the caller's montages, from their own client. The body is
/// optional.
#[utoipa::path(
    post, path = "/api/v2/analytics/track-view/{job_id}", tag = "analytics", security(("bearer" = [])),
    params(("job_id" = Uuid, Path)),
    request_body(content = Option<TrackedView>, content_type = "application/json"),
    responses(
        (status = 200, body = inline(Envelope<ViewCounted>)),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "No such job, or not yours", body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope),
    )
)]
pub async fn track_view(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<Uuid>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let viewer_id = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let tracked: TrackedView = serde_json::from_slice(&body).map_err(|err| {
            ServiceError::invalid_field("body", format!("Not a tracked view: {err}"))
        })?;
        tracked.viewer_id
    };
    if viewer_id
        .as_ref()
        .is_some_and(|id| id.is_empty() || id.len() > 200)
    {
        return Err(ServiceError::invalid_field("viewer_id", "1 to 200 bytes").into());
    }
    let viewer = Viewer {
        address: client_address(&req, &state.config.rate_limits),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        id: viewer_id,
    };
    let counted = state
        .insights
        .track_view(caller.0, path.into_inner(), viewer)
        .await?;
    Ok(HttpResponse::Ok().json(ok(ViewCounted { counted })))
}

/// The caller's numbers: jobs by status, minutes rendered, views (last 7 and 30 days, all
/// time, per montage), posts by platform and status, storage and the plan's limits against
/// usage. Exact counts from the database.
#[utoipa::path(
    get, path = "/api/v2/analytics/user/stats", tag = "analytics", security(("bearer" = [])),
    responses(
        (status = 200, body = inline(Envelope<UserStats>)),
        (status = 401, body = ErrorEnvelope),
    )
)]
pub async fn user_stats(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(ok(state.insights.user_stats(caller.0).await?)))
}
