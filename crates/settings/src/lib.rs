//! Configuration from environment variables, with defaults that work on a developer machine.
//! In production (`APP_ENV=production`) start-up refuses the development secrets.

use std::{env, str::FromStr, time::Duration};

use domain::error::ConfigError;
use domain::providers::ProviderId;

pub mod telemetry;

/// The development JWT secret; refused when `APP_ENV=production`.
pub const DEV_JWT_SECRET: &str = "dev-only-jwt-secret-change-me-0123456789abcdef";
pub const DEV_STRIPE_WEBHOOK_SECRET: &str = "whsec_dev_only_change_me";
const DEV_STRIPE_SECRET_KEY: &str = "sk_test_dev_only";
const DEV_CALLBACK_SECRET: &str = "dev-only-callback-signing-secret";
const DEV_S3_SECRET: &str = "montage-dev-secret";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The platforms users may link, in the order clients list them.
    pub providers: Vec<ProviderId>,
    pub environment: Environment,
    pub database_url: String,
    pub database_pool_size: u32,
    pub redis_url: String,
    /// Redis key namespace for the render queue and heartbeats; lets several deployments
    /// (or test runs) share one Redis.
    pub queue_name: String,
    pub auth: AuthConfig,
    pub s3: S3Config,
    pub limits: Limits,
    pub render: RenderConfig,
    pub engine: EngineConfig,
    pub billing: BillingConfig,
    pub callbacks: CallbackConfig,
    pub media: MediaConfig,
    pub rate_limits: RateLimitConfig,
    pub http: HttpConfig,
    /// Where the Swagger UI files for `/docs` are (the `swagger-ui-dist` npm package).
    pub docs_assets_dir: std::path::PathBuf,
}

/// Connection-level limits of the API.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Open connections at most, over all of the server's threads.
    pub max_connections: usize,
    /// A request's headers must arrive within this long.
    pub header_timeout: Duration,
    /// A request body that sends nothing for this long is dropped.
    pub body_idle_timeout: Duration,
    /// WebSocket sessions per user and per API instance.
    pub ws_per_user: usize,
    pub ws_total: usize,
    /// Largest Stripe webhook body accepted.
    pub webhook_max_bytes: usize,
}

/// Where and how a job's media work runs: a child process per job, capped.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// The binary to run in media mode; by default the running worker itself.
    pub program: Option<std::path::PathBuf>,
    /// Address-space cap of the media process.
    pub memory_bytes: u64,
    /// CPU-time cap of the media process (all its threads together).
    pub cpu_seconds: u64,
    pub clip_limits: ClipLimits,
}

/// What a clip may be, checked against its header first and then against decoded frames,
/// since headers lie.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct ClipLimits {
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

/// Job-ended webhooks to `callback_url`.
#[derive(Debug, Clone)]
pub struct CallbackConfig {
    /// Signs every callback (`Montage-Signature`); receivers verify with it.
    pub signing_secret: String,
    pub max_attempts: i32,
    pub retry_base: Duration,
    pub timeout: Duration,
    pub poll_interval: Duration,
    /// Callbacks sent at once; one slow receiver holds up only its own slot.
    pub concurrency: usize,
    /// Lets callbacks reach private and loopback addresses (development only).
    pub allow_private: bool,
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
}

#[derive(Debug, Clone)]
pub struct BillingConfig {
    pub free: PlanConfig,
    pub pro: PlanConfig,
    pub stripe_secret_key: String,
    /// The Stripe API's address; tests point it at a local stand-in.
    pub stripe_api_base: String,
    pub stripe_webhook_secret: String,
    pub stripe_timeout: Duration,
    /// A signed webhook older than this is refused (replay protection).
    pub webhook_tolerance: Duration,
    pub checkout_success_url: String,
    pub checkout_cancel_url: String,
}

/// How jobs move through the queue: leases, retries, the per-user cap, the relay.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// A running job whose worker has not renewed its lease for this long is taken up again.
    pub lease: Duration,
    /// Attempts per job, counting the first; transient failures retry until then.
    pub max_attempts: i32,
    /// Backoff before retry n is `retry_base × 2^(n-1)`, capped at `retry_max`, with jitter.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Jobs the relay keeps waiting in Redis at most; the rest wait in PostgreSQL, where
    /// priority orders them. Set it to at least the workers' total concurrency.
    pub queue_prefetch: i64,
    pub relay_interval: Duration,
    /// How often an idle worker looks for jobs.
    pub poll_interval: Duration,
    pub reconcile_interval: Duration,
    /// A dispatched job not in the queue after this long is dispatched again.
    pub requeue_after: Duration,
    /// On SIGTERM a worker lets running jobs finish for this long, then hands them back.
    pub shutdown_grace: Duration,
}

#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub jwt_secret: String,
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
    /// Lifetime of one refresh token (each refresh issues a new one)...
    pub refresh_ttl: Duration,
    /// ...and of a whole login session, however often it is refreshed.
    pub session_max_age: Duration,
    pub login_throttle: LoginThrottleConfig,
    /// Password hashes (argon2id, 19 MiB each) computed at once; more wait briefly.
    pub hash_concurrency: usize,
    /// Requests that may wait for a hashing slot; past that they are refused at once.
    pub hash_queue: usize,
    /// How long a request waits for a hashing slot before a 503.
    pub hash_wait: Duration,
}

/// Growing delays after failed logins, per account and client address.
#[derive(Debug, Clone, Copy)]
pub struct LoginThrottleConfig {
    /// Failures allowed before delays start.
    pub free_failures: u32,
    /// Failures are forgotten this long after the last one; also the longest delay.
    pub window: Duration,
    /// The first delay; each further failure doubles it.
    pub base_delay: Duration,
}

/// Requests per window by class, counted in Redis across all API instances.
#[derive(Debug, Clone)]
pub struct RateLimitConfig {
    pub enabled: bool,
    pub window: Duration,
    /// Register, login, refresh, logout: per client address.
    pub auth: u32,
    /// Job creation: per user.
    pub upload: u32,
    /// Everything else: per user when authenticated, else per client address.
    pub general: u32,
    /// Where a trusted reverse proxy puts the client's address (its last entry is used);
    /// without it the connection's peer address counts.
    pub trusted_proxy_header: Option<String>,
}

#[derive(Debug, Clone)]
pub struct S3Config {
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    pub presign_ttl: Duration,
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_file_bytes: u64,
    pub max_upload_bytes: u64,
    pub max_files: usize,
    /// Longest montage a free account may ask for, in seconds.
    pub upload_part_bytes: usize,
    pub upload_part_concurrency: usize,
}

#[derive(Debug, Clone)]
pub struct RenderConfig {
    pub x264_preset: String,
    /// 0 lets libx264 choose.
    pub encoder_threads: usize,
    pub worker_concurrency: usize,
    pub heartbeat_interval: Duration,
    pub missed_heartbeats: usize,
    pub scratch_dir: std::path::PathBuf,
    /// How long uploaded clips are kept after their job ends.
    pub input_retention: Duration,
    /// How often workers delete finished entries from the Redis queue (and expired clips).
    pub queue_vacuum_interval: Duration,
    /// Longest a job may run (download to upload) before it fails with `RENDER_TIMEOUT`.
    pub job_timeout: Duration,
    /// The mark drawn on outputs of jobs with `watermark=true`.
    pub watermark_text: String,
    pub watermark_font: std::path::PathBuf,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|key| env::var(key).ok())
    }

    /// Reads configuration through `lookup`, so tests can build one without touching the
    /// process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |key: &str, default: &str| lookup(key).unwrap_or_else(|| default.to_owned());
        let environment = match get("APP_ENV", "development").as_str() {
            "production" => Environment::Production,
            "development" | "dev" | "test" => Environment::Development,
            other => return Err(ConfigError::invalid("APP_ENV", other)),
        };
        let mib = |key: &str, default: u64| -> Result<u64, ConfigError> {
            Ok(parse::<u64>(&lookup, key, default)? * 1024 * 1024)
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let clip = ClipLimits::default();
        let config = Config {
            environment,
            providers: providers(&get("ACCOUNT_PROVIDERS", "steam,twitch,youtube,tiktok"))?,
            database_url: get("DATABASE_URL", "postgres://montage@127.0.0.1:5433/montage"),
            database_pool_size: parse(&lookup, "DATABASE_POOL_SIZE", 10)?,
            redis_url: get("REDIS_URL", "redis://127.0.0.1:6380/"),
            queue_name: get("QUEUE_NAME", "montage"),
            auth: AuthConfig {
                jwt_secret: get("JWT_SECRET", DEV_JWT_SECRET),
                issuer: get("JWT_ISSUER", "montage-api"),
                audience: get("JWT_AUDIENCE", "montage-clients"),
                access_ttl: Duration::from_secs(parse(&lookup, "ACCESS_TOKEN_TTL_SECS", 900)?),
                refresh_ttl: Duration::from_secs(
                    parse::<u64>(&lookup, "REFRESH_TOKEN_TTL_DAYS", 30)? * 86_400,
                ),
                session_max_age: Duration::from_secs(parse(
                    &lookup,
                    "SESSION_MAX_AGE_SECS",
                    90 * 86_400,
                )?),
                login_throttle: LoginThrottleConfig {
                    free_failures: parse(&lookup, "LOGIN_FREE_FAILURES", 5)?,
                    window: Duration::from_secs(parse(&lookup, "LOGIN_FAILURE_WINDOW_SECS", 900)?),
                    base_delay: Duration::from_secs(parse(&lookup, "LOGIN_DELAY_BASE_SECS", 30)?),
                },
                hash_concurrency: parse(&lookup, "HASH_CONCURRENCY", cores)?,
                hash_queue: parse(&lookup, "HASH_QUEUE", 4 * cores)?,
                hash_wait: Duration::from_millis(parse(&lookup, "HASH_WAIT_MS", 2000)?),
            },
            s3: S3Config {
                endpoint: get("S3_ENDPOINT", "http://127.0.0.1:9000"),
                region: get("S3_REGION", "us-east-1"),
                bucket: get("S3_BUCKET", "montage"),
                access_key: get("S3_ACCESS_KEY", "montage-dev"),
                secret_key: get("S3_SECRET_KEY", DEV_S3_SECRET),
                presign_ttl: Duration::from_secs(parse(&lookup, "PRESIGN_TTL_SECS", 300)?),
            },
            limits: Limits {
                max_file_bytes: mib("MAX_FILE_MIB", 500)?,
                max_upload_bytes: mib("MAX_UPLOAD_MIB", 2048)?,
                max_files: parse(&lookup, "MAX_FILES", 20)?,
                upload_part_bytes: mib("UPLOAD_PART_MIB", 8)? as usize,
                upload_part_concurrency: parse(&lookup, "UPLOAD_PART_CONCURRENCY", 2)?,
            },
            render: RenderConfig {
                x264_preset: get("X264_PRESET", "veryfast"),
                encoder_threads: parse(&lookup, "ENCODER_THREADS", 0)?,
                worker_concurrency: parse(&lookup, "WORKER_CONCURRENCY", cores.div_ceil(2))?,
                heartbeat_interval: Duration::from_secs(parse(
                    &lookup,
                    "WORKER_HEARTBEAT_SECS",
                    10,
                )?),
                missed_heartbeats: parse(&lookup, "WORKER_MISSED_HEARTBEATS", 3)?,
                scratch_dir: get(
                    "WORKER_SCRATCH_DIR",
                    &env::temp_dir().join("montage-worker").to_string_lossy(),
                )
                .into(),
                job_timeout: Duration::from_secs(parse(&lookup, "JOB_TIMEOUT_SECS", 1800)?),
                queue_vacuum_interval: Duration::from_secs(parse(
                    &lookup,
                    "QUEUE_VACUUM_SECS",
                    300,
                )?),
                input_retention: Duration::from_secs(
                    parse::<u64>(&lookup, "INPUT_RETENTION_HOURS", 72)? * 3600,
                ),
                watermark_text: get("WATERMARK_TEXT", "Montage"),
                watermark_font: get(
                    "WATERMARK_FONT",
                    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
                )
                .into(),
            },
            engine: EngineConfig {
                lease: Duration::from_secs(parse(&lookup, "JOB_LEASE_SECS", 30)?),
                max_attempts: parse(&lookup, "JOB_MAX_ATTEMPTS", 3)?,
                retry_base: Duration::from_secs(parse(&lookup, "RETRY_BASE_SECS", 10)?),
                retry_max: Duration::from_secs(parse(&lookup, "RETRY_MAX_SECS", 600)?),
                queue_prefetch: parse(&lookup, "QUEUE_PREFETCH", 16)?,
                relay_interval: Duration::from_millis(parse(&lookup, "RELAY_INTERVAL_MS", 1000)?),
                poll_interval: Duration::from_millis(parse(&lookup, "WORKER_POLL_MS", 200)?),
                reconcile_interval: Duration::from_secs(parse(&lookup, "RECONCILE_SECS", 5)?),
                requeue_after: Duration::from_secs(parse(&lookup, "REQUEUE_AFTER_SECS", 30)?),
                shutdown_grace: Duration::from_secs(parse(
                    &lookup,
                    "WORKER_SHUTDOWN_GRACE_SECS",
                    30,
                )?),
            },
            billing: BillingConfig {
                free: PlanConfig {
                    name: get("FREE_PLAN_NAME", "Cosmic Cadet"),
                    price_usd: 0,
                    stripe_price_id: None,
                    max_duration: parse(&lookup, "FREE_MAX_DURATION_SECS", 60)?,
                    forced_watermark: true,
                    priority: false,
                    active_jobs: parse(&lookup, "FREE_ACTIVE_JOBS", 2)?,
                    open_jobs: parse(&lookup, "FREE_OPEN_JOBS", 10)?,
                    storage_bytes: mib("FREE_STORAGE_MIB", 2048)?,
                    output_retention: retention(parse(
                        &lookup,
                        "FREE_OUTPUT_RETENTION_SECS",
                        7 * 86_400,
                    )?),
                },
                pro: PlanConfig {
                    name: get("PRO_PLAN_NAME", "Nebula Knight"),
                    price_usd: parse(&lookup, "PRO_PRICE_USD", 9)?,
                    stripe_price_id: Some(get("STRIPE_PRO_PRICE_ID", "price_nebula_knight_dev")),
                    max_duration: parse(&lookup, "PRO_MAX_DURATION_SECS", 120)?,
                    forced_watermark: false,
                    priority: true,
                    active_jobs: parse(&lookup, "PRO_ACTIVE_JOBS", 4)?,
                    open_jobs: parse(&lookup, "PRO_OPEN_JOBS", 50)?,
                    storage_bytes: mib("PRO_STORAGE_MIB", 20 * 1024)?,
                    output_retention: retention(parse(&lookup, "PRO_OUTPUT_RETENTION_SECS", 0)?),
                },
                stripe_secret_key: get("STRIPE_SECRET_KEY", DEV_STRIPE_SECRET_KEY),
                stripe_api_base: get("STRIPE_API_BASE", "https://api.stripe.com/"),
                stripe_webhook_secret: get("STRIPE_WEBHOOK_SECRET", DEV_STRIPE_WEBHOOK_SECRET),
                stripe_timeout: Duration::from_secs(parse(&lookup, "STRIPE_TIMEOUT_SECS", 10)?),
                webhook_tolerance: Duration::from_secs(parse(
                    &lookup,
                    "STRIPE_WEBHOOK_TOLERANCE_SECS",
                    300,
                )?),
                checkout_success_url: get(
                    "CHECKOUT_SUCCESS_URL",
                    "http://localhost:8000/billing/success?session_id={CHECKOUT_SESSION_ID}",
                ),
                checkout_cancel_url: get(
                    "CHECKOUT_CANCEL_URL",
                    "http://localhost:8000/billing/cancelled",
                ),
            },
            callbacks: CallbackConfig {
                signing_secret: get("CALLBACK_SIGNING_SECRET", DEV_CALLBACK_SECRET),
                max_attempts: parse(&lookup, "CALLBACK_MAX_ATTEMPTS", 8)?,
                retry_base: Duration::from_secs(parse(&lookup, "CALLBACK_RETRY_BASE_SECS", 10)?),
                timeout: Duration::from_secs(parse(&lookup, "CALLBACK_TIMEOUT_SECS", 10)?),
                poll_interval: Duration::from_millis(parse(&lookup, "CALLBACK_POLL_MS", 1000)?),
                concurrency: parse(&lookup, "CALLBACK_CONCURRENCY", 8)?,
                allow_private: parse(&lookup, "CALLBACK_ALLOW_PRIVATE", false)?,
            },
            docs_assets_dir: get("DOCS_ASSETS_DIR", ".data/swagger-ui").into(),
            http: HttpConfig {
                max_connections: parse(&lookup, "HTTP_MAX_CONNECTIONS", 10_000)?,
                header_timeout: Duration::from_millis(parse(
                    &lookup,
                    "HTTP_HEADER_TIMEOUT_MS",
                    5000,
                )?),
                body_idle_timeout: Duration::from_secs(parse(&lookup, "HTTP_BODY_IDLE_SECS", 15)?),
                ws_per_user: parse(&lookup, "WS_MAX_PER_USER", 5)?,
                ws_total: parse(&lookup, "WS_MAX_TOTAL", 5000)?,
                webhook_max_bytes: parse::<usize>(&lookup, "WEBHOOK_MAX_KIB", 256)? * 1024,
            },
            rate_limits: RateLimitConfig {
                enabled: parse(&lookup, "RATE_LIMIT_ENABLED", true)?,
                window: Duration::from_secs(parse(&lookup, "RATE_LIMIT_WINDOW_SECS", 60)?),
                auth: parse(&lookup, "RATE_LIMIT_AUTH", 10)?,
                upload: parse(&lookup, "RATE_LIMIT_UPLOAD", 5)?,
                general: parse(&lookup, "RATE_LIMIT_GENERAL", 100)?,
                trusted_proxy_header: lookup("TRUSTED_PROXY_HEADER").filter(|h| !h.is_empty()),
            },
            media: MediaConfig {
                program: lookup("MEDIA_PROGRAM").map(Into::into),
                memory_bytes: mib("MEDIA_MEMORY_MIB", 3072)?,
                cpu_seconds: parse(&lookup, "MEDIA_CPU_SECS", 3600)?,
                clip_limits: ClipLimits {
                    max_duration_seconds: parse(
                        &lookup,
                        "MEDIA_MAX_CLIP_SECS",
                        clip.max_duration_seconds,
                    )?,
                    max_width: parse(&lookup, "MEDIA_MAX_WIDTH", clip.max_width)?,
                    max_height: parse(&lookup, "MEDIA_MAX_HEIGHT", clip.max_height)?,
                    max_fps: parse(&lookup, "MEDIA_MAX_FPS", clip.max_fps)?,
                    max_streams: parse(&lookup, "MEDIA_MAX_STREAMS", clip.max_streams)?,
                },
            },
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.environment == Environment::Production {
            let secrets = [
                ("JWT_SECRET", &self.auth.jwt_secret, DEV_JWT_SECRET),
                ("S3_SECRET_KEY", &self.s3.secret_key, DEV_S3_SECRET),
                (
                    "STRIPE_WEBHOOK_SECRET",
                    &self.billing.stripe_webhook_secret,
                    DEV_STRIPE_WEBHOOK_SECRET,
                ),
                (
                    "STRIPE_SECRET_KEY",
                    &self.billing.stripe_secret_key,
                    DEV_STRIPE_SECRET_KEY,
                ),
                (
                    "CALLBACK_SIGNING_SECRET",
                    &self.callbacks.signing_secret,
                    DEV_CALLBACK_SECRET,
                ),
            ];
            for (name, value, default) in secrets {
                if value.trim().is_empty() || value == default {
                    return Err(ConfigError::DefaultSecret(name));
                }
            }
            if self.callbacks.allow_private {
                return Err(ConfigError::invalid(
                    "CALLBACK_ALLOW_PRIVATE",
                    "true is for development only",
                ));
            }
        }
        if self.auth.jwt_secret.len() < 32 {
            return Err(ConfigError::invalid("JWT_SECRET", "shorter than 32 bytes"));
        }
        if self.limits.upload_part_bytes < 5 * 1024 * 1024 {
            // S3 refuses multipart parts under 5 MiB (except the last).
            return Err(ConfigError::invalid("UPLOAD_PART_MIB", "below 5"));
        }
        if self.limits.upload_part_concurrency == 0 || self.render.worker_concurrency == 0 {
            return Err(ConfigError::invalid(
                "UPLOAD_PART_CONCURRENCY/WORKER_CONCURRENCY",
                "0",
            ));
        }
        let engine = &self.engine;
        let plans = [&self.billing.free, &self.billing.pro];
        if engine.max_attempts < 1
            || self.callbacks.max_attempts < 1
            || engine.queue_prefetch < 1
            || plans.iter().any(|p| p.active_jobs < 1)
        {
            return Err(ConfigError::invalid(
                "JOB_MAX_ATTEMPTS/QUEUE_PREFETCH/FREE_ACTIVE_JOBS/PRO_ACTIVE_JOBS",
                "below 1",
            ));
        }
        if engine.lease < Duration::from_secs(2) || engine.reconcile_interval.is_zero() {
            // Workers renew leases every second; a shorter lease would lapse under them.
            return Err(ConfigError::invalid(
                "JOB_LEASE_SECS/RECONCILE_SECS",
                "lease below 2 s or zero interval",
            ));
        }
        let text = &self.render.watermark_text;
        // Kept to characters that need no escaping inside a libavfilter graph.
        let plain = |c: char| c.is_alphanumeric() || " .,!?@#&()+-_".contains(c);
        if !(1..=40).contains(&text.chars().count()) || !text.chars().all(plain) {
            return Err(ConfigError::invalid("WATERMARK_TEXT", text));
        }
        if plans
            .iter()
            .any(|p| p.max_duration < domain::jobs::MIN_TARGET_DURATION)
        {
            return Err(ConfigError::invalid(
                "FREE_MAX_DURATION_SECS/PRO_MAX_DURATION_SECS",
                "below the 10 s minimum",
            ));
        }
        Ok(())
    }

    /// How long a worker may stay silent before its in-flight jobs count as orphaned.
    pub fn worker_stale_after(&self) -> Duration {
        self.render.heartbeat_interval * self.render.missed_heartbeats as u32
    }
}

/// A retention in seconds, where 0 means for good.
fn retention(seconds: u64) -> Option<Duration> {
    (seconds > 0).then(|| Duration::from_secs(seconds))
}

fn parse<T: FromStr>(
    lookup: &impl Fn(&str) -> Option<String>,
    key: &str,
    default: T,
) -> Result<T, ConfigError> {
    match lookup(key) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|_| ConfigError::invalid(key, &raw)),
    }
}

/// A comma-separated list of provider ids; empty turns linking off.
fn providers(list: &str) -> Result<Vec<ProviderId>, ConfigError> {
    let mut providers = Vec::new();
    for id in list.split(',').map(str::trim).filter(|id| !id.is_empty()) {
        let provider = id
            .parse()
            .map_err(|()| ConfigError::invalid("ACCOUNT_PROVIDERS", id))?;
        if !providers.contains(&provider) {
            providers.push(provider);
        }
    }
    Ok(providers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(|key| {
            vars.iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn defaults_work_in_development() {
        let config = config(&[]).expect("defaults are valid");
        assert_eq!(config.limits.max_file_bytes, 500 * 1024 * 1024);
        assert_eq!(config.limits.max_upload_bytes, 2048 * 1024 * 1024);
        assert_eq!(config.auth.access_ttl, Duration::from_secs(900));
    }

    #[test]
    fn providers_are_a_list_of_known_ids() {
        let parsed = config(&[("ACCOUNT_PROVIDERS", " youtube,steam,youtube ")]).unwrap();
        assert_eq!(
            parsed.providers,
            [ProviderId::Youtube, ProviderId::Steam],
            "trimmed, in order, without repeats"
        );
        let err = config(&[("ACCOUNT_PROVIDERS", "steam,myspace")]).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Invalid { key, value } if key == "ACCOUNT_PROVIDERS" && value == "myspace"),
            "{err:?}"
        );
    }

    #[test]
    fn production_refuses_the_default_secret() {
        let err = config(&[("APP_ENV", "production")]).unwrap_err();
        assert!(
            matches!(err, ConfigError::DefaultSecret("JWT_SECRET")),
            "{err:?}"
        );
        let err = config(&[
            ("APP_ENV", "production"),
            ("JWT_SECRET", "a-real-secret-that-is-long-enough-0123456789"),
        ])
        .unwrap_err();
        assert!(
            matches!(err, ConfigError::DefaultSecret("S3_SECRET_KEY")),
            "{err:?}"
        );
        let err = config(&[
            ("APP_ENV", "production"),
            ("JWT_SECRET", "a-real-secret-that-is-long-enough-0123456789"),
            ("S3_SECRET_KEY", "real-s3-secret"),
        ])
        .unwrap_err();
        assert!(
            matches!(err, ConfigError::DefaultSecret("STRIPE_WEBHOOK_SECRET")),
            "{err:?}"
        );
        let err = config(&[
            ("APP_ENV", "production"),
            ("JWT_SECRET", "a-real-secret-that-is-long-enough-0123456789"),
            ("S3_SECRET_KEY", "real-s3-secret"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_real"),
        ])
        .unwrap_err();
        assert!(
            matches!(err, ConfigError::DefaultSecret("STRIPE_SECRET_KEY")),
            "{err:?}"
        );
    }

    #[test]
    fn production_refuses_empty_secrets() {
        let err = config(&[
            ("APP_ENV", "production"),
            ("JWT_SECRET", "a-real-secret-that-is-long-enough-0123456789"),
            ("S3_SECRET_KEY", "  "),
        ])
        .unwrap_err();
        assert!(
            matches!(err, ConfigError::DefaultSecret("S3_SECRET_KEY")),
            "{err:?}"
        );
    }

    #[test]
    fn watermark_text_must_be_plain() {
        assert!(config(&[("WATERMARK_TEXT", "GG wp!")]).is_ok());
        for bad in ["", "a:b", "it's", "%{pts}", &"x".repeat(41)] {
            assert!(config(&[("WATERMARK_TEXT", bad)]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn malformed_numbers_are_refused() {
        let err = config(&[("MAX_FILE_MIB", "lots")]).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { key, .. } if key == "MAX_FILE_MIB"));
    }
}
