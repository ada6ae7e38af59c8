//! The web app in a real headless Chromium (`api/tests/browser/app_flow.py`, Playwright for
//! Python driving Debian's `chromium`; `scripts/test` installs both and exports
//! `BROWSER_PYTHON` and `CHROMIUM`). Screenshots and downloads land in
//! `target/browser-artifacts`.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use std::time::Duration;

use chrono::{Datelike, Timelike, Utc};
use serde_json::json;
use tokio::sync::mpsc;

use crate::admin::grant_admin;
use crate::helpers::{eventually, spawn_app_with, TestApp};
use crate::metrics::{scrape, Scrape};
use testkit::media;

fn browser_python() -> String {
    std::env::var("BROWSER_PYTHON").expect(
        "BROWSER_PYTHON names the Python with Playwright: run scripts/test, which installs it",
    )
}

/// The generated clips scripts/lib.sh makes, from which this test's worker renders the
/// styles' samples.
fn sample_clips() -> String {
    std::env::var("SAMPLE_CLIPS_DIR").expect(
        "SAMPLE_CLIPS_DIR names the generated sample clips: run scripts/test, which makes them",
    )
}

fn workspace_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_signs_up_uploads_watches_live_plays_and_downloads_in_a_browser() {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let scratch = std::env::temp_dir().join(format!("montage-browser-{run}"));
    let mail = scratch.join("mail");
    std::fs::create_dir_all(&mail).unwrap();
    // Jobs wait for a confirmed address: the flow has to go through the mailed link.
    let mut app = spawn_app_with(&[
        ("MAIL_DIR", mail.to_str().unwrap()),
        ("UNVERIFIED_JOB_ALLOWANCE", "0"),
        ("STYLE_SAMPLE_CLIPS", &sample_clips()),
        // Only the worker `weekly_montage_made` starts makes weekly montages.
        ("WEEKLY_CHECK_SECS", "0"),
    ])
    .await;
    let broken = scratch.join("broken.mp4");
    std::fs::write(&broken, media::undecodable_mp4()).unwrap();
    let artifacts = workspace_dir().join("../target/browser-artifacts");

    let mut child = Command::new(browser_python())
        .arg(workspace_dir().join("tests/browser/app_flow.py"))
        .arg(&app.address)
        .arg(&mail)
        .arg(&artifacts)
        .arg(media::portrait_no_audio())
        .arg(media::rotated_small())
        .arg(&broken)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the browser test starts");
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, mut said) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let mut passed = false;
    while let Some(line) = said.recv().await {
        match line.as_str() {
            "start-worker" => app.start_worker().await,
            "weekly-run" => weekly_montage_made(&mut app).await,
            "feature" => feature_the_public_montage(&app).await,
            "browser flow passed" => {
                passed = true;
                continue;
            }
            _ => continue,
        }
        writeln!(stdin, "go").unwrap();
    }
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(
        status.success() && passed,
        "the browser flow failed: {status}"
    );
    let _ = std::fs::remove_dir_all(&scratch);
}

/// The player's clips were made last week, and a worker that makes weekly montages starts
/// now: the week's montage is made from them. Answers once it is.
async fn weekly_montage_made(app: &mut TestApp) {
    app.execute_sql("UPDATE clips SET created_at = now() - interval '2 days'".into())
        .await;
    let mut weekly = app.config.clone();
    let now = Utc::now();
    // The run is due at this very hour: the latest week ended within the hour.
    (weekly.showcase.weekday, weekly.showcase.hour) = (now.weekday(), now.hour());
    weekly.showcase.check_every = Some(Duration::from_secs(1));
    app.start_worker_with(weekly).await;
    let metrics = app.metrics_address.expect("the test app serves metrics");
    eventually(Duration::from_secs(30), "the weekly montage", || async {
        let scraped = Scrape::parse(scrape(metrics, None).await.ok()?.text().await.ok()?);
        scraped.value("montage_weekly_montages_total", &[("outcome", "built")])
    })
    .await;
}

/// An admin features the montage the player published.
async fn feature_the_public_montage(app: &TestApp) {
    let admin = app.user().await;
    assert!(grant_admin(app, &admin.email).status.success());
    let public = app.public_json("/api/v2/weekly-montages").await;
    let id = public["data"]["montages"][0]["montage_id"]
        .as_str()
        .unwrap_or_else(|| panic!("the player published their montage: {public}"));
    let featured = app
        .client
        .put(app.url(&format!("/api/v2/admin/weekly-montages/{id}/featured")))
        .bearer_auth(&admin.access_token)
        .json(&json!({"featured": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(featured.status(), 200);
}

/// The modules each app file imports (`from './x.js'`).
fn imports(script: &str) -> Vec<String> {
    script
        .split("from './")
        .skip(1)
        .filter_map(|rest| rest.split_once('\'').map(|(name, _)| name.to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_is_served_whole_with_validators_a_strict_policy_and_no_rate_limit() {
    // Two requests a minute: the app's files must not count against the limit.
    let app = spawn_app_with(&[("RATE_LIMIT_GENERAL", "2")]).await;
    let shell = app.client.get(app.url("/")).send().await.unwrap();
    assert_eq!(shell.status(), 200);
    let headers = shell.headers().clone();
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(headers["cache-control"], "no-cache");
    assert!(!headers.contains_key("x-ratelimit-limit"));
    let policy = headers["content-security-policy"].to_str().unwrap();
    let storage = url::Url::parse(&app.config.s3.endpoint).unwrap().origin();
    for directive in [
        "script-src 'self';".to_owned(),
        "style-src 'self';".to_owned(),
        format!("connect-src 'self' {};", storage.ascii_serialization()),
        "frame-ancestors 'none'".to_owned(),
    ] {
        assert!(policy.contains(&directive), "{directive} in {policy}");
    }
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let html = shell.text().await.unwrap();

    let unchanged = app
        .client
        .get(app.url("/"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), 304);
    assert!(unchanged.bytes().await.unwrap().is_empty());
    for page in [
        "/verify-email?token=abc",
        "/billing/success?session_id=cs_1",
    ] {
        let landing = app.client.get(app.url(page)).send().await.unwrap();
        assert_eq!(landing.status(), 200, "{page}");
        assert_eq!(
            landing.text().await.unwrap(),
            html,
            "{page}: the same shell"
        );
    }

    // Every file the shell names and every module they import is served.
    assert!(html.contains("/app/main.js") && html.contains("/app/app.css"));
    let mut wanted: Vec<String> = ["app.css", "icon.svg", "main.js"].map(String::from).into();
    let mut served = Vec::new();
    while let Some(name) = wanted.pop() {
        if served.contains(&name) {
            continue;
        }
        let file = app
            .client
            .get(app.url(&format!("/app/{name}")))
            .send()
            .await
            .unwrap();
        assert_eq!(file.status(), 200, "{name}");
        assert!(!file.headers().contains_key("x-ratelimit-limit"), "{name}");
        let body = file.text().await.unwrap();
        if name.ends_with(".js") {
            wanted.extend(imports(&body));
        }
        served.push(name);
    }
    assert!(served.len() >= 12, "the shell and its modules: {served:?}");

    let missing = app
        .client
        .get(app.url("/app/secrets.env"))
        .send()
        .await
        .unwrap();
    crate::helpers::assert_error(missing, 404, "RESOURCE_NOT_FOUND").await;
    let traversal = app
        .client
        .get(app.url("/app/..%2FCargo.toml"))
        .send()
        .await
        .unwrap();
    assert_eq!(traversal.status(), 404);
}
