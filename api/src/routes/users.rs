//! `/api/users/me`: the caller's profile (seeds 002, 003), and `/api/users/me/data`, their
//! application data (seed 003): small JSON values under keys, optionally scoped to an
//! `application_id`.

use accounts::auth::Email;
use accounts::profile::{DisplayName, EmailChange, ProfileChange, Username};
use accounts::userdata::DataSummary;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use db::models::UserDataRow;
use domain::userdata::{ApplicationId, DataKey};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::routes::{auth::UserView, table::Area};
use crate::{
    error::{ok, ApiResult, Envelope, ErrorEnvelope},
    state::{AppState, Caller},
};

/// This area's routes, with their documentation.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    get_profile,
    update_profile,
    delete_account,
    set_data,
    list_data,
    get_data,
    delete_data
))]
struct UsersApi;

pub fn area() -> Area {
    Area::new(<UsersApi as utoipa::OpenApi>::openapi())
        .handle("get_profile", get_profile)
        .handle("update_profile", update_profile)
        .handle("delete_account", delete_account)
        .handle("set_data", set_data)
        .handle("list_data", list_data)
        .handle("get_data", get_data)
        .handle("delete_data", delete_data)
}

/// The fields to change; a field left out stays as it is.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    /// 3 to 50 letters, digits, `_`, `.` or `-`; unique whatever its case.
    #[schema(example = "alice")]
    username: Option<String>,
    /// 1 to 100 printable characters, trimmed; an empty string removes it.
    #[schema(example = "Alice the Great")]
    display_name: Option<String>,
    /// A new address: it becomes the account's when the link mailed to it is opened.
    /// Needs `current_password`.
    #[schema(example = "new-address@example.com")]
    email: Option<String>,
    current_password: Option<String>,
}

/// The username and display name of a profile change; an empty display name removes it.
pub(crate) fn profile_change(
    username: Option<String>,
    display_name: Option<String>,
) -> Result<ProfileChange, domain::error::ServiceError> {
    let display_name = match display_name.as_deref().map(str::trim) {
        None => None,
        Some("") => Some(None),
        Some(name) => Some(Some(DisplayName::parse(name)?)),
    };
    Ok(ProfileChange {
        username: username.as_deref().map(Username::parse).transpose()?,
        display_name,
        email: None,
    })
}

impl ProfileUpdate {
    fn parse(self) -> Result<ProfileChange, domain::error::ServiceError> {
        let email = match (self.email, self.current_password) {
            (None, _) => None,
            (Some(email), Some(current_password)) => Some(EmailChange {
                email: Email::parse(&email)?,
                current_password,
            }),
            (Some(_), None) => {
                return Err(domain::error::ServiceError::invalid_field(
                    "current_password",
                    "Changing the email address needs the current password",
                ))
            }
        };
        Ok(ProfileChange {
            email,
            ..profile_change(self.username, self.display_name)?
        })
    }
}

/// The caller's profile.
#[utoipa::path(
    get, path = "/api/users/me", tag = "users", security(("bearer" = [])),
    responses(
        (status = 200, body = UserView),
        (status = 401, body = ErrorEnvelope),
    )
)]
pub async fn get_profile(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    let user = state.auth.user(caller.0).await?;
    Ok(HttpResponse::Ok().json(UserView::from(user)))
}

/// Change the caller's username, display name or email address. A new address needs the
/// current password and takes effect when the link mailed to it is opened
/// (`POST /api/auth/verify-email`); the old address is told.
#[utoipa::path(
    put, path = "/api/users/me", tag = "users", security(("bearer" = [])),
    request_body = ProfileUpdate,
    responses(
        (status = 200, description = "The profile as it is now (the email address changes later, when its link is opened)", body = UserView),
        (status = 401, description = "Not signed in, or a wrong `current_password` (INVALID_CREDENTIALS)", body = ErrorEnvelope),
        (status = 409, description = "The username or the email address is taken (`data.field` says which); nothing changed", body = ErrorEnvelope),
        (status = 422, description = "A malformed username, display name or email, an email without `current_password`, or an unknown field; nothing changed", body = ErrorEnvelope),
        (status = 429, description = "Too many wrong passwords: growing delays", body = ErrorEnvelope),
    )
)]
pub async fn update_profile(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<ProfileUpdate>,
) -> ApiResult<HttpResponse> {
    let change = body.into_inner().parse()?;
    let user = state.email.update_profile(caller.0, change).await?;
    Ok(HttpResponse::Ok().json(UserView::from(user)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountDeletion {
    /// The account's password.
    password: String,
}

/// Delete the caller's account, after the password: its jobs (running ones stop), clips,
/// outputs and posters in storage, tokens, data and roles go, and its Stripe customer is
/// deleted, which cancels the subscription. Every session ends.
#[utoipa::path(
    delete, path = "/api/users/me", tag = "users", security(("bearer" = [])),
    request_body = AccountDeletion,
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Not signed in, or a wrong password (INVALID_CREDENTIALS)", body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope),
        (status = 429, description = "Too many wrong passwords: growing delays", body = ErrorEnvelope),
        (status = 502, description = "Stripe could not cancel the subscription; nothing was deleted", body = ErrorEnvelope),
    )
)]
pub async fn delete_account(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<AccountDeletion>,
) -> ApiResult<HttpResponse> {
    let ended = state
        .closure
        .close_own(caller.0, body.into_inner().password)
        .await?;
    for session in ended {
        state.events.session_ended(session).await;
    }
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetData {
    /// 1 to 64 letters, digits, `_`, `.` or `-`, starting with a letter or digit.
    #[schema(example = "preferences")]
    key: String,
    /// Any JSON value, at most `USER_DATA_MAX_VALUE_KIB` (8 KiB) as JSON text.
    #[schema(example = json!({"theme": "dark", "notifications": true}))]
    value: serde_json::Value,
    /// Scopes the key to one application; the same rules as `key`.
    #[schema(example = "app_12345")]
    application_id: Option<String>,
}

/// Which application's data; none for data of no application.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// The same rules as a key.
    application_id: Option<String>,
}

impl Scope {
    fn parse(&self) -> Result<ApplicationId, domain::error::ServiceError> {
        ApplicationId::parse(self.application_id.as_deref())
    }
}

#[derive(Serialize, ToSchema)]
pub struct DataView {
    key: String,
    application_id: Option<String>,

    value: serde_json::Value,
    size_bytes: i32,
    updated_at: DateTime<Utc>,
}

impl From<UserDataRow> for DataView {
    fn from(row: UserDataRow) -> Self {
        Self {
            application_id: Some(row.application_id).filter(|id| !id.is_empty()),
            key: row.key,
            value: row.value,
            size_bytes: row.size_bytes,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DataKeyView {
    key: String,
    size_bytes: i32,
    updated_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct DataKeys {
    application_id: Option<String>,
    keys: Vec<DataKeyView>,
}

/// Store a value under a key (replacing any value there).
#[utoipa::path(
    post, path = "/api/users/me/data", tag = "users", security(("bearer" = [])),
    request_body = SetData,
    responses(
        (status = 200, description = "Stored", body = inline(Envelope<DataView>)),
        (status = 401, body = ErrorEnvelope),
        (status = 403, description = "A new key past the quota of keys per user (QUOTA_EXCEEDED); nothing changed", body = ErrorEnvelope),
        (status = 413, description = "The value (or the body) is too large; nothing changed", body = ErrorEnvelope),
        (status = 422, description = "Malformed body, key or application id", body = ErrorEnvelope),
    )
)]
pub async fn set_data(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<SetData>,
) -> ApiResult<HttpResponse> {
    let SetData {
        key,
        value,
        application_id,
    } = body.into_inner();
    let application = ApplicationId::parse(application_id.as_deref())?;
    let key = DataKey::parse(&key)?;
    let row = state
        .user_data
        .set(caller.0, application, key, value)
        .await?;
    Ok(HttpResponse::Ok().json(ok(DataView::from(row))))
}

/// The keys stored for an application (or for none), with their sizes.
#[utoipa::path(
    get, path = "/api/users/me/data", tag = "users", security(("bearer" = [])),
    params(Scope),
    responses(
        (status = 200, body = inline(Envelope<DataKeys>)),
        (status = 401, body = ErrorEnvelope),
        (status = 422, description = "Malformed application id", body = ErrorEnvelope),
    )
)]
pub async fn list_data(
    state: web::Data<AppState>,
    caller: Caller,
    scope: web::Query<Scope>,
) -> ApiResult<HttpResponse> {
    let application = scope.parse()?;
    let named = application.named().map(str::to_owned);
    let keys = state.user_data.keys(caller.0, application).await?;
    let keys = keys
        .into_iter()
        .map(
            |DataSummary {
                 key,
                 size_bytes,
                 updated_at,
             }| DataKeyView {
                key,
                size_bytes,
                updated_at,
            },
        )
        .collect();
    Ok(HttpResponse::Ok().json(ok(DataKeys {
        application_id: named,
        keys,
    })))
}

/// The value stored under a key.
#[utoipa::path(
    get, path = "/api/users/me/data/{key}", tag = "users", security(("bearer" = [])),
    params(("key" = String, Path), Scope),
    responses(
        (status = 200, body = inline(Envelope<DataView>)),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "Nothing stored under this key for this application", body = ErrorEnvelope),
        (status = 422, description = "Malformed key or application id", body = ErrorEnvelope),
    )
)]
pub async fn get_data(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    scope: web::Query<Scope>,
) -> ApiResult<HttpResponse> {
    let key = DataKey::parse(&path)?;
    let row = state.user_data.get(caller.0, scope.parse()?, key).await?;
    Ok(HttpResponse::Ok().json(ok(DataView::from(row))))
}

/// Delete a key and its value.
#[utoipa::path(
    delete, path = "/api/users/me/data/{key}", tag = "users", security(("bearer" = [])),
    params(("key" = String, Path), Scope),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "Nothing stored under this key for this application", body = ErrorEnvelope),
        (status = 422, description = "Malformed key or application id", body = ErrorEnvelope),
    )
)]
pub async fn delete_data(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    scope: web::Query<Scope>,
) -> ApiResult<HttpResponse> {
    let key = DataKey::parse(&path)?;
    state
        .user_data
        .delete(caller.0, scope.parse()?, key)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
