//! Multi-factor login with TOTP (RFC 6238, seed 003). The secret is sealed at rest and
//! pending until a first code proves the authenticator app has it; then login takes a second
//! step. Each code works once (the last accepted time step is stored and must grow), ±1 step
//! of clock skew is allowed, and wrong codes earn growing delays per account. Ten recovery
//! codes, stored as SHA-256 and each good once, stand in when the phone is lost.

use chrono::Utc;
use diesel::prelude::*;
use rand::{seq::SliceRandom, RngCore};
use totp_rs::{Builder, Totp};
use uuid::Uuid;

use db::schema::{mfa_recovery_codes, users};
use domain::error::{ErrorCode, ServiceError, ServiceResult};
use domain::identity::AuthUser;

use crate::auth::{mfa_audience, token_hash, AuthService, Claims, LoginOutcome, TokenPair};

/// Recovery codes handed out when MFA is turned on.
const RECOVERY_CODES: usize = 10;
/// Bytes of a new TOTP secret (160 bits, RFC 4226's recommendation).
const SECRET_BYTES: usize = 20;
/// Letters and digits that cannot be mistaken for each other.
const RECOVERY_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// What an authenticator app needs to add the account.
#[derive(Debug, Clone)]
pub struct MfaSetup {
    /// The secret in base32, for typing in by hand.
    pub secret: String,
    pub otpauth_url: String,
    /// A PNG of the QR code for `otpauth_url`, in base64.
    pub qr_png_base64: String,
}

/// What proves the second factor.
#[derive(Debug)]
pub enum SecondFactor {
    /// A 6-digit code from the authenticator app.
    Code(String),
    /// One of the recovery codes.
    RecoveryCode(String),
}

/// What allows turning MFA off: the second factor, or the account's password.
#[derive(Debug)]
pub enum MfaProof {
    Factor(SecondFactor),
    Password(String),
}

/// The MFA columns of an account.
#[derive(Queryable)]
struct MfaState {
    email: String,
    password_hash: String,
    secret: Option<Vec<u8>>,
    enabled: bool,
    /// The address was proven: only then may factors be added (else whoever registered an
    /// address that is not theirs could lock its owner out).
    verified: bool,
}

fn invalid_code() -> ServiceError {
    ServiceError::new(
        ErrorCode::InvalidMfaCode,
        "That code is not valid: check the authenticator app and try again",
    )
}

/// The throttle of an account's MFA checks (codes, and the password that turns MFA off).
fn mfa_scope(user: Uuid) -> String {
    format!("mfa:{user}")
}

fn not_enabled() -> ServiceError {
    ServiceError::conflict("Multi-factor login is not on for this account")
}

/// Lower-case, without the separators people type.
fn normalise_recovery_code(raw: &str) -> String {
    raw.chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

fn new_recovery_code() -> String {
    let mut rng = rand::thread_rng();
    let letters: String = (0..10)
        .map(|_| {
            *RECOVERY_ALPHABET
                .choose(&mut rng)
                .expect("alphabet is not empty") as char
        })
        .collect();
    format!("{}-{}", &letters[..5], &letters[5..])
}

impl AuthService {
    fn totp(&self, secret: Vec<u8>, email: &str) -> ServiceResult<Totp> {
        Builder::new()
            .with_secret(secret)
            .with_skew(1)
            .with_account_name(email)
            .with_issuer(Some(self.inner.config.mfa_issuer.as_str()))
            .build()
            .map_err(|e| ServiceError::internal(format!("TOTP: {e}")))
    }

    fn sealing_context(user: Uuid) -> String {
        format!("mfa:{user}")
    }

    async fn mfa_state(&self, user: Uuid) -> ServiceResult<MfaState> {
        self.db()
            .run(move |conn| {
                users::table
                    .find(user)
                    .select((
                        users::email,
                        users::password_hash,
                        users::mfa_secret,
                        users::mfa_enabled_at.is_not_null(),
                        users::email_verified_at.is_not_null(),
                    ))
                    .first(conn)
                    .optional()?
                    .ok_or_else(ServiceError::account_gone)
            })
            .await
    }

    /// Starts turning MFA on: a new secret, pending until [`AuthService::mfa_verify`].
    /// Asking again replaces a pending secret; 409 while MFA is on.
    pub async fn mfa_enable(&self, user: AuthUser) -> ServiceResult<MfaSetup> {
        let state = self.mfa_state(user.id).await?;
        if state.enabled {
            return Err(ServiceError::conflict(
                "Multi-factor login is already on; turn it off first to change authenticator",
            ));
        }
        if !state.verified {
            return Err(ServiceError::new(
                ErrorCode::EmailNotVerified,
                "Confirm your email address first (the link we mailed you), then turn on multi-factor login",
            ));
        }
        let mut secret = vec![0u8; SECRET_BYTES];
        rand::thread_rng().fill_bytes(&mut secret);
        let sealed = self
            .inner
            .sealer
            .seal(&Self::sealing_context(user.id), &secret)?;
        let totp = self.totp(secret, &state.email)?;
        let setup = MfaSetup {
            secret: totp.secret().to_base32(),
            otpauth_url: totp.to_url().map_err(ServiceError::internal)?,
            qr_png_base64: totp.to_qr_base64().map_err(ServiceError::internal)?,
        };
        let stored = self
            .db()
            .run(move |conn| {
                Ok(diesel::update(
                    users::table
                        .find(user.id)
                        .filter(users::mfa_enabled_at.is_null()),
                )
                .set((
                    users::mfa_secret.eq(Some(sealed)),
                    users::mfa_last_step.eq(None::<i64>),
                ))
                .execute(conn)?)
            })
            .await?;
        if stored == 0 {
            return Err(ServiceError::conflict(
                "Multi-factor login was turned on meanwhile",
            ));
        }
        Ok(setup)
    }

    /// Turns MFA on with a first code from the app, and answers the recovery codes (the
    /// only time they are shown).
    pub async fn mfa_verify(&self, user: AuthUser, code: &str) -> ServiceResult<Vec<String>> {
        let state = self.mfa_state(user.id).await?;
        if state.enabled {
            return Err(ServiceError::conflict("Multi-factor login is already on"));
        }
        if state.secret.is_none() {
            return Err(ServiceError::conflict(
                "Start with POST /api/auth/mfa/enable to get a secret",
            ));
        }
        self.throttled(&mfa_scope(user.id), self.accept_code(user.id, &state, code))
            .await?;
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
        let hashes: Vec<_> = codes
            .iter()
            .map(|code| {
                (
                    mfa_recovery_codes::user_id.eq(user.id),
                    mfa_recovery_codes::code_hash.eq(token_hash(&normalise_recovery_code(code))),
                )
            })
            .collect();
        self.db()
            .run(move |conn| {
                conn.transaction(|conn| {
                    diesel::update(users::table.find(user.id))
                        .set(users::mfa_enabled_at.eq(Some(Utc::now())))
                        .execute(conn)?;
                    diesel::delete(
                        mfa_recovery_codes::table.filter(mfa_recovery_codes::user_id.eq(user.id)),
                    )
                    .execute(conn)?;
                    diesel::insert_into(mfa_recovery_codes::table)
                        .values(&hashes)
                        .execute(conn)?;
                    Ok(())
                })
            })
            .await?;
        Ok(codes)
    }

    /// Turns MFA off, with a code, a recovery code or the password.
    pub async fn mfa_disable(&self, user: AuthUser, proof: MfaProof) -> ServiceResult<()> {
        let state = self.mfa_state(user.id).await?;
        if !state.enabled {
            return Err(not_enabled());
        }
        let scope = mfa_scope(user.id);
        match proof {
            MfaProof::Password(password) => {
                self.confirm_password(&scope, "password", password, state.password_hash.clone())
                    .await?
            }
            MfaProof::Factor(factor) => {
                self.throttled(&scope, self.accept_factor(user.id, &state, factor))
                    .await?
            }
        }
        self.db()
            .run(move |conn| {
                conn.transaction(|conn| {
                    diesel::update(users::table.find(user.id))
                        .set((
                            users::mfa_enabled_at.eq(None::<chrono::DateTime<Utc>>),
                            users::mfa_secret.eq(None::<Vec<u8>>),
                            users::mfa_last_step.eq(None::<i64>),
                        ))
                        .execute(conn)?;
                    diesel::delete(
                        mfa_recovery_codes::table.filter(mfa_recovery_codes::user_id.eq(user.id)),
                    )
                    .execute(conn)?;
                    Ok(())
                })
            })
            .await
    }

    /// The second step of a login: the token from the first step and a code or recovery code.
    pub async fn mfa_login(
        &self,
        mfa_token: &str,
        factor: SecondFactor,
    ) -> ServiceResult<TokenPair> {
        let user = jsonwebtoken::decode::<Claims>(
            mfa_token,
            &self.inner.decoding,
            &self.inner.mfa_validation,
        )
        .map_err(|_| {
            ServiceError::unauthenticated(
                "This sign-in step has expired or is not valid; log in again",
            )
        })?
        .claims
        .sub;
        let state = self.mfa_state(user).await?;
        if !state.enabled {
            return Err(not_enabled());
        }
        self.throttled(&mfa_scope(user), self.accept_factor(user, &state, factor))
            .await?;
        self.start_session(user).await
    }

    /// The first-step answer for an account with MFA on.
    pub(crate) fn mfa_challenge(&self, user: Uuid) -> ServiceResult<LoginOutcome> {
        let config = &self.inner.config;
        let now = Utc::now().timestamp();
        let ttl = config.mfa_token_ttl.as_secs();
        let claims = Claims {
            sub: user,
            iss: config.issuer.clone(),
            aud: mfa_audience(config),
            iat: now,
            exp: now + ttl as i64,
            sid: None,
        };
        let mfa_token = self.sign(&claims)?;
        Ok(LoginOutcome::MfaRequired {
            mfa_token,
            expires_in: ttl,
        })
    }

    async fn accept_factor(
        &self,
        user: Uuid,
        state: &MfaState,
        factor: SecondFactor,
    ) -> ServiceResult<()> {
        match factor {
            SecondFactor::Code(code) => self.accept_code(user, state, &code).await,
            SecondFactor::RecoveryCode(code) => self.use_recovery_code(user, &code).await,
        }
    }

    /// Accepts a TOTP code once: its time step must be later than any accepted before, and
    /// the check-and-record is one conditional update, so two racing uses cannot both pass.
    async fn accept_code(&self, user: Uuid, state: &MfaState, code: &str) -> ServiceResult<()> {
        let sealed = state.secret.as_deref().ok_or_else(not_enabled)?;
        let secret = self
            .inner
            .sealer
            .open(&Self::sealing_context(user), sealed)?;
        let totp = self.totp(secret, &state.email)?;
        let step = totp.check_current(code.trim()).ok_or_else(invalid_code)? as i64;
        let recorded = self
            .db()
            .run(move |conn| {
                Ok(diesel::update(
                    users::table.find(user).filter(
                        users::mfa_last_step
                            .is_null()
                            .or(users::mfa_last_step.lt(step)),
                    ),
                )
                .set(users::mfa_last_step.eq(Some(step)))
                .execute(conn)?)
            })
            .await?;
        if recorded == 0 {
            return Err(ServiceError::new(
                ErrorCode::InvalidMfaCode,
                "That code was used already; wait for the app to show the next one",
            ));
        }
        Ok(())
    }

    async fn use_recovery_code(&self, user: Uuid, code: &str) -> ServiceResult<()> {
        let hash = token_hash(&normalise_recovery_code(code));
        let used = self
            .db()
            .run(move |conn| {
                Ok(diesel::update(
                    mfa_recovery_codes::table
                        .find((user, hash))
                        .filter(mfa_recovery_codes::used_at.is_null()),
                )
                .set(mfa_recovery_codes::used_at.eq(Some(Utc::now())))
                .execute(conn)?)
            })
            .await?;
        if used == 0 {
            return Err(invalid_code());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_readable_and_typed_loosely() {
        let code = new_recovery_code();
        assert_eq!(code.len(), 11);
        assert_eq!(&code[5..6], "-");
        assert!(code
            .chars()
            .all(|c| c == '-' || RECOVERY_ALPHABET.contains(&(c as u8))));
        assert_eq!(
            normalise_recovery_code(&format!(" {} ", code.to_uppercase())),
            code.replace('-', "")
        );
        assert_ne!(new_recovery_code(), code, "random");
    }
}
