//! Weekly montages (the scheduled run with racing workers, catch-up, too little material,
//! visibility, featuring), share pages and views, statistics, interests and
//! recommendations.

use std::time::Duration;

use chrono::{Timelike, Utc};
use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::admin::grant_admin;
use crate::clips::analyses;
use crate::control::{clip, create};
use crate::helpers::{assert_error, eventually, spawn_app, spawn_app_with, TestApp, TestUser};
use crate::metrics::{scrape, Scrape};
use testkit::media;

const RENDER: Duration = Duration::from_secs(180);

/// Sends `body` (if any, as JSON) to `path` as `user` (anonymously without one).
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    user: Option<&TestUser>,
    body: Option<Value>,
) -> Response {
    let mut request = app.client.request(method, app.url(path));
    if let Some(user) = user {
        request = request.bearer_auth(&user.access_token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// The `data` of a successful answer.
async fn data(response: Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{status}: {body}");
    body["data"].clone()
}

/// Renders a job of `count` clips saved to the library and waits for it: the clips are
/// then READY with their analyses.
async fn library_job(app: &TestApp, user: &TestUser, count: usize, style: &str) {
    let mut form = reqwest::multipart::Form::new()
        .text("save_to_library", "true")
        .text("target_duration", "10")
        .text("style", style.to_owned());
    for path in [media::portrait_no_audio(), media::rotated_small()]
        .into_iter()
        .take(count)
    {
        let (name, bytes) = clip(path);
        form = form.part(
            "files",
            reqwest::multipart::Part::bytes(bytes).file_name(name),
        );
    }
    let request = app.client.post(app.url("/api/v2/jobs"));
    let response = request
        .bearer_auth(&user.access_token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let job_id = data(response).await["job_id"].as_str().unwrap().to_owned();
    let job = app.wait_for_job_end(user, &job_id, RENDER).await;
    assert_eq!(job["status"], "SUCCESS", "{job}");
}

async fn weekly_settings(app: &TestApp, user: &TestUser) -> Value {
    app.user_json("/api/v2/users/me/weekly-montage", user).await["data"].clone()
}

/// The latest week the run looked at for `user`, once there is one.
async fn latest_week(app: &TestApp, user: &TestUser, what: &str) -> Value {
    eventually(Duration::from_secs(60), what, || async {
        let latest = weekly_settings(app, user).await["latest_week"].clone();
        (!latest.is_null()).then_some(latest)
    })
    .await
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

/// The players of the weekly test, by what their weeks hold.
struct Players {
    /// Two clips last week.
    recent: TestUser,
    /// Two clips the week before last, which no run saw.
    missed: TestUser,
    /// One clip last week: too little.
    scarce: TestUser,
    /// Two clips last week, but turned weekly montages off.
    off: TestUser,
    /// Two clips last week, but an unconfirmed address past its allowance of jobs.
    unconfirmed: TestUser,
}

/// Renders the players' clips with a worker that never runs the weekly run, then moves
/// time: their clips were made in the weeks they stand for.
async fn players_with_history(app: &mut TestApp) -> Players {
    let mut quiet = app.config.clone();
    quiet.showcase.check_every = None;
    app.start_worker_with(quiet).await;
    let players = Players {
        recent: app.user().await,
        missed: app.user().await,
        scarce: app.user().await,
        off: app.user().await,
        unconfirmed: app.user().await,
    };
    library_job(app, &players.recent, 2, "chill").await;
    library_job(app, &players.missed, 2, "gaming").await;
    library_job(app, &players.scarce, 1, "gaming").await;
    library_job(app, &players.off, 2, "gaming").await;
    library_job(app, &players.unconfirmed, 2, "gaming").await;
    // Everyone else confirmed their address.
    let confirm = format!(
        "UPDATE users SET email_verified_at = now() WHERE id <> '{}'",
        players.unconfirmed.user_id
    );
    app.execute_sql(confirm).await;
    let settings = "/api/v2/users/me/weekly-montage";
    let off = json!({"enabled": false, "style": null});
    data(call(app, Method::PUT, settings, Some(&players.off), Some(off)).await).await;
    for bad in [
        json!({"enabled": true, "style": "vaporwave"}),
        json!({"enabled": true, "style": null, "music_id": "no_such_track"}),
        json!({"enabled": true, "style": null, "music_id": "../tracks"}),
    ] {
        let refused = call(app, Method::PUT, settings, Some(&players.off), Some(bad)).await;
        assert_error(refused, 422, "VALIDATION_ERROR").await;
    }
    // Recent's montages follow a track; the style stays the one their jobs use most.
    let cut_to = json!({"enabled": true, "style": null, "music_id": "calm_acoustic_1"});
    let chosen = data(
        call(
            app,
            Method::PUT,
            settings,
            Some(&players.recent),
            Some(cut_to),
        )
        .await,
    )
    .await;
    assert_eq!(chosen["music_id"], "calm_acoustic_1", "{chosen}");
    app.stop_workers().await;

    for (user, days) in [
        (&players.recent, 2),
        (&players.scarce, 2),
        (&players.off, 2),
        (&players.unconfirmed, 2),
        (&players.missed, 9),
    ] {
        let sql = format!(
            "UPDATE clips SET created_at = now() - interval '{days} days' WHERE user_id = '{}'",
            user.user_id
        );
        app.execute_sql(sql).await;
    }
    assert!(mine(app, &players.recent).await.is_empty());
    players
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_weekly_run_makes_each_week_once_across_racing_workers_and_catches_up() {
    // The run is due every week at this very hour: the latest week ended within the hour.
    let now = Utc::now();
    let (weekday, hour) = (now.format("%A").to_string(), now.hour().to_string());
    let mut app = spawn_app_with(&[
        ("WEEKLY_WEEKDAY", &weekday),
        ("WEEKLY_HOUR", &hour),
        ("WEEKLY_CHECK_SECS", "1"),
        // An unconfirmed account may make the one job it made, and no weekly one.
        ("UNVERIFIED_JOB_ALLOWANCE", "1"),
    ])
    .await;
    let players = players_with_history(&mut app).await;

    // Two workers race for the run, every second.
    app.start_worker().await;
    app.start_worker().await;
    let recent_week = latest_week(&app, &players.recent, "recent's week").await;
    assert_eq!(recent_week["outcome"], "built", "{recent_week}");
    let scarce_week = latest_week(&app, &players.scarce, "scarce's week").await;
    assert_eq!(scarce_week["outcome"], "too_little", "{scarce_week}");
    assert_eq!(scarce_week["clip_count"], 1);
    assert!(scarce_week["montage_id"].is_null());
    let recent = only_montage(&app, &players.recent).await;
    assert_eq!(recent["montage_id"], recent_week["montage_id"]);
    assert_eq!(recent["style"], "chill", "the style recent's jobs use");
    let job = app
        .user_json(
            &format!("/api/v2/jobs/{}", recent["job_id"].as_str().unwrap()),
            &players.recent,
        )
        .await;
    assert_eq!(
        job["data"]["options"]["music_id"], "calm_acoustic_1",
        "{job}"
    );
    assert_eq!(recent["clip_count"], 2);

    // Catch-up: the week before last is built for `missed` (last week, they did nothing:
    // no row).
    let missed_week = latest_week(&app, &players.missed, "missed's week").await;
    assert_eq!(missed_week["outcome"], "built", "{missed_week}");
    let missed = only_montage(&app, &players.missed).await;
    assert_eq!(
        missed["week_end"], recent["week_start"],
        "the montage covers the week before the latest"
    );

    // Once per user and week; nothing for too little material, or for a player who said no.
    assert!(mine(&app, &players.scarce).await.is_empty());
    let scarce_jobs = app.user_json("/api/v2/jobs", &players.scarce).await;
    assert_eq!(scarce_jobs["data"]["total"], 1, "{scarce_jobs}");
    assert!(weekly_settings(&app, &players.off).await["latest_week"].is_null());
    // The week's job is admitted by the rule any job is: past the allowance, none is made.
    let unconfirmed = latest_week(&app, &players.unconfirmed, "unconfirmed's week").await;
    assert_eq!(unconfirmed["outcome"], "over_quota", "{unconfirmed}");
    assert_eq!(unconfirmed["clip_count"], 2);
    assert!(unconfirmed["montage_id"].is_null());
    let their_jobs = app.user_json("/api/v2/jobs", &players.unconfirmed).await;
    assert_eq!(their_jobs["data"]["total"], 1, "{their_jobs}");
    let address = app.metrics_address.unwrap();
    let metrics = Scrape::parse(scrape(address, None).await.unwrap().text().await.unwrap());
    let built = metrics.value("montage_weekly_montages_total", &[("outcome", "built")]);
    assert_eq!(built, Some(2.0), "two workers, two montages");
    let refused = metrics.value(
        "montage_weekly_montages_total",
        &[("outcome", "over_quota")],
    );
    assert_eq!(refused, Some(1.0));
    // The weekly jobs read the stored analyses: nine clips measured by the first jobs,
    // four taken from the library by the two weekly ones.
    assert_eq!(analyses(&app).await, (9.0, 4.0));

    visibility_and_featuring(&app, &players, &recent, &missed).await;
}

/// The user's one weekly montage, once its job succeeded.
async fn only_montage(app: &TestApp, user: &TestUser) -> Value {
    let listed = mine(app, user).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let job_id = listed[0]["job_id"].as_str().unwrap();
    let job = app.wait_for_job_end(user, job_id, RENDER).await;
    assert_eq!(job["status"], "SUCCESS", "{job}");
    mine(app, user).await.remove(0)
}

/// New montages are private; the owner publishes; admins feature public ones only.
async fn visibility_and_featuring(
    app: &TestApp,
    players: &Players,
    public: &Value,
    private: &Value,
) {
    let (public_id, private_id) = (
        public["montage_id"].as_str().unwrap(),
        private["montage_id"].as_str().unwrap(),
    );
    let (owner, other) = (&players.recent, &players.missed);
    assert!(public_list(app, "").await.is_empty(), "both are private");
    let private_path = format!("/api/v2/weekly-montages/{private_id}");
    let anonymous = call(app, Method::GET, &private_path, None, None).await;
    assert_error(anonymous, 404, "RESOURCE_NOT_FOUND").await;
    data(call(app, Method::GET, &private_path, Some(other), None).await).await;

    let public_path = format!("/api/v2/weekly-montages/{public_id}");
    let publish = json!({"visibility": "public"});
    let not_theirs = call(
        app,
        Method::PATCH,
        &public_path,
        Some(other),
        Some(publish.clone()),
    )
    .await;
    assert_error(not_theirs, 404, "RESOURCE_NOT_FOUND").await;
    data(call(app, Method::PATCH, &public_path, Some(owner), Some(publish)).await).await;
    let listed = public_list(app, "").await;
    assert_eq!(listed.len(), 1, "the public one only");
    assert_eq!(listed[0]["montage_id"], public_id);
    let video = listed[0]["outputs"][0]["video_url"].as_str().unwrap();
    let video = url::Url::parse(video).unwrap();
    let format = listed[0]["outputs"][0]["format"].as_str().unwrap();
    let stable = format!("/api/v2/weekly-montages/{public_id}/files/{format}/video");
    assert_eq!(video.path(), stable, "a stable address, no storage key");
    let redirect = app.client.get(app.url(&stable)).send().await.unwrap();
    assert_eq!(redirect.status(), 302);
    let presigned = redirect.headers()["location"].to_str().unwrap();
    let played = app.client.get(presigned).send().await.unwrap();
    assert_eq!(played.status(), 200, "anyone can play a public montage");
    let private = format!("/api/v2/weekly-montages/{private_id}/files/{format}/video");
    let hidden = app.client.get(app.url(&private)).send().await.unwrap();
    assert_error(hidden, 404, "RESOURCE_NOT_FOUND").await;
    assert!(public_list(app, "?featured_only=true").await.is_empty());

    let feature = |id: &str| format!("/api/v2/admin/weekly-montages/{id}/featured");
    let yes = || Some(json!({"featured": true}));
    let by_owner = call(app, Method::PUT, &feature(public_id), Some(owner), yes()).await;
    assert_error(by_owner, 403, "INSUFFICIENT_PERMISSIONS").await;
    assert!(grant_admin(app, &other.email).status.success());
    let private_one = call(app, Method::PUT, &feature(private_id), Some(other), yes()).await;
    assert_error(private_one, 409, "CONFLICT").await;
    data(call(app, Method::PUT, &feature(public_id), Some(other), yes()).await).await;
    let featured = public_list(app, "?featured_only=true").await;
    assert_eq!(featured.len(), 1);
    assert_eq!(featured[0]["featured"], true);
}

async fn page(app: &TestApp, path: &str, agent: &str) -> Response {
    visit(app, path, agent, "198.51.100.1", None).await
}

/// A visit from `address` (as the trusted proxy reports it) with `agent`, signed in as
/// `user` if given.
async fn visit(
    app: &TestApp,
    path: &str,
    agent: &str,
    address: &str,
    user: Option<&TestUser>,
) -> Response {
    let mut request = app.client.get(app.url(path)).header("user-agent", agent);
    request = request.header("x-forwarded-for", address);
    if let Some(user) = user {
        request = request.bearer_auth(&user.access_token);
    }
    request.send().await.unwrap()
}

fn chrome(version: u32) -> String {
    format!("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{version}.0.0.0 Safari/537.36")
}

async fn stats(app: &TestApp, user: &TestUser) -> Value {
    app.user_json("/api/v2/analytics/user/stats", user).await["data"].clone()
}

async fn recommendations(app: &TestApp, user: &TestUser, top_n: u32) -> Value {
    let path = format!("/api/v2/users/me/recommendations?top_n={top_n}");
    app.user_json(&path, user).await["data"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_montages_play_count_each_viewer_once_a_day_and_revoke() {
    let mut app = spawn_app_with(&[
        ("PUBLIC_BASE_URL", "https://montage.example"),
        ("TRUSTED_PROXY_HEADER", "x-forwarded-for"),
    ])
    .await;
    let (user, stranger) = (app.user().await, app.user().await);
    let fresh = recommendations(&app, &user, 5).await;
    assert_eq!(fresh["styles"].as_array().unwrap().len(), 4, "{fresh}");
    assert_eq!(fresh["styles"][0]["style"], "gaming");
    let reason = fresh["styles"][0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("A good start"), "{reason}");
    assert_eq!(fresh["styles"][0]["settings"]["target_duration"], 60);
    assert_eq!(fresh["featured_montages"], json!([]));

    let files = [clip(media::portrait_no_audio())];
    // A title that must be escaped to stay text on the page.
    let fields = [
        ("target_duration", "10"),
        ("style", "chill"),
        ("formats", "landscape,portrait"),
        ("title", "<b>Ace</b> & \"1v4\""),
    ];
    let job_id = create(&app, &user, &files, &fields).await;
    let share = format!("/api/v2/jobs/{job_id}/share");
    let early = call(&app, Method::POST, &share, Some(&user), None).await;
    assert_error(early, 409, "JOB_NOT_READY").await;
    app.start_worker().await;
    let job = app.wait_for_job_end(&user, &job_id, RENDER).await;
    assert_eq!(job["status"], "SUCCESS", "{job}");

    let first = call(&app, Method::POST, &share, Some(&user), None).await;
    assert_eq!(first.status(), 201);
    let token = data(first).await["token"].as_str().unwrap().to_owned();
    let again = call(&app, Method::POST, &share, Some(&user), None).await;
    assert_eq!(again.status(), 200);
    let link = data(again).await;
    assert_eq!(link["token"], token.as_str());
    assert_eq!(link["url"], format!("https://montage.example/s/{token}"));
    let theirs = call(&app, Method::POST, &share, Some(&stranger), None).await;
    assert_error(theirs, 404, "RESOURCE_NOT_FOUND").await;

    the_page_plays_and_unfurls(&app, &token).await;
    views_count_once_per_viewer_and_day(&app, &user, &stranger, &token, &job_id).await;
    let numbers = stats(&app, &user).await;
    assert_eq!(numbers["jobs"]["SUCCESS"], 1, "{numbers}");
    assert_eq!(numbers["jobs"]["FAILED"], 0);
    let seconds = job["outputs"][0]["duration"].as_f64().unwrap();
    let minutes = numbers["minutes_rendered"].as_f64().unwrap();
    assert!(
        (minutes - seconds / 60.0).abs() < 0.01,
        "{minutes} for {seconds} s"
    );
    assert_eq!(numbers["posts"], json!({}));
    assert!(numbers["storage"]["used_bytes"].as_u64().unwrap() > 0);
    assert_eq!(numbers["plan"]["id"], "free");
    assert_eq!(numbers["plan"]["usage"]["open_jobs"], 0);
    interests_and_recommendations(&app, &user).await;

    // Revoked: the page and its files are gone.
    let revoked = call(&app, Method::DELETE, &share, Some(&user), None).await;
    assert_eq!(revoked.status(), 204);
    let gone = page(&app, &format!("/s/{token}"), "Mozilla/5.0").await;
    assert_eq!(gone.status(), 404);
    assert!(gone.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(gone.text().await.unwrap().contains("no longer shared"));
    let video = page(&app, &format!("/s/{token}/video"), "x").await;
    assert_error(video, 404, "RESOURCE_NOT_FOUND").await;
    let twice = call(&app, Method::DELETE, &share, Some(&user), None).await;
    assert_error(twice, 404, "RESOURCE_NOT_FOUND").await;
    assert_eq!(page(&app, "/s/not-a-token", "x").await.status(), 404);
}

/// The share page plays the montage and carries the tags chat apps unfurl.
async fn the_page_plays_and_unfurls(app: &TestApp, token: &str) {
    let shared = page(app, &format!("/s/{token}"), &chrome(120)).await;
    assert_eq!(shared.status(), 200);
    let kind = shared.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(kind.starts_with("text/html"), "{kind}");
    let html = shared.text().await.unwrap();
    let base = format!("https://montage.example/s/{token}");
    for tag in [
        format!("<meta property=\"og:video\" content=\"{base}/video\">"),
        format!("<meta property=\"og:image\" content=\"{base}/poster\">"),
        format!("<meta property=\"og:url\" content=\"{base}\">"),
        "<meta property=\"og:type\" content=\"video.other\">".to_owned(),
        "<meta property=\"og:video:type\" content=\"video/mp4\">".to_owned(),
        // The montage's own title, escaped, names the page, its card and its heading.
        "<title>&lt;b&gt;Ace&lt;/b&gt; &amp; &quot;1v4&quot;</title>".to_owned(),
        "<meta property=\"og:title\" content=\"&lt;b&gt;Ace&lt;/b&gt; &amp; &quot;1v4&quot;\">"
            .to_owned(),
        "<main>".to_owned(),
        "<h1>&lt;b&gt;Ace&lt;/b&gt; &amp; &quot;1v4&quot;</h1>".to_owned(),
    ] {
        assert!(html.contains(&tag), "{tag} missing from {html}");
    }
    assert!(!html.contains("<b>Ace"), "the title stays text: {html}");
    assert!(!html.contains("<script"), "no script: {html}");
    assert!(
        html.contains("1 view"),
        "this visit is counted and shown: {html}"
    );
    assert!(
        html.contains("<a class=\"cta\" href=\"/\">Make your own montage</a>"),
        "{html}"
    );
    // Both cuts, each with its poster, each shown on screens of its orientation.
    let page_base = format!("/s/{token}");
    for format in ["landscape", "portrait"] {
        let video = html
            .split(&format!("<video class=\"{format}\""))
            .nth(1)
            .unwrap_or_else(|| panic!("a {format} player in {html}"));
        let video = video.split('>').next().unwrap();
        assert!(
            video.contains(&format!("src=\"{page_base}/video?format={format}\"")),
            "a stable address of ours: {video}"
        );
        assert!(
            video.contains(&format!("poster=\"{page_base}/poster?format={format}\"")),
            "{video}"
        );
        let hidden = if format == "landscape" {
            "portrait"
        } else {
            "landscape"
        };
        assert!(
            html.contains(&format!(
                "@media (orientation:{hidden}){{video.{format}{{display:none}}}}"
            )),
            "{html}"
        );
    }
    assert!(
        !html.contains("jobs/"),
        "no storage key on the page: {html}"
    );
    for file in ["video", "poster"] {
        for query in ["", "?format=landscape", "?format=portrait"] {
            let redirect = page(app, &format!("{page_base}/{file}{query}"), "x").await;
            assert_eq!(redirect.status(), 302, "{file}{query}");
            let presigned = redirect.headers()["location"].to_str().unwrap();
            let fetched = app.client.get(presigned).send().await.unwrap();
            assert_eq!(fetched.status(), 200, "{file}{query} plays");
            assert!(fetched.bytes().await.unwrap().len() > 1000);
        }
    }
    let unknown = page(app, &format!("{page_base}/video?format=square"), "x").await;
    assert_error(unknown, 422, "VALIDATION_ERROR").await;
}

/// Share page visits (not unfurlers) and the owner's client's reports, once per viewer.
async fn views_count_once_per_viewer_and_day(
    app: &TestApp,
    user: &TestUser,
    stranger: &TestUser,
    token: &str,
    job_id: &str,
) {
    let path = format!("/s/{token}");
    // One address rotating its browser's version: the first viewer, again.
    for version in 100..120 {
        assert_eq!(page(app, &path, &chrome(version)).await.status(), 200);
    }
    let cubot = "Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36";
    let visits = [
        (cubot, "198.51.100.2", None),
        ("WhatsApp/2.23.20.0 A", "198.51.100.3", None),
        ("Slackbot-LinkExpanding 1.0", "198.51.100.3", None),
        // The owner, signed in, watching their own montage.
        (cubot, "198.51.100.4", Some(user)),
    ];
    for (agent, address, signed_in) in visits {
        let seen = visit(app, &path, agent, address, signed_in).await;
        assert_eq!(seen.status(), 200);
    }
    // The owner's browser that asked for the link, signed out on the page.
    let share = format!("/api/v2/jobs/{job_id}/share");
    let asked = call(app, Method::POST, &share, Some(user), None).await;
    let mark = asked.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        mark.contains(&format!("Path=/s/{token}")) && mark.contains("HttpOnly"),
        "{mark}"
    );
    let request = app.client.get(app.url(&path)).header("user-agent", cubot);
    let request = request.header("x-forwarded-for", "198.51.100.5");
    let owners = request.header("cookie", mark.split(';').next().unwrap());
    assert_eq!(owners.send().await.unwrap().status(), 200);
    let track = format!("/api/v2/analytics/track-view/{job_id}");
    let install = || Some(json!({"viewer_id": "install-1"}));
    let counted = data(call(app, Method::POST, &track, Some(user), install()).await).await;
    assert_eq!(counted["counted"], true);
    let repeated = data(call(app, Method::POST, &track, Some(user), install()).await).await;
    assert_eq!(repeated["counted"], false);
    let theirs = call(app, Method::POST, &track, Some(stranger), None).await;
    assert_error(theirs, 404, "RESOURCE_NOT_FOUND").await;
    let empty = call(
        app,
        Method::POST,
        &track,
        Some(user),
        Some(json!({"viewer_id": ""})),
    )
    .await;
    assert_error(empty, 422, "VALIDATION_ERROR").await;

    let views = stats(app, user).await["views"].clone();
    assert_eq!(
        views["total"], 3,
        "two visitors (a phone named CUBOT) and one install: {views}"
    );
    assert_eq!(views["last_7_days"], 3);
    assert_eq!(views["montages"][0]["job_id"], job_id);
    assert_eq!(views["montages"][0]["last_30_days"], 3);
    assert_eq!(stats(app, stranger).await["views"]["total"], 0);
}

/// An active player's recommendations follow their views and interests.
async fn interests_and_recommendations(app: &TestApp, user: &TestUser) {
    let path = "/api/v2/users/me/interests";
    let set = |interests: Value| {
        call(
            app,
            Method::POST,
            path,
            Some(user),
            Some(json!({"interests": interests})),
        )
    };
    assert_error(set(json!(["<script>"])).await, 422, "VALIDATION_ERROR").await;
    let many: Vec<String> = (0..21).map(|i| format!("game {i}")).collect();
    assert_error(set(json!(many)).await, 422, "VALIDATION_ERROR").await;
    let saved = data(set(json!(["Valorant", "cinematic", "valorant"])).await).await;
    assert_eq!(saved["games"], json!(["valorant"]));
    assert_eq!(saved["styles"], json!(["cinematic"]));
    assert_eq!(app.user_json(path, user).await["data"], saved);

    let zero = call(
        app,
        Method::GET,
        "/api/v2/users/me/recommendations?top_n=0",
        Some(user),
        None,
    )
    .await;
    assert_error(zero, 422, "VALIDATION_ERROR").await;
    let picks = recommendations(app, user, 2).await;
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
    assert_eq!(recommendations(app, user, 2).await, picks, "deterministic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weekly_montage_routes_refuse_bad_input() {
    let app = spawn_app().await;
    let user = app.user().await;
    let anonymous = call(
        &app,
        Method::GET,
        "/api/v2/weekly-montages?mine=true",
        None,
        None,
    )
    .await;
    assert_error(anonymous, 401, "AUTHENTICATION_REQUIRED").await;
    let unknown = format!("/api/v2/weekly-montages/{}", uuid::Uuid::new_v4());
    let missing = call(&app, Method::GET, &unknown, None, None).await;
    assert_error(missing, 404, "RESOURCE_NOT_FOUND").await;
    let everyone = Some(json!({"visibility": "everyone"}));
    let patch = call(&app, Method::PATCH, &unknown, Some(&user), everyone).await;
    assert_error(patch, 422, "VALIDATION_ERROR").await;
    let settings = weekly_settings(&app, &user).await;
    assert_eq!(
        settings,
        json!({"enabled": true, "style": null, "music_id": null, "latest_week": null})
    );
}
