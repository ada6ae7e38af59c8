//! The one place where service errors become HTTP responses in the seed's envelope:
//! `{"success":false,"error":{"code","message","data"}}`.

use actix_web::{
    body::BoxBody,
    http::{header, StatusCode},
    HttpResponse, ResponseError,
};
use domain::error::{ErrorCode, ServiceError};
use serde_json::Value;

pub use contract::{ok, Envelope, ErrorBody, ErrorEnvelope};

/// HTTP status for each stable error code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::ValidationError => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::AuthenticationRequired | ErrorCode::InvalidCredentials => {
            StatusCode::UNAUTHORIZED
        }
        ErrorCode::InsufficientPermissions => StatusCode::FORBIDDEN,
        ErrorCode::ResourceNotFound => StatusCode::NOT_FOUND,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::Conflict | ErrorCode::JobNotReady => StatusCode::CONFLICT,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::RateLimitExceeded => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::QuotaExceeded | ErrorCode::EmailNotVerified => StatusCode::FORBIDDEN,
        ErrorCode::OutputsExpired => StatusCode::GONE,
        ErrorCode::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::InvalidSignature | ErrorCode::InvalidToken | ErrorCode::InvalidMfaCode => {
            StatusCode::BAD_REQUEST
        }
        ErrorCode::PaymentProviderError => StatusCode::BAD_GATEWAY,
        ErrorCode::InternalServerError => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The code for a status produced outside our handlers (router, extractors).
pub fn code_of(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::UNAUTHORIZED => ErrorCode::AuthenticationRequired,
        StatusCode::FORBIDDEN => ErrorCode::InsufficientPermissions,
        StatusCode::NOT_FOUND => ErrorCode::ResourceNotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        StatusCode::TOO_MANY_REQUESTS => ErrorCode::RateLimitExceeded,
        StatusCode::SERVICE_UNAVAILABLE => ErrorCode::ServiceUnavailable,
        s if s.is_client_error() => ErrorCode::ValidationError,
        _ => ErrorCode::InternalServerError,
    }
}

/// A service error on its way to the client, with an optional status override for the few
/// cases where the same code means a different status (a syntactically broken body is 400).
#[derive(Debug)]
pub struct ApiError {
    pub error: ServiceError,
    pub status: Option<StatusCode>,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            error: ServiceError::new(ErrorCode::ValidationError, message),
            status: Some(StatusCode::BAD_REQUEST),
        }
    }
}

impl From<storage::StoreError> for ApiError {
    fn from(err: storage::StoreError) -> Self {
        ServiceError::from(err).into()
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        Self {
            error,
            status: None,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

pub fn envelope(
    status: StatusCode,
    code: ErrorCode,
    message: &str,
    data: Option<&Value>,
) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    response.insert_header((header::CACHE_CONTROL, "no-store"));
    // Refusals that say when to come back say it in the standard header too.
    if let Some(seconds) = data
        .and_then(|d| d.get("retry_after"))
        .and_then(Value::as_u64)
    {
        response.insert_header((header::RETRY_AFTER, seconds));
    }
    response.json(ErrorEnvelope {
        success: false,
        error: ErrorBody {
            code,
            message: message.to_owned(),
            data: data
                .cloned()
                .unwrap_or_else(|| Value::Object(Default::default())),
        },
    })
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status.unwrap_or_else(|| status_of(self.error.code))
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = %self.error, "request failed");
        } else {
            tracing::info!(error = %self.error, "request refused");
        }
        envelope(
            status,
            self.error.code,
            &self.error.message,
            self.error.data.as_ref(),
        )
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
