//! Weekly montages (the scheduled run with racing workers, catch-up, too little material,
//! visibility, featuring), share pages and views, statistics, interests and
//! recommendations.

use std::time::Duration;

use chrono::{Timelike, Utc};
use serde_json::{json, Value};

use crate::admin::grant_admin;
use crate::clips::analyses;
use crate::control::{clip, create};
use crate::helpers::{assert_error, eventually, spawn_app, spawn_app_with, TestApp, TestUser};
use crate::metrics::{scrape, Scrape};
use testkit::media;

const RENDER: Duration = Duration::from_secs(180);

/// Renders a job of `count` clips saved to the library and waits for it: the clips are
/// then READY with their analyses.
async fn library_job(app: &TestApp, user: &TestUser, count: usize, style: &str) -> String {
    let files: Vec<_> = [media::portrait_no_audio(), media::rotated_small()]
        .into_iter()
        .take(count)
        .map(clip)
        .collect();
    let mut form = reqwest::multipart::Form::new()
        .text("save_to_library", "true")
        .text("target_duration", "10")
        .text("style", style.to_owned());
    for (name, bytes) in files {
        form = form.part(
            "files",
            reqwest::multipart::Part::bytes(bytes).file_name(name),
        );
    }
    let response = send(app.client.post(app.url("/api/v2/jobs")), user)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let job_id = response.json::<Value>().await.unwrap()["data"]["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let job = app.wait_for_job_end(user, &job_id, RENDER).await;
    assert_eq!(job["status"], "SUCCESS", "{job}");
    job_id
}

async fn weekly_settings(app: &TestApp, user: &TestUser) -> Value {
    app.user_json("/api/v2/users/me/weekly-montage", user).await["data"].clone()
}

async fn mine(app: &TestApp, user: &TestUser) -> Vec<Value> {
    let body = app
        .user_json("/api/v2/weekly-montages?mine=true", user)
        .await;
    body["data"]["montages"].as_array().unwrap().clone()
}

async fn public_list(app: &TestApp, query: &str) -> Vec<Value> {
    let body = app
        .public_json(&format!("/api/v2/weekly-montages{query}"))
        .await;
    body["data"]["montages"].as_array().unwrap().clone()
}

fn send(request: reqwest::RequestBuilder, user: &TestUser) -> reqwest::RequestBuilder {
    request.bearer_auth(&user.access_token)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_weekly_run_makes_each_week_once_across_racing_workers_and_catches_up() {
    // The run is due every week at this very hour: the latest week ended at most an hour ago.
    let now = Utc::now();
    let weekday = now.format("%A").to_string();
    let hour = now.hour().to_string();
    let mut app = spawn_app_with(&[
        ("WEEKLY_WEEKDAY", &weekday),
        ("WEEKLY_HOUR", &hour),
        ("WEEKLY_CHECK_SECS", "1"),
    ])
    .await;
    let mut quiet = app.config.clone();
    quiet.showcase.check_every = None;
    app.start_worker_with(quiet).await;
    let (recent, missed, scarce, off) = (
        app.user().await,
        app.user().await,
        app.user().await,
        app.user().await,
    );
    library_job(&app, &recent, 2, "chill").await;
    library_job(&app, &missed, 2, "gaming").await;
    library_job(&app, &scarce, 1, "gaming").await;
    let body = json!({"enabled": false, "style": null});
    let response = send(
        app.client.put(app.url("/api/v2/users/me/weekly-montage")),
        &off,
    )
    .json(&body)
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let bad = send(
        app.client.put(app.url("/api/v2/users/me/weekly-montage")),
        &off,
    )
    .json(&json!({"enabled": true, "style": "vaporwave"}))
    .send()
    .await
    .unwrap();
    assert_error(bad, 422, "VALIDATION_ERROR").await;
    app.stop_workers().await;

    // Time moves: everyone joined a month ago; `missed`'s clips are from the week before
    // last, which no run saw (the service was down), the others' from last week.
    app.execute_sql("UPDATE users SET created_at = now() - interval '30 days'".into())
        .await;
    let backdate = |user: &TestUser, days: i64| {
        format!(
            "UPDATE clips SET created_at = now() - interval '{days} days' WHERE user_id = '{}'",
            user.user_id
        )
    };
    app.execute_sql(backdate(&recent, 2)).await;
    app.execute_sql(backdate(&scarce, 2)).await;
    app.execute_sql(backdate(&missed, 9)).await;
    assert!(mine(&app, &recent).await.is_empty());

    // Two workers race for the run.
    app.start_worker().await;
    app.start_worker().await;
    let built = eventually(
        Duration::from_secs(60),
        "recent's weekly montage",
        || async {
            let latest = weekly_settings(&app, &recent).await["latest_week"].clone();
            (latest["outcome"] == "built").then_some(latest)
        },
    )
    .await;
    let scarce_week = eventually(Duration::from_secs(30), "scarce's week", || async {
        let latest = weekly_settings(&app, &scarce).await["latest_week"].clone();
        (!latest.is_null()).then_some(latest)
    })
    .await;
    assert_eq!(scarce_week["outcome"], "too_little", "{scarce_week}");
    assert_eq!(scarce_week["clip_count"], 1);
    assert!(scarce_week["montage_id"].is_null());

    let montage_id = built["montage_id"].as_str().unwrap().to_owned();
    let montage = app
        .user_json(&format!("/api/v2/weekly-montages/{montage_id}"), &recent)
        .await["data"]
        .clone();
    let weekly_job = montage["job_id"].as_str().unwrap().to_owned();
    let finished = app.wait_for_job_end(&recent, &weekly_job, RENDER).await;
    assert_eq!(finished["status"], "SUCCESS", "{finished}");
    assert_eq!(montage["style"], "chill", "the style recent's jobs use");
    assert_eq!(montage["clip_count"], 2);

    // Catch-up: the week before last is built for `missed`, and last week had nothing.
    let missed_montages = eventually(Duration::from_secs(30), "the missed week", || async {
        let listed = mine(&app, &missed).await;
        (!listed.is_empty()).then_some(listed)
    })
    .await;
    let missed_latest = weekly_settings(&app, &missed).await["latest_week"].clone();
    assert_eq!(missed_latest["outcome"], "too_little", "{missed_latest}");
    let week_start = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    assert_eq!(
        week_start(&missed_montages[0]["week_end"]),
        week_start(&missed_latest["week_start"]),
        "the montage covers the week before the latest"
    );

    // Exactly once: the racing workers, running every second all along, made one montage
    // per user and week, and none for the player who turned it off.
    assert_eq!(mine(&app, &recent).await.len(), 1);
    assert_eq!(missed_montages.len(), 1);
    assert_eq!(mine(&app, &missed).await.len(), 1);
    assert!(mine(&app, &scarce).await.is_empty());
    assert!(weekly_settings(&app, &off).await["latest_week"].is_null());
    // The weekly jobs read the clips' stored analyses: five clips measured by the first
    // jobs, four taken from the library by the two weekly ones.
    let missed_job = missed_montages[0]["job_id"].as_str().unwrap();
    let missed_end = app.wait_for_job_end(&missed, missed_job, RENDER).await;
    assert_eq!(missed_end["status"], "SUCCESS", "{missed_end}");
    assert_eq!(analyses(&app).await, (5.0, 4.0));
    let address = app.metrics_address.unwrap();
    let metrics = Scrape::parse(scrape(address, None).await.unwrap().text().await.unwrap());
    let built_total = metrics.value("montage_weekly_montages_total", &[("outcome", "built")]);
    assert_eq!(built_total, Some(2.0), "two workers, two montages");
    let jobs = app.user_json("/api/v2/jobs", &scarce).await;
    assert_eq!(jobs["data"]["total"], 1, "no job for too little: {jobs}");

    visibility_and_featuring(
        &app,
        &recent,
        &missed,
        &montage_id,
        missed_montages[0]["montage_id"].as_str().unwrap(),
    )
    .await;
}

/// New montages are private; the owner publishes; admins feature public ones only.
async fn visibility_and_featuring(
    app: &TestApp,
    owner: &TestUser,
    other: &TestUser,
    public_id: &str,
    private_id: &str,
) {
    assert!(public_list(app, "").await.is_empty(), "both are private");
    let anonymous = app
        .client
        .get(app.url(&format!("/api/v2/weekly-montages/{private_id}")))
        .send()
        .await
        .unwrap();
    assert_error(anonymous, 404, "RESOURCE_NOT_FOUND").await;
    let publish = send(
        app.client
            .patch(app.url(&format!("/api/v2/weekly-montages/{public_id}"))),
        owner,
    )
    .json(&json!({"visibility": "public"}))
    .send()
    .await
    .unwrap();
    assert_eq!(publish.status(), 200);
    let not_theirs = send(
        app.client
            .patch(app.url(&format!("/api/v2/weekly-montages/{public_id}"))),
        other,
    )
    .json(&json!({"visibility": "private"}))
    .send()
    .await
    .unwrap();
    assert_error(not_theirs, 404, "RESOURCE_NOT_FOUND").await;

    let listed = public_list(app, "").await;
    assert_eq!(listed.len(), 1, "the public one only");
    assert_eq!(listed[0]["montage_id"], public_id);
    let video = listed[0]["outputs"][0]["video_url"].as_str().unwrap();
    let played = app.client.get(video).send().await.unwrap();
    assert_eq!(played.status(), 200, "anyone can play a public montage");
    assert!(public_list(app, "?featured_only=true").await.is_empty());

    let feature = |id: &str, user: &TestUser| {
        send(
            app.client
                .put(app.url(&format!("/api/v2/admin/weekly-montages/{id}/featured"))),
            user,
        )
    };
    assert_error(
        feature(public_id, owner).send().await.unwrap(),
        403,
        "INSUFFICIENT_PERMISSIONS",
    )
    .await;
    assert!(grant_admin(app, &other.email).status.success());
    assert_error(
        feature(private_id, other).send().await.unwrap(),
        409,
        "CONFLICT",
    )
    .await;
    assert_eq!(
        feature(public_id, other).send().await.unwrap().status(),
        200
    );
    let featured = public_list(app, "?featured_only=true").await;
    assert_eq!(featured.len(), 1);
    assert_eq!(featured[0]["featured"], true);
}

async fn page(app: &TestApp, path: &str, agent: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .header("user-agent", agent)
        .send()
        .await
        .unwrap()
}

async fn stats(app: &TestApp, user: &TestUser) -> Value {
    app.user_json("/api/v2/analytics/user/stats", user).await["data"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_montages_play_count_each_viewer_once_a_day_and_revoke() {
    let mut app = spawn_app_with(&[("PUBLIC_BASE_URL", "https://montage.example")]).await;
    let user = app.user().await;
    let stranger = app.user().await;
    let fresh = app
        .user_json("/api/v2/users/me/recommendations?top_n=5", &user)
        .await["data"]
        .clone();
    assert_eq!(fresh["styles"].as_array().unwrap().len(), 4, "{fresh}");
    assert_eq!(fresh["styles"][0]["style"], "gaming");
    assert!(fresh["styles"][0]["reason"]
        .as_str()
        .unwrap()
        .starts_with("A good start"));
    assert_eq!(fresh["styles"][0]["settings"]["target_duration"], 60);
    assert_eq!(fresh["featured_montages"], json!([]));

    let job_id = create(
        &app,
        &user,
        &[clip(media::portrait_no_audio())],
        &[("target_duration", "10"), ("style", "chill")],
    )
    .await;
    let share_path = format!("/api/v2/jobs/{job_id}/share");
    let early = send(app.client.post(app.url(&share_path)), &user)
        .send()
        .await
        .unwrap();
    assert_error(early, 409, "JOB_NOT_READY").await;
    app.start_worker().await;
    let job = app.wait_for_job_end(&user, &job_id, RENDER).await;
    assert_eq!(job["status"], "SUCCESS", "{job}");

    let first = send(app.client.post(app.url(&share_path)), &user)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 201);
    let link: Value = first.json().await.unwrap();
    let token = link["data"]["token"].as_str().unwrap().to_owned();
    assert_eq!(
        link["data"]["url"],
        format!("https://montage.example/s/{token}")
    );
    let again = send(app.client.post(app.url(&share_path)), &user)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(
        again.json::<Value>().await.unwrap()["data"]["token"],
        token.as_str()
    );
    let theirs = send(app.client.post(app.url(&share_path)), &stranger)
        .send()
        .await
        .unwrap();
    assert_error(theirs, 404, "RESOURCE_NOT_FOUND").await;

    let shared = page(&app, &format!("/s/{token}"), "Mozilla/5.0 (first viewer)").await;
    assert_eq!(shared.status(), 200);
    assert!(shared.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = shared.text().await.unwrap();
    let base = format!("https://montage.example/s/{token}");
    for tag in [
        format!("<meta property=\"og:video\" content=\"{base}/video\">"),
        format!("<meta property=\"og:image\" content=\"{base}/poster\">"),
        format!("<meta property=\"og:url\" content=\"{base}\">"),
        "<meta property=\"og:type\" content=\"video.other\">".to_owned(),
        "<meta property=\"og:video:type\" content=\"video/mp4\">".to_owned(),
    ] {
        assert!(html.contains(&tag), "{tag} missing from {html}");
    }
    let source = html
        .split("<video")
        .nth(1)
        .unwrap()
        .split("src=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let video = app.client.get(&source).send().await.unwrap();
    assert_eq!(video.status(), 200, "the page's video plays");
    assert!(video.bytes().await.unwrap().len() > 1000);
    let redirect = page(&app, &format!("/s/{token}/video"), "x").await;
    assert_eq!(redirect.status(), 302);

    // One view per viewer and day; link unfurlers are not viewers.
    page(&app, &format!("/s/{token}"), "Mozilla/5.0 (first viewer)").await;
    page(&app, &format!("/s/{token}"), "Mozilla/5.0 (second viewer)").await;
    page(&app, &format!("/s/{token}"), "Slackbot-LinkExpanding 1.0").await;
    let track = |body: Value, who: &TestUser| {
        send(
            app.client
                .post(app.url(&format!("/api/v2/analytics/track-view/{job_id}"))),
            who,
        )
        .json(&body)
    };
    let counted: Value = track(json!({"viewer_id": "install-1"}), &user)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counted["data"]["counted"], true);
    let repeated: Value = track(json!({"viewer_id": "install-1"}), &user)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(repeated["data"]["counted"], false);
    assert_error(
        track(json!({}), &stranger).send().await.unwrap(),
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
    assert_error(
        track(json!({"viewer_id": ""}), &user).send().await.unwrap(),
        422,
        "VALIDATION_ERROR",
    )
    .await;

    let numbers = stats(&app, &user).await;
    assert_eq!(numbers["views"]["total"], 3, "{numbers}");
    assert_eq!(numbers["views"]["last_7_days"], 3);
    assert_eq!(numbers["views"]["montages"][0]["job_id"], job_id.as_str());
    assert_eq!(numbers["views"]["montages"][0]["last_30_days"], 3);
    assert_eq!(numbers["jobs"]["SUCCESS"], 1, "{numbers}");
    assert_eq!(numbers["jobs"]["FAILED"], 0);
    let seconds = job["outputs"][0]["duration"].as_f64().unwrap();
    let minutes = numbers["minutes_rendered"].as_f64().unwrap();
    assert!(
        (minutes - seconds / 60.0).abs() < 0.01,
        "{minutes} for {seconds} s: {numbers}"
    );
    assert_eq!(numbers["posts"], json!({}));
    assert!(numbers["storage"]["used_bytes"].as_u64().unwrap() > 0);
    assert_eq!(numbers["plan"]["id"], "free");
    assert_eq!(numbers["plan"]["usage"]["open_jobs"], 0);
    assert_eq!(stats(&app, &stranger).await["views"]["total"], 0);

    interests_and_recommendations(&app, &user).await;

    // Revoked: the page and its files are gone.
    let revoke = send(app.client.delete(app.url(&share_path)), &user)
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 204);
    let gone = page(&app, &format!("/s/{token}"), "Mozilla/5.0").await;
    assert_eq!(gone.status(), 404);
    assert!(gone.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(gone.text().await.unwrap().contains("no longer shared"));
    assert_error(
        page(&app, &format!("/s/{token}/video"), "x").await,
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
    let twice = send(app.client.delete(app.url(&share_path)), &user)
        .send()
        .await
        .unwrap();
    assert_error(twice, 404, "RESOURCE_NOT_FOUND").await;
    assert_eq!(page(&app, "/s/not-a-token", "x").await.status(), 404);
}

/// An active player's recommendations follow their views and interests.
async fn interests_and_recommendations(app: &TestApp, user: &TestUser) {
    let set = |body: Value| {
        send(app.client.post(app.url("/api/v2/users/me/interests")), user).json(&body)
    };
    assert_error(
        set(json!({"interests": ["<script>"]}))
            .send()
            .await
            .unwrap(),
        422,
        "VALIDATION_ERROR",
    )
    .await;
    let many: Vec<String> = (0..21).map(|i| format!("game {i}")).collect();
    assert_error(
        set(json!({"interests": many})).send().await.unwrap(),
        422,
        "VALIDATION_ERROR",
    )
    .await;
    let saved: Value = set(json!({"interests": ["Valorant", "cinematic", "valorant"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(saved["data"]["games"], json!(["valorant"]));
    assert_eq!(saved["data"]["styles"], json!(["cinematic"]));
    assert_eq!(
        app.user_json("/api/v2/users/me/interests", user).await["data"],
        saved["data"]
    );

    let too_many = app
        .get("/api/v2/users/me/recommendations?top_n=0", user)
        .send()
        .await
        .unwrap();
    assert_error(too_many, 422, "VALIDATION_ERROR").await;
    let picks = app
        .user_json("/api/v2/users/me/recommendations?top_n=2", user)
        .await["data"]
        .clone();
    let styles = picks["styles"].as_array().unwrap();
    assert_eq!(styles.len(), 2, "{picks}");
    assert_eq!(
        styles[0]["style"], "chill",
        "their viewed style first: {picks}"
    );
    assert_eq!(
        styles[0]["reason"],
        "Your chill montages drew 3 views in the last 30 days; settings as in your latest chill montage"
    );
    assert_eq!(styles[0]["settings"]["target_duration"], 10);
    assert_eq!(styles[1]["style"], "cinematic");
    assert_eq!(styles[1]["reason"], "You follow cinematic montages");
    let again = app
        .user_json("/api/v2/users/me/recommendations?top_n=2", user)
        .await["data"]
        .clone();
    assert_eq!(again, picks, "deterministic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weekly_montage_routes_refuse_bad_input() {
    let app = spawn_app().await;
    let user = app.user().await;
    let mine = app
        .client
        .get(app.url("/api/v2/weekly-montages?mine=true"))
        .send()
        .await
        .unwrap();
    assert_error(mine, 401, "AUTHENTICATION_REQUIRED").await;
    let unknown = app
        .client
        .get(app.url(&format!("/api/v2/weekly-montages/{}", uuid::Uuid::new_v4())))
        .send()
        .await
        .unwrap();
    assert_error(unknown, 404, "RESOURCE_NOT_FOUND").await;
    let patch = send(
        app.client
            .patch(app.url(&format!("/api/v2/weekly-montages/{}", uuid::Uuid::new_v4()))),
        &user,
    )
    .json(&json!({"visibility": "everyone"}))
    .send()
    .await
    .unwrap();
    assert_error(patch, 422, "VALIDATION_ERROR").await;
    let settings = weekly_settings(&app, &user).await;
    assert_eq!(
        settings,
        json!({"enabled": true, "style": null, "latest_week": null})
    );
}
