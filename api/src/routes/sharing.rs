//! Share links: `POST/DELETE /api/v2/jobs/{job_id}/share` for the owner, and the public
//! page `/s/{token}` that plays the montage, unfurls in chat apps (Open Graph) and counts a
//! view.

use actix_web::cookie::{time, Cookie, SameSite};
use actix_web::{http::header, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use domain::showcase::ViewSource;
use insights::shares::{ShareLink, SharedMontage};
use insights::views::Viewer;
use serde::{Deserialize, Serialize};
use settings::Environment;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ok, ApiResult, Envelope, ErrorEnvelope};
use crate::rate_limit::client_address;
use crate::routes::table::Area;
use crate::state::{AppState, Caller};

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

/// The public page of a shared montage: an HTML video player with Open Graph tags; each
/// viewer's first visit of the day counts a view: one per address and browser family.
/// Crawlers and link previewers do not count, nor the owner (signed in with a bearer, or in
/// the browser that asked for the link, which `POST …/share` marks with a cookie).
#[utoipa::path(
    get, path = "/s/{token}", tag = "sharing",
    params(("token" = String, Path)),
    responses(
        (status = 200, description = "The page", content_type = "text/html", body = String),
        (status = 404, description = "Revoked, unknown, or no longer playable", content_type = "text/html", body = String),
    )
)]
pub async fn share_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Option<Caller>,
    path: web::Path<String>,
) -> HttpResponse {
    let Ok(shared) = state.insights.shared(&path).await else {
        return html(HttpResponse::NotFound(), &gone_page(), None);
    };
    if shared.main_output().is_none() {
        return html(HttpResponse::NotFound(), &gone_page(), None);
    }
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let viewer = Viewer {
        address: client_address(&req, &state.config.rate_limits),
        user_agent,
        id: None,
    };
    // The owner watching their own montage is not a view: signed in, or in the browser
    // that asked for the link.
    let owner = caller.is_some_and(|Caller(user)| user.id == shared.job.user_id)
        || req.cookie(OWNER_COOKIE).is_some();
    if !viewer.is_crawler() && !owner {
        let counted = state
            .insights
            .count_view(shared.job.id, viewer, ViewSource::SharePage);
        if let Err(err) = counted.await {
            tracing::warn!(error = %err, "a share page view was not counted");
        }
    }
    let page = player_page(&state, &shared);
    html(HttpResponse::Ok(), &page, Some(storage_origin(&state)))
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

/// Redirects to a short-lived link to the shared montage's video or poster.
#[utoipa::path(
    get, path = "/s/{token}/{file}", tag = "sharing",
    params(("token" = String, Path), ("file" = inline(SharedFile), Path)),
    responses(
        (status = 302, description = "A redirect", headers(("Location" = String, description = "Presigned URL"))),
        (status = 404, body = ErrorEnvelope),
    )
)]
pub async fn shared_file(
    state: web::Data<AppState>,
    path: web::Path<(String, SharedFile)>,
) -> ApiResult<HttpResponse> {
    let (token, file) = path.into_inner();
    let url = state
        .insights
        .shared_file(&token, matches!(file, SharedFile::Poster))
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

/// Text safe inside HTML elements and double-quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn player_page(state: &AppState, shared: &SharedMontage) -> String {
    let base = format!("/s/{}", shared.token);
    let page_url = state.insights.public_url(&base);
    let title = match (&shared.job.title, &shared.owner_name) {
        (Some(title), _) => title.clone(),
        (None, Some(owner)) => format!("{owner}'s montage"),
        (None, None) => "A gaming montage".to_owned(),
    };
    let output = shared.main_output();
    let (width, height) = output.map_or((1920, 1080), |o| (o.width, o.height));
    let has_poster = output.is_some_and(|o| o.poster_key.is_some());
    let poster_url = state.insights.public_url(&format!("{base}/poster"));
    let og_image = if has_poster {
        format!(
            "<meta property=\"og:image\" content=\"{}\">\n<meta name=\"twitter:image\" content=\"{}\">\n",
            escape(&poster_url),
            escape(&poster_url)
        )
    } else {
        String::new()
    };
    let poster_attribute = if has_poster {
        format!(" poster=\"{}\"", escape(&poster_url))
    } else {
        String::new()
    };
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<meta property="og:type" content="video.other">
<meta property="og:title" content="{title}">
<meta property="og:url" content="{page}">
<meta property="og:video" content="{video}">
<meta property="og:video:secure_url" content="{video}">
<meta property="og:video:type" content="video/mp4">
<meta property="og:video:width" content="{width}">
<meta property="og:video:height" content="{height}">
{og_image}<meta name="twitter:card" content="summary_large_image">
<meta name="twitter:title" content="{title}">
<style>body{{margin:0;background:#000;color:#f2f2f7;font:16px/1.4 system-ui,sans-serif}}main{{display:flex;flex-direction:column;min-height:100vh;align-items:center;justify-content:center;gap:.5rem}}h1{{font-size:1.1rem;margin:.5rem 1rem 0;text-align:center;overflow-wrap:anywhere}}video{{max-width:100vw;max-height:calc(100vh - 4rem)}}</style>
</head>
<body>
<main>
<h1>{title}</h1>
<video controls playsinline preload="metadata" src="{source}"{poster_attribute}></video>
</main>
</body>
</html>
"#,
        title = escape(&title),
        page = escape(&page_url),
        video = escape(&state.insights.public_url(&format!("{base}/video"))),
        source = escape(&format!("{base}/video")),
    )
}

fn gone_page() -> String {
    "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Montage not found</title></head>\
     <body><main><h1>Montage not found</h1><p>This montage is no longer shared, or the link is wrong.</p></main></body></html>\n"
        .to_owned()
}
