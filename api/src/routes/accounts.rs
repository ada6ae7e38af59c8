//! `/api/v2/accounts`: the platforms a user can link, the OAuth dance that links them, and
//! the links (seed 001's Accounts API).

use actix_web::cookie::{time, Cookie, SameSite};
use actix_web::{http::header, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use db::models::{AccountSyncRow, ImportFailureRow, LinkedAccountRow};
use domain::error::ServiceError;
use domain::providers::{ProviderId, SyncStatus};
use linking::{import::SyncReport, BindingCookie, Callback};
use serde::{Deserialize, Serialize};
use settings::Environment;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::error::{ok, ApiResult, Envelope, ErrorEnvelope};
use crate::routes::table::Area;
use crate::state::{AppState, Caller};

/// This area's routes, with their documentation.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_providers,
    start_oauth,
    oauth_callback,
    list_links,
    delete_link,
    request_sync,
    get_sync
))]
struct AccountsApi;

pub fn area() -> Area {
    Area::new(<AccountsApi as utoipa::OpenApi>::openapi())
        .handle("list_providers", list_providers)
        .handle("start_oauth", start_oauth)
        .handle("oauth_callback", oauth_callback)
        .handle("list_links", list_links)
        .handle("delete_link", delete_link)
        .handle("request_sync", request_sync)
        .handle("get_sync", get_sync)
}

#[derive(Serialize, ToSchema)]
pub struct ProviderView {
    pub id: ProviderId,
    pub name: &'static str,
    pub icon: &'static str,
    pub description: &'static str,
    /// Clips can be imported from it (`POST /api/v2/accounts/sync`).
    pub can_import: bool,
    /// Montages can be posted to it.
    pub can_post: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ProviderList {
    pub providers: Vec<ProviderView>,
}

/// The platforms users may link: those in `ACCOUNT_PROVIDERS` whose client is configured,
/// in that order. (Seed 001 answers this without the envelope.)
#[utoipa::path(
    get, path = "/api/v2/accounts/providers", tag = "accounts",
    responses((status = 200, body = ProviderList))
)]
pub async fn list_providers(state: web::Data<AppState>) -> HttpResponse {
    let providers = state
        .linking
        .offered()
        .iter()
        .map(|&id| ProviderView {
            id,
            name: id.name(),
            icon: id.icon(),
            description: id.description(),
            can_import: id.can_import(),
            can_post: id.can_post(),
        })
        .collect();
    HttpResponse::Ok().json(ProviderList { providers })
}

fn provider(raw: &str) -> Result<ProviderId, ServiceError> {
    raw.parse()
        .map_err(|()| ServiceError::not_found(&format!("Provider {raw:?}")))
}

#[derive(Deserialize, IntoParams)]
pub struct StartQuery {
    /// `false`: answer the authorisation URL as JSON instead of redirecting (for apps that
    /// call this with `fetch`). Default `true`.
    redirect: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct AuthorizeUrl {
    pub authorize_url: String,
}

/// Start linking a platform: redirects to its authorisation page (OAuth 2.0 with PKCE).
/// The state is bound to the caller and to this browser (an HttpOnly, SameSite=Lax cookie
/// `montage_oauth_{provider}` sent only to the callback), single use, and lives
/// `OAUTH_STATE_TTL_SECS`. With `redirect=false` (a `fetch` from the web app) the browser
/// keeps the cookie and then navigates to the URL.
#[utoipa::path(
    get, path = "/api/v2/accounts/oauth/{provider}", tag = "accounts", security(("bearer" = [])),
    params(("provider" = String, Path), StartQuery),
    responses(
        (status = 302, description = "A redirect", headers(("Location" = String, description = "The platform's authorisation page"))),
        (status = 200, description = "With `redirect=false`", body = inline(Envelope<AuthorizeUrl>)),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "No such platform, or not offered here", body = ErrorEnvelope),
        (status = 422, body = ErrorEnvelope),
    )
)]
pub async fn start_oauth(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    query: web::Query<StartQuery>,
) -> ApiResult<HttpResponse> {
    let provider = provider(&path)?;
    let started = state.linking.start(caller.0, provider).await?;
    let binding = binding_cookie(&state, provider, started.browser_binding);
    let authorize_url = started.authorize_url;
    Ok(match query.redirect {
        Some(false) => HttpResponse::Ok()
            .cookie(binding)
            .json(ok(AuthorizeUrl { authorize_url })),
        _ => HttpResponse::Found()
            .cookie(binding)
            .insert_header((header::LOCATION, authorize_url))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
    })
}

/// The binding cookie: HttpOnly (no script reads it), SameSite=Lax (sent on the platform's
/// top-level redirect back, never on a cross-site subrequest), Secure in production.
fn binding_cookie(state: &AppState, provider: ProviderId, value: String) -> Cookie<'static> {
    let BindingCookie {
        name,
        path,
        max_age,
    } = state.linking.binding_cookie(provider);
    Cookie::build(name, value)
        .path(path)
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.config.environment == Environment::Production)
        .max_age(time::Duration::seconds(max_age.as_secs() as i64))
        .finish()
}

#[derive(Deserialize, IntoParams)]
pub struct CallbackQuery {
    state: String,
    code: Option<String>,
    /// The platform's error (`access_denied` when the user declined).
    error: Option<String>,
}

/// Where the platform sends the user back. Checks the state and that this browser started
/// it (the `montage_oauth_{provider}` cookie; missing or another: `invalid_state`, and the
/// state is used up), exchanges the code (or, for
/// Steam, has Steam confirm its OpenID 2.0 assertion: `openid.*` parameters), links the
/// account, and redirects to `OAUTH_RESULT_URL` with `provider`, `status` (`linked` with
/// `link_id`, or `error` with `reason`: `invalid_state`, `denied`, `already_linked`,
/// `provider_error`).
#[utoipa::path(
    get, path = "/api/v2/accounts/oauth/{provider}/callback", tag = "accounts",
    params(("provider" = String, Path), CallbackQuery),
    responses(
        (status = 302, description = "A redirect", headers(("Location" = String, description = "The app's result page, with the outcome"))),
        (status = 404, description = "No such platform, or not offered here", body = ErrorEnvelope),
        (status = 422, description = "No state", body = ErrorEnvelope),
    )
)]
pub async fn oauth_callback(
    state: web::Data<AppState>,
    request: HttpRequest,
    path: web::Path<String>,
    query: web::Query<CallbackQuery>,
) -> ApiResult<HttpResponse> {
    let provider = provider(&path)?;
    let CallbackQuery {
        state: token,
        code,
        error,
    } = query.into_inner();
    let params = url::form_urlencoded::parse(request.query_string().as_bytes())
        .into_owned()
        .collect();
    let mut spent = binding_cookie(&state, provider, String::new());
    let callback = Callback {
        state: token,
        browser_binding: request.cookie(spent.name()).map(|c| c.value().to_owned()),
        code,
        error,
        params,
    };
    let outcome = state.linking.finish(provider, callback).await?;
    let url = state
        .linking
        .result_url(provider, outcome.as_ref().map_err(|r| *r));
    spent.make_removal();
    Ok(HttpResponse::Found()
        .cookie(spent)
        .insert_header((header::LOCATION, url))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// A linked platform account. Its tokens never leave the service.
#[derive(Serialize, ToSchema)]
pub struct LinkView {
    pub link_id: Uuid,
    pub provider: ProviderId,
    /// The platform's id of the account.
    pub external_id: String,
    pub display_name: String,
    pub scopes: Vec<String>,
    pub can_import: bool,
    pub can_post: bool,
    pub linked_at: DateTime<Utc>,
    pub last_synced_at: Option<DateTime<Utc>>,
    /// The latest import from this account, with the clips that failed so far; a FAILED one
    /// says why (the platform refused: link the account again).
    pub last_sync: Option<SyncView>,
}

impl From<LinkedAccountRow> for LinkView {
    fn from(link: LinkedAccountRow) -> Self {
        Self {
            last_sync: None,
            link_id: link.id,
            provider: link.provider,
            can_import: link.provider.can_import(),
            can_post: link.provider.can_post(),
            external_id: link.external_id,
            display_name: link.display_name,
            scopes: link.scopes,
            linked_at: link.created_at,
            last_synced_at: link.last_synced_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct LinkList {
    pub links: Vec<LinkView>,
}

/// The caller's linked platform accounts.
#[utoipa::path(
    get, path = "/api/v2/accounts/links", tag = "accounts", security(("bearer" = [])),
    responses(
        (status = 200, body = inline(Envelope<LinkList>)),
        (status = 401, body = ErrorEnvelope),
    )
)]
pub async fn list_links(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    let (links, syncs) = futures::try_join!(
        state.linking.links(caller.0),
        state.linking.last_syncs(caller.0)
    )?;
    let mut syncs: Vec<SyncView> = syncs.into_iter().map(SyncView::from).collect();
    let links = links.into_iter().map(|link| {
        let last_sync = syncs
            .iter()
            .position(|sync| sync.link_id == link.id)
            .map(|found| syncs.swap_remove(found));
        LinkView {
            last_sync,
            ..LinkView::from(link)
        }
    });
    Ok(HttpResponse::Ok().json(ok(LinkList {
        links: links.collect(),
    })))
}

/// Remove a link; its token is revoked at the platform where it allows.
#[utoipa::path(
    delete, path = "/api/v2/accounts/links/{link_id}", tag = "accounts", security(("bearer" = [])),
    params(("link_id" = Uuid, Path)),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "No such link, or not yours", body = ErrorEnvelope),
    )
)]
pub async fn delete_link(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    state.linking.unlink(caller.0, path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A clip that failed to import; the next sync tries it again.
#[derive(Serialize, ToSchema)]
pub struct ImportFailureView {
    /// The platform's clip id.
    pub external_id: String,
    pub title: String,
    pub attempts: i32,
    pub error: String,
}

impl From<ImportFailureRow> for ImportFailureView {
    fn from(failure: ImportFailureRow) -> Self {
        Self {
            external_id: failure.external_id,
            title: failure.title,
            attempts: failure.attempts,
            error: failure.last_error,
        }
    }
}

/// An import of a linked account's clips into the library.
#[derive(Serialize, ToSchema)]
pub struct SyncView {
    pub sync_id: Uuid,
    pub link_id: Uuid,
    pub status: SyncStatus,
    /// Clips to import: new on the platform since the last sync, and earlier failures.
    pub found: i32,
    /// Now library clips (source `twitch`), PENDING until a worker has examined them.
    pub imported: i32,
    pub failed: i32,
    /// Why the whole sync FAILED.
    pub error: Option<String>,
    /// The link's clips that failed to import so far (in a sync's status only).
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failures: Option<Vec<ImportFailureView>>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<AccountSyncRow> for SyncView {
    fn from(sync: AccountSyncRow) -> Self {
        Self {
            sync_id: sync.id,
            link_id: sync.link_id,
            status: sync.status,
            found: sync.found,
            imported: sync.imported,
            failed: sync.failed,
            error: sync.error,
            failures: None,
            created_at: sync.created_at,
            finished_at: sync.finished_at,
        }
    }
}

impl From<SyncReport> for SyncView {
    fn from(report: SyncReport) -> Self {
        Self {
            failures: Some(
                report
                    .failures
                    .into_iter()
                    .map(ImportFailureView::from)
                    .collect(),
            ),
            ..Self::from(report.sync)
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SyncList {
    pub syncs: Vec<SyncView>,
}

/// Import new clips from every linked account that can (Twitch): one sync per account, run
/// by a worker. An account whose sync is already waiting or running answers that one.
#[utoipa::path(
    post, path = "/api/v2/accounts/sync", tag = "accounts", security(("bearer" = [])),
    responses(
        (status = 202, body = inline(Envelope<SyncList>)),
        (status = 401, body = ErrorEnvelope),
        (status = 409, description = "No linked account can import clips", body = ErrorEnvelope),
    )
)]
pub async fn request_sync(state: web::Data<AppState>, caller: Caller) -> ApiResult<HttpResponse> {
    let syncs = state.linking.request_sync(caller.0).await?;
    Ok(HttpResponse::Accepted().json(ok(SyncList {
        syncs: syncs.into_iter().map(SyncView::from).collect(),
    })))
}

/// A sync's progress and results, with the clips that failed to import.
#[utoipa::path(
    get, path = "/api/v2/accounts/syncs/{sync_id}", tag = "accounts", security(("bearer" = [])),
    params(("sync_id" = Uuid, Path)),
    responses(
        (status = 200, body = inline(Envelope<SyncView>)),
        (status = 401, body = ErrorEnvelope),
        (status = 404, description = "No such sync, or not yours", body = ErrorEnvelope),
    )
)]
pub async fn get_sync(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let report = state
        .linking
        .sync_report(caller.0, path.into_inner())
        .await?;
    Ok(HttpResponse::Ok().json(ok(SyncView::from(report))))
}
