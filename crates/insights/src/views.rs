//! Views, counted once per viewer, job and day. A viewer is known only by a keyed hash of
//! their address and browser (or the id the owner's client gives) under that day's random
//! salt; salts are deleted after two days, so no stored hash leads back to anyone.

use chrono::{Duration, NaiveDate, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use uuid::Uuid;

use db::schema::{montage_views, view_salts};
use domain::error::ServiceResult;
use domain::identity::AuthUser;
use domain::showcase::ViewSource;

use crate::Insights;

/// Who is watching, as far as the request tells.
#[derive(Debug, Clone, Default)]
pub struct Viewer {
    /// The client's address (as the rate limiter resolved it).
    pub address: String,
    pub user_agent: String,
    /// The owner's client's own id for its viewer, when it reports views for someone.
    pub id: Option<String>,
}

impl Viewer {
    fn material(&self) -> String {
        match &self.id {
            Some(id) => format!("id\0{id}"),
            None => format!("client\0{}\0{}", self.address, self.user_agent),
        }
    }
}

impl Insights {
    /// Counts a view of the caller's own job, from the owner's client; `true` when it was
    /// the viewer's first today.
    pub async fn track_view(
        &self,
        owner: AuthUser,
        job_id: Uuid,
        viewer: Viewer,
    ) -> ServiceResult<bool> {
        self.jobs.get(owner, job_id).await?;
        self.count_view(job_id, viewer, ViewSource::Client).await
    }

    /// Counts a view of `job_id`; `true` when it was the viewer's first today.
    pub async fn count_view(
        &self,
        job_id: Uuid,
        viewer: Viewer,
        source: ViewSource,
    ) -> ServiceResult<bool> {
        self.db
            .run(move |conn| {
                let today = Utc::now().date_naive();
                let salt = salt_of(conn, today)?;
                let mut mac = Hmac::<Sha256>::new_from_slice(&salt).expect("any key length");
                mac.update(job_id.as_bytes());
                mac.update(viewer.material().as_bytes());
                let hash = mac.finalize().into_bytes().to_vec();
                let counted = diesel::insert_into(montage_views::table)
                    .values((
                        montage_views::job_id.eq(job_id),
                        montage_views::day.eq(today),
                        montage_views::viewer.eq(hash),
                        montage_views::source.eq(source),
                    ))
                    .on_conflict_do_nothing()
                    .execute(conn)?;
                Ok(counted == 1)
            })
            .await
    }
}

/// The day's salt, made by whoever needs it first; making one deletes those older than
/// yesterday's. Every other view of the day only reads it.
fn salt_of(conn: &mut PgConnection, day: NaiveDate) -> ServiceResult<Vec<u8>> {
    let existing = view_salts::table
        .find(day)
        .select(view_salts::salt)
        .first(conn)
        .optional()?;
    if let Some(salt) = existing {
        return Ok(salt);
    }
    let mut fresh = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut fresh);
    let made = diesel::insert_into(view_salts::table)
        .values((view_salts::day.eq(day), view_salts::salt.eq(fresh.to_vec())))
        .on_conflict_do_nothing()
        .execute(conn)?;
    if made == 1 {
        diesel::delete(view_salts::table.filter(view_salts::day.lt(day - Duration::days(1))))
            .execute(conn)?;
    }
    // A concurrent first view may have made it: theirs is the day's.
    Ok(view_salts::table
        .find(day)
        .select(view_salts::salt)
        .first(conn)?)
}
