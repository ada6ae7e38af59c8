//! Ended login sessions. A session ends at logout, at a password reset, when a refresh token
//! is reused (stolen), and with its account; its access tokens must stop working at once,
//! not when they expire. Each ending is a row of `ended_sessions`, written in the same
//! transaction that revokes the session's refresh tokens and kept for an access token's
//! lifetime. Every API instance holds the rows in memory, so checking a request costs a hash
//! lookup: the instance that ended a session knows at once, the others within a poll
//! (`EndedSessions::refresh`, every second).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use db::schema::ended_sessions;
use db::{Db, PgConn};
use domain::error::ServiceResult;

/// Rows written this long before the last poll are read again: a transaction that took
/// its `now()` earlier may commit after the poll.
const COMMIT_SLACK: chrono::Duration = chrono::Duration::seconds(10);

/// The ended sessions whose access tokens may still be unexpired.
#[derive(Clone)]
pub struct EndedSessions {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    /// An access token's lifetime: after that, nothing of the session is left to refuse.
    keep: chrono::Duration,
    /// Session id → when it may be forgotten.
    ended: RwLock<HashMap<Uuid, DateTime<Utc>>>,
    /// The newest `ended_at` read so far.
    read_up_to: Mutex<DateTime<Utc>>,
}

impl EndedSessions {
    pub fn new(db: Db, access_ttl: Duration) -> Self {
        let keep = chrono::Duration::from_std(access_ttl).unwrap_or(chrono::Duration::MAX);
        Self {
            inner: Arc::new(Inner {
                db,
                keep,
                ended: RwLock::default(),
                read_up_to: Mutex::new(DateTime::<Utc>::UNIX_EPOCH),
            }),
        }
    }

    /// Whether `session` has ended.
    pub fn is_ended(&self, session: Uuid) -> bool {
        self.inner
            .ended
            .read()
            .expect("not poisoned")
            .contains_key(&session)
    }

    /// Records `sessions` as ended, inside the transaction that revokes them.
    pub(crate) fn record(&self, conn: &mut PgConn, sessions: &[Uuid]) -> QueryResult<()> {
        let now = Utc::now();
        let rows: Vec<_> = sessions
            .iter()
            .map(|&session| {
                (
                    ended_sessions::session_id.eq(session),
                    ended_sessions::ended_at.eq(now),
                    ended_sessions::forget_after.eq(now + self.inner.keep),
                )
            })
            .collect();
        diesel::insert_into(ended_sessions::table)
            .values(&rows)
            .on_conflict_do_nothing()
            .execute(conn)?;
        Ok(())
    }

    /// Takes note at once of sessions this instance just ended (committed).
    pub fn note(&self, sessions: impl IntoIterator<Item = Uuid>) {
        let forget = Utc::now() + self.inner.keep;
        let mut ended = self.inner.ended.write().expect("not poisoned");
        ended.extend(sessions.into_iter().map(|session| (session, forget)));
    }

    /// Reads the sessions other instances ended since the last read, forgets those whose
    /// tokens have all expired, and deletes their rows.
    pub async fn refresh(&self) -> ServiceResult<()> {
        let since = *self.inner.read_up_to.lock().expect("not poisoned") - COMMIT_SLACK;
        let now = Utc::now();
        let fresh: Vec<(Uuid, DateTime<Utc>, DateTime<Utc>)> = self
            .inner
            .db
            .run(move |conn| {
                diesel::delete(ended_sessions::table.filter(ended_sessions::forget_after.lt(now)))
                    .execute(conn)?;
                Ok(ended_sessions::table
                    .filter(ended_sessions::ended_at.gt(since))
                    .select((
                        ended_sessions::session_id,
                        ended_sessions::ended_at,
                        ended_sessions::forget_after,
                    ))
                    .load(conn)?)
            })
            .await?;
        if let Some(newest) = fresh.iter().map(|(_, at, _)| *at).max() {
            let mut read_up_to = self.inner.read_up_to.lock().expect("not poisoned");
            *read_up_to = newest.max(*read_up_to);
        }
        let mut ended = self.inner.ended.write().expect("not poisoned");
        ended.retain(|_, forget| *forget >= now);
        ended.extend(fresh.into_iter().map(|(id, _, forget)| (id, forget)));
        Ok(())
    }
}
