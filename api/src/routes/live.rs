//! `/ws`: live job events over WebSocket. Each API instance holds one Redis pattern
//! subscription (the [`EventHub`]) and hands every session only its own user's events.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{CloseCode, CloseReason, Message, MessageStream, Session};
use contract::live::WsTicket;
use domain::error::ServiceError;
use domain::identity::AuthUser;
use engine::events::{JobEvents, WS_TICKET_TTL};
use serde::Deserialize;
use tokio::sync::broadcast;
use utoipa::IntoParams;

use crate::routes::table::Area;
use crate::{
    error::{ApiError, ApiResult, Envelope, ErrorEnvelope},
    hub::{Routed, SessionSlot},
    state::{AppState, Caller},
};

/// This area's routes, with their documentation.
#[derive(utoipa::OpenApi)]
#[openapi(paths(connect, issue_ticket))]
struct LiveApi;

pub fn area() -> Area {
    Area::new(<LiveApi as utoipa::OpenApi>::openapi())
        .handle("connect", connect)
        .handle("issue_ticket", issue_ticket)
}

/// The server pings this often; a client that has sent nothing (pongs included) for
/// [`SILENCE_LIMIT`] is disconnected with close code 4000.
const PING_EVERY: Duration = Duration::from_secs(15);
const SILENCE_LIMIT: Duration = Duration::from_secs(45);
/// Close code: the client stopped answering pings.
const CLOSE_UNRESPONSIVE: u16 = 4000;
/// Close code: the token (or the ticket's token) the session opened with has expired.
const CLOSE_EXPIRED: u16 = 4001;
/// Close code: the user logged out of the session the token belongs to.
const CLOSE_LOGGED_OUT: u16 = 4002;

#[derive(Deserialize, IntoParams)]
pub struct WsCredentials {
    /// An access token.
    token: Option<String>,
    /// A ticket from `POST /api/v2/ws/ticket` (single use, valid 30 s).
    ticket: Option<String>,
}

/// Live updates of the caller's jobs over WebSocket.
///
/// Authenticate with `?token=<access token>` or `?ticket=<ticket>`. Each text message is a
/// `LiveMessage` (see the schemas) about the caller's own jobs, imports or posts, never
/// anyone else's, told apart by its `type`: `job` `{job_id, status, stage, percent,
/// attempts, ts}`, `sync` (an import's counts) or `post` (a post's outcome). Ignore types
/// you do not know. The server pings every 15 s; answer pongs (browsers do). Close codes:
/// 1000 normal closure, 1001 the server is going away, 1011 the event feed failed,
/// 4000 no message or pong from the client for 45 s, 4001 the token expired (reconnect with
/// a fresh one), 4002 the user logged out of the session the token belongs to. Sessions are capped per account and per server (429 before the upgrade). Missed events are not replayed: after a
/// reconnect, read the job's status with `GET /api/v2/jobs/{job_id}`.
#[utoipa::path(
    get, path = "/ws", tag = "live", params(WsCredentials),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "Not a WebSocket handshake", body = ErrorEnvelope),
        (status = 401, description = "Missing, invalid or expired token or ticket", body = ErrorEnvelope),
        (status = 429, description = "Too many sessions for this account or server", body = ErrorEnvelope),
    )
)]
pub async fn connect(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Payload,
    credentials: web::Query<WsCredentials>,
) -> ApiResult<HttpResponse> {
    let user = match &*credentials {
        WsCredentials {
            token: Some(token),
            ticket: None,
        } => state.auth.authenticate(token)?,
        WsCredentials {
            token: None,
            ticket: Some(ticket),
        } => state
            .tickets
            .redeem(ticket)
            .await?
            .ok_or_else(|| ServiceError::unauthenticated("Unknown, used or expired ticket"))?,
        _ => {
            return Err(ServiceError::unauthenticated(
                "Pass either ?token=<access token> or ?ticket=<ticket>",
            )
            .into())
        }
    };
    let slot = state.hub.admit(user.id)?;
    let (response, session, messages) = actix_ws::handle(&request, body)
        .map_err(|err| ApiError::bad_request(format!("Not a WebSocket handshake: {err}")))?;
    let events = state.hub.subscribe();
    actix_web::rt::spawn(run_session(user, slot, session, messages, events));
    Ok(response)
}

/// What passing one hub event to a session led to.
enum Delivery {
    /// Sent, or not for this session.
    Sent,
    /// The session must close with this reason.
    Close(Option<CloseReason>),
    /// The client is gone.
    Gone,
}

/// Sends the caller its own job events; closes the session when its login session ended.
async fn deliver(
    session: &mut Session,
    caller: &AuthUser,
    event: Result<Routed, broadcast::error::RecvError>,
) -> Delivery {
    match event {
        Ok(event) if event.0 == caller.id => {
            if let Some(ended) = JobEvents::ended_session(&event.1) {
                if Some(ended) != caller.session {
                    return Delivery::Sent;
                }
                return Delivery::Close(Some(CloseReason {
                    code: CloseCode::Other(CLOSE_LOGGED_OUT),
                    description: Some("logged out".into()),
                }));
            }
            match session.text(event.1.clone()).await {
                Ok(()) => Delivery::Sent,
                Err(_) => Delivery::Gone,
            }
        }
        Ok(_) => Delivery::Sent,
        Err(broadcast::error::RecvError::Lagged(missed)) => {
            let user = caller.id;
            tracing::warn!(%user, missed, "slow WebSocket client missed events");
            Delivery::Sent
        }
        Err(broadcast::error::RecvError::Closed) => Delivery::Close(Some(CloseCode::Error.into())),
    }
}

async fn run_session(
    caller: AuthUser,
    _slot: SessionSlot,
    mut session: Session,
    mut messages: MessageStream,
    mut events: broadcast::Receiver<Routed>,
) {
    let mut ping = tokio::time::interval(PING_EVERY);
    let mut last_heard = tokio::time::Instant::now();
    let lifetime = (caller.expires_at - chrono::Utc::now().timestamp()).max(0) as u64;
    let expiry = tokio::time::sleep(Duration::from_secs(lifetime));
    tokio::pin!(expiry);
    let close = loop {
        tokio::select! {
            () = &mut expiry => break Some(CloseReason {
                code: CloseCode::Other(CLOSE_EXPIRED),
                description: Some("token expired".into()),
            }),
            message = messages.recv() => match message {
                Some(Ok(Message::Ping(bytes))) => {
                    last_heard = tokio::time::Instant::now();
                    if session.pong(&bytes).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(reason))) => break reason,
                Some(Ok(_)) => last_heard = tokio::time::Instant::now(),
                Some(Err(_)) => break Some(CloseCode::Protocol.into()),
                None => return,
            },
            event = events.recv() => match deliver(&mut session, &caller, event).await {
                Delivery::Sent => {}
                Delivery::Close(reason) => break reason,
                Delivery::Gone => return,
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > SILENCE_LIMIT {
                    break Some(CloseReason {
                        code: CloseCode::Other(CLOSE_UNRESPONSIVE),
                        description: Some("no pong".into()),
                    });
                }
                if session.ping(b"").await.is_err() {
                    return;
                }
            }
        }
    };
    let _ = session.close(close).await;
}

/// A single-use ticket for `/ws?ticket=…`, for clients that cannot keep the access token out
/// of URLs.
#[utoipa::path(
    post, path = "/api/v2/ws/ticket", tag = "live", security(("bearer" = [])),
    responses(
        (status = 200, body = inline(Envelope<WsTicket>)),
        (status = 401, body = ErrorEnvelope),
        (status = 503, description = "Redis unavailable", body = ErrorEnvelope),
    )
)]
pub async fn issue_ticket(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    let ticket = state.tickets.issue(caller.0).await?;
    Ok(HttpResponse::Ok().json(Envelope {
        success: true,
        data: WsTicket {
            ticket,
            expires_in: WS_TICKET_TTL.as_secs(),
        },
    }))
}
