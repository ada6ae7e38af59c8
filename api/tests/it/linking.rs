//! Linking platform accounts: the whole OAuth 2.0 dance (PKCE, state) against a local Twitch
//! stand-in reached over real HTTP, forged and replayed states, a platform account another
//! user holds, a declined consent, and unlinking with the token revoked.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use std::time::Duration;

use futures::StreamExt;
use tokio_tungstenite::tungstenite::Message;

use crate::clips::render_by_id;
use crate::control::post;
use crate::engine::{open_socket, Socket};
use crate::helpers::{assert_error, eventually, spawn_app_with, TestApp, TestUser};
use testkit::media;

const CLIENT_ID: &str = "twitch-client-for-tests";
const CLIENT_SECRET: &str = "twitch-secret-for-tests";

/// What the stand-in remembers: who is signed in at Twitch, the codes it issued (with the
/// PKCE challenge and redirect each was issued for), the tokens and whose they are, and the
/// tokens revoked.
#[derive(Default)]
struct TwitchState {
    signed_in: Option<(String, String)>,
    codes: HashMap<String, (String, String, String)>,
    tokens: HashMap<String, (String, String)>,
    /// Refresh tokens, and whose they are.
    refreshes: HashMap<String, (String, String)>,
    refreshed: usize,
    revoked: Vec<String>,
    issued: usize,
    /// Lifetime of the access tokens handed out.
    expires_in: i64,
    /// Each broadcaster's clips: id, title, file.
    clips: HashMap<String, Vec<(String, String, Vec<u8>)>>,
    /// Clips whose next download link request fails (a Twitch hiccup).
    fail_once: Vec<String>,
    /// When clips were made, by id (missing: just now).
    created: HashMap<String, chrono::DateTime<chrono::Utc>>,
}

/// A local Twitch: its OAuth endpoints (id.twitch.tv) and Helix's `GET /users`, checking
/// what the real ones check.
struct TwitchStandIn {
    server: MockServer,
    state: Arc<Mutex<TwitchState>>,
}

pub fn query_of(request: &Request) -> HashMap<String, String> {
    request.url.query_pairs().into_owned().collect()
}

fn form_of(request: &Request) -> HashMap<String, String> {
    serde_urlencoded::from_bytes(&request.body).unwrap_or_default()
}

pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A stand-in's authorisation page for a signed-in user: `code`, bound to the request's
/// PKCE challenge, sent back to its redirect URI with its state.
pub fn grant(
    codes: &mut HashMap<String, String>,
    code: String,
    request: &Request,
) -> ResponseTemplate {
    let query = query_of(request);
    codes.insert(code.clone(), query["code_challenge"].clone());
    let back = format!(
        "{}?code={code}&state={}",
        query["redirect_uri"], query["state"]
    );
    ResponseTemplate::new(302).insert_header("location", back.as_str())
}

/// Whether a token request's code was granted for the challenge its verifier answers; the
/// code is used up either way.
pub fn redeem(codes: &mut HashMap<String, String>, form: &HashMap<String, String>) -> bool {
    let challenge = codes.remove(form.get("code").map(String::as_str).unwrap_or_default());
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    challenge.is_some_and(|challenge| challenge == s256(&verifier))
}

impl TwitchStandIn {
    async fn start() -> Self {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(TwitchState {
            expires_in: 14_400,
            ..TwitchState::default()
        }));
        let shared = state.clone();
        Mock::given(method("GET"))
            .and(path("/oauth2/authorize"))
            .respond_with(move |request: &Request| authorize(&shared, request))
            .mount(&server)
            .await;
        let shared = state.clone();
        Mock::given(method("POST"))
            .and(path("/oauth2/token"))
            .respond_with(move |request: &Request| token(&shared, request))
            .mount(&server)
            .await;
        let shared = state.clone();
        Mock::given(method("GET"))
            .and(path("/helix/users"))
            .respond_with(move |request: &Request| users(&shared, request))
            .mount(&server)
            .await;
        let shared = state.clone();
        Mock::given(method("GET"))
            .and(path("/helix/clips"))
            .respond_with(move |request: &Request| clips(&shared, request))
            .mount(&server)
            .await;
        let (shared, base) = (state.clone(), server.uri());
        Mock::given(method("GET"))
            .and(path("/helix/clips/downloads"))
            .respond_with(move |request: &Request| downloads(&shared, request, &base))
            .mount(&server)
            .await;
        let shared = state.clone();
        Mock::given(method("GET"))
            .and(wiremock::matchers::path_regex("^/files/[^/]+$"))
            .respond_with(move |request: &Request| file(&shared, request))
            .mount(&server)
            .await;
        let shared = state.clone();
        Mock::given(method("POST"))
            .and(path("/oauth2/revoke"))
            .respond_with(move |request: &Request| {
                let form = form_of(request);
                let mut state = shared.lock().unwrap();
                match form
                    .get("token")
                    .filter(|t| state.tokens.remove(*t).is_some())
                {
                    Some(token) if form.get("client_id").map(String::as_str) == Some(CLIENT_ID) => {
                        state.revoked.push(token.clone());
                        ResponseTemplate::new(200)
                    }
                    _ => ResponseTemplate::new(400)
                        .set_body_json(json!({"message": "Invalid token"})),
                }
            })
            .mount(&server)
            .await;
        Self { server, state }
    }

    fn settings(&self) -> Vec<(&'static str, String)> {
        let base = self.server.uri();
        vec![
            ("TWITCH_CLIENT_ID", CLIENT_ID.into()),
            ("TWITCH_CLIENT_SECRET", CLIENT_SECRET.into()),
            ("TWITCH_AUTHORIZE_URL", format!("{base}/oauth2/authorize")),
            ("TWITCH_TOKEN_URL", format!("{base}/oauth2/token")),
            ("TWITCH_REVOKE_URL", format!("{base}/oauth2/revoke")),
            ("TWITCH_API_URL", format!("{base}/helix")),
        ]
    }

    /// The Twitch account that consents from now on.
    fn sign_in(&self, id: &str, name: &str) {
        self.state.lock().unwrap().signed_in = Some((id.into(), name.into()));
    }

    fn revoked(&self) -> Vec<String> {
        self.state.lock().unwrap().revoked.clone()
    }
}

/// The consent page, consented at once: back to `redirect_uri` with a code and the state.
fn authorize(state: &Mutex<TwitchState>, request: &Request) -> ResponseTemplate {
    let query = query_of(request);
    let field = |name: &str| query.get(name).cloned().unwrap_or_default();
    assert_eq!(field("client_id"), CLIENT_ID);
    assert_eq!(field("response_type"), "code");
    assert_eq!(field("code_challenge_method"), "S256");
    let mut state = state.lock().unwrap();
    let redirect = field("redirect_uri");
    let Some((id, name)) = state.signed_in.clone() else {
        let back = format!("{redirect}?error=access_denied&state={}", field("state"));
        return ResponseTemplate::new(302).insert_header("location", back.as_str());
    };
    state.issued += 1;
    let code = format!("code-{}", state.issued);
    state.codes.insert(
        code.clone(),
        (
            field("code_challenge"),
            redirect.clone(),
            format!("{id}:{name}"),
        ),
    );
    let back = format!("{redirect}?code={code}&state={}", field("state"));
    ResponseTemplate::new(302).insert_header("location", back.as_str())
}

/// The token endpoint: a code once, with the verifier of its challenge and its redirect URI.
fn token(state: &Mutex<TwitchState>, request: &Request) -> ResponseTemplate {
    let form = form_of(request);
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    let mut state = state.lock().unwrap();
    if field("grant_type") == "refresh_token" {
        let owner = state.refreshes.remove(&field("refresh_token"));
        return match owner.filter(|_| field("client_secret") == CLIENT_SECRET) {
            Some((id, name)) => {
                state.refreshed += 1;
                issue_tokens(&mut state, &id, &name)
            }
            None => ResponseTemplate::new(400)
                .set_body_json(json!({"status": 400, "message": "Invalid refresh token"})),
        };
    }
    let issued = state.codes.remove(&field("code"));
    let valid = field("client_id") == CLIENT_ID
        && field("client_secret") == CLIENT_SECRET
        && field("grant_type") == "authorization_code"
        && issued.as_ref().is_some_and(|(challenge, redirect, _)| {
            *challenge == s256(&field("code_verifier")) && *redirect == field("redirect_uri")
        });
    let Some((_, _, who)) = issued.filter(|_| valid) else {
        return ResponseTemplate::new(400)
            .set_body_json(json!({"status": 400, "message": "Invalid authorization code"}));
    };
    let (id, name) = who.split_once(':').unwrap();
    issue_tokens(&mut state, id, name)
}

/// New access and refresh tokens for Twitch user `id`, the way Twitch answers them.
fn issue_tokens(state: &mut TwitchState, id: &str, name: &str) -> ResponseTemplate {
    state.issued += 1;
    let access = format!("access-{}-{id}", state.issued);
    let refresh = format!("refresh-{}-{id}", state.issued);
    state
        .tokens
        .insert(access.clone(), (id.into(), name.into()));
    state
        .refreshes
        .insert(refresh.clone(), (id.into(), name.into()));
    ResponseTemplate::new(200).set_body_json(json!({
        "access_token": access, "refresh_token": refresh, "expires_in": state.expires_in,
        "scope": ["clips:edit", "editor:manage:clips"], "token_type": "bearer",
    }))
}

/// The Twitch user whose live token the request carries with our client id.
fn caller(state: &TwitchState, request: &Request) -> Option<(String, String)> {
    let header = |name: &str| {
        let value = request.headers.get(name).and_then(|v| v.to_str().ok());
        value.unwrap_or_default().to_owned()
    };
    let token = header("authorization");
    let token = token.strip_prefix("Bearer ").unwrap_or_default();
    let owner = state.tokens.get(token).cloned();
    owner.filter(|_| header("client-id") == CLIENT_ID)
}

fn unauthorised() -> ResponseTemplate {
    ResponseTemplate::new(401)
        .set_body_json(json!({"status": 401, "message": "Invalid OAuth token"}))
}

/// Helix `GET /users` for the token's owner.
fn users(state: &Mutex<TwitchState>, request: &Request) -> ResponseTemplate {
    match caller(&state.lock().unwrap(), request) {
        Some((id, name)) => ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"id": id, "login": name.to_lowercase(), "display_name": name}]
        })),
        None => unauthorised(),
    }
}

/// Helix `GET /clips` of a broadcaster: only with that broadcaster's own token here.
fn clips(state: &Mutex<TwitchState>, request: &Request) -> ResponseTemplate {
    let state = state.lock().unwrap();
    let broadcaster = query_of(request)
        .get("broadcaster_id")
        .cloned()
        .unwrap_or_default();
    if caller(&state, request).map(|(id, _)| id) != Some(broadcaster.clone()) {
        return unauthorised();
    }
    // Helix's window: from `started_at` to `ended_at`, or one week when that is missing.
    let query = query_of(request);
    let stamp = |name: &str| {
        let at = query.get(name)?;
        Some(chrono::DateTime::parse_from_rfc3339(at).unwrap().to_utc())
    };
    let window = stamp("started_at").map(|start| {
        let end = stamp("ended_at").unwrap_or(start + chrono::Duration::days(7));
        start..end
    });
    let listed = state.clips.get(&broadcaster).into_iter().flatten();
    let data: Vec<Value> = listed
        .filter(|(id, ..)| {
            let created = state
                .created
                .get(id)
                .copied()
                .unwrap_or_else(chrono::Utc::now);
            window
                .as_ref()
                .is_none_or(|window| window.contains(&created))
        })
        .map(|(id, title, _)| json!({"id": id, "title": title, "broadcaster_id": broadcaster}))
        .collect();
    ResponseTemplate::new(200).set_body_json(json!({"data": data, "pagination": {}}))
}

/// Helix `GET /clips/downloads`: the editor must be the token's user.
fn downloads(state: &Mutex<TwitchState>, request: &Request, base: &str) -> ResponseTemplate {
    let mut state = state.lock().unwrap();
    let query = query_of(request);
    let field = |name: &str| query.get(name).cloned().unwrap_or_default();
    if caller(&state, request).map(|(id, _)| id) != Some(field("editor_id")) {
        return unauthorised();
    }
    let clip = field("clip_id");
    if let Some(at) = state.fail_once.iter().position(|id| *id == clip) {
        state.fail_once.remove(at);
        return ResponseTemplate::new(503)
            .set_body_json(json!({"status": 503, "message": "Service Unavailable"}));
    }
    ResponseTemplate::new(200).set_body_json(json!({"data": [{
        "clip_id": clip, "landscape_download_url": format!("{base}/files/{clip}"),
        "portrait_download_url": null,
    }]}))
}

/// A clip's file, where the download link points.
fn file(state: &Mutex<TwitchState>, request: &Request) -> ResponseTemplate {
    let id = request.url.path().rsplit('/').next().unwrap_or_default();
    let state = state.lock().unwrap();
    match state
        .clips
        .values()
        .flatten()
        .find(|(clip, _, _)| clip == id)
    {
        Some((_, _, bytes)) => ResponseTemplate::new(200).set_body_bytes(bytes.clone()),
        None => ResponseTemplate::new(404),
    }
}

async fn spawn_with_twitch() -> (TestApp, TwitchStandIn) {
    let twitch = TwitchStandIn::start().await;
    let settings = twitch.settings();
    let mut overrides: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    overrides.push((
        "OAUTH_RESULT_URL",
        "https://app.montage.test/accounts/linked",
    ));
    overrides.push(("OAUTH_CALLBACK_BASE", "https://api.montage.test"));
    (spawn_app_with(&overrides).await, twitch)
}

/// What a browser that linked an account could send again: the callback and its cookie.
pub struct Replay {
    callback: String,
    browser: Browser,
}

/// The browser's part: our start URL, the platform's consent, back to our callback (at the
/// test app's address), and the app's result page. Answers that page's query, and what a
/// replay would send.
pub async fn link(
    app: &TestApp,
    user: &TestUser,
    provider: &str,
) -> (HashMap<String, String>, Replay) {
    let (consent, browser) = start_link(app, user, provider).await;
    let callback = consent_at_platform(app, provider, &consent).await;
    let result = follow_callback(app, &callback, &browser).await;
    (result, Replay { callback, browser })
}

/// A browser's binding to its flow: the cookie the start set, as a `Cookie` header sends it.
pub struct Browser(String);

/// Starts a flow as the web app does (a `fetch` with `redirect=false`): the platform's
/// consent page, and the browser's cookie for this flow.
pub async fn start_link(app: &TestApp, user: &TestUser, provider: &str) -> (String, Browser) {
    let path = format!("/api/v2/accounts/oauth/{provider}?redirect=false");
    let start = app.get(&path, user).send().await.unwrap();
    assert_eq!(start.status(), 200);
    let set = start.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attribute in [
        "HttpOnly",
        "SameSite=Lax",
        &format!("Path=/api/v2/accounts/oauth/{provider}/callback"),
    ] {
        assert!(set.contains(attribute), "{attribute} in {set}");
    }
    let cookie = set.split(';').next().unwrap().to_owned();
    let body: Value = start.json().await.unwrap();
    let consent = body["data"]["authorize_url"].as_str().unwrap().to_owned();
    (consent, Browser(cookie))
}

/// The platform's consent page, consented: answers our callback URL (at the test app's
/// address) that the platform sends the browser back to.
async fn consent_at_platform(app: &TestApp, provider: &str, consent: &str) -> String {
    let consented = app.client.get(consent).send().await.unwrap();
    assert_eq!(consented.status(), 302);
    let back = url::Url::parse(consented.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(
        back.origin().ascii_serialization(),
        "https://api.montage.test"
    );
    assert_eq!(
        back.path(),
        format!("/api/v2/accounts/oauth/{provider}/callback")
    );
    app.url(&format!(
        "{}?{}",
        back.path(),
        back.query().unwrap_or_default()
    ))
}

async fn follow_callback(
    app: &TestApp,
    callback: &str,
    browser: &Browser,
) -> HashMap<String, String> {
    let landed = app.client.get(callback).header("cookie", &browser.0);
    let landed = landed.send().await.unwrap();
    assert_eq!(landed.status(), 302);
    let spent = landed.headers()["set-cookie"].to_str().unwrap();
    assert!(spent.contains("Max-Age=0"), "the cookie is spent: {spent}");
    let result = url::Url::parse(landed.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(result.path(), "/accounts/linked");
    result.query_pairs().into_owned().collect()
}

/// A browser that never started a flow.
fn stranger() -> Browser {
    Browser(String::new())
}

async fn links(app: &TestApp, user: &TestUser) -> Vec<Value> {
    app.user_json("/api/v2/accounts/links", user).await["data"]["links"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn linking_twitch_runs_the_whole_oauth_dance_once_per_state() {
    let (app, twitch) = spawn_with_twitch().await;
    let providers = app.public_json("/api/v2/accounts/providers").await;
    assert_eq!(providers["providers"][1]["id"], "twitch", "{providers}");
    assert_eq!(providers["providers"][1]["can_import"], true);
    let user = app.user().await;
    twitch.sign_in("1001", "AceClips");
    let (result, replay) = link(&app, &user, "twitch").await;
    assert_eq!(result["status"], "linked", "{result:?}");
    assert_eq!(result["provider"], "twitch");
    let listed = links(&app, &user).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["link_id"], result["link_id"].as_str());
    assert_eq!(listed[0]["external_id"], "1001");
    assert_eq!(listed[0]["display_name"], "AceClips");
    assert_eq!(
        listed[0]["scopes"],
        json!(["clips:edit", "editor:manage:clips"])
    );
    let text = serde_json::to_string(&listed).unwrap();
    assert!(
        !text.contains("access-") && !text.contains("refresh-"),
        "tokens stay inside: {text}"
    );

    // The same callback again, from the same browser (a replay), and a state nobody issued
    // (a forgery).
    assert_eq!(
        follow_callback(&app, &replay.callback, &replay.browser).await["reason"],
        "invalid_state"
    );
    let forged = app.url("/api/v2/accounts/oauth/twitch/callback?code=code-1&state=made-up");
    assert_eq!(
        follow_callback(&app, &forged, &stranger()).await["reason"],
        "invalid_state"
    );
    assert_eq!(links(&app, &user).await.len(), 1, "nothing more linked");
}

/// Login CSRF: the attacker starts a flow and gets a victim to open its consent URL. The
/// victim consents with their own Twitch account; their browser, which did not start that
/// flow, lands on our callback. Nothing may link the victim's channel to the attacker.
#[tokio::test]
async fn a_flow_finishes_only_in_the_browser_that_started_it() {
    let (app, twitch) = spawn_with_twitch().await;
    let (attacker, victim) = (app.user().await, app.user().await);
    let (lure, _attackers_browser) = start_link(&app, &attacker, "twitch").await;
    assert!(
        lure.contains("force_verify=true"),
        "Twitch always asks: {lure}"
    );
    twitch.sign_in("4004", "VictimChannel");
    let callback = consent_at_platform(&app, "twitch", &lure).await;
    // The victim's browser has no cookie for it, or its own flow's.
    assert_eq!(
        follow_callback(&app, &callback, &stranger()).await["reason"],
        "invalid_state"
    );
    let (_, victims_own) = start_link(&app, &victim, "twitch").await;
    let lure_again = start_link(&app, &attacker, "twitch").await.0;
    let callback = consent_at_platform(&app, "twitch", &lure_again).await;
    assert_eq!(
        follow_callback(&app, &callback, &victims_own).await["reason"],
        "invalid_state"
    );
    assert!(links(&app, &attacker).await.is_empty(), "nothing linked");
    // The victim's own link still works.
    assert_eq!(link(&app, &victim, "twitch").await.0["status"], "linked");
}

#[tokio::test]
async fn a_twitch_account_links_to_one_user_and_unlinking_revokes_its_token() {
    let (app, twitch) = spawn_with_twitch().await;
    let (owner, rival) = (app.user().await, app.user().await);
    twitch.sign_in("2002", "Owner");
    assert_eq!(link(&app, &owner, "twitch").await.0["status"], "linked");
    // The same Twitch account, from another user of ours: the token obtained is revoked.
    assert_eq!(
        link(&app, &rival, "twitch").await.0["reason"],
        "already_linked"
    );
    assert_eq!(twitch.revoked().len(), 1, "the unused token was revoked");
    assert!(links(&app, &rival).await.is_empty());
    // Linking again refreshes the owner's link instead of adding one.
    assert_eq!(link(&app, &owner, "twitch").await.0["status"], "linked");
    assert_eq!(links(&app, &owner).await.len(), 1);
    // Declined at Twitch.
    twitch.state.lock().unwrap().signed_in = None;
    assert_eq!(link(&app, &rival, "twitch").await.0["reason"], "denied");

    let id = links(&app, &owner).await[0]["link_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let unlink = |user: &TestUser| {
        app.client
            .delete(app.url(&format!("/api/v2/accounts/links/{id}")))
            .bearer_auth(&user.access_token)
            .send()
    };
    assert_error(unlink(&rival).await.unwrap(), 404, "RESOURCE_NOT_FOUND").await;
    assert_eq!(unlink(&owner).await.unwrap().status(), 204);
    assert_eq!(twitch.revoked().len(), 2, "the token was revoked at Twitch");
    assert!(links(&app, &owner).await.is_empty());
    assert_error(unlink(&owner).await.unwrap(), 404, "RESOURCE_NOT_FOUND").await;
    // Free again: the rival may link it now.
    twitch.sign_in("2002", "Owner");
    assert_eq!(link(&app, &rival, "twitch").await.0["status"], "linked");
    // Deleting the account revokes its links' tokens too.
    let closed = app
        .client
        .delete(app.url("/api/users/me"))
        .bearer_auth(&rival.access_token);
    let closed = closed
        .json(&json!({"password": rival.password}))
        .send()
        .await
        .unwrap();
    assert_eq!(closed.status(), 204);
    assert_eq!(
        twitch.revoked().len(),
        3,
        "the deleted account's token was revoked"
    );
}

#[tokio::test]
async fn linking_refuses_what_is_not_offered_or_not_well_formed() {
    let (app, _twitch) = spawn_with_twitch().await;
    let user = app.user().await;
    for provider in ["myspace", "tiktok", "youtube"] {
        let start = app
            .get(&format!("/api/v2/accounts/oauth/{provider}"), &user)
            .send()
            .await
            .unwrap();
        assert_error(start, 404, "RESOURCE_NOT_FOUND").await;
    }
    let anonymous = app
        .client
        .get(app.url("/api/v2/accounts/oauth/twitch"))
        .send()
        .await
        .unwrap();
    assert_error(anonymous, 401, "AUTHENTICATION_REQUIRED").await;
    let no_state = app
        .client
        .get(app.url("/api/v2/accounts/oauth/twitch/callback?code=x"))
        .send()
        .await
        .unwrap();
    assert_error(no_state, 422, "VALIDATION_ERROR").await;
    let as_json = app
        .get("/api/v2/accounts/oauth/twitch?redirect=false", &user)
        .send()
        .await
        .unwrap();
    assert_eq!(as_json.status(), 200);
    let url = as_json.json::<Value>().await.unwrap()["data"]["authorize_url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        url.contains("code_challenge=") && url.contains("state="),
        "{url}"
    );
    let garbled = app
        .client
        .delete(app.url("/api/v2/accounts/links/not-a-uuid"))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_error(garbled, 404, "RESOURCE_NOT_FOUND").await;
}

async fn sync_until_done(app: &TestApp, user: &TestUser) -> Value {
    let asked = post(app, user, "/api/v2/accounts/sync")
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), 202);
    let syncs = asked.json::<Value>().await.unwrap()["data"]["syncs"].clone();
    assert_eq!(syncs.as_array().unwrap().len(), 1, "{syncs}");
    let path = format!(
        "/api/v2/accounts/syncs/{}",
        syncs[0]["sync_id"].as_str().unwrap()
    );
    eventually(Duration::from_secs(60), "the sync's end", || async {
        let sync = app.user_json(&path, user).await["data"].clone();
        let status = sync["status"].as_str().unwrap_or_default().to_owned();
        ["SUCCESS", "FAILED"]
            .contains(&status.as_str())
            .then_some(sync)
    })
    .await
}

/// The `sync` events a live connection hears, up to the end of a sync.
async fn sync_events_until_done(socket: &mut Socket) -> Vec<Value> {
    let mut heard = Vec::new();
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .expect("the sync's events arrive")
            .expect("the socket stays open")
            .unwrap();
        let Message::Text(text) = message else {
            continue;
        };
        let event: Value = serde_json::from_str(&text).unwrap();
        if event["type"] == "sync" {
            heard.push(event);
            if heard.last().unwrap()["status"] == "SUCCESS" {
                return heard;
            }
        }
    }
}

fn counts(sync: &Value) -> [Option<i64>; 3] {
    ["found", "imported", "failed"].map(|field| sync[field].as_i64())
}

/// Three clips on the streamer's channel: two videos, one playlist posing as a clip.
fn stock_channel(twitch: &TwitchStandIn) {
    let read = |path: std::path::PathBuf| std::fs::read(path).unwrap();
    let mut state = twitch.state.lock().unwrap();
    let clips = vec![
        (
            "AceClip".into(),
            "Ace on B".into(),
            read(media::portrait_no_audio()),
        ),
        (
            "ClutchClip".into(),
            "1v4 clutch".into(),
            read(media::rotated_small()),
        ),
        (
            "NotAVideo".into(),
            "playlist".into(),
            b"#EXTM3U\n#EXT-X-ENDLIST\n".to_vec(),
        ),
    ];
    state.clips.insert("3003".into(), clips);
    // Twitch fails this clip's download link once.
    state.fail_once.push("ClutchClip".into());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_twitch_clips_arrive_once_survive_failures_and_render_by_id() {
    let (mut app, twitch) = spawn_with_twitch().await;
    let user = app.user().await;
    let none = post(&app, &user, "/api/v2/accounts/sync")
        .send()
        .await
        .unwrap();
    assert_error(none, 409, "CONFLICT").await;
    // Tokens that expire within the refresh margin: the first sync must refresh.
    twitch.state.lock().unwrap().expires_in = 60;
    twitch.sign_in("3003", "Streamer");
    assert_eq!(link(&app, &user, "twitch").await.0["status"], "linked");
    stock_channel(&twitch);
    let mut socket = open_socket(&app, &format!("token={}", user.access_token)).await;
    app.start_worker().await;

    let first = sync_until_done(&app, &user).await;
    let heard = sync_events_until_done(&mut socket).await;
    assert_eq!(
        heard.first().map(|e| e["status"].clone()),
        Some("RUNNING".into()),
        "{heard:?}"
    );
    assert_eq!(heard.last().unwrap()["imported"], 1, "{heard:?}");
    assert_eq!(first["status"], "SUCCESS", "{first}");
    assert_eq!(counts(&first), [Some(3), Some(1), Some(2)], "{first}");
    let failures = first["failures"].as_array().unwrap();
    let failed: Vec<&str> = failures
        .iter()
        .map(|f| f["external_id"].as_str().unwrap())
        .collect();
    assert!(
        failed.contains(&"ClutchClip") && failed.contains(&"NotAVideo"),
        "{first}"
    );
    assert!(
        twitch.state.lock().unwrap().refreshed >= 1,
        "the expiring token was refreshed"
    );

    // The next sync tries the failures again: the transient one arrives, the other fails.
    let second = sync_until_done(&app, &user).await;
    assert_eq!(counts(&second), [Some(2), Some(1), Some(1)], "{second}");
    assert_eq!(second["failures"][0]["external_id"], "NotAVideo");
    assert_eq!(second["failures"][0]["attempts"], 2);
    // The link shows its latest import and what still fails, for the accounts page.
    let shown = links(&app, &user).await[0]["last_sync"].clone();
    assert_eq!(shown["sync_id"], second["sync_id"], "{shown}");
    assert_eq!(shown["status"], "SUCCESS", "{shown}");
    assert_eq!(shown["failures"][0]["external_id"], "NotAVideo", "{shown}");
    // Each Twitch clip arrives once, however often the account syncs.
    let third = sync_until_done(&app, &user).await;
    assert_eq!(third["imported"], 0, "{third}");
    let library = app.user_json("/api/v2/clips?source=twitch", &user).await["data"].clone();
    assert_eq!(library["total"], 2, "{library}");
    let clips = library["clips"].as_array().unwrap();
    let mut imported: Vec<&str> = clips
        .iter()
        .map(|c| c["external_id"].as_str().unwrap())
        .collect();
    imported.sort_unstable();
    assert_eq!(imported, ["AceClip", "ClutchClip"]);

    // Examined like any library clip, then rendered by id.
    let ids: Vec<String> = clips
        .iter()
        .map(|c| c["clip_id"].as_str().unwrap().to_owned())
        .collect();
    for id in &ids {
        let path = format!("/api/v2/clips/{id}");
        eventually(
            Duration::from_secs(60),
            "the imported clip's examination",
            || async {
                let clip = app.user_json(&path, &user).await["data"].clone();
                (clip["status"] == "READY").then_some(())
            },
        )
        .await;
    }
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    render_by_id(&app, &user, &ids, &[("target_duration", "10")]).await;
}

/// An OpenID assertion's fields, as sent.
type Assertion = Vec<(String, String)>;

/// A local Steam OpenID 2.0 provider: `checkid_setup` signs the consenting user in at once
/// and sends them back with an assertion; `check_authentication` confirms only assertions it
/// made, field for field.
struct SteamStandIn {
    server: MockServer,
    steam_id: Arc<Mutex<String>>,
}

impl SteamStandIn {
    async fn start() -> Self {
        let server = MockServer::start().await;
        let endpoint = format!("{}/openid/login", server.uri());
        let steam_id = Arc::new(Mutex::new("76561197960287930".to_owned()));
        let issued: Arc<Mutex<Vec<Assertion>>> = Arc::default();
        let (who, made, at) = (steam_id.clone(), issued.clone(), endpoint.clone());
        Mock::given(method("GET"))
            .and(path("/openid/login"))
            .respond_with(move |request: &Request| {
                let query = query_of(request);
                assert_eq!(query["openid.mode"], "checkid_setup");
                let return_to = query["openid.return_to"].clone();
                let claimed = format!("{}/openid/id/{}", at.trim_end_matches("/openid/login"), who.lock().unwrap());
                let assertion: Assertion = [
                    ("openid.ns", "http://specs.openid.net/auth/2.0"),
                    ("openid.mode", "id_res"),
                    ("openid.op_endpoint", at.as_str()),
                    ("openid.claimed_id", claimed.as_str()),
                    ("openid.identity", claimed.as_str()),
                    ("openid.return_to", return_to.as_str()),
                    ("openid.response_nonce", "2026-11-24T00:00:00Zx"),
                    ("openid.assoc_handle", "1234567890"),
                    ("openid.signed", "signed,op_endpoint,claimed_id,identity,return_to,response_nonce,assoc_handle"),
                    ("openid.sig", "c2lnbmVkLWJ5LXRoZS1zdGFuZC1pbg=="),
                ]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
                let mut back = url::Url::parse(&return_to).unwrap();
                back.query_pairs_mut().extend_pairs(&assertion);
                made.lock().unwrap().push(assertion);
                ResponseTemplate::new(302).insert_header("location", back.as_str())
            })
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/openid/login"))
            .respond_with(move |request: &Request| {
                let form: Vec<(String, String)> =
                    serde_urlencoded::from_bytes(&request.body).unwrap_or_default();
                // A field sent twice counts by its last copy, as many servers read forms.
                let mut sent: BTreeMap<String, String> = form.into_iter().collect();
                let asked = sent.remove("openid.mode").as_deref() == Some("check_authentication");
                let known = issued.lock().unwrap().iter().any(|assertion| {
                    let signed: BTreeMap<String, String> = assertion
                        .iter()
                        .filter(|(k, _)| k != "openid.mode")
                        .cloned()
                        .collect();
                    signed == sent
                });
                let valid = if asked && known { "true" } else { "false" };
                ResponseTemplate::new(200).set_body_string(format!(
                    "ns:http://specs.openid.net/auth/2.0\nis_valid:{valid}\n"
                ))
            })
            .mount(&server)
            .await;
        Self { server, steam_id }
    }
}

#[tokio::test]
async fn steam_links_through_a_verified_openid_assertion() {
    let steam = SteamStandIn::start().await;
    let endpoint = format!("{}/openid/login", steam.server.uri());
    let app = spawn_app_with(&[
        ("STEAM_OPENID_URL", endpoint.as_str()),
        (
            "OAUTH_RESULT_URL",
            "https://app.montage.test/accounts/linked",
        ),
        ("OAUTH_CALLBACK_BASE", "https://api.montage.test"),
    ])
    .await;
    let (user, other) = (app.user().await, app.user().await);
    let (result, replay) = link(&app, &user, "steam").await;
    assert_eq!(result["status"], "linked", "{result:?}");
    let listed = links(&app, &user).await;
    assert_eq!(listed[0]["provider"], "steam");
    assert_eq!(listed[0]["external_id"], "76561197960287930");
    assert_eq!(listed[0]["scopes"], json!([]));
    assert_eq!(
        follow_callback(&app, &replay.callback, &replay.browser).await["reason"],
        "invalid_state"
    );

    // An assertion edited on the way back (another SteamID): Steam does not confirm it.
    *steam.steam_id.lock().unwrap() = "76561197960287931".into();
    let edited = |fields: Assertion| {
        let edit = |v: String| v.replace("76561197960287931", "76561197960287930");
        fields.into_iter().map(|(k, v)| (k, edit(v))).collect()
    };
    assert_eq!(steam_attempt(&app, &other, edited).await, "provider_error");
    // The victim's SteamID sent first, the genuine assertion after: we would read the
    // first copy while Steam, reading the last, confirms the assertion.
    let doubled = |fields: Assertion| {
        let claimed = fields.iter().find(|(k, _)| k == "openid.claimed_id");
        let forged = claimed
            .unwrap()
            .1
            .replace("76561197960287931", "76561197960287930");
        let mut sent = vec![
            ("openid.claimed_id".to_owned(), forged.clone()),
            ("openid.identity".to_owned(), forged),
        ];
        sent.extend(fields);
        sent
    };
    assert_eq!(steam_attempt(&app, &other, doubled).await, "provider_error");
    assert!(links(&app, &other).await.is_empty());
    assert_eq!(steam_attempt(&app, &other, |f| f).await, "linked");
}

/// A Steam sign-in whose assertion `tamper` changes on the way back; answers the outcome
/// (`linked`, or the reason).
async fn steam_attempt(
    app: &TestApp,
    user: &TestUser,
    tamper: impl Fn(Assertion) -> Assertion,
) -> String {
    let (consent, browser) = start_link(app, user, "steam").await;
    let back = app.client.get(&consent).send().await.unwrap();
    let back = url::Url::parse(back.headers()["location"].to_str().unwrap()).unwrap();
    let fields = tamper(back.query_pairs().into_owned().collect());
    let query = serde_urlencoded::to_string(&fields).unwrap();
    let callback = app.url(&format!("{}?{query}", back.path()));
    let result = follow_callback(app, &callback, &browser).await;
    let outcome = result.get("reason").or(result.get("status"));
    outcome.cloned().unwrap_or_default()
}

/// Back after three weeks: Helix answers one week per request, so a sync walks every week
/// since the last one, and nothing made meanwhile is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_after_weeks_away_imports_every_week_since_the_last() {
    let (mut app, twitch) = spawn_with_twitch().await;
    let user = app.user().await;
    twitch.sign_in("5005", "AwayStreamer");
    assert_eq!(link(&app, &user, "twitch").await.0["status"], "linked");
    app.start_worker().await;
    let empty = sync_until_done(&app, &user).await;
    assert_eq!(counts(&empty), [Some(0), Some(0), Some(0)], "{empty}");

    // The last sync was three weeks ago; clips were made 15 and 2 days ago.
    let away = "UPDATE linked_accounts SET last_synced_at = now() - interval '21 days'";
    assert_eq!(app.execute_sql(away.into()).await, 1);
    let video = std::fs::read(media::portrait_no_audio()).unwrap();
    {
        let mut state = twitch.state.lock().unwrap();
        let ago = |days| chrono::Utc::now() - chrono::Duration::days(days);
        state.created.insert("TwoWeeksAgo".into(), ago(15));
        state.created.insert("TwoDaysAgo".into(), ago(2));
        state.clips.insert(
            "5005".into(),
            vec![
                ("TwoWeeksAgo".into(), "old ace".into(), video.clone()),
                ("TwoDaysAgo".into(), "new ace".into(), video),
            ],
        );
    }
    let back = sync_until_done(&app, &user).await;
    assert_eq!(counts(&back), [Some(2), Some(2), Some(0)], "{back}");
}
