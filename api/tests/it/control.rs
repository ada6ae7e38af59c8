//! Cancelling, deleting, time limits and idempotent creation, through the API.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{assert_error, spawn_app, spawn_app_with, TestApp, TestUser};
use testkit::media;

pub fn clip(path: std::path::PathBuf) -> (&'static str, Vec<u8>) {
    ("clip.mp4", std::fs::read(path).unwrap())
}

pub async fn create(
    app: &TestApp,
    user: &TestUser,
    files: &[(&str, Vec<u8>)],
    fields: &[(&str, &str)],
) -> String {
    let response = app.create_job(user, files, fields).await;
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.unwrap()["data"]["job_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A quick job: one small clip, 10 s.
pub async fn create_small(app: &TestApp, user: &TestUser) -> String {
    create(
        app,
        user,
        &[clip(media::portrait_no_audio())],
        &[("target_duration", "10")],
    )
    .await
}

pub async fn job(app: &TestApp, user: &TestUser, job_id: &str) -> Value {
    app.user_json(&format!("/api/v2/jobs/{job_id}"), user).await["data"].clone()
}

pub fn post(app: &TestApp, user: &TestUser, path: &str) -> reqwest::RequestBuilder {
    app.client
        .post(app.url(path))
        .bearer_auth(&user.access_token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_pending_job_never_starts() {
    let mut app = spawn_app().await;
    let user = app.user().await;
    let job_id = create(&app, &user, &[clip(media::portrait_no_audio())], &[]).await;
    let cancelled = post(&app, &user, &format!("/api/v2/jobs/{job_id}/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    assert_eq!(
        cancelled.json::<Value>().await.unwrap()["data"]["status"],
        "CANCELLED"
    );
    let again = post(&app, &user, &format!("/api/v2/jobs/{job_id}/cancel"))
        .send()
        .await
        .unwrap();
    assert_error(again, 409, "CONFLICT").await;

    // A worker receives the queued job and must leave it alone. A job created after it
    // finishing proves the worker had its chance at the first.
    app.start_worker().await;
    let later = create_small(&app, &user).await;
    let ended = app
        .wait_for_job_end(&user, &later, Duration::from_secs(120))
        .await;
    assert_eq!(ended["status"], "SUCCESS", "{ended}");
    let view = job(&app, &user, &job_id).await;
    assert_eq!(view["status"], "CANCELLED", "{view}");
    assert_eq!(view["attempts"], 0, "{view}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_render_stops_within_seconds_and_leaves_nothing() {
    let mut app = spawn_app().await;
    app.start_worker().await;
    let user = app.user().await;
    let files = [
        clip(media::quiet_clip_with_burst()),
        clip(media::h264_1080p60()),
        clip(media::vp9_720p_webm()),
    ];
    let job_id = create(
        &app,
        &user,
        &files,
        &[("target_duration", "25"), ("formats", "landscape,portrait")],
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while job(&app, &user, &job_id).await["stage"] != "rendering" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never started rendering"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let requested = post(&app, &user, &format!("/api/v2/jobs/{job_id}/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(requested.status(), 202);
    let asked = tokio::time::Instant::now();
    let view = app
        .wait_for_job_end(&user, &job_id, Duration::from_secs(30))
        .await;
    assert_eq!(view["status"], "CANCELLED", "{view}");
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "stopped in {:?}",
        asked.elapsed()
    );
    assert!(view["outputs"].as_array().unwrap().is_empty());
    let outputs = app
        .storage
        .keys_under(&format!("jobs/{job_id}/outputs/"))
        .await
        .unwrap();
    assert!(outputs.is_empty(), "no partial outputs: {outputs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_over_its_time_limit_fails_with_a_timeout() {
    let mut app = spawn_app_with(&[("JOB_TIMEOUT_SECS", "1")]).await;
    app.start_worker().await;
    let user = app.user().await;
    let files = [
        clip(media::quiet_clip_with_burst()),
        clip(media::h264_1080p60()),
    ];
    let job_id = create(
        &app,
        &user,
        &files,
        &[("target_duration", "20"), ("formats", "landscape,portrait")],
    )
    .await;
    let view = app
        .wait_for_job_end(&user, &job_id, Duration::from_secs(60))
        .await;
    assert_eq!(view["status"], "FAILED", "{view}");
    assert_eq!(view["error"]["code"], "RENDER_TIMEOUT", "{view}");
}

#[tokio::test]
async fn ended_jobs_can_be_deleted_with_everything_they_stored() {
    let app = spawn_app().await;
    let (user, other) = (app.user().await, app.user().await);
    let job_id = create(&app, &user, &[clip(media::portrait_no_audio())], &[]).await;
    let path = format!("/api/v2/jobs/{job_id}");
    let pending = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_error(pending, 409, "CONFLICT").await;
    post(&app, &user, &format!("{path}/cancel"))
        .send()
        .await
        .unwrap();
    let theirs = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&other.access_token)
        .send()
        .await
        .unwrap();
    assert_error(theirs, 404, "RESOURCE_NOT_FOUND").await;

    let deleted = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_error(
        app.get(&path, &user).send().await.unwrap(),
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
    assert!(app
        .storage
        .keys_under(&format!("jobs/{job_id}/"))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn the_same_idempotency_key_returns_the_first_job() {
    let app = spawn_app().await;
    let (user, other) = (app.user().await, app.user().await);
    let send = |user: &TestUser, key: &str| {
        let form = reqwest::multipart::Form::new().part(
            "files",
            reqwest::multipart::Part::bytes(std::fs::read(media::portrait_no_audio()).unwrap())
                .file_name("c.mp4"),
        );
        app.client
            .post(app.url("/api/v2/jobs"))
            .bearer_auth(&user.access_token)
            .header("Idempotency-Key", key)
            .multipart(form)
            .send()
    };
    let first = send(&user, "upload-42").await.unwrap();
    assert_eq!(first.status(), 201);
    let first_id = first.json::<Value>().await.unwrap()["data"]["job_id"].clone();
    let replay = send(&user, "upload-42").await.unwrap();
    assert_eq!(replay.status(), 200);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(
        replay.json::<Value>().await.unwrap()["data"]["job_id"],
        first_id
    );

    let someone_else = send(&other, "upload-42").await.unwrap();
    assert_eq!(someone_else.status(), 201, "keys are per user");
    let fresh = send(&user, "upload-43").await.unwrap();
    assert_eq!(fresh.status(), 201);
    let listed: Value = app.user_json("/api/v2/jobs", &user).await;
    assert_eq!(listed["data"]["total"], 2);
    assert_error(
        send(&user, &"k".repeat(256)).await.unwrap(),
        422,
        "VALIDATION_ERROR",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_starting_worker_removes_scratch_left_by_dead_workers() {
    let scratch = tempfile::tempdir().unwrap();
    let mut app = spawn_app_with(&[("WORKER_SCRATCH_DIR", scratch.path().to_str().unwrap())]).await;
    let root = scratch.path().join(&app.config.queue_name);
    let dead = root.join("worker-gone-1234-abcdef12");
    std::fs::create_dir_all(dead.join("some-job")).unwrap();
    std::fs::write(dead.join("some-job/input-00"), b"left over").unwrap();
    // Its worker died long ago: older than a lease, with no heartbeat.
    crate::processes::make_old(&dead);
    let other_deployment = scratch
        .path()
        .join("another-queue/worker-elsewhere-1-00000000");
    std::fs::create_dir_all(&other_deployment).unwrap();

    app.start_worker().await;
    // The worker removes the dead one's directory, then makes its own.
    let entries = || -> Vec<_> {
        std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while dead.exists() || entries().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "dead worker's scratch still there, or no directory of the new worker: {:?}",
            entries()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let remaining = entries();
    assert_eq!(
        remaining.len(),
        1,
        "only the new worker's own directory: {remaining:?}"
    );
    assert!(
        other_deployment.exists(),
        "another deployment's scratch is not ours to clean"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_queue_entries_are_vacuumed() {
    let mut app = spawn_app_with(&[("QUEUE_VACUUM_SECS", "1")]).await;
    app.start_worker().await;
    let user = app.user().await;
    let job_id = create_small(&app, &user).await;
    let view = app
        .wait_for_job_end(&user, &job_id, Duration::from_secs(60))
        .await;
    assert_eq!(view["status"], "SUCCESS", "{view}");

    let data_key = engine::queue::storage_config(&app.config).job_data_hash();
    let mut redis = engine::queue::connect(&app.config.redis_url, Duration::from_secs(5))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let entries: u64 = redis::cmd("HLEN")
            .arg(&data_key)
            .query_async(&mut redis)
            .await
            .unwrap();
        if entries == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{entries} finished entries left in {data_key}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let inputs = app
        .storage
        .keys_under(&format!("jobs/{job_id}/inputs/"))
        .await
        .unwrap();
    assert_eq!(
        inputs.len(),
        1,
        "clips are kept for the retention period (72 h by default)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploaded_clips_are_deleted_after_the_retention_and_outputs_stay() {
    let mut app =
        spawn_app_with(&[("QUEUE_VACUUM_SECS", "1"), ("INPUT_RETENTION_HOURS", "0")]).await;
    app.start_worker().await;
    let user = app.user().await;
    let read = |path: std::path::PathBuf| std::fs::read(path).unwrap();
    let parts = [
        ("files", "a.mp4", read(media::portrait_no_audio())),
        ("files", "b.mp4", read(media::rotated_small())),
        ("music", "song.mp3", read(media::tone_with_clicks_mp3())),
    ];
    let response = app.create_job_with(&user, &[], &parts).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let job_id = created["data"]["job_id"].as_str().unwrap();
    let view = app
        .wait_for_job_end(&user, job_id, Duration::from_secs(60))
        .await;
    assert_eq!(view["status"], "SUCCESS", "{view}");
    // The clips and the player's track go; what is left is the outputs.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !app
        .storage
        .keys_under(&format!("jobs/{job_id}/"))
        .await
        .unwrap()
        .iter()
        .all(|key| key.contains("/outputs/"))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "inputs still stored"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let outputs = app
        .storage
        .keys_under(&format!("jobs/{job_id}/outputs/"))
        .await
        .unwrap();
    assert_eq!(
        outputs.len(),
        2,
        "the video and its poster stay: {outputs:?}"
    );
    let download = app
        .get(&format!("/api/v2/jobs/{job_id}/download"), &user)
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 302);
}
