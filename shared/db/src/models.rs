//! Rows as Diesel reads and writes them.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use domain::{
    clips::{ClipSource, ClipStatus},
    facecam::Facecam,
    identity::TokenPurpose,
    jobs::{FailureCode, FrameRate, JobStatus, OutputFormat, Stage, StoredInput, Style},
    music::Music,
    plans::PlanId,
    providers::{PostStatus, ProviderId, SyncStatus},
    showcase::{Visibility, WeeklyOutcome},
    timings::StageTimings,
    title::Title,
};

use crate::schema::{
    account_syncs, clips, direct_uploads, email_tokens, import_failures, job_inputs, job_outputs,
    jobs, linked_accounts, oauth_states, refresh_tokens, share_links, social_posts, user_data,
    users, weekly_montages,
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    pub plan: PlanId,
    pub created_at: DateTime<Utc>,
    pub stripe_customer_id: Option<String>,
    /// Unique whatever its case; none until the user picks one.
    pub username: Option<String>,
    pub display_name: Option<String>,
    /// When the user proved they read mail at `email`; none until then.
    pub email_verified_at: Option<DateTime<Utc>>,
    /// When multi-factor login was turned on; none while it is off.
    pub mfa_enabled_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshTokenRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub family_id: Uuid,
    pub token_hash: Vec<u8>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = jobs)]
pub struct JobRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub status: JobStatus,
    pub stage: Option<Stage>,
    pub progress: i16,
    pub target_duration: i32,
    pub style: Style,
    pub formats: Vec<OutputFormat>,
    pub hud_remove: bool,
    pub watermark: bool,
    pub attempts: i32,
    pub error_code: Option<FailureCode>,
    pub error_message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub cancel_requested_at: Option<DateTime<Utc>>,
    pub inputs_purged_at: Option<DateTime<Utc>>,
    pub dispatched_at: Option<DateTime<Utc>>,
    pub dispatches: i32,
    pub run_after: DateTime<Utc>,
    pub lease_token: Option<Uuid>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub callback_url: Option<String>,
    pub output_retention_secs: Option<i64>,
    pub outputs_expired_at: Option<DateTime<Utc>>,
    pub timings: Option<StageTimings>,
    /// The id of the request that created the job (`X-Request-ID`), for the logs.
    pub request_id: Option<String>,
    /// The music under the montage, if any.
    pub music: Option<Music>,
    /// Where the streamer's camera sits, if the player said.
    pub facecam: Option<Facecam>,
    /// Drawn over the first seconds, if the player gave one.
    pub title: Option<Title>,
    /// The outputs' frame rate, if the player chose one (else the footage decides).
    pub fps: Option<FrameRate>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = jobs)]
pub struct NewJob {
    pub id: Uuid,
    pub user_id: Uuid,
    pub stage: Option<Stage>,
    pub target_duration: i32,
    pub style: Style,
    pub formats: Vec<OutputFormat>,
    pub hud_remove: bool,
    pub watermark: bool,
    pub callback_url: Option<String>,
    pub output_retention_secs: Option<i64>,
    pub request_id: Option<String>,
    /// The music under the montage, if any.
    pub music: Option<Music>,
    /// Where the streamer's camera sits, if the player said.
    pub facecam: Option<Facecam>,
    /// Drawn over the first seconds, if the player gave one.
    pub title: Option<Title>,
    /// The outputs' frame rate, if the player chose one (else the footage decides).
    pub fps: Option<FrameRate>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = job_inputs)]
pub struct JobInputRow {
    pub job_id: Uuid,
    pub position: i16,
    pub storage_key: String,
    pub label: String,
    pub container: String,
    pub size_bytes: i64,
    pub clip_id: Option<Uuid>,
    pub from_library: bool,
}

/// A library clip. Its facts, thumbnail and analysis are there once it is READY.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = clips)]
#[diesel(treat_none_as_default_value = true)]
pub struct ClipRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub source: ClipSource,
    pub external_id: Option<String>,
    pub label: String,
    pub storage_key: String,
    pub container: String,
    pub size_bytes: i64,
    pub status: ClipStatus,
    pub rejection: Option<String>,
    pub duration_seconds: Option<f64>,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub has_audio: Option<bool>,
    pub thumbnail_key: Option<String>,
    pub analysis: Option<serde_json::Value>,
    pub examining_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Where the streamer's camera sits in this clip, if its owner said.
    pub facecam: Option<Facecam>,
}

/// An OAuth authorisation in flight: who started it, for which platform, until when.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = oauth_states)]
pub struct OAuthStateRow {
    /// SHA-256 of the state the platform carries back.
    pub state_hash: Vec<u8>,
    pub user_id: Uuid,
    pub provider: ProviderId,
    /// Sealed.
    pub pkce_verifier: Option<Vec<u8>>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// SHA-256 of the value of the cookie given to the browser that started.
    pub browser_hash: Vec<u8>,
}

/// A platform account linked to a user. The tokens are sealed.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = linked_accounts)]
pub struct LinkedAccountRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub provider: ProviderId,
    pub external_id: String,
    pub display_name: String,
    pub access_token: Option<Vec<u8>>,
    pub refresh_token: Option<Vec<u8>>,
    pub token_expires_at: Option<DateTime<Utc>>,
    pub scopes: Vec<String>,
    pub last_synced_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One import of a linked account's clips, and how far it got.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = account_syncs)]
pub struct AccountSyncRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub link_id: Uuid,
    pub status: SyncStatus,
    /// New clips the platform listed (and earlier failures tried again).
    pub found: i32,
    pub imported: i32,
    pub failed: i32,
    pub error: Option<String>,
    pub held_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A platform clip that failed to import; the next sync tries it again.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = import_failures)]
pub struct ImportFailureRow {
    pub link_id: Uuid,
    pub external_id: String,
    pub title: String,
    pub attempts: i32,
    pub last_error: String,
    pub updated_at: DateTime<Utc>,
}

/// A montage posted (or being posted) to a linked account.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = social_posts)]
pub struct SocialPostRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub job_id: Uuid,
    /// None once the link was removed; the post keeps what it was.
    pub link_id: Option<Uuid>,
    pub platform: ProviderId,
    pub format: OutputFormat,
    pub caption: String,
    pub status: PostStatus,
    /// Where the post can be seen, once PUBLISHED.
    pub post_url: Option<String>,
    pub error: Option<String>,
    pub attempts: i32,
    /// The platform's upload session: an interrupted upload resumes there.
    pub upload_session: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
    pub held_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The platform account's name when it was posted to.
    pub account_name: String,
}

/// A direct upload in progress.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = direct_uploads)]
pub struct DirectUploadRow {
    pub id: Uuid,
    pub user_id: Uuid,
    /// The library clip it becomes; its object's key is the clip's.
    pub clip_id: Uuid,
    pub storage_key: String,
    pub s3_upload_id: String,
    pub label: String,
    /// Declared by the client; completion checks the parts add up to it.
    pub size_bytes: i64,
    /// Every part but the last is exactly this long.
    pub part_bytes: i64,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// A completion under way holds the upload until then.
    pub completing_until: Option<DateTime<Utc>>,
    /// Completed: the clip exists; the row answers repeated completions until it expires.
    pub completed_at: Option<DateTime<Utc>>,
}

impl ClipRow {
    /// A clip just stored, waiting for examination: an upload (`external_id` none) or an
    /// import.
    pub fn pending(
        id: Uuid,
        user_id: Uuid,
        source: ClipSource,
        external_id: Option<String>,
        stored: &StoredInput,
    ) -> Self {
        let now = Utc::now();
        Self {
            id,
            user_id,
            source,
            external_id,
            label: stored.label.clone(),
            storage_key: stored.storage_key.clone(),
            container: stored.container.clone(),
            size_bytes: stored.size_bytes as i64,
            status: ClipStatus::Pending,
            rejection: None,
            duration_seconds: None,
            width: None,
            height: None,
            has_audio: None,
            thumbnail_key: None,
            analysis: None,
            examining_until: None,
            facecam: None,
            created_at: now,
            updated_at: now,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = job_outputs)]
#[diesel(treat_none_as_default_value = true)]
pub struct JobOutputRow {
    pub job_id: Uuid,
    pub format: OutputFormat,
    pub storage_key: String,
    pub width: i32,
    pub height: i32,
    pub duration_seconds: f64,
    pub size_bytes: i64,
    pub created_at: DateTime<Utc>,
    pub poster_key: Option<String>,
}

/// One value of a user's application data.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = user_data)]
pub struct UserDataRow {
    pub user_id: Uuid,
    /// Empty when the client named no application.
    pub application_id: String,
    pub key: String,
    pub value: serde_json::Value,
    /// The value's size as JSON text.
    pub size_bytes: i32,
    pub updated_at: DateTime<Utc>,
}

/// A single-use token sent by mail, stored as its hash.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = email_tokens)]
pub struct EmailTokenRow {
    pub token_hash: Vec<u8>,
    pub user_id: Uuid,
    pub purpose: TokenPurpose,
    pub email: String,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A user's week as the weekly run found it: the montage it built, or too little material.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = weekly_montages)]
#[diesel(treat_none_as_default_value = false)]
pub struct WeeklyMontageRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub week_start: DateTime<Utc>,
    pub week_end: DateTime<Utc>,
    pub outcome: WeeklyOutcome,
    /// The job that renders it; none for too little material, or once its owner deleted it.
    pub job_id: Option<Uuid>,
    pub clip_count: i32,
    pub visibility: Visibility,
    pub featured_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A public link to a job's montage.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = share_links)]
pub struct ShareLinkRow {
    pub token: String,
    pub job_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}
