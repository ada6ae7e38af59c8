//! The job-event hub of one API instance: one Redis subscription, fanned out to the
//! WebSocket sessions it admits (capped per account and per instance).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use domain::error::{ErrorCode, ServiceError};
use engine::events::JobEvents;
use engine::tasks::{BackgroundTasks, Pass, Schedule, Task};
use futures::StreamExt;
use settings::HttpConfig;
use tokio::sync::broadcast;
use uuid::Uuid;

/// One event on its way to the sessions of `user`.
pub type Routed = Arc<(Uuid, String)>;

/// Relays job events from Redis to this instance's WebSocket sessions, and caps how many
/// sessions it holds: per user and in all.
#[derive(Clone)]
pub struct EventHub {
    sender: broadcast::Sender<Routed>,
    sessions: Arc<Mutex<HashMap<Uuid, usize>>>,
    per_user: usize,
    total: usize,
}

/// A place among the hub's sessions, given back when dropped.
pub struct SessionSlot {
    sessions: Arc<Mutex<HashMap<Uuid, usize>>>,
    user: Uuid,
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        let mut sessions = self.sessions.lock().expect("not poisoned");
        if let Some(count) = sessions.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                sessions.remove(&self.user);
            }
        }
    }
}

impl EventHub {
    /// Subscribes on `tasks`, resubscribing a second after the subscription drops.
    pub fn start(
        tasks: &BackgroundTasks,
        redis_url: String,
        events: JobEvents,
        limits: &HttpConfig,
    ) -> Self {
        let (sender, _) = broadcast::channel(1024);
        let hub = Self {
            sender,
            sessions: Default::default(),
            per_user: limits.ws_per_user,
            total: limits.ws_total,
        };
        let forwarder = EventForwarder {
            redis_url,
            events,
            sender: hub.sender.clone(),
        };
        tasks.spawn(forwarder, Schedule::every(Duration::from_secs(1)));
        hub
    }
}

impl EventHub {
    /// Every job event this instance hears, for one session to pick its own from.
    pub fn subscribe(&self) -> broadcast::Receiver<Routed> {
        self.sender.subscribe()
    }

    /// A session slot for `user`, unless the user or this instance is at its cap.
    pub fn admit(&self, user: Uuid) -> Result<SessionSlot, ServiceError> {
        let mut sessions = self.sessions.lock().expect("not poisoned");
        let open: usize = sessions.values().sum();
        let mine = sessions.get(&user).copied().unwrap_or(0);
        if mine >= self.per_user || open >= self.total {
            let why = if mine >= self.per_user {
                format!("at most {} live connections per account", self.per_user)
            } else {
                "this server holds all the live connections it can".to_owned()
            };
            return Err(ServiceError::new(
                ErrorCode::RateLimitExceeded,
                format!("Too many WebSocket sessions: {why}"),
            )
            .with_data(serde_json::json!({ "retry_after": 5 })));
        }
        *sessions.entry(user).or_default() += 1;
        Ok(SessionSlot {
            sessions: self.sessions.clone(),
            user,
        })
    }
}

/// Forwards the job events published in Redis to this instance's sessions, for as long as
/// the subscription lasts.
struct EventForwarder {
    redis_url: String,
    events: JobEvents,
    sender: broadcast::Sender<Routed>,
}

impl Task for EventForwarder {
    const NAME: &'static str = "event-hub";

    async fn run(&mut self) -> Result<Pass, ServiceError> {
        forward_events(&self.redis_url, &self.events, &self.sender)
            .await
            .map_err(|err| ServiceError::unavailable("redis", err))?;
        Err(ServiceError::unavailable(
            "redis",
            "the job event subscription ended",
        ))
    }
}

async fn forward_events(
    redis_url: &str,
    events: &JobEvents,
    sender: &broadcast::Sender<Routed>,
) -> redis::RedisResult<()> {
    let mut pubsub = redis::Client::open(redis_url)?.get_async_pubsub().await?;
    pubsub.psubscribe(events.pattern()).await?;
    let mut messages = pubsub.on_message();
    while let Some(message) = messages.next().await {
        let Some(user) = events.owner_of(message.get_channel_name()) else {
            continue;
        };
        if let Ok(payload) = message.get_payload::<String>() {
            // No session listening is fine.
            let _ = sender.send(Arc::new((user, payload)));
        }
    }
    Ok(())
}
