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
use crate::linking::{link, query_of, s256};
use testkit::media;

/// What the Google stand-in remembers.
#[derive(Default)]
struct GoogleState {
    /// Code -> (PKCE challenge, channel id).
    codes: HashMap<String, (String, String)>,
    /// Access token -> channel id.
    tokens: HashMap<String, String>,
    /// Upload sessions: the bytes stored so far, and the metadata they were opened with.
    sessions: Vec<(Vec<u8>, Value)>,
    /// The next data request stores half of what it carries, then fails (a dropped link).
    fail_next_chunk: bool,
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
                let query = query_of(request);
                let mut state = shared.lock().unwrap();
                state.issued += 1;
                let code = format!("g-code-{}", state.issued);
                state.codes.insert(
                    code.clone(),
                    (query["code_challenge"].clone(), "UC-channel-1".into()),
                );
                let back = format!(
                    "{}?code={code}&state={}",
                    query["redirect_uri"], query["state"]
                );
                ResponseTemplate::new(302).insert_header("location", back.as_str())
            })
            .mount(&server)
            .await;
        let shared = state.clone();
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(move |request: &Request| {
                let form: HashMap<String, String> = serde_urlencoded::from_bytes(&request.body).unwrap_or_default();
                let mut state = shared.lock().unwrap();
                let issued = state.codes.remove(form.get("code").map(String::as_str).unwrap_or_default());
                let verifier = form.get("code_verifier").cloned().unwrap_or_default();
                match issued.filter(|(challenge, _)| *challenge == s256(&verifier)) {
                    Some((_, channel)) => {
                        state.tokens.insert("ya29.test".into(), channel);
                        ResponseTemplate::new(200).set_body_json(json!({
                            "access_token": "ya29.test", "expires_in": 3599, "refresh_token": "1//refresh",
                            "scope": "https://www.googleapis.com/auth/youtube.upload", "token_type": "Bearer",
                        }))
                    }
                    None => ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant"})),
                }
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

async fn post(app: &TestApp, user: &TestUser, body: Value) -> reqwest::Response {
    let request = app.client.post(app.url("/api/v2/social/posts"));
    request
        .bearer_auth(&user.access_token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_youtube_post_resumes_after_a_failure_mid_upload_and_publishes() {
    let google = GoogleStandIn::start().await;
    let mut settings = google.settings();
    settings.push(("POST_RETRY_BASE_MS", "200".into()));
    settings.push(("FREE_POSTS_PER_DAY", "1".into()));
    settings.push((
        "OAUTH_RESULT_URL",
        "https://app.montage.test/accounts/linked".into(),
    ));
    settings.push(("OAUTH_CALLBACK_BASE", "https://api.montage.test".into()));
    let overrides: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut app = spawn_app_with(&overrides).await;
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

    let path = format!(
        "/api/v2/social/posts/{}",
        queued["post_id"].as_str().unwrap()
    );
    let published = eventually(Duration::from_secs(60), "the post's end", || async {
        let post = app.user_json(&path, &user).await["data"].clone();
        ["PUBLISHED", "FAILED"]
            .contains(&post["status"].as_str().unwrap_or_default())
            .then_some(post)
    })
    .await;
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
    let download = app
        .get(&format!("/api/v2/jobs/{job}/download"), &user)
        .send()
        .await
        .unwrap();
    let location = download.headers()["location"].to_str().unwrap().to_owned();
    let montage = reqwest::get(location).await.unwrap().bytes().await.unwrap();
    let sessions = std::mem::take(&mut google.state.lock().unwrap().sessions);
    assert_eq!(sessions.len(), 1, "resumed, not started again");
    assert!(
        sessions[0].0 == montage.as_ref(),
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
}
