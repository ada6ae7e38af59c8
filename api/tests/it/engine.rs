//! The job engine under faults, against real processes: workers killed or stopped mid-render,
//! Redis and S3 going away, the per-user cap, and live events over WebSocket.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use wiremock::{matchers::method, Mock, MockServer, Request, ResponseTemplate};

use crate::{
    control::{clip, create, create_small, job, post},
    helpers::{assert_error, eventually, spawn_app_with, TestApp, TestUser},
    processes::{spawn_worker, PrivateServer, ServerKind},
};
use testkit::media;

/// Settings that make recovery quick enough to test: a 3 s lease, 1 s heartbeats.
const FAST_RECOVERY: [(&str, &str); 4] = [
    ("JOB_LEASE_SECS", "3"),
    ("RECONCILE_SECS", "1"),
    ("REQUEUE_AFTER_SECS", "2"),
    ("RETRY_BASE_SECS", "1"),
];

fn with_fast_recovery<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    FAST_RECOVERY.iter().chain(extra).copied().collect()
}

/// A job that renders for several seconds.
async fn create_long_job(app: &TestApp, user: &TestUser) -> String {
    let files = [
        clip(media::quiet_clip_with_burst()),
        clip(media::h264_1080p60()),
    ];
    create(app, user, &files, &[("target_duration", "20")]).await
}

async fn wait_for(
    app: &TestApp,
    user: &TestUser,
    job_id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let view = job(app, user, job_id).await;
        if done(&view) {
            return view;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {view}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn rendering(view: &Value) -> bool {
    view["stage"] == "rendering" && view["progress"]["percent"].as_u64() > Some(12)
}

/// Exactly one output and one poster per format, at their deterministic keys.
async fn assert_one_set_of_outputs(app: &TestApp, job_id: &str) {
    let mut keys = app
        .storage
        .keys_under(&format!("jobs/{job_id}/outputs/"))
        .await
        .unwrap();
    keys.sort();
    assert_eq!(
        keys,
        [
            format!("jobs/{job_id}/outputs/landscape.jpg"),
            format!("jobs/{job_id}/outputs/landscape.mp4")
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_render_has_its_job_finished_by_another_once() {
    let app = spawn_app_with(&with_fast_recovery(&[])).await;
    let user = app.user().await;
    let mut doomed = spawn_worker(&app.settings);
    let job_id = create_long_job(&app, &user).await;
    wait_for(&app, &user, &job_id, "rendering", rendering).await;

    doomed.sigkill();
    let killed_at = chrono::Utc::now();
    let _rescuer = spawn_worker(&app.settings);
    let view = app
        .wait_for_job_end(&user, &job_id, Duration::from_secs(120))
        .await;

    assert_eq!(view["status"], "SUCCESS", "{view}");
    assert_eq!(
        view["attempts"], 2,
        "one attempt killed, one finished: {view}"
    );
    let restarted: chrono::DateTime<chrono::Utc> =
        view["started_at"].as_str().unwrap().parse().unwrap();
    let recovery = (restarted - killed_at).to_std().unwrap();
    assert!(
        recovery < Duration::from_secs(20),
        "resumed {recovery:?} after the kill"
    );
    assert_eq!(view["outputs"].as_array().unwrap().len(), 1, "{view}");
    assert_one_set_of_outputs(&app, &job_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hands_a_running_job_back_after_the_grace_period() {
    // A slower preset keeps the render going well past the 1 s grace on a fast machine:
    // with ultrafast, the whole render took 2 s and could end inside the grace.
    let slow_render = [
        ("WORKER_SHUTDOWN_GRACE_SECS", "1"),
        ("X264_PRESET", "medium"),
    ];
    let mut app = spawn_app_with(&with_fast_recovery(&slow_render)).await;
    let user = app.user().await;
    let mut stopping = spawn_worker(&app.settings);
    let job_id = create_long_job(&app, &user).await;
    wait_for(&app, &user, &job_id, "rendering", rendering).await;

    stopping.sigterm();
    let exit = stopping.exit_within(Duration::from_secs(15)).await;
    assert!(
        exit.is_some_and(|s| s.success()),
        "worker exits cleanly: {exit:?}"
    );
    let view = job(&app, &user, &job_id).await;
    assert_eq!(view["status"], "PENDING", "handed back: {view}");
    assert_eq!(
        view["attempts"], 0,
        "a hand-back is not a failed attempt: {view}"
    );

    app.start_worker().await;
    let view = app
        .wait_for_job_end(&user, &job_id, Duration::from_secs(120))
        .await;
    assert_eq!(view["status"], "SUCCESS", "{view}");
    assert_eq!(view["attempts"], 1, "{view}");
    assert_one_set_of_outputs(&app, &job_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_created_while_redis_is_down_are_queued_when_it_returns() {
    let mut redis = PrivateServer::start(ServerKind::Redis).await;
    let url = redis.url();
    let mut app = spawn_app_with(&with_fast_recovery(&[("REDIS_URL", &url)])).await;
    let user = app.user().await;
    let small = || clip(media::portrait_no_audio());
    let fields = [("target_duration", "10")];
    // Queued before the outage, then lost with Redis's memory.
    let before = create(&app, &user, &[small()], &fields).await;
    app.wait_until_queued(&before).await;

    redis.stop();
    let mut during = Vec::new();
    for _ in 0..3 {
        let response = app.create_job(&user, &[small()], &fields).await;
        assert_eq!(response.status(), 201, "accepted while Redis is down");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["data"]["status"], "PENDING");
        during.push(body["data"]["job_id"].as_str().unwrap().to_owned());
    }
    // The outage lasts a while: the relay keeps trying meanwhile.
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.resume().await;

    app.start_worker().await;
    for job_id in std::iter::once(&before).chain(&during) {
        let view = app
            .wait_for_job_end(&user, job_id, Duration::from_secs(120))
            .await;
        assert_eq!(view["status"], "SUCCESS", "{view}");
        assert_eq!(view["attempts"], 1, "{view}");
    }
}

/// Redis going away under a running worker: the job it is rendering finishes, and once
/// Redis is back the same process takes new jobs (it used to exit at its first failed poll).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_rides_out_a_redis_outage_without_dropping_its_job() {
    let mut redis = PrivateServer::start(ServerKind::Redis).await;
    let url = redis.url();
    let app = spawn_app_with(&with_fast_recovery(&[
        ("REDIS_URL", &url),
        ("WORKER_POLL_MS", "100"),
    ]))
    .await;
    let user = app.user().await;
    let mut worker = spawn_worker(&app.settings);
    let running = create_long_job(&app, &user).await;
    wait_for(&app, &user, &running, "rendering", rendering).await;

    redis.stop();
    // apalis gives up at the first failed poll. A second failure means the process went
    // on to take jobs again, instead of going with it.
    assert!(
        worker
            .logged_within("the queue failed", 2, Duration::from_secs(30))
            .await,
        "the worker did not try the queue again after it failed"
    );
    assert!(worker.is_running(), "the worker outlives the outage");
    redis.resume().await;
    let later = create_small(&app, &user).await;
    for job_id in [&running, &later] {
        let view = app
            .wait_for_job_end(&user, job_id, Duration::from_secs(120))
            .await;
        assert_eq!(view["status"], "SUCCESS", "{view}");
        assert_eq!(view["attempts"], 1, "never handed to another try: {view}");
    }
    assert!(worker.is_running(), "the same worker took the new job");
}

/// A job whose storage goes away just before a worker takes it. The app allows
/// `max_attempts`; the private S3 server is returned to be brought back.
async fn job_during_a_storage_outage(
    max_attempts: &str,
) -> (TestApp, TestUser, String, PrivateServer) {
    let mut s3 = PrivateServer::start(ServerKind::S3).await;
    let endpoint = s3.url();
    let mut app = spawn_app_with(&with_fast_recovery(&[
        ("S3_ENDPOINT", &endpoint),
        ("JOB_MAX_ATTEMPTS", max_attempts),
    ]))
    .await;
    let user = app.user().await;
    let job_id = create_small(&app, &user).await;
    s3.stop();
    app.start_worker().await;
    (app, user, job_id, s3)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_outages_are_retried_with_backoff_until_they_pass() {
    let (app, user, job_id, mut s3) = job_during_a_storage_outage("6").await;
    let retrying = wait_for(&app, &user, &job_id, "RETRYING", |v| {
        v["status"] == "RETRYING"
    })
    .await;
    assert_eq!(
        retrying["error"]["code"], "INFRASTRUCTURE_ERROR",
        "{retrying}"
    );
    assert!(retrying["attempts"].as_i64() >= Some(1), "{retrying}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    s3.resume().await;

    let view = app
        .wait_for_job_end(&user, &job_id, Duration::from_secs(120))
        .await;
    assert_eq!(view["status"], "SUCCESS", "{view}");
    assert!(view["attempts"].as_i64() >= Some(2), "{view}");
    assert!(view["error"].is_null(), "{view}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clip_gone_from_storage_fails_the_job_at_once_not_as_an_outage() {
    let mut app = spawn_app_with(&with_fast_recovery(&[])).await;
    let user = app.user().await;
    let job_id = create_small(&app, &user).await;
    let inputs = app
        .storage
        .keys_under(&format!("jobs/{job_id}/inputs/"))
        .await
        .unwrap();
    assert_eq!(inputs.len(), 1);
    app.storage.delete(&inputs).await.unwrap();
    app.start_worker().await;
    let view = app
        .wait_for_job_end(&user, &job_id, Duration::from_secs(60))
        .await;
    assert_eq!(view["status"], "FAILED", "{view}");
    assert_eq!(
        view["attempts"], 1,
        "a missing object is not retried: {view}"
    );
    assert_eq!(view["error"]["code"], "INFRASTRUCTURE_ERROR", "{view}");
    let message = view["error"]["message"].as_str().unwrap();
    assert!(message.contains("no longer stored"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_stop_retrying_at_the_attempt_limit() {
    let (app, user, job_id, _s3) = job_during_a_storage_outage("2").await;
    let view = app
        .wait_for_job_end(&user, &job_id, Duration::from_secs(60))
        .await;
    assert_eq!(view["status"], "FAILED", "{view}");
    assert_eq!(view["attempts"], 2, "{view}");
    assert_eq!(view["error"]["code"], "INFRASTRUCTURE_ERROR", "{view}");
}

/// An idle worker starts a job as soon as it is pushed, not on its next poll: with polling
/// and heartbeats (which also make apalis fetch) set to ten minutes, only the push's
/// notification can start the job in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_worker_wakes_when_a_job_is_pushed() {
    let mut app = spawn_app_with(&[
        ("WORKER_POLL_MS", "600000"),
        ("WORKER_HEARTBEAT_SECS", "600"),
    ])
    .await;
    app.start_worker().await;
    // Once the worker shows in /health it has made its first fetch and is waiting.
    eventually(Duration::from_secs(20), "the worker to be up", || async {
        let health = app.public_json("/health").await;
        (health["workers"] == 1).then_some(())
    })
    .await;
    let user = app.user().await;
    let job_id = create_small(&app, &user).await;
    wait_for(&app, &user, &job_id, "the pushed job to start", |v| {
        !v["started_at"].is_null()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_extra_jobs_wait_in_pending_until_a_slot_frees() {
    let mut app = spawn_app_with(&[("FREE_ACTIVE_JOBS", "1"), ("WORKER_CONCURRENCY", "2")]).await;
    let user = app.user().await;
    let fields = [("target_duration", "10")];
    let first = create(&app, &user, &[clip(media::portrait_no_audio())], &fields).await;
    let second = create(&app, &user, &[clip(media::portrait_no_audio())], &fields).await;
    app.start_worker().await;
    wait_for(&app, &user, &first, "first job to start", |v| {
        v["status"] == "PROCESSING"
    })
    .await;
    assert_eq!(
        job(&app, &user, &second).await["status"],
        "PENDING",
        "waits for a slot"
    );

    let first = app
        .wait_for_job_end(&user, &first, Duration::from_secs(90))
        .await;
    let second = app
        .wait_for_job_end(&user, &second, Duration::from_secs(90))
        .await;
    assert_eq!(
        (&first["status"], &second["status"]),
        (&"SUCCESS".into(), &"SUCCESS".into())
    );
    let finished: chrono::DateTime<chrono::Utc> =
        first["finished_at"].as_str().unwrap().parse().unwrap();
    let started: chrono::DateTime<chrono::Utc> =
        second["started_at"].as_str().unwrap().parse().unwrap();
    assert!(
        started >= finished,
        "second started {started} before the first finished {finished}"
    );
}

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn open_socket(app: &TestApp, query: &str) -> Socket {
    let url = format!("{}/ws?{query}", app.address.replace("http://", "ws://"));
    tokio_tungstenite::connect_async(url)
        .await
        .expect("WebSocket opens")
        .0
}

/// Job events received until `job_id` reports `status`; each says it is one.
async fn events_until(socket: &mut Socket, job_id: &str, status: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("the final event arrives in time")
            .expect("socket open")
            .unwrap();
        if let Message::Text(text) = message {
            let event: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(event["type"], "job", "{event}");
            let last = event["job_id"] == job_id && event["status"] == status;
            events.push(event);
            if last {
                return events;
            }
        }
    }
}

/// Waits for the server's session of `socket` to answer a ping: it subscribed to the events
/// before it started reading, so nothing said after this is missed.
async fn session_answers(socket: &mut Socket) {
    socket
        .send(Message::Ping(b"ready".to_vec().into()))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("the session answers in time")
            .expect("socket open")
            .unwrap();
        if matches!(message, Message::Pong(_)) {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_clients_hear_their_own_jobs_progress_and_nothing_else() {
    let mut app = spawn_app_with(&[]).await;
    let (alice, bob) = (app.user().await, app.user().await);
    let mut alice_socket = open_socket(&app, &format!("token={}", alice.access_token)).await;
    let ticket = post(&app, &bob, "/api/v2/ws/ticket").send().await.unwrap();
    assert_eq!(ticket.status(), 200);
    let ticket = ticket.json::<Value>().await.unwrap()["data"]["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut bob_socket = open_socket(&app, &format!("ticket={ticket}")).await;
    for socket in [&mut alice_socket, &mut bob_socket] {
        session_answers(socket).await;
    }

    app.start_worker().await;
    let fields = [("target_duration", "10")];
    let bobs_job = create(&app, &bob, &[clip(media::portrait_no_audio())], &fields).await;
    let alices_job = create(&app, &alice, &[clip(media::portrait_no_audio())], &fields).await;

    let heard = events_until(&mut alice_socket, &alices_job, "SUCCESS").await;
    assert!(
        heard.iter().all(|e| e["job_id"] == alices_job.as_str()),
        "only Alice's job: {heard:?}"
    );
    let stages: Vec<&str> = heard.iter().filter_map(|e| e["stage"].as_str()).collect();
    for stage in ["downloading", "rendering", "done"] {
        assert!(stages.contains(&stage), "{stage} missing from {stages:?}");
    }
    // Progress within a stage (kept in Redis, not the row) is told with its own stage.
    let rendering_from = stages.iter().position(|s| *s == "rendering").unwrap();
    assert!(
        stages[rendering_from..]
            .iter()
            .all(|s| ["rendering", "uploading", "done"].contains(s)),
        "stages only go forward: {stages:?}"
    );
    let percents: Vec<u64> = heard.iter().filter_map(|e| e["percent"].as_u64()).collect();
    assert!(
        percents.windows(2).all(|w| w[0] <= w[1]) && percents.last() == Some(&100),
        "{percents:?}"
    );
    assert!(heard.iter().all(|e| e["ts"].is_string()));

    let heard = events_until(&mut bob_socket, &bobs_job, "SUCCESS").await;
    assert!(
        heard.iter().all(|e| e["job_id"] == bobs_job.as_str()),
        "only Bob's job: {heard:?}"
    );

    // Keep-alive: a ping is answered with a pong.
    alice_socket
        .send(Message::Ping(b"hi".to_vec().into()))
        .await
        .unwrap();
    loop {
        match alice_socket.next().await.unwrap().unwrap() {
            Message::Pong(payload) => break assert_eq!(&payload[..], b"hi"),
            Message::Text(_) | Message::Ping(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_handshakes_without_valid_credentials_are_refused() {
    let app = spawn_app_with(&[]).await;
    let user = app.user().await;
    let handshake = |query: String| {
        app.client
            .get(app.url(&format!("/ws{query}")))
            .header("Connection", "Upgrade")
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
            .send()
    };
    assert_error(
        handshake(String::new()).await.unwrap(),
        401,
        "AUTHENTICATION_REQUIRED",
    )
    .await;
    assert_error(
        handshake("?token=forged".into()).await.unwrap(),
        401,
        "AUTHENTICATION_REQUIRED",
    )
    .await;
    assert_error(
        handshake("?ticket=unknown".into()).await.unwrap(),
        401,
        "AUTHENTICATION_REQUIRED",
    )
    .await;

    let ticket = post(&app, &user, "/api/v2/ws/ticket").send().await.unwrap();
    let ticket = ticket.json::<Value>().await.unwrap()["data"]["ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    let first = handshake(format!("?ticket={ticket}")).await.unwrap();
    assert_eq!(first.status(), 101);
    let reused = handshake(format!("?ticket={ticket}")).await.unwrap();
    assert_error(reused, 401, "AUTHENTICATION_REQUIRED").await;

    let not_upgrade = app
        .get(&format!("/ws?token={}", user.access_token), &user)
        .send()
        .await
        .unwrap();
    assert_error(not_upgrade, 400, "VALIDATION_ERROR").await;
    let unauthenticated_ticket = app
        .client
        .post(app.url("/api/v2/ws/ticket"))
        .send()
        .await
        .unwrap();
    assert_error(unauthenticated_ticket, 401, "AUTHENTICATION_REQUIRED").await;
}

/// A callback receiver (a `wiremock` server) that answers the given statuses in turn, the
/// last one from then on.
async fn callback_receiver(statuses: &[u16]) -> (MockServer, String) {
    let server = MockServer::start().await;
    let (last, first) = statuses.split_last().expect("at least one status");
    for status in first {
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(*status))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(*last))
        .with_priority(2)
        .mount(&server)
        .await;
    let url = format!("{}/hooks/montage?src=test", server.uri());
    (server, url)
}

async fn received(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_callback_reaches_the_callback_url_with_retries() {
    const SECRET: &str = "callback-secret-for-tests";
    let (receiver, url) = callback_receiver(&[500, 200]).await;
    let mut app = spawn_app_with(&[
        ("CALLBACK_SIGNING_SECRET", SECRET),
        ("CALLBACK_RETRY_BASE_SECS", "1"),
        ("CALLBACK_POLL_MS", "200"),
    ])
    .await;
    let user = app.user().await;
    for bad in [
        "not a url",
        "ftp://example.com/x",
        "http://user:pw@example.com/",
    ] {
        let response = app
            .create_job(
                &user,
                &[clip(media::portrait_no_audio())],
                &[("callback_url", bad)],
            )
            .await;
        let body = assert_error(response, 422, "VALIDATION_ERROR").await;
        assert_eq!(body["error"]["data"]["field"], "callback_url", "{body}");
    }
    let job_id = create(
        &app,
        &user,
        &[clip(media::portrait_no_audio())],
        &[("target_duration", "10"), ("callback_url", &url)],
    )
    .await;
    app.start_worker().await;
    let view = app
        .wait_for_job_end(&user, &job_id, Duration::from_secs(90))
        .await;
    assert_eq!(view["status"], "SUCCESS", "{view}");

    eventually(Duration::from_secs(30), "the callback retried", || async {
        (received(&receiver).await.len() >= 2).then_some(())
    })
    .await;
    // A later job's callback arriving proves the sender had its chance to send the first
    // job's again.
    let later = create(
        &app,
        &user,
        &[clip(media::portrait_no_audio())],
        &[("target_duration", "10"), ("callback_url", &url)],
    )
    .await;
    post(&app, &user, &format!("/api/v2/jobs/{later}/cancel"))
        .send()
        .await
        .unwrap();
    let delivered_to = |received: &[Request], job: &str| {
        received
            .iter()
            .filter(|request| {
                request
                    .headers
                    .get("montage-delivery")
                    .is_some_and(|id| id == job)
            })
            .count()
    };
    eventually(
        Duration::from_secs(30),
        "the later job's callback",
        || async { (delivered_to(&received(&receiver).await, &later) == 1).then_some(()) },
    )
    .await;
    let received = received(&receiver).await;
    assert_eq!(
        delivered_to(&received, &job_id),
        2,
        "delivered once after one failure, then left alone"
    );
    let (headers, body) = (&received[1].headers, &received[1].body);
    assert_eq!(received[0].body, *body, "a retry sends the same body");
    let header = headers.get("montage-signature").unwrap().to_str().unwrap();
    let (timestamp, signature) = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
        .expect("t=…,v1=… header");
    let mut mac =
        <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    hmac::Mac::update(&mut mac, format!("{timestamp}.").as_bytes());
    hmac::Mac::update(&mut mac, body);
    assert_eq!(
        hex::encode(hmac::Mac::finalize(mac).into_bytes()),
        signature
    );
    assert_eq!(
        headers.get("montage-delivery").unwrap().to_str().unwrap(),
        job_id
    );

    let event: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(event["event"], "job.ended");
    assert_eq!(event["job_id"], job_id.as_str());
    assert_eq!(event["status"], "SUCCESS");
    assert!(event["error"].is_null());
    assert_eq!(
        event["outputs"][0]["download_url"],
        format!("/api/v2/jobs/{job_id}/download?format=landscape")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_under_load_answers_503_never_500_and_recovers() {
    let postgres = crate::processes::PrivatePostgres::start().await;
    let url = postgres.url("montage");
    let app = spawn_app_with(&[("DATABASE_URL", &url)]).await;
    let user = app.user().await;
    let job_id = create(&app, &user, &[clip(media::portrait_no_audio())], &[]).await;

    let app = std::sync::Arc::new(app);
    let user = std::sync::Arc::new(user);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for client in 0..4 {
        let (app, user, stop, job_id) = (app.clone(), user.clone(), stop.clone(), job_id.clone());
        load.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let path = match client % 3 {
                    0 => "/api/v2/jobs".to_owned(),
                    1 => format!("/api/v2/jobs/{job_id}"),
                    _ => "/api/v2/billing/subscription".to_owned(),
                };
                let response = app.get(&path, &user).send().await.unwrap();
                let status = response.status().as_u16();
                if status != 200 {
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    assert_eq!(body["success"], false, "errors keep the envelope: {body}");
                    assert_eq!(
                        body["error"]["code"], "SERVICE_UNAVAILABLE",
                        "{status}: {body}"
                    );
                }
                statuses.push(status);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            statuses
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    postgres.stop();
    tokio::time::sleep(Duration::from_secs(3)).await;
    postgres.resume();
    // Recovery: the pool reconnects on its own.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let response = app.get("/api/v2/jobs", &user).send().await.unwrap();
        if response.status() == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no recovery: {}",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut all = Vec::new();
    for task in load {
        all.extend(task.await.unwrap());
    }
    assert!(
        all.iter().all(|s| *s == 200 || *s == 503),
        "only 200 and 503: {all:?}"
    );
    assert!(all.contains(&503), "the outage was seen");
    assert_eq!(all.last(), Some(&200), "answers again after the restart");
    let view = job(&app, &user, &job_id).await;
    assert_eq!(view["status"], "PENDING", "nothing lost: {view}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_deleted_mid_render_leaves_nothing_stored() {
    let settings = [
        ("X264_PRESET", "medium"),
        ("WORKER_CONCURRENCY", "1"),
        ("QUEUE_PREFETCH", "1"),
        ("QUEUE_VACUUM_SECS", "1"),
    ];
    let mut app = spawn_app_with(&with_fast_recovery(&settings)).await;
    app.start_worker().await;
    let user = app.user().await;
    let job_id = create_long_job(&app, &user).await;
    wait_for(&app, &user, &job_id, "rendering", rendering).await;
    let prefix = format!("jobs/{job_id}/");
    assert!(!app.storage.keys_under(&prefix).await.unwrap().is_empty());

    let deleted = app.client.delete(app.url("/api/users/me"));
    let deleted = deleted
        .bearer_auth(&user.access_token)
        .json(&serde_json::json!({ "password": user.password }))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    // The single job slot takes the next job only once the deleted one's attempt ended.
    let other = app.user().await;
    let next = create_small(&app, &other).await;
    let ended = app
        .wait_for_job_end(&other, &next, Duration::from_secs(120))
        .await;
    assert_eq!(ended["status"], "SUCCESS", "{ended}");
    eventually(
        Duration::from_secs(20),
        "the deleted job's objects to go",
        || {
            let (storage, prefix) = (app.storage.clone(), prefix.clone());
            async move { storage.keys_under(&prefix).await.ok().filter(Vec::is_empty) }
        },
    )
    .await;
    let theirs = app
        .storage
        .keys_under(&format!("jobs/{next}/"))
        .await
        .unwrap();
    assert!(!theirs.is_empty(), "the other account's objects stay");
}

/// Workers are scaled out by running more on one host: a second one sharing the metrics
/// port still starts (on a free port), and a starting worker removes only the scratch of
/// workers known to be gone, never a sibling's that has not stamped a heartbeat yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_side_by_side_share_a_host_without_harming_each_other() {
    let scratch = tempfile::tempdir().unwrap();
    let port = crate::processes::free_port().to_string();
    let metrics = format!("127.0.0.1:{port}");
    let app = spawn_app_with(&[
        ("WORKER_METRICS_BIND", metrics.as_str()),
        ("WORKER_SCRATCH_DIR", scratch.path().to_str().unwrap()),
        ("RUST_LOG", "info"),
    ])
    .await;
    let root = scratch.path().join(&app.settings["QUEUE_NAME"]);
    std::fs::create_dir_all(&root).unwrap();
    let young = root.join("worker-sibling-just-started");
    let old = root.join("worker-died-long-ago");
    std::fs::create_dir_all(&young).unwrap();
    std::fs::create_dir_all(&old).unwrap();
    crate::processes::make_old(&old);

    let mut first = spawn_worker(&app.settings);
    assert!(
        first
            .logged_within("metrics listening", 1, Duration::from_secs(30))
            .await
    );
    let mut second = spawn_worker(&app.settings);
    assert!(
        second
            .logged_within("metrics port is taken", 1, Duration::from_secs(30))
            .await,
        "the second worker says where its metrics went"
    );
    assert!(
        second
            .logged_within("metrics listening", 1, Duration::from_secs(10))
            .await
    );
    assert!(
        first.is_running() && second.is_running(),
        "both workers run"
    );
    assert!(young.exists(), "a sibling's fresh scratch is kept");
    assert!(!old.exists(), "a long-dead worker's scratch is removed");
}

/// Something else on the host removes a running job's scratch files: the attempt fails
/// for the worker's reason, not the clip's, so the job is tried again and succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_scratch_vanishes_is_tried_again() {
    let scratch = tempfile::tempdir().unwrap();
    let mut app = spawn_app_with(&with_fast_recovery(&[(
        "WORKER_SCRATCH_DIR",
        scratch.path().to_str().unwrap(),
    )]))
    .await;
    let user = app.user().await;
    app.start_worker().await;
    let job_id = create_long_job(&app, &user).await;
    wait_for(&app, &user, &job_id, "the render", rendering).await;
    let root = scratch.path().join(&app.settings["QUEUE_NAME"]);
    let job_dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .flat_map(|worker| std::fs::read_dir(worker.unwrap().path()).unwrap())
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.ends_with(&job_id))
        .collect();
    assert_eq!(job_dirs.len(), 1, "{job_dirs:?}");
    std::fs::remove_dir_all(&job_dirs[0]).unwrap();
    let view = app
        .wait_for_job_end(&user, &job_id, Duration::from_secs(180))
        .await;
    assert_eq!(view["status"], "SUCCESS", "{view}");
    assert_eq!(view["attempts"], 2, "{view}");
}

/// A running job's progress within its stage comes from its worker's mark in Redis (the row
/// changes only with the stage), for polls, lists and live events alike; a mark left by an
/// attempt that no longer holds the job never shows. Events and marks live in the Redis
/// `EVENTS_REDIS_URL` names (here another database of the same server), not the queue's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_marks_show_only_for_the_attempt_holding_the_job() {
    use db::models::JobRow;
    use diesel::prelude::*;
    use domain::jobs::Stage;

    let queue_redis = std::env::var("REDIS_URL").unwrap_or("redis://127.0.0.1:6380/".into());
    let events_redis = format!("{}/2", queue_redis.trim_end_matches('/'));
    let app = spawn_app_with(&[("EVENTS_REDIS_URL", &events_redis)]).await;
    let user = app.user().await;
    let job_id = create_small(&app, &user).await;
    // The job as a worker's attempt has it: rendering, at 10 % in its row, under a lease.
    let lease = uuid::Uuid::new_v4();
    app.execute_sql(format!(
        "UPDATE jobs SET status = 'PROCESSING', stage = 'rendering', progress = 10, attempts = 1, \
         started_at = now(), lease_token = '{lease}', lease_expires_at = now() + interval '1 hour' \
         WHERE id = '{job_id}'"
    ))
    .await;
    let url = app.settings["DATABASE_URL"].clone();
    let id: uuid::Uuid = job_id.parse().unwrap();
    let row: JobRow = tokio::task::spawn_blocking(move || {
        let mut conn = PgConnection::establish(&url).unwrap();
        db::schema::jobs::table
            .find(id)
            .select(JobRow::as_select())
            .first(&mut conn)
            .unwrap()
    })
    .await
    .unwrap();
    let connect = |url: String| async move {
        engine::queue::connect(&url, Duration::from_secs(5))
            .await
            .unwrap()
    };
    let events_conn = connect(events_redis).await;
    let events = engine::events::JobEvents::new(events_conn.clone(), &app.config.queue_name);
    let mut socket = open_socket(&app, &format!("token={}", user.access_token)).await;
    session_answers(&mut socket).await;
    // The row as an attempt holding `lease` claimed it.
    let claimed = |lease| JobRow {
        lease_token: Some(lease),
        ..row.clone()
    };
    let percent = |view: Value| view["progress"]["percent"].as_u64();

    events
        .publish_progress(&claimed(lease), Stage::Rendering, 55)
        .await;
    assert_eq!(percent(job(&app, &user, &job_id).await), Some(55));
    let list = app.user_json("/api/v2/jobs", &user).await;
    assert_eq!(list["data"]["jobs"][0]["progress"]["percent"], 55, "{list}");
    let heard = events_until(&mut socket, &job_id, "PROCESSING").await;
    assert_eq!(heard.last().unwrap()["percent"], 55, "{heard:?}");
    let key = format!("{}:job-progress:{job_id}", app.config.queue_name);
    let exists = |mut conn: redis::aio::ConnectionManager| {
        let key = key.clone();
        async move {
            redis::cmd("EXISTS")
                .arg(key)
                .query_async::<i64>(&mut conn)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        exists(events_conn.clone()).await,
        1,
        "the mark is in the events' Redis"
    );
    assert_eq!(
        exists(connect(queue_redis).await).await,
        0,
        "and not in the queue's"
    );

    // A worker that lost the job (another attempt took it over) still ticks.
    events
        .publish_progress(&claimed(uuid::Uuid::new_v4()), Stage::Rendering, 77)
        .await;
    assert_eq!(
        percent(job(&app, &user, &job_id).await),
        Some(10),
        "the stale mark is ignored: the row's own progress shows"
    );
}
