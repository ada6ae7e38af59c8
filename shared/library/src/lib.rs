//! The clip library: each user's kept clips (direct uploads, imports, form uploads saved to
//! the library), their examination by the workers (probe facts, thumbnail, the highlight
//! analysis every later job reuses), and their use as job inputs.

pub mod insert;
pub mod uploads;

use std::collections::HashMap;

use chrono::{Duration, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use db::models::ClipRow;
use db::schema::{clips, job_inputs, jobs};
use db::Db;
use domain::clips::{clip_thumbnail_key, ClipSource, ClipStatus};
use domain::error::{ServiceError, ServiceResult};
use domain::facecam::Facecam;
use domain::identity::AuthUser;
use domain::jobs::{JobStatus, Library, StoredInput, MAX_PAGE_SIZE};
use storage::Storage;

/// Jobs in these states may still read their clips.
const OPEN: [JobStatus; 3] = [
    JobStatus::Pending,
    JobStatus::Processing,
    JobStatus::Retrying,
];

/// One page of a user's library.
#[derive(Debug)]
pub struct ClipPage {
    pub clips: Vec<ClipRow>,
    pub total: i64,
}

/// What examining a clip found (by a worker's examination, or by a job that used it).
#[derive(Debug, Clone)]
pub struct ClipFacts {
    pub duration_seconds: f64,
    pub width: i32,
    pub height: i32,
    pub has_audio: bool,
    /// The highlight analysis, in the worker's own versioned format.
    pub analysis: serde_json::Value,
    /// Stored at the clip's thumbnail key, when this examination made one.
    pub thumbnail: bool,
}

/// The change [`ClipLibrary::examined`] makes; a thumbnail it did not make is left as it was.
#[derive(AsChangeset)]
#[diesel(table_name = clips)]
struct Examined {
    status: ClipStatus,
    duration_seconds: f64,
    width: i32,
    height: i32,
    has_audio: bool,
    analysis: serde_json::Value,
    thumbnail_key: Option<String>,
    #[diesel(treat_none_as_null = true)]
    examining_until: Option<chrono::DateTime<Utc>>,
    updated_at: chrono::DateTime<Utc>,
}

#[derive(Clone)]
pub struct ClipLibrary {
    db: Db,
    storage: Storage,
}

impl ClipLibrary {
    pub fn new(db: Db, storage: Storage) -> Self {
        Self { db, storage }
    }

    /// The newest first; `source` keeps only the clips from there.
    pub async fn list(
        &self,
        user: AuthUser,
        source: Option<ClipSource>,
        limit: i64,
        offset: i64,
    ) -> ServiceResult<ClipPage> {
        let limit = limit.clamp(1, MAX_PAGE_SIZE);
        self.db
            .run(move |conn| {
                let owned = || {
                    let mut query = clips::table.filter(clips::user_id.eq(user.id)).into_boxed();
                    if let Some(source) = source {
                        query = query.filter(clips::source.eq(source));
                    }
                    query
                };
                let total = owned().count().get_result(conn)?;
                let clips = owned()
                    .order((clips::created_at.desc(), clips::id.desc()))
                    .limit(limit)
                    .offset(offset.max(0))
                    .select(ClipRow::as_select())
                    .load(conn)?;
                Ok(ClipPage { clips, total })
            })
            .await
    }

    /// One of the caller's clips; someone else's is not found.
    pub async fn get(&self, user: AuthUser, id: Uuid) -> ServiceResult<ClipRow> {
        self.db
            .run(move |conn| {
                clips::table
                    .find(id)
                    .filter(clips::user_id.eq(user.id))
                    .select(ClipRow::as_select())
                    .first(conn)
                    .optional()?
                    .ok_or_else(|| ServiceError::not_found("Clip"))
            })
            .await
    }

    /// Keeps (or, with `None`, forgets) where the streamer's camera sits in one of the
    /// caller's clips; the clip as it is now.
    pub async fn set_facecam(
        &self,
        user: AuthUser,
        id: Uuid,
        facecam: Option<Facecam>,
    ) -> ServiceResult<ClipRow> {
        self.db
            .run(move |conn| {
                diesel::update(clips::table.find(id).filter(clips::user_id.eq(user.id)))
                    .set((clips::facecam.eq(facecam), clips::updated_at.eq(Utc::now())))
                    .returning(ClipRow::as_returning())
                    .get_result(conn)
                    .optional()?
                    .ok_or_else(|| ServiceError::not_found("Clip"))
            })
            .await
    }

    /// Removes a clip and its objects. Refused while a waiting or running job uses it;
    /// finished jobs keep their outputs.
    pub async fn delete(&self, user: AuthUser, id: Uuid) -> ServiceResult<()> {
        let clip = self
            .db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let clip = clips::table
                        .find(id)
                        .filter(clips::user_id.eq(user.id))
                        .select(ClipRow::as_select())
                        .for_update()
                        .first(conn)
                        .optional()?
                        .ok_or_else(|| ServiceError::not_found("Clip"))?;
                    let in_use: bool = diesel::select(diesel::dsl::exists(
                        job_inputs::table
                            .inner_join(jobs::table)
                            .filter(job_inputs::clip_id.eq(id))
                            .filter(jobs::status.eq_any(OPEN)),
                    ))
                    .get_result(conn)?;
                    if in_use {
                        return Err(ServiceError::conflict(
                            "A waiting or running job uses this clip; delete it once the job has ended",
                        ));
                    }
                    diesel::delete(clips::table.find(id)).execute(conn)?;
                    Ok(clip)
                })
            })
            .await?;
        self.remove_objects(&clip).await;
        Ok(())
    }

    /// Deleted rows' objects: a failure only leaves garbage, which the log names.
    async fn remove_objects(&self, clip: &ClipRow) {
        let keys: Vec<String> = std::iter::once(clip.storage_key.clone())
            .chain(clip.thumbnail_key.clone())
            .collect();
        if let Err(err) = self.storage.delete(&keys).await {
            tracing::warn!(clip_id = %clip.id, error = %err, "could not remove a deleted clip's objects");
        }
    }

    /// A short-lived link to the clip's thumbnail (JPEG).
    pub async fn thumbnail_url(&self, user: AuthUser, id: Uuid) -> ServiceResult<String> {
        let clip = self.get(user, id).await?;
        let key = clip.thumbnail_key.ok_or_else(|| {
            ServiceError::conflict(
                "The clip has no thumbnail yet: it is still being examined, or was rejected",
            )
        })?;
        Ok(self.storage.presign_get(&key, &format!("{id}.jpg")).await?)
    }

    /// The caller's clips as a job's inputs, in the order asked. Unknown ids (or someone
    /// else's) are not found; rejected clips cannot be used.
    pub async fn for_job(&self, user: AuthUser, ids: Vec<Uuid>) -> ServiceResult<Vec<StoredInput>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let wanted = ids.clone();
        let found: HashMap<Uuid, ClipRow> = self
            .db
            .run(move |conn| {
                let rows = clips::table
                    .filter(clips::id.eq_any(&wanted))
                    .filter(clips::user_id.eq(user.id))
                    .select(ClipRow::as_select())
                    .load(conn)?;
                Ok(rows.into_iter().map(|c| (c.id, c)).collect())
            })
            .await?;
        ids.iter()
            .map(|id| {
                let clip = found.get(id).ok_or_else(|| {
                    ServiceError::not_found("Clip")
                        .with_data(serde_json::json!({ "field": "clip_ids", "clip_id": id }))
                })?;
                if !clip.status.is_usable() {
                    return Err(ServiceError::invalid_field(
                        "clip_ids",
                        format!(
                            "Clip {id} ({}) was rejected: {}",
                            clip.label,
                            clip.rejection.as_deref().unwrap_or_default()
                        ),
                    ));
                }
                Ok(StoredInput {
                    storage_key: clip.storage_key.clone(),
                    label: clip.label.clone(),
                    container: clip.container.clone(),
                    size_bytes: clip.size_bytes.max(1) as u64,
                    library: Library::Existing(clip.id),
                })
            })
            .collect()
    }

    /// The library rows of these clips (those that still exist), for a job about to use
    /// them: their stored analyses spare the job analysing them again.
    pub async fn rows(&self, ids: Vec<Uuid>) -> ServiceResult<HashMap<Uuid, ClipRow>> {
        self.db
            .run(move |conn| {
                let rows = clips::table
                    .filter(clips::id.eq_any(&ids))
                    .select(ClipRow::as_select())
                    .load(conn)?;
                Ok(rows.into_iter().map(|c| (c.id, c)).collect())
            })
            .await
    }

    /// Takes up to `limit` clips waiting for examination that no open job is about to
    /// examine itself; each is this taker's for `hold`, then anyone's again.
    pub async fn take_pending(&self, limit: i64, hold: Duration) -> ServiceResult<Vec<ClipRow>> {
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let now = Utc::now();
                    let used_by_open_job = job_inputs::table
                        .inner_join(jobs::table)
                        .filter(job_inputs::clip_id.eq(clips::id.nullable()))
                        .filter(jobs::status.eq_any(OPEN));
                    let due: Vec<ClipRow> = clips::table
                        .filter(clips::status.eq(ClipStatus::Pending))
                        .filter(
                            clips::examining_until
                                .is_null()
                                .or(clips::examining_until.lt(now)),
                        )
                        .filter(diesel::dsl::not(diesel::dsl::exists(used_by_open_job)))
                        .order(clips::created_at.asc())
                        .limit(limit)
                        .select(ClipRow::as_select())
                        .for_update()
                        .skip_locked()
                        .load(conn)?;
                    let ids: Vec<Uuid> = due.iter().map(|c| c.id).collect();
                    diesel::update(clips::table.filter(clips::id.eq_any(&ids)))
                        .set(clips::examining_until.eq(now + hold))
                        .execute(conn)?;
                    Ok(due)
                })
            })
            .await
    }

    /// Records what examining the clip found; it is READY from now on. A clip deleted
    /// meanwhile is left deleted (its thumbnail, if just stored, is removed).
    pub async fn examined(&self, clip: &ClipRow, facts: ClipFacts) -> ServiceResult<()> {
        let id = clip.id;
        let thumbnail = facts
            .thumbnail
            .then(|| clip_thumbnail_key(clip.user_id, id));
        let change = Examined {
            status: ClipStatus::Ready,
            duration_seconds: facts.duration_seconds,
            width: facts.width,
            height: facts.height,
            has_audio: facts.has_audio,
            analysis: facts.analysis,
            thumbnail_key: thumbnail.clone(),
            examining_until: None,
            updated_at: Utc::now(),
        };
        let updated = self
            .db
            .run(move |conn| {
                Ok(diesel::update(clips::table.find(id))
                    .set(change)
                    .execute(conn)?)
            })
            .await?;
        if let (0, Some(key)) = (updated, thumbnail) {
            self.storage.delete(&[key]).await?;
        }
        Ok(())
    }

    /// Marks a clip that is not usable video REJECTED, with the reason its owner reads, and
    /// removes its object (the row stays, so the owner sees why; it no longer counts
    /// against the storage quota).
    pub async fn reject(&self, clip: &ClipRow, reason: String) -> ServiceResult<()> {
        let id = clip.id;
        self.db
            .run(move |conn| {
                diesel::update(clips::table.find(id))
                    .set((
                        clips::status.eq(ClipStatus::Rejected),
                        clips::rejection.eq(reason),
                        clips::examining_until.eq(None::<chrono::DateTime<Utc>>),
                        clips::updated_at.eq(Utc::now()),
                    ))
                    .execute(conn)?;
                Ok(())
            })
            .await?;
        self.remove_objects(clip).await;
        Ok(())
    }
}
