//! Deleting an account (seeds 003, 004), by its owner after the password or by an admin.
//! Stripe goes first: its customer is deleted, which cancels the subscription, and a failure
//! there leaves everything as it was. The platform links' tokens are revoked and direct
//! uploads aborted next, best effort. Then one transaction schedules the storage prefix of
//! every job for purging (workers' housekeeping empties them) and deletes the user row,
//! which takes jobs, clips, outputs, tokens, the subscription link, roles and data with it.
//! A worker rendering one of those jobs finds its lease gone and purges what it wrote.

use diesel::prelude::*;
use uuid::Uuid;

use billing::BillingService;
use db::schema::{jobs, refresh_tokens, users};
use domain::clips::clip_prefix;
use domain::error::{ServiceError, ServiceResult};
use domain::identity::{AuthUser, EndedSession};
use domain::jobs::job_prefix;
use library::uploads::DirectUploads;
use linking::Linking;

use crate::auth::AuthService;

/// What an account holds outside our database: its Stripe customer, its platform links'
/// tokens, its direct uploads under way.
#[derive(Clone)]
pub struct Outside {
    pub billing: BillingService,
    pub linking: Linking,
    pub uploads: DirectUploads,
}

#[derive(Clone)]
pub struct AccountClosure {
    auth: AuthService,
    outside: Outside,
}

impl AccountClosure {
    pub fn new(auth: AuthService, outside: Outside) -> Self {
        Self { auth, outside }
    }

    /// The caller deletes their own account; the password proves it is them (wrong
    /// passwords earn growing delays). Answers the sessions that ended.
    pub async fn close_own(
        &self,
        caller: AuthUser,
        password: String,
    ) -> ServiceResult<Vec<EndedSession>> {
        let user = self.auth.user(caller).await?;
        let scope = format!("close:{}", user.id);
        self.auth
            .confirm_password(&scope, "password", password, user.password_hash)
            .await?;
        self.remove(user.id).await
    }

    /// Deletes account `user` with everything it owns; 404 when there is none.
    pub async fn close(&self, user: Uuid) -> ServiceResult<Vec<EndedSession>> {
        self.auth.account(user).await?;
        self.remove(user).await
    }

    /// Deletes an account found to exist: Stripe first, then the rows.
    async fn remove(&self, user: Uuid) -> ServiceResult<Vec<EndedSession>> {
        self.outside.billing.forget_customer(user).await?;
        // Best effort: a platform that cannot be reached keeps a token that now leads
        // nowhere, and a bucket lifecycle rule aborts what an upload left.
        if let Err(err) = self.outside.linking.revoke_all(user).await {
            tracing::warn!(%user, error = %err, "could not revoke a deleted account's platform tokens");
        }
        if let Err(err) = self.outside.uploads.abort_all(user).await {
            tracing::warn!(%user, error = %err, "could not abort a deleted account's direct uploads");
        }
        let auth = self.auth.clone();
        let ended: Vec<EndedSession> = self
            .auth
            .db()
            .run(move |conn| {
                conn.transaction(|conn| {
                    let job_ids: Vec<Uuid> = jobs::table
                        .filter(jobs::user_id.eq(user))
                        .select(jobs::id)
                        .load(conn)?;
                    // Every job's objects, and the library's.
                    let prefixes: Vec<_> = job_ids
                        .into_iter()
                        .map(job_prefix)
                        .chain([clip_prefix(user)])
                        .collect();
                    engine::retention::purge_prefixes(conn, prefixes)?;
                    let mut sessions: Vec<Uuid> = refresh_tokens::table
                        .filter(refresh_tokens::user_id.eq(user))
                        .filter(refresh_tokens::revoked_at.is_null())
                        .select(refresh_tokens::family_id)
                        .load(conn)?;
                    sessions.sort_unstable();
                    sessions.dedup();
                    if diesel::delete(users::table.find(user)).execute(conn)? == 0 {
                        return Err(ServiceError::not_found("Account"));
                    }
                    auth.end_sessions(conn, &sessions)?;
                    Ok(sessions
                        .into_iter()
                        .map(|session| EndedSession { user, session })
                        .collect())
                })
            })
            .await?;
        self.auth
            .ended_sessions()
            .note(ended.iter().map(|e| e.session));
        Ok(ended)
    }
}
