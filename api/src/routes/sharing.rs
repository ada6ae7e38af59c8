//! Share links: `POST/DELETE /api/v2/jobs/{job_id}/share` for the owner, and the public
//! page `/s/{token}` that plays the montage, unfurls in chat apps (Open Graph) and counts a
//! view.

use actix_web::cookie::{time, Cookie, SameSite};
use actix_web::{http::header, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use domain::error::ErrorCode;
use domain::jobs::OutputFormat;
use insights::shares::{ShareLink, Visitor};
use insights::views::Viewer;
use serde::{Deserialize, Serialize};
use settings::Environment;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ok, ApiResult, Envelope, ErrorEnvelope};
use crate::rate_limit::client_address;
use crate::routes::share_page;
use crate::routes::table::Area;
use crate::state::{AppState, Caller, MaybeCaller};

#[derive(utoipa::OpenApi)]
#[openapi(paths(share_job, revoke_share, share_page, shared_file))]
struct SharingApi;

pub fn area() -> Area {
    Area::new(<SharingApi as utoipa::OpenApi>::openapi())
        .handle("share_job", share_job)
        .handle("revoke_share", revoke_share)
        .handle("share_page", share_page)
        .handle("shared_file", shared_file)
}

#[derive(Serialize, ToSchema)]
pub struct ShareLinkView {
    pub job_id: Uuid,
    /// Unguessable; whoever has it can watch until the link is revoked.
    pub token: String,
    /// The public page.
    pub url: String,
    pub created_at: DateTime<Utc>,
}

impl From<ShareLink> for ShareLinkView {
    fn from(link: ShareLink) -> Self {
        Self {
            job_id: link.job_id,
            token: link.token,
            url: link.url,
            created_at: link.created_at,
        }
    }
}

/// Share a finished montage: its live public link, made now (201) or already there (200).
#[utoipa::path(
    post, path = "/api/v2/jobs/{job_id}/share", tag = "sharing", security(("bearer" = [])),
    params(("job_id" = Uuid, Path)),
    responses(
        (status = 201, description = "A new link", body = inline(Envelope<ShareLinkView>)),
        (status = 200, description = "The job's live link", body = inline(Envelope<ShareLinkView>)),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "No such job, or not yours", body = ErrorEnvelope),
        (status = 409, description = "The job has not succeeded (JOB_NOT_READY)", body = ErrorEnvelope),
        (status = 410, description = "Its outputs were deleted (OUTPUTS_EXPIRED)", body = ErrorEnvelope),
    )
)]
pub async fn share_job(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let (link, created) = state.insights.share(caller.0, path.into_inner()).await?;
    let mut response = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    let secure = state.config.environment == Environment::Production;
    let marked = response.cookie(owner_cookie(&link.token, secure));
    Ok(marked.json(ok(ShareLinkView::from(link))))
}

/// Marks the browser that asked for a share link as its owner's, for that page only: its
/// visits are not views. Presence is all it says; a viewer who forged it would only keep
/// their own visit from counting.
fn owner_cookie(token: &str, secure: bool) -> Cookie<'static> {
    Cookie::build(OWNER_COOKIE, "1")
        .path(format!("/s/{token}"))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(time::Duration::days(365))
        .finish()
}

/// The cookie that marks the owner's browser on their share page.
const OWNER_COOKIE: &str = "montage_owner";

/// Revoke the job's live link: its page is gone at once.
#[utoipa::path(
    delete, path = "/api/v2/jobs/{job_id}/share", tag = "sharing", security(("bearer" = [])),
    params(("job_id" = Uuid, Path)),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "No such job, not yours, or no live link", body = ErrorEnvelope),
    )
)]
pub async fn revoke_share(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    state
        .insights
        .revoke_share(caller.0, path.into_inner())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The public page of a shared montage: its poster at once, the portrait cut on portrait
/// screens and the landscape cut elsewhere, who made it, when, and its views, with Open Graph
/// and Twitter cards; no script. Each viewer's first visit of the day counts a view: one per
/// address and browser family. Crawlers and link previewers do not count, nor the owner
/// (signed in with a bearer, or in the browser that asked for the link, which `POST …/share`
/// marks with a cookie).
#[utoipa::path(
    get, path = "/s/{token}", tag = "sharing", security((), ("bearer" = [])),
    params(("token" = String, Path)),
    responses(
        (status = 200, description = "The page", content_type = "text/html", body = String),
        (status = 404, description = "Revoked, unknown, or no longer playable", content_type = "text/html", body = String),
        (status = 503, description = "The database is unavailable", content_type = "text/html", body = String),
    )
)]
pub async fn share_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: MaybeCaller,
    path: web::Path<String>,
) -> HttpResponse {
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let visitor = Visitor {
        viewer: Viewer {
            address: client_address(&req, &state.config.rate_limits),
            user_agent,
            id: None,
        },
        user: caller.0.map(|user| user.id),
        owner_marked: req.cookie(OWNER_COOKIE).is_some(),
    };
    match state.insights.visit(&path, visitor).await {
        Ok(page) => {
            let body = share_page::render(&page, |path| state.insights.public_url(path));
            html(HttpResponse::Ok(), &body, Some(storage_origin(&state)))
        }
        Err(err) if err.code == ErrorCode::ResourceNotFound => {
            html(HttpResponse::NotFound(), &share_page::gone(), None)
        }
        Err(err) => {
            tracing::warn!(error = %err, "a share page could not be shown");
            html(
                HttpResponse::ServiceUnavailable(),
                &share_page::unavailable(),
                None,
            )
        }
    }
}

/// A shared montage's file, by the name its page gives it.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SharedFile {
    /// The MP4 (`og:video`).
    Video,
    /// The JPEG still (`og:image`).
    Poster,
}

/// Which cut of a shared montage a file is.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct SharedFormat {
    /// The cut; the landscape one (or the only one) when left out.
    format: Option<OutputFormat>,
}

/// Redirects to a short-lived link to the shared montage's video or poster.
#[utoipa::path(
    get, path = "/s/{token}/{file}", tag = "sharing",
    params(("token" = String, Path), ("file" = inline(SharedFile), Path), SharedFormat),
    responses(
        (status = 302, description = "A redirect", headers(("Location" = String, description = "Presigned URL"))),
        (status = 422, description = "Unknown format", body = ErrorEnvelope),
        (status = 404, description = "No such link, or no such cut", body = ErrorEnvelope),
    )
)]
pub async fn shared_file(
    state: web::Data<AppState>,
    path: web::Path<(String, SharedFile)>,
    query: web::Query<SharedFormat>,
) -> ApiResult<HttpResponse> {
    let (token, file) = path.into_inner();
    let poster = matches!(file, SharedFile::Poster);
    let url = state
        .insights
        .shared_file(&token, poster, query.format)
        .await?;
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, url))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// `scheme://host[:port]` of storage, where the page's `/s/{token}/…` addresses redirect.
fn storage_origin(state: &AppState) -> String {
    url::Url::parse(&state.config.s3.endpoint)
        .map(|url| url.origin().ascii_serialization())
        .unwrap_or_default()
}

/// A page whose media and images come from `media` (our own addresses, then storage's).
fn html(
    mut response: actix_web::HttpResponseBuilder,
    body: &str,
    media: Option<String>,
) -> HttpResponse {
    let media = media.map_or_else(|| "'none'".into(), |origin| format!("'self' {origin}"));
    response
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            format!(
                "default-src 'none'; media-src {media}; img-src {media}; style-src 'unsafe-inline'; frame-ancestors 'none'"
            ),
        ))
        .body(body.to_owned())
}
