//! Every JSON answer is wrapped: `{"success": true, "data": …}` or
//! `{"success": false, "error": {code, message, data}}`.

use domain::error::ErrorCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// The success envelope.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Envelope<T> {
    pub success: bool,
    pub data: T,
}

pub fn ok<T: Serialize>(data: T) -> Envelope<T> {
    Envelope {
        success: true,
        data,
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    /// Details by code: the `field` a validation error is about, `retry_after` seconds…
    #[schema(value_type = Object)]
    pub data: Value,
}

/// The error envelope.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorEnvelope {
    /// Always false.
    pub success: bool,
    pub error: ErrorBody,
}
