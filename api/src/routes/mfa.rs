//! `/api/auth/mfa/…`: multi-factor login with an authenticator app (seed 003).

use accounts::mfa::{MfaProof, SecondFactor};
use actix_web::{web, HttpResponse};
use domain::error::ServiceError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::routes::auth::{token_response, tokens};
use crate::routes::{policy::RateClass, table::Area};
use crate::{
    error::{ApiResult, ErrorEnvelope},
    state::{AppState, Caller},
};
use contract::auth::{MfaLogin, TokenResponse};

/// This area's routes, with their documentation.
#[derive(utoipa::OpenApi)]
#[openapi(paths(enable, verify, disable, mfa_login))]
struct MfaApi;

pub fn area() -> Area {
    Area::new(<MfaApi as utoipa::OpenApi>::openapi())
        .handle("enable", enable)
        .handle("verify", verify)
        .handle("disable", disable)
        .handle("mfa_login", mfa_login)
        .rate(
            RateClass::Auth,
            &["enable", "verify", "disable", "mfa_login"],
        )
}

#[derive(Serialize, ToSchema)]
pub struct MfaSetupView {
    /// The secret in base32, to type into an authenticator app by hand.
    #[schema(example = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")]
    secret: String,
    /// The QR code of `otpauth_url`, as a data URL.
    #[schema(example = "data:image/png;base64,iVBORw0KGgo…")]
    qr_code: String,
    otpauth_url: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaCode {
    /// The 6 digits the authenticator app shows.
    #[schema(example = "123456")]
    code: String,
}

#[derive(Serialize, ToSchema)]
pub struct MfaEnabled {
    message: &'static str,
    /// Ten single-use codes for when the authenticator is lost. Shown this once only.
    recovery_codes: Vec<String>,
}

/// Exactly one of `code`, `recovery_code` or (to turn MFA off only) `password`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaProofBody {
    #[schema(example = "123456")]
    code: Option<String>,
    #[schema(example = "abcde-fghjk")]
    recovery_code: Option<String>,
    password: Option<String>,
}

/// Exactly one of `code` and `recovery_code`.
fn second_factor(
    code: Option<String>,
    recovery_code: Option<String>,
) -> Result<SecondFactor, ServiceError> {
    match (code, recovery_code) {
        (Some(code), None) => Ok(SecondFactor::Code(code)),
        (None, Some(code)) => Ok(SecondFactor::RecoveryCode(code)),
        _ => Err(ServiceError::invalid_field(
            "code",
            "Send exactly one of `code` or `recovery_code`",
        )),
    }
}

impl MfaProofBody {
    fn into_proof(self) -> Result<MfaProof, ServiceError> {
        match (self.password, self.code, self.recovery_code) {
            (Some(password), None, None) => Ok(MfaProof::Password(password)),
            (None, code, recovery_code) => second_factor(code, recovery_code).map(MfaProof::Factor),
            _ => Err(ServiceError::invalid_field(
                "code",
                "Send exactly one of `code`, `recovery_code` or `password`",
            )),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct Message {
    message: &'static str,
}

/// Start turning multi-factor login on: a new secret for the authenticator app. It is pending
/// until a code confirms it (`/api/auth/mfa/verify`); asking again replaces it.
#[utoipa::path(
    post, path = "/api/auth/mfa/enable", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 200, body = MfaSetupView),
        (status = 401, body = ErrorEnvelope),
        (status = 403, description = "The account's address is not confirmed yet (EMAIL_NOT_VERIFIED): factors need a proven address", body = ErrorEnvelope),
        (status = 409, description = "Multi-factor login is already on", body = ErrorEnvelope),
    )
)]
pub async fn enable(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    let setup = state.auth.mfa_enable(caller.0).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(MfaSetupView {
            secret: setup.secret,
            qr_code: format!("data:image/png;base64,{}", setup.qr_png_base64),
            otpauth_url: setup.otpauth_url,
        }))
}

/// Turn multi-factor login on with a first code from the app; answers the recovery codes.
#[utoipa::path(
    post, path = "/api/auth/mfa/verify", tag = "auth", security(("bearer" = [])),
    request_body = MfaCode,
    responses(
        (status = 200, body = MfaEnabled),
        (status = 400, description = "Wrong or reused code (INVALID_MFA_CODE)", body = ErrorEnvelope),
        (status = 401, body = ErrorEnvelope),
        (status = 409, description = "Already on, or no secret asked for yet", body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope),
        (status = 429, description = "Too many wrong codes: growing delays", body = ErrorEnvelope),
    )
)]
pub async fn verify(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<MfaCode>,
) -> ApiResult<HttpResponse> {
    let recovery_codes = state.auth.mfa_verify(caller.0, &body.code).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(MfaEnabled {
            message: "MFA verified successfully",
            recovery_codes,
        }))
}

/// Turn multi-factor login off, with a code, a recovery code or the password.
#[utoipa::path(
    post, path = "/api/auth/mfa/disable", tag = "auth", security(("bearer" = [])),
    request_body = MfaProofBody,
    responses(
        (status = 200, body = Message),
        (status = 400, description = "Wrong or reused code (INVALID_MFA_CODE)", body = ErrorEnvelope),
        (status = 401, description = "Not signed in, or wrong password (INVALID_CREDENTIALS)", body = ErrorEnvelope),
        (status = 409, description = "Multi-factor login is not on", body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope),
        (status = 429, description = "Too many wrong attempts: growing delays", body = ErrorEnvelope),
    )
)]
pub async fn disable(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<MfaProofBody>,
) -> ApiResult<HttpResponse> {
    let proof = body.into_inner().into_proof()?;
    state.auth.mfa_disable(caller.0, proof).await?;
    Ok(HttpResponse::Ok().json(Message {
        message: "Multi-factor login is off",
    }))
}

/// The second login step: the `mfa_token` from `/api/auth/login` and a code or a recovery
/// code. Each code works once.
#[utoipa::path(
    post, path = "/api/auth/mfa/login", tag = "auth", request_body = MfaLogin,
    responses(
        (status = 200, body = TokenResponse),
        (status = 400, description = "Wrong or reused code (INVALID_MFA_CODE)", body = ErrorEnvelope),
        (status = 401, description = "Expired or unknown `mfa_token`", body = ErrorEnvelope),
        (status = 409, description = "Multi-factor login was turned off meanwhile", body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope),
        (status = 429, description = "Too many wrong codes: growing delays", body = ErrorEnvelope),
    )
)]
pub async fn mfa_login(
    state: web::Data<AppState>,
    body: web::Json<MfaLogin>,
) -> ApiResult<HttpResponse> {
    let MfaLogin {
        mfa_token,
        code,
        recovery_code,
    } = body.into_inner();
    let factor = second_factor(code, recovery_code)?;
    let pair = state.auth.mfa_login(&mfa_token, factor).await?;
    Ok(tokens(token_response(pair)))
}
