//! Job creation, status, listing and download through the API (no worker running unless a
//! test starts one), including every bad input and another user's jobs.

use serde_json::Value;

use crate::helpers::{assert_error, spawn_app, spawn_app_with, TestApp, TestUser};
use testkit::media;

pub(crate) fn small_clip() -> (&'static str, Vec<u8>) {
    (
        "clip.mp4",
        std::fs::read(media::portrait_no_audio()).unwrap(),
    )
}

async fn job_count(app: &TestApp, user: &TestUser) -> i64 {
    let body: Value = app.user_json("/api/v2/jobs", user).await;
    body["data"]["total"].as_i64().unwrap()
}

/// A refused request leaves no job row and no stored object behind.
async fn assert_nothing_kept(app: &TestApp, user: &TestUser) {
    assert_eq!(job_count(app, user).await, 0, "no job was kept");
    let objects = app.storage.keys_under("jobs/").await.unwrap();
    assert!(objects.is_empty(), "no object was kept: {objects:?}");
}

#[tokio::test]
async fn creating_a_job_stores_it_pending_with_its_options() {
    let app = spawn_app().await;
    let user = app.user().await;
    let response = app
        .create_job(
            &user,
            &[small_clip(), small_clip()],
            &[
                ("target_duration", "30"),
                ("style", "chill"),
                ("formats", "portrait"),
                ("hud_remove", "true"),
                ("facecam", "0.75, 0.05, 0.2, 0.3"),
                ("title", " Ace on Mirage — 1v5! "),
            ],
        )
        .await;
    assert_eq!(response.status(), 201);
    assert!(response.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/api/v2/jobs/"));
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["success"], true);
    assert_eq!(created["data"]["status"], "PENDING");
    let job_id = created["data"]["job_id"].as_str().unwrap();

    let job: Value = app
        .user_json(&format!("/api/v2/jobs/{job_id}"), &user)
        .await;
    let data = &job["data"];
    assert_eq!(data["status"], "PENDING");
    assert_eq!(data["progress"]["percent"], 0);
    assert_eq!(data["options"]["target_duration"], 30);
    assert_eq!(data["options"]["style"], "chill");
    assert_eq!(data["options"]["formats"], serde_json::json!(["portrait"]));
    assert_eq!(data["options"]["hud_remove"], true);
    let camera = serde_json::json!({"x": 0.75, "y": 0.05, "w": 0.2, "h": 0.3});
    assert_eq!(data["options"]["facecam"], camera);
    assert_eq!(data["options"]["title"], "Ace on Mirage — 1v5!");
    // Not asked for, but the free plan forces it (see billing.rs for the pro plan).
    assert_eq!(data["options"]["watermark"], true);
    assert!(data["error"].is_null());
    let stored = app
        .storage
        .keys_under(&format!("jobs/{job_id}/"))
        .await
        .unwrap();
    let expected: Vec<String> = (0..2)
        .map(|i| domain::jobs::input_key(job_id.parse().unwrap(), i))
        .collect();
    assert_eq!(stored, expected, "both inputs stored");
}

#[tokio::test]
async fn bad_job_requests_are_refused_and_leave_nothing_behind() {
    let app = spawn_app().await;
    let user = app.user().await;
    let bad_fields: &[&[(&str, &str)]] = &[
        &[("colour", "red")],
        &[("target_duration", "5")],
        &[("target_duration", "61")],
        &[("target_duration", "ten")],
        &[("style", "vaporwave")],
        &[("formats", "landscape,square")],
        &[("watermark", "perhaps")],
        &[("style", "chill"), ("style", "gaming")],
        // A camera outside the frame, too small, or not four numbers.
        &[("facecam", "0.9,0.05,0.2,0.3")],
        &[("facecam", "0.1,0.1,0.01,0.3")],
        &[("facecam", "top-right")],
        &[("facecam", "0.1,0.1,0.2")],
        // A title too long, on two lines, or in a script the style's typeface lacks.
        &[("title", "A title that goes on far longer than forty")],
        &[("title", "two\nlines")],
        &[("title", "最高のプレイ")],
    ];
    for fields in bad_fields {
        let body = assert_error(
            app.create_job(&user, &[small_clip()], fields).await,
            422,
            "VALIDATION_ERROR",
        )
        .await;
        assert_eq!(body["error"]["data"]["field"], fields[0].0, "{fields:?}");
        if fields[0].1.starts_with('最') {
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains("no glyph for '最'"), "{message}");
        }
    }
    let no_files = app
        .create_job(&user, &[], &[("target_duration", "20")])
        .await;
    assert_error(no_files, 422, "VALIDATION_ERROR").await;
    let empty = app
        .create_job(&user, &[("empty.mp4", Vec::new())], &[])
        .await;
    assert_error(empty, 422, "VALIDATION_ERROR").await;
    let text = (
        "notes.txt",
        b"just some text, not a video at all".repeat(40),
    );
    let not_video = app.create_job(&user, &[small_clip(), text], &[]).await;
    let body = assert_error(not_video, 415, "UNSUPPORTED_MEDIA_TYPE").await;
    assert_eq!(body["error"]["data"]["file"], "notes.txt");
    let not_multipart = app
        .client
        .post(app.url("/api/v2/jobs"))
        .bearer_auth(&user.access_token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_error(not_multipart, 415, "UNSUPPORTED_MEDIA_TYPE").await;
    let truncated = app
        .client
        .post(app.url("/api/v2/jobs"))
        .bearer_auth(&user.access_token)
        .header("content-type", "multipart/form-data; boundary=XYZ")
        .body("--XYZ\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.mp4\"\r\n\r\n\0\0\0 ftypisom")
        .send()
        .await
        .unwrap();
    assert_error(truncated, 400, "VALIDATION_ERROR").await;
    let anonymous = app
        .client
        .post(app.url("/api/v2/jobs"))
        .send()
        .await
        .unwrap();
    assert_error(anonymous, 401, "AUTHENTICATION_REQUIRED").await;

    assert_nothing_kept(&app, &user).await;
}

#[tokio::test]
async fn too_many_files_are_refused() {
    let app = spawn_app_with(&[("MAX_FILES", "2")]).await;
    let user = app.user().await;
    let response = app
        .create_job(&user, &[small_clip(), small_clip(), small_clip()], &[])
        .await;
    let body = assert_error(response, 422, "VALIDATION_ERROR").await;
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("At most 2"));
    assert_eq!(job_count(&app, &user).await, 0);
}

#[tokio::test]
async fn size_limits_answer_413_and_remove_partial_uploads() {
    let app = spawn_app_with(&[
        ("MAX_FILE_MIB", "6"),
        ("MAX_UPLOAD_MIB", "10"),
        ("UPLOAD_PART_MIB", "5"),
    ])
    .await;
    let user = app.user().await;
    // A valid head followed by padding: 7 MiB, so one 5 MiB part is already stored when
    // the limit trips, and must be cleaned up.
    let mut big = std::fs::read(media::portrait_no_audio()).unwrap();
    big.resize(7 * 1024 * 1024, 0);
    let body = assert_error(
        app.create_job(&user, &[("big.mp4", big)], &[]).await,
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
    assert_eq!(body["error"]["data"]["limit_bytes"], 6 * 1024 * 1024);

    // Two files each under the per-file limit but together over the total.
    let mut half = std::fs::read(media::portrait_no_audio()).unwrap();
    half.resize(11 * 512 * 1024, 0);
    let response = app
        .create_job(&user, &[("one.mp4", half.clone()), ("two.mp4", half)], &[])
        .await;
    assert_error(response, 413, "PAYLOAD_TOO_LARGE").await;

    assert_nothing_kept(&app, &user).await;
}

#[tokio::test]
async fn listing_shows_only_the_callers_jobs_newest_first() {
    let app = spawn_app().await;
    let (alice, bob) = (app.user().await, app.user().await);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let created: Value = app
            .create_job(&alice, &[small_clip()], &[])
            .await
            .json()
            .await
            .unwrap();
        ids.push(created["data"]["job_id"].as_str().unwrap().to_owned());
    }
    app.create_job(&bob, &[small_clip()], &[]).await;

    let page: Value = app.user_json("/api/v2/jobs?limit=2&offset=0", &alice).await;
    assert_eq!(page["data"]["total"], 3);
    let listed: Vec<&str> = page["data"]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec![ids[2].as_str(), ids[1].as_str()]);
    let rest: Value = app.user_json("/api/v2/jobs?limit=2&offset=2", &alice).await;
    assert_eq!(rest["data"]["jobs"][0]["job_id"], ids[0].as_str());
    let capped: Value = app.user_json("/api/v2/jobs?limit=1000", &alice).await;
    assert_eq!(capped["data"]["limit"], 100);
    assert_eq!(job_count(&app, &bob).await, 1);

    for bad in ["limit=0", "offset=-1", "limit=abc"] {
        assert_error(
            app.get(&format!("/api/v2/jobs?{bad}"), &alice)
                .send()
                .await
                .unwrap(),
            422,
            "VALIDATION_ERROR",
        )
        .await;
    }
}

/// The options come before the files and are checked before any file is read: a refused
/// option answers its own error even when the file after it is not a video (which, read,
/// would answer 415), and an option sent after a file is refused.
#[tokio::test]
async fn options_are_refused_before_any_file_is_read() {
    let app = spawn_app_with(&[("CALLBACK_ALLOW_PRIVATE", "false")]).await;
    let (alice, mallory) = (app.user().await, app.user().await);
    let kept: Value = app
        .create_job(&mallory, &[small_clip()], &[("save_to_library", "true")])
        .await
        .json()
        .await
        .unwrap();
    let theirs = app.user_json("/api/v2/clips", &mallory).await;
    let their_clip = theirs["data"]["clips"][0]["clip_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(kept["data"]["job_id"].is_string());
    let text = ("notes.txt", b"not a video".repeat(100));
    // The fields sent, and the status, code and field of the answer.
    type Refusal<'a> = (&'a [(&'a str, &'a str)], u16, &'a str, &'a str);
    let refusals: [Refusal; 3] = [
        (
            &[("target_duration", "61")],
            422,
            "VALIDATION_ERROR",
            "target_duration",
        ),
        (
            &[("callback_url", "http://127.0.0.1:6379/")],
            422,
            "VALIDATION_ERROR",
            "callback_url",
        ),
        (
            &[("clip_ids", &their_clip)],
            404,
            "RESOURCE_NOT_FOUND",
            "clip_ids",
        ),
    ];
    for (fields, status, code, field) in refusals {
        let refused = app
            .create_job(&alice, std::slice::from_ref(&text), fields)
            .await;
        let body = assert_error(refused, status, code).await;
        assert_eq!(body["error"]["data"]["field"], field, "{fields:?}");
    }
    let form = reqwest::multipart::Form::new()
        .part(
            "files",
            reqwest::multipart::Part::bytes(small_clip().1).file_name("a.mp4"),
        )
        .text("style", "chill");
    let late = app
        .client
        .post(app.url("/api/v2/jobs"))
        .bearer_auth(&alice.access_token);
    let late = late.multipart(form).send().await.unwrap();
    let body = assert_error(late, 422, "VALIDATION_ERROR").await;
    assert_eq!(body["error"]["data"]["field"], "style");
    let jobs = app.user_json("/api/v2/jobs", &alice).await;
    assert_eq!(jobs["data"]["total"], 0, "nothing was created: {jobs}");
}

#[tokio::test]
async fn another_users_job_is_indistinguishable_from_a_missing_one() {
    let app = spawn_app().await;
    let (alice, mallory) = (app.user().await, app.user().await);
    let created: Value = app
        .create_job(&alice, &[small_clip()], &[])
        .await
        .json()
        .await
        .unwrap();
    let job_id = created["data"]["job_id"].as_str().unwrap();
    let missing = uuid::Uuid::now_v7();
    for path in [
        format!("/api/v2/jobs/{job_id}"),
        format!("/api/v2/jobs/{job_id}/download"),
    ] {
        let theirs = assert_error(
            app.get(&path, &mallory).send().await.unwrap(),
            404,
            "RESOURCE_NOT_FOUND",
        )
        .await;
        let absent_path = path.replace(job_id, &missing.to_string());
        let absent = assert_error(
            app.get(&absent_path, &mallory).send().await.unwrap(),
            404,
            "RESOURCE_NOT_FOUND",
        )
        .await;
        assert_eq!(theirs, absent);
    }
    assert_error(
        app.get("/api/v2/jobs/not-a-uuid", &alice)
            .send()
            .await
            .unwrap(),
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
    let anonymous = app
        .client
        .get(app.url(&format!("/api/v2/jobs/{job_id}")))
        .send()
        .await
        .unwrap();
    assert_error(anonymous, 401, "AUTHENTICATION_REQUIRED").await;
}

#[tokio::test]
async fn download_waits_for_success_and_checks_the_format() {
    let app = spawn_app().await;
    let user = app.user().await;
    let created: Value = app
        .create_job(&user, &[small_clip()], &[])
        .await
        .json()
        .await
        .unwrap();
    let job_id = created["data"]["job_id"].as_str().unwrap();
    let pending = app
        .get(
            &format!("/api/v2/jobs/{job_id}/download?format=landscape"),
            &user,
        )
        .send()
        .await
        .unwrap();
    let body = assert_error(pending, 409, "JOB_NOT_READY").await;
    assert_eq!(body["error"]["data"]["status"], "PENDING");
    let unknown = app
        .get(
            &format!("/api/v2/jobs/{job_id}/download?format=square"),
            &user,
        )
        .send()
        .await
        .unwrap();
    assert_error(unknown, 422, "VALIDATION_ERROR").await;
}

/// Pollers: an `ETag` on every status, 304 while it holds, a new one (and the new state, at
/// once) after a change; many reads of one job at the same moment all get it.
#[tokio::test]
async fn polling_a_status_is_conditional_and_never_stale() {
    let app = spawn_app().await;
    let user = app.user().await;
    let created: Value = app
        .create_job(&user, &[small_clip()], &[("target_duration", "10")])
        .await
        .json()
        .await
        .unwrap();
    let job_id = created["data"]["job_id"].as_str().unwrap().to_owned();
    let path = format!("/api/v2/jobs/{job_id}");
    let first = app.get(&path, &user).send().await.unwrap();
    assert_eq!(first.status(), 200);
    let tag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(first.headers()["cache-control"], "private, no-cache");

    let read_unless = |tag: &str| app.get(&path, &user).header("if-none-match", tag).send();
    let unchanged = read_unless(&tag).await.unwrap();
    assert_eq!(unchanged.status(), 304);
    assert_eq!(unchanged.headers()["etag"].to_str().unwrap(), tag);
    assert!(unchanged.bytes().await.unwrap().is_empty());
    let other_tag = read_unless("\"0000000000000000\"").await.unwrap();
    assert_eq!(other_tag.status(), 200, "another tag is not a match");

    let cancelled = app
        .client
        .post(app.url(&format!("{path}/cancel")))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    // The very next read sees the committed change: no cache may answer for it.
    let changed = read_unless(&tag).await.unwrap();
    assert_eq!(changed.status(), 200);
    assert_ne!(changed.headers()["etag"].to_str().unwrap(), tag);
    let body: Value = changed.json().await.unwrap();
    assert_eq!(body["data"]["status"], "CANCELLED");

    // Reads of one job batched together each get the job (not only the first of them).
    let reads = (0..40).map(|_| app.get(&path, &user).send());
    for read in futures::future::join_all(reads).await {
        let read = read.unwrap();
        assert_eq!(read.status(), 200);
        let body: Value = read.json().await.unwrap();
        assert_eq!(body["data"]["status"], "CANCELLED");
    }
}
