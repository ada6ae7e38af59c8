//! Fixed-window request counting in Redis, shared by every API instance: an atomic script
//! per counter (increment, start the window on the first hit, read its remaining time).
//! Also the per-account login throttle, on the same counters.
//!
//! Checks are batched: one task takes every hit waiting, adds up the hits per counter, and
//! sends one script call per counter, all in one round trip. Each hit gets the count it
//! would have had alone (the counter before the batch plus its place in it), so limits hold
//! exactly as with one call per hit, at a fraction of Redis's work under load.

use std::{collections::HashMap, time::Duration};

use apalis_redis::ConnectionManager;
use tokio::sync::{mpsc, oneshot};

/// Adds ARGV[3] hits to the window's counter, starting the window on its first hit; returns
/// the count and the window's remaining milliseconds.
/// With ARGV[2] = 1 every hit restarts the window (a sliding expiry).
const COUNT_SCRIPT_SOURCE: &str = r"
local count = redis.call('INCRBY', KEYS[1], ARGV[3])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 or ARGV[2] == '1' then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
";

/// Redis is consulted for at most this long per request; past it the check fails open.
const CHECK_TIMEOUT: Duration = Duration::from_millis(250);
/// Hits waiting for the batching task at most; past it a check fails open at once.
const MAX_WAITING: usize = 16_384;
/// Hits one round trip counts at most.
const MAX_BATCH: usize = 1024;

/// The outcome of one check, with what the `X-RateLimit-*` headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub limit: u32,
    pub remaining: u32,
    /// When the window ends, in Unix seconds.
    pub reset_at: i64,
    /// Seconds until a refused caller may try again; 0 when allowed.
    pub retry_after: u64,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.retry_after == 0
    }
}

/// A limit: this many hits per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u32,
    pub window: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum LimiterError {
    #[error("rate-limit store unavailable: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("rate-limit store did not answer in time")]
    Timeout,
    #[error("rate-limit store unavailable: {0}")]
    Batch(String),
    #[error("too many rate-limit checks waiting")]
    Overloaded,
}

/// One Redis counter: its key, its window, and whether every hit restarts the window.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Counter {
    key: String,
    window_ms: u64,
    sliding: bool,
}

type Count = Result<(u64, i64), LimiterError>;

struct Hit {
    counter: Counter,
    reply: oneshot::Sender<Count>,
}

/// The counting script, called by its hash: Redis then need not hash its body per call.
static COUNT_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(COUNT_SCRIPT_SOURCE));

/// Cheap to clone; every clone feeds the same batching task.
#[derive(Clone)]
pub struct RateLimiter {
    redis: ConnectionManager,
    prefix: String,
    hits: mpsc::Sender<Hit>,
}

impl RateLimiter {
    /// Starts the batching task on the current runtime; it ends with the last clone.
    pub fn new(redis: ConnectionManager, namespace: &str) -> Self {
        let (hits, waiting) = mpsc::channel(MAX_WAITING);
        tokio::spawn(count_batches(redis.clone(), waiting));
        Self {
            redis,
            prefix: format!("{namespace}:ratelimit"),
            hits,
        }
    }

    fn key(&self, class: &str, subject: &str) -> String {
        format!("{}:{class}:{subject}", self.prefix)
    }

    /// Counts one hit of `subject` against `quota` in `class`.
    pub async fn hit(
        &self,
        class: &str,
        subject: &str,
        quota: Quota,
    ) -> Result<Decision, LimiterError> {
        self.count_hit(class, subject, quota, false).await
    }

    /// Like [`Self::hit`], but the window restarts at every hit.
    pub async fn hit_sliding(
        &self,
        class: &str,
        subject: &str,
        quota: Quota,
    ) -> Result<Decision, LimiterError> {
        self.count_hit(class, subject, quota, true).await
    }

    async fn count_hit(
        &self,
        class: &str,
        subject: &str,
        quota: Quota,
        sliding: bool,
    ) -> Result<Decision, LimiterError> {
        let counter = Counter {
            key: self.key(class, subject),
            window_ms: quota.window.as_millis().max(1) as u64,
            sliding,
        };
        let (reply, count) = oneshot::channel();
        self.hits
            .try_send(Hit { counter, reply })
            .map_err(|_| LimiterError::Overloaded)?;
        let (count, ttl_ms) = tokio::time::timeout(CHECK_TIMEOUT, count)
            .await
            .map_err(|_| LimiterError::Timeout)?
            .map_err(|_| LimiterError::Batch("the counting task stopped".into()))??;
        Ok(decide(quota.limit, count, ttl_ms.max(0) as u64))
    }

    /// Forgets `subject`'s count in `class` (a successful login clears its failures).
    pub async fn clear(&self, class: &str, subject: &str) -> Result<(), LimiterError> {
        let key = self.key(class, subject);
        let mut redis = self.redis.clone();
        let mut delete = redis::cmd("DEL");
        delete.arg(&key);
        within(delete.query_async::<i64>(&mut redis)).await?;
        Ok(())
    }

    /// How many hits `subject` has in `class`'s current window, and its remaining time.
    pub async fn count(&self, class: &str, subject: &str) -> Result<(u64, u64), LimiterError> {
        let key = self.key(class, subject);
        let mut redis = self.redis.clone();
        let mut read = redis::pipe();
        read.get(&key).pttl(&key);
        let (count, ttl) = within(read.query_async::<(Option<u64>, i64)>(&mut redis)).await?;
        Ok((count.unwrap_or(0), ttl.max(0) as u64))
    }
}

/// The batching task: waits for a hit, takes every other one waiting, counts them all in
/// one round trip, answers, and waits again.
async fn count_batches(mut redis: ConnectionManager, mut waiting: mpsc::Receiver<Hit>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while waiting.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut groups: HashMap<Counter, Vec<oneshot::Sender<Count>>> = HashMap::new();
        for hit in batch.drain(..) {
            groups.entry(hit.counter).or_default().push(hit.reply);
        }
        let groups: Vec<_> = groups.into_iter().collect();
        let counted = count_groups(&mut redis, &groups).await;
        answer(groups, counted);
    }
}

/// One `EVALSHA` per counter, in one pipeline. A Redis that does not know the script
/// (restarted, or flushed) is given it, and the batch is counted again: a refused
/// `EVALSHA` counted nothing.
async fn count_groups(
    redis: &mut ConnectionManager,
    groups: &[(Counter, Vec<oneshot::Sender<Count>>)],
) -> Result<Vec<(u64, i64)>, LimiterError> {
    let mut pipe = redis::pipe();
    for (counter, replies) in groups {
        pipe.invoke_script(
            COUNT_SCRIPT
                .key(&counter.key)
                .arg(counter.window_ms)
                .arg(u8::from(counter.sliding))
                .arg(replies.len()),
        );
    }
    match within(pipe.query_async::<Vec<(u64, i64)>>(redis)).await {
        Err(LimiterError::Redis(err))
            if err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
        {
            within(COUNT_SCRIPT.prepare_invoke().load_async(redis)).await?;
            within(pipe.query_async(redis)).await
        }
        counted => counted,
    }
}

/// Gives each waiting hit its own count: the counter before the batch plus its place in it.
fn answer(
    groups: Vec<(Counter, Vec<oneshot::Sender<Count>>)>,
    counted: Result<Vec<(u64, i64)>, LimiterError>,
) {
    match counted {
        Ok(counts) => {
            for ((_, replies), (total, ttl)) in groups.into_iter().zip(counts) {
                let before = total.saturating_sub(replies.len() as u64);
                for (place, reply) in (1..).zip(replies) {
                    let _ = reply.send(Ok((before + place, ttl)));
                }
            }
        }
        Err(err) => {
            let why = err.to_string();
            for reply in groups.into_iter().flat_map(|(_, replies)| replies) {
                let _ = reply.send(Err(LimiterError::Batch(why.clone())));
            }
        }
    }
}

async fn within<T>(
    call: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, LimiterError> {
    Ok(tokio::time::timeout(CHECK_TIMEOUT, call)
        .await
        .map_err(|_| LimiterError::Timeout)??)
}

fn decide(limit: u32, count: u64, ttl_ms: u64) -> Decision {
    let now_ms = chrono::Utc::now().timestamp_millis() as u64;
    let reset_at = (now_ms + ttl_ms).div_ceil(1000) as i64;
    let allowed = count <= u64::from(limit);
    Decision {
        limit,
        remaining: u64::from(limit).saturating_sub(count) as u32,
        reset_at,
        retry_after: if allowed {
            0
        } else {
            ttl_ms.div_ceil(1000).max(1)
        },
    }
}

#[cfg(test)]
mod tests {
    use super::{answer, decide, Counter, LimiterError};
    use tokio::sync::oneshot;

    #[test]
    fn each_hit_in_a_batch_gets_the_count_it_would_have_had_alone() {
        let counter = |key: &str| Counter {
            key: key.into(),
            window_ms: 60_000,
            sliding: false,
        };
        let (senders, mut receivers): (Vec<_>, Vec<_>) = (0..4).map(|_| oneshot::channel()).unzip();
        let mut senders = senders.into_iter();
        let groups = vec![
            (counter("a"), senders.by_ref().take(3).collect()),
            (counter("b"), senders.collect()),
        ];
        // "a" stood at 7 before these three hits; "b" is new.
        answer(groups, Ok(vec![(10, 30_000), (1, 60_000)]));
        let counts: Vec<_> = receivers
            .iter_mut()
            .map(|r| r.try_recv().unwrap().unwrap())
            .collect();
        assert_eq!(
            counts,
            [(8, 30_000), (9, 30_000), (10, 30_000), (1, 60_000)]
        );

        let (reply, mut failed) = oneshot::channel();
        answer(
            vec![(counter("a"), vec![reply])],
            Err(LimiterError::Timeout),
        );
        assert!(matches!(
            failed.try_recv().unwrap(),
            Err(LimiterError::Batch(_))
        ));
    }

    #[test]
    fn the_hit_past_the_limit_is_refused_until_the_window_ends() {
        let last_allowed = decide(5, 5, 30_000);
        assert!(last_allowed.allowed());
        assert_eq!(last_allowed.remaining, 0);
        let refused = decide(5, 6, 29_500);
        assert!(!refused.allowed());
        assert_eq!(refused.retry_after, 30);
        assert_eq!(refused.remaining, 0);
    }
}
