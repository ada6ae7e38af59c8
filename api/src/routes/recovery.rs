//! `/api/auth/…`: verifying an email address and recovering a password through mailed
//! links (seed 002).

use accounts::auth::Password;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::routes::{policy::RateClass, table::Area};
use crate::{
    error::{ApiResult, ErrorEnvelope},
    state::{AppState, Caller},
};

/// This area's routes, with their documentation.
#[derive(utoipa::OpenApi)]
#[openapi(paths(verify_email, resend_verification, forgot_password, reset_password))]
struct RecoveryApi;

pub fn area() -> Area {
    Area::new(<RecoveryApi as utoipa::OpenApi>::openapi())
        .handle("verify_email", verify_email)
        .handle("resend_verification", resend_verification)
        .handle("forgot_password", forgot_password)
        .handle("reset_password", reset_password)
        .rate(
            RateClass::Auth,
            &[
                "verify_email",
                "resend_verification",
                "forgot_password",
                "reset_password",
            ],
        )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkToken {
    /// The `token` parameter of the mailed link.
    token: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotPassword {
    #[schema(example = "user@example.com")]
    email: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPassword {
    /// The `token` parameter of the mailed link.
    token: String,
    /// The new password: 10 to 128 characters, a letter and a digit, not a common one.
    #[schema(example = "AnotherPassword456!")]
    password: String,
}

#[derive(Serialize, ToSchema)]
pub struct Outcome {
    message: &'static str,
}

fn outcome(message: &'static str) -> HttpResponse {
    HttpResponse::Ok().json(Outcome { message })
}

/// Confirm an email address with the token of the mailed link.
#[utoipa::path(
    post, path = "/api/auth/verify-email", tag = "auth", request_body = LinkToken,
    responses(
        (status = 200, body = Outcome),
        (status = 400, description = "Unknown, expired or used link, or one for an address the account no longer has (INVALID_TOKEN)", body = ErrorEnvelope),
        (status = 422, description = "Malformed body", body = ErrorEnvelope),
    )
)]
pub async fn verify_email(
    state: web::Data<AppState>,
    body: web::Json<LinkToken>,
) -> ApiResult<HttpResponse> {
    state.email.verify_email(body.into_inner().token).await?;
    Ok(outcome("Email address verified"))
}

/// Mail the caller a new verification link (one a minute at most).
#[utoipa::path(
    post, path = "/api/auth/resend-verification", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, body = Outcome),
        (status = 401, body = ErrorEnvelope),
        (status = 409, description = "The address is already verified", body = ErrorEnvelope),
        (status = 429, description = "A link was mailed less than a minute ago (`data.retry_after`), or too many requests", body = ErrorEnvelope),
        (status = 503, description = "The mail relay is unavailable; try again later", body = ErrorEnvelope),
    )
)]
pub async fn resend_verification(
    state: web::Data<AppState>,
    caller: Caller,
) -> ApiResult<HttpResponse> {
    state.email.resend_verification(caller.0).await?;
    Ok(outcome("A new verification link is on its way"))
}

/// Ask for a password reset link. The answer is the same whether or not the address has
/// an account.
#[utoipa::path(
    post, path = "/api/auth/password/forgot", tag = "auth", request_body = ForgotPassword,
    responses(
        (status = 202, body = Outcome),
        (status = 422, description = "Malformed body", body = ErrorEnvelope),
    )
)]
pub async fn forgot_password(
    state: web::Data<AppState>,
    body: web::Json<ForgotPassword>,
) -> ApiResult<HttpResponse> {
    state.email.forgot_password(&body.email);
    Ok(HttpResponse::Accepted().json(Outcome {
        message: "If an account uses this address, a reset link is on its way",
    }))
}

/// Choose a new password with the token of the mailed link; every session of the account
/// ends.
#[utoipa::path(
    post, path = "/api/auth/password/reset", tag = "auth", request_body = ResetPassword,
    responses(
        (status = 200, body = Outcome),
        (status = 400, description = "Unknown, expired or used link (INVALID_TOKEN)", body = ErrorEnvelope),
        (status = 422, description = "Malformed body or weak password; the link still works", body = ErrorEnvelope),
        (status = 503, description = "Too many passwords being hashed at once; retry shortly", body = ErrorEnvelope),
    )
)]
pub async fn reset_password(
    state: web::Data<AppState>,
    body: web::Json<ResetPassword>,
) -> ApiResult<HttpResponse> {
    let ResetPassword { token, password } = body.into_inner();
    let password = Password::parse(&password)?;
    for ended in state.auth.reset_password(token, password).await? {
        state.events.session_ended(ended).await;
    }
    Ok(outcome("Password changed; sign in again on every device"))
}
