//! What players learn about their montages and what they are offered: share links and the
//! views they bring (`shares`, `views`), each user's statistics (`stats`), and interests
//! with the recommendations that follow them (`recommend`).

pub mod recommend;
pub mod shares;
pub mod stats;
pub mod views;

use billing::BillingService;
use db::Db;
use engine::jobs::JobService;
use storage::Storage;

#[derive(Clone)]
pub struct Insights {
    db: Db,
    storage: Storage,
    billing: BillingService,
    jobs: JobService,
    /// The API's public address, which share links use.
    public_base_url: String,
}

impl Insights {
    pub fn new(
        db: Db,
        storage: Storage,
        billing: BillingService,
        jobs: JobService,
        public_base_url: &str,
    ) -> Self {
        Self {
            db,
            storage,
            billing,
            jobs,
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
        }
    }

    /// The public address of `path` (which starts with `/`).
    pub fn public_url(&self, path: &str) -> String {
        format!("{}{path}", self.public_base_url)
    }
}
