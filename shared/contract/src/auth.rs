//! Signing in: the password step, the second factor, and refreshing the token pair.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Credentials {
    #[schema(example = "user@example.com")]
    pub email: String,
    /// 10 to 128 characters, at least one letter and one digit, not a common password.
    #[schema(example = "SecurePassword123!")]
    pub password: String,
}

/// The second login step.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaLogin {
    /// From the login answer.
    pub mfa_token: String,
    #[schema(example = "123456")]
    pub code: Option<String>,
    #[schema(example = "abcde-fghjk")]
    pub recovery_code: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// How the access token is sent: `Authorization: Bearer …`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Bearer,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: TokenType,
    pub user_id: Uuid,
    /// Single-use: each refresh returns a new one and revokes the old.
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

/// The first login step's answer when the account has multi-factor login on.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MfaChallenge {
    /// Always true.
    pub mfa_required: bool,
    /// Send it with a code to `POST /api/auth/mfa/login`; it is good for `expires_in` seconds
    /// and for nothing else.
    pub mfa_token: String,
    pub expires_in: u64,
}

/// Tokens, or the second step's challenge when multi-factor login is on.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum LoginResponse {
    Tokens(TokenResponse),
    MfaRequired(MfaChallenge),
}
