//! `/metrics` of the API and of a worker process, scraped as Prometheus would.

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use reqwest::multipart::Part;

use crate::{
    control::clip,
    helpers::{eventually, spawn_app_with, TestApp, TestUser},
    processes::{free_port, spawn_worker},
};
use testkit::media;

const TOKEN: &str = "scrape-secret-for-tests";

/// One scrape: its text, and its samples parsed from it.
pub struct Scrape {
    text: String,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Scrape {
    pub fn parse(text: String) -> Self {
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
                let (name, labels) = match series.split_once('{') {
                    Some((name, rest)) => (name, rest.strip_suffix('}').expect("labels close")),
                    None => (series, ""),
                };
                let labels = labels
                    .split("\",")
                    .filter(|pair| !pair.is_empty())
                    .map(|pair| {
                        let (key, value) = pair.split_once("=\"").expect("key=\"value\"");
                        (key.to_owned(), value.trim_end_matches('"').to_owned())
                    })
                    .collect();
                (name.to_owned(), labels, value.parse().expect("a number"))
            })
            .collect();
        Self { text, samples }
    }

    /// The sum of the samples of `name` that carry all of `labels`; `None` when none does.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let matching: Vec<f64> = self
            .samples
            .iter()
            .filter(|(sample, have, _)| {
                sample == name
                    && labels
                        .iter()
                        .all(|(key, value)| have.get(*key).is_some_and(|v| v == value))
            })
            .map(|(_, _, value)| *value)
            .collect();
        (!matching.is_empty()).then(|| matching.iter().sum())
    }
}

pub async fn scrape(
    address: SocketAddr,
    token: Option<&str>,
) -> reqwest::Result<reqwest::Response> {
    let mut request = reqwest::Client::new().get(format!("http://{address}/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await
}

const REQUEST_ID: &str = "metrics-test-request-1";

/// Creates a job as `create` does, under a request id of the test's choosing.
async fn create_traced(app: &TestApp, user: &TestUser, clip: (&str, Vec<u8>)) -> String {
    let (name, bytes) = clip;
    let form = reqwest::multipart::Form::new()
        .text("target_duration", "10")
        .part("files", Part::bytes(bytes).file_name(name.to_owned()));
    let response = app
        .client
        .post(app.url("/api/v2/jobs"))
        .bearer_auth(&user.access_token)
        .header("x-request-id", REQUEST_ID)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: serde_json::Value = response.json().await.unwrap();
    body["data"]["job_id"].as_str().unwrap().to_owned()
}

async fn scraped(address: SocketAddr) -> Scrape {
    let response = scrape(address, Some(TOKEN)).await.unwrap();
    assert_eq!(response.status(), 200);
    Scrape::parse(response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_after_a_real_job_shows_its_requests_attempt_and_stages() {
    let app = spawn_app_with(&[("METRICS_TOKEN", TOKEN)]).await;
    let api_metrics = app.metrics_address.expect("the test app serves metrics");
    let worker_metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut settings = app.settings.clone();
    settings.insert("WORKER_METRICS_BIND".into(), worker_metrics.to_string());
    settings.insert("RUST_LOG".into(), "info".into());
    settings.insert("LOG_FORMAT".into(), "json".into());
    let worker_process = spawn_worker(&settings);
    eventually(Duration::from_secs(20), "the worker's metrics", || async {
        scrape(worker_metrics, Some(TOKEN)).await.ok()
    })
    .await;
    let before = scraped(worker_metrics).await;
    assert_eq!(before.value("montage_job_attempts_total", &[]), None);

    let user = app.user().await;
    let clip = clip(media::portrait_no_audio());
    let clip_bytes = clip.1.len() as f64;
    let job_id = create_traced(&app, &user, clip).await;
    let job = app
        .wait_for_job_end(&user, &job_id, Duration::from_secs(90))
        .await;
    assert_eq!(job["status"], "SUCCESS", "{job}");
    let succeeded_lines = worker_process.logged_lines("job succeeded");
    let line: serde_json::Value = serde_json::from_str(&succeeded_lines[0]).expect("JSON lines");
    assert_eq!(line["span"]["request_id"], REQUEST_ID, "{line}");
    assert_eq!(line["span"]["job_id"], job_id.as_str(), "{line}");

    let worker = scraped(worker_metrics).await;
    let one = Some(1.0);
    assert_eq!(worker.value("montage_job_attempts_total", &[]), one);
    let succeeded = [("outcome", "succeeded")];
    assert_eq!(
        worker.value("montage_job_attempt_ends_total", &succeeded),
        one
    );
    let waits = "montage_job_enqueue_to_start_seconds_count";
    assert_eq!(worker.value(waits, &[]), one);
    for stage in ["download", "probe", "analysis", "video", "upload", "total"] {
        let count = worker.value("montage_render_stage_seconds_count", &[("stage", stage)]);
        assert_eq!(count, one, "{stage}");
    }
    let video = worker.value("montage_render_stage_seconds_sum", &[("stage", "video")]);
    assert!(video.is_some_and(|seconds| seconds > 0.0), "{video:?}");
    assert_eq!(
        worker.value("montage_render_realtime_factor_count", &[]),
        one
    );
    let bytes = "montage_storage_transfer_bytes_total";
    assert_eq!(
        worker.value(bytes, &[("direction", "download")]),
        Some(clip_bytes)
    );
    assert!(worker
        .value(bytes, &[("direction", "upload")])
        .is_some_and(|sent| sent > 0.0));

    let api = scraped(api_metrics).await;
    let requests = "montage_http_request_duration_seconds_count";
    let created = [
        ("method", "POST"),
        ("route", "/api/v2/jobs"),
        ("status", "201"),
    ];
    assert_eq!(api.value(requests, &created), one);
    let polled = [("route", "/api/v2/jobs/{job_id}"), ("status", "200")];
    assert!(api
        .value(requests, &polled)
        .is_some_and(|polls| polls >= 1.0));
    assert!(
        !api.text.contains(&job_id),
        "routes are templates, never ids"
    );
    assert_eq!(
        api.value("montage_upload_bytes_total", &[]),
        Some(clip_bytes)
    );
    let database = [("dependency", "database")];
    assert_eq!(api.value("montage_dependency_up", &database), one);
    assert!(api
        .value("montage_jobs", &[("status", "PENDING")])
        .is_some());
    assert!(api.value("montage_queue_depth", &[]).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_only_to_the_token_and_only_on_their_own_port() {
    let app = spawn_app_with(&[("METRICS_TOKEN", TOKEN)]).await;
    let address = app.metrics_address.expect("the test app serves metrics");

    let anonymous = scrape(address, None).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["www-authenticate"], "Bearer");
    let wrong = scrape(address, Some("scrape-secret-for-test"))
        .await
        .unwrap();
    assert_eq!(
        wrong.status(),
        401,
        "a prefix of the token is not the token"
    );
    let allowed = scrape(address, Some(TOKEN)).await.unwrap();
    assert_eq!(allowed.status(), 200);
    assert!(allowed.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let body = allowed.text().await.unwrap();
    assert!(
        body.contains("# TYPE montage_dependency_up gauge"),
        "{body}"
    );

    let other = reqwest::get(format!("http://{address}/debug"))
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    let public = app.client.get(app.url("/metrics")).send().await.unwrap();
    crate::helpers::assert_error(public, 404, "RESOURCE_NOT_FOUND").await;
}
