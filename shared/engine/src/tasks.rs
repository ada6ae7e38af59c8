//! Background tasks: each named, run periodically or when woken, stopped through one
//! cancellation token and awaited on shutdown, and each reporting its last run.

use std::{
    collections::BTreeMap,
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use domain::error::ServiceError;

/// What one run of a task found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Caught up: wait for the next period or wake-up.
    Idle,
    /// More work is waiting: run again at once.
    More,
}

/// One piece of recurring work.
pub trait Task: Send + 'static {
    /// A stable name for logs and reports.
    const NAME: &'static str;

    fn run(&mut self) -> impl Future<Output = Result<Pass, ServiceError>> + Send;
}

/// When a task runs besides right after it starts.
#[derive(Clone)]
pub struct Schedule {
    pub every: Duration,
    /// Runs at once when notified (say, a job was created), not only every `every`.
    pub woken_by: Option<Arc<Notify>>,
}

impl Schedule {
    pub fn every(every: Duration) -> Self {
        Self {
            every,
            woken_by: None,
        }
    }

    pub fn woken_by(mut self, wake: Arc<Notify>) -> Self {
        self.woken_by = Some(wake);
        self
    }
}

/// A task's last run, as operators and tests read it.
#[derive(Debug, Clone, Default)]
pub struct LastRun {
    pub runs: u64,
    pub finished_at: Option<DateTime<Utc>>,
    /// The error of the last run, if it failed.
    pub error: Option<String>,
}

/// The tasks of one process.
#[derive(Clone, Default)]
pub struct BackgroundTasks {
    tracker: TaskTracker,
    stop: CancellationToken,
    reports: Arc<Mutex<BTreeMap<&'static str, LastRun>>>,
}

impl BackgroundTasks {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `task` now and then on `schedule` until shutdown. A run in progress when
    /// shutdown comes is dropped at its next await point.
    pub fn spawn<T: Task>(&self, mut task: T, schedule: Schedule) {
        let (stop, reports) = (self.stop.clone(), self.reports.clone());
        reports
            .lock()
            .expect("not poisoned")
            .entry(T::NAME)
            .or_default();
        self.tracker.spawn(async move {
            loop {
                let pass = tokio::select! {
                    () = stop.cancelled() => return,
                    pass = task.run() => pass,
                };
                record(&reports, T::NAME, &pass);
                if pass.is_ok_and(|p| p == Pass::More) {
                    continue;
                }
                let woken = async {
                    match &schedule.woken_by {
                        Some(wake) => wake.notified().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(schedule.every) => {}
                    () = woken => {}
                }
            }
        });
    }

    /// Runs `service`, a future that does not end by itself (a listener), until shutdown.
    pub fn spawn_service(&self, service: impl std::future::Future<Output = ()> + Send + 'static) {
        let stop = self.stop.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                () = service => {}
            }
        });
    }

    /// Every task's last run, by name.
    pub fn last_runs(&self) -> BTreeMap<&'static str, LastRun> {
        self.reports.lock().expect("not poisoned").clone()
    }

    /// Stops every task and waits until each has ended.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

fn record(
    reports: &Mutex<BTreeMap<&'static str, LastRun>>,
    name: &'static str,
    pass: &Result<Pass, ServiceError>,
) {
    if let Err(err) = pass {
        tracing::warn!(task = name, error = %err, "background task run failed");
    }
    let mut reports = reports.lock().expect("not poisoned");
    let last = reports.entry(name).or_default();
    last.runs += 1;
    last.finished_at = Some(Utc::now());
    last.error = pass.as_ref().err().map(ToString::to_string);
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Countdown(u32);

    impl Task for Countdown {
        const NAME: &'static str = "countdown";

        async fn run(&mut self) -> Result<Pass, ServiceError> {
            if self.0 == 0 {
                return Err(ServiceError::internal("nothing left"));
            }
            self.0 -= 1;
            Ok(if self.0 > 0 { Pass::More } else { Pass::Idle })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn runs_while_there_is_more_then_on_schedule_and_stops_on_shutdown() {
        let tasks = BackgroundTasks::new();
        let wake = Arc::new(Notify::new());
        tasks.spawn(
            Countdown(3),
            Schedule::every(Duration::from_secs(3600)).woken_by(wake.clone()),
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
        let after_start = tasks.last_runs()["countdown"].clone();
        assert_eq!(after_start.runs, 3, "runs back to back while there is more");
        assert_eq!(after_start.error, None);

        wake.notify_one();
        tokio::time::sleep(Duration::from_millis(1)).await;
        let after_wake = tasks.last_runs()["countdown"].clone();
        assert_eq!(
            after_wake.runs, 4,
            "a wake-up runs it before the period ends"
        );
        assert!(after_wake.error.is_some_and(|e| e.contains("nothing left")));

        tasks.shutdown().await;
        assert!(tasks.tracker.is_empty(), "every task ended");
    }
}
