//! Posting montages to linked accounts: one post per (job, format, platform), uploaded by a
//! worker. YouTube takes the output through a resumable upload session, in chunks; after a
//! failure the next attempt asks the session how far it got and carries on from there.
//! Transient failures retry with backoff; the platform's refusals fail the post.

use std::time::Duration;

use chrono::Utc;
use diesel::prelude::*;
use serde::Deserialize;
use uuid::Uuid;

use db::models::{LinkedAccountRow, SocialPostRow};
use db::schema::{linked_accounts, social_posts};
use domain::error::{ErrorCode, ServiceError, ServiceResult};
use domain::identity::AuthUser;
use domain::jobs::OutputFormat;
use domain::providers::{PostStatus, ProviderId};
use engine::events::JobEvents;
use engine::jobs::JobScope;
use engine::lifecycle::retry_delay;
use storage::Storage;

use crate::oauth::PlatformError;
use crate::Linking;

/// What a user asks to post.
#[derive(Debug, Clone)]
pub struct NewPost {
    pub platform: ProviderId,
    pub job_id: Uuid,
    pub caption: String,
    /// Default: the job's first output.
    pub format: Option<OutputFormat>,
}

/// Posts still under way.
const OPEN: [PostStatus; 3] = [
    PostStatus::Pending,
    PostStatus::Uploading,
    PostStatus::Processing,
];

impl Linking {
    /// The caller's linked accounts that montages can be posted to.
    pub async fn connections(&self, user: AuthUser) -> ServiceResult<Vec<LinkedAccountRow>> {
        let links = self.links(user).await?;
        Ok(links
            .into_iter()
            .filter(|l| l.provider.can_post())
            .collect())
    }

    /// Queues a post of one of the caller's finished jobs; the same (job, format, platform)
    /// answers the post already made (`false`: not new). Past `per_day` posts in 24 hours,
    /// QUOTA_EXCEEDED.
    pub async fn create_post(
        &self,
        user: AuthUser,
        post: NewPost,
        per_day: i64,
    ) -> ServiceResult<(SocialPostRow, bool)> {
        if !post.platform.can_post() {
            let message = format!("Montages cannot be posted to {}", post.platform.name());
            return Err(ServiceError::invalid_field("platform", message));
        }
        let link = self.link_for(user, post.platform).await?;
        let format = match post.format {
            Some(format) => format,
            None => self
                .jobs
                .get(user, post.job_id)
                .await?
                .job
                .formats
                .first()
                .copied()
                .unwrap_or(OutputFormat::Landscape),
        };
        self.jobs.output(user, post.job_id, format).await?;
        let row = SocialPostRow {
            id: Uuid::now_v7(),
            user_id: user.id,
            job_id: post.job_id,
            link_id: link.id,
            platform: post.platform,
            format,
            caption: post.caption,
            status: PostStatus::Pending,
            post_url: None,
            error: None,
            attempts: 0,
            upload_session: None,
            next_attempt_at: Utc::now(),
            held_until: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        self.db
            .run(move |conn| conn.transaction(|conn| insert_post(conn, row, per_day)))
            .await
    }

    /// The caller's newest link to `platform`; a conflict without one.
    async fn link_for(
        &self,
        user: AuthUser,
        platform: ProviderId,
    ) -> ServiceResult<LinkedAccountRow> {
        self.db
            .run(move |conn| {
                linked_accounts::table
                    .filter(linked_accounts::user_id.eq(user.id))
                    .filter(linked_accounts::provider.eq(platform))
                    .order(linked_accounts::created_at.desc())
                    .select(LinkedAccountRow::as_select())
                    .first(conn)
                    .optional()?
                    .ok_or_else(|| {
                        ServiceError::conflict(format!("Link a {} account first", platform.name()))
                            .with_data(serde_json::json!({ "field": "platform" }))
                    })
            })
            .await
    }

    /// The caller's posts, newest first, and how many there are.
    pub async fn posts(
        &self,
        user: AuthUser,
        limit: i64,
        offset: i64,
    ) -> ServiceResult<(Vec<SocialPostRow>, i64)> {
        self.db
            .run(move |conn| {
                let mine = social_posts::table.filter(social_posts::user_id.eq(user.id));
                let total = mine.count().get_result(conn)?;
                let posts = mine
                    .order((social_posts::created_at.desc(), social_posts::id.desc()))
                    .limit(limit)
                    .offset(offset)
                    .select(SocialPostRow::as_select())
                    .load(conn)?;
                Ok((posts, total))
            })
            .await
    }

    /// One of the caller's posts.
    pub async fn post(&self, user: AuthUser, id: Uuid) -> ServiceResult<SocialPostRow> {
        self.db
            .run(move |conn| {
                social_posts::table
                    .find(id)
                    .filter(social_posts::user_id.eq(user.id))
                    .select(SocialPostRow::as_select())
                    .first(conn)
                    .optional()?
                    .ok_or_else(|| ServiceError::not_found("Post"))
            })
            .await
    }

    /// Takes a post due for an attempt, with its link, for `hold`.
    pub async fn take_post(
        &self,
        hold: Duration,
    ) -> ServiceResult<Option<(SocialPostRow, LinkedAccountRow)>> {
        let hold = chrono::Duration::from_std(hold).unwrap_or(chrono::Duration::MAX);
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let now = Utc::now();
                    let due: Option<SocialPostRow> = social_posts::table
                        .filter(social_posts::status.eq_any(OPEN))
                        .filter(social_posts::next_attempt_at.le(now))
                        .filter(
                            social_posts::held_until
                                .is_null()
                                .or(social_posts::held_until.lt(now)),
                        )
                        .order(social_posts::next_attempt_at.asc())
                        .select(SocialPostRow::as_select())
                        .for_update()
                        .skip_locked()
                        .first(conn)
                        .optional()?;
                    let Some(post) = due else { return Ok(None) };
                    let link = linked_accounts::table
                        .find(post.link_id)
                        .select(LinkedAccountRow::as_select())
                        .first(conn)?;
                    let post = diesel::update(social_posts::table.find(post.id))
                        .set((
                            social_posts::held_until.eq(now + hold),
                            social_posts::attempts.eq(social_posts::attempts + 1),
                        ))
                        .returning(SocialPostRow::as_returning())
                        .get_result(conn)?;
                    Ok(Some((post, link)))
                })
            })
            .await
    }
}

/// Inserts `row` unless its output is already posted there (then that post, not new), within
/// the daily limit.
fn insert_post(
    conn: &mut PgConnection,
    row: SocialPostRow,
    per_day: i64,
) -> ServiceResult<(SocialPostRow, bool)> {
    let existing = social_posts::table
        .filter(social_posts::job_id.eq(row.job_id))
        .filter(social_posts::format.eq(row.format))
        .filter(social_posts::platform.eq(row.platform))
        .select(SocialPostRow::as_select())
        .first(conn)
        .optional()?;
    if let Some(existing) = existing {
        return Ok((existing, false));
    }
    let today: i64 = social_posts::table
        .filter(social_posts::user_id.eq(row.user_id))
        .filter(social_posts::created_at.gt(Utc::now() - chrono::Duration::hours(24)))
        .count()
        .get_result(conn)?;
    if today >= per_day {
        return Err(ServiceError::new(
            ErrorCode::QuotaExceeded,
            format!("Your plan allows {per_day} posts a day"),
        )
        .with_data(serde_json::json!({ "quota": "posts_per_day", "limit": per_day })));
    }
    let row = diesel::insert_into(social_posts::table)
        .values(&row)
        .on_conflict_do_nothing()
        .returning(SocialPostRow::as_returning())
        .get_result(conn)?;
    Ok((row, true))
}

/// How a post's upload went.
enum Outcome {
    Published(String),
    /// Worth another attempt later (the platform or the network failed).
    Transient(String),
    /// The platform refused: the post fails.
    Refused(String),
}

impl From<PlatformError> for Outcome {
    fn from(PlatformError(why): PlatformError) -> Self {
        Self::Transient(why)
    }
}

/// Uploads posts on a worker.
pub struct Poster {
    pub linking: Linking,
    pub storage: Storage,
    pub events: JobEvents,
    /// Bytes per upload request (a multiple of 256 KiB, as YouTube requires).
    pub chunk_bytes: usize,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub max_attempts: i32,
}

impl Poster {
    /// One attempt at a taken post; the post as it is after.
    pub async fn run(
        &self,
        post: SocialPostRow,
        link: LinkedAccountRow,
    ) -> ServiceResult<SocialPostRow> {
        let outcome = match self.upload(&post, &link).await {
            Ok(outcome) | Err(outcome) => outcome,
        };
        let ended = self.record(&post, outcome).await?;
        let event = serde_json::json!({
            "type": "post", "post_id": ended.id, "job_id": ended.job_id, "platform": ended.platform,
            "status": ended.status, "post_url": ended.post_url, "error": ended.error,
        });
        self.events.notify(ended.user_id, &event).await;
        Ok(ended)
    }

    async fn upload(
        &self,
        post: &SocialPostRow,
        link: &LinkedAccountRow,
    ) -> Result<Outcome, Outcome> {
        let output = self
            .linking
            .jobs
            .output(JobScope::Owner(post.user_id), post.job_id, post.format)
            .await
            .map_err(|e| Outcome::Refused(e.message))?;
        let token = self.linking.access_token(link).await?;
        let total = self
            .storage
            .size_of(&output.storage_key)
            .await
            .map_err(|e| Outcome::Transient(e.to_string()))?;
        let client = crate::client_of(&self.linking.config, link.provider)
            .ok_or(Outcome::Refused("the platform is not configured".into()))?;
        let upload = youtube::Upload {
            http: &self.linking.http,
            api_url: &client.api_url,
            token: &token,
            total,
        };
        let session = match &post.upload_session {
            Some(session) => session.clone(),
            None => {
                let session = upload.start(&post.caption).await?;
                self.set_session(post.id, Some(session.clone()))
                    .await
                    .map_err(|e| Outcome::Transient(e.message))?;
                session
            }
        };
        let mut offset = match upload.confirmed(&session).await? {
            youtube::Progress::Done(video) => return Ok(Outcome::Published(video)),
            youtube::Progress::Stored(bytes) => bytes,
            youtube::Progress::Expired => {
                self.set_session(post.id, None)
                    .await
                    .map_err(|e| Outcome::Transient(e.message))?;
                return Err(Outcome::Transient(
                    "the upload session expired; starting again".into(),
                ));
            }
        };
        loop {
            let chunk = self
                .storage
                .read_range(&output.storage_key, offset, self.chunk_bytes)
                .await
                .map_err(|e| Outcome::Transient(e.to_string()))?;
            match upload.send(&session, offset, chunk).await? {
                youtube::Progress::Done(video) => return Ok(Outcome::Published(video)),
                youtube::Progress::Stored(bytes) => offset = bytes,
                youtube::Progress::Expired => {
                    return Err(Outcome::Refused(
                        "YouTube dropped the upload session".into(),
                    ))
                }
            }
        }
    }

    async fn set_session(&self, id: Uuid, session: Option<String>) -> ServiceResult<()> {
        self.linking
            .db
            .run(move |conn| {
                diesel::update(social_posts::table.find(id))
                    .set((
                        social_posts::upload_session.eq(session),
                        social_posts::status.eq(PostStatus::Uploading),
                        social_posts::updated_at.eq(Utc::now()),
                    ))
                    .execute(conn)?;
                Ok(())
            })
            .await
    }

    /// Writes the attempt's outcome: published, failed, or due again after a backoff.
    async fn record(&self, post: &SocialPostRow, outcome: Outcome) -> ServiceResult<SocialPostRow> {
        let now = Utc::now();
        let (status, url, error, next) = match outcome {
            Outcome::Published(video) => (
                PostStatus::Published,
                Some(format!("https://www.youtube.com/watch?v={video}")),
                None,
                now,
            ),
            Outcome::Transient(why) if post.attempts < self.max_attempts => {
                tracing::warn!(post_id = %post.id, attempt = post.attempts, %why, "posting failed; will retry");
                let delay = retry_delay(post.attempts, self.retry_base, self.retry_max);
                let status = if post.upload_session.is_some() {
                    PostStatus::Uploading
                } else {
                    PostStatus::Pending
                };
                (
                    status,
                    None,
                    None,
                    now + chrono::Duration::from_std(delay).unwrap_or_default(),
                )
            }
            Outcome::Transient(why) | Outcome::Refused(why) => {
                tracing::warn!(post_id = %post.id, %why, "posting failed");
                (
                    PostStatus::Failed,
                    None,
                    Some(format!(
                        "{} refused the upload: {why}",
                        post.platform.name()
                    )),
                    now,
                )
            }
        };
        let id = post.id;
        self.linking
            .db
            .run(move |conn| {
                Ok(diesel::update(social_posts::table.find(id))
                    .set((
                        social_posts::status.eq(status),
                        social_posts::post_url.eq(url),
                        social_posts::error.eq(error),
                        social_posts::next_attempt_at.eq(next),
                        social_posts::held_until.eq(None::<chrono::DateTime<Utc>>),
                        social_posts::updated_at.eq(now),
                    ))
                    .returning(SocialPostRow::as_returning())
                    .get_result(conn)?)
            })
            .await
    }
}

/// The YouTube Data API's resumable upload.
mod youtube {
    use super::*;

    /// Where a session stands.
    pub enum Progress {
        /// Bytes stored so far: the next byte to send.
        Stored(u64),
        /// The video exists: its id.
        Done(String),
        /// The session is gone (expired, or never known).
        Expired,
    }

    pub struct Upload<'a> {
        pub http: &'a reqwest::Client,
        pub api_url: &'a str,
        pub token: &'a str,
        pub total: u64,
    }

    impl Upload<'_> {
        /// Opens a session for a private video titled after the caption; its URI.
        pub async fn start(&self, caption: &str) -> Result<String, Outcome> {
            let title: String = caption
                .lines()
                .next()
                .unwrap_or_default()
                .chars()
                .take(100)
                .collect();
            let title = if title.trim().is_empty() {
                "Montage".to_owned()
            } else {
                title
            };
            let metadata = serde_json::json!({
                "snippet": {"title": title, "description": caption, "categoryId": "20"},
                "status": {"privacyStatus": "private", "selfDeclaredMadeForKids": false},
            });
            let response = self
                .http
                .post(format!("{}/upload/youtube/v3/videos", self.api_url))
                .query(&[("uploadType", "resumable"), ("part", "snippet,status")])
                .bearer_auth(self.token)
                .header("X-Upload-Content-Type", "video/mp4")
                .header("X-Upload-Content-Length", self.total)
                .json(&metadata)
                .send()
                .await
                .map_err(|e| Outcome::Transient(e.to_string()))?;
            let status = response.status();
            if !status.is_success() {
                return Err(refusal(status, response).await);
            }
            response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .ok_or(Outcome::Transient("no session in YouTube's answer".into()))
        }

        /// Asks the session how much it has (`Content-Range: bytes */TOTAL`).
        pub async fn confirmed(&self, session: &str) -> Result<Progress, Outcome> {
            let response = self
                .http
                .put(session)
                .bearer_auth(self.token)
                .header(
                    reqwest::header::CONTENT_RANGE,
                    format!("bytes */{}", self.total),
                )
                .header(reqwest::header::CONTENT_LENGTH, 0)
                .send()
                .await
                .map_err(|e| Outcome::Transient(e.to_string()))?;
            progress(response).await
        }

        /// Sends `chunk`, which starts at byte `offset`.
        pub async fn send(
            &self,
            session: &str,
            offset: u64,
            chunk: Vec<u8>,
        ) -> Result<Progress, Outcome> {
            let last = offset + chunk.len() as u64 - 1;
            let response = self
                .http
                .put(session)
                .bearer_auth(self.token)
                .header(
                    reqwest::header::CONTENT_RANGE,
                    format!("bytes {offset}-{last}/{}", self.total),
                )
                .body(chunk)
                .send()
                .await
                .map_err(|e| Outcome::Transient(e.to_string()))?;
            progress(response).await
        }
    }

    /// 308 with `Range: bytes=0-N` (or none: nothing yet); 200/201 with the video; 404/410
    /// a lost session; 5xx and 429 are worth retrying; other 4xx are refusals.
    async fn progress(response: reqwest::Response) -> Result<Progress, Outcome> {
        #[derive(Deserialize)]
        struct Video {
            id: String,
        }
        let status = response.status();
        match status.as_u16() {
            308 => {
                let range = response
                    .headers()
                    .get(reqwest::header::RANGE)
                    .and_then(|v| v.to_str().ok());
                let next = range
                    .and_then(|r| r.rsplit('-').next())
                    .and_then(|end| end.parse::<u64>().ok())
                    .map_or(0, |end| end + 1);
                Ok(Progress::Stored(next))
            }
            200 | 201 => {
                let video: Video = response
                    .json()
                    .await
                    .map_err(|e| Outcome::Transient(e.to_string()))?;
                Ok(Progress::Done(video.id))
            }
            404 | 410 => Ok(Progress::Expired),
            _ => Err(refusal(status, response).await),
        }
    }

    async fn refusal(status: reqwest::StatusCode, response: reqwest::Response) -> Outcome {
        let body = response.text().await.unwrap_or_default();
        let why = format!("{status}: {body:.200}");
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            Outcome::Transient(why)
        } else {
            Outcome::Refused(why)
        }
    }
}
