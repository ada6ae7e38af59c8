//! `/ws`: every message a live connection carries, one tagged type.

use chrono::{DateTime, Utc};
use domain::jobs::{JobStatus, Stage};
use domain::providers::{PostStatus, ProviderId, SyncStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// One message on a user's live connection, told apart by its `type`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveMessage {
    /// One of the user's jobs changed.
    Job(JobEvent),
    /// An import from a linked account started or ended.
    Sync(SyncEvent),
    /// A post to a platform was published or failed.
    Post(PostEvent),
    /// A login session ended (a logout); the server closes the connections it opened.
    /// Relayed between API instances, never sent to a client.
    SessionEnded { session: Uuid },
}

/// A job's state as it changes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobEvent {
    pub job_id: Uuid,
    pub status: JobStatus,
    pub stage: Option<Stage>,
    pub percent: u8,
    pub attempts: i32,
    pub ts: DateTime<Utc>,
}

/// An import's status and counts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SyncEvent {
    pub sync_id: Uuid,
    pub link_id: Uuid,
    pub status: SyncStatus,
    pub found: i32,
    pub imported: i32,
    pub failed: i32,
}

/// A post's outcome.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PostEvent {
    pub post_id: Uuid,
    pub job_id: Uuid,
    pub platform: ProviderId,
    pub status: PostStatus,
    pub post_url: Option<String>,
    pub error: Option<String>,
}

/// A single-use ticket for `/ws?ticket=…`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WsTicket {
    pub ticket: String,
    /// Seconds the ticket stays valid; it works once.
    pub expires_in: u64,
}
