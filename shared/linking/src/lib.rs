//! Linking platform accounts (seed 001's Accounts API): OAuth 2.0 authorisation code with
//! PKCE and a state bound to the user who started it (kept server side, hashed, short-lived,
//! single use); the links it makes, one platform account to one user, with their tokens
//! sealed at rest; and their removal, which revokes the token at the platform.

pub mod import;
mod oauth;
mod platforms;
pub mod posting;
mod steam;

use std::time::Duration;

use chrono::Utc;
use diesel::prelude::*;
use uuid::Uuid;

use db::models::{LinkedAccountRow, OAuthStateRow};
use db::schema::{linked_accounts, oauth_states};
use db::Db;
use domain::error::{ServiceError, ServiceResult};
use domain::identity::AuthUser;
use domain::providers::ProviderId;
use domain::sealing::Sealer;
use engine::jobs::JobService;
use settings::{LinkingConfig, OAuthClientConfig};

use oauth::{PlatformError, Tokens};
use platforms::Identity;

/// Platform calls give up after this long.
const PLATFORM_TIMEOUT: Duration = Duration::from_secs(15);
/// The sealing contexts: a sealed value opens only where it was sealed for.
const ACCESS_TOKEN: &str = "linked_accounts.access_token";
const REFRESH_TOKEN: &str = "linked_accounts.refresh_token";
const PKCE_VERIFIER: &str = "oauth_states.pkce_verifier";
/// A token this close to expiry is refreshed before use.
const REFRESH_MARGIN_SECS: i64 = 120;

/// Why a callback linked nothing; the user's app reads it in `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown, expired, already used, or for another platform: forged or replayed.
    InvalidState,
    /// The user declined at the platform.
    Denied,
    /// That platform account is linked to another user.
    AlreadyLinked,
    /// The platform refused the code or could not be reached.
    ProviderError,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidState => "invalid_state",
            Self::Denied => "denied",
            Self::AlreadyLinked => "already_linked",
            Self::ProviderError => "provider_error",
        }
    }
}

/// What starting a link hands back: the platform's page for the user, and the value of
/// the cookie that binds the flow to the browser that started it ([`Linking::binding_cookie`]).
#[derive(Debug)]
pub struct Started {
    pub authorize_url: String,
    pub browser_binding: String,
}

/// The cookie that carries a flow's browser binding: its name and the one path it is sent
/// to (the provider's callback), so flows for different platforms do not overwrite each other.
pub struct BindingCookie {
    pub name: String,
    pub path: String,
    pub max_age: Duration,
}

/// What the platform sent back to the callback.
#[derive(Debug, Default)]
pub struct Callback {
    pub state: String,
    /// The binding cookie the browser sent along, if any.
    pub browser_binding: Option<String>,
    pub code: Option<String>,
    /// Set when the user declined (`access_denied`) or the platform failed.
    pub error: Option<String>,
    /// Every query parameter, as sent (Steam's OpenID assertion is all in there).
    pub params: Vec<(String, String)>,
}

#[derive(Clone)]
pub struct Linking {
    db: Db,
    sealer: Sealer,
    config: LinkingConfig,
    /// The platforms offered, in display order: listed in `ACCOUNT_PROVIDERS` and configured.
    offered: Vec<ProviderId>,
    http: reqwest::Client,
    /// The jobs whose outputs are posted.
    jobs: JobService,
}

impl Linking {
    pub fn new(db: Db, config: &settings::Config) -> ServiceResult<Self> {
        let sealer = Sealer::from_base64(&config.auth.data_encryption_key)
            .map_err(ServiceError::internal)?;
        let linking = config.linking.clone();
        let offered = config
            .providers
            .iter()
            .copied()
            .filter(|&provider| match provider {
                ProviderId::Steam => !linking.steam_openid_url.trim().is_empty(),
                _ => client_of(&linking, provider).is_some(),
            })
            .collect();
        let http = reqwest::Client::builder()
            .timeout(PLATFORM_TIMEOUT)
            // A platform's answer never sends us elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(ServiceError::internal)?;
        Ok(Self {
            jobs: JobService::new(db.clone()),
            db,
            sealer,
            config: linking,
            offered,
            http,
        })
    }

    /// The platforms users may link, in display order.
    pub fn offered(&self) -> &[ProviderId] {
        &self.offered
    }

    fn client(&self, provider: ProviderId) -> ServiceResult<&OAuthClientConfig> {
        client_of(&self.config, provider)
            .filter(|_| self.offered.contains(&provider))
            .ok_or_else(|| ServiceError::not_found(&format!("Linking {}", provider.name())))
    }

    fn redirect_uri(&self, provider: ProviderId) -> String {
        format!(
            "{}/api/v2/accounts/oauth/{provider}/callback",
            self.config.callback_base.trim_end_matches('/')
        )
    }

    /// Where the user lands after a callback, with its outcome.
    pub fn result_url(
        &self,
        provider: ProviderId,
        outcome: Result<&LinkedAccountRow, Refusal>,
    ) -> String {
        let mut url = url::Url::parse(&self.config.result_url)
            .unwrap_or_else(|_| url::Url::parse("http://invalid/").expect("a URL"));
        let mut query = url.query_pairs_mut();
        query.append_pair("provider", provider.as_str());
        match outcome {
            Ok(link) => query
                .append_pair("status", "linked")
                .append_pair("link_id", &link.id.to_string()),
            Err(refusal) => query
                .append_pair("status", "error")
                .append_pair("reason", refusal.as_str()),
        };
        drop(query);
        url.into()
    }

    /// The cookie that binds a flow for `provider` to its browser.
    pub fn binding_cookie(&self, provider: ProviderId) -> BindingCookie {
        BindingCookie {
            name: format!("montage_oauth_{provider}"),
            path: format!("/api/v2/accounts/oauth/{provider}/callback"),
            max_age: self.config.state_ttl,
        }
    }

    /// Starts linking `provider` for `user`: records the state (and the PKCE verifier) bound
    /// to a fresh browser value, and answers the platform's authorisation URL with that value.
    pub async fn start(&self, user: AuthUser, provider: ProviderId) -> ServiceResult<Started> {
        if !self.offered.contains(&provider) {
            return Err(ServiceError::not_found(&format!(
                "Linking {}",
                provider.name()
            )));
        }
        let state = oauth::random_token();
        let (url, verifier) = match provider {
            ProviderId::Steam => {
                let return_to = self.steam_return_to(&state);
                let realm = self.config.callback_base.trim_end_matches('/');
                let url = steam::authorize_url(&self.config.steam_openid_url, &return_to, realm);
                (url, None)
            }
            _ => {
                let verifier = oauth::random_token();
                let client = self.client(provider)?;
                let url =
                    oauth::authorize_url(client, &self.redirect_uri(provider), &state, &verifier);
                (
                    url,
                    Some(self.sealer.seal(PKCE_VERIFIER, verifier.as_bytes())?),
                )
            }
        };
        let authorize_url = url.map_err(ServiceError::internal)?;
        let browser_binding = oauth::random_token();
        let now = Utc::now();
        let started = OAuthStateRow {
            state_hash: oauth::state_hash(&state),
            browser_hash: oauth::state_hash(&browser_binding),
            user_id: user.id,
            provider,
            pkce_verifier: verifier,
            expires_at: now + chrono::Duration::from_std(self.config.state_ttl).unwrap_or_default(),
            created_at: now,
        };
        self.db
            .run(move |conn| {
                // Abandoned authorisations go as new ones start.
                diesel::delete(oauth_states::table.filter(oauth_states::expires_at.lt(now)))
                    .execute(conn)?;
                diesel::insert_into(oauth_states::table)
                    .values(&started)
                    .execute(conn)?;
                Ok(())
            })
            .await?;
        Ok(Started {
            authorize_url,
            browser_binding,
        })
    }

    /// Where Steam sends the user back: our callback, carrying the state.
    fn steam_return_to(&self, state: &str) -> String {
        format!("{}?state={state}", self.redirect_uri(ProviderId::Steam))
    }

    /// Finishes an authorisation: the state is taken (once) by the browser it was bound to,
    /// the platform's answer checked (the code exchanged, or Steam's assertion verified), the
    /// platform account identified and linked to the user who started.
    pub async fn finish(
        &self,
        provider: ProviderId,
        callback: Callback,
    ) -> ServiceResult<Result<LinkedAccountRow, Refusal>> {
        let binding = callback.browser_binding.as_deref().unwrap_or_default();
        let taken = self.take_state(provider, &callback.state, binding).await?;
        let Some((user_id, verifier)) = taken else {
            return Ok(Err(Refusal::InvalidState));
        };
        if callback.error.is_some()
            || callback
                .params
                .iter()
                .any(|(k, v)| k == "openid.mode" && v == "cancel")
        {
            return Ok(Err(Refusal::Denied));
        }
        let confirmed = match (provider, callback.code, verifier) {
            (ProviderId::Steam, _, _) => {
                let return_to = self.steam_return_to(&callback.state);
                let endpoint = &self.config.steam_openid_url;
                steam::verify(&self.http, endpoint, &callback.params, &return_to)
                    .await
                    .map(|identity| (identity, None))
            }
            (_, Some(code), Some(verifier)) => self.exchange(provider, &code, &verifier).await,
            _ => return Ok(Err(Refusal::Denied)),
        };
        match confirmed {
            Ok((identity, tokens)) => {
                let access = tokens.as_ref().map(|t| t.access_token.clone());
                let linked = self.store_link(user_id, provider, identity, tokens).await?;
                if let (Err(Refusal::AlreadyLinked), Some(token)) = (&linked, access) {
                    // Nobody will use the token just obtained: the platform should not
                    // keep it either.
                    self.revoke_token(provider, &token).await;
                }
                Ok(linked)
            }
            Err(PlatformError(why)) => {
                tracing::warn!(%provider, %why, "could not complete a platform authorisation");
                Ok(Err(Refusal::ProviderError))
            }
        }
    }

    /// Exchanges an authorisation code (with its PKCE verifier) and asks whose tokens they are.
    async fn exchange(
        &self,
        provider: ProviderId,
        code: &str,
        verifier: &str,
    ) -> Result<(Identity, Option<Tokens>), PlatformError> {
        let client = self.client(provider)?;
        let redirect_uri = self.redirect_uri(provider);
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri.as_str()),
            ("code_verifier", verifier),
        ];
        let tokens = oauth::token_request(&self.http, client, &form).await?;
        let identity =
            platforms::identify(&self.http, provider, client, &tokens.access_token).await?;
        Ok((identity, Some(tokens)))
    }

    /// The user (and the PKCE verifier, for OAuth) of a live state for `provider`, which is
    /// used up. A browser other than the one that started (a link sent to a victim, who would
    /// link their platform account to the sender's) finds nothing, and uses the state up too.
    async fn take_state(
        &self,
        provider: ProviderId,
        state: &str,
        browser_binding: &str,
    ) -> ServiceResult<Option<(Uuid, Option<String>)>> {
        let hash = oauth::state_hash(state);
        let taken: Option<OAuthStateRow> = self
            .db
            .run(move |conn| {
                Ok(diesel::delete(oauth_states::table.find(hash))
                    .returning(OAuthStateRow::as_returning())
                    .get_result(conn)
                    .optional()?)
            })
            .await?;
        let Some(taken) = taken else {
            return Ok(None);
        };
        let same_browser = taken.browser_hash == oauth::state_hash(browser_binding);
        if taken.provider != provider || taken.expires_at < Utc::now() || !same_browser {
            return Ok(None);
        }
        let verifier = match taken.pkce_verifier {
            Some(sealed) => Some(self.unseal(PKCE_VERIFIER, &sealed)?),
            None => None,
        };
        Ok(Some((taken.user_id, verifier)))
    }

    /// Links the platform account to `user_id`, or refreshes the link it already has; one
    /// linked to someone else stays theirs.
    async fn store_link(
        &self,
        user_id: Uuid,
        provider: ProviderId,
        identity: Identity,
        tokens: Option<Tokens>,
    ) -> ServiceResult<Result<LinkedAccountRow, Refusal>> {
        let row = self.link_row(user_id, provider, identity, tokens)?;
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let existing: Option<LinkedAccountRow> = linked_accounts::table
                        .filter(linked_accounts::provider.eq(provider))
                        .filter(linked_accounts::external_id.eq(&row.external_id))
                        .select(LinkedAccountRow::as_select())
                        .for_update()
                        .first(conn)
                        .optional()?;
                    match existing {
                        Some(other) if other.user_id != row.user_id => {
                            Ok(Err(Refusal::AlreadyLinked))
                        }
                        Some(mine) => Ok(Ok(diesel::update(linked_accounts::table.find(mine.id))
                            .set((
                                linked_accounts::display_name.eq(&row.display_name),
                                linked_accounts::access_token.eq(&row.access_token),
                                linked_accounts::refresh_token.eq(&row.refresh_token),
                                linked_accounts::token_expires_at.eq(row.token_expires_at),
                                linked_accounts::scopes.eq(&row.scopes),
                                linked_accounts::updated_at.eq(row.updated_at),
                            ))
                            .returning(LinkedAccountRow::as_returning())
                            .get_result(conn)?)),
                        None => Ok(Ok(diesel::insert_into(linked_accounts::table)
                            .values(&row)
                            .returning(LinkedAccountRow::as_returning())
                            .get_result(conn)?)),
                    }
                })
            })
            .await
    }

    /// A new link's row, its tokens sealed.
    fn link_row(
        &self,
        user_id: Uuid,
        provider: ProviderId,
        identity: Identity,
        tokens: Option<Tokens>,
    ) -> ServiceResult<LinkedAccountRow> {
        let now = Utc::now();
        let seal = |context, token: Option<&String>| {
            token
                .map(|t| self.sealer.seal(context, t.as_bytes()))
                .transpose()
        };
        Ok(LinkedAccountRow {
            id: Uuid::now_v7(),
            user_id,
            provider,
            external_id: identity.external_id,
            display_name: identity.display_name,
            access_token: seal(ACCESS_TOKEN, tokens.as_ref().map(|t| &t.access_token))?,
            refresh_token: seal(
                REFRESH_TOKEN,
                tokens.as_ref().and_then(|t| t.refresh_token.as_ref()),
            )?,
            token_expires_at: tokens
                .as_ref()
                .and_then(|t| t.expires_in)
                .map(|secs| now + chrono::Duration::seconds(secs)),
            scopes: tokens.map(|t| t.scope).unwrap_or_default(),
            last_synced_at: None,
            created_at: now,
            updated_at: now,
        })
    }

    /// The caller's links, oldest first.
    pub async fn links(&self, user: AuthUser) -> ServiceResult<Vec<LinkedAccountRow>> {
        self.db
            .run(move |conn| {
                Ok(linked_accounts::table
                    .filter(linked_accounts::user_id.eq(user.id))
                    .order(linked_accounts::created_at.asc())
                    .select(LinkedAccountRow::as_select())
                    .load(conn)?)
            })
            .await
    }

    /// The link's access token, refreshed first when it is about to expire.
    pub(crate) async fn access_token(
        &self,
        link: &LinkedAccountRow,
    ) -> Result<String, PlatformError> {
        let client = crate::client_of(&self.config, link.provider).ok_or(PlatformError(
            format!("{} is not configured", link.provider),
        ))?;
        let open = |context, sealed: &Option<Vec<u8>>| -> Result<String, PlatformError> {
            let sealed = sealed
                .as_deref()
                .ok_or(PlatformError("the link holds no token".into()))?;
            Ok(self.unseal(context, sealed)?)
        };
        let margin = Utc::now() + chrono::Duration::seconds(REFRESH_MARGIN_SECS);
        if link.token_expires_at.is_none_or(|at| at > margin) {
            return open(ACCESS_TOKEN, &link.access_token);
        }
        let refresh = open(REFRESH_TOKEN, &link.refresh_token)?;
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
        ];
        let tokens = oauth::token_request(&self.http, client, &form).await?;
        let access = self
            .sealer
            .seal(ACCESS_TOKEN, tokens.access_token.as_bytes())?;
        // Twitch hands out a new refresh token with each refresh; others keep the old one.
        let refresh = match &tokens.refresh_token {
            Some(new) => Some(self.sealer.seal(REFRESH_TOKEN, new.as_bytes())?),
            None => link.refresh_token.clone(),
        };
        let expires = tokens
            .expires_in
            .map(|secs| Utc::now() + chrono::Duration::seconds(secs));
        let id = link.id;
        self.db
            .run(move |conn| {
                diesel::update(linked_accounts::table.find(id))
                    .set((
                        linked_accounts::access_token.eq(access),
                        linked_accounts::refresh_token.eq(refresh),
                        linked_accounts::token_expires_at.eq(expires),
                        linked_accounts::updated_at.eq(Utc::now()),
                    ))
                    .execute(conn)?;
                Ok(())
            })
            .await?;
        tracing::info!(link_id = %link.id, "refreshed a linked account's token");
        Ok(tokens.access_token)
    }

    /// A secret sealed for `context`, as text.
    fn unseal(&self, context: &str, sealed: &[u8]) -> ServiceResult<String> {
        String::from_utf8(self.sealer.open(context, sealed)?).map_err(ServiceError::internal)
    }

    /// Revokes every token of `user`'s links at their platforms (their account is going).
    pub async fn revoke_all(&self, user: Uuid) -> ServiceResult<()> {
        let links = self
            .db
            .run(move |conn| {
                Ok(linked_accounts::table
                    .filter(linked_accounts::user_id.eq(user))
                    .select(LinkedAccountRow::as_select())
                    .load(conn)?)
            })
            .await?;
        for link in links {
            self.revoke(&link).await?;
        }
        Ok(())
    }

    /// Revokes a link's token at its platform, where the platform allows; a platform that
    /// cannot be reached is logged, not an error.
    async fn revoke(&self, link: &LinkedAccountRow) -> ServiceResult<()> {
        if let Some(sealed) = &link.access_token {
            let token = self.unseal(ACCESS_TOKEN, sealed)?;
            self.revoke_token(link.provider, &token).await;
        }
        Ok(())
    }

    async fn revoke_token(&self, provider: ProviderId, token: &str) {
        let Some(client) = client_of(&self.config, provider) else {
            return;
        };
        if let Err(PlatformError(why)) = oauth::revoke(&self.http, client, token).await {
            tracing::warn!(%provider, %why, "could not revoke a platform token");
        }
    }

    /// Removes one of the caller's links. Its token is revoked at the platform where the
    /// platform allows; a platform that cannot be reached does not keep the link. Its posts
    /// stay (open ones fail).
    pub async fn unlink(&self, user: AuthUser, id: Uuid) -> ServiceResult<()> {
        let link = self
            .db
            .run(move |conn| {
                conn.transaction(|conn| {
                    posting::end_open_posts(conn, user.id, id)?;
                    Ok(diesel::delete(
                        linked_accounts::table
                            .find(id)
                            .filter(linked_accounts::user_id.eq(user.id)),
                    )
                    .returning(LinkedAccountRow::as_returning())
                    .get_result(conn)
                    .optional()?)
                })
            })
            .await?
            .ok_or_else(|| ServiceError::not_found("Linked account"))?;
        self.revoke(&link).await
    }
}

/// The OAuth client of `provider`, when it is configured.
fn client_of(config: &LinkingConfig, provider: ProviderId) -> Option<&OAuthClientConfig> {
    match provider {
        ProviderId::Twitch => config.twitch.as_ref(),
        ProviderId::Youtube => config.youtube.as_ref(),
        ProviderId::Tiktok => config.tiktok.as_ref(),
        // Steam signs in with OpenID 2.0 (`steam`).
        ProviderId::Steam => None,
    }
}
