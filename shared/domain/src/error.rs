//! Errors of the service layer. Each carries a stable [`ErrorCode`]; the API maps codes to
//! HTTP statuses in exactly one place (`api::error`).

use std::fmt;

use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{key} has an invalid value: {value}")]
    Invalid { key: String, value: String },
    #[error("{0} is empty or the development default; set a real secret in production")]
    DefaultSecret(&'static str),
}

impl ConfigError {
    pub fn invalid(key: &str, value: &str) -> Self {
        Self::Invalid {
            key: key.to_owned(),
            value: value.to_owned(),
        }
    }
}

/// Stable, documented error codes (the seed's list, plus the few it lacks).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    ValidationError,
    AuthenticationRequired,
    InvalidCredentials,
    InsufficientPermissions,
    ResourceNotFound,
    MethodNotAllowed,
    Conflict,
    JobNotReady,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimitExceeded,
    /// The plan's quota (open jobs, stored bytes) would be exceeded.
    QuotaExceeded,
    /// The job's outputs were deleted at the end of its plan's retention.
    OutputsExpired,
    ServiceUnavailable,
    /// A webhook whose signature is missing, forged or stale.
    InvalidSignature,
    /// The payment provider (Stripe) could not be reached or refused the request.
    PaymentProviderError,
    /// A link's token from a mail that is unknown, expired or already used.
    InvalidToken,
    /// The account's email address is not verified yet, and the action needs it.
    EmailNotVerified,
    /// A multi-factor code (TOTP or recovery code) that is wrong, already used or expired.
    InvalidMfaCode,
    InternalServerError,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ValidationError => "VALIDATION_ERROR",
            Self::AuthenticationRequired => "AUTHENTICATION_REQUIRED",
            Self::InvalidCredentials => "INVALID_CREDENTIALS",
            Self::InsufficientPermissions => "INSUFFICIENT_PERMISSIONS",
            Self::ResourceNotFound => "RESOURCE_NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::Conflict => "CONFLICT",
            Self::JobNotReady => "JOB_NOT_READY",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::RateLimitExceeded => "RATE_LIMIT_EXCEEDED",
            Self::QuotaExceeded => "QUOTA_EXCEEDED",
            Self::OutputsExpired => "OUTPUTS_EXPIRED",
            Self::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            Self::InvalidSignature => "INVALID_SIGNATURE",
            Self::PaymentProviderError => "PAYMENT_PROVIDER_ERROR",
            Self::InvalidToken => "INVALID_TOKEN",
            Self::EmailNotVerified => "EMAIL_NOT_VERIFIED",
            Self::InvalidMfaCode => "INVALID_MFA_CODE",
            Self::InternalServerError => "INTERNAL_SERVER_ERROR",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

type Source = Box<dyn std::error::Error + Send + Sync>;

/// An error a client may see: a code, a message safe to show, optional structured data,
/// and (for logs only) the underlying cause.
#[derive(Debug)]
pub struct ServiceError {
    pub code: ErrorCode,
    pub message: String,
    pub data: Option<Value>,
    pub source: Option<Source>,
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(source) = &self.source {
            write!(f, " ({source})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ServiceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl ServiceError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
            source: None,
        }
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    pub fn with_source(mut self, source: impl Into<Source>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// A field failed validation; `data` names it so clients can highlight it.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationError, message).with_data(json!({ "field": field }))
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::AuthenticationRequired, message)
    }

    /// The caller's account was deleted after their access token was issued.
    pub fn account_gone() -> Self {
        Self::unauthenticated("This account no longer exists")
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::ResourceNotFound, format!("{what} not found"))
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    pub fn too_large(message: impl Into<String>, limit_bytes: u64) -> Self {
        Self::new(ErrorCode::PayloadTooLarge, message)
            .with_data(json!({ "limit_bytes": limit_bytes }))
    }

    /// A dependency (database, queue, storage) is down: the client may retry later.
    pub fn unavailable(dependency: &str, source: impl Into<Source>) -> Self {
        Self::new(
            ErrorCode::ServiceUnavailable,
            format!("The {dependency} is temporarily unavailable; please retry shortly"),
        )
        .with_data(json!({ "dependency": dependency }))
        .with_source(source)
    }

    /// A copy for another caller of the same failed operation: the same code, message and
    /// data, without the cause (whoever had it logs it once).
    pub fn shareable(&self) -> Self {
        Self {
            code: self.code,
            message: self.message.clone(),
            data: self.data.clone(),
            source: None,
        }
    }

    pub fn internal(source: impl Into<Source>) -> Self {
        Self::new(
            ErrorCode::InternalServerError,
            "An unexpected error occurred",
        )
        .with_source(source)
    }
}

pub type ServiceResult<T> = Result<T, ServiceError>;

#[cfg(feature = "diesel")]
impl From<diesel::result::Error> for ServiceError {
    fn from(err: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match err {
            Error::NotFound => Self::not_found("resource"),
            // A dropped connection mid-query is an outage, not a bug.
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => {
                Self::unavailable("database", err)
            }
            // A write for an account deleted since its access token was issued.
            Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, ref info)
                if info
                    .constraint_name()
                    .is_some_and(|name| name.ends_with("_user_id_fkey")) =>
            {
                Self::account_gone()
            }
            // Anything else that refers to a row deleted meanwhile.
            Error::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
                Self::conflict("This refers to something that was deleted meanwhile")
            }
            other => Self::internal(other),
        }
    }
}
