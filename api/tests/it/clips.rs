//! The clip library: form uploads saved to it, direct uploads straight to storage (resumed
//! after an interruption), the workers' examination, and jobs that use library clips by id
//! and reuse their stored analysis.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};

use crate::control::{clip, post};
use crate::helpers::{assert_error, eventually, spawn_app, spawn_app_with, TestApp, TestUser};
use crate::metrics::{scrape, Scrape};
use testkit::media;

/// Posts a job form with `fields` before the files (as `save_to_library` needs).
async fn create_with(
    app: &TestApp,
    user: &TestUser,
    fields: &[(&str, &str)],
    files: &[(&str, Vec<u8>)],
) -> reqwest::Response {
    let mut form = Form::new();
    for (name, value) in fields {
        form = form.text(name.to_string(), value.to_string());
    }
    for (name, bytes) in files {
        form = form.part(
            "files",
            Part::bytes(bytes.clone()).file_name(name.to_string()),
        );
    }
    app.client
        .post(app.url("/api/v2/jobs"))
        .bearer_auth(&user.access_token)
        .multipart(form)
        .send()
        .await
        .unwrap()
}

async fn created_job(response: reqwest::Response) -> String {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body["data"]["job_id"].as_str().unwrap().to_owned()
}

/// Renders the library clips `ids` by id (nothing uploaded) with `fields`, and waits for
/// the job to succeed; its final view.
pub(crate) async fn render_by_id(
    app: &TestApp,
    user: &TestUser,
    ids: &[&str],
    fields: &[(&str, &str)],
) -> Value {
    let clip_ids = ids.join(",");
    let mut all = vec![("clip_ids", clip_ids.as_str())];
    all.extend_from_slice(fields);
    let job_id = created_job(create_with(app, user, &all, &[]).await).await;
    let job = app
        .wait_for_job_end(user, &job_id, Duration::from_secs(120))
        .await;
    assert_eq!(job["status"], "SUCCESS", "{job}");
    job
}

async fn library(app: &TestApp, user: &TestUser, query: &str) -> Value {
    app.user_json(&format!("/api/v2/clips{query}"), user).await["data"].clone()
}

/// How many clips a worker in this process analysed, and how many came from the library.
pub(crate) async fn analyses(app: &TestApp) -> (f64, f64) {
    let address = app.metrics_address.expect("the test app serves metrics");
    let text = scrape(address, None).await.unwrap().text().await.unwrap();
    let scrape = Scrape::parse(text);
    let count = |kind| {
        scrape
            .value("montage_clip_analyses_total", &[("analysis", kind)])
            .unwrap_or(0.0)
    };
    (count("measured"), count("stored"))
}

async fn wait_until_ready(app: &TestApp, user: &TestUser, clip_id: &str) -> Value {
    eventually(
        Duration::from_secs(90),
        "the clip's examination",
        || async {
            let clip = app
                .user_json(&format!("/api/v2/clips/{clip_id}"), user)
                .await["data"]
                .clone();
            (clip["status"] != "PENDING").then_some(clip)
        },
    )
    .await
}

/// The thumbnail link redirects to a JPEG in storage.
async fn assert_thumbnail(app: &TestApp, user: &TestUser, clip: &Value) {
    let url = clip["thumbnail_url"]
        .as_str()
        .expect("a READY clip has a thumbnail");
    let redirect = app.get(url, user).send().await.unwrap();
    assert_eq!(redirect.status(), 302);
    let location = redirect.headers()["location"].to_str().unwrap().to_owned();
    let jpeg = reqwest::get(location).await.unwrap().bytes().await.unwrap();
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "a JPEG");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saved_clips_render_again_by_id_without_a_second_analysis() {
    let mut app = spawn_app().await;
    app.start_worker().await;
    let user = app.user().await;
    let files = [
        clip(media::portrait_no_audio()),
        clip(media::rotated_small()),
    ];
    let fields = [("save_to_library", "true"), ("target_duration", "10")];
    let first = created_job(create_with(&app, &user, &fields, &files).await).await;
    let listed = library(&app, &user, "").await;
    assert_eq!(listed["total"], 2, "{listed}");
    assert_eq!(analyses(&app).await, (0.0, 0.0));
    let job = app
        .wait_for_job_end(&user, &first, Duration::from_secs(120))
        .await;
    assert_eq!(job["status"], "SUCCESS", "{job}");

    // The job examined both clips on the way: facts, thumbnail and analysis.
    let clips = library(&app, &user, "?source=upload").await["clips"].clone();
    let clips = clips.as_array().unwrap();
    assert_eq!(clips.len(), 2);
    for clip in clips {
        assert_eq!(clip["status"], "READY", "{clip}");
        assert_eq!(clip["source"], "upload");
        assert!(clip["duration"].as_f64().unwrap() > 1.0, "{clip}");
        assert!(clip["width"].as_i64().unwrap() > 0, "{clip}");
        assert_thumbnail(&app, &user, clip).await;
    }
    let portrait = clips
        .iter()
        .find(|c| c["has_audio"] == false)
        .expect("the silent clip");
    assert_eq!(
        (portrait["width"].as_i64(), portrait["height"].as_i64()),
        (Some(720), Some(1280))
    );
    assert_eq!(analyses(&app).await, (2.0, 0.0));

    // A second montage of the same clips, by id, in another style and format: nothing is
    // uploaded and nothing analysed again.
    let ids: Vec<&str> = clips
        .iter()
        .map(|c| c["clip_id"].as_str().unwrap())
        .collect();
    let fields = [
        ("style", "energetic"),
        ("formats", "portrait"),
        ("target_duration", "10"),
    ];
    let job = render_by_id(&app, &user, &ids, &fields).await;
    assert_eq!(job["outputs"][0]["format"], "portrait");
    assert_eq!(analyses(&app).await, (2.0, 2.0));

    // Deleting the first job leaves the library's clips where they are.
    let deleted = app
        .client
        .delete(app.url(&format!("/api/v2/jobs/{first}")))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    for id in &ids {
        let key = domain::clips::clip_key(user.user_id.parse().unwrap(), id.parse().unwrap());
        assert_eq!(
            app.storage.keys_under(&key).await.unwrap().len(),
            2,
            "clip and thumbnail"
        );
    }
}

#[tokio::test]
async fn the_library_is_its_owners_and_a_clip_in_use_stays() {
    let app = spawn_app().await;
    let (owner, other) = (app.user().await, app.user().await);
    let fields = [("save_to_library", "true")];
    let job =
        created_job(create_with(&app, &owner, &fields, &[clip(media::portrait_no_audio())]).await)
            .await;
    let listed = library(&app, &owner, "").await;
    let saved = &listed["clips"][0];
    assert_eq!(saved["status"], "PENDING", "{saved}");
    assert_eq!(saved["name"], "clip.mp4");
    assert!(saved["thumbnail_url"].is_null());
    let id = saved["clip_id"].as_str().unwrap().to_owned();
    let path = format!("/api/v2/clips/{id}");

    assert_eq!(library(&app, &owner, "?source=twitch").await["total"], 0);
    assert_error(
        app.get("/api/v2/clips?source=myspace", &owner)
            .send()
            .await
            .unwrap(),
        422,
        "VALIDATION_ERROR",
    )
    .await;
    assert_error(
        app.get(&format!("{path}/thumbnail"), &owner)
            .send()
            .await
            .unwrap(),
        409,
        "CONFLICT",
    )
    .await;
    // Someone else's clip is not found, to read, delete or render.
    assert_eq!(library(&app, &other, "").await["total"], 0);
    assert_error(
        app.get(&path, &other).send().await.unwrap(),
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
    let delete = |user: &TestUser| {
        app.client
            .delete(app.url(&path))
            .bearer_auth(&user.access_token)
            .send()
    };
    assert_error(delete(&other).await.unwrap(), 404, "RESOURCE_NOT_FOUND").await;
    let borrowed = create_with(&app, &other, &[("clip_ids", &id)], &[]).await;
    assert_error(borrowed, 404, "RESOURCE_NOT_FOUND").await;
    // Bad forms: a malformed id, the library switch after the files, no clips at all.
    let garbled = create_with(&app, &owner, &[("clip_ids", "not-a-uuid")], &[]).await;
    assert_error(garbled, 422, "VALIDATION_ERROR").await;
    let (name, bytes) = clip(media::portrait_no_audio());
    let late_form = Form::new()
        .part("files", Part::bytes(bytes).file_name(name.to_owned()))
        .text("save_to_library", "true");
    let late = app.client.post(app.url("/api/v2/jobs"));
    let late = late
        .bearer_auth(&owner.access_token)
        .multipart(late_form)
        .send();
    assert_error(late.await.unwrap(), 422, "VALIDATION_ERROR").await;
    let empty = create_with(&app, &owner, &[("clip_ids", " , ")], &[]).await;
    assert_error(empty, 422, "VALIDATION_ERROR").await;

    // The pending job still needs the clip.
    assert_error(delete(&owner).await.unwrap(), 409, "CONFLICT").await;
    let cancel = app
        .client
        .post(app.url(&format!("/api/v2/jobs/{job}/cancel")))
        .bearer_auth(&owner.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 200);
    let key = domain::clips::clip_key(owner.user_id.parse().unwrap(), id.parse().unwrap());
    assert_eq!(app.storage.keys_under(&key).await.unwrap().len(), 1);
    assert_eq!(delete(&owner).await.unwrap().status(), 204);
    assert!(app.storage.keys_under(&key).await.unwrap().is_empty());
    assert_error(
        app.get(&path, &owner).send().await.unwrap(),
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
}

async fn start_upload(
    app: &TestApp,
    user: &TestUser,
    name: &str,
    size: usize,
) -> reqwest::Response {
    app.client
        .post(app.url("/api/v2/uploads"))
        .bearer_auth(&user.access_token)
        .json(&json!({ "name": name, "size": size }))
        .send()
        .await
        .unwrap()
}

/// PUTs one part of `file` to its presigned URL, as a browser would.
async fn put_part(file: &[u8], part: &Value, part_size: usize) {
    let number = part["part_number"].as_u64().unwrap() as usize;
    let start = (number - 1) * part_size;
    let end = (start + part_size).min(file.len());
    let url = part["url"].as_str().unwrap();
    let sent = reqwest::Client::new()
        .put(url)
        .body(file[start..end].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200, "{}", sent.text().await.unwrap());
}

/// PUTs `body` to a presigned URL with extra `headers`; answers storage's status and body.
/// Storage may refuse before reading the body and close the connection: that answers 403.
async fn put_raw(url: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> (u16, String) {
    let mut put = reqwest::Client::new().put(url).body(body);
    for (name, value) in headers {
        put = put.header(*name, *value);
    }
    match put.send().await {
        Ok(answer) => (answer.status().as_u16(), answer.text().await.unwrap()),
        Err(cut) if cut.is_request() => (403, format!("connection closed: {cut}")),
        Err(other) => panic!("{other}"),
    }
}

/// Starts a direct upload declaring `declared` bytes, sends `file` as its first part, and
/// answers the completion's response.
async fn upload_in_one_part(
    app: &TestApp,
    user: &TestUser,
    name: &str,
    file: &[u8],
    declared: usize,
) -> reqwest::Response {
    let started = start_upload(app, user, name, declared).await;
    let upload = started.json::<Value>().await.unwrap()["data"].clone();
    put_part(file, &upload["parts_to_send"][0], file.len()).await;
    let upload_id = upload["upload_id"].as_str().unwrap();
    let path = format!("/api/v2/uploads/{upload_id}/complete");
    post(app, user, &path).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_upload_resumes_after_an_interruption_and_renders_by_id() {
    let mut app = spawn_app().await;
    let user = app.user().await;
    let file = std::fs::read(media::game_with_hud()).unwrap();
    let started = start_upload(&app, &user, "../raid night.mp4", file.len()).await;
    assert_eq!(started.status(), 201);
    let upload = started.json::<Value>().await.unwrap()["data"].clone();
    let part_size = upload["part_size"].as_u64().unwrap() as usize;
    let parts = upload["parts_to_send"].as_array().unwrap().clone();
    assert_eq!(parts.len(), file.len().div_ceil(part_size), "{upload}");
    assert!(
        parts.len() >= 2,
        "a file big enough to come in parts: {upload}"
    );
    assert_eq!(upload["name"], "raid night.mp4");
    let path = format!("/api/v2/uploads/{}", upload["upload_id"].as_str().unwrap());

    // The connection drops after the first part; the client asks where it stands.
    put_part(&file, &parts[0], part_size).await;
    let early = post(&app, &user, &format!("{path}/complete"))
        .send()
        .await
        .unwrap();
    let refused = assert_error(early, 409, "CONFLICT").await;
    let missing: Vec<u64> = (2..=parts.len() as u64).collect();
    assert_eq!(refused["error"]["data"]["missing_parts"], json!(missing));
    let resumed = app.user_json(&path, &user).await["data"].clone();
    assert_eq!(resumed["parts_stored"][0]["part_number"], 1, "{resumed}");
    let rest = resumed["parts_to_send"].as_array().unwrap();
    assert_eq!(rest.len(), parts.len() - 1, "{resumed}");
    for part in rest {
        put_part(&file, part, part_size).await;
    }
    let completed = post(&app, &user, &format!("{path}/complete"))
        .send()
        .await
        .unwrap();
    assert_eq!(completed.status(), 201);
    let clip = completed.json::<Value>().await.unwrap()["data"].clone();
    assert_eq!(clip["status"], "PENDING");
    assert_eq!(clip["size"], file.len());
    let clip_id = clip["clip_id"].as_str().unwrap().to_owned();
    assert_error(
        app.get(&path, &user).send().await.unwrap(),
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;

    // A worker examines it; then it renders by id.
    app.start_worker().await;
    let clip = wait_until_ready(&app, &user, &clip_id).await;
    assert_eq!(clip["status"], "READY", "{clip}");
    assert_eq!(
        (clip["width"].as_i64(), clip["height"].as_i64()),
        (Some(640), Some(360))
    );
    assert_thumbnail(&app, &user, &clip).await;
    let fields = [("clip_ids", clip_id.as_str()), ("target_duration", "10")];
    let job = created_job(create_with(&app, &user, &fields, &[]).await).await;
    let job = app
        .wait_for_job_end(&user, &job, Duration::from_secs(120))
        .await;
    assert_eq!(job["status"], "SUCCESS", "{job}");
    assert_eq!(analyses(&app).await, (1.0, 1.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_uploads_that_lie_are_refused_and_keep_nothing() {
    let mut app = spawn_app_with(&[("FREE_STORAGE_MIB", "20"), ("MAX_FILE_MIB", "15")]).await;
    let user = app.user().await;
    // Limits: per file, and the plan's storage (counting uploads under way).
    assert_error(
        start_upload(&app, &user, "big.mp4", 16 << 20).await,
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;
    let first = start_upload(&app, &user, "a.mp4", 12 << 20).await;
    assert_eq!(first.status(), 201);
    let over = start_upload(&app, &user, "b.mp4", 12 << 20).await;
    assert_error(over, 403, "QUOTA_EXCEEDED").await;
    for body in [
        json!({"name": "a.mp4"}),
        json!({"name": "", "size": 10}),
        json!({"name": "a.mp4", "size": 0}),
        json!({"name": "a", "size": -1}),
    ] {
        let refused = post(&app, &user, "/api/v2/uploads")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 422, "{body}");
    }
    let first = first.json::<Value>().await.unwrap()["data"].clone();
    let first_path = format!("/api/v2/uploads/{}", first["upload_id"].as_str().unwrap());
    let cancelled = app
        .client
        .delete(app.url(&first_path))
        .bearer_auth(&user.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 204);
    assert_error(
        app.get(&first_path, &user).send().await.unwrap(),
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;

    // A part shorter than declared: storage refuses it (its length is signed), and the
    // upload still misses it.
    let clip = std::fs::read(media::portrait_no_audio()).unwrap();
    let short = start_upload(&app, &user, "short.mp4", clip.len() + 10).await;
    let short = short.json::<Value>().await.unwrap()["data"].clone();
    let url = short["parts_to_send"][0]["url"].as_str().unwrap();
    assert_eq!(put_raw(url, clip.clone(), &[]).await.0, 403);
    let path = format!(
        "/api/v2/uploads/{}/complete",
        short["upload_id"].as_str().unwrap()
    );
    let early = post(&app, &user, &path).send().await.unwrap();
    assert_error(early, 409, "CONFLICT").await;

    // A playlist posing as a video: refused at completion, and deleted.
    let manifest =
        b"#EXTM3U\n#EXT-X-VERSION:3\n#EXTINF:10,\nhttp://169.254.169.254/latest\n".to_vec();
    let fake = upload_in_one_part(&app, &user, "clip.mp4", &manifest, manifest.len()).await;
    assert_error(fake, 415, "UNSUPPORTED_MEDIA_TYPE").await;
    let prefix = domain::clips::clip_prefix(user.user_id.parse().unwrap());
    assert!(app.storage.keys_under(&prefix).await.unwrap().is_empty());
    assert_eq!(library(&app, &user, "").await["total"], 0);

    // A file with a video's head but no decodable video: the examination rejects it,
    // says why, and deletes the file.
    let truncated = media::truncated_mp4();
    let broken = upload_in_one_part(&app, &user, "broken.mp4", &truncated, truncated.len()).await;
    let clip = broken.json::<Value>().await.unwrap()["data"].clone();
    assert_eq!(clip["status"], "PENDING", "{clip}");
    app.start_worker().await;
    let clip = wait_until_ready(&app, &user, clip["clip_id"].as_str().unwrap()).await;
    assert_eq!(clip["status"], "REJECTED", "{clip}");
    assert!(
        clip["rejection"]
            .as_str()
            .is_some_and(|r| r.contains("broken.mp4")),
        "{clip}"
    );
    assert!(app.storage.keys_under(&prefix).await.unwrap().is_empty());
    let rejected = create_with(
        &app,
        &user,
        &[("clip_ids", clip["clip_id"].as_str().unwrap())],
        &[],
    )
    .await;
    assert_error(rejected, 422, "VALIDATION_ERROR").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn library_clips_outlive_the_input_retention_and_their_jobs_can_run_again() {
    let mut app =
        spawn_app_with(&[("QUEUE_VACUUM_SECS", "1"), ("INPUT_RETENTION_HOURS", "0")]).await;
    let (admin, user) = (app.user().await, app.user().await);
    assert!(crate::admin::grant_admin(&app, &admin.email)
        .status
        .success());
    let fields = [("save_to_library", "true")];
    let saved = create_with(&app, &user, &fields, &[clip(media::portrait_no_audio())]).await;
    let saved = created_job(saved).await;
    let clip_id = library(&app, &user, "").await["clips"][0]["clip_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let uploaded = crate::control::create(&app, &user, &[clip(media::rotated_small())], &[]).await;
    // Both end cancelled before any worker runs: the library job first.
    for job in [&saved, &uploaded] {
        let cancel = format!("/api/v2/jobs/{job}/cancel");
        let cancelled = app
            .client
            .post(app.url(&cancel))
            .bearer_auth(&user.access_token);
        assert_eq!(cancelled.send().await.unwrap().status(), 200);
    }
    app.start_worker().await;
    let uploaded_inputs = format!("jobs/{uploaded}/inputs/");
    eventually(Duration::from_secs(30), "the retention pass", || async {
        let left = app.storage.keys_under(&uploaded_inputs).await.unwrap();
        left.is_empty().then_some(())
    })
    .await;
    let key = domain::clips::clip_key(user.user_id.parse().unwrap(), clip_id.parse().unwrap());
    assert_eq!(
        app.storage.keys_under(&key).await.unwrap(),
        std::slice::from_ref(&key),
        "the library keeps it"
    );

    let rerun = |job: &str| {
        let path = format!("/api/admin/jobs/{job}/retry");
        app.client
            .post(app.url(&path))
            .bearer_auth(&admin.access_token)
            .send()
    };
    assert_error(rerun(&uploaded).await.unwrap(), 409, "CONFLICT").await;
    assert_eq!(rerun(&saved).await.unwrap().status(), 200);
    let ended = app
        .wait_for_job_end(&user, &saved, Duration::from_secs(120))
        .await;
    assert_eq!(ended["status"], "SUCCESS", "{ended}");
}

/// Each stored analysis carries a 160x90 change map; a handful of them once outgrew the
/// message that starts the media process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_library_clips_render_by_id_with_their_stored_analyses() {
    let mut app = spawn_app().await;
    app.start_worker().await;
    let user = app.user().await;
    let files: Vec<_> = (0..6).map(|_| clip(media::rotated_small())).collect();
    let fields = [("save_to_library", "true"), ("target_duration", "10")];
    let first = created_job(create_with(&app, &user, &fields, &files).await).await;
    let job = app
        .wait_for_job_end(&user, &first, Duration::from_secs(120))
        .await;
    assert_eq!(job["status"], "SUCCESS", "{job}");
    let clips = library(&app, &user, "").await["clips"].clone();
    let ids: Vec<&str> = clips
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["clip_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 6);
    render_by_id(&app, &user, &ids, &[("target_duration", "10")]).await;
    assert_eq!(analyses(&app).await, (6.0, 6.0));
}

/// A part URL is for its own part's bytes: storage refuses another length, and refuses an
/// unsigned `x-amz-copy-source` that would copy another player's object into the upload.
#[tokio::test]
async fn a_part_url_takes_its_own_bytes_and_copies_nothing() {
    let app = spawn_app().await;
    let (victim, attacker) = (app.user().await, app.user().await);
    let clip = std::fs::read(media::portrait_no_audio()).unwrap();
    let kept = upload_in_one_part(&app, &victim, "mine.mp4", &clip, clip.len()).await;
    assert_eq!(kept.status(), 201);
    let prefix = domain::clips::clip_prefix(victim.user_id.parse().unwrap());
    let victims = app.storage.keys_under(&prefix).await.unwrap();
    assert_eq!(victims.len(), 1, "{victims:?}");

    let started = start_upload(&app, &attacker, "one-byte.mp4", 1).await;
    let upload = started.json::<Value>().await.unwrap()["data"].clone();
    let url = upload["parts_to_send"][0]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let signed = url::Url::parse(&url).unwrap();
    let signed: HashMap<_, _> = signed.query_pairs().into_owned().collect();
    assert!(
        signed["X-Amz-SignedHeaders"]
            .split(';')
            .any(|h| h == "content-length"),
        "{url}"
    );
    // 2 MiB where 1 byte was declared (and counted against the quota).
    assert_eq!(put_raw(&url, vec![0; 2 << 20], &[]).await.0, 403);
    // The right length, plus a header that would make storage copy the victim's clip.
    let source = format!("{}/{}", app.settings["S3_BUCKET"], victims[0]);
    let copy = [("x-amz-copy-source", source.as_str())];
    let (status, body) = put_raw(&url, vec![0], &copy).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("HeadersNotSigned"), "{body}");
    let path = format!("/api/v2/uploads/{}", upload["upload_id"].as_str().unwrap());
    let state = app.user_json(&path, &attacker).await["data"].clone();
    assert_eq!(state["parts_stored"], json!([]), "nothing stored: {state}");
    // The byte it was made for is taken.
    assert_eq!(put_raw(&url, vec![0], &[]).await.0, 200);
}

/// Open direct uploads are capped per plan, however fast they are started; racing
/// completions of one upload answer one clip, never a 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_uploads_are_capped_and_racing_completions_agree() {
    let app = spawn_app_with(&[("FREE_OPEN_UPLOADS", "3")]).await;
    let user = app.user().await;
    let names: Vec<String> = (0..8).map(|n| format!("{n}.mp4")).collect();
    let starts = names.iter().map(|n| start_upload(&app, &user, n, 1 << 20));
    let answers = futures::future::join_all(starts).await;
    let mut created = Vec::new();
    for answer in answers {
        match answer.status().as_u16() {
            201 => created.push(answer.json::<Value>().await.unwrap()["data"].clone()),
            _ => {
                let refused = assert_error(answer, 403, "QUOTA_EXCEEDED").await;
                assert_eq!(refused["error"]["data"]["quota"], "open_uploads");
            }
        }
    }
    assert_eq!(created.len(), 3, "the plan's cap, exactly");
    let cancel = format!(
        "/api/v2/uploads/{}",
        created[0]["upload_id"].as_str().unwrap()
    );
    let cancelled = app
        .client
        .delete(app.url(&cancel))
        .bearer_auth(&user.access_token);
    assert_eq!(cancelled.send().await.unwrap().status(), 204);

    let clip = std::fs::read(media::portrait_no_audio()).unwrap();
    let started = start_upload(&app, &user, "race.mp4", clip.len()).await;
    assert_eq!(started.status(), 201, "a cancelled upload frees its place");
    let upload = started.json::<Value>().await.unwrap()["data"].clone();
    put_part(&clip, &upload["parts_to_send"][0], clip.len()).await;
    let path = format!(
        "/api/v2/uploads/{}/complete",
        upload["upload_id"].as_str().unwrap()
    );
    let racing = (0..4).map(|_| post(&app, &user, &path).send());
    let mut clips = Vec::new();
    for answer in futures::future::join_all(racing).await {
        let answer = answer.unwrap();
        match answer.status().as_u16() {
            201 => clips.push(answer.json::<Value>().await.unwrap()["data"]["clip_id"].clone()),
            _ => drop(assert_error(answer, 409, "CONFLICT").await),
        }
    }
    assert!(
        !clips.is_empty() && clips.iter().all(|c| *c == clips[0]),
        "{clips:?}"
    );
    // After the race, the same clip again.
    let again = post(&app, &user, &path).send().await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(
        again.json::<Value>().await.unwrap()["data"]["clip_id"],
        clips[0]
    );
    assert_eq!(library(&app, &user, "").await["total"], 1);
}

#[tokio::test]
async fn a_clip_keeps_where_its_owners_camera_sits() {
    let app = spawn_app().await;
    let (owner, other) = (app.user().await, app.user().await);
    let fields = [("save_to_library", "true")];
    let upload = create_with(&app, &owner, &fields, &[clip(media::portrait_no_audio())]).await;
    created_job(upload).await;
    let id = library(&app, &owner, "").await["clips"][0]["clip_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v2/clips/{id}/facecam");
    let put = |user: &TestUser, body: Value| {
        app.client
            .put(app.url(&path))
            .bearer_auth(&user.access_token)
            .json(&body)
            .send()
    };
    let camera = json!({"x": 0.02, "y": 0.67, "w": 0.25, "h": 0.3});
    let set = put(&owner, json!({ "facecam": camera })).await.unwrap();
    assert_eq!(set.status(), 200);
    let clip = app.user_json(&format!("/api/v2/clips/{id}"), &owner).await;
    assert_eq!(clip["data"]["facecam"], camera, "{clip}");

    // Someone else's clip is not theirs to change; a rectangle outside the frame, too
    // small or misspelt is refused and changes nothing.
    let theirs = put(&other, json!({ "facecam": camera })).await.unwrap();
    assert_error(theirs, 404, "RESOURCE_NOT_FOUND").await;
    for bad in [
        json!({"facecam": {"x": 0.9, "y": 0.0, "w": 0.2, "h": 0.2}}),
        json!({"facecam": {"x": 0.1, "y": 0.1, "w": 0.01, "h": 0.2}}),
        json!({"facecam": "0.1,0.1,0.2,0.2"}),
        json!({"camera": camera}),
    ] {
        let refused = put(&owner, bad.clone()).await.unwrap();
        assert!(
            refused.status().is_client_error(),
            "{bad}: {}",
            refused.status()
        );
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["success"], false, "{body}");
    }
    let kept = app.user_json(&format!("/api/v2/clips/{id}"), &owner).await;
    assert_eq!(kept["data"]["facecam"], camera, "{kept}");

    let cleared = put(&owner, json!({ "facecam": null })).await.unwrap();
    assert_eq!(cleared.status(), 200);
    let clip = app.user_json(&format!("/api/v2/clips/{id}"), &owner).await;
    assert!(clip["data"]["facecam"].is_null(), "{clip}");
}
