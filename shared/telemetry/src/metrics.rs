//! The service's Prometheus metrics, all in this file: each name with its help text and
//! buckets, and one function per thing measured, so a call site can neither misspell a name
//! nor invent a label. Labels take values from closed sets (route templates, enums), never
//! ids, so the number of series stays bounded.

use std::sync::OnceLock;
use std::time::Duration;

use domain::jobs::{FailureCode, JobStatus};
use domain::timings::StageTimings;
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics::{SharedString, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const HTTP_REQUEST_SECONDS: &str = "montage_http_request_duration_seconds";
const UPLOAD_BYTES: &str = "montage_upload_bytes_total";
const RATE_LIMIT_REFUSALS: &str = "montage_rate_limit_refusals_total";
const DEPENDENCY_UP: &str = "montage_dependency_up";
const LIVE_WORKERS: &str = "montage_live_workers";
const DB_POOL_CONNECTIONS: &str = "montage_db_pool_connections";
const JOBS: &str = "montage_jobs";
const QUEUE_DEPTH: &str = "montage_queue_depth";
const JOB_ATTEMPTS: &str = "montage_job_attempts_total";
const ENQUEUE_TO_START_SECONDS: &str = "montage_job_enqueue_to_start_seconds";
const JOB_ENDS: &str = "montage_job_attempt_ends_total";
const JOB_FAILURES: &str = "montage_job_failures_total";
const STAGE_SECONDS: &str = "montage_render_stage_seconds";
const REALTIME_FACTOR: &str = "montage_render_realtime_factor";
const TRANSFER_BYTES: &str = "montage_storage_transfer_bytes_total";
const CLIP_ANALYSES: &str = "montage_clip_analyses_total";
const WEEKLY_MONTAGES: &str = "montage_weekly_montages_total";
const LEASE_RENEWAL_SECONDS: &str = "montage_lease_renewal_seconds";
const LEASES_LOST: &str = "montage_leases_lost_total";

/// Request latencies: from well under a millisecond (a status poll) to a long upload.
const HTTP_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Waits and stages of a job: milliseconds for a claim, minutes for a long render.
const JOB_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0,
    640.0,
];
/// A lease renewal's round trip: a millisecond when the database keeps up, seconds when not.
const RENEWAL_BUCKETS: &[f64] = &[
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];
/// Seconds of montage per second of job: under 1 is slower than real time.
const FACTOR_BUCKETS: &[f64] = &[0.1, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0];

static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs this process's recorder on first use and answers its handle, which renders the
/// text a scrape reads.
pub fn recorder() -> PrometheusHandle {
    RECORDER
        .get_or_init(|| {
            let buckets = [
                (HTTP_REQUEST_SECONDS, HTTP_BUCKETS),
                (ENQUEUE_TO_START_SECONDS, JOB_BUCKETS),
                (STAGE_SECONDS, JOB_BUCKETS),
                (REALTIME_FACTOR, FACTOR_BUCKETS),
                (LEASE_RENEWAL_SECONDS, RENEWAL_BUCKETS),
            ];
            let builder =
                buckets
                    .into_iter()
                    .fold(PrometheusBuilder::new(), |builder, (name, buckets)| {
                        builder
                            .set_buckets_for_metric(Matcher::Full(name.to_owned()), buckets)
                            .expect("bucket lists are not empty")
                    });
            let handle = builder
                .install_recorder()
                .expect("no other metrics recorder is installed");
            describe();
            handle
        })
        .clone()
}

fn describe() {
    describe_histogram!(
        HTTP_REQUEST_SECONDS,
        Unit::Seconds,
        "HTTP requests by method, route template and status, with their latency"
    );
    describe_counter!(UPLOAD_BYTES, Unit::Bytes, "Clip bytes received by uploads");
    describe_counter!(
        RATE_LIMIT_REFUSALS,
        "Requests refused with 429, by rate-limit class"
    );
    describe_gauge!(
        DEPENDENCY_UP,
        "1 while the last health probe reached the dependency, else 0"
    );
    describe_gauge!(LIVE_WORKERS, "Workers with a fresh heartbeat");
    describe_gauge!(
        DB_POOL_CONNECTIONS,
        "This process's database connections, idle or in use"
    );
    describe_gauge!(JOBS, "Open jobs by status (pending, processing, retrying)");
    describe_gauge!(
        QUEUE_DEPTH,
        "Jobs due to start that no worker has claimed yet (pending or retrying)"
    );
    describe_job_metrics();
}

/// The workers' series: attempts, their stages and leases, transfers and analyses.
fn describe_job_metrics() {
    describe_counter!(JOB_ATTEMPTS, "Attempts claimed by this worker");
    describe_histogram!(
        ENQUEUE_TO_START_SECONDS,
        Unit::Seconds,
        "From the moment a job could start (created, or due again) to its claim"
    );
    describe_counter!(JOB_ENDS, "Attempts ended, by outcome");
    describe_counter!(
        JOB_FAILURES,
        "Failed attempts by failure code, retried or final"
    );
    describe_histogram!(
        STAGE_SECONDS,
        Unit::Seconds,
        "Seconds per stage of each successful job"
    );
    describe_histogram!(
        REALTIME_FACTOR,
        "Seconds of montage per second of job, claim to upload (1 is real time)"
    );
    describe_counter!(
        TRANSFER_BYTES,
        Unit::Bytes,
        "Bytes between workers and storage, by direction"
    );
    describe_counter!(
        CLIP_ANALYSES,
        "Clips a job or an examination needed analysed: measured, or stored by the library"
    );
    describe_histogram!(
        LEASE_RENEWAL_SECONDS,
        Unit::Seconds,
        "Round trip of each renewal of a running job's lease"
    );
    describe_counter!(
        LEASES_LOST,
        "Running jobs this worker found taken over (it stalled past the lease) or deleted"
    );
    describe_counter!(
        WEEKLY_MONTAGES,
        "Users' weeks the weekly run decided: a montage built, or too little material"
    );
}

/// One answered HTTP request; `route` is the matched template (`/api/v2/jobs/{job_id}`), or
/// `unmatched`.
pub fn http_request(method: &str, route: Option<String>, status: u16, elapsed: Duration) {
    let route = route.map_or(SharedString::const_str("unmatched"), SharedString::from);
    histogram!(
        HTTP_REQUEST_SECONDS,
        "method" => method.to_owned(),
        "route" => route,
        "status" => status.to_string(),
    )
    .record(elapsed);
}

pub fn upload_received(bytes: u64) {
    counter!(UPLOAD_BYTES).increment(bytes);
}

pub fn rate_limit_refused(class: &'static str) {
    counter!(RATE_LIMIT_REFUSALS, "class" => class).increment(1);
}

/// The dependencies a health probe checks.
#[derive(Debug, Clone, Copy)]
pub enum Dependency {
    Database,
    Redis,
    Storage,
}

impl Dependency {
    fn label(self) -> &'static str {
        match self {
            Self::Database => "database",
            Self::Redis => "redis",
            Self::Storage => "storage",
        }
    }
}

pub fn dependency_probed(dependency: Dependency, up: bool) {
    gauge!(DEPENDENCY_UP, "dependency" => dependency.label()).set(f64::from(u8::from(up)));
}

pub fn live_workers(count: u64) {
    gauge!(LIVE_WORKERS).set(count as f64);
}

pub fn db_pool(idle: u32, in_use: u32) {
    gauge!(DB_POOL_CONNECTIONS, "state" => "idle").set(idle);
    gauge!(DB_POOL_CONNECTIONS, "state" => "in_use").set(in_use);
}

/// Sets the count of every status that is not final; one missing from `counts` has none.
pub fn open_jobs(counts: &[(JobStatus, i64)], queue_depth: i64) {
    for &status in JobStatus::ALL.iter().filter(|status| !status.is_final()) {
        let count = counts
            .iter()
            .find(|(counted, _)| *counted == status)
            .map_or(0, |(_, count)| *count);
        gauge!(JOBS, "status" => status.as_str()).set(count as f64);
    }
    gauge!(QUEUE_DEPTH).set(queue_depth as f64);
}

/// A worker claimed an attempt that could have started `waited` ago.
pub fn attempt_claimed(waited: Duration) {
    counter!(JOB_ATTEMPTS).increment(1);
    histogram!(ENQUEUE_TO_START_SECONDS).record(waited);
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptEnd {
    Succeeded,
    /// Failed for good; [`attempt_failed`] counts the code of this and of a retried one.
    Failed,
    /// Failed with a transient error; due again later.
    Retried,
    Cancelled,
    TimedOut,
    /// The worker was shutting down and gave the job back to the queue.
    HandedBack,
    /// Another worker holds the job now.
    LeaseLost,
}

impl AttemptEnd {
    fn label(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Retried => "retried",
            Self::Cancelled => "cancelled",
            Self::TimedOut => "timed_out",
            Self::HandedBack => "handed_back",
            Self::LeaseLost => "lease_lost",
        }
    }
}

/// One renewal of a running job's lease, and whether the job was still this worker's.
pub fn lease_renewed(round_trip: Duration, held: bool) {
    histogram!(LEASE_RENEWAL_SECONDS).record(round_trip);
    if !held {
        counter!(LEASES_LOST).increment(1);
    }
}

pub fn attempt_ended(end: AttemptEnd) {
    counter!(JOB_ENDS, "outcome" => end.label()).increment(1);
}

pub fn attempt_failed(code: FailureCode) {
    counter!(JOB_FAILURES, "code" => code.as_str()).increment(1);
}

/// Where a successful job's time went, and how fast it was against the montage's length.
pub fn job_rendered(timings: &StageTimings, montage_seconds: f64) {
    let stages = [
        ("download", timings.download),
        ("probe", timings.probe),
        ("analysis", timings.analysis),
        ("audio", timings.audio),
        ("video", timings.video),
        ("upload", timings.upload),
        ("total", timings.total),
    ];
    for (stage, seconds) in stages {
        histogram!(STAGE_SECONDS, "stage" => stage).record(seconds);
    }
    if timings.total > 0.0 {
        histogram!(REALTIME_FACTOR).record(montage_seconds / timings.total);
    }
}

/// Which way bytes went between a worker and storage.
#[derive(Debug, Clone, Copy)]
pub enum Transfer {
    Download,
    Upload,
}

pub fn transferred(direction: Transfer, bytes: u64) {
    let direction = match direction {
        Transfer::Download => "download",
        Transfer::Upload => "upload",
    };
    counter!(TRANSFER_BYTES, "direction" => direction).increment(bytes);
}

/// A clip's highlight analysis: taken from the library, or measured now.
pub fn clip_analysis(stored: bool) {
    let analysis = if stored { "stored" } else { "measured" };
    counter!(CLIP_ANALYSES, "analysis" => analysis).increment(1);
}

/// Weeks the weekly run decided by this worker, with `outcome`.
pub fn weekly_montages(outcome: domain::showcase::WeeklyOutcome, weeks: usize) {
    counter!(WEEKLY_MONTAGES, "outcome" => outcome.as_str()).increment(weeks as u64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dashboard_plots_only_metrics_that_exist() {
        let names = [
            HTTP_REQUEST_SECONDS,
            UPLOAD_BYTES,
            RATE_LIMIT_REFUSALS,
            DEPENDENCY_UP,
            LIVE_WORKERS,
            DB_POOL_CONNECTIONS,
            JOBS,
            QUEUE_DEPTH,
            JOB_ATTEMPTS,
            ENQUEUE_TO_START_SECONDS,
            JOB_ENDS,
            JOB_FAILURES,
            STAGE_SECONDS,
            REALTIME_FACTOR,
            TRANSFER_BYTES,
        ];
        let dashboard = include_str!("../../../deploy/grafana/dashboards/montage.json");
        let plotted: Vec<&str> = dashboard
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|word| word.starts_with("montage_"))
            .collect();
        assert!(
            plotted.len() > 15,
            "the dashboard plots the service's metrics"
        );
        for name in plotted {
            let metric = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(name);
            assert!(names.contains(&metric), "{name} is not a metric of ours");
        }
    }
}
