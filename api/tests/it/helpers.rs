//! `spawn_app`: the real API on port 0 with a fresh database, bucket and queue namespace,
//! optionally with a real worker in the same process.

use std::{collections::HashMap, net::TcpListener, time::Duration};

use api::state::AppState;
use db::MIGRATIONS;
use diesel::{pg::PgConnection, sql_query, Connection, RunQueryDsl};
use diesel_migrations::MigrationHarness;
use serde_json::{json, Value};
use settings::Config;
use storage::Storage;
use tokio::sync::oneshot;
use uuid::Uuid;

const TEMPLATE_DB: &str = "montage_test_template";

fn admin_url() -> String {
    std::env::var("TEST_ADMIN_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://montage@127.0.0.1:5433/postgres".into())
}

fn database_url(name: &str) -> String {
    let admin = admin_url();
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(base, _)| base);
    format!("{base}/{name}")
}

/// Creates and migrates the template (tests run in parallel processes, so under an advisory
/// lock), then clones it: much faster than migrating every test database.
fn create_database(name: &str) {
    let mut admin =
        PgConnection::establish(&admin_url()).expect("PostgreSQL is running (use scripts/test)");
    sql_query("SELECT pg_advisory_lock(7294)")
        .execute(&mut admin)
        .unwrap();
    let exists: i64 = sql_query(format!(
        "SELECT 1 AS one FROM pg_database WHERE datname = '{TEMPLATE_DB}'"
    ))
    .execute(&mut admin)
    .unwrap() as i64;
    if exists == 0 {
        sql_query(format!("CREATE DATABASE {TEMPLATE_DB}"))
            .execute(&mut admin)
            .unwrap();
    }
    // Also brings a template left by an older checkout up to date. The connection must be
    // closed before the template is cloned.
    PgConnection::establish(&database_url(TEMPLATE_DB))
        .unwrap()
        .run_pending_migrations(MIGRATIONS)
        .expect("migrations apply");
    sql_query(format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}"))
        .execute(&mut admin)
        .unwrap();
    sql_query("SELECT pg_advisory_unlock(7294)")
        .execute(&mut admin)
        .unwrap();
}

fn drop_database(name: &str) {
    if let Ok(mut admin) = PgConnection::establish(&admin_url()) {
        let _ =
            sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin);
    }
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub config: Config,
    pub storage: Storage,
    /// The settings the app runs with, as environment variables, for worker processes.
    pub settings: HashMap<String, String>,
    /// Where the API serves `/metrics`.
    pub metrics_address: Option<std::net::SocketAddr>,
    db_name: String,
    workers: Vec<(oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
}

pub struct TestUser {
    pub email: String,
    pub password: String,
    pub user_id: String,
    pub access_token: String,
    pub refresh_token: String,
}

/// Starts the app with default test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts the app with some settings overridden (same names as the environment variables).
pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    telemetry::logs::init("warn");
    let id = Uuid::new_v4().simple().to_string();
    let db_name = format!("montage_test_{id}");
    let blocking_name = db_name.clone();
    tokio::task::spawn_blocking(move || create_database(&blocking_name))
        .await
        .unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let mut settings: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), database_url(&db_name)),
        // Links the app gives out (share pages, weekly montages' files) lead back to it.
        ("PUBLIC_BASE_URL".into(), address.clone()),
        ("DATABASE_POOL_SIZE".into(), "4".into()),
        ("QUEUE_NAME".into(), format!("test-{id}")),
        ("S3_BUCKET".into(), format!("test-{}", &id[..20])),
        ("WORKER_HEARTBEAT_SECS".into(), "1".into()),
        ("X264_PRESET".into(), "ultrafast".into()),
        // Tests make many requests from one address; the rate-limit tests set real limits.
        ("RATE_LIMIT_AUTH".into(), "100000".into()),
        ("RATE_LIMIT_UPLOAD".into(), "100000".into()),
        ("RATE_LIMIT_GENERAL".into(), "100000".into()),
        // Most tests make jobs for accounts that never verify their address; the mail
        // tests set a real allowance, and an SMTP receiver.
        ("UNVERIFIED_JOB_ALLOWANCE".into(), "1000000".into()),
        (
            "MAIL_DIR".into(),
            std::env::temp_dir()
                .join("montage-test-mail")
                .display()
                .to_string(),
        ),
        // Each process's metrics on a port of its own choosing: tests run side by side.
        ("API_METRICS_BIND".into(), "127.0.0.1:0".into()),
        ("WORKER_METRICS_BIND".into(), "127.0.0.1:0".into()),
        // Callback receivers in tests listen on loopback; the SSRF test turns this off.
        ("CALLBACK_ALLOW_PRIVATE".into(), "true".into()),
        // In-process workers run media work in the worker binary, as deployed ones do.
        (
            "MEDIA_PROGRAM".into(),
            crate::processes::worker_binary().display().to_string(),
        ),
    ]);
    for (key, value) in overrides {
        settings.insert((*key).into(), (*value).into());
    }
    let environment = std::env::vars().filter(|(key, _)| !settings.contains_key(key));
    let config = Config::from_vars(settings.clone().into_iter().chain(environment))
        .expect("test configuration is valid");
    // Worker processes also need the S3 endpoint the app uses (it may be a private one).
    settings
        .entry("S3_ENDPOINT".into())
        .or_insert_with(|| config.s3.endpoint.clone());
    settings
        .entry("REDIS_URL".into())
        .or_insert_with(|| config.redis_url.clone());
    let state = AppState::build(config.clone()).await.expect("app starts");
    let storage = state.storage.clone();
    let metrics_address = state.metrics_address;
    let server = api::startup::run(listener, state).unwrap();
    tokio::spawn(server);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        address,
        client,
        config,
        storage,
        settings,
        metrics_address,
        db_name,
        workers: Vec::new(),
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        for (stop, _) in self.workers.drain(..) {
            let _ = stop.send(());
        }
        let name = self.db_name.clone();
        // Dropping needs its own thread: the async runtime may be shutting down.
        let _ = std::thread::spawn(move || drop_database(&name)).join();
    }
}

impl TestApp {
    /// Runs SQL on the app's database: for tests that move time (backdate rows).
    pub async fn execute_sql(&self, sql: String) -> usize {
        let url = self.settings["DATABASE_URL"].clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = PgConnection::establish(&url).unwrap();
            sql_query(sql).execute(&mut conn).unwrap()
        })
        .await
        .unwrap()
    }

    /// Stops the workers started so far.
    pub async fn stop_workers(&mut self) {
        for (stop, handle) in self.workers.drain(..) {
            let _ = stop.send(());
            let _ = handle.await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Runs a real worker (the library the worker binary runs) against this app's services.
    pub async fn start_worker(&mut self) {
        self.start_worker_with(self.config.clone()).await;
    }

    /// Runs a real worker with its own settings (say, without the weekly run).
    pub async fn start_worker_with(&mut self, config: Config) {
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            worker::run(config, async {
                let _ = stopped.await;
            })
            .await
            .expect("worker runs");
        });
        self.workers.push((stop, handle));
    }

    pub async fn register(&self, email: &str, password: &str) -> reqwest::Response {
        self.client
            .post(self.url("/api/auth/register"))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .unwrap()
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.client
            .post(self.url("/api/auth/login"))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .unwrap()
    }

    /// Posts `{"refresh_token": token}` to `/api/auth/{action}` (refresh or logout).
    pub async fn with_refresh_token(&self, action: &str, token: &str) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/api/auth/{action}")))
            .json(&json!({ "refresh_token": token }))
            .send()
            .await
            .unwrap()
    }

    /// Waits until Redis holds the first dispatch of `job_id` (the relay pushed it).
    pub async fn wait_until_queued(&self, job_id: &str) {
        let redis = engine::queue::connect(&self.config.redis_url, Duration::from_secs(5))
            .await
            .unwrap();
        let queue = engine::queue::JobQueue::new(redis, &self.config);
        let delivery = engine::queue::RenderJob {
            job_id: job_id.parse().unwrap(),
            dispatch: 1,
        };
        eventually(
            Duration::from_secs(10),
            "the job to reach the queue",
            || async { queue.holds(delivery).await.ok().filter(|held| *held) },
        )
        .await;
    }

    /// Registers and logs in a new user.
    pub async fn user(&self) -> TestUser {
        let email = format!(
            "player-{}@example.com",
            &Uuid::new_v4().simple().to_string()[..10]
        );
        let password = "SecurePassword123!".to_owned();
        assert_eq!(self.register(&email, &password).await.status(), 201);
        let body: Value = self.login(&email, &password).await.json().await.unwrap();
        TestUser {
            email,
            password,
            user_id: body["user_id"].as_str().unwrap().to_owned(),
            access_token: body["access_token"].as_str().unwrap().to_owned(),
            refresh_token: body["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    /// GETs a public route and parses its JSON body.
    pub async fn public_json(&self, path: &str) -> Value {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// GETs a route as `user` and parses its JSON body.
    pub async fn user_json(&self, path: &str, user: &TestUser) -> Value {
        self.get(path, user)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub fn get(&self, path: &str, user: &TestUser) -> reqwest::RequestBuilder {
        self.client
            .get(self.url(path))
            .bearer_auth(&user.access_token)
    }

    /// Posts a job form; `files` are (file name, bytes).
    pub async fn create_job(
        &self,
        user: &TestUser,
        files: &[(&str, Vec<u8>)],
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let parts: Vec<_> = files
            .iter()
            .map(|(name, bytes)| ("files", *name, bytes.clone()))
            .collect();
        self.create_job_with(user, fields, &parts).await
    }

    /// Creates a job from `fields` and then the file `parts` (field, file name, bytes).
    pub async fn create_job_with(
        &self,
        user: &TestUser,
        fields: &[(&str, &str)],
        parts: &[(&str, &str, Vec<u8>)],
    ) -> reqwest::Response {
        // The options first, as the API asks: they are checked before any file is stored.
        let mut form = reqwest::multipart::Form::new();
        for (name, value) in fields {
            form = form.text(name.to_string(), value.to_string());
        }
        for (field, name, bytes) in parts {
            form = form.part(
                field.to_string(),
                reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.to_string()),
            );
        }
        self.client
            .post(self.url("/api/v2/jobs"))
            .bearer_auth(&user.access_token)
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    /// Polls a job until it ends (SUCCESS, FAILED or CANCELLED) and returns its final view.
    pub async fn wait_for_job_end(
        &self,
        user: &TestUser,
        job_id: &str,
        timeout: Duration,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let body = self
                .user_json(&format!("/api/v2/jobs/{job_id}"), user)
                .await;
            let status = body["data"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if ["SUCCESS", "FAILED", "CANCELLED"].contains(&status.as_str()) {
                return body["data"].clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "job {job_id} did not finish in time: {body}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Asserts the error envelope and its code; returns the body.
pub async fn assert_error(response: reqwest::Response, status: u16, code: &str) -> Value {
    let actual = response.status().as_u16();
    let request_id = response.headers().get("x-request-id").cloned();
    let body: Value = response.json().await.expect("error bodies are JSON");
    assert_eq!(actual, status, "unexpected status; body: {body}");
    assert!(request_id.is_some(), "X-Request-ID on every response");
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(body["error"]["data"].is_object(), "{body}");
    body
}

/// Polls `check` until it yields a value, failing the test with `what` after `timeout`.
/// Tests wait on conditions with this, never on fixed sleeps.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
