//! `/api/v2/social`: posting montages to linked accounts (seed 001's Social API).

use actix_web::{http::header, web, HttpResponse};
use chrono::{DateTime, Utc};
use db::models::{LinkedAccountRow, SocialPostRow};
use domain::error::ServiceError;
use domain::jobs::OutputFormat;
use domain::providers::{PostStatus, ProviderId};
use linking::posting::NewPost;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ok, ApiResult, Envelope, ErrorEnvelope};
use crate::routes::{policy::Paging, table::Area, Page};
use crate::state::{AppState, Caller};

#[derive(utoipa::OpenApi)]
#[openapi(paths(list_connections, create_post, list_posts, get_post))]
struct SocialApi;

pub fn area() -> Area {
    Area::new(<SocialApi as utoipa::OpenApi>::openapi())
        .handle("list_connections", list_connections)
        .handle("create_post", create_post)
        .handle("list_posts", list_posts)
        .handle("get_post", get_post)
        .paged(Paging::Offset, &["list_posts"])
}

/// A linked account montages can be posted to.
#[derive(Serialize, ToSchema)]
pub struct ConnectionView {
    pub link_id: Uuid,
    pub platform: ProviderId,
    pub display_name: String,
}

#[derive(Serialize, ToSchema)]
pub struct ConnectionList {
    pub connections: Vec<ConnectionView>,
}

impl From<LinkedAccountRow> for ConnectionView {
    fn from(link: LinkedAccountRow) -> Self {
        Self {
            link_id: link.id,
            platform: link.provider,
            display_name: link.display_name,
        }
    }
}

/// The caller's linked accounts that montages can be posted to (YouTube, TikTok).
#[utoipa::path(
    get, path = "/api/v2/social/connections", tag = "social", security(("bearer" = [])),
    responses(
        (status = 200, body = inline(Envelope<ConnectionList>)),
        (status = 401, body = ErrorEnvelope),
    )
)]
pub async fn list_connections(
    state: web::Data<AppState>,
    caller: Caller,
) -> ApiResult<HttpResponse> {
    let links = state.linking.connections(caller.0).await?;
    Ok(HttpResponse::Ok().json(ok(ConnectionList {
        connections: links.into_iter().map(ConnectionView::from).collect(),
    })))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePost {
    /// `youtube` or `tiktok`.
    pub platform: String,
    pub job_id: Uuid,
    /// Up to 2,200 characters; its first line (up to 100) titles the video.
    pub caption: String,
    /// Which output: default the job's first format.
    pub format: Option<OutputFormat>,
}

/// A montage posted to a platform.
#[derive(Serialize, ToSchema)]
pub struct PostView {
    pub post_id: Uuid,
    pub job_id: Uuid,
    pub platform: ProviderId,
    /// The platform account it went to, as named then (kept after an unlink).
    pub account_name: String,
    pub format: OutputFormat,
    pub caption: String,
    /// PENDING, UPLOADING, PROCESSING, PUBLISHED (see `post_url`) or FAILED (see `error`).
    pub status: PostStatus,
    pub post_url: Option<String>,
    pub error: Option<String>,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<SocialPostRow> for PostView {
    fn from(post: SocialPostRow) -> Self {
        Self {
            post_id: post.id,
            job_id: post.job_id,
            platform: post.platform,
            account_name: post.account_name,
            format: post.format,
            caption: post.caption,
            status: post.status,
            post_url: post.post_url,
            error: post.error,
            attempts: post.attempts,
            created_at: post.created_at,
            updated_at: post.updated_at,
        }
    }
}

fn parse_post(body: CreatePost) -> Result<NewPost, ServiceError> {
    let platform = ProviderId::parse_field("platform", &body.platform)?;
    if body.caption.chars().count() > 2200 {
        return Err(ServiceError::invalid_field(
            "caption",
            "caption is longer than 2,200 characters",
        ));
    }
    if body.caption.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ServiceError::invalid_field(
            "caption",
            "caption holds control characters",
        ));
    }
    Ok(NewPost {
        platform,
        job_id: body.job_id,
        caption: body.caption,
        format: body.format,
    })
}

/// Post a finished montage to a linked account. A worker uploads it; follow the post's
/// status here or on `/ws` (`type: post`). The same job, format and platform again answers
/// the first post, unless it FAILED: then it is tried again (a new attempt, 202).
#[utoipa::path(
    post, path = "/api/v2/social/posts", tag = "social", security(("bearer" = [])),
    request_body = CreatePost,
    responses(
        (status = 202, description = "Queued (or a FAILED post of the same output queued again)", body = inline(Envelope<PostView>)),
        (status = 200, description = "Already posted (or being posted): that post", body = inline(Envelope<PostView>)),
        (status = 401, body = ErrorEnvelope),
        (status = 403, description = "The plan's posts per day are used up (QUOTA_EXCEEDED)", body = ErrorEnvelope),
        (status = 404, description = "No such job, or not yours, or not that format", body = ErrorEnvelope),
        (status = 409, description = "The job is not SUCCESS (JOB_NOT_READY), or no account of that platform is linked (CONFLICT)", body = ErrorEnvelope),
        (status = 410, description = "The job's outputs expired", body = ErrorEnvelope),
        (status = 415, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope),
    )
)]
pub async fn create_post(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<CreatePost>,
) -> ApiResult<HttpResponse> {
    let post = parse_post(body.into_inner())?;
    let per_day = state
        .billing
        .plan(state.billing.plan_of(caller.0).await?)
        .posts_per_day;
    let (post, new) = state.linking.create_post(caller.0, post, per_day).await?;
    let mut response = if new {
        HttpResponse::Accepted()
    } else {
        HttpResponse::Ok()
    };
    Ok(response
        .insert_header((
            header::LOCATION,
            format!("/api/v2/social/posts/{}", post.id),
        ))
        .json(ok(PostView::from(post))))
}

#[derive(Serialize, ToSchema)]
pub struct PostList {
    pub posts: Vec<PostView>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// The caller's posts, newest first.
#[utoipa::path(
    get, path = "/api/v2/social/posts", tag = "social", security(("bearer" = [])), params(Page),
    responses(
        (status = 200, body = inline(Envelope<PostList>)),
        (status = 401, body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope),
    )
)]
pub async fn list_posts(
    state: web::Data<AppState>,
    caller: Caller,
    page: web::Query<Page>,
) -> ApiResult<HttpResponse> {
    let (limit, offset) = page.bounds()?;
    let (posts, total) = state.linking.posts(caller.0, limit, offset).await?;
    Ok(HttpResponse::Ok().json(ok(PostList {
        posts: posts.into_iter().map(PostView::from).collect(),
        total,
        limit,
        offset,
    })))
}

/// One post: its status, and the platform's URL once PUBLISHED.
#[utoipa::path(
    get, path = "/api/v2/social/posts/{post_id}", tag = "social", security(("bearer" = [])),
    params(("post_id" = Uuid, Path)),
    responses(
        (status = 200, body = inline(Envelope<PostView>)),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "No such post, or not yours", body = ErrorEnvelope),
    )
)]
pub async fn get_post(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let post = state.linking.post(caller.0, path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(ok(PostView::from(post))))
}
