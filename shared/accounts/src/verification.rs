//! Verified email and password recovery (seed 002). A mail carries a link with a random
//! token; only its SHA-256 is stored, with the address it was sent to, an expiry and the
//! moment it was used, so each link works once and not after it expires.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use db::models::{EmailTokenRow, User};
use db::schema::{email_tokens, mfa_recovery_codes, refresh_tokens, users};
use db::{Db, PgConn};
use domain::error::{ErrorCode, ServiceError, ServiceResult};
use domain::identity::{AuthUser, EndedSession, TokenPurpose};
use settings::MailConfig;

use crate::auth::{secret_token, token_hash, AuthService, Email, Password};
use crate::mail::{Mail, Mailer};

/// Stores a new token for `user`, to be mailed to `address`, and answers it (the only
/// copy is the one mailed).
pub(crate) fn issue(
    conn: &mut PgConn,
    user: Uuid,
    address: &str,
    purpose: TokenPurpose,
    ttl: std::time::Duration,
) -> ServiceResult<String> {
    let token = secret_token();
    let now = Utc::now();
    if purpose == TokenPurpose::ResetPassword {
        // Only the newest reset link works: an older one lying in a mailbox is void.
        void_resets(conn, user)?;
    }
    diesel::insert_into(email_tokens::table)
        .values(EmailTokenRow {
            token_hash: token_hash(&token),
            user_id: user,
            purpose,
            email: address.to_owned(),
            expires_at: now + ttl,
            used_at: None,
            created_at: now,
        })
        .execute(conn)?;
    Ok(token)
}

/// A reset proves the address. Factors added while it was unproven were added by whoever
/// registered it, not necessarily its owner, who is resetting now: they go.
fn forget_unproven_factors(conn: &mut PgConn, user: Uuid) -> ServiceResult<()> {
    let unproven = users::table
        .find(user)
        .filter(users::email_verified_at.is_null());
    let removed = diesel::update(unproven)
        .set((
            users::mfa_secret.eq(None::<Vec<u8>>),
            users::mfa_enabled_at.eq(None::<chrono::DateTime<Utc>>),
            users::mfa_last_step.eq(None::<i64>),
        ))
        .execute(conn)?;
    if removed > 0 {
        diesel::delete(mfa_recovery_codes::table.filter(mfa_recovery_codes::user_id.eq(user)))
            .execute(conn)?;
    }
    Ok(())
}

/// Voids every reset link of `user` not yet used: a link was used, a newer one was mailed,
/// or the address changed (a link mailed to the old address must not take the account).
pub(crate) fn void_resets(conn: &mut PgConn, user: Uuid) -> ServiceResult<()> {
    diesel::update(
        email_tokens::table
            .filter(email_tokens::user_id.eq(user))
            .filter(email_tokens::purpose.eq(TokenPurpose::ResetPassword))
            .filter(email_tokens::used_at.is_null()),
    )
    .set(email_tokens::used_at.eq(Utc::now()))
    .execute(conn)?;
    Ok(())
}

/// Marks `token` used and answers it, if it is one for one of `purposes`, unused and
/// unexpired.
pub(crate) fn consume(
    conn: &mut PgConn,
    token: &str,
    purposes: &[TokenPurpose],
) -> ServiceResult<EmailTokenRow> {
    let now = Utc::now();
    diesel::update(
        email_tokens::table
            .find(token_hash(token))
            .filter(email_tokens::purpose.eq_any(purposes))
            .filter(email_tokens::used_at.is_null())
            .filter(email_tokens::expires_at.gt(now)),
    )
    .set(email_tokens::used_at.eq(now))
    .returning(EmailTokenRow::as_returning())
    .get_result(conn)
    .optional()?
    .ok_or_else(|| {
        ServiceError::new(
            ErrorCode::InvalidToken,
            "This link is not valid: it may have expired or been used already",
        )
    })
}

/// Sends verification and recovery mails, and checks their links.
#[derive(Clone)]
pub struct EmailService {
    pub(crate) auth: AuthService,
    pub(crate) mailer: Mailer,
    pub(crate) config: MailConfig,
}

impl EmailService {
    pub fn new(auth: AuthService, config: MailConfig) -> ServiceResult<Self> {
        Ok(Self {
            mailer: Mailer::new(&config)?,
            auth,
            config,
        })
    }

    fn db(&self) -> &Db {
        self.auth.db()
    }

    /// Mails a new account its verification link in the background: a slow or failing
    /// relay neither holds up nor fails the sign-up (the user can ask again).
    pub fn welcome(&self, user: User) {
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(err) = this.send_verification(user).await {
                tracing::warn!(error = %err, "could not send a verification mail");
            }
        });
    }

    /// Mails `user` a link that verifies their current address.
    async fn send_verification(&self, user: User) -> ServiceResult<()> {
        let ttl = self.config.verify_ttl;
        let (token, user) = self
            .db()
            .run(move |conn| {
                let token = issue(conn, user.id, &user.email, TokenPurpose::VerifyEmail, ttl)?;
                Ok((token, user))
            })
            .await?;
        let link = self.link("verify-email", &token);
        let hours = ttl.as_secs() / 3600;
        self.mailer
            .send(Mail {
                to: user.email,
                subject: "Confirm your email address".into(),
                body: format!(
                    "Welcome to Montage!\n\nOpen this link to confirm your email address \
                     (it works once, for {hours} hours):\n\n{link}\n\n\
                     If you did not sign up, ignore this mail.\n"
                ),
            })
            .await
    }

    /// Sends a verification mail again, after a pause (`VERIFY_EMAIL_RESEND_SECS`); 409
    /// once verified.
    pub async fn resend_verification(&self, caller: AuthUser) -> ServiceResult<()> {
        let (user, last_sent) = self
            .db()
            .run(move |conn| {
                let user: User = users::table
                    .find(caller.id)
                    .select(User::as_select())
                    .first(conn)?;
                let last_sent: Option<DateTime<Utc>> = email_tokens::table
                    .filter(email_tokens::user_id.eq(caller.id))
                    .filter(email_tokens::purpose.eq(TokenPurpose::VerifyEmail))
                    .select(diesel::dsl::max(email_tokens::created_at))
                    .first(conn)?;
                Ok((user, last_sent))
            })
            .await?;
        if user.email_verified_at.is_some() {
            return Err(ServiceError::conflict(
                "This email address is already verified",
            ));
        }
        let pause = self.config.resend_after.as_secs() as i64;
        let wait = last_sent.map_or(0, |sent| pause - (Utc::now() - sent).num_seconds());
        if wait > 0 {
            return Err(ServiceError::new(
                ErrorCode::RateLimitExceeded,
                format!("A verification mail was sent moments ago; ask again in {wait} s"),
            )
            .with_data(serde_json::json!({ "retry_after": wait })));
        }
        self.send_verification(user).await
    }

    /// Verifies the address the token was sent to: the account's address, or the new one
    /// an email change asked for, which then becomes the account's.
    pub async fn verify_email(&self, token: String) -> ServiceResult<()> {
        self.db()
            .run(move |conn| {
                conn.transaction(|conn| {
                    let purposes = [TokenPurpose::VerifyEmail, TokenPurpose::ChangeEmail];
                    let used = consume(conn, &token, &purposes)?;
                    if used.purpose == TokenPurpose::ChangeEmail {
                        return crate::profile::apply_email_change(conn, &used);
                    }
                    let verified = diesel::update(
                        users::table
                            .find(used.user_id)
                            .filter(users::email.eq(&used.email)),
                    )
                    .set(users::email_verified_at.eq(Some(Utc::now())))
                    .execute(conn)?;
                    if verified == 0 {
                        return Err(ServiceError::new(
                            ErrorCode::InvalidToken,
                            "This link was for an address the account no longer uses",
                        ));
                    }
                    Ok(())
                })
            })
            .await
    }

    /// Mails a reset link if `email` has an account. Answers the same, at once, either way:
    /// the work happens in the background, so neither the answer nor its timing tells
    /// whether the address is registered.
    pub fn forgot_password(&self, email: &str) {
        let Ok(email) = Email::parse(email) else {
            return;
        };
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(err) = this.send_reset(email).await {
                tracing::warn!(error = %err, "could not send a password reset mail");
            }
        });
    }

    async fn send_reset(&self, email: Email) -> ServiceResult<()> {
        let ttl = self.config.reset_ttl;
        let address = email.as_str().to_owned();
        let issued = self
            .db()
            .run(move |conn| {
                let Some(user) = users::table
                    .filter(users::email.eq(&address))
                    .select(User::as_select())
                    .first(conn)
                    .optional()?
                else {
                    return Ok(None);
                };
                Ok(Some((
                    issue(conn, user.id, &user.email, TokenPurpose::ResetPassword, ttl)?,
                    user,
                )))
            })
            .await?;
        let Some((token, user)) = issued else {
            return Ok(());
        };
        let link = self.link("reset-password", &token);
        let minutes = ttl.as_secs() / 60;
        self.mailer
            .send(Mail {
                to: user.email,
                subject: "Reset your password".into(),
                body: format!(
                    "Open this link to choose a new password (it works once, for {minutes} \
                     minutes):\n\n{link}\n\nEvery device signed in to your account will be \
                     signed out. If you did not ask for this, ignore this mail: your \
                     password stays as it is.\n"
                ),
            })
            .await
    }

    /// The web app's page that takes `token`.
    pub(crate) fn link(&self, page: &str, token: &str) -> String {
        format!(
            "{}/{page}?token={token}",
            self.config.app_url.trim_end_matches('/')
        )
    }

    /// Jobs an account may create before its address is verified.
    pub fn unverified_job_allowance(&self) -> i64 {
        self.config.unverified_jobs
    }
}

impl AuthService {
    /// Sets a new password with a reset link's token, and ends every session of the
    /// account: its refresh tokens are revoked (its access tokens run out within their
    /// lifetime). The mail reached the address, so it counts as verified too.
    pub async fn reset_password(
        &self,
        token: String,
        password: Password,
    ) -> ServiceResult<Vec<EndedSession>> {
        let password_hash = self.hash_new_password(password).await?;
        let this = self.clone();
        let ended: Vec<EndedSession> = self
            .db()
            .run(move |conn| {
                conn.transaction(|conn| {
                    let used = consume(conn, &token, &[TokenPurpose::ResetPassword])?;
                    void_resets(conn, used.user_id)?;
                    let account = users::table.find(used.user_id);
                    let address: String = account.select(users::email).first(conn)?;
                    if address != used.email {
                        return Err(ServiceError::new(
                            ErrorCode::InvalidToken,
                            "This link was for an address the account no longer uses",
                        ));
                    }
                    diesel::update(account)
                        .set(users::password_hash.eq(&password_hash))
                        .execute(conn)?;
                    forget_unproven_factors(conn, used.user_id)?;
                    diesel::update(
                        account
                            .filter(users::email.eq(&used.email))
                            .filter(users::email_verified_at.is_null()),
                    )
                    .set(users::email_verified_at.eq(Some(Utc::now())))
                    .execute(conn)?;
                    let mut sessions: Vec<Uuid> = diesel::update(
                        refresh_tokens::table
                            .filter(refresh_tokens::user_id.eq(used.user_id))
                            .filter(refresh_tokens::revoked_at.is_null()),
                    )
                    .set(refresh_tokens::revoked_at.eq(Some(Utc::now())))
                    .returning(refresh_tokens::family_id)
                    .get_results(conn)?;
                    sessions.sort_unstable();
                    sessions.dedup();
                    this.end_sessions(conn, &sessions)?;
                    Ok(sessions
                        .into_iter()
                        .map(|session| EndedSession {
                            user: used.user_id,
                            session,
                        })
                        .collect())
                })
            })
            .await?;
        self.ended_sessions().note(ended.iter().map(|e| e.session));
        Ok(ended)
    }
}
