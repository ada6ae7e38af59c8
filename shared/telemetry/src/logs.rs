//! Logging through `tracing`; `RUST_LOG` filters. Lines are JSON (one object per line, with
//! the fields of every span they are in: `request_id`, `user_id`, `job_id`) when
//! `LOG_FORMAT=json`, and by default with `APP_ENV=production`; text otherwise.

use tracing_subscriber::{fmt, fmt::MakeWriter, EnvFilter};

pub fn init(default_filter: &str) {
    init_with(default_filter, std::io::stdout);
}

/// The same, written to stderr: for processes whose stdout is a protocol.
pub fn init_stderr(default_filter: &str) {
    init_with(default_filter, std::io::stderr);
}

fn init_with<W>(default_filter: &str, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(writer);
    let result = if json_lines() {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    // A second call (tests start several apps in one process) keeps the first subscriber.
    let _ = result;
}

/// Read before the configuration is, so that its own errors are logged in the right format.
fn json_lines() -> bool {
    match std::env::var("LOG_FORMAT") {
        Ok(format) => format == "json",
        Err(_) => std::env::var("APP_ENV").is_ok_and(|env| env == "production"),
    }
}
