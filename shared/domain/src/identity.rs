//! Who is calling: the identity every layer passes around once a token is verified.

use uuid::Uuid;

use crate::wire::wire_enum;

wire_enum!(
    /// What a token sent by mail lets its holder do, once.
    TokenPurpose {
        VerifyEmail => "verify_email",
        ResetPassword => "reset_password",
        ChangeEmail => "change_email",
    }
);

/// A login session that a logout ended.
#[derive(Debug, Clone, Copy)]
pub struct EndedSession {
    pub user: Uuid,
    pub session: Uuid,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, Copy)]
pub struct AuthUser {
    pub id: Uuid,
    /// When the credential that authenticated this caller expires, in Unix seconds.
    pub expires_at: i64,
    /// The login session it belongs to: logging out ends what it opened.
    pub session: Option<Uuid>,
}
