//! The worker's part in weekly montages: the scheduled run, which every worker attempts and
//! the database lets happen once per user and week.

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::Notify;

use domain::error::ServiceError;
use engine::tasks::{Pass, Task as BackgroundTask};
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
        if pass.built + pass.too_little > 0 {
            tracing::info!(
                built = pass.built,
                too_little = pass.too_little,
                "weekly montages decided"
            );
            telemetry::metrics::weekly_montages(pass.built, pass.too_little);
        }
        if pass.built > 0 {
            self.dispatch.notify_one();
        }
        Ok(if pass.more { Pass::More } else { Pass::Idle })
    }
}
