//! Live job events, fanned out through Redis pub/sub: whichever process changes a job
//! publishes on its owner's channel, and every API instance relays them to that owner's
//! WebSocket clients.

use std::time::Duration;

use apalis_redis::ConnectionManager;
use contract::live::LiveMessage;
use uuid::Uuid;

use db::models::JobRow;
use domain::identity::{AuthUser, EndedSession};

/// What a client hears about `job`.
pub fn job_event(job: &JobRow) -> LiveMessage {
    LiveMessage::Job {
        job_id: job.id,
        status: job.status,
        stage: job.stage,
        percent: job.progress.clamp(0, 100) as u8,
        attempts: job.attempts,
        ts: job.updated_at,
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
        if !self.notify(job.user_id, &job_event(job)).await {
            tracing::debug!(job = %job.id, "could not publish a job event");
        }
    }

    /// Tells the user's live connections that `session` ended (a logout), so the ones it
    /// opened close.
    pub async fn session_ended(&self, ended: EndedSession) {
        let notice = LiveMessage::SessionEnded {
            session: ended.session,
        };
        if !self.notify(ended.user, &notice).await {
            tracing::warn!(user = %ended.user, "could not announce a logout to live connections");
        }
    }

    /// Sends `message` to the user's live connections; whether it went out. Best effort and
    /// bounded: the rows stay the truth, and a missed message is repaired by the next one
    /// or a read.
    pub async fn notify(&self, user: Uuid, message: &LiveMessage) -> bool {
        let Ok(payload) = serde_json::to_string(message) else {
            return false;
        };
        let mut conn = self.conn.clone();
        let mut command = redis::cmd("PUBLISH");
        command.arg(format!("{}{user}", self.prefix)).arg(payload);
        let publish = command.query_async::<i64>(&mut conn);
        matches!(
            tokio::time::timeout(Duration::from_secs(1), publish).await,
            Ok(Ok(_))
        )
    }

    /// The session a message on a user's channel says has ended, if it is such a notice.
    pub fn ended_session(payload: &str) -> Option<Uuid> {
        // Most messages are job events: skip parsing them.
        if !payload.contains(r#""type":"session_ended""#) {
            return None;
        }
        match serde_json::from_str(payload).ok()? {
            LiveMessage::SessionEnded { session } => Some(session),
            _ => None,
        }
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
