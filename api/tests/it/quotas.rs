//! Plan quotas: jobs waiting or running, stored bytes, and output retention. Over a quota the
//! answer is 403 QUOTA_EXCEEDED and nothing is stored.

use std::time::Duration;

use crate::{
    control::{clip, create_small, job},
    helpers::{assert_error, eventually, spawn_app_with},
};
use testkit::media;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_past_the_open_jobs_quota_is_refused_and_nothing_is_stored() {
    // No worker: the first two jobs stay open.
    let app = spawn_app_with(&[("FREE_OPEN_JOBS", "2")]).await;
    let user = app.user().await;
    create_small(&app, &user).await;
    create_small(&app, &user).await;
    let refused = app
        .create_job(&user, &[clip(media::portrait_no_audio())], &[])
        .await;
    let body = assert_error(refused, 403, "QUOTA_EXCEEDED").await;
    assert_eq!(body["error"]["data"]["quota"], "open_jobs");
    let jobs = app.user_json("/api/v2/jobs", &user).await;
    assert_eq!(jobs["data"]["total"], 2, "{jobs}");
    // Another user's quota is their own.
    let other = app.user().await;
    create_small(&app, &other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_past_the_storage_quota_is_refused_and_removed() {
    let app = spawn_app_with(&[("FREE_STORAGE_MIB", "1")]).await;
    let user = app.user().await;
    let big = clip(media::long_1080p());
    assert!(big.1.len() > 1 << 20);
    let refused = app.create_job(&user, &[big], &[]).await;
    let body = assert_error(refused, 403, "QUOTA_EXCEEDED").await;
    assert_eq!(body["error"]["data"]["quota"], "storage");
    let jobs = app.user_json("/api/v2/jobs", &user).await;
    assert_eq!(jobs["data"]["total"], 0, "{jobs}");
    let stored = app.storage.keys_under("jobs/").await.unwrap();
    assert!(
        stored.is_empty(),
        "parts already stored are removed: {stored:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_outputs_expire_after_the_retention_and_say_so() {
    let mut app = spawn_app_with(&[
        ("FREE_OUTPUT_RETENTION_SECS", "3"),
        ("QUEUE_VACUUM_SECS", "1"),
    ])
    .await;
    app.start_worker().await;
    let user = app.user().await;
    let job_id = create_small(&app, &user).await;
    let ended = app
        .wait_for_job_end(&user, &job_id, Duration::from_secs(120))
        .await;
    assert_eq!(ended["status"], "SUCCESS", "{ended}");
    let expire_at = ended["outputs_expire_at"].as_str().expect("announced");
    let expire_at = chrono::DateTime::parse_from_rfc3339(expire_at).unwrap();
    let finished_at =
        chrono::DateTime::parse_from_rfc3339(ended["finished_at"].as_str().unwrap()).unwrap();
    assert_eq!((expire_at - finished_at).num_seconds(), 3);
    let prefix = format!("jobs/{job_id}/outputs/");
    assert!(!app.storage.keys_under(&prefix).await.unwrap().is_empty());
    let expired = eventually(Duration::from_secs(20), "the outputs to expire", || async {
        let view = job(&app, &user, &job_id).await;
        (view["outputs_expired"] == true).then_some(view)
    })
    .await;
    assert_eq!(expired["outputs"].as_array().unwrap().len(), 0, "{expired}");
    assert!(expired["outputs_expire_at"].is_null());
    assert!(app.storage.keys_under(&prefix).await.unwrap().is_empty());
    let download = app
        .get(
            &format!("/api/v2/jobs/{job_id}/download?format=landscape"),
            &user,
        )
        .send()
        .await
        .unwrap();
    assert_error(download, 410, "OUTPUTS_EXPIRED").await;
}
