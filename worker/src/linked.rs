//! The worker's part with linked accounts: account syncs (clip imports, and the periodic
//! ones queued), and posts uploaded to platforms.

use std::time::Duration;

use domain::error::ServiceError;
use engine::tasks::{Pass, Task as BackgroundTask};
use linking::import::Importer;
use linking::posting::Poster;

/// How long a sync or post taken by this worker is its own before another may take it over.
const HOLD: Duration = Duration::from_secs(15 * 60);

pub struct AccountSyncs {
    pub importer: Importer,
    /// How often each importing link is synced without being asked; `None`: never.
    pub every: Option<Duration>,
}

impl BackgroundTask for AccountSyncs {
    const NAME: &'static str = "account syncs";

    async fn run(&mut self) -> Result<Pass, ServiceError> {
        if let Some(every) = self.every {
            let queued = self.importer.linking.schedule_due_syncs(every).await?;
            if queued > 0 {
                tracing::info!(queued, "queued periodic account syncs");
            }
        }
        let Some((sync, link)) = self.importer.linking.take_sync(HOLD).await? else {
            return Ok(Pass::Idle);
        };
        let ended = self.importer.run(sync, link).await?;
        tracing::info!(sync_id = %ended.id, status = %ended.status, imported = ended.imported, failed = ended.failed, "account sync ended");
        Ok(Pass::More)
    }
}

/// Uploads posts to platforms, one attempt at a time.
pub struct SocialPosts {
    pub poster: Poster,
}

impl BackgroundTask for SocialPosts {
    const NAME: &'static str = "social posts";

    async fn run(&mut self) -> Result<Pass, ServiceError> {
        let Some((post, link)) = self.poster.linking.take_post(HOLD).await? else {
            return Ok(Pass::Idle);
        };
        let after = self.poster.run(post, link).await?;
        tracing::info!(post_id = %after.id, status = %after.status, "post attempt ended");
        Ok(Pass::More)
    }
}
