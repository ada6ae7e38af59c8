//! Configuration from environment variables, with defaults that work on a developer machine:
//! one typed struct per section (`sections`), loaded with `envy`. In production
//! (`APP_ENV=production`) start-up refuses the development secrets.

use std::{path::PathBuf, time::Duration};

use domain::error::ConfigError;
use domain::providers::ProviderId;
use serde::{de::DeserializeOwned, Deserialize, Deserializer};

mod sections;
mod units;

pub use sections::{
    AuthConfig, BillingConfig, CallbackConfig, ClipLimits, EngineConfig, HttpConfig, Limits,
    LinkingConfig, LoginThrottleConfig, MailConfig, MediaConfig, MetricsConfig, OAuthClientConfig,
    PlanConfig, RateLimitConfig, RenderConfig, S3Config, ShowcaseConfig,
};
use sections::{OAuthClientOverrides, PlanOverrides};

/// The development JWT secret; refused when `APP_ENV=production`.
pub const DEV_JWT_SECRET: &str = "dev-only-jwt-secret-change-me-0123456789abcdef";
pub const DEV_STRIPE_WEBHOOK_SECRET: &str = "whsec_dev_only_change_me";
const DEV_STRIPE_SECRET_KEY: &str = "sk_test_dev_only";
const DEV_CALLBACK_SECRET: &str = "dev-only-callback-signing-secret";
const DEV_S3_SECRET: &str = "montage-dev-secret";
/// Base64 of `dev-only-data-encryption-key-32b`.
pub const DEV_DATA_ENCRYPTION_KEY: &str = "ZGV2LW9ubHktZGF0YS1lbmNyeXB0aW9uLWtleS0zMmI=";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    #[serde(alias = "dev", alias = "test")]
    Development,
    Production,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub environment: Environment,
    pub database_url: String,
    pub database_pool_size: u32,
    /// The queue's Redis (apalis, push notifications, worker heartbeats).
    pub redis_url: String,
    /// The Redis of live job events, progress marks and WebSocket tickets; by default the
    /// queue's. Their keys never meet the queue's, so moving them is configuration.
    pub events_redis_url: String,
    /// The rate limiter's Redis; by default the queue's.
    pub limiter_redis_url: String,
    /// Redis key namespace for the render queue and heartbeats; lets several deployments
    /// (or test runs) share one Redis.
    pub queue_name: String,
    /// Where the Swagger UI files for `/docs` are (the `swagger-ui-dist` npm package).
    pub docs_assets_dir: PathBuf,
    /// Where the music catalogue's package is unpacked; unset for no music.
    pub music_dir: Option<PathBuf>,
    /// The platforms users may link, in the order clients list them.
    pub providers: Vec<ProviderId>,
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
    pub metrics: MetricsConfig,
    pub mail: MailConfig,
    pub linking: LinkingConfig,
    pub showcase: ShowcaseConfig,
}

/// The settings that belong to no section.
#[derive(Debug, Deserialize)]
#[serde(default)]
struct Service {
    app_env: Environment,
    database_url: String,
    database_pool_size: u32,
    redis_url: String,
    events_redis_url: Option<String>,
    limiter_redis_url: Option<String>,
    queue_name: String,
    docs_assets_dir: PathBuf,
    music_dir: Option<PathBuf>,
    #[serde(deserialize_with = "provider_list")]
    account_providers: Vec<ProviderId>,
    stripe_pro_price_id: Option<String>,
}

impl Default for Service {
    fn default() -> Self {
        Self {
            app_env: Environment::Development,
            database_url: "postgres://montage@127.0.0.1:5433/montage".into(),
            database_pool_size: 10,
            redis_url: "redis://127.0.0.1:6380/".into(),
            events_redis_url: None,
            limiter_redis_url: None,
            queue_name: "montage".into(),
            docs_assets_dir: ".data/swagger-ui".into(),
            music_dir: None,
            account_providers: ProviderId::ALL.to_vec(),
            stripe_pro_price_id: None,
        }
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Reads configuration from `vars` (name, value), so tests can build one without
    /// touching the process environment.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let vars: Vec<(String, String)> = vars.into_iter().collect();
        let service: Service = section(&vars, "")?;
        let mut billing: BillingConfig = section(&vars, "")?;
        billing.free = section::<PlanOverrides>(&vars, "FREE_")?.apply(billing.free);
        billing.pro = section::<PlanOverrides>(&vars, "PRO_")?.apply(billing.pro);
        if let Some(price) = service.stripe_pro_price_id {
            billing.pro.stripe_price_id = Some(price);
        }
        let mut auth: AuthConfig = section(&vars, "")?;
        auth.login_throttle = section(&vars, "LOGIN_")?;
        let mut media: MediaConfig = section(&vars, "MEDIA_")?;
        media.clip_limits = section(&vars, "MEDIA_")?;
        let mut linking: LinkingConfig = section(&vars, "")?;
        let client = |prefix, defaults| -> Result<Option<OAuthClientConfig>, ConfigError> {
            let client = section::<OAuthClientOverrides>(&vars, prefix)?.apply(defaults);
            Ok(client.is_configured().then_some(client))
        };
        linking.twitch = client("TWITCH_", OAuthClientConfig::twitch())?;
        linking.youtube = client("YOUTUBE_", OAuthClientConfig::youtube())?;
        linking.tiktok = client("TIKTOK_", OAuthClientConfig::tiktok())?;
        let config = Config {
            environment: service.app_env,
            database_url: service.database_url,
            database_pool_size: service.database_pool_size,
            events_redis_url: service
                .events_redis_url
                .unwrap_or(service.redis_url.clone()),
            limiter_redis_url: service
                .limiter_redis_url
                .unwrap_or(service.redis_url.clone()),
            redis_url: service.redis_url,
            queue_name: service.queue_name,
            docs_assets_dir: service.docs_assets_dir,
            music_dir: service.music_dir,
            providers: service.account_providers,
            auth,
            s3: section(&vars, "")?,
            limits: section(&vars, "")?,
            render: section(&vars, "")?,
            engine: section(&vars, "")?,
            billing,
            callbacks: section(&vars, "CALLBACK_")?,
            media,
            rate_limits: section(&vars, "")?,
            http: section(&vars, "")?,
            metrics: section(&vars, "")?,
            mail: section(&vars, "")?,
            linking,
            showcase: section(&vars, "")?,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.environment == Environment::Production {
            self.refuse_development_settings()?;
        }
        self.check_limits()
    }

    /// Production runs only on real secrets, and never lets callbacks reach inside.
    fn refuse_development_settings(&self) -> Result<(), ConfigError> {
        let secrets = [
            ("JWT_SECRET", &self.auth.jwt_secret, DEV_JWT_SECRET),
            ("S3_SECRET_KEY", &self.s3.secret_key, DEV_S3_SECRET),
            (
                "DATA_ENCRYPTION_KEY",
                &self.auth.data_encryption_key,
                DEV_DATA_ENCRYPTION_KEY,
            ),
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
        if self.metrics.exposed() && self.metrics.token.is_none() {
            return Err(ConfigError::invalid(
                "METRICS_TOKEN",
                "empty while a metrics listener is reachable from other hosts",
            ));
        }
        let relay_with_tls = self
            .mail
            .smtp_url
            .as_deref()
            .is_some_and(|url| url.starts_with("smtps://") || url.contains("tls=required"));
        if !relay_with_tls {
            return Err(ConfigError::invalid(
                "SMTP_URL",
                "production needs a relay reached over TLS (smtps://, or tls=required)",
            ));
        }
        if self.callbacks.allow_private {
            return Err(ConfigError::invalid(
                "CALLBACK_ALLOW_PRIVATE",
                "true is for development only",
            ));
        }
        Ok(())
    }

    fn check_limits(&self) -> Result<(), ConfigError> {
        if self.auth.jwt_secret.len() < 32 {
            return Err(ConfigError::invalid("JWT_SECRET", "shorter than 32 bytes"));
        }
        domain::sealing::Sealer::from_base64(&self.auth.data_encryption_key)?;
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
        // The value travels in a JSON body, which the API caps at 16 KiB.
        if !(1024..=15 * 1024).contains(&self.limits.user_data_value_bytes) {
            return Err(ConfigError::invalid(
                "USER_DATA_MAX_VALUE_KIB",
                "outside 1 to 15",
            ));
        }
        self.check_weekly()?;
        if self.limits.user_data_keys < 1 {
            return Err(ConfigError::invalid("USER_DATA_MAX_KEYS", "below 1"));
        }
        self.check_jobs()?;
        let text = &self.render.watermark_text;
        // Kept to characters that need no escaping inside a libavfilter graph.
        let plain = |c: char| c.is_alphanumeric() || " .,!?@#&()+-_".contains(c);
        if !(1..=40).contains(&text.chars().count()) || !text.chars().all(plain) {
            return Err(ConfigError::invalid("WATERMARK_TEXT", text));
        }
        let plans = [&self.billing.free, &self.billing.pro];
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

    /// The weekly run: a valid hour, a clip range, weeks to catch up and a montage length.
    fn check_weekly(&self) -> Result<(), ConfigError> {
        let weekly = &self.showcase;
        if weekly.hour > 23 {
            return Err(ConfigError::invalid("WEEKLY_HOUR", "above 23"));
        }
        if weekly.min_clips < 1 || weekly.max_clips < weekly.min_clips {
            return Err(ConfigError::invalid(
                "WEEKLY_MIN_CLIPS/WEEKLY_MAX_CLIPS",
                "below 1, or the maximum below the minimum",
            ));
        }
        if weekly.catch_up_weeks < 1 || weekly.target_seconds < domain::jobs::MIN_TARGET_DURATION {
            return Err(ConfigError::invalid(
                "WEEKLY_CATCH_UP_WEEKS/WEEKLY_TARGET_SECS",
                "no week to run, or a montage shorter than a job may be",
            ));
        }
        Ok(())
    }

    /// Attempts, prefetch, open jobs per plan, and a lease workers can renew in time.
    fn check_jobs(&self) -> Result<(), ConfigError> {
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
        // A lease must survive a renewal or two going astray, or it lapses under its job.
        if engine.lease < engine.lease_renewal * 2
            || engine.lease_renewal.is_zero()
            || engine.reconcile_interval.is_zero()
        {
            return Err(ConfigError::invalid(
                "JOB_LEASE_SECS/JOB_LEASE_RENEW_MS/RECONCILE_SECS",
                "lease below two renewals, or zero interval",
            ));
        }
        Ok(())
    }

    /// How long a worker may stay silent before its in-flight jobs count as orphaned.
    pub fn worker_stale_after(&self) -> Duration {
        self.render.heartbeat_interval * self.render.missed_heartbeats as u32
    }
}

/// One section, from the variables that start with `prefix` (envy matches the rest of each
/// name to a field, ignoring case).
fn section<T: DeserializeOwned>(vars: &[(String, String)], prefix: &str) -> Result<T, ConfigError> {
    let vars = vars.iter().cloned();
    let loaded = if prefix.is_empty() {
        envy::from_iter(vars)
    } else {
        envy::prefixed(prefix).from_iter(vars)
    };
    loaded.map_err(|err| invalid_variable(&err.to_string()))
}

/// envy reports a bad value as "… while parsing value 'V' provided by KEY".
fn invalid_variable(message: &str) -> ConfigError {
    let parsed = message
        .rsplit_once(" provided by ")
        .and_then(|(rest, key)| {
            let value = rest.rsplit_once(" while parsing value '")?.1;
            Some((key, value.strip_suffix('\'')?))
        });
    match parsed {
        Some((key, value)) => ConfigError::invalid(key, value),
        None => ConfigError::invalid("environment", message),
    }
}

/// A comma-separated list of provider ids; empty turns linking off.
fn provider_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ProviderId>, D::Error> {
    let list = String::deserialize(d)?;
    let mut providers = Vec::new();
    for id in list.split(',').map(str::trim).filter(|id| !id.is_empty()) {
        let provider = id.parse().map_err(|()| {
            serde::de::Error::custom(format!(
                "unknown provider while parsing value '{id}' provided by ACCOUNT_PROVIDERS"
            ))
        })?;
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
        Config::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())))
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
            matches!(err, ConfigError::DefaultSecret("DATA_ENCRYPTION_KEY")),
            "{err:?}"
        );
        let err = config(&[
            ("APP_ENV", "production"),
            ("JWT_SECRET", "a-real-secret-that-is-long-enough-0123456789"),
            ("S3_SECRET_KEY", "real-s3-secret"),
            (
                "DATA_ENCRYPTION_KEY",
                "cmVhbC1kYXRhLWVuY3J5cHRpb24ta2V5LTMyYnl0ZSE=",
            ),
        ])
        .unwrap_err();
        assert!(
            matches!(err, ConfigError::DefaultSecret("STRIPE_WEBHOOK_SECRET")),
            "{err:?}"
        );
        assert!(
            config(&[("DATA_ENCRYPTION_KEY", "c2hvcnQ=")]).is_err(),
            "a key that is not 32 bytes"
        );
        let err = config(&[
            ("APP_ENV", "production"),
            ("JWT_SECRET", "a-real-secret-that-is-long-enough-0123456789"),
            ("S3_SECRET_KEY", "real-s3-secret"),
            (
                "DATA_ENCRYPTION_KEY",
                "cmVhbC1kYXRhLWVuY3J5cHRpb24ta2V5LTMyYnl0ZSE=",
            ),
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
    fn metrics_listeners_parse_and_need_a_token_when_exposed() {
        let parsed = config(&[
            ("API_METRICS_BIND", "off"),
            ("WORKER_METRICS_BIND", "127.0.0.1:0"),
        ])
        .unwrap();
        assert_eq!(parsed.metrics.api_bind, None);
        assert_eq!(
            parsed.metrics.worker_bind,
            Some("127.0.0.1:0".parse().unwrap())
        );
        assert!(config(&[("API_METRICS_BIND", "localhost")]).is_err());
        let production = [
            ("APP_ENV", "production"),
            ("JWT_SECRET", "a-real-secret-that-is-long-enough-0123456789"),
            ("S3_SECRET_KEY", "real-s3-secret"),
            (
                "DATA_ENCRYPTION_KEY",
                "cmVhbC1kYXRhLWVuY3J5cHRpb24ta2V5LTMyYnl0ZSE=",
            ),
            ("STRIPE_WEBHOOK_SECRET", "whsec_real"),
            ("STRIPE_SECRET_KEY", "sk_live_real"),
            ("CALLBACK_SIGNING_SECRET", "real-callback-secret"),
            ("SMTP_URL", "smtps://mailer:secret@relay.example.com"),
        ];
        assert!(config(&production).is_ok(), "loopback needs no token");
        let exposed = [&production[..], &[("API_METRICS_BIND", "0.0.0.0:9464")]].concat();
        let err = config(&exposed).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Invalid { key, .. } if key == "METRICS_TOKEN"),
            "{err:?}"
        );
        let guarded = [&exposed[..], &[("METRICS_TOKEN", "scrape-secret")]].concat();
        assert!(config(&guarded).is_ok());
        let mut plain_relay = production.to_vec();
        plain_relay.retain(|(key, _)| *key != "SMTP_URL");
        plain_relay.push(("SMTP_URL", "smtp://relay.example.com"));
        let err = config(&plain_relay).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Invalid { key, .. } if key == "SMTP_URL"),
            "production mail goes over TLS: {err:?}"
        );
    }

    #[test]
    fn leases_outlast_two_renewals() {
        let lease =
            |secs, renew_ms| config(&[("JOB_LEASE_SECS", secs), ("JOB_LEASE_RENEW_MS", renew_ms)]);
        assert!(lease("10", "5000").is_ok());
        assert!(
            lease("9", "5000").is_err(),
            "a lease shorter than two renewals lapses"
        );
        assert!(lease("10", "0").is_err());
    }

    #[test]
    fn redis_roles_share_the_queues_server_unless_told_otherwise() {
        let shared = config(&[("REDIS_URL", "redis://queue:6379/")]).unwrap();
        assert_eq!(shared.events_redis_url, "redis://queue:6379/");
        assert_eq!(shared.limiter_redis_url, "redis://queue:6379/");
        let split = config(&[
            ("REDIS_URL", "redis://queue:6379/"),
            ("EVENTS_REDIS_URL", "redis://events:6379/"),
            ("LIMITER_REDIS_URL", "redis://limiter:6379/"),
        ])
        .unwrap();
        assert_eq!(split.redis_url, "redis://queue:6379/");
        assert_eq!(split.events_redis_url, "redis://events:6379/");
        assert_eq!(split.limiter_redis_url, "redis://limiter:6379/");
    }

    #[test]
    fn watermark_text_must_be_plain() {
        assert!(config(&[("WATERMARK_TEXT", "GG wp!")]).is_ok());
        for bad in ["", "a:b", "it's", "%{pts}", &"x".repeat(41)] {
            assert!(config(&[("WATERMARK_TEXT", bad)]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn each_section_reads_its_variables_in_their_units() {
        let config = config(&[
            ("JOB_LEASE_SECS", "45"),
            ("JOB_LEASE_RENEW_MS", "1500"),
            ("RELAY_INTERVAL_MS", "250"),
            ("MAX_FILE_MIB", "2"),
            ("WEBHOOK_MAX_KIB", "8"),
            ("INPUT_RETENTION_HOURS", "2"),
            ("LOGIN_FREE_FAILURES", "7"),
            ("MEDIA_MAX_CLIP_SECS", "30"),
            ("CALLBACK_CONCURRENCY", "3"),
            ("PRO_ACTIVE_JOBS", "9"),
            ("FREE_OUTPUT_RETENTION_SECS", "0"),
            ("STRIPE_PRO_PRICE_ID", "price_real"),
            ("TRUSTED_PROXY_HEADER", ""),
        ])
        .unwrap();
        assert_eq!(config.engine.lease, Duration::from_secs(45));
        assert_eq!(config.engine.lease_renewal, Duration::from_millis(1500));
        assert_eq!(config.engine.relay_interval, Duration::from_millis(250));
        assert_eq!(config.limits.max_file_bytes, 2 * 1024 * 1024);
        assert_eq!(config.http.webhook_max_bytes, 8 * 1024);
        assert_eq!(config.render.input_retention, Duration::from_secs(7200));
        assert_eq!(config.auth.login_throttle.free_failures, 7);
        assert_eq!(config.media.clip_limits.max_duration_seconds, 30.0);
        assert_eq!(config.callbacks.concurrency, 3);
        assert_eq!(config.billing.pro.active_jobs, 9);
        assert_eq!(
            config.billing.pro.open_jobs, 50,
            "the rest stays the plan's"
        );
        assert_eq!(
            config.billing.free.output_retention, None,
            "0 keeps outputs"
        );
        assert_eq!(
            config.billing.pro.stripe_price_id.as_deref(),
            Some("price_real")
        );
        assert_eq!(
            config.rate_limits.trusted_proxy_header, None,
            "empty is none"
        );
    }

    #[test]
    fn malformed_numbers_are_refused() {
        let err = config(&[("MAX_FILE_MIB", "lots")]).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { key, .. } if key == "MAX_FILE_MIB"));
    }
}
