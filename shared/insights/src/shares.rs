//! Share links: a revocable public page for a finished montage, at an unguessable address.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use rand::RngCore;
use uuid::Uuid;

use db::models::{JobOutputRow, JobRow, ShareLinkRow};
use db::schema::{job_outputs, jobs, share_links, users};
use domain::error::{ErrorCode, ServiceError, ServiceResult};
use domain::identity::AuthUser;
use domain::jobs::{JobStatus, OutputFormat};
use domain::showcase::{ShareToken, ViewSource};

use crate::views::Viewer;
use crate::Insights;

/// A job's live share link.
#[derive(Debug, Clone)]
pub struct ShareLink {
    pub token: String,
    pub job_id: Uuid,
    /// The public page.
    pub url: String,
    pub created_at: DateTime<Utc>,
}

/// What a share page shows.
#[derive(Debug, Clone)]
pub struct SharedMontage {
    pub token: String,
    pub job: JobRow,
    pub owner_name: Option<String>,
    pub outputs: Vec<JobOutputRow>,
}

impl SharedMontage {
    /// The output a page plays: landscape when there is one.
    pub fn main_output(&self) -> Option<&JobOutputRow> {
        self.outputs
            .iter()
            .find(|o| o.format == OutputFormat::Landscape)
            .or_else(|| self.outputs.first())
    }

    /// The output in `format`, or the main one when no format is asked for.
    pub fn output(&self, format: Option<OutputFormat>) -> Option<&JobOutputRow> {
        match format {
            Some(format) => self.outputs.iter().find(|o| o.format == format),
            None => self.main_output(),
        }
    }
}

/// Who opened a share page.
pub struct Visitor {
    pub viewer: Viewer,
    /// The signed-in user, if the request carried a bearer.
    pub user: Option<Uuid>,
    /// The browser carries the owner's mark for this page (set when they asked for the link).
    pub owner_marked: bool,
}

/// A share page as it is shown: the montage and how many have watched it, this visit
/// included.
pub struct SharePage {
    pub montage: SharedMontage,
    pub views: i64,
}

impl Insights {
    /// The job's live link, made now if it has none (`true`). Only a finished montage whose
    /// outputs are kept can be shared.
    pub async fn share(&self, user: AuthUser, job_id: Uuid) -> ServiceResult<(ShareLink, bool)> {
        let details = self.jobs.get(user, job_id).await?;
        playable(&details.job)?;
        let mut random = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut random);
        let fresh = ShareToken::generate(random);
        let (row, created) = self
            .db
            .run(move |conn| {
                let inserted = diesel::insert_into(share_links::table)
                    .values((
                        share_links::token.eq(fresh.as_str()),
                        share_links::job_id.eq(job_id),
                    ))
                    .on_conflict_do_nothing()
                    .execute(conn)?;
                let live = share_links::table
                    .filter(share_links::job_id.eq(job_id))
                    .filter(share_links::revoked_at.is_null())
                    .select(ShareLinkRow::as_select())
                    .first(conn)?;
                Ok((live, inserted == 1))
            })
            .await?;
        Ok((self.link(row), created))
    }

    /// Revokes the job's live link: its page answers 404 from now on.
    pub async fn revoke_share(&self, user: AuthUser, job_id: Uuid) -> ServiceResult<()> {
        self.jobs.get(user, job_id).await?;
        let revoked = self
            .db
            .run(move |conn| {
                Ok(diesel::update(
                    share_links::table
                        .filter(share_links::job_id.eq(job_id))
                        .filter(share_links::revoked_at.is_null()),
                )
                .set(share_links::revoked_at.eq(Utc::now()))
                .execute(conn)?)
            })
            .await?;
        if revoked == 0 {
            return Err(ServiceError::not_found("Live share link of this job"));
        }
        Ok(())
    }

    /// The montage behind a live link; a revoked, unknown or malformed token, or a montage
    /// no longer playable, is not found.
    pub async fn shared(&self, token: &str) -> ServiceResult<SharedMontage> {
        let not_found = || ServiceError::not_found("Shared montage");
        let token = ShareToken::parse(token).ok_or_else(not_found)?;
        let found = self
            .db
            .run(move |conn| {
                let Some((token, job, display_name, username)) = share_links::table
                    .inner_join(jobs::table.inner_join(users::table))
                    .filter(share_links::token.eq(token.as_str()))
                    .filter(share_links::revoked_at.is_null())
                    .select((
                        share_links::token,
                        JobRow::as_select(),
                        users::display_name,
                        users::username,
                    ))
                    .first::<(String, JobRow, Option<String>, Option<String>)>(conn)
                    .optional()?
                else {
                    return Ok(None);
                };
                let outputs = job_outputs::table
                    .filter(job_outputs::job_id.eq(job.id))
                    .order(job_outputs::format)
                    .select(JobOutputRow::as_select())
                    .load(conn)?;
                Ok(Some((token, job, display_name.or(username), outputs)))
            })
            .await?;
        let (token, job, owner_name, outputs) = found.ok_or_else(not_found)?;
        playable(&job).map_err(|_| not_found())?;
        Ok(SharedMontage {
            token,
            job,
            owner_name,
            outputs,
        })
    }

    /// Opens a share page: the first visit of the day of each viewer counts as a view, but
    /// not crawlers' and link previewers', nor the owner's (signed in, or in the browser
    /// that asked for the link).
    pub async fn visit(&self, token: &str, visitor: Visitor) -> ServiceResult<SharePage> {
        let montage = self.shared(token).await?;
        if montage.main_output().is_none() {
            return Err(ServiceError::not_found("Shared montage"));
        }
        let owner = visitor.owner_marked || visitor.user == Some(montage.job.user_id);
        if !owner && !visitor.viewer.is_crawler() {
            let counted = self
                .count_view(montage.job.id, visitor.viewer, ViewSource::SharePage)
                .await;
            if let Err(err) = counted {
                tracing::warn!(error = %err, "a share page view was not counted");
            }
        }
        let views = self.views_of(montage.job.id).await?;
        Ok(SharePage { montage, views })
    }

    /// A short-lived link to the video (or the poster, with `poster`) in `format` (the
    /// main one when none) of the montage behind a live link.
    pub async fn shared_file(
        &self,
        token: &str,
        poster: bool,
        format: Option<OutputFormat>,
    ) -> ServiceResult<String> {
        self.file_url(&self.shared(token).await?, poster, format)
            .await
    }

    async fn file_url(
        &self,
        shared: &SharedMontage,
        poster: bool,
        format: Option<OutputFormat>,
    ) -> ServiceResult<String> {
        let output = shared
            .output(format)
            .ok_or_else(|| ServiceError::not_found("Shared montage"))?;
        // The name says nothing of the job: the link is all a viewer should learn.
        let name = "montage";
        let key = if poster {
            output
                .poster_key
                .as_deref()
                .ok_or_else(|| ServiceError::not_found("Poster"))?
        } else {
            output.storage_key.as_str()
        };
        let file = if poster {
            format!("{name}.jpg")
        } else {
            format!("{name}.mp4")
        };
        Ok(self.storage.presign_get(key, &file).await?)
    }

    fn link(&self, row: ShareLinkRow) -> ShareLink {
        ShareLink {
            url: self.public_url(&format!("/s/{}", row.token)),
            token: row.token,
            job_id: row.job_id,
            created_at: row.created_at,
        }
    }
}

/// A job whose montage can be watched: succeeded, outputs kept.
fn playable(job: &JobRow) -> ServiceResult<()> {
    if job.outputs_expired_at.is_some() {
        return Err(ServiceError::new(
            ErrorCode::OutputsExpired,
            "This job's outputs were deleted at the end of the plan's retention",
        ));
    }
    if job.status != JobStatus::Success {
        return Err(ServiceError::new(
            ErrorCode::JobNotReady,
            format!("Job is {}; it can be shared once it is SUCCESS", job.status),
        )
        .with_data(serde_json::json!({ "status": job.status })));
    }
    Ok(())
}
