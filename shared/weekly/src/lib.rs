//! Weekly montages: each opted-in user's best moments of the week, made by a scheduled run
//! (`run`) on the weeks `schedule` defines; their listing, their owner's visibility choice,
//! admins' featuring, and each user's weekly settings.

pub mod run;
pub mod schedule;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use db::models::{JobOutputRow, JobRow, WeeklyMontageRow};
use db::schema::{job_outputs, jobs, users, weekly_montages, weekly_settings};
use db::Db;
use domain::error::{ServiceError, ServiceResult};
use domain::identity::AuthUser;
use domain::jobs::{JobStatus, OutputFormat, Style, MAX_PAGE_SIZE};
use domain::music::TrackId;
use domain::showcase::{Visibility, WeeklyOutcome};
use storage::Storage;

/// A montage output anyone allowed to see the montage may play.
#[derive(Debug, Clone)]
pub struct Playable {
    pub format: OutputFormat,
    pub width: i32,
    pub height: i32,
    pub duration_seconds: f64,
    /// A public montage's are stable addresses of ours (`/api/v2/weekly-montages/{id}/files/…`),
    /// which never reveal storage keys; a private one's (seen by its owner only) are
    /// presigned, valid for the storage's presign lifetime.
    pub video_url: String,
    pub poster_url: Option<String>,
}

/// A weekly montage as a viewer sees it.
#[derive(Debug, Clone)]
pub struct WeeklyMontage {
    pub row: WeeklyMontageRow,
    pub owner_name: Option<String>,
    pub job: JobRow,
    /// Empty until the job succeeds, and once the plan's retention deleted its outputs.
    pub outputs: Vec<Playable>,
    pub views: i64,
}

#[derive(Debug)]
pub struct WeeklyPage {
    pub montages: Vec<WeeklyMontage>,
    pub total: i64,
}

/// Which montages a listing shows.
#[derive(Debug, Clone, Copy)]
pub struct WeeklyFilter {
    /// The caller's own, private ones included; otherwise everyone's public ones.
    pub mine: Option<AuthUser>,
    pub featured_only: bool,
}

/// A user's weekly montage settings, and how their latest week went.
#[derive(Debug, Clone)]
pub struct WeeklySettings {
    pub choice: WeeklyChoice,
    pub latest: Option<WeeklyMontageRow>,
}

/// What a player chose for their weekly montages.
#[derive(Debug, Clone, PartialEq)]
pub struct WeeklyChoice {
    pub enabled: bool,
    /// The style; none: the one their jobs use most.
    pub style: Option<Style>,
    /// A catalogue track the montages are cut to; none: the game sound alone.
    pub music: Option<TrackId>,
}

#[derive(Clone)]
pub struct WeeklyMontages {
    db: Db,
    storage: Storage,
    /// The API's public address, for public montages' file addresses.
    public_base_url: String,
}

type Listed = (
    WeeklyMontageRow,
    JobRow,
    Option<String>,
    Option<String>,
    i64,
);

impl WeeklyMontages {
    pub fn new(db: Db, storage: Storage, public_base_url: &str) -> Self {
        Self {
            db,
            storage,
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
        }
    }

    /// A short-lived link to a public montage's video (or poster, with `poster`) in
    /// `format`; a private, unknown or unplayable one is not found.
    pub async fn public_file(
        &self,
        id: Uuid,
        format: OutputFormat,
        poster: bool,
    ) -> ServiceResult<String> {
        let montage = self.get(None, id).await?;
        let output = self
            .db
            .run(move |conn| {
                Ok(job_outputs::table
                    .find((montage.job.id, format))
                    .select(JobOutputRow::as_select())
                    .first(conn)
                    .optional()?)
            })
            .await?
            .filter(|_| montage.outputs.iter().any(|o| o.format == format));
        let not_found = || ServiceError::not_found("Weekly montage file");
        let output = output.ok_or_else(not_found)?;
        let key = match poster {
            true => output.poster_key.as_deref().ok_or_else(not_found)?,
            false => output.storage_key.as_str(),
        };
        let name = format!("weekly-{format}.{}", if poster { "jpg" } else { "mp4" });
        Ok(self.storage.presign_get(key, &name).await?)
    }

    /// Newest first (featured ones by when they were featured, with `featured_only`).
    pub async fn list(
        &self,
        filter: WeeklyFilter,
        limit: i64,
        offset: i64,
    ) -> ServiceResult<WeeklyPage> {
        let limit = limit.clamp(1, MAX_PAGE_SIZE);
        let (rows, total) = self
            .db
            .run(move |conn| {
                let total = listing(filter).count().get_result(conn)?;
                let mut query = listing(filter);
                query = if filter.featured_only {
                    query.order((
                        weekly_montages::featured_at.desc(),
                        weekly_montages::id.desc(),
                    ))
                } else {
                    query.order((
                        weekly_montages::created_at.desc(),
                        weekly_montages::id.desc(),
                    ))
                };
                let rows: Vec<Listed> = query
                    .limit(limit)
                    .offset(offset.max(0))
                    .select(listed_columns())
                    .load(conn)?;
                Ok((rows, total))
            })
            .await?;
        let montages = self.playable(rows).await?;
        Ok(WeeklyPage { montages, total })
    }

    /// One montage: a public one for anyone, a private one for its owner only (anyone
    /// else is told it does not exist).
    pub async fn get(&self, viewer: Option<AuthUser>, id: Uuid) -> ServiceResult<WeeklyMontage> {
        let row = self
            .db
            .run(move |conn| {
                Ok(built()
                    .filter(weekly_montages::id.eq(id))
                    .filter(
                        weekly_montages::visibility
                            .eq(Visibility::Public)
                            .or(weekly_montages::user_id.nullable().eq(viewer.map(|v| v.id))),
                    )
                    .select(listed_columns())
                    .first::<Listed>(conn)
                    .optional()?)
            })
            .await?
            .ok_or_else(|| ServiceError::not_found("Weekly montage"))?;
        let mut one = self.playable(vec![row]).await?;
        Ok(one.remove(0))
    }

    /// The owner's choice; making one private also unfeatures it.
    pub async fn set_visibility(
        &self,
        owner: AuthUser,
        id: Uuid,
        visibility: Visibility,
    ) -> ServiceResult<WeeklyMontage> {
        let changed = self
            .db
            .run(move |conn| {
                let target = weekly_montages::table
                    .filter(weekly_montages::id.eq(id))
                    .filter(weekly_montages::user_id.eq(owner.id))
                    .filter(weekly_montages::outcome.eq(WeeklyOutcome::Built));
                Ok(match visibility {
                    Visibility::Public => diesel::update(target)
                        .set(weekly_montages::visibility.eq(visibility))
                        .execute(conn)?,
                    Visibility::Private => diesel::update(target)
                        .set((
                            weekly_montages::visibility.eq(visibility),
                            weekly_montages::featured_at.eq(None::<DateTime<Utc>>),
                        ))
                        .execute(conn)?,
                })
            })
            .await?;
        if changed == 0 {
            return Err(ServiceError::not_found("Weekly montage"));
        }
        self.get(Some(owner), id).await
    }

    /// Features (or unfeatures) a public montage; the caller checked the admin's permission.
    pub async fn feature(&self, id: Uuid, featured: bool) -> ServiceResult<WeeklyMontage> {
        let visibility = self
            .db
            .run(move |conn| {
                let visibility: Option<Visibility> = built()
                    .filter(weekly_montages::id.eq(id))
                    .select(weekly_montages::visibility)
                    .first(conn)
                    .optional()?;
                if visibility == Some(Visibility::Public) {
                    let featured_at = featured.then(Utc::now);
                    diesel::update(weekly_montages::table.find(id))
                        .set(weekly_montages::featured_at.eq(featured_at))
                        .execute(conn)?;
                }
                Ok(visibility)
            })
            .await?;
        match visibility {
            None => Err(ServiceError::not_found("Weekly montage")),
            Some(Visibility::Private) => Err(ServiceError::conflict(
                "Only public montages can be featured; its owner keeps it private",
            )),
            Some(Visibility::Public) => self.get(None, id).await,
        }
    }

    pub async fn settings(&self, user: AuthUser) -> ServiceResult<WeeklySettings> {
        self.db
            .run(move |conn| {
                let chosen: Option<(bool, Option<Style>, Option<String>)> = weekly_settings::table
                    .find(user.id)
                    .select((
                        weekly_settings::enabled,
                        weekly_settings::style,
                        weekly_settings::music_id,
                    ))
                    .first(conn)
                    .optional()?;
                let latest = weekly_montages::table
                    .filter(weekly_montages::user_id.eq(user.id))
                    .order(weekly_montages::week_start.desc())
                    .select(WeeklyMontageRow::as_select())
                    .first(conn)
                    .optional()?;
                let (enabled, style, music) = chosen.unwrap_or((true, None, None));
                // Only ids that passed `TrackId::parse` are stored.
                let music = music.and_then(|id| TrackId::parse("music_id", &id).ok());
                Ok(WeeklySettings {
                    choice: WeeklyChoice {
                        enabled,
                        style,
                        music,
                    },
                    latest,
                })
            })
            .await
    }

    pub async fn set_settings(
        &self,
        user: AuthUser,
        choice: WeeklyChoice,
    ) -> ServiceResult<WeeklySettings> {
        let WeeklyChoice {
            enabled,
            style,
            music,
        } = choice;
        let music = music.map(|track| track.to_string());
        self.db
            .run(move |conn| {
                diesel::insert_into(weekly_settings::table)
                    .values((
                        weekly_settings::user_id.eq(user.id),
                        weekly_settings::enabled.eq(enabled),
                        weekly_settings::style.eq(style),
                        weekly_settings::music_id.eq(&music),
                    ))
                    .on_conflict(weekly_settings::user_id)
                    .do_update()
                    .set((
                        weekly_settings::enabled.eq(enabled),
                        weekly_settings::style.eq(style),
                        weekly_settings::music_id.eq(&music),
                        weekly_settings::updated_at.eq(Utc::now()),
                    ))
                    .execute(conn)?;
                Ok(())
            })
            .await?;
        self.settings(user).await
    }

    /// The montages with their outputs presigned, for those finished and still kept: the
    /// outputs of all of them in one read.
    async fn playable(&self, rows: Vec<Listed>) -> ServiceResult<Vec<WeeklyMontage>> {
        let finished: Vec<Uuid> = rows
            .iter()
            .filter(|(_, job, ..)| {
                job.status == JobStatus::Success && job.outputs_expired_at.is_none()
            })
            .map(|(_, job, ..)| job.id)
            .collect();
        let stored: Vec<JobOutputRow> = self
            .db
            .run(move |conn| {
                Ok(job_outputs::table
                    .filter(job_outputs::job_id.eq_any(&finished))
                    .order((job_outputs::job_id, job_outputs::format))
                    .select(JobOutputRow::as_select())
                    .load(conn)?)
            })
            .await?;
        let mut montages = Vec::with_capacity(rows.len());
        for (row, job, display_name, username, views) in rows {
            let mut outputs = Vec::new();
            for output in stored.iter().filter(|o| o.job_id == job.id) {
                outputs.push(self.presign(&row, output.clone()).await?);
            }
            montages.push(WeeklyMontage {
                row,
                owner_name: display_name.or(username),
                job,
                outputs,
                views,
            });
        }
        Ok(montages)
    }

    /// What a viewer plays of `output`: stable addresses of ours for a public montage,
    /// presigned links for a private one (only its owner lists it).
    async fn presign(
        &self,
        row: &WeeklyMontageRow,
        output: JobOutputRow,
    ) -> ServiceResult<Playable> {
        let (video_url, poster_url) = if row.visibility == Visibility::Public {
            let base = format!(
                "{}/api/v2/weekly-montages/{}/files/{}",
                self.public_base_url, row.id, output.format
            );
            let poster = output.poster_key.as_ref().map(|_| format!("{base}/poster"));
            (format!("{base}/video"), poster)
        } else {
            let name = format!("weekly-{}-{}", row.id, output.format);
            let poster_url = match &output.poster_key {
                Some(key) => Some(
                    self.storage
                        .presign_get(key, &format!("{name}.jpg"))
                        .await?,
                ),
                None => None,
            };
            let video_name = format!("{name}.mp4");
            let video = self.storage.presign_get(&output.storage_key, &video_name);
            (video.await?, poster_url)
        };
        Ok(Playable {
            format: output.format,
            width: output.width,
            height: output.height,
            duration_seconds: output.duration_seconds,
            video_url,
            poster_url,
        })
    }
}

type Built = diesel::dsl::Filter<
    diesel::dsl::InnerJoin<
        diesel::dsl::InnerJoin<weekly_montages::table, jobs::table>,
        users::table,
    >,
    diesel::dsl::Eq<weekly_montages::outcome, WeeklyOutcome>,
>;

/// Built montages whose job still exists, with the job and the owner.
fn built() -> diesel::dsl::IntoBoxed<'static, Built, diesel::pg::Pg> {
    weekly_montages::table
        .inner_join(jobs::table)
        .inner_join(users::table)
        .filter(weekly_montages::outcome.eq(WeeklyOutcome::Built))
        .into_boxed()
}

/// What `filter` lists: the caller's own, or everyone's public montages that can be played.
fn listing(filter: WeeklyFilter) -> diesel::dsl::IntoBoxed<'static, Built, diesel::pg::Pg> {
    let mut query = built();
    query = match filter.mine {
        Some(owner) => query.filter(weekly_montages::user_id.eq(owner.id)),
        None => query
            .filter(weekly_montages::visibility.eq(Visibility::Public))
            .filter(jobs::status.eq(JobStatus::Success))
            .filter(jobs::outputs_expired_at.is_null()),
    };
    if filter.featured_only {
        query = query.filter(weekly_montages::featured_at.is_not_null());
    }
    query
}

#[allow(clippy::type_complexity)]
fn listed_columns() -> (
    diesel::helper_types::AsSelect<WeeklyMontageRow, diesel::pg::Pg>,
    diesel::helper_types::AsSelect<JobRow, diesel::pg::Pg>,
    users::display_name,
    users::username,
    diesel::expression::SqlLiteral<diesel::sql_types::BigInt>,
) {
    (
        WeeklyMontageRow::as_select(),
        JobRow::as_select(),
        users::display_name,
        users::username,
        // Views of the montage's job, all sources, all time.
        diesel::dsl::sql("(SELECT count(*) FROM montage_views v WHERE v.job_id = jobs.id)"),
    )
}
