//! Retention: uploaded clips and rendered outputs are deleted once their time is up. The
//! database marks what a pass takes, so concurrent workers never delete the same job's
//! objects twice; a pass that could not delete gives the job back. Deleted accounts and
//! jobs deleted under a running worker leave their storage prefixes in `storage_purges`.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use db::schema::{job_inputs, job_outputs, jobs, storage_purges};
use domain::error::ServiceResult;
use domain::jobs::{job_prefix, music_key};
use domain::music::Music;

use crate::jobs::JobService;

/// How long a taken storage purge is left to its taker before another pass may retry it.
const PURGE_LEASE_SECS: i64 = 300;

/// Gives every output of `user_id` not yet deleted the retention of a new plan (an upgrade
/// keeps them longer, a downgrade shortens their life), inside the caller's transaction.
pub fn retain_outputs_for(
    conn: &mut PgConnection,
    user_id: Uuid,
    retention: Option<std::time::Duration>,
) -> QueryResult<usize> {
    diesel::update(
        jobs::table
            .filter(jobs::user_id.eq(user_id))
            .filter(jobs::outputs_expired_at.is_null()),
    )
    .set(jobs::output_retention_secs.eq(retention.map(|r| r.as_secs() as i64)))
    .execute(conn)
}

/// Schedules the removal of everything stored under `prefixes` (a deleted account's), inside
/// the caller's transaction.
pub fn purge_prefixes(conn: &mut PgConnection, prefixes: Vec<String>) -> QueryResult<usize> {
    let rows: Vec<_> = prefixes
        .into_iter()
        .map(|prefix| storage_purges::prefix.eq(prefix))
        .collect();
    diesel::insert_into(storage_purges::table)
        .values(&rows)
        .on_conflict_do_nothing()
        .execute(conn)
}

impl JobService {
    /// Schedules the removal of everything stored for `job_id` when the job no longer
    /// exists: a worker whose job was deleted under it (with its account) calls this after
    /// it may have written objects nobody would remove. Answers whether it was gone.
    pub async fn purge_if_gone(&self, job_id: Uuid) -> ServiceResult<bool> {
        self.db
            .run(move |conn| {
                let exists: bool = diesel::select(diesel::dsl::exists(jobs::table.find(job_id)))
                    .get_result(conn)?;
                if !exists {
                    diesel::insert_into(storage_purges::table)
                        .values(storage_purges::prefix.eq(job_prefix(job_id)))
                        .on_conflict(storage_purges::prefix)
                        .do_update()
                        .set(storage_purges::not_before.eq(Utc::now()))
                        .execute(conn)?;
                }
                Ok(!exists)
            })
            .await
    }

    /// Takes up to `limit` due storage prefixes to empty; each is left to this pass for a
    /// while ([`PURGE_LEASE_SECS`]), then retried unless [`JobService::finish_storage_purge`]
    /// removed it.
    pub async fn take_storage_purges(&self, limit: i64) -> ServiceResult<Vec<String>> {
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let now = Utc::now();
                    let due: Vec<String> = storage_purges::table
                        .filter(storage_purges::not_before.le(now))
                        .order(storage_purges::not_before.asc())
                        .limit(limit)
                        .select(storage_purges::prefix)
                        .for_update()
                        .skip_locked()
                        .load(conn)?;
                    diesel::update(
                        storage_purges::table.filter(storage_purges::prefix.eq_any(&due)),
                    )
                    .set(
                        storage_purges::not_before
                            .eq(now + chrono::Duration::seconds(PURGE_LEASE_SECS)),
                    )
                    .execute(conn)?;
                    Ok(due)
                })
            })
            .await
    }

    /// Forgets a prefix whose objects are deleted.
    pub async fn finish_storage_purge(&self, prefix: String) -> ServiceResult<()> {
        self.db
            .run(move |conn| {
                diesel::delete(storage_purges::table.find(prefix)).execute(conn)?;
                Ok(())
            })
            .await
    }

    /// Takes up to `limit` jobs that ended more than `retention` ago and still have their
    /// uploaded clips, marks them purged, and returns (job, input keys) for the caller to
    /// delete. Workers running this at once never take the same job (SKIP LOCKED).
    pub async fn take_inputs_to_purge(
        &self,
        retention: chrono::Duration,
        limit: i64,
    ) -> ServiceResult<Vec<(Uuid, Vec<String>)>> {
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let now = Utc::now();
                    let due: Vec<Uuid> = jobs::table
                        .filter(jobs::inputs_purged_at.is_null())
                        .filter(jobs::finished_at.le(now - retention))
                        .order(jobs::finished_at.asc())
                        .limit(limit)
                        .select(jobs::id)
                        .for_update()
                        .skip_locked()
                        .load(conn)?;
                    diesel::update(jobs::table.filter(jobs::id.eq_any(&due)))
                        .set(jobs::inputs_purged_at.eq(now))
                        .execute(conn)?;
                    // A library clip's object is the library's, not the job's.
                    let mut keys: Vec<(Uuid, String)> = job_inputs::table
                        .filter(job_inputs::job_id.eq_any(&due))
                        .filter(job_inputs::from_library.eq(false))
                        .select((job_inputs::job_id, job_inputs::storage_key))
                        .load(conn)?;
                    let uploaded_music: Vec<Uuid> = jobs::table
                        .filter(jobs::id.eq_any(&due))
                        .filter(jobs::music.eq(Music::Uploaded))
                        .select(jobs::id)
                        .load(conn)?;
                    keys.extend(uploaded_music.into_iter().map(|job| (job, music_key(job))));
                    Ok(keys_by_job(due, keys))
                })
            })
            .await
    }

    /// Marks up to `limit` jobs whose outputs outlived their plan's retention as expired,
    /// and returns their outputs' and posters' storage keys, for deletion.
    pub async fn take_outputs_to_expire(
        &self,
        limit: i64,
    ) -> ServiceResult<Vec<(Uuid, Vec<String>)>> {
        use diesel::{dsl::sql, sql_types::Bool};
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let due: Vec<Uuid> = jobs::table
                        .filter(jobs::outputs_expired_at.is_null())
                        .filter(jobs::output_retention_secs.is_not_null())
                        .filter(sql::<Bool>(
                            "finished_at + output_retention_secs * interval '1 second' <= now()",
                        ))
                        .order(jobs::finished_at.asc())
                        .limit(limit)
                        .select(jobs::id)
                        .for_update()
                        .skip_locked()
                        .load(conn)?;
                    diesel::update(jobs::table.filter(jobs::id.eq_any(&due)))
                        .set(jobs::outputs_expired_at.eq(Utc::now()))
                        .execute(conn)?;
                    let outputs: Vec<(Uuid, String, Option<String>)> = job_outputs::table
                        .filter(job_outputs::job_id.eq_any(&due))
                        .select((
                            job_outputs::job_id,
                            job_outputs::storage_key,
                            job_outputs::poster_key,
                        ))
                        .load(conn)?;
                    let keys = outputs.into_iter().flat_map(|(job, key, poster)| {
                        std::iter::once((job, key)).chain(poster.map(|p| (job, p)))
                    });
                    Ok(keys_by_job(due, keys))
                })
            })
            .await
    }

    /// Undoes [`JobService::take_outputs_to_expire`] for a job whose outputs could not be
    /// deleted, so a later pass tries again.
    pub async fn unmark_expired(&self, job_id: Uuid) -> ServiceResult<()> {
        self.db
            .run(move |conn| {
                diesel::update(jobs::table.find(job_id))
                    .set(jobs::outputs_expired_at.eq(None::<chrono::DateTime<Utc>>))
                    .execute(conn)?;
                Ok(())
            })
            .await
    }

    /// Undoes [`JobService::take_inputs_to_purge`] for a job whose clips could not be deleted.
    pub async fn unmark_purged(&self, job_id: Uuid) -> ServiceResult<()> {
        self.db
            .run(move |conn| {
                diesel::update(jobs::table.find(job_id))
                    .set(jobs::inputs_purged_at.eq(None::<DateTime<Utc>>))
                    .execute(conn)?;
                Ok(())
            })
            .await
    }
}

/// Groups `(job, key)` pairs under each job of `jobs`, in that order.
fn keys_by_job(
    jobs: Vec<Uuid>,
    keys: impl IntoIterator<Item = (Uuid, String)>,
) -> Vec<(Uuid, Vec<String>)> {
    let mut grouped: Vec<(Uuid, Vec<String>)> =
        jobs.into_iter().map(|id| (id, Vec::new())).collect();
    for (job, key) in keys {
        if let Some((_, of_job)) = grouped.iter_mut().find(|(id, _)| *id == job) {
            of_job.push(key);
        }
    }
    grouped
}
