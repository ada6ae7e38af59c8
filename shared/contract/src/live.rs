//! `/ws`: every message a live connection carries, one tagged type.

use chrono::{DateTime, Utc};
use domain::jobs::{JobStatus, Stage};
use domain::providers::{PostStatus, ProviderId, SyncStatus};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// One message on a user's live connection, told apart by its `type`. Its variants hold
/// their fields inline (not a reference to a struct), so that every generator reads the
/// union.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveMessage {
    /// One of the user's jobs changed.
    Job {
        job_id: Uuid,
        status: JobStatus,
        stage: Option<Stage>,
        percent: u8,
        attempts: i32,
        ts: DateTime<Utc>,
    },
    /// An import from a linked account started or ended, with its counts.
    Sync {
        sync_id: Uuid,
        link_id: Uuid,
        status: SyncStatus,
        found: i32,
        imported: i32,
        failed: i32,
    },
    /// A post to a platform was published or failed.
    Post {
        post_id: Uuid,
        job_id: Uuid,
        platform: ProviderId,
        status: PostStatus,
        post_url: Option<String>,
        error: Option<String>,
    },
    /// A login session ended (a logout): relayed between API instances, which close the
    /// connections that session opened; never sent to a client.
    SessionEnded { session: Uuid },
}

/// A single-use ticket for `/ws?ticket=…`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WsTicket {
    pub ticket: String,
    /// Seconds the ticket stays valid; it works once.
    pub expires_in: u64,
}
