//! Floods and abuse: rate limits shared through Redis, login throttling, the bounded hashing
//! pool, webhook spam, stalled bodies, WebSocket caps and expiry, refresh-token races.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::{protocol::frame::coding::CloseCode, Message};

use crate::{
    helpers::{assert_error, eventually, spawn_app_with, TestApp},
    processes::{PrivateServer, ServerKind},
};

fn header(response: &reqwest::Response, name: &str) -> Option<i64> {
    response.headers().get(name)?.to_str().ok()?.parse().ok()
}

async fn styles(app: &TestApp) -> reqwest::Response {
    app.client
        .get(app.url("/api/v2/styles"))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_limit_with_headers_and_reset_after_the_window() {
    let namespace = format!("limits-{}", uuid::Uuid::new_v4().simple());
    let settings = [
        ("QUEUE_NAME", namespace.as_str()),
        ("RATE_LIMIT_GENERAL", "4"),
        ("RATE_LIMIT_WINDOW_SECS", "3"),
    ];
    let first = spawn_app_with(&settings).await;
    let second = spawn_app_with(&settings).await;
    let mut remaining = Vec::new();
    for app in [&first, &second, &first, &second] {
        let response = styles(app).await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "x-ratelimit-limit"), Some(4));
        let reset = header(&response, "x-ratelimit-reset").expect("reset header");
        assert!(
            reset >= chrono::Utc::now().timestamp(),
            "reset is in the future"
        );
        remaining.push(header(&response, "x-ratelimit-remaining").unwrap());
    }
    assert_eq!(remaining, [3, 2, 1, 0], "one count across both instances");
    let refused = styles(&second).await;
    let retry_after = header(&refused, "retry-after").expect("Retry-After");
    assert!((1..=3).contains(&retry_after), "{retry_after}");
    assert_eq!(header(&refused, "x-ratelimit-remaining"), Some(0));
    let body = assert_error(refused, 429, "RATE_LIMIT_EXCEEDED").await;
    assert_eq!(body["error"]["data"]["limit"], 4);
    // Health probes are never limited.
    let health = first.client.get(first.url("/health")).send().await.unwrap();
    assert_ne!(health.status(), 429);
    eventually(Duration::from_secs(6), "the window to reset", || async {
        (styles(&first).await.status() == 200).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_and_uploads_have_their_own_tighter_classes() {
    let app = spawn_app_with(&[("RATE_LIMIT_AUTH", "3"), ("RATE_LIMIT_UPLOAD", "1")]).await;
    for _ in 0..3 {
        let response = app.login("nobody@example.com", "WrongPassword123").await;
        assert_eq!(response.status(), 401);
    }
    let refused = app.login("nobody@example.com", "WrongPassword123").await;
    assert_error(refused, 429, "RATE_LIMIT_EXCEEDED").await;
    // Other classes are untouched by the auth class.
    assert_eq!(styles(&app).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_pass_without_limits_while_redis_is_down() {
    let mut redis = PrivateServer::start(ServerKind::Redis).await;
    let url = redis.url();
    let app = spawn_app_with(&[("REDIS_URL", &url), ("RATE_LIMIT_GENERAL", "2")]).await;
    let limited = styles(&app).await;
    assert_eq!(header(&limited, "x-ratelimit-limit"), Some(2));
    redis.stop();
    for _ in 0..5 {
        let response = styles(&app).await;
        assert_eq!(response.status(), 200, "fail open");
        assert!(response.headers().get("x-ratelimit-limit").is_none());
    }
    redis.resume().await;
}

/// Logs in from `address` (the test app trusts `X-Forwarded-For`).
async fn login_from(
    app: &TestApp,
    address: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    app.client
        .post(app.url("/api/auth/login"))
        .header("x-forwarded-for", format!("203.0.113.9, {address}"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_earn_growing_delays_for_that_address_only() {
    let app = spawn_app_with(&[
        ("TRUSTED_PROXY_HEADER", "X-Forwarded-For"),
        ("LOGIN_DELAY_BASE_SECS", "2"),
    ])
    .await;
    let user = app.user().await;
    let attacker = "198.51.100.7";
    for _ in 0..5 {
        let response = login_from(&app, attacker, &user.email, "WrongPassword123").await;
        assert_eq!(response.status(), 401);
    }
    // Even the right password waits out the delay from that address...
    let refused = login_from(&app, attacker, &user.email, &user.password).await;
    let retry_after = header(&refused, "retry-after").expect("Retry-After");
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_error(refused, 429, "RATE_LIMIT_EXCEEDED").await;
    // ...while the owner, elsewhere, is not locked out.
    let owner = login_from(&app, "192.0.2.1", &user.email, &user.password).await;
    assert_eq!(owner.status(), 200);
    // The delay passes; the next failure doubles it.
    eventually(Duration::from_secs(5), "the delay to pass", || async {
        let response = login_from(&app, attacker, &user.email, "WrongPassword123").await;
        (response.status() == 401).then_some(())
    })
    .await;
    let doubled = login_from(&app, attacker, &user.email, &user.password).await;
    let retry_after = header(&doubled, "retry-after").expect("Retry-After");
    assert!((3..=4).contains(&retry_after), "{retry_after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_is_answered_quickly_with_503_beyond_the_hashing_pool() {
    let app = spawn_app_with(&[
        ("HASH_CONCURRENCY", "1"),
        ("HASH_QUEUE", "2"),
        ("HASH_WAIT_MS", "300"),
    ])
    .await;
    let started = Instant::now();
    let attempts = (0..24).map(|i| {
        let (client, url) = (app.client.clone(), app.url("/api/auth/login"));
        async move {
            let response = client
                .post(url)
                .json(&json!({ "email": format!("flood{i}@example.com"), "password": "WrongPassword123" }))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (status, body)
        }
    });
    let answers = futures::future::join_all(attempts).await;
    let busy = answers.iter().filter(|(status, _)| *status == 503).count();
    assert!(busy > 0, "the pool refused some: {answers:?}");
    for (status, body) in &answers {
        assert!([401, 503].contains(status), "{status} {body}");
        if *status == 503 {
            assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE");
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "refusals are quick: {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_spam_is_refused_before_any_work() {
    let app = spawn_app_with(&[("WEBHOOK_MAX_KIB", "8")]).await;
    let post = |body: Vec<u8>, signature: String| {
        app.client
            .post(app.url("/api/v2/billing/webhook"))
            .header("content-type", "application/json")
            .header("stripe-signature", signature)
            .body(body)
            .send()
    };
    let now = chrono::Utc::now().timestamp();
    let many = (0..6)
        .map(|_| format!("v1={}", "ab".repeat(32)))
        .collect::<Vec<_>>()
        .join(",");
    let response = post(b"{}".to_vec(), format!("t={now},{many}"))
        .await
        .unwrap();
    let body = assert_error(response, 400, "INVALID_SIGNATURE").await;
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("too many"));
    let huge = vec![b' '; 64 * 1024];
    let response = post(huge, format!("t={now},v1=00")).await.unwrap();
    assert_error(response, 413, "PAYLOAD_TOO_LARGE").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_request_body_is_dropped() {
    let app = spawn_app_with(&[("HTTP_BODY_IDLE_SECS", "1")]).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    stream
        .write_all(
            b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 1000\r\n\r\n{\"email\":",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server let a stalled body hang");
    assert!(started.elapsed() < Duration::from_secs(5));
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 4"), "{text}");
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn socket(app: &TestApp, token: &str) -> Result<Socket, u16> {
    let url = format!(
        "{}/ws?token={token}",
        app.address.replace("http://", "ws://")
    );
    match tokio_tungstenite::connect_async(url).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(other) => panic!("{other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_are_capped_per_user_and_close_when_the_token_expires() {
    let app = spawn_app_with(&[("WS_MAX_PER_USER", "2"), ("ACCESS_TOKEN_TTL_SECS", "3")]).await;
    let user = app.user().await;
    let other = app.user().await;
    let mut first = socket(&app, &user.access_token).await.unwrap();
    let _second = socket(&app, &user.access_token).await.unwrap();
    assert_eq!(socket(&app, &user.access_token).await.err(), Some(429));
    // Another account is not affected by this one's flood.
    let _others = socket(&app, &other.access_token).await.unwrap();
    // The session ends with its token.
    assert_eq!(
        close_code(&mut first, Duration::from_secs(10)).await,
        Some(CloseCode::from(4001))
    );
}

/// The close code the server sends next, answering its pings meanwhile.
async fn close_code(socket: &mut Socket, within: Duration) -> Option<CloseCode> {
    tokio::time::timeout(within, async {
        while let Some(message) = socket.next().await {
            match message {
                Ok(Message::Close(Some(frame))) => return Some(frame.code),
                Ok(Message::Ping(bytes)) => {
                    let _ = socket.send(Message::Pong(bytes)).await;
                }
                _ => {}
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_out_closes_the_sessions_websockets_and_no_others() {
    let app = spawn_app_with(&[]).await;
    let user = app.user().await;
    let elsewhere: Value = app
        .login(&user.email, &user.password)
        .await
        .json()
        .await
        .unwrap();
    let mut mine = socket(&app, &user.access_token).await.unwrap();
    let mut other = socket(&app, elsewhere["access_token"].as_str().unwrap())
        .await
        .unwrap();
    let logout = app.with_refresh_token("logout", &user.refresh_token).await;
    assert_eq!(logout.status(), 204);
    assert_eq!(
        close_code(&mut mine, Duration::from_secs(5)).await,
        Some(CloseCode::from(4002))
    );
    // The other login's socket had the same chance and stays open.
    assert_eq!(
        close_code(&mut other, Duration::from_millis(500)).await,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_refresh_race_ends_the_whole_session() {
    let app = spawn_app_with(&[]).await;
    let user = app.user().await;
    let (a, b) = tokio::join!(
        app.with_refresh_token("refresh", &user.refresh_token),
        app.with_refresh_token("refresh", &user.refresh_token)
    );
    let statuses = [a.status().as_u16(), b.status().as_u16()];
    assert!(
        statuses.contains(&401),
        "one of the two loses: {statuses:?}"
    );
    let winner = if a.status() == 200 {
        Some(a)
    } else if b.status() == 200 {
        Some(b)
    } else {
        None
    };
    if let Some(winner) = winner {
        let pair: Value = winner.json().await.unwrap();
        let reused = app
            .with_refresh_token("refresh", pair["refresh_token"].as_str().unwrap())
            .await;
        assert_error(reused, 401, "AUTHENTICATION_REQUIRED").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_at_their_maximum_age_however_often_refreshed() {
    let app = spawn_app_with(&[("SESSION_MAX_AGE_SECS", "2")]).await;
    let logged_in = tokio::time::Instant::now();
    let user = app.user().await;
    let refreshed = app.with_refresh_token("refresh", &user.refresh_token).await;
    assert_eq!(refreshed.status(), 200, "young sessions refresh");
    let token = refreshed.json::<Value>().await.unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // The property is about the clock: wait until the session is older than its limit.
    tokio::time::sleep_until(logged_in + Duration::from_millis(3100)).await;
    let ended = app.with_refresh_token("refresh", &token).await;
    let body = assert_error(ended, 401, "AUTHENTICATION_REQUIRED").await;
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("maximum age"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_carries_the_security_headers() {
    let app = spawn_app_with(&[]).await;
    for path in [
        "/health",
        "/api/v2/styles",
        "/no-such-route",
        "/openapi.json",
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(headers["cache-control"], "no-store", "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_to_internal_addresses_are_refused_in_every_spelling() {
    let app = spawn_app_with(&[("CALLBACK_ALLOW_PRIVATE", "false")]).await;
    let user = app.user().await;
    let clip = crate::control::clip(testkit::media::portrait_no_audio());
    for url in [
        "http://127.0.0.1:9/hook",
        "http://127.1/",
        "http://0x7f.0.0.1/",
        "http://2130706433/",
        "http://017700000001/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
        "http://224.0.0.1/",
        "http://localhost:9/hook",
    ] {
        let response = app
            .create_job(&user, std::slice::from_ref(&clip), &[("callback_url", url)])
            .await;
        let body = assert_error(response, 422, "VALIDATION_ERROR").await;
        assert_eq!(
            body["error"]["data"]["field"], "callback_url",
            "{url}: {body}"
        );
    }
    let jobs = app.user_json("/api/v2/jobs", &user).await;
    assert_eq!(jobs["data"]["total"], 0, "nothing stored: {jobs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_websocket_is_not_taken_for_a_stalled_body() {
    let app = spawn_app_with(&[("HTTP_BODY_IDLE_SECS", "1")]).await;
    let user = app.user().await;
    let mut quiet = socket(&app, &user.access_token).await.unwrap();
    // Well past the body idle timeout, the session is still there...
    assert_eq!(
        close_code(&mut quiet, Duration::from_millis(2500)).await,
        None
    );
    // ...and answers.
    quiet
        .send(Message::Ping(b"still here".to_vec().into()))
        .await
        .unwrap();
    let pong = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(message)) = quiet.next().await {
            if let Message::Pong(bytes) = message {
                return Some(bytes);
            }
        }
        None
    })
    .await
    .expect("answered in time");
    assert_eq!(pong.as_deref(), Some(&b"still here"[..]));
}
