//! Live job events, fanned out through Redis pub/sub: whichever process changes a job
//! publishes on its owner's channel, and every API instance relays them to that owner's
//! WebSocket clients.

use std::time::Duration;

use apalis_redis::ConnectionManager;
use chrono::{DateTime, Utc};
use contract::live::LiveMessage;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use db::models::JobRow;
use domain::identity::{AuthUser, EndedSession};
use domain::jobs::{JobStatus, Stage};

/// A progress mark outlives its last tick this long: a running stage ticks twice a second,
/// and a mark left by a dead worker is ignored anyway (its lease no longer holds the row).
const PROGRESS_MARK_TTL: Duration = Duration::from_secs(600);

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
    marks: String,
}

/// How far a running attempt is within its stage. The worker keeps it in Redis, not in the
/// job's row (written when the stage changes), so a render's progress costs the database
/// nothing; readers lay it over the row. It counts only while its attempt's lease holds the
/// row and the row is still at its stage, so a stale worker's mark never shows.
#[derive(Serialize, Deserialize)]
struct ProgressMark {
    lease: Uuid,
    stage: Stage,
    percent: u8,
    at: DateTime<Utc>,
}

impl ProgressMark {
    fn lay_over(self, job: &mut JobRow) {
        let current = job.status == JobStatus::Processing
            && job.lease_token == Some(self.lease)
            && job.stage == Some(self.stage)
            && self.at >= job.updated_at;
        if current {
            job.progress = i16::from(self.percent.min(100));
            job.updated_at = self.at;
        }
    }
}

impl JobEvents {
    pub fn new(conn: ConnectionManager, queue_name: &str) -> Self {
        Self {
            conn,
            prefix: format!("{queue_name}:job-events:"),
            marks: format!("{queue_name}:job-progress:"),
        }
    }

    /// Keeps a running attempt's progress within `stage` as the job's mark, and publishes
    /// it, in one round trip. `job` is the row as the attempt claimed it (its lease fences
    /// the mark). Best effort and bounded, like [`Self::publish`].
    pub async fn publish_progress(&self, job: &JobRow, stage: Stage, percent: u8) {
        let Some(lease) = job.lease_token else {
            return;
        };
        let mark = ProgressMark {
            lease,
            stage,
            percent: percent.min(100),
            at: Utc::now(),
        };
        let event = LiveMessage::Job {
            job_id: job.id,
            status: job.status,
            stage: Some(stage),
            percent: mark.percent,
            attempts: job.attempts,
            ts: mark.at,
        };
        let (Ok(mark), Ok(event)) = (serde_json::to_string(&mark), serde_json::to_string(&event))
        else {
            return;
        };
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(format!("{}{}", self.marks, job.id))
            .arg(mark)
            .arg("EX")
            .arg(PROGRESS_MARK_TTL.as_secs())
            .ignore()
            .cmd("PUBLISH")
            .arg(format!("{}{}", self.prefix, job.user_id))
            .arg(event)
            .ignore();
        let mut conn = self.conn.clone();
        let sent = tokio::time::timeout(Duration::from_secs(1), pipe.query_async::<()>(&mut conn));
        if !matches!(sent.await, Ok(Ok(()))) {
            tracing::debug!(job = %job.id, "could not record a job's progress");
        }
    }

    /// Lays the running jobs' progress marks over their rows, from one round trip. Rows stay
    /// as read when Redis does not answer: their progress is then their stage's start.
    pub async fn lay_progress_over(&self, jobs: &mut [JobRow]) {
        let running: Vec<usize> = (0..jobs.len())
            .filter(|&i| jobs[i].status == JobStatus::Processing)
            .collect();
        if running.is_empty() {
            return;
        }
        let mut command = redis::cmd("MGET");
        for &i in &running {
            command.arg(format!("{}{}", self.marks, jobs[i].id));
        }
        let mut conn = self.conn.clone();
        let read = command.query_async::<Vec<Option<String>>>(&mut conn);
        let Ok(Ok(marks)) = tokio::time::timeout(Duration::from_secs(1), read).await else {
            tracing::debug!("could not read progress marks");
            return;
        };
        for (i, mark) in running.into_iter().zip(marks) {
            if let Some(mark) = mark.and_then(|m| serde_json::from_str::<ProgressMark>(&m).ok()) {
                mark.lay_over(&mut jobs[i]);
            }
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
