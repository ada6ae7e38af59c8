//! Live job events, fanned out through Redis pub/sub: whichever process changes a job
//! publishes on its owner's channel, and every API instance relays them to that owner's
//! WebSocket clients.

use std::time::Duration;

use apalis_redis::ConnectionManager;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use domain::identity::{AuthUser, EndedSession};

use db::models::JobRow;
use domain::jobs::{JobStatus, Stage};

/// What a client hears about one of its jobs.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobEvent {
    pub job_id: Uuid,
    pub status: JobStatus,
    pub stage: Option<Stage>,
    pub percent: u8,
    pub attempts: i32,
    pub ts: DateTime<Utc>,
}

impl From<&JobRow> for JobEvent {
    fn from(job: &JobRow) -> Self {
        Self {
            job_id: job.id,
            status: job.status,
            stage: job.stage,
            percent: job.progress.clamp(0, 100) as u8,
            attempts: job.attempts,
            ts: job.updated_at,
        }
    }
}

#[derive(Clone)]
pub struct JobEvents {
    conn: ConnectionManager,
    prefix: String,
}

impl JobEvents {
    pub fn new(conn: ConnectionManager, queue_name: &str) -> Self {
        Self {
            conn,
            prefix: format!("{queue_name}:job-events:"),
        }
    }

    /// Publishes the job's current state to its owner. Best effort and bounded: the job row
    /// stays the truth, and a missed event is repaired by the next one or a status poll.
    pub async fn publish(&self, job: &JobRow) {
        let Ok(payload) = serde_json::to_string(&JobEvent::from(job)) else {
            return;
        };
        let mut conn = self.conn.clone();
        let mut command = redis::cmd("PUBLISH");
        command
            .arg(format!("{}{}", self.prefix, job.user_id))
            .arg(payload);
        let publish = command.query_async::<i64>(&mut conn);
        match tokio::time::timeout(Duration::from_secs(1), publish).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => tracing::debug!(error = %err, "could not publish a job event"),
            Err(_) => tracing::debug!("publishing a job event timed out"),
        }
    }

    /// Tells the user's live connections that `session` ended (a logout), so the ones it
    /// opened close.
    pub async fn session_ended(&self, ended: EndedSession) {
        let notice = serde_json::json!({ "type": "session_ended", "session": ended.session });
        if !self.notify(ended.user, &notice).await {
            tracing::warn!(user = %ended.user, "could not announce a logout to live connections");
        }
    }

    /// Sends `notice` (an object with a `type`) to the user's live connections; whether it
    /// went out. Best effort and bounded, like job events.
    pub async fn notify(&self, user: Uuid, notice: &serde_json::Value) -> bool {
        let mut conn = self.conn.clone();
        let mut command = redis::cmd("PUBLISH");
        command
            .arg(format!("{}{user}", self.prefix))
            .arg(notice.to_string());
        let publish = command.query_async::<i64>(&mut conn);
        matches!(
            tokio::time::timeout(Duration::from_secs(1), publish).await,
            Ok(Ok(_))
        )
    }

    /// The session a message on a user's channel says has ended, if it is such a notice.
    pub fn ended_session(payload: &str) -> Option<Uuid> {
        // Job events never carry a `type`: skip parsing them.
        if !payload.contains(r#""type":"session_ended""#) {
            return None;
        }
        let notice: serde_json::Value = serde_json::from_str(payload).ok()?;
        (notice["type"] == "session_ended")
            .then(|| notice["session"].as_str()?.parse().ok())
            .flatten()
    }

    /// The pattern that matches every user's channel.
    pub fn pattern(&self) -> String {
        format!("{}*", self.prefix)
    }

    /// The user a channel belongs to.
    pub fn owner_of(&self, channel: &str) -> Option<Uuid> {
        channel.strip_prefix(&self.prefix)?.parse().ok()
    }
}

/// Short-lived, single-use WebSocket tickets: a browser cannot set an Authorization header on
/// a WebSocket, and a ticket in the URL is safer to log than the access token itself.
#[derive(Clone)]
pub struct WsTickets {
    conn: ConnectionManager,
    prefix: String,
}

pub const WS_TICKET_TTL: Duration = Duration::from_secs(30);

impl WsTickets {
    pub fn new(conn: ConnectionManager, queue_name: &str) -> Self {
        Self {
            conn,
            prefix: format!("{queue_name}:ws-ticket:"),
        }
    }

    /// A ticket for `user`; a session opened with it lasts no longer than the credential
    /// that asked for it.
    pub async fn issue(&self, user: AuthUser) -> domain::error::ServiceResult<String> {
        let ticket = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(format!("{}{ticket}", self.prefix))
            .arg(format!(
                "{}:{}:{}",
                user.id,
                user.expires_at,
                user.session.map(|s| s.to_string()).unwrap_or_default()
            ))
            .arg("EX")
            .arg(WS_TICKET_TTL.as_secs())
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| domain::error::ServiceError::unavailable("queue", e))?;
        Ok(ticket)
    }

    /// The user a ticket was issued to; the ticket is used up either way.
    pub async fn redeem(&self, ticket: &str) -> domain::error::ServiceResult<Option<AuthUser>> {
        let mut conn = self.conn.clone();
        let owner: Option<String> = redis::cmd("GETDEL")
            .arg(format!("{}{ticket}", self.prefix))
            .query_async(&mut conn)
            .await
            .map_err(|e| domain::error::ServiceError::unavailable("queue", e))?;
        Ok(owner.and_then(|value| {
            let mut parts = value.splitn(3, ':');
            Some(AuthUser {
                id: parts.next()?.parse().ok()?,
                expires_at: parts.next()?.parse().ok()?,
                session: parts.next().and_then(|s| s.parse().ok()),
            })
        }))
    }
}
