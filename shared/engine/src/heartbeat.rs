//! Worker liveness as the API sees it: each worker process stamps a sorted set in Redis;
//! a worker counts as live while its stamp is fresher than the stale bound.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apalis_redis::ConnectionManager;

use domain::error::{ServiceError, ServiceResult};

#[derive(Clone)]
pub struct WorkerRegistry {
    conn: ConnectionManager,
    key: String,
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl WorkerRegistry {
    pub fn new(conn: ConnectionManager, queue_name: &str) -> Self {
        Self {
            conn,
            key: format!("{queue_name}:worker-heartbeats"),
        }
    }

    pub async fn beat(&self, worker_name: &str) -> ServiceResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("ZADD")
            .arg(&self.key)
            .arg(now_secs())
            .arg(worker_name)
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| ServiceError::unavailable("queue", e))
    }

    pub async fn leave(&self, worker_name: &str) -> ServiceResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("ZREM")
            .arg(&self.key)
            .arg(worker_name)
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| ServiceError::unavailable("queue", e))
    }

    /// How many workers stamped within `stale_after`.
    pub async fn live_workers(&self, stale_after: Duration) -> ServiceResult<u64> {
        let mut conn = self.conn.clone();
        let since = now_secs() - stale_after.as_secs_f64();
        redis::cmd("ZCOUNT")
            .arg(&self.key)
            .arg(since)
            .arg("+inf")
            .query_async::<u64>(&mut conn)
            .await
            .map_err(|e| ServiceError::unavailable("queue", e))
    }

    /// Names of the workers that stamped within `stale_after`.
    pub async fn live_names(&self, stale_after: Duration) -> ServiceResult<Vec<String>> {
        let mut conn = self.conn.clone();
        let since = now_secs() - stale_after.as_secs_f64();
        redis::cmd("ZRANGEBYSCORE")
            .arg(&self.key)
            .arg(since)
            .arg("+inf")
            .query_async::<Vec<String>>(&mut conn)
            .await
            .map_err(|e| ServiceError::unavailable("queue", e))
    }

    /// Every worker that ever stamped and has not left, with its last stamp (Unix seconds).
    pub async fn stamps(&self) -> ServiceResult<Vec<(String, f64)>> {
        let mut conn = self.conn.clone();
        redis::cmd("ZRANGE")
            .arg(&self.key)
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async::<Vec<(String, f64)>>(&mut conn)
            .await
            .map_err(|e| ServiceError::unavailable("queue", e))
    }

    pub async fn ping(&self) -> ServiceResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| ServiceError::unavailable("queue", e))
    }
}
