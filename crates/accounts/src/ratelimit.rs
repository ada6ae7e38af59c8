//! Fixed-window request counting in Redis, shared by every API instance: one atomic script
//! per check (increment, start the window on the first hit, read its remaining time).
//! Also the per-account login throttle, on the same counters.

use std::time::Duration;

use apalis_redis::ConnectionManager;
use redis::Script;

/// Increments the window's counter, starting the window on its first hit; returns the count
/// and the window's remaining milliseconds.
/// With ARGV[2] = 1 every hit restarts the window (a sliding expiry).
const COUNT_SCRIPT: &str = r"
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 or ARGV[2] == '1' then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
";

/// Redis is consulted for at most this long per request; past it the check fails open.
const CHECK_TIMEOUT: Duration = Duration::from_millis(250);

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
}

#[derive(Clone)]
pub struct RateLimiter {
    redis: ConnectionManager,
    prefix: String,
    script: Script,
}

impl RateLimiter {
    pub fn new(redis: ConnectionManager, namespace: &str) -> Self {
        Self {
            redis,
            prefix: format!("{namespace}:ratelimit"),
            script: Script::new(COUNT_SCRIPT),
        }
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
        let key = format!("{}:{class}:{subject}", self.prefix);
        let window_ms = quota.window.as_millis().max(1) as u64;
        let mut redis = self.redis.clone();
        let mut invocation = self.script.key(&key);
        invocation.arg(window_ms).arg(u8::from(sliding));
        let (count, ttl_ms): (u64, i64) = within(invocation.invoke_async(&mut redis)).await?;
        Ok(decide(quota.limit, count, ttl_ms.max(0) as u64))
    }

    /// Forgets `subject`'s count in `class` (a successful login clears its failures).
    pub async fn clear(&self, class: &str, subject: &str) -> Result<(), LimiterError> {
        let key = format!("{}:{class}:{subject}", self.prefix);
        let mut redis = self.redis.clone();
        let mut delete = redis::cmd("DEL");
        delete.arg(&key);
        within(delete.query_async::<i64>(&mut redis)).await?;
        Ok(())
    }

    /// How many hits `subject` has in `class`'s current window, and its remaining time.
    pub async fn count(&self, class: &str, subject: &str) -> Result<(u64, u64), LimiterError> {
        let key = format!("{}:{class}:{subject}", self.prefix);
        let mut redis = self.redis.clone();
        let mut read = redis::pipe();
        read.get(&key).pttl(&key);
        let (count, ttl) = within(read.query_async::<(Option<u64>, i64)>(&mut redis)).await?;
        Ok((count.unwrap_or(0), ttl.max(0) as u64))
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
    use super::decide;

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
