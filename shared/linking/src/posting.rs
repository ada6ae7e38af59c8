//! Posting montages to linked accounts: one post per (job, format, platform), uploaded by a
//! worker. YouTube takes the output through a resumable upload session, in chunks; after a
//! failure the next attempt asks the session how far it got and carries on from there.
//! Transient failures retry with backoff; the platform's refusals fail the post.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Deserialize;
use uuid::Uuid;

use contract::live::LiveMessage;
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
            link_id: Some(link.id),
            account_name: link.display_name.clone(),
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
                        .filter(social_posts::link_id.is_not_null())
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
                    let Some((post, Some(link_id))) = due.map(|p| {
                        let link = p.link_id;
                        (p, link)
                    }) else {
                        return Ok(None);
                    };
                    let link = linked_accounts::table
                        .find(link_id)
                        .select(LinkedAccountRow::as_select())
                        .first(conn)?;
                    // Asking how a processing post is doing is not another attempt.
                    let attempt = i32::from(post.status != PostStatus::Processing);
                    let post = diesel::update(social_posts::table.find(post.id))
                        .set((
                            social_posts::held_until.eq(now + hold),
                            social_posts::attempts.eq(post.attempts + attempt),
                        ))
                        .returning(SocialPostRow::as_returning())
                        .get_result(conn)?;
                    Ok(Some((post, link)))
                })
            })
            .await
    }
}

/// Fails the posts still open through link `link` of `user`'s, which is being removed: no
/// token is left to finish them. Done posts keep their platform, account name and URL.
pub(crate) fn end_open_posts(conn: &mut PgConnection, user: Uuid, link: Uuid) -> QueryResult<()> {
    diesel::update(
        social_posts::table
            .filter(social_posts::user_id.eq(user))
            .filter(social_posts::link_id.eq(link))
            .filter(social_posts::status.eq_any(OPEN)),
    )
    .set((
        social_posts::status.eq(PostStatus::Failed),
        social_posts::error.eq(
            "The account was unlinked before the video went out; link it again and post it again",
        ),
        social_posts::held_until.eq(None::<chrono::DateTime<Utc>>),
        social_posts::updated_at.eq(Utc::now()),
    ))
    .execute(conn)?;
    Ok(())
}

/// Inserts `row` unless its output is already posted there (then that post, not new), within
/// the daily limit. A FAILED post of the output is tried again instead: a new attempt, as
/// `row` asks it (its link and caption).
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
        .for_update()
        .first(conn)
        .optional()?;
    let failed = match existing {
        Some(existing) if existing.status != PostStatus::Failed => return Ok((existing, false)),
        Some(failed) => Some(failed.id),
        None => None,
    };
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
    let row = match failed {
        Some(id) => diesel::update(social_posts::table.find(id))
            .set((
                social_posts::link_id.eq(row.link_id),
                social_posts::account_name.eq(&row.account_name),
                social_posts::caption.eq(&row.caption),
                social_posts::status.eq(PostStatus::Pending),
                social_posts::error.eq(None::<String>),
                social_posts::attempts.eq(0),
                social_posts::upload_session.eq(None::<String>),
                social_posts::next_attempt_at.eq(row.next_attempt_at),
                social_posts::held_until.eq(None::<chrono::DateTime<Utc>>),
                social_posts::created_at.eq(row.created_at),
                social_posts::updated_at.eq(row.updated_at),
            ))
            .returning(SocialPostRow::as_returning())
            .get_result(conn)?,
        None => diesel::insert_into(social_posts::table)
            .values(&row)
            .returning(SocialPostRow::as_returning())
            .get_result(conn)?,
    };
    Ok((row, true))
}

/// How a post's upload went.
enum Outcome {
    /// Out, at this URL.
    Published(String),
    /// Sent; the platform is processing it (its id there): ask again later.
    Processing(String),
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
        let event = LiveMessage::Post {
            post_id: ended.id,
            job_id: ended.job_id,
            platform: ended.platform,
            status: ended.status,
            post_url: ended.post_url.clone(),
            error: ended.error.clone(),
        };
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
        let target = Target {
            http: &self.linking.http,
            api_url: &client.api_url,
            token: &token,
            total,
        };
        let key = &output.storage_key;
        match post.platform {
            ProviderId::Youtube => self.to_youtube(post, key, target).await,
            ProviderId::Tiktok => self.to_tiktok(post, key, target).await,
            other => Err(Outcome::Refused(format!("{} takes no posts", other.name()))),
        }
    }

    /// Bytes `[offset, offset + len)` of the output.
    async fn chunk(&self, key: &str, offset: u64, len: usize) -> Result<Vec<u8>, Outcome> {
        self.storage
            .read_range(key, offset, len)
            .await
            .map_err(|e| Outcome::Transient(e.to_string()))
    }

    /// YouTube: resumes the post's session where YouTube says it stands.
    async fn to_youtube(
        &self,
        post: &SocialPostRow,
        key: &str,
        target: Target<'_>,
    ) -> Result<Outcome, Outcome> {
        let session = match &post.upload_session {
            Some(session) => session.clone(),
            None => {
                let session = youtube::start(&target, &post.caption).await?;
                self.set_session(post.id, Some(session.clone()))
                    .await
                    .map_err(|e| Outcome::Transient(e.message))?;
                session
            }
        };
        let mut progress = youtube::confirmed(&target, &session).await?;
        loop {
            match progress {
                youtube::Progress::Done(video) => {
                    let url = format!("https://www.youtube.com/watch?v={video}");
                    return Ok(Outcome::Published(url));
                }
                youtube::Progress::Stored(offset) => {
                    let chunk = self.chunk(key, offset, self.chunk_bytes).await?;
                    progress = youtube::send(&target, &session, offset, chunk).await?;
                }
                youtube::Progress::Expired => {
                    self.set_session(post.id, None)
                        .await
                        .map_err(|e| Outcome::Transient(e.message))?;
                    let why = "the upload session expired; starting again";
                    return Err(Outcome::Transient(why.into()));
                }
            }
        }
    }

    /// TikTok: a post being processed is asked how it went; otherwise the video is sent
    /// from the start (a TikTok upload cannot be resumed), in order, in chunks.
    async fn to_tiktok(
        &self,
        post: &SocialPostRow,
        key: &str,
        target: Target<'_>,
    ) -> Result<Outcome, Outcome> {
        if let (PostStatus::Processing, Some(publish_id)) = (post.status, &post.upload_session) {
            return tiktok::status(&target, publish_id).await;
        }
        let chunks = tiktok::chunks(target.total, self.chunk_bytes as u64);
        let (publish_id, upload_url) = tiktok::init(&target, &post.caption, &chunks).await?;
        for &(offset, len) in &chunks {
            let chunk = self.chunk(key, offset, len as usize).await?;
            tiktok::send(&target, &upload_url, offset, chunk).await?;
        }
        Ok(Outcome::Processing(publish_id))
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

    /// Writes the attempt's outcome: published, processing (asked again after a pause),
    /// failed, or due again after a backoff.
    async fn record(&self, post: &SocialPostRow, outcome: Outcome) -> ServiceResult<SocialPostRow> {
        let now = Utc::now();
        let next = self.next_state(post, outcome, now);
        let id = post.id;
        self.linking
            .db
            .run(move |conn| {
                if let Some(session) = next.session {
                    diesel::update(social_posts::table.find(id))
                        .set(social_posts::upload_session.eq(session))
                        .execute(conn)?;
                }
                Ok(diesel::update(social_posts::table.find(id))
                    .set((
                        social_posts::status.eq(next.status),
                        social_posts::post_url.eq(next.url),
                        social_posts::error.eq(next.error),
                        social_posts::next_attempt_at.eq(next.at),
                        social_posts::held_until.eq(None::<chrono::DateTime<Utc>>),
                        social_posts::updated_at.eq(now),
                    ))
                    .returning(SocialPostRow::as_returning())
                    .get_result(conn)?)
            })
            .await
    }

    /// Where an attempt's outcome leaves the post.
    fn next_state(&self, post: &SocialPostRow, outcome: Outcome, now: DateTime<Utc>) -> NextState {
        let after = |delay| now + chrono::Duration::from_std(delay).unwrap_or_default();
        let state = |status, at| NextState {
            status,
            url: None,
            error: None,
            at,
            session: None,
        };
        let failed = |refused| NextState {
            error: Some(failure_words(post, refused)),
            ..state(PostStatus::Failed, now)
        };
        match outcome {
            Outcome::Published(url) => NextState {
                url: Some(url),
                ..state(PostStatus::Published, now)
            },
            Outcome::Processing(publish_id) => NextState {
                session: Some(Some(publish_id)),
                ..state(PostStatus::Processing, after(self.retry_base))
            },
            Outcome::Transient(why) if post.attempts < self.max_attempts => {
                tracing::warn!(post_id = %post.id, attempt = post.attempts, %why, "posting failed; will retry");
                let delay = retry_delay(post.attempts, self.retry_base, self.retry_max);
                let (status, restart) = status_to_retry(post);
                NextState {
                    session: restart.then_some(None),
                    ..state(status, after(delay))
                }
            }
            // What the platform said goes to the log; the player reads words.
            Outcome::Transient(why) => {
                tracing::warn!(post_id = %post.id, %why, "posting failed for good");
                failed(false)
            }
            Outcome::Refused(why) => {
                tracing::warn!(post_id = %post.id, %why, "the platform refused a post");
                failed(true)
            }
        }
    }
}

/// Where a post goes after an attempt.
struct NextState {
    status: PostStatus,
    url: Option<String>,
    error: Option<String>,
    /// When it is tried or asked about again.
    at: DateTime<Utc>,
    /// The upload session as this attempt leaves it, when it changes it (the row has the
    /// one an upload opened; the post read before the attempt does not).
    session: Option<Option<String>>,
}

/// What the player reads about a post that failed for good: refused by the platform, or
/// the platform out of reach.
fn failure_words(post: &SocialPostRow, refused: bool) -> String {
    let platform = post.platform.name();
    if refused {
        format!("{platform} refused the video; check the account on {platform} (its limits and permissions), then post it again")
    } else {
        let attempts = post.attempts;
        format!("{platform} could not be reached after {attempts} attempts; post it again later")
    }
}

/// The status a post waits in for its next try, and whether its upload starts again: a
/// broken TikTok upload does; a YouTube session resumes.
fn status_to_retry(post: &SocialPostRow) -> (PostStatus, bool) {
    match (post.platform, post.status) {
        (_, PostStatus::Processing) => (PostStatus::Processing, false),
        (ProviderId::Tiktok, _) => (PostStatus::Pending, true),
        _ => (PostStatus::Uploading, false),
    }
}

/// Where a post goes: the platform's API, the link's token, and the video's size.
struct Target<'a> {
    http: &'a reqwest::Client,
    api_url: &'a str,
    token: &'a str,
    total: u64,
}

/// The caption's first line (up to 100 characters) as a title.
fn title_of(caption: &str) -> String {
    let title: String = caption
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(100)
        .collect();
    if title.trim().is_empty() {
        "Montage".to_owned()
    } else {
        title
    }
}

/// A platform's "no": 5xx and 429 are worth retrying, other answers fail the post.
async fn refusal(response: reqwest::Response) -> Outcome {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let why = format!("{status}: {body:.200}");
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        Outcome::Transient(why)
    } else {
        Outcome::Refused(why)
    }
}

/// Sends `chunk`, which starts at byte `offset` of the video, with its `Content-Range`.
async fn put_range(
    target: &Target<'_>,
    request: reqwest::RequestBuilder,
    offset: u64,
    chunk: Vec<u8>,
) -> Result<reqwest::Response, Outcome> {
    let last = offset + chunk.len() as u64 - 1;
    let range = format!("bytes {offset}-{last}/{}", target.total);
    request
        .header(reqwest::header::CONTENT_RANGE, range)
        .body(chunk)
        .send()
        .await
        .map_err(network)
}

fn network(err: reqwest::Error) -> Outcome {
    Outcome::Transient(err.to_string())
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

    /// Opens a session for a private video titled after the caption; its URI.
    pub async fn start(target: &Target<'_>, caption: &str) -> Result<String, Outcome> {
        let metadata = serde_json::json!({
            "snippet": {"title": title_of(caption), "description": caption, "categoryId": "20"},
            "status": {"privacyStatus": "private", "selfDeclaredMadeForKids": false},
        });
        let response = target
            .http
            .post(format!("{}/upload/youtube/v3/videos", target.api_url))
            .query(&[("uploadType", "resumable"), ("part", "snippet,status")])
            .bearer_auth(target.token)
            .header("X-Upload-Content-Type", "video/mp4")
            .header("X-Upload-Content-Length", target.total)
            .json(&metadata)
            .send()
            .await
            .map_err(network)?;
        if !response.status().is_success() {
            return Err(refusal(response).await);
        }
        response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or(Outcome::Transient("no session in YouTube's answer".into()))
    }

    /// Asks the session how much it has (`Content-Range: bytes */TOTAL`).
    pub async fn confirmed(target: &Target<'_>, session: &str) -> Result<Progress, Outcome> {
        let response = target
            .http
            .put(session)
            .bearer_auth(target.token)
            .header(
                reqwest::header::CONTENT_RANGE,
                format!("bytes */{}", target.total),
            )
            .header(reqwest::header::CONTENT_LENGTH, 0)
            .send()
            .await
            .map_err(network)?;
        progress(response).await
    }

    /// Sends `chunk`, which starts at byte `offset`.
    pub async fn send(
        target: &Target<'_>,
        session: &str,
        offset: u64,
        chunk: Vec<u8>,
    ) -> Result<Progress, Outcome> {
        let request = target.http.put(session).bearer_auth(target.token);
        progress(put_range(target, request, offset, chunk).await?).await
    }

    /// 308 with `Range: bytes=0-N` (or none: nothing yet); 200/201 with the video; 404/410
    /// a lost session; anything else a refusal.
    async fn progress(response: reqwest::Response) -> Result<Progress, Outcome> {
        #[derive(Deserialize)]
        struct Video {
            id: String,
        }
        match response.status().as_u16() {
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
                let video: Video = response.json().await.map_err(network)?;
                Ok(Progress::Done(video.id))
            }
            404 | 410 => Ok(Progress::Expired),
            _ => Err(refusal(response).await),
        }
    }
}

/// TikTok's Content Posting API: init, the chunks in order, then the publish status.
mod tiktok {
    use super::*;

    /// TikTok's envelope: `error.code` is `ok` on success.
    #[derive(Deserialize)]
    struct Answer<T> {
        data: Option<T>,
        error: Failure,
    }

    #[derive(Deserialize)]
    struct Failure {
        code: String,
        #[serde(default)]
        message: String,
    }

    async fn answer<T: serde::de::DeserializeOwned>(
        response: reqwest::Response,
    ) -> Result<T, Outcome> {
        if !response.status().is_success() {
            return Err(refusal(response).await);
        }
        let answer: Answer<T> = response.json().await.map_err(network)?;
        match (answer.error.code.as_str(), answer.data) {
            ("ok", Some(data)) => Ok(data),
            (code, _) => Err(Outcome::Refused(format!(
                "{code}: {}",
                answer.error.message
            ))),
        }
    }

    /// Each chunk's (offset, length): all `size` long but the last, which takes the rest;
    /// a video smaller than a chunk goes whole.
    pub fn chunks(total: u64, size: u64) -> Vec<(u64, u64)> {
        let size = size.min(total).max(1);
        let count = (total / size).max(1);
        (0..count)
            .map(|i| {
                let offset = i * size;
                let len = if i + 1 == count { total - offset } else { size };
                (offset, len)
            })
            .collect()
    }

    /// Starts a direct post (private: `SELF_ONLY`, as TikTok requires of unaudited apps);
    /// its publish id and upload URL.
    pub async fn init(
        target: &Target<'_>,
        caption: &str,
        chunks: &[(u64, u64)],
    ) -> Result<(String, String), Outcome> {
        #[derive(Deserialize)]
        struct Started {
            publish_id: String,
            upload_url: String,
        }
        let body = serde_json::json!({
            "post_info": {"title": caption, "privacy_level": "SELF_ONLY"},
            "source_info": {
                "source": "FILE_UPLOAD", "video_size": target.total,
                "chunk_size": chunks[0].1, "total_chunk_count": chunks.len(),
            },
        });
        let response = target
            .http
            .post(format!("{}/v2/post/publish/video/init/", target.api_url))
            .bearer_auth(target.token)
            .json(&body)
            .send()
            .await
            .map_err(network)?;
        let started: Started = answer(response).await?;
        Ok((started.publish_id, started.upload_url))
    }

    /// Sends one chunk, which starts at byte `offset`.
    pub async fn send(
        target: &Target<'_>,
        upload_url: &str,
        offset: u64,
        chunk: Vec<u8>,
    ) -> Result<(), Outcome> {
        let request = target.http.put(upload_url);
        let request = request.header(reqwest::header::CONTENT_TYPE, "video/mp4");
        let response = put_range(target, request, offset, chunk).await?;
        match response.status().as_u16() {
            201 | 206 => Ok(()),
            _ => Err(refusal(response).await),
        }
    }

    /// How the post is doing: published, still processing, or failed with TikTok's reason.
    pub async fn status(target: &Target<'_>, publish_id: &str) -> Result<Outcome, Outcome> {
        #[derive(Deserialize)]
        struct Status {
            status: String,
            #[serde(default)]
            fail_reason: Option<String>,
            #[serde(default, rename = "publicaly_available_post_id")]
            public_ids: Vec<serde_json::Value>,
        }
        let response = target
            .http
            .post(format!("{}/v2/post/publish/status/fetch/", target.api_url))
            .bearer_auth(target.token)
            .json(&serde_json::json!({ "publish_id": publish_id }))
            .send()
            .await
            .map_err(network)?;
        let status: Status = answer(response).await?;
        match status.status.as_str() {
            "PUBLISH_COMPLETE" => {
                // Private posts have no public id; the creator finds them in TikTok Studio.
                let url = match status.public_ids.first() {
                    Some(id) => format!(
                        "https://www.tiktok.com/video/{}",
                        id.to_string().trim_matches('"')
                    ),
                    None => "https://www.tiktok.com/tiktokstudio/content".to_owned(),
                };
                Ok(Outcome::Published(url))
            }
            "FAILED" => Err(Outcome::Refused(
                status.fail_reason.unwrap_or_else(|| "failed".into()),
            )),
            _ => Ok(Outcome::Processing(publish_id.to_owned())),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::chunks;

        #[test]
        fn chunks_are_whole_but_the_last_which_takes_the_rest() {
            assert_eq!(chunks(25, 10), [(0, 10), (10, 15)]);
            assert_eq!(chunks(20, 10), [(0, 10), (10, 10)]);
            assert_eq!(chunks(7, 10), [(0, 7)]);
        }
    }
}
