//! Accounts and tokens: validated credentials, argon2id password hashes, short-lived HS256
//! access tokens and rotating refresh tokens stored only as SHA-256 hashes.

use std::sync::{Arc, LazyLock};

use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::Utc;
use diesel::{prelude::*, result::DatabaseErrorKind};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::profile::{taken_username, Username};
use crate::ratelimit::{Quota, RateLimiter};
use crate::sessions::EndedSessions;
use db::models::{RefreshTokenRow, User};
use db::schema::{refresh_tokens, users};
use db::{Db, PgConn};
use domain::error::{ErrorCode, ServiceError, ServiceResult};
use domain::identity::{AuthUser, EndedSession};
use domain::plans::PlanId;
use domain::sealing::Sealer;
use settings::{AuthConfig, LoginThrottleConfig};

/// An email address, trimmed, lower-cased and checked for a plausible shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> ServiceResult<Self> {
        let email = raw.trim().to_lowercase();
        let invalid = || ServiceError::invalid_field("email", "Enter a valid email address");
        if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
        let domain_ok = domain.contains('.')
            && !domain.contains('@')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        // A dot-atom local part (RFC 5322): no quoting, commas, brackets or semicolons,
        // which the mailer could not address (or would read as several addresses).
        let local_ok = local
            .chars()
            .all(|c| c.is_alphanumeric() || c == '.' || "!#$%&'*+/=?^_`{|}~-".contains(c))
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..");
        if local.is_empty() || local.len() > 64 || !domain_ok || !local_ok {
            return Err(invalid());
        }
        // And what the mailer itself accepts.
        email.parse::<lettre::Address>().map_err(|_| invalid())?;
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password that meets the rule: 10 to 128 characters, at least one letter and one digit,
/// and not one of the most common passwords.
pub struct Password(String);

pub const PASSWORD_RULE: &str =
    "Passwords need 10 to 128 characters, with at least one letter and one digit, and must not be a common password";

const COMMON_PASSWORDS: &[&str] = &[
    "password12",
    "password123",
    "password1234",
    "1234567890a",
    "qwerty12345",
    "qwertyuiop1",
    "iloveyou123",
    "abc1234567",
    "letmein1234",
    "welcome1234",
    "passw0rd123",
    "admin12345",
];

impl Password {
    pub fn parse(raw: &str) -> ServiceResult<Self> {
        let length = raw.chars().count();
        let strong = (10..=128).contains(&length)
            && raw.chars().any(char::is_alphabetic)
            && raw.chars().any(|c| c.is_ascii_digit())
            && !COMMON_PASSWORDS.contains(&raw.to_lowercase().as_str());
        if strong {
            Ok(Self(raw.to_owned()))
        } else {
            Err(ServiceError::invalid_field("password", PASSWORD_RULE))
        }
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// The claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    /// The login session (refresh-token family) the token belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<Uuid>,
}

/// What a right email and password lead to.
#[derive(Debug, Clone)]
pub enum LoginOutcome {
    /// Signed in.
    Tokens(TokenPair),
    /// The account has multi-factor login on: the second step needs this short-lived
    /// token and a code ([`AuthService::mfa_login`]).
    MfaRequired { mfa_token: String, expires_in: u64 },
}

/// What a successful login or refresh hands back.
#[derive(Debug, Clone)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub user_id: Uuid,
    pub expires_in: u64,
}

/// Verifying against this when an account does not exist keeps login time the same for
/// known and unknown emails.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| hash_password("dummy-password-0"));

fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters hashes any input")
        .to_string()
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// What is stored of a secret token: its SHA-256.
pub(crate) fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A new secret token: 32 random bytes, URL-safe base64.
pub(crate) fn secret_token() -> String {
    let mut raw = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

#[derive(Clone)]
pub struct AuthService {
    db: Db,
    pub(crate) inner: Arc<Keys>,
    hashing: Arc<HashingPool>,
    throttle: LoginThrottle,
    /// Sessions whose access tokens are refused before they expire.
    sessions: EndedSessions,
}

/// Bounds the memory and CPU that password hashing can take: a few hashes at once, a short
/// queue, and a quick 503 for the rest, so a flood of logins cannot exhaust the API.
struct HashingPool {
    permits: tokio::sync::Semaphore,
    waiting: std::sync::atomic::AtomicUsize,
    max_waiting: usize,
    wait: std::time::Duration,
}

impl HashingPool {
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> ServiceResult<T> {
        use std::sync::atomic::Ordering;
        let busy = || {
            ServiceError::new(
                ErrorCode::ServiceUnavailable,
                "The service is busy; try again in a moment",
            )
            .with_data(serde_json::json!({ "retry_after": 1 }))
        };
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(busy());
        }
        let permit = tokio::time::timeout(self.wait, self.permits.acquire()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        let _permit = permit
            .map_err(|_| busy())?
            .map_err(ServiceError::internal)?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(ServiceError::internal)
    }
}

/// Growing delays after failed logins, per account and client address: guessing is slowed
/// to a crawl, while someone else's failures (from another address) never lock the owner
/// out. Attempts refused by the throttle are not counted.
#[derive(Clone)]
struct LoginThrottle {
    limiter: RateLimiter,
    config: LoginThrottleConfig,
}

const LOGIN_FAILURES: &str = "login-failures";

impl LoginThrottle {
    fn subject(email: &str, client: &str) -> String {
        hex::encode(&Sha256::digest(format!("{email}\n{client}").as_bytes())[..16])
    }

    /// Refuses while the delay earned by earlier failures has not passed.
    async fn check(&self, subject: &str) -> ServiceResult<()> {
        let (failures, ttl) = match self.limiter.count(LOGIN_FAILURES, subject).await {
            Ok(found) => found,
            // Fail open: the per-address rate limit still bounds guessing.
            Err(err) => {
                tracing::warn!(error = %err, "login throttle unavailable");
                return Ok(());
            }
        };
        let config = self.config;
        let Some(excess) = failures.checked_sub(u64::from(config.free_failures)) else {
            return Ok(());
        };
        let window = config.window.as_millis() as u64;
        let since_last = window.saturating_sub(ttl);
        let delay = (config.base_delay.as_millis() as u64)
            .saturating_mul(1 << excess.min(20))
            .min(window);
        if since_last >= delay {
            return Ok(());
        }
        let retry_after = (delay - since_last).div_ceil(1000);
        Err(ServiceError::new(
            ErrorCode::RateLimitExceeded,
            format!("Too many failed logins; try again in {retry_after} s"),
        )
        .with_data(serde_json::json!({ "retry_after": retry_after })))
    }

    /// Counts a failure; the window slides, so failures are forgotten a window after the last.
    async fn failed(&self, subject: &str) {
        let quota = Quota {
            limit: u32::MAX,
            window: self.config.window,
        };
        if let Err(err) = self
            .limiter
            .hit_sliding(LOGIN_FAILURES, subject, quota)
            .await
        {
            tracing::warn!(error = %err, "could not count a failed login");
        }
    }

    async fn succeeded(&self, subject: &str) {
        let _ = self.limiter.clear(LOGIN_FAILURES, subject).await;
    }
}

pub(crate) struct Keys {
    pub(crate) config: AuthConfig,
    pub(crate) encoding: EncodingKey,
    pub(crate) decoding: DecodingKey,
    validation: Validation,
    /// Accepts only the second-step tokens of a multi-factor login.
    pub(crate) mfa_validation: Validation,
    /// Accepts only file passes.
    pub(crate) file_validation: Validation,
    pub(crate) sealer: Sealer,
}

/// The audience of the second-step token, so it never passes for an access token.
pub(crate) fn mfa_audience(config: &AuthConfig) -> String {
    format!("{}:mfa", config.audience)
}

/// The audience of file passes ([`crate::file_pass`]), so one never passes for an access token.
pub(crate) fn file_audience(config: &AuthConfig) -> String {
    format!("{}:files", config.audience)
}

impl AuthService {
    pub fn new(db: Db, config: AuthConfig, limiter: RateLimiter) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.leeway = 5;
        let mut mfa_validation = validation.clone();
        mfa_validation.set_audience(&[mfa_audience(&config)]);
        mfa_validation.leeway = 0;
        let mut file_validation = mfa_validation.clone();
        file_validation.set_audience(&[file_audience(&config)]);
        let sealer = Sealer::from_base64(&config.data_encryption_key)
            .expect("settings checked DATA_ENCRYPTION_KEY at load");
        let encoding = EncodingKey::from_secret(config.jwt_secret.as_bytes());
        let decoding = DecodingKey::from_secret(config.jwt_secret.as_bytes());
        let hashing = Arc::new(HashingPool {
            permits: tokio::sync::Semaphore::new(config.hash_concurrency.max(1)),
            waiting: Default::default(),
            max_waiting: config.hash_queue,
            wait: config.hash_wait,
        });
        let throttle = LoginThrottle {
            limiter,
            config: config.login_throttle,
        };
        Self {
            sessions: EndedSessions::new(db.clone(), config.access_ttl),
            db,
            inner: Arc::new(Keys {
                config,
                encoding,
                decoding,
                validation,
                mfa_validation,
                file_validation,
                sealer,
            }),
            hashing,
            throttle,
        }
    }

    /// The ended sessions this instance refuses; their poll runs in the API's background.
    pub fn ended_sessions(&self) -> &EndedSessions {
        &self.sessions
    }

    /// Ends `sessions` inside the transaction that revoked their refresh tokens.
    pub(crate) fn end_sessions(&self, conn: &mut PgConn, sessions: &[Uuid]) -> QueryResult<()> {
        self.sessions.record(conn, sessions)
    }

    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    /// Hashes a new password on the bounded hashing pool.
    pub(crate) async fn hash_new_password(&self, password: Password) -> ServiceResult<String> {
        self.hashing.run(move || hash_password(&password.0)).await
    }

    /// Whether `password` is the account's, checked on the bounded hashing pool.
    pub(crate) async fn password_matches(
        &self,
        password: String,
        hash: String,
    ) -> ServiceResult<bool> {
        self.hashing
            .run(move || verify_password(&password, &hash))
            .await
    }

    pub async fn register(
        &self,
        email: Email,
        password: Password,
        username: Option<Username>,
    ) -> ServiceResult<User> {
        let password_hash = self.hash_new_password(password).await?;
        let user = User {
            id: Uuid::now_v7(),
            email: email.0,
            password_hash,
            plan: PlanId::Free,
            created_at: Utc::now(),
            stripe_customer_id: None,
            username: username.map(|u| u.as_str().to_owned()),
            display_name: None,
            email_verified_at: None,
            mfa_enabled_at: None,
        };
        self.db
            .run(move |conn| {
                diesel::insert_into(users::table)
                    .values(&user)
                    .execute(conn)
                    .map_err(|e| match e {
                        diesel::result::Error::DatabaseError(
                            DatabaseErrorKind::UniqueViolation,
                            ref info,
                        ) if info.constraint_name() != Some("users_username") => {
                            ServiceError::conflict("An account with this email already exists")
                                .with_data(serde_json::json!({ "field": "email" }))
                        }
                        other => taken_username(other),
                    })?;
                Ok(user)
            })
            .await
    }

    /// Logs in `client` (its address, for the failed-login throttle).
    pub async fn login(
        &self,
        email: &str,
        password: String,
        client: &str,
    ) -> ServiceResult<LoginOutcome> {
        let invalid =
            || ServiceError::new(ErrorCode::InvalidCredentials, "Incorrect email or password");
        let subject = LoginThrottle::subject(&email.trim().to_lowercase(), client);
        self.throttle.check(&subject).await?;
        // An unparsable email cannot belong to an account; answer as for a wrong password.
        let email = Email::parse(email).ok();
        let user = match email {
            Some(email) => {
                self.db
                    .run(move |conn| {
                        Ok(users::table
                            .filter(users::email.eq(email.as_str()))
                            .select(User::as_select())
                            .first(conn)
                            .optional()?)
                    })
                    .await?
            }
            None => None,
        };
        let hash = user
            .as_ref()
            .map_or_else(|| DUMMY_HASH.clone(), |u| u.password_hash.clone());
        let verified = self.password_matches(password, hash).await?;
        match user {
            Some(user) if verified => {
                self.throttle.succeeded(&subject).await;
                if user.mfa_enabled_at.is_some() {
                    return self.mfa_challenge(user.id);
                }
                Ok(LoginOutcome::Tokens(self.start_session(user.id).await?))
            }
            _ => {
                self.throttle.failed(&subject).await;
                Err(invalid())
            }
        }
    }

    /// Runs a secret check (a code, a password) under the throttle of `scope` (an account
    /// and what is checked): refused while an earlier failure's delay runs, and a failure
    /// lengthens it.
    pub(crate) async fn throttled(
        &self,
        scope: &str,
        check: impl std::future::Future<Output = ServiceResult<()>>,
    ) -> ServiceResult<()> {
        let subject = LoginThrottle::subject(scope, "");
        self.throttle.check(&subject).await?;
        match check.await {
            Ok(()) => {
                self.throttle.succeeded(&subject).await;
                Ok(())
            }
            Err(err) if err.code == ErrorCode::InternalServerError => Err(err),
            Err(err) => {
                self.throttle.failed(&subject).await;
                Err(err)
            }
        }
    }

    /// Checks that `password` (sent as `field`) matches `hash`, under the throttle of
    /// `scope`: 401 `INVALID_CREDENTIALS` when it does not.
    pub(crate) async fn confirm_password(
        &self,
        scope: &str,
        field: &str,
        password: String,
        hash: String,
    ) -> ServiceResult<()> {
        let check = async {
            if self.password_matches(password, hash).await? {
                return Ok(());
            }
            Err(
                ServiceError::new(ErrorCode::InvalidCredentials, "Incorrect password")
                    .with_data(serde_json::json!({ "field": field })),
            )
        };
        self.throttled(scope, check).await
    }

    /// A new login session for `user_id`.
    pub(crate) async fn start_session(&self, user_id: Uuid) -> ServiceResult<TokenPair> {
        let session = Uuid::now_v7();
        let refresh = self.issue_refresh_token(user_id, session, None).await?;
        self.token_pair(user_id, session, refresh)
    }

    /// Exchanges a refresh token for a new pair. The presented token is revoked; presenting
    /// an already-revoked token revokes its whole family (it was probably stolen).
    pub async fn refresh(&self, presented: &str) -> ServiceResult<TokenPair> {
        let hash = token_hash(presented);
        let row = self
            .db
            .run(move |conn| {
                Ok(refresh_tokens::table
                    .filter(refresh_tokens::token_hash.eq(hash))
                    .select(RefreshTokenRow::as_select())
                    .first(conn)
                    .optional()?)
            })
            .await?
            .ok_or_else(|| ServiceError::unauthenticated("Invalid refresh token"))?;
        if row.revoked_at.is_some() {
            let (family, sessions) = (row.family_id, self.sessions.clone());
            self.db
                .run(move |conn| revoke_family(conn, family, &sessions))
                .await?;
            self.sessions.note([family]);
            return Err(ServiceError::unauthenticated(
                "Refresh token was already used",
            ));
        }
        if row.expires_at <= Utc::now() {
            return Err(ServiceError::unauthenticated("Refresh token has expired"));
        }
        if session_started(row.family_id).is_some_and(|started| {
            Utc::now().timestamp() - started > self.inner.config.session_max_age.as_secs() as i64
        }) {
            return Err(ServiceError::unauthenticated(
                "This session has reached its maximum age; log in again",
            ));
        }
        let refresh = self
            .issue_refresh_token(row.user_id, row.family_id, Some(row.id))
            .await?;
        self.token_pair(row.user_id, row.family_id, refresh)
    }

    /// Revokes a refresh token; holding it is the proof of ownership. Unknown tokens are
    /// ignored: logging out is idempotent. Returns the session it ended, if any.
    pub async fn logout(&self, presented: &str) -> ServiceResult<Option<EndedSession>> {
        let hash = token_hash(presented);
        let sessions = self.sessions.clone();
        let ended = self
            .db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let ended = diesel::update(
                        refresh_tokens::table
                            .filter(refresh_tokens::token_hash.eq(hash))
                            .filter(refresh_tokens::revoked_at.is_null()),
                    )
                    .set(refresh_tokens::revoked_at.eq(Utc::now()))
                    .returning((refresh_tokens::user_id, refresh_tokens::family_id))
                    .get_result(conn)
                    .optional()?
                    .map(|(user, session)| EndedSession { user, session });
                    if let Some(ended) = ended {
                        sessions.record(conn, &[ended.session])?;
                    }
                    Ok(ended)
                })
            })
            .await?;
        self.sessions.note(ended.map(|e| e.session));
        Ok(ended)
    }

    /// The caller's account; 401 when it no longer exists.
    pub async fn user(&self, user: AuthUser) -> ServiceResult<User> {
        self.find(user.id)
            .await?
            .ok_or_else(ServiceError::account_gone)
    }

    /// Any account, for admins; 404 when there is none.
    pub async fn account(&self, id: Uuid) -> ServiceResult<User> {
        self.find(id)
            .await?
            .ok_or_else(|| ServiceError::not_found("Account"))
    }

    pub(crate) async fn find(&self, id: Uuid) -> ServiceResult<Option<User>> {
        self.db
            .run(move |conn| {
                Ok(users::table
                    .find(id)
                    .select(User::as_select())
                    .first(conn)
                    .optional()?)
            })
            .await
    }

    /// Checks an access token: HS256 only, right issuer and audience, not expired, and of a
    /// login session that has not ended (logout, reset, a stolen refresh token, a closed
    /// account).
    pub fn authenticate(&self, token: &str) -> ServiceResult<AuthUser> {
        self.session_user(token, &self.inner.validation, "Access token has expired")
    }

    /// The user of a token of a session that has not ended, checked by `validation` (which
    /// names the audience, so one kind of token never passes for another).
    pub(crate) fn session_user(
        &self,
        token: &str,
        validation: &Validation,
        expired: &str,
    ) -> ServiceResult<AuthUser> {
        let invalid = || ServiceError::unauthenticated("Invalid access token");
        let claims = jsonwebtoken::decode::<Claims>(token, &self.inner.decoding, validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    ServiceError::unauthenticated(expired)
                }
                _ => invalid(),
            })?
            .claims;
        let session = claims.sid.ok_or_else(invalid)?;
        if self.sessions.is_ended(session) {
            return Err(ServiceError::unauthenticated(
                "This session has ended; log in again",
            ));
        }
        Ok(AuthUser {
            id: claims.sub,
            expires_at: claims.exp,
            session: Some(session),
        })
    }

    /// Signs `claims` with the service's key (HS256, the only algorithm it accepts).
    pub(crate) fn sign(&self, claims: &Claims) -> ServiceResult<String> {
        let header = Header::new(Algorithm::HS256);
        jsonwebtoken::encode(&header, claims, &self.inner.encoding).map_err(ServiceError::internal)
    }

    fn token_pair(
        &self,
        user_id: Uuid,
        session: Uuid,
        refresh_token: String,
    ) -> ServiceResult<TokenPair> {
        let config = &self.inner.config;
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user_id,
            iss: config.issuer.clone(),
            aud: config.audience.clone(),
            iat: now,
            exp: now + config.access_ttl.as_secs() as i64,
            sid: Some(session),
        };
        let access_token = self.sign(&claims)?;
        Ok(TokenPair {
            access_token,
            refresh_token,
            user_id,
            expires_in: config.access_ttl.as_secs(),
        })
    }

    async fn issue_refresh_token(
        &self,
        user_id: Uuid,
        family_id: Uuid,
        replaces: Option<Uuid>,
    ) -> ServiceResult<String> {
        let token = secret_token();
        let now = Utc::now();
        let row = RefreshTokenRow {
            id: Uuid::now_v7(),
            user_id,
            family_id,
            token_hash: token_hash(&token),
            expires_at: now + self.inner.config.refresh_ttl,
            revoked_at: None,
            created_at: now,
        };
        let sessions = self.sessions.clone();
        let issued = self
            .db
            .run(move |conn| {
                conn.transaction(|conn| {
                    if let Some(old) = replaces {
                        // Only one refresh may win a race for the same token.
                        let revoked = diesel::update(
                            refresh_tokens::table
                                .find(old)
                                .filter(refresh_tokens::revoked_at.is_null()),
                        )
                        .set(refresh_tokens::revoked_at.eq(now))
                        .execute(conn)?;
                        if revoked == 0 {
                            // Lost a race with another use of the same token: one of the
                            // two holders is not the owner, so the session ends for both.
                            revoke_family(conn, family_id, &sessions)?;
                            return Ok(false);
                        }
                    }
                    diesel::insert_into(refresh_tokens::table)
                        .values(&row)
                        .execute(conn)?;
                    Ok(true)
                })
            })
            .await?;
        if !issued {
            self.sessions.note([family_id]);
            return Err(ServiceError::unauthenticated(
                "Refresh token was already used",
            ));
        }
        Ok(token)
    }
}

/// When a login session began, in Unix seconds: its family id is a v7 UUID made at login.
fn session_started(family: Uuid) -> Option<i64> {
    family.get_timestamp().map(|stamp| stamp.to_unix().0 as i64)
}

/// Ends a whole session: a refresh token of it was presented twice, so one holder stole it.
fn revoke_family(conn: &mut PgConn, family: Uuid, ended: &EndedSessions) -> ServiceResult<()> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq(family))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(Utc::now()))
    .execute(conn)?;
    ended.record(conn, &[family])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Player@Example.COM ").unwrap().as_str(),
            "player@example.com"
        );
        for bad in [
            "",
            "no-at-sign",
            "a@b",
            "@example.com",
            "a b@example.com",
            "a@@example.com",
            "a@example..com",
            // What the mailer cannot address.
            "a,b@example.com",
            "a\"b@example.com",
            "a(b)@example.com",
            "a;b@example.com",
            ".a@example.com",
            "a..b@example.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
        for good in [
            "first.last+tag@example.com",
            "o'brien@example.ie",
            "jörg@example.de",
        ] {
            assert!(Email::parse(good).is_ok(), "{good:?} should be taken");
        }
    }

    #[test]
    fn passwords_follow_the_rule() {
        assert!(Password::parse("SecurePassword123!").is_ok());
        for weak in [
            "short1",
            "allletterslong",
            "1234567890123",
            "password123",
            "Password123",
        ] {
            assert!(Password::parse(weak).is_err(), "{weak:?} should be refused");
        }
    }

    #[test]
    fn password_hashes_verify_only_the_right_password() {
        let hash = hash_password("correct horse 1");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse 1", &hash));
        assert!(!verify_password("correct horse 2", &hash));
    }
}
