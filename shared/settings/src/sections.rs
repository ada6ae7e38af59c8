//! One typed struct per section of the configuration. Each field names its environment
//! variable (envy matches names case-insensitively, after the section's prefix, if any) and
//! its unit; each section's `Default` holds the development defaults.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use serde::Deserialize;

use crate::{units, DEV_CALLBACK_SECRET, DEV_DATA_ENCRYPTION_KEY, DEV_JWT_SECRET, DEV_S3_SECRET};
use crate::{DEV_STRIPE_SECRET_KEY, DEV_STRIPE_WEBHOOK_SECRET};

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Connection-level limits of the API.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct HttpConfig {
    /// Open connections at most, over all of the server's threads.
    #[serde(rename = "http_max_connections")]
    pub max_connections: usize,
    /// A request's headers must arrive within this long.
    #[serde(rename = "http_header_timeout_ms", deserialize_with = "units::millis")]
    pub header_timeout: Duration,
    /// A request body that sends nothing for this long is dropped.
    #[serde(rename = "http_body_idle_secs", deserialize_with = "units::secs")]
    pub body_idle_timeout: Duration,
    /// WebSocket sessions per user and per API instance.
    #[serde(rename = "ws_max_per_user")]
    pub ws_per_user: usize,
    #[serde(rename = "ws_max_total")]
    pub ws_total: usize,
    /// Largest Stripe webhook body accepted.
    #[serde(rename = "webhook_max_kib", deserialize_with = "units::kib_usize")]
    pub webhook_max_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            header_timeout: Duration::from_millis(5000),
            body_idle_timeout: Duration::from_secs(15),
            ws_per_user: 5,
            ws_total: 5000,
            webhook_max_bytes: 256 * 1024,
        }
    }
}

/// Where and how a job's media work runs: a child process per job, capped. (`MEDIA_`)
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MediaConfig {
    /// The binary to run in media mode; by default the running worker itself.
    pub program: Option<PathBuf>,
    /// Address-space cap of the media process.
    #[serde(rename = "memory_mib", deserialize_with = "units::mib")]
    pub memory_bytes: u64,
    /// CPU-time cap of the media process (all its threads together).
    #[serde(rename = "cpu_secs")]
    pub cpu_seconds: u64,
    #[serde(skip)]
    pub clip_limits: ClipLimits,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            program: None,
            memory_bytes: 3072 * 1024 * 1024,
            cpu_seconds: 3600,
            clip_limits: ClipLimits::default(),
        }
    }
}

/// What a clip may be, checked against its header first and then against decoded frames,
/// since headers lie. (`MEDIA_`)
#[derive(Debug, Clone, Copy, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct ClipLimits {
    #[serde(alias = "max_clip_secs")]
    pub max_duration_seconds: f64,
    pub max_width: u32,
    pub max_height: u32,
    pub max_fps: f64,
    pub max_streams: usize,
}

impl Default for ClipLimits {
    fn default() -> Self {
        Self {
            max_duration_seconds: 900.0,
            max_width: 4096,
            max_height: 4096,
            max_fps: 240.0,
            max_streams: 16,
        }
    }
}

/// Job-ended webhooks to `callback_url`. (`CALLBACK_`)
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CallbackConfig {
    /// Signs every callback (`Montage-Signature`); receivers verify with it.
    pub signing_secret: String,
    pub max_attempts: i32,
    #[serde(rename = "retry_base_secs", deserialize_with = "units::secs")]
    pub retry_base: Duration,
    #[serde(rename = "timeout_secs", deserialize_with = "units::secs")]
    pub timeout: Duration,
    #[serde(rename = "poll_ms", deserialize_with = "units::millis")]
    pub poll_interval: Duration,
    /// Callbacks sent at once; one slow receiver holds up only its own slot.
    pub concurrency: usize,
    /// Lets callbacks reach private and loopback addresses (development only).
    pub allow_private: bool,
}

impl Default for CallbackConfig {
    fn default() -> Self {
        Self {
            signing_secret: DEV_CALLBACK_SECRET.into(),
            max_attempts: 8,
            retry_base: Duration::from_secs(10),
            timeout: Duration::from_secs(10),
            poll_interval: Duration::from_millis(1000),
            concurrency: 8,
            allow_private: false,
        }
    }
}

/// What one plan allows, and how Stripe sells it.
#[derive(Debug, Clone)]
pub struct PlanConfig {
    pub name: String,
    /// US dollars per month.
    pub price_usd: u32,
    /// The Stripe price a checkout sells; none for the free plan.
    pub stripe_price_id: Option<String>,
    pub max_duration: u32,
    /// Outputs carry the watermark whatever the job asked.
    pub forced_watermark: bool,
    /// Jobs go to the queue ahead of jobs of plans without priority.
    pub priority: bool,
    /// Jobs queued or running at once; more wait in PENDING.
    pub active_jobs: i32,
    /// Jobs waiting or running at most; a new one past that is refused (QUOTA_EXCEEDED).
    pub open_jobs: i64,
    /// Bytes of clips and outputs stored at most.
    pub storage_bytes: u64,
    /// How long outputs are kept after their job ends; `None` keeps them.
    pub output_retention: Option<Duration>,
    /// Montages a user may post to platforms in any 24 hours.
    pub posts_per_day: i64,
    /// Direct uploads started and not yet completed, cancelled or expired, at most.
    pub open_uploads: i64,
}

/// What the environment may change of a plan (`FREE_…`, `PRO_…`); the rest is the plan's.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PlanOverrides {
    plan_name: Option<String>,
    price_usd: Option<u32>,
    max_duration_secs: Option<u32>,
    active_jobs: Option<i32>,
    open_jobs: Option<i64>,
    storage_mib: Option<u64>,
    output_retention_secs: Option<u64>,
    posts_per_day: Option<i64>,
    open_uploads: Option<i64>,
}

impl PlanOverrides {
    pub(crate) fn apply(self, plan: PlanConfig) -> PlanConfig {
        PlanConfig {
            name: self.plan_name.unwrap_or(plan.name),
            price_usd: self.price_usd.unwrap_or(plan.price_usd),
            max_duration: self.max_duration_secs.unwrap_or(plan.max_duration),
            active_jobs: self.active_jobs.unwrap_or(plan.active_jobs),
            open_jobs: self.open_jobs.unwrap_or(plan.open_jobs),
            posts_per_day: self.posts_per_day.unwrap_or(plan.posts_per_day),
            open_uploads: self.open_uploads.unwrap_or(plan.open_uploads),
            storage_bytes: self
                .storage_mib
                .map_or(plan.storage_bytes, |mib| mib.saturating_mul(1024 * 1024)),
            output_retention: self
                .output_retention_secs
                .map_or(plan.output_retention, |s| {
                    (s > 0).then(|| Duration::from_secs(s))
                }),
            ..plan
        }
    }
}

impl PlanConfig {
    /// The free plan's defaults.
    pub fn free() -> Self {
        Self {
            name: "Cosmic Cadet".into(),
            price_usd: 0,
            stripe_price_id: None,
            max_duration: 60,
            forced_watermark: true,
            priority: false,
            active_jobs: 2,
            open_jobs: 10,
            storage_bytes: 2048 * 1024 * 1024,
            output_retention: Some(Duration::from_secs(7 * 86_400)),
            posts_per_day: 5,
            open_uploads: 10,
        }
    }

    /// The pro plan's defaults.
    pub fn pro() -> Self {
        Self {
            name: "Nebula Knight".into(),
            price_usd: 9,
            stripe_price_id: Some("price_nebula_knight_dev".into()),
            max_duration: 120,
            forced_watermark: false,
            priority: true,
            active_jobs: 4,
            open_jobs: 50,
            storage_bytes: 20 * 1024 * 1024 * 1024,
            output_retention: None,
            posts_per_day: 50,
            open_uploads: 50,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct BillingConfig {
    #[serde(skip)]
    pub free: PlanConfig,
    #[serde(skip)]
    pub pro: PlanConfig,
    pub stripe_secret_key: String,
    /// The Stripe API's address; tests point it at a local stand-in.
    pub stripe_api_base: String,
    pub stripe_webhook_secret: String,
    #[serde(rename = "stripe_timeout_secs", deserialize_with = "units::secs")]
    pub stripe_timeout: Duration,
    /// A signed webhook older than this is refused (replay protection).
    #[serde(
        rename = "stripe_webhook_tolerance_secs",
        deserialize_with = "units::secs"
    )]
    pub webhook_tolerance: Duration,
    pub checkout_success_url: String,
    pub checkout_cancel_url: String,
    /// Where Stripe's customer portal sends the user back to.
    pub billing_portal_return_url: String,
}

impl BillingConfig {
    /// The settings of plan `id`.
    pub fn plan(&self, id: domain::plans::PlanId) -> &PlanConfig {
        match id {
            domain::plans::PlanId::Free => &self.free,
            domain::plans::PlanId::Pro => &self.pro,
        }
    }
}

impl Default for BillingConfig {
    fn default() -> Self {
        Self {
            free: PlanConfig::free(),
            pro: PlanConfig::pro(),
            stripe_secret_key: DEV_STRIPE_SECRET_KEY.into(),
            stripe_api_base: "https://api.stripe.com/".into(),
            stripe_webhook_secret: DEV_STRIPE_WEBHOOK_SECRET.into(),
            stripe_timeout: Duration::from_secs(10),
            webhook_tolerance: Duration::from_secs(300),
            checkout_success_url:
                "http://127.0.0.1:8000/billing/success?session_id={CHECKOUT_SESSION_ID}".into(),
            checkout_cancel_url: "http://127.0.0.1:8000/billing/cancelled".into(),
            billing_portal_return_url: "http://127.0.0.1:8000/billing".into(),
        }
    }
}

/// How jobs move through the queue: leases, retries, the per-user cap, the relay.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct EngineConfig {
    /// A running job whose worker has not renewed its lease for this long is taken up again.
    #[serde(rename = "job_lease_secs", deserialize_with = "units::secs")]
    pub lease: Duration,
    /// Each worker process renews all its running jobs' leases together this often (one
    /// statement), which is also how soon a running job hears it was cancelled.
    #[serde(rename = "job_lease_renew_ms", deserialize_with = "units::millis")]
    pub lease_renewal: Duration,
    /// Attempts per job, counting the first; transient failures retry until then.
    #[serde(rename = "job_max_attempts")]
    pub max_attempts: i32,
    /// Backoff before retry n is `retry_base × 2^(n-1)`, capped at `retry_max`, with jitter.
    #[serde(rename = "retry_base_secs", deserialize_with = "units::secs")]
    pub retry_base: Duration,
    #[serde(rename = "retry_max_secs", deserialize_with = "units::secs")]
    pub retry_max: Duration,
    /// Jobs the relay keeps waiting in Redis at most; the rest wait in PostgreSQL, where
    /// priority orders them. Set it to at least the workers' total concurrency.
    pub queue_prefetch: i64,
    #[serde(rename = "relay_interval_ms", deserialize_with = "units::millis")]
    pub relay_interval: Duration,
    /// How often an idle worker looks for jobs when no push woke it (a push wakes it at
    /// once; this only covers notifications lost while Redis reconnects).
    #[serde(rename = "worker_poll_ms", deserialize_with = "units::millis")]
    pub poll_interval: Duration,
    #[serde(rename = "reconcile_secs", deserialize_with = "units::secs")]
    pub reconcile_interval: Duration,
    /// A dispatched job not in the queue after this long is dispatched again.
    #[serde(rename = "requeue_after_secs", deserialize_with = "units::secs")]
    pub requeue_after: Duration,
    /// On SIGTERM a worker lets running jobs finish for this long, then hands them back.
    #[serde(
        rename = "worker_shutdown_grace_secs",
        deserialize_with = "units::secs"
    )]
    pub shutdown_grace: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            lease_renewal: Duration::from_millis(1000),
            max_attempts: 3,
            retry_base: Duration::from_secs(10),
            retry_max: Duration::from_secs(600),
            queue_prefetch: 16,
            relay_interval: Duration::from_millis(1000),
            poll_interval: Duration::from_millis(1000),
            reconcile_interval: Duration::from_secs(5),
            requeue_after: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    pub jwt_secret: String,
    #[serde(rename = "jwt_issuer")]
    pub issuer: String,
    #[serde(rename = "jwt_audience")]
    pub audience: String,
    #[serde(rename = "access_token_ttl_secs", deserialize_with = "units::secs")]
    pub access_ttl: Duration,
    /// Lifetime of one refresh token (each refresh issues a new one)...
    #[serde(rename = "refresh_token_ttl_days", deserialize_with = "units::days")]
    pub refresh_ttl: Duration,
    /// ...and of a whole login session, however often it is refreshed.
    #[serde(rename = "session_max_age_secs", deserialize_with = "units::secs")]
    pub session_max_age: Duration,
    #[serde(skip)]
    pub login_throttle: LoginThrottleConfig,
    /// Password hashes (argon2id, 19 MiB each) computed at once; more wait briefly.
    pub hash_concurrency: usize,
    /// Requests that may wait for a hashing slot; past that they are refused at once.
    pub hash_queue: usize,
    /// How long a request waits for a hashing slot before a 503.
    #[serde(rename = "hash_wait_ms", deserialize_with = "units::millis")]
    pub hash_wait: Duration,
    /// Seals secrets at rest (TOTP secrets): 32 bytes in standard base64.
    pub data_encryption_key: String,
    /// The name authenticator apps show next to the account.
    pub mfa_issuer: String,
    /// How long the second login step may wait for its code.
    #[serde(rename = "mfa_token_ttl_secs", deserialize_with = "units::secs")]
    pub mfa_token_ttl: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwt_secret: DEV_JWT_SECRET.into(),
            issuer: "montage-api".into(),
            audience: "montage-clients".into(),
            access_ttl: Duration::from_secs(900),
            refresh_ttl: Duration::from_secs(30 * 86_400),
            session_max_age: Duration::from_secs(90 * 86_400),
            login_throttle: LoginThrottleConfig::default(),
            hash_concurrency: cores(),
            hash_queue: 4 * cores(),
            hash_wait: Duration::from_millis(2000),
            data_encryption_key: DEV_DATA_ENCRYPTION_KEY.into(),
            mfa_issuer: "Montage".into(),
            mfa_token_ttl: Duration::from_secs(300),
        }
    }
}

/// Growing delays after failed logins, per account and client address. (`LOGIN_`)
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default)]
pub struct LoginThrottleConfig {
    /// Failures allowed before delays start.
    pub free_failures: u32,
    /// Failures are forgotten this long after the last one; also the longest delay.
    #[serde(rename = "failure_window_secs", deserialize_with = "units::secs")]
    pub window: Duration,
    /// The first delay; each further failure doubles it.
    #[serde(rename = "delay_base_secs", deserialize_with = "units::secs")]
    pub base_delay: Duration,
}

impl Default for LoginThrottleConfig {
    fn default() -> Self {
        Self {
            free_failures: 5,
            window: Duration::from_secs(900),
            base_delay: Duration::from_secs(30),
        }
    }
}

/// Requests per window by class, counted in Redis across all API instances.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RateLimitConfig {
    #[serde(rename = "rate_limit_enabled")]
    pub enabled: bool,
    #[serde(rename = "rate_limit_window_secs", deserialize_with = "units::secs")]
    pub window: Duration,
    /// Register, login, refresh, logout: per client address.
    #[serde(rename = "rate_limit_auth")]
    pub auth: u32,
    /// Job creation: per user.
    #[serde(rename = "rate_limit_upload")]
    pub upload: u32,
    /// Everything else: per user when authenticated, else per client address.
    #[serde(rename = "rate_limit_general")]
    pub general: u32,
    /// Where a trusted reverse proxy puts the client's address (its last entry is used);
    /// without it the connection's peer address counts.
    #[serde(deserialize_with = "units::non_empty")]
    pub trusted_proxy_header: Option<String>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window: Duration::from_secs(60),
            auth: 10,
            upload: 5,
            general: 100,
            trusted_proxy_header: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct S3Config {
    #[serde(rename = "s3_endpoint")]
    pub endpoint: String,
    #[serde(rename = "s3_region")]
    pub region: String,
    #[serde(rename = "s3_bucket")]
    pub bucket: String,
    #[serde(rename = "s3_access_key")]
    pub access_key: String,
    #[serde(rename = "s3_secret_key")]
    pub secret_key: String,
    #[serde(rename = "presign_ttl_secs", deserialize_with = "units::secs")]
    pub presign_ttl: Duration,
}

impl Default for S3Config {
    fn default() -> Self {
        Self {
            endpoint: "http://127.0.0.1:9000".into(),
            region: "us-east-1".into(),
            bucket: "montage".into(),
            access_key: "montage-dev".into(),
            secret_key: DEV_S3_SECRET.into(),
            presign_ttl: Duration::from_secs(300),
        }
    }
}

/// What an upload may be.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Limits {
    #[serde(rename = "max_file_mib", deserialize_with = "units::mib")]
    pub max_file_bytes: u64,
    #[serde(rename = "max_upload_mib", deserialize_with = "units::mib")]
    pub max_upload_bytes: u64,
    pub max_files: usize,
    /// Size of the multipart parts an upload is stored in.
    #[serde(rename = "upload_part_mib", deserialize_with = "units::mib_usize")]
    pub upload_part_bytes: usize,
    pub upload_part_concurrency: usize,
    /// How long a direct upload may stay unfinished before it is aborted.
    #[serde(rename = "direct_upload_ttl_hours", deserialize_with = "units::hours")]
    pub direct_upload_ttl: Duration,
    /// Largest value of a user's application data, as JSON text.
    #[serde(
        rename = "user_data_max_value_kib",
        deserialize_with = "units::kib_usize"
    )]
    pub user_data_value_bytes: usize,
    /// Keys a user may hold, over all applications.
    #[serde(rename = "user_data_max_keys")]
    pub user_data_keys: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_file_bytes: 500 * 1024 * 1024,
            max_upload_bytes: 2048 * 1024 * 1024,
            max_files: 20,
            upload_part_bytes: 8 * 1024 * 1024,
            upload_part_concurrency: 2,
            direct_upload_ttl: Duration::from_secs(24 * 3600),
            user_data_value_bytes: 8 * 1024,
            user_data_keys: 100,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RenderConfig {
    pub x264_preset: String,
    /// 0 lets libx264 choose.
    pub encoder_threads: usize,
    pub worker_concurrency: usize,
    #[serde(rename = "worker_heartbeat_secs", deserialize_with = "units::secs")]
    pub heartbeat_interval: Duration,
    #[serde(rename = "worker_missed_heartbeats")]
    pub missed_heartbeats: usize,
    #[serde(rename = "worker_scratch_dir")]
    pub scratch_dir: PathBuf,
    /// How long uploaded clips are kept after their job ends.
    #[serde(rename = "input_retention_hours", deserialize_with = "units::hours")]
    pub input_retention: Duration,
    /// How often workers delete finished entries from the Redis queue (and expired clips).
    #[serde(rename = "queue_vacuum_secs", deserialize_with = "units::secs")]
    pub queue_vacuum_interval: Duration,
    /// How often an idle worker looks for library work: clips waiting for examination,
    /// account syncs to run.
    #[serde(rename = "library_poll_ms", deserialize_with = "units::millis")]
    pub library_poll: Duration,
    /// Longest a job may run (download to upload) before it fails with `RENDER_TIMEOUT`.
    #[serde(rename = "job_timeout_secs", deserialize_with = "units::secs")]
    pub job_timeout: Duration,
    /// The mark drawn on outputs of jobs with `watermark=true`.
    pub watermark_text: String,
    pub watermark_font: PathBuf,
    /// Where the styles' title typefaces are (`planning::styles`).
    pub font_dir: PathBuf,
    /// Generated clips (made by the scripts and the Dockerfile) from which workers render
    /// each style's sample once and keep it in storage; unset for no samples.
    pub style_sample_clips: Option<PathBuf>,
}

impl Default for RenderConfig {
    fn default() -> Self {
        Self {
            x264_preset: "veryfast".into(),
            encoder_threads: 0,
            worker_concurrency: cores().div_ceil(2),
            heartbeat_interval: Duration::from_secs(10),
            missed_heartbeats: 3,
            scratch_dir: std::env::temp_dir().join("montage-worker"),
            input_retention: Duration::from_secs(72 * 3600),
            queue_vacuum_interval: Duration::from_secs(300),
            library_poll: Duration::from_secs(1),
            job_timeout: Duration::from_secs(1800),
            watermark_text: "Montage".into(),
            watermark_font: "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf".into(),
            font_dir: "/usr/share/fonts/truetype/dejavu".into(),
            style_sample_clips: None,
        }
    }
}

/// Where each process serves Prometheus metrics: a listener of its own, apart from the
/// public port, and optionally a bearer token a scrape must send.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MetricsConfig {
    /// The API's metrics listener; `off` for none.
    #[serde(
        rename = "api_metrics_bind",
        deserialize_with = "units::listen_address"
    )]
    pub api_bind: Option<SocketAddr>,
    /// Each worker's metrics listener (give workers on one host different ports); `off`
    /// for none.
    #[serde(
        rename = "worker_metrics_bind",
        deserialize_with = "units::listen_address"
    )]
    pub worker_bind: Option<SocketAddr>,
    #[serde(rename = "metrics_token", deserialize_with = "units::non_empty")]
    pub token: Option<String>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            api_bind: Some(SocketAddr::from(([127, 0, 0, 1], 9464))),
            worker_bind: Some(SocketAddr::from(([127, 0, 0, 1], 9465))),
            token: None,
        }
    }
}

impl MetricsConfig {
    /// Whether a listener is reachable from other hosts: then a token must guard it.
    pub fn exposed(&self) -> bool {
        [self.api_bind, self.worker_bind]
            .into_iter()
            .flatten()
            .any(|address| !address.ip().is_loopback())
    }
}

/// Mail: where it goes, who it is from, and the links it carries.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MailConfig {
    /// The relay, e.g. `smtps://user:password@smtp.example.com` or
    /// `smtp://smtp.example.com:587?tls=required`; without one, each message is written to
    /// `dir` (development).
    #[serde(rename = "smtp_url", deserialize_with = "units::non_empty")]
    pub smtp_url: Option<String>,
    #[serde(rename = "mail_dir")]
    pub dir: PathBuf,
    #[serde(rename = "mail_from")]
    pub from: String,
    /// The web app's address: links in mails open its pages.
    #[serde(rename = "app_url")]
    pub app_url: String,
    #[serde(rename = "verify_email_ttl_hours", deserialize_with = "units::hours")]
    pub verify_ttl: Duration,
    #[serde(
        rename = "password_reset_ttl_mins",
        deserialize_with = "units::minutes"
    )]
    pub reset_ttl: Duration,
    /// Jobs an account may create before its email address is verified.
    #[serde(rename = "unverified_job_allowance")]
    pub unverified_jobs: i64,
    /// A new verification mail waits this long after the last one.
    #[serde(rename = "verify_email_resend_secs", deserialize_with = "units::secs")]
    pub resend_after: Duration,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            smtp_url: None,
            dir: ".data/mail".into(),
            from: "Montage <no-reply@montage.localhost>".into(),
            app_url: "http://127.0.0.1:8000".into(),
            verify_ttl: Duration::from_secs(48 * 3600),
            reset_ttl: Duration::from_secs(30 * 60),
            unverified_jobs: 3,
            resend_after: Duration::from_secs(60),
        }
    }
}

/// One platform's OAuth 2.0 client: its credentials, the scopes it asks for, and where the
/// platform's endpoints are (the real ones by default; tests point them at stand-ins).
#[derive(Debug, Clone)]
pub struct OAuthClientConfig {
    /// Empty: the platform is not configured, and not offered to users.
    pub client_id: String,
    pub client_secret: String,
    pub authorize_url: String,
    pub token_url: String,
    /// Where a token is revoked when its link is removed, if the platform has such a place.
    pub revoke_url: Option<String>,
    /// The platform's API (Helix for Twitch, the Data API for YouTube).
    pub api_url: String,
    pub scopes: Vec<String>,
    /// How the platform names the client's id in requests (TikTok says `client_key`).
    pub client_id_field: &'static str,
    /// What joins the scopes in the authorisation URL (TikTok wants commas).
    pub scope_separator: &'static str,
    /// The platform's own parameters that make its consent screen show every time (and,
    /// for Google, hand out a refresh token).
    pub consent_params: &'static [(&'static str, &'static str)],
}

impl OAuthClientConfig {
    pub fn is_configured(&self) -> bool {
        !self.client_id.trim().is_empty() && !self.client_secret.trim().is_empty()
    }

    /// Twitch: clips of the linked channel (reading them, and the download links that need
    /// an editor's scope).
    pub fn twitch() -> Self {
        Self {
            client_id: String::new(),
            client_secret: String::new(),
            authorize_url: "https://id.twitch.tv/oauth2/authorize".into(),
            token_url: "https://id.twitch.tv/oauth2/token".into(),
            revoke_url: Some("https://id.twitch.tv/oauth2/revoke".into()),
            api_url: "https://api.twitch.tv/helix".into(),
            scopes: vec!["clips:edit".into(), "editor:manage:clips".into()],
            client_id_field: "client_id",
            scope_separator: " ",
            // Twitch ignores `prompt`; without this a signed-in user is sent straight back.
            consent_params: &[("force_verify", "true")],
        }
    }

    /// Google, for YouTube: the channel's identity and uploads.
    pub fn youtube() -> Self {
        Self {
            client_id: String::new(),
            client_secret: String::new(),
            authorize_url: "https://accounts.google.com/o/oauth2/v2/auth".into(),
            token_url: "https://oauth2.googleapis.com/token".into(),
            revoke_url: Some("https://oauth2.googleapis.com/revoke".into()),
            api_url: "https://www.googleapis.com".into(),
            scopes: vec![
                "https://www.googleapis.com/auth/youtube.readonly".into(),
                "https://www.googleapis.com/auth/youtube.upload".into(),
            ],
            client_id_field: "client_id",
            scope_separator: " ",
            consent_params: &[("access_type", "offline"), ("prompt", "consent")],
        }
    }

    /// TikTok: the account's name, and direct posts (private until the app is audited).
    pub fn tiktok() -> Self {
        Self {
            client_id: String::new(),
            client_secret: String::new(),
            authorize_url: "https://www.tiktok.com/v2/auth/authorize/".into(),
            token_url: "https://open.tiktokapis.com/v2/oauth/token/".into(),
            revoke_url: Some("https://open.tiktokapis.com/v2/oauth/revoke/".into()),
            api_url: "https://open.tiktokapis.com".into(),
            scopes: vec!["user.info.basic".into(), "video.publish".into()],
            client_id_field: "client_key",
            scope_separator: ",",
            consent_params: &[],
        }
    }
}

/// What the environment may change of a platform's client (`TWITCH_…`, `YOUTUBE_…`).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct OAuthClientOverrides {
    client_id: Option<String>,
    client_secret: Option<String>,
    authorize_url: Option<String>,
    token_url: Option<String>,
    revoke_url: Option<String>,
    api_url: Option<String>,
}

impl OAuthClientOverrides {
    pub(crate) fn apply(self, client: OAuthClientConfig) -> OAuthClientConfig {
        OAuthClientConfig {
            client_id: self.client_id.unwrap_or(client.client_id),
            client_secret: self.client_secret.unwrap_or(client.client_secret),
            authorize_url: self.authorize_url.unwrap_or(client.authorize_url),
            token_url: self.token_url.unwrap_or(client.token_url),
            // Empty turns revocation off.
            revoke_url: match self.revoke_url {
                Some(url) => Some(url).filter(|u| !u.trim().is_empty()),
                None => client.revoke_url,
            },
            api_url: self.api_url.unwrap_or(client.api_url),
            ..client
        }
    }
}

/// Linking platform accounts: where their OAuth redirects come back, and where the user is
/// sent afterwards.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LinkingConfig {
    /// The API's public address: each platform redirects to
    /// `{this}/api/v2/accounts/oauth/{provider}/callback` (register that URL with it).
    #[serde(rename = "oauth_callback_base")]
    pub callback_base: String,
    /// Where the user lands after linking, with `provider`, `status` and `reason`.
    #[serde(rename = "oauth_result_url")]
    pub result_url: String,
    /// How long an authorisation may take, from start to callback.
    #[serde(rename = "oauth_state_ttl_secs", deserialize_with = "units::secs")]
    pub state_ttl: Duration,
    /// Each linked account that can import is synced this often; `None` (0): only when
    /// its owner asks.
    #[serde(
        rename = "account_sync_interval_hours",
        deserialize_with = "units::optional_hours"
    )]
    pub sync_every: Option<Duration>,
    /// Bytes per request when uploading a post to a platform (whole MiB: YouTube wants
    /// multiples of 256 KiB).
    #[serde(
        rename = "post_upload_chunk_mib",
        deserialize_with = "units::mib_usize"
    )]
    pub post_chunk_bytes: usize,
    /// The first pause after a post's attempt failed for a transient reason; it doubles per
    /// attempt up to `post_retry_max`.
    #[serde(rename = "post_retry_base_ms", deserialize_with = "units::millis")]
    pub post_retry_base: Duration,
    #[serde(rename = "post_retry_max_secs", deserialize_with = "units::secs")]
    pub post_retry_max: Duration,
    /// Attempts before a post that keeps failing transiently is FAILED.
    pub post_max_attempts: i32,
    /// Steam's OpenID 2.0 endpoint; empty: Steam is not offered.
    pub steam_openid_url: String,
    #[serde(skip)]
    pub twitch: Option<OAuthClientConfig>,
    #[serde(skip)]
    pub youtube: Option<OAuthClientConfig>,
    #[serde(skip)]
    pub tiktok: Option<OAuthClientConfig>,
}

impl Default for LinkingConfig {
    fn default() -> Self {
        Self {
            callback_base: "http://127.0.0.1:8000".into(),
            result_url: "http://127.0.0.1:8000/accounts/linked".into(),
            state_ttl: Duration::from_secs(600),
            sync_every: Some(Duration::from_secs(24 * 3600)),
            steam_openid_url: "https://steamcommunity.com/openid/login".into(),
            post_chunk_bytes: 8 * 1024 * 1024,
            post_retry_base: Duration::from_secs(5),
            post_retry_max: Duration::from_secs(600),
            post_max_attempts: 8,
            twitch: None,
            youtube: None,
            tiktok: None,
        }
    }
}

/// Weekly montages, share pages and the views they count.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ShowcaseConfig {
    /// The weekly run happens each week on this day (`monday`…), at `weekly_hour` UTC; each
    /// user's week is the seven days before.
    #[serde(rename = "weekly_weekday", deserialize_with = "units::weekday")]
    pub weekday: chrono::Weekday,
    #[serde(rename = "weekly_hour")]
    pub hour: u32,
    /// How often each worker looks whether a weekly run is due; `None` (0): this process
    /// never runs it.
    #[serde(
        rename = "weekly_check_secs",
        deserialize_with = "units::optional_secs"
    )]
    pub check_every: Option<Duration>,
    /// Missed weeks a run catches up on after downtime, the latest included.
    #[serde(rename = "weekly_catch_up_weeks")]
    pub catch_up_weeks: u32,
    /// Fewer analysed clips than this in a week make no montage.
    #[serde(rename = "weekly_min_clips")]
    pub min_clips: usize,
    /// The best clips of the week a montage is made from, at most.
    #[serde(rename = "weekly_max_clips")]
    pub max_clips: usize,
    /// Seconds of montage (the plan's limit caps it).
    #[serde(rename = "weekly_target_secs")]
    pub target_seconds: u32,
    /// The API's public address: share links and their Open Graph tags point there.
    pub public_base_url: String,
}

impl Default for ShowcaseConfig {
    fn default() -> Self {
        Self {
            weekday: chrono::Weekday::Mon,
            hour: 6,
            check_every: Some(Duration::from_secs(300)),
            catch_up_weeks: 4,
            min_clips: 2,
            max_clips: 8,
            target_seconds: 60,
            public_base_url: "http://127.0.0.1:8000".into(),
        }
    }
}
