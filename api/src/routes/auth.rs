//! `/api/auth`: register, login, refresh, logout, me, and the browser's file pass. Bodies and
//! responses follow seed 001.

use accounts::auth::{Email, LoginOutcome, Password, TokenPair};
use accounts::file_pass::FILE_PASS_COOKIE;
use accounts::profile::Username;
use actix_web::cookie::{time, Cookie, SameSite};
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use contract::auth::{
    Credentials, LoginResponse, MfaChallenge, RefreshRequest, TokenResponse, TokenType,
};
use db::models::User;
use domain::plans::PlanId;
use serde::{Deserialize, Serialize};
use settings::Environment;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::routes::{policy::RateClass, table::Area};
use crate::{
    error::{ApiResult, ErrorEnvelope},
    rate_limit::ClientAddress,
    state::{AppState, Caller},
};

/// This area's routes, with their documentation.
#[derive(utoipa::OpenApi)]
#[openapi(paths(register, login, refresh, logout, me, file_pass))]
struct AuthApi;

pub fn area() -> Area {
    Area::new(<AuthApi as utoipa::OpenApi>::openapi())
        .handle("register", register)
        .handle("login", login)
        .handle("refresh", refresh)
        .handle("logout", logout)
        .handle("me", me)
        .handle("file_pass", file_pass)
        .rate(
            RateClass::Auth,
            &["register", "login", "refresh", "logout", "file_pass"],
        )
}

/// A new account: the credentials, and optionally a username (seeds 002, 003).
#[derive(Deserialize, ToSchema)]
pub struct Registration {
    #[schema(example = "user@example.com")]
    pub email: String,
    /// 10 to 128 characters, at least one letter and one digit, not a common password.
    #[schema(example = "SecurePassword123!")]
    pub password: String,
    /// 3 to 50 letters, digits, `_`, `.` or `-`; unique whatever its case.
    #[schema(example = "alice")]
    pub username: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub user_id: Uuid,
    pub email: String,
    pub username: Option<String>,
    pub display_name: Option<String>,
    /// Whether the address was confirmed through a mailed link.
    pub email_verified: bool,
    /// Whether login asks for a second factor (a TOTP code).
    pub mfa_enabled: bool,
    pub plan: PlanId,
    pub created_at: DateTime<Utc>,
}

impl From<User> for UserView {
    fn from(user: User) -> Self {
        Self {
            user_id: user.id,
            email: user.email,
            username: user.username,
            display_name: user.display_name,
            email_verified: user.email_verified_at.is_some(),
            mfa_enabled: user.mfa_enabled_at.is_some(),
            plan: user.plan,
            created_at: user.created_at,
        }
    }
}

pub fn token_response(pair: TokenPair) -> TokenResponse {
    TokenResponse {
        access_token: pair.access_token,
        token_type: TokenType::Bearer,
        user_id: pair.user_id,
        refresh_token: pair.refresh_token,
        expires_in: pair.expires_in,
    }
}

fn login_response(outcome: LoginOutcome) -> LoginResponse {
    match outcome {
        LoginOutcome::Tokens(pair) => LoginResponse::Tokens(token_response(pair)),
        LoginOutcome::MfaRequired {
            mfa_token,
            expires_in,
        } => LoginResponse::MfaRequired(MfaChallenge {
            mfa_required: true,
            mfa_token,
            expires_in,
        }),
    }
}

/// A token response that no cache keeps.
pub fn tokens(body: impl Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(body)
}

/// Accepts the refresh token as a form field (as the seed shows) or as JSON.
type RefreshBody = web::Either<web::Form<RefreshRequest>, web::Json<RefreshRequest>>;

fn refresh_token(body: RefreshBody) -> String {
    match body {
        web::Either::Left(form) => form.into_inner().refresh_token,
        web::Either::Right(json) => json.into_inner().refresh_token,
    }
}

/// Create an account.
#[utoipa::path(
    post, path = "/api/auth/register", tag = "auth", request_body = Registration,
    responses(
        (status = 201, description = "Created; a verification link is mailed to the address", body = UserView),
        (status = 409, description = "Email already registered, or username taken (`data.field` says which)", body = ErrorEnvelope),
        (status = 422, description = "Malformed email or username, or weak password", body = ErrorEnvelope),
    )
)]
pub async fn register(
    state: web::Data<AppState>,
    body: web::Json<Registration>,
) -> ApiResult<HttpResponse> {
    let Registration {
        email,
        password,
        username,
    } = body.into_inner();
    let email = Email::parse(&email)?;
    let password = Password::parse(&password)?;
    let username = username.as_deref().map(Username::parse).transpose()?;
    let user = state.auth.register(email, password, username).await?;
    state.email.welcome(user.clone());
    Ok(HttpResponse::Created().json(UserView::from(user)))
}

/// Exchange email and password for an access token and a refresh token, or, when the
/// account has multi-factor login on, for the token of the second step.
#[utoipa::path(
    post, path = "/api/auth/login", tag = "auth", request_body = Credentials,
    responses(
        (status = 200, body = LoginResponse),
        (status = 401, description = "Wrong email or password (never says which)", body = ErrorEnvelope),
        (status = 429, description = "Too many failed logins from this address for this account (growing delays), or too many requests (RATE_LIMIT_EXCEEDED, with Retry-After)", body = ErrorEnvelope),
        (status = 503, description = "Too many logins being checked at once; retry shortly", body = ErrorEnvelope),
    )
)]
pub async fn login(
    state: web::Data<AppState>,
    client: web::ReqData<ClientAddress>,
    body: web::Json<Credentials>,
) -> ApiResult<HttpResponse> {
    let Credentials { email, password } = body.into_inner();
    let outcome = state.auth.login(&email, password, &client.0).await?;
    Ok(tokens(login_response(outcome)))
}

/// Rotate a refresh token: returns a new pair; the presented token stops working.
#[utoipa::path(
    post, path = "/api/auth/refresh", tag = "auth",
    request_body(content = RefreshRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "Unknown, expired, revoked or reused refresh token", body = ErrorEnvelope),
    )
)]
pub async fn refresh(state: web::Data<AppState>, body: RefreshBody) -> ApiResult<HttpResponse> {
    let pair = state.auth.refresh(&refresh_token(body)).await?;
    Ok(tokens(token_response(pair)))
}

/// Revoke a refresh token. Idempotent.
#[utoipa::path(
    post, path = "/api/auth/logout", tag = "auth",
    request_body(content = RefreshRequest, content_type = "application/x-www-form-urlencoded"),
    responses((status = 204, description = "Revoked"), (status = 422, body = ErrorEnvelope))
)]
pub async fn logout(state: web::Data<AppState>, body: RefreshBody) -> ApiResult<HttpResponse> {
    if let Some(ended) = state.auth.logout(&refresh_token(body)).await? {
        state.events.session_ended(ended).await;
    }
    Ok(HttpResponse::NoContent().finish())
}

/// The authenticated user.
#[utoipa::path(
    get, path = "/api/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 401, body = ErrorEnvelope))
)]
pub async fn me(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    let user = state.auth.user(caller.0).await?;
    Ok(HttpResponse::Ok().json(UserView::from(user)))
}

/// Lets this browser navigate to the caller's rendered files: a navigation
/// (`window.location.href = '/api/v2/jobs/{id}/download?format=landscape'`, seed 001) cannot
/// send a bearer header. Sets the `montage_files` cookie: HttpOnly, SameSite=Strict, limited to
/// `/api/v2`, and honoured only by the routes whose policy names it (`GET …/download` and
/// `GET …/poster` of the caller's own jobs, `GET …/thumbnail` of their own clips). It lasts as long as the access token it was asked with and ends with its session;
/// ask again after each refresh.
#[utoipa::path(
    post, path = "/api/auth/file-pass", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 204, description = "The cookie is set", headers(("Set-Cookie" = String, description = "`montage_files=…; HttpOnly; SameSite=Strict; Path=/api/v2; Max-Age=…`"))),
        (status = 401, body = ErrorEnvelope),
    )
)]
pub async fn file_pass(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    let pass = state.auth.file_pass(caller.0)?;
    let cookie = Cookie::build(FILE_PASS_COOKIE, pass.token)
        .path("/api/v2")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.config.environment == Environment::Production)
        .max_age(time::Duration::seconds(pass.expires_in as i64))
        .finish();
    Ok(HttpResponse::NoContent().cookie(cookie).finish())
}
