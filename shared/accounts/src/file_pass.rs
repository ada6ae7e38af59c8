//! File passes: what lets a signed-in browser *navigate* to its owner's rendered files
//! (seed 001's `window.location.href = '/api/v2/jobs/{id}/download?format=landscape'`), since
//! a navigation cannot send a bearer header. A pass is a token of its own audience, so it never
//! passes for an access token; it lives no longer than the access token it was asked with, and
//! it ends with that token's session (logout, password reset, a closed account).

use chrono::Utc;
use domain::error::{ServiceError, ServiceResult};
use domain::identity::AuthUser;

use crate::auth::{file_audience, AuthService, Claims};

/// The cookie the API keeps a pass in (HttpOnly, SameSite=Strict, path-limited by the API).
pub const FILE_PASS_COOKIE: &str = "montage_files";

/// A pass and how many seconds it lasts.
pub struct FilePass {
    pub token: String,
    pub expires_in: u64,
}

impl AuthService {
    /// A pass for `user`, lasting as long as the access token that authenticated them.
    pub fn file_pass(&self, user: AuthUser) -> ServiceResult<FilePass> {
        let session = user
            .session
            .ok_or_else(|| ServiceError::unauthenticated("Invalid access token"))?;
        let config = &self.inner.config;
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: user.id,
            iss: config.issuer.clone(),
            aud: file_audience(config),
            iat: now,
            exp: user.expires_at,
            sid: Some(session),
        };
        let token = self.sign(&claims)?;
        Ok(FilePass {
            token,
            expires_in: u64::try_from(user.expires_at - now).unwrap_or(0),
        })
    }

    /// The user of a file pass, if it is one, unexpired, of a session that has not ended.
    pub fn authenticate_file_pass(&self, token: &str) -> ServiceResult<AuthUser> {
        self.session_user(
            token,
            &self.inner.file_validation,
            "This browser's file pass has expired; sign in again",
        )
    }
}
