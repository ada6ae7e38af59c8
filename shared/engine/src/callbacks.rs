//! Job callbacks: when a job with a `callback_url` ends, a signed JSON webhook is POSTed to
//! it. Deliveries are queued by a database trigger in the transaction that ends the job, and
//! sent by workers, with retries and backoff until the receiver answers 2xx.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use uuid::Uuid;

use crate::egress;
use crate::lifecycle::retry_delay;
use db::models::{JobOutputRow, JobRow};
use db::schema::{callback_deliveries, job_outputs, jobs};
use db::Db;
use domain::error::{ServiceError, ServiceResult};
use domain::jobs::{FailureCode, JobStatus, OutputFormat};
use domain::signing;

use crate::tasks::{BackgroundTasks, Pass, Schedule, Task};
use settings::CallbackConfig;

/// Deliveries a sender takes per pass.
const BATCH: i64 = 20;
/// How long a taken delivery stays reserved for its sender, so two never send it at once.
const RESERVATION: chrono::Duration = chrono::Duration::minutes(2);

impl Task for CallbackSender {
    const NAME: &'static str = "callbacks";

    async fn run(&mut self) -> ServiceResult<Pass> {
        let sent = self.send_due().await?;
        Ok(if sent > 0 { Pass::More } else { Pass::Idle })
    }
}

/// The body of a callback.
#[derive(Debug, Serialize)]
pub struct JobEnded {
    pub event: &'static str,
    pub job_id: Uuid,
    pub status: JobStatus,
    pub attempts: i32,
    pub finished_at: Option<DateTime<Utc>>,
    pub error: Option<CallbackError>,
    pub outputs: Vec<CallbackOutput>,
}

#[derive(Debug, Serialize)]
pub struct CallbackError {
    pub code: FailureCode,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct CallbackOutput {
    pub format: OutputFormat,
    pub width: i32,
    pub height: i32,
    pub duration: f64,
    /// Relative to the API; redirects to a short-lived link for an authenticated owner.
    pub download_url: String,
}

impl JobEnded {
    fn new(job: JobRow, outputs: Vec<JobOutputRow>) -> Self {
        let error = job
            .error_code
            .zip(job.error_message)
            .map(|(code, message)| CallbackError { code, message });
        Self {
            event: "job.ended",
            job_id: job.id,
            status: job.status,
            attempts: job.attempts,
            finished_at: job.finished_at,
            error,
            outputs: outputs
                .into_iter()
                .map(|o| CallbackOutput {
                    download_url: format!("/api/v2/jobs/{}/download?format={}", job.id, o.format),
                    format: o.format,
                    width: o.width,
                    height: o.height,
                    duration: o.duration_seconds,
                })
                .collect(),
        }
    }
}

/// A delivery taken for sending, with the job it reports.
struct DueDelivery {
    job: JobRow,
    outputs: Vec<JobOutputRow>,
    url: String,
    /// Attempts before this one.
    attempts: i32,
}

#[derive(Clone)]
pub struct CallbackSender {
    db: Db,
    client: reqwest::Client,
    config: CallbackConfig,
}

impl CallbackSender {
    pub fn new(db: Db, config: CallbackConfig) -> ServiceResult<Self> {
        // Two rustls crypto backends are linked (the AWS and Stripe clients bring their own),
        // so rustls cannot pick one by itself. Ours is aws-lc-rs; a second call is a no-op.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let mut client = reqwest::Client::builder();
        if !config.allow_private {
            client = client.dns_resolver(egress::PublicOnlyResolver::shared());
        }
        let client = client
            .timeout(config.timeout)
            // A redirect is an answer, not a delivery: the receiver must answer 2xx itself.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("montage-callbacks/1")
            .build()
            .map_err(ServiceError::internal)?;
        Ok(Self { db, client, config })
    }

    /// Sends due deliveries on `tasks`, every `poll_interval` or at once while more are due.
    pub fn spawn_on(self, tasks: &BackgroundTasks) {
        let every = self.config.poll_interval;
        tasks.spawn(self, Schedule::every(every));
    }

    /// Sends every delivery due now, a bounded number at once; returns how many were
    /// attempted.
    pub async fn send_due(&self) -> ServiceResult<usize> {
        use futures::StreamExt;
        let due = self.take_due().await?;
        let count = due.len();
        let results: Vec<ServiceResult<()>> = futures::stream::iter(due)
            .map(|delivery| self.deliver(delivery))
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        results.into_iter().collect::<ServiceResult<Vec<()>>>()?;
        Ok(count)
    }

    async fn deliver(&self, delivery: DueDelivery) -> ServiceResult<()> {
        let (job_id, attempts) = (delivery.job.id, delivery.attempts + 1);
        let body = serde_json::to_vec(&JobEnded::new(delivery.job, delivery.outputs))
            .map_err(ServiceError::internal)?;
        let outcome = self.post(&delivery.url, job_id, body).await;
        self.record(job_id, attempts, outcome).await
    }

    async fn post(&self, url: &str, job_id: Uuid, body: Vec<u8>) -> Result<(), String> {
        // An IP literal never reaches the resolver: check it here.
        if !self.config.allow_private {
            let literal = url::Url::parse(url).ok().and_then(|u| match u.host()? {
                url::Host::Ipv4(ip) => Some(std::net::IpAddr::V4(ip)),
                url::Host::Ipv6(ip) => Some(std::net::IpAddr::V6(ip)),
                url::Host::Domain(_) => None,
            });
            if literal.is_some_and(|ip| !egress::is_public(ip)) {
                return Err("refused: the callback points at a private address".into());
            }
        }
        let signature = signing::header(&self.config.signing_secret, Utc::now().timestamp(), &body);
        let response = self
            .client
            .post(url)
            .header("Content-Type", "application/json")
            .header("Montage-Signature", signature)
            .header("Montage-Delivery", job_id.to_string())
            .body(body)
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("answered {}", response.status()))
        }
    }

    /// Reserves due deliveries (SKIP LOCKED: senders never share one) with their jobs.
    async fn take_due(&self) -> ServiceResult<Vec<DueDelivery>> {
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let now = Utc::now();
                    let due: Vec<(Uuid, String, i32)> = callback_deliveries::table
                        .filter(callback_deliveries::delivered_at.is_null())
                        .filter(callback_deliveries::abandoned_at.is_null())
                        .filter(callback_deliveries::next_attempt_at.le(now))
                        .order(callback_deliveries::next_attempt_at.asc())
                        .limit(BATCH)
                        .select((
                            callback_deliveries::job_id,
                            callback_deliveries::url,
                            callback_deliveries::attempts,
                        ))
                        .for_update()
                        .skip_locked()
                        .load(conn)?;
                    let ids: Vec<Uuid> = due.iter().map(|(id, _, _)| *id).collect();
                    diesel::update(
                        callback_deliveries::table.filter(callback_deliveries::job_id.eq_any(&ids)),
                    )
                    .set(callback_deliveries::next_attempt_at.eq(now + RESERVATION))
                    .execute(conn)?;
                    let jobs: Vec<JobRow> = jobs::table
                        .filter(jobs::id.eq_any(&ids))
                        .select(JobRow::as_select())
                        .load(conn)?;
                    let outputs: Vec<JobOutputRow> = job_outputs::table
                        .filter(job_outputs::job_id.eq_any(&ids))
                        .order(job_outputs::format.asc())
                        .select(JobOutputRow::as_select())
                        .load(conn)?;
                    Ok(due
                        .into_iter()
                        .filter_map(|(id, url, attempts)| {
                            Some(DueDelivery {
                                job: jobs.iter().find(|j| j.id == id)?.clone(),
                                outputs: outputs
                                    .iter()
                                    .filter(|o| o.job_id == id)
                                    .cloned()
                                    .collect(),
                                url,
                                attempts,
                            })
                        })
                        .collect())
                })
            })
            .await
    }

    async fn record(
        &self,
        job_id: Uuid,
        attempts: i32,
        outcome: Result<(), String>,
    ) -> ServiceResult<()> {
        let config = self.config.clone();
        self.db
            .run(move |conn| {
                let now = Utc::now();
                let target = callback_deliveries::table.find(job_id);
                match outcome {
                    Ok(()) => diesel::update(target)
                        .set((
                            callback_deliveries::attempts.eq(attempts),
                            callback_deliveries::delivered_at.eq(now),
                            callback_deliveries::last_error.eq(None::<String>),
                        ))
                        .execute(conn)?,
                    Err(error) if attempts >= config.max_attempts => {
                        tracing::warn!(%job_id, attempts, %error, "giving up on a job callback");
                        diesel::update(target)
                            .set((
                                callback_deliveries::attempts.eq(attempts),
                                callback_deliveries::abandoned_at.eq(now),
                                callback_deliveries::last_error.eq(error),
                            ))
                            .execute(conn)?
                    }
                    Err(error) => {
                        let delay = retry_delay(attempts, config.retry_base, Duration::from_secs(3600));
                        tracing::info!(%job_id, attempts, %error, ?delay, "job callback failed; will retry");
                        diesel::update(target)
                            .set((
                                callback_deliveries::attempts.eq(attempts),
                                callback_deliveries::next_attempt_at
                                    .eq(now + chrono::Duration::from_std(delay).unwrap_or(RESERVATION)),
                                callback_deliveries::last_error.eq(error),
                            ))
                            .execute(conn)?
                    }
                };
                Ok(())
            })
            .await
    }
}
