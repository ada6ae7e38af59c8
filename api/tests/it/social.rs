//! Posting montages: a YouTube account linked through OAuth against a local Google stand-in,
//! and a post uploaded through YouTube's resumable protocol that survives a failure in the
//! middle of the upload and resumes from the last byte YouTube confirmed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::control::{clip, create};
use crate::helpers::{assert_error, eventually, spawn_app_with, TestApp, TestUser};
use crate::linking::{grant, link, query_of, redeem};
use testkit::media;

/// What the Google stand-in remembers.
#[derive(Default)]
struct GoogleState {
    /// Code -> PKCE challenge.
    codes: HashMap<String, String>,
    /// Access token -> channel id.
    tokens: HashMap<String, String>,
    /// Upload sessions: the bytes stored so far, and the metadata they were opened with.
    sessions: Vec<(Vec<u8>, Value)>,
    /// The next data request stores half of what it carries, then fails (a dropped link).
    fail_next_chunk: bool,
    /// Uploads are refused, as YouTube does past the channel's quota.
    refuse_uploads: bool,
    issued: usize,
}

struct GoogleStandIn {
    server: MockServer,
    state: Arc<Mutex<GoogleState>>,
}

impl GoogleStandIn {
    async fn start() -> Self {
        let server = MockServer::start().await;
        let state: Arc<Mutex<GoogleState>> = Arc::default();
        let shared = state.clone();
        Mock::given(method("GET"))
            .and(path("/o/oauth2/auth"))
            .respond_with(move |request: &Request| {
                let mut state = shared.lock().unwrap();
                state.issued += 1;
                let code = format!("g-code-{}", state.issued);
                grant(&mut state.codes, code, request)
            })
            .mount(&server)
            .await;
        let shared = state.clone();
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(move |request: &Request| {
                let form: HashMap<String, String> = serde_urlencoded::from_bytes(&request.body).unwrap_or_default();
                let mut state = shared.lock().unwrap();
                if !redeem(&mut state.codes, &form) {
                    return ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant"}));
                }
                state.tokens.insert("ya29.test".into(), "UC-channel-1".into());
                ResponseTemplate::new(200).set_body_json(json!({
                    "access_token": "ya29.test", "expires_in": 3599, "refresh_token": "1//refresh",
                    "scope": "https://www.googleapis.com/auth/youtube.upload", "token_type": "Bearer",
                }))
            })
            .mount(&server)
            .await;
        let shared = state.clone();
        Mock::given(method("GET"))
            .and(path("/youtube/v3/channels"))
            .respond_with(
                move |request: &Request| match bearer_channel(&shared, request) {
                    Some(id) => ResponseTemplate::new(200).set_body_json(
                        json!({"items": [{"id": id, "snippet": {"title": "Ace Clips"}}]}),
                    ),
                    None => ResponseTemplate::new(401),
                },
            )
            .mount(&server)
            .await;
        let (shared, base) = (state.clone(), server.uri());
        Mock::given(method("POST"))
            .and(path("/upload/youtube/v3/videos"))
            .respond_with(move |request: &Request| {
                let query = query_of(request);
                if bearer_channel(&shared, request).is_none()
                    || query.get("uploadType").map(String::as_str) != Some("resumable")
                {
                    return ResponseTemplate::new(401);
                }
                let metadata: Value = serde_json::from_slice(&request.body).unwrap_or_default();
                let mut state = shared.lock().unwrap();
                if state.refuse_uploads {
                    return ResponseTemplate::new(403).set_body_json(json!({"error": {
                        "code": 403, "message": "The user has exceeded the number of videos they may upload.",
                        "errors": [{"reason": "uploadLimitExceeded", "domain": "youtube.video"}],
                    }}));
                }
                state.sessions.push((Vec::new(), metadata));
                let session = format!("{base}/upload/session/{}", state.sessions.len() - 1);
                ResponseTemplate::new(200).insert_header("location", session.as_str())
            })
            .mount(&server)
            .await;
        let shared = state.clone();
        Mock::given(method("PUT"))
            .and(path_regex("^/upload/session/[0-9]+$"))
            .respond_with(move |request: &Request| session_put(&shared, request))
            .mount(&server)
            .await;
        Self { server, state }
    }

    fn settings(&self) -> Vec<(&'static str, String)> {
        let base = self.server.uri();
        vec![
            ("YOUTUBE_CLIENT_ID", "google-client".into()),
            ("YOUTUBE_CLIENT_SECRET", "google-secret".into()),
            ("YOUTUBE_AUTHORIZE_URL", format!("{base}/o/oauth2/auth")),
            ("YOUTUBE_TOKEN_URL", format!("{base}/token")),
            ("YOUTUBE_REVOKE_URL", format!("{base}/revoke")),
            ("YOUTUBE_API_URL", base),
        ]
    }
}

fn bearer_channel(state: &Mutex<GoogleState>, request: &Request) -> Option<String> {
    let header = request.headers.get("authorization")?.to_str().ok()?;
    state
        .lock()
        .unwrap()
        .tokens
        .get(header.strip_prefix("Bearer ")?)
        .cloned()
}

/// A PUT to an upload session: `bytes */TOTAL` asks how far it got; `bytes A-B/TOTAL` sends
/// data from A, which must be where the stored bytes end. 308 with `Range` until complete.
fn session_put(state: &Mutex<GoogleState>, request: &Request) -> ResponseTemplate {
    let index: usize = request
        .url
        .path()
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let range = request
        .headers
        .get("content-range")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (span, total) = range
        .strip_prefix("bytes ")
        .and_then(|r| r.split_once('/'))
        .unwrap_or(("", "0"));
    let total: usize = total.parse().unwrap_or(0);
    let mut state = state.lock().unwrap();
    let fail = span != "*" && std::mem::take(&mut state.fail_next_chunk);
    let stored = &mut state.sessions[index].0;
    if span != "*" {
        let start: usize = span
            .split('-')
            .next()
            .unwrap_or_default()
            .parse()
            .unwrap_or(usize::MAX);
        if start != stored.len() {
            return ResponseTemplate::new(400).set_body_json(json!({"error": "wrong offset"}));
        }
        let body = &request.body;
        if fail {
            stored.extend_from_slice(&body[..body.len() / 2]);
            return ResponseTemplate::new(503);
        }
        stored.extend_from_slice(body);
    }
    if stored.len() == total && total > 0 {
        return ResponseTemplate::new(201)
            .set_body_json(json!({"id": format!("vid-{index}"), "kind": "youtube#video"}));
    }
    match stored.len() {
        0 => ResponseTemplate::new(308),
        n => {
            ResponseTemplate::new(308).insert_header("range", format!("bytes=0-{}", n - 1).as_str())
        }
    }
}

/// Waits for a post to be PUBLISHED or FAILED.
async fn post_end(app: &TestApp, user: &TestUser, post_id: &str) -> Value {
    let path = format!("/api/v2/social/posts/{post_id}");
    eventually(Duration::from_secs(60), "the post's end", || async {
        let post = app.user_json(&path, user).await["data"].clone();
        let status = post["status"].as_str().unwrap_or_default().to_owned();
        ["PUBLISHED", "FAILED"]
            .contains(&status.as_str())
            .then_some(post)
    })
    .await
}

/// The rendered montage's bytes, as its owner downloads them.
async fn montage(app: &TestApp, user: &TestUser, job: &str, format: &str) -> Vec<u8> {
    let path = format!("/api/v2/jobs/{job}/download?format={format}");
    let download = app.get(&path, user).send().await.unwrap();
    let location = download.headers()["location"].to_str().unwrap().to_owned();
    reqwest::get(location)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

async fn post(app: &TestApp, user: &TestUser, body: Value) -> reqwest::Response {
    let request = app.client.post(app.url("/api/v2/social/posts"));
    request
        .bearer_auth(&user.access_token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The app with YouTube (its Google stand-in) configured, and `extra` settings.
async fn spawn_with_google(extra: &[(&str, &str)]) -> (TestApp, GoogleStandIn) {
    let google = GoogleStandIn::start().await;
    let settings = google.settings();
    let mut overrides: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    overrides.extend_from_slice(extra);
    overrides.push((
        "OAUTH_RESULT_URL",
        "https://app.montage.test/accounts/linked",
    ));
    overrides.push(("OAUTH_CALLBACK_BASE", "https://api.montage.test"));
    (spawn_app_with(&overrides).await, google)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_youtube_post_resumes_after_a_failure_mid_upload_and_publishes() {
    let extra = [("POST_RETRY_BASE_MS", "200"), ("FREE_POSTS_PER_DAY", "1")];
    let (mut app, google) = spawn_with_google(&extra).await;
    let (user, other) = (app.user().await, app.user().await);
    assert_eq!(link(&app, &user, "youtube").await.0["status"], "linked");
    let connections =
        app.user_json("/api/v2/social/connections", &user).await["data"]["connections"].clone();
    assert_eq!(connections[0]["platform"], "youtube", "{connections}");
    assert_eq!(connections[0]["display_name"], "Ace Clips");

    app.start_worker().await;
    let fields = [("target_duration", "10")];
    let job = create(&app, &user, &[clip(media::portrait_no_audio())], &fields).await;
    assert_eq!(
        app.wait_for_job_end(&user, &job, Duration::from_secs(120))
            .await["status"],
        "SUCCESS"
    );

    // Bad posts first: nothing is queued by them.
    let body = |platform: &str, job: &str, extra: Value| {
        let mut body =
            json!({"platform": platform, "job_id": job, "caption": "Ace on B\nwhat a round"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    };
    assert_error(
        post(&app, &user, body("twitch", &job, json!({}))).await,
        422,
        "VALIDATION_ERROR",
    )
    .await;
    assert_error(
        post(&app, &user, body("myspace", &job, json!({}))).await,
        422,
        "VALIDATION_ERROR",
    )
    .await;
    assert_error(
        post(
            &app,
            &user,
            body("youtube", &job, json!({"format": "portrait"})),
        )
        .await,
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
    assert_error(
        post(
            &app,
            &user,
            body("youtube", &job, json!({"caption": "x".repeat(2201)})),
        )
        .await,
        422,
        "VALIDATION_ERROR",
    )
    .await;
    assert_error(
        post(&app, &other, body("youtube", &job, json!({}))).await,
        409,
        "CONFLICT",
    )
    .await;

    google.state.lock().unwrap().fail_next_chunk = true;
    let queued = post(&app, &user, body("youtube", &job, json!({}))).await;
    assert_eq!(queued.status(), 202);
    let queued = queued.json::<Value>().await.unwrap()["data"].clone();
    assert_eq!(queued["status"], "PENDING");
    let again = post(&app, &user, body("youtube", &job, json!({}))).await;
    assert_eq!(
        again.status(),
        200,
        "the same output on the same platform is one post"
    );
    assert_eq!(
        again.json::<Value>().await.unwrap()["data"]["post_id"],
        queued["post_id"]
    );

    let published = post_end(&app, &user, queued["post_id"].as_str().unwrap()).await;
    assert_eq!(published["status"], "PUBLISHED", "{published}");
    assert_eq!(
        published["post_url"],
        "https://www.youtube.com/watch?v=vid-0"
    );
    assert_eq!(
        published["attempts"], 2,
        "one failed attempt, one resumed: {published}"
    );

    // YouTube holds exactly the montage, in one session, titled from the caption.
    let montage = montage(&app, &user, &job, "landscape").await;
    let sessions = std::mem::take(&mut google.state.lock().unwrap().sessions);
    assert_eq!(sessions.len(), 1, "resumed, not started again");
    assert!(
        sessions[0].0 == montage,
        "the uploaded bytes are the montage's"
    );
    assert_eq!(sessions[0].1["snippet"]["title"], "Ace on B");
    assert_eq!(sessions[0].1["status"]["privacyStatus"], "private");

    let listed = app.user_json("/api/v2/social/posts", &user).await["data"].clone();
    assert_eq!(listed["total"], 1);
    // The plan's one post a day is used.
    let second = create(&app, &user, &[clip(media::portrait_no_audio())], &fields).await;
    assert_eq!(
        app.wait_for_job_end(&user, &second, Duration::from_secs(120))
            .await["status"],
        "SUCCESS"
    );
    assert_error(
        post(&app, &user, body("youtube", &second, json!({}))).await,
        403,
        "QUOTA_EXCEEDED",
    )
    .await;

    // The statistics count the post, and the plan's allowance used.
    let stats = app.user_json("/api/v2/analytics/user/stats", &user).await["data"].clone();
    assert_eq!(stats["posts"]["youtube"]["PUBLISHED"], 1, "{stats}");
    assert_eq!(stats["posts"]["youtube"]["FAILED"], 0, "{stats}");
    assert!(stats["posts"].get("tiktok").is_none(), "{stats}");
    assert_eq!(stats["plan"]["usage"]["posts_last_day"], 1, "{stats}");
    assert_eq!(stats["jobs"]["SUCCESS"], 2, "{stats}");
}

/// What the TikTok stand-in remembers: the codes it issued, each publish's upload (bytes
/// stored, declared size and chunking) and how often its status was asked.
#[derive(Default)]
struct TikTokState {
    codes: HashMap<String, String>,
    uploads: Vec<(Vec<u8>, Value)>,
    status_asked: usize,
    /// The next chunk fails with a 500 (TikTok's upload service hiccups).
    fail_next_chunk: bool,
}

struct TikTokStandIn {
    server: MockServer,
    state: Arc<Mutex<TikTokState>>,
}

fn tiktok_ok(data: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({"data": data, "error": {"code": "ok", "message": ""}}))
}

impl TikTokStandIn {
    async fn start() -> Self {
        let server = MockServer::start().await;
        let state: Arc<Mutex<TikTokState>> = Arc::default();
        let shared = state.clone();
        Mock::given(method("GET"))
            .and(path("/v2/auth/authorize/"))
            .respond_with(move |request: &Request| {
                let query = query_of(request);
                assert_eq!(
                    query["client_key"], "tiktok-key",
                    "TikTok names the client `client_key`"
                );
                assert_eq!(query["scope"], "user.info.basic,video.publish");
                grant(&mut shared.lock().unwrap().codes, "tt-code".into(), request)
            })
            .mount(&server)
            .await;
        let shared = state.clone();
        Mock::given(method("POST"))
            .and(path("/v2/oauth/token/"))
            .respond_with(move |request: &Request| {
                let form: HashMap<String, String> =
                    serde_urlencoded::from_bytes(&request.body).unwrap_or_default();
                let granted = redeem(&mut shared.lock().unwrap().codes, &form);
                let valid =
                    form.get("client_key").map(String::as_str) == Some("tiktok-key") && granted;
                if !valid {
                    return ResponseTemplate::new(400)
                        .set_body_json(json!({"error": "invalid_grant"}));
                }
                ResponseTemplate::new(200).set_body_json(json!({
                    "access_token": "act.tiktok", "expires_in": 86_400, "open_id": "open-1",
                    "refresh_token": "rft.tiktok", "refresh_expires_in": 31_536_000,
                    "scope": "user.info.basic,video.publish", "token_type": "Bearer",
                }))
            })
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v2/user/info/"))
            .respond_with(tiktok_ok(
                json!({"user": {"open_id": "open-1", "display_name": "Tik Ace"}}),
            ))
            .mount(&server)
            .await;
        let (shared, base) = (state.clone(), server.uri());
        Mock::given(method("POST"))
            .and(path("/v2/post/publish/video/init/"))
            .respond_with(move |request: &Request| {
                let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
                let mut state = shared.lock().unwrap();
                state.uploads.push((Vec::new(), body));
                let id = state.uploads.len() - 1;
                tiktok_ok(json!({"publish_id": format!("p-{id}"), "upload_url": format!("{base}/upload/{id}")}))
            })
            .mount(&server)
            .await;
        let shared = state.clone();
        Mock::given(method("PUT"))
            .and(path_regex("^/upload/[0-9]+$"))
            .respond_with(move |request: &Request| tiktok_chunk(&shared, request))
            .mount(&server)
            .await;
        let shared = state.clone();
        Mock::given(method("POST"))
            .and(path("/v2/post/publish/status/fetch/"))
            .respond_with(move |_: &Request| {
                let mut state = shared.lock().unwrap();
                state.status_asked += 1;
                let status = if state.status_asked == 1 {
                    "PROCESSING_UPLOAD"
                } else {
                    "PUBLISH_COMPLETE"
                };
                tiktok_ok(json!({"status": status, "publicaly_available_post_id": []}))
            })
            .mount(&server)
            .await;
        Self { server, state }
    }
}

/// One chunk, in order (`Content-Range` must start where the stored bytes end): 206, or 201
/// once the declared size is there.
fn tiktok_chunk(state: &Mutex<TikTokState>, request: &Request) -> ResponseTemplate {
    let id: usize = request
        .url
        .path()
        .rsplit('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let mut state = state.lock().unwrap();
    if std::mem::take(&mut state.fail_next_chunk) {
        return ResponseTemplate::new(500);
    }
    let (stored, init) = &mut state.uploads[id];
    let range = request
        .headers
        .get("content-range")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let start: usize = range
        .trim_start_matches("bytes ")
        .split('-')
        .next()
        .unwrap_or_default()
        .parse()
        .unwrap_or(usize::MAX);
    if start != stored.len() {
        return ResponseTemplate::new(416);
    }
    stored.extend_from_slice(&request.body);
    let size = init["source_info"]["video_size"].as_u64().unwrap_or(0) as usize;
    ResponseTemplate::new(if stored.len() == size { 201 } else { 206 })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiktok_post_is_sent_in_chunks_again_after_a_failure_and_polled_until_published() {
    let tiktok = TikTokStandIn::start().await;
    let base = tiktok.server.uri();
    let settings = [
        ("TIKTOK_CLIENT_ID", "tiktok-key".to_owned()),
        ("TIKTOK_CLIENT_SECRET", "tiktok-secret".into()),
        ("TIKTOK_AUTHORIZE_URL", format!("{base}/v2/auth/authorize/")),
        ("TIKTOK_TOKEN_URL", format!("{base}/v2/oauth/token/")),
        ("TIKTOK_REVOKE_URL", String::new()),
        ("TIKTOK_API_URL", base.clone()),
        ("POST_RETRY_BASE_MS", "200".into()),
        (
            "OAUTH_RESULT_URL",
            "https://app.montage.test/accounts/linked".into(),
        ),
        ("OAUTH_CALLBACK_BASE", "https://api.montage.test".into()),
    ];
    let overrides: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut app = spawn_app_with(&overrides).await;
    let user = app.user().await;
    assert_eq!(link(&app, &user, "tiktok").await.0["status"], "linked");
    app.start_worker().await;
    let fields = [("target_duration", "10"), ("formats", "portrait")];
    let job = create(&app, &user, &[clip(media::portrait_no_audio())], &fields).await;
    assert_eq!(
        app.wait_for_job_end(&user, &job, Duration::from_secs(120))
            .await["status"],
        "SUCCESS"
    );

    tiktok.state.lock().unwrap().fail_next_chunk = true;
    let body = json!({"platform": "tiktok", "job_id": job, "caption": "1v4 #clutch"});
    let queued = post(&app, &user, body).await;
    assert_eq!(queued.status(), 202);
    let queued = queued.json::<Value>().await.unwrap()["data"].clone();
    assert_eq!(queued["format"], "portrait", "the job's only output");
    let published = post_end(&app, &user, queued["post_id"].as_str().unwrap()).await;
    assert_eq!(published["status"], "PUBLISHED", "{published}");
    assert_eq!(
        published["post_url"],
        "https://www.tiktok.com/tiktokstudio/content"
    );
    assert_eq!(
        published["attempts"], 2,
        "the failed upload, then the one that went through"
    );

    let montage = montage(&app, &user, &job, "portrait").await;
    let state = std::mem::take(&mut *tiktok.state.lock().unwrap());
    assert_eq!(
        state.uploads.len(),
        2,
        "the broken upload was started again"
    );
    let (sent, init) = &state.uploads[1];
    assert!(*sent == montage, "TikTok holds exactly the montage");
    assert_eq!(init["source_info"]["video_size"], montage.len());
    assert_eq!(init["post_info"]["privacy_level"], "SELF_ONLY");
    assert!(state.status_asked >= 2, "polled until published");
}

/// A post YouTube refused says so in words (its JSON goes to the log); posting the same
/// montage again tries again; unlinking the account keeps the post, its account and URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_post_is_tried_again_and_posts_outlive_their_link() {
    let (mut app, google) = spawn_with_google(&[]).await;
    let user = app.user().await;
    let linked = link(&app, &user, "youtube").await.0;
    assert_eq!(linked["status"], "linked");
    app.start_worker().await;
    let fields = [("target_duration", "10")];
    let job = create(&app, &user, &[clip(media::portrait_no_audio())], &fields).await;
    let ended = app
        .wait_for_job_end(&user, &job, Duration::from_secs(120))
        .await;
    assert_eq!(ended["status"], "SUCCESS");

    google.state.lock().unwrap().refuse_uploads = true;
    let body = json!({"platform": "youtube", "job_id": job, "caption": "clutch"});
    let queued = post(&app, &user, body.clone()).await;
    assert_eq!(queued.status(), 202);
    let post_id = queued.json::<Value>().await.unwrap()["data"]["post_id"].clone();
    let post_id = post_id.as_str().unwrap().to_owned();
    let failed = post_end(&app, &user, &post_id).await;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(error.starts_with("YouTube refused the video"), "{error}");
    assert!(
        !error.contains('{') && !error.contains("uploadLimitExceeded"),
        "words: {error}"
    );

    google.state.lock().unwrap().refuse_uploads = false;
    let again = post(&app, &user, body).await;
    assert_eq!(again.status(), 202, "a failed post is tried again");
    let again = again.json::<Value>().await.unwrap()["data"].clone();
    assert_eq!(again["status"], "PENDING", "{again}");
    let published = post_end(&app, &user, &post_id).await;
    assert_eq!(published["status"], "PUBLISHED", "{published}");

    let unlink = format!("/api/v2/accounts/links/{}", linked["link_id"]);
    let unlinked = app
        .client
        .delete(app.url(&unlink))
        .bearer_auth(&user.access_token);
    assert_eq!(unlinked.send().await.unwrap().status(), 204);
    let kept = app.user_json("/api/v2/social/posts", &user).await["data"].clone();
    assert_eq!(kept["total"], 1, "{kept}");
    let kept = &kept["posts"][0];
    assert_eq!(kept["platform"], "youtube");
    assert_eq!(kept["account_name"], "Ace Clips");
    assert_eq!(kept["post_url"], published["post_url"]);
}
