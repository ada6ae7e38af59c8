//! The worker's part in weekly montages: the scheduled run, which every worker attempts and
//! the database lets happen once per user and week.

use std::sync::Arc;

use chrono::Utc;
use db::Db;
use domain::error::ServiceError;
use domain::showcase::WeeklyOutcome;
use engine::tasks::{BackgroundTasks, Pass, Schedule, Task as BackgroundTask};
use settings::Config;
use tokio::sync::Notify;
use weekly::run::WeeklyRun;

pub struct WeeklyMontagesTask {
    pub run: WeeklyRun,
    /// Wakes this worker's relay, which pushes the jobs the run made.
    pub dispatch: Arc<Notify>,
}

impl BackgroundTask for WeeklyMontagesTask {
    const NAME: &'static str = "weekly montages";

    async fn run(&mut self) -> Result<Pass, ServiceError> {
        let pass = self.run.pass(Utc::now()).await?;
        if pass.built + pass.too_little + pass.over_quota > 0 {
            tracing::info!(
                built = pass.built,
                too_little = pass.too_little,
                over_quota = pass.over_quota,
                "weekly montages decided"
            );
            for (outcome, weeks) in [
                (WeeklyOutcome::Built, pass.built),
                (WeeklyOutcome::TooLittle, pass.too_little),
                (WeeklyOutcome::OverQuota, pass.over_quota),
            ] {
                telemetry::metrics::weekly_montages(outcome, weeks);
            }
        }
        if pass.built > 0 {
            self.dispatch.notify_one();
        }
        Ok(if pass.more { Pass::More } else { Pass::Idle })
    }
}

/// Runs the weekly montages on `tasks`, when this deployment makes them.
pub fn spawn_on(tasks: &BackgroundTasks, config: &Config, db: Db, dispatch: Arc<Notify>) {
    let Some(every) = config.showcase.check_every else {
        return;
    };
    let run = WeeklyRun::new(
        db,
        config.showcase.clone(),
        config.billing.clone(),
        config.mail.unverified_jobs,
    );
    tasks.spawn(WeeklyMontagesTask { run, dispatch }, Schedule::every(every));
}
