//! Importing clips from linked accounts into the library: syncs asked for by the user or
//! due by the period, run by the workers. Each new platform clip is streamed into storage
//! (with the upload's size limit and container sniff) and becomes a PENDING library clip,
//! once per platform clip id. A clip that fails is recorded and tried again by the next
//! sync; it never fails the sync. Only a refused token or an unreachable platform does.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use contract::live::LiveMessage;
use db::models::{AccountSyncRow, ClipRow, ImportFailureRow, LinkedAccountRow};
use db::schema::{account_syncs, clips, import_failures, linked_accounts};
use domain::clips::{clip_key, ClipSource};
use domain::error::{ServiceError, ServiceResult};
use domain::identity::AuthUser;
use domain::jobs::{Library, StoredInput};
use domain::providers::{ProviderId, SyncStatus};
use domain::sniff;
use engine::events::JobEvents;
use storage::Storage;

use crate::oauth::PlatformError;
use crate::platforms::{self, Listing, PlatformClip};
use crate::Linking;

/// A sync, with the failures its link has on record.
#[derive(Debug)]
pub struct SyncReport {
    pub sync: AccountSyncRow,
    pub failures: Vec<ImportFailureRow>,
}

impl Linking {
    /// Queues a sync of each of the caller's linked accounts that can import (an account
    /// with one already waiting or running keeps that one). 409 when none can import.
    pub async fn request_sync(&self, user: AuthUser) -> ServiceResult<Vec<AccountSyncRow>> {
        let importable: Vec<ProviderId> = ProviderId::ALL
            .iter()
            .copied()
            .filter(|p| p.can_import())
            .collect();
        let syncs = self
            .db
            .run(move |conn| {
                let links: Vec<Uuid> = linked_accounts::table
                    .filter(linked_accounts::user_id.eq(user.id))
                    .filter(linked_accounts::provider.eq_any(&importable))
                    .select(linked_accounts::id)
                    .load(conn)?;
                links
                    .into_iter()
                    .map(|link| open_sync(conn, user.id, link))
                    .collect::<ServiceResult<Vec<_>>>()
            })
            .await?;
        if syncs.is_empty() {
            return Err(ServiceError::conflict(
                "No linked account can import clips: link one first (GET /api/v2/accounts/providers)",
            ));
        }
        Ok(syncs)
    }

    /// One of the caller's syncs.
    pub async fn sync_report(&self, user: AuthUser, id: Uuid) -> ServiceResult<SyncReport> {
        self.db
            .run(move |conn| {
                let sync = account_syncs::table
                    .filter(account_syncs::id.eq(id))
                    .filter(account_syncs::user_id.eq(user.id))
                    .select(AccountSyncRow::as_select())
                    .first(conn)
                    .optional()?
                    .ok_or_else(|| ServiceError::not_found("Sync"))?;
                let failures = import_failures::table
                    .filter(import_failures::link_id.eq(sync.link_id))
                    .order(import_failures::updated_at.desc())
                    .select(ImportFailureRow::as_select())
                    .load(conn)?;
                Ok(SyncReport { sync, failures })
            })
            .await
    }

    /// The latest sync of each of the caller's links that has one, with the failures each
    /// link has on record, by link.
    pub async fn last_syncs(&self, user: AuthUser) -> ServiceResult<Vec<SyncReport>> {
        self.db
            .run(move |conn| {
                let latest: Vec<AccountSyncRow> = account_syncs::table
                    .filter(account_syncs::user_id.eq(user.id))
                    .distinct_on(account_syncs::link_id)
                    .order((account_syncs::link_id, account_syncs::created_at.desc()))
                    .select(AccountSyncRow::as_select())
                    .load(conn)?;
                let links: Vec<Uuid> = latest.iter().map(|sync| sync.link_id).collect();
                let failures: Vec<ImportFailureRow> = import_failures::table
                    .filter(import_failures::link_id.eq_any(&links))
                    .order(import_failures::updated_at.desc())
                    .select(ImportFailureRow::as_select())
                    .load(conn)?;
                let mut by_link: HashMap<Uuid, Vec<ImportFailureRow>> = HashMap::new();
                for failure in failures {
                    by_link.entry(failure.link_id).or_default().push(failure);
                }
                let reports = latest.into_iter().map(|sync| SyncReport {
                    failures: by_link.remove(&sync.link_id).unwrap_or_default(),
                    sync,
                });
                Ok(reports.collect())
            })
            .await
    }

    /// Queues a sync for each importing link not synced for `every`.
    pub async fn schedule_due_syncs(&self, every: Duration) -> ServiceResult<usize> {
        let due_before =
            Utc::now() - chrono::Duration::from_std(every).unwrap_or(chrono::Duration::MAX);
        let importable: Vec<ProviderId> = ProviderId::ALL
            .iter()
            .copied()
            .filter(|p| p.can_import())
            .collect();
        self.db
            .run(move |conn| {
                let due: Vec<(Uuid, Uuid)> = linked_accounts::table
                    .filter(linked_accounts::provider.eq_any(&importable))
                    .filter(
                        linked_accounts::last_synced_at
                            .is_null()
                            .or(linked_accounts::last_synced_at.lt(due_before)),
                    )
                    .filter(linked_accounts::created_at.lt(due_before))
                    .select((linked_accounts::user_id, linked_accounts::id))
                    .limit(100)
                    .load(conn)?;
                for &(user, link) in &due {
                    open_sync(conn, user, link)?;
                }
                Ok(due.len())
            })
            .await
    }

    /// Takes a waiting sync (or one whose worker stopped holding it) for `hold`.
    pub async fn take_sync(
        &self,
        hold: Duration,
    ) -> ServiceResult<Option<(AccountSyncRow, LinkedAccountRow)>> {
        let hold = chrono::Duration::from_std(hold).unwrap_or(chrono::Duration::MAX);
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let now = Utc::now();
                    let taken: Option<AccountSyncRow> = account_syncs::table
                        .filter(
                            account_syncs::status
                                .eq_any([SyncStatus::Pending, SyncStatus::Running]),
                        )
                        .filter(
                            account_syncs::held_until
                                .is_null()
                                .or(account_syncs::held_until.lt(now)),
                        )
                        .order(account_syncs::created_at.asc())
                        .select(AccountSyncRow::as_select())
                        .for_update()
                        .skip_locked()
                        .first(conn)
                        .optional()?;
                    let Some(sync) = taken else { return Ok(None) };
                    // The link outlives its syncs (they go with it).
                    let link = linked_accounts::table
                        .find(sync.link_id)
                        .select(LinkedAccountRow::as_select())
                        .first(conn)?;
                    let sync = diesel::update(account_syncs::table.find(sync.id))
                        .set((
                            account_syncs::status.eq(SyncStatus::Running),
                            account_syncs::held_until.eq(now + hold),
                            account_syncs::started_at.eq(sync.started_at.unwrap_or(now)),
                        ))
                        .returning(AccountSyncRow::as_returning())
                        .get_result(conn)?;
                    Ok(Some((sync, link)))
                })
            })
            .await
    }
}

/// The link's waiting or running sync, or a new one.
fn open_sync(conn: &mut PgConnection, user: Uuid, link: Uuid) -> ServiceResult<AccountSyncRow> {
    let open = account_syncs::table
        .filter(account_syncs::link_id.eq(link))
        .filter(account_syncs::status.eq_any([SyncStatus::Pending, SyncStatus::Running]))
        .select(AccountSyncRow::as_select())
        .first(conn)
        .optional()?;
    if let Some(open) = open {
        return Ok(open);
    }
    Ok(diesel::insert_into(account_syncs::table)
        .values((
            account_syncs::id.eq(Uuid::now_v7()),
            account_syncs::user_id.eq(user),
            account_syncs::link_id.eq(link),
        ))
        .returning(AccountSyncRow::as_returning())
        .get_result(conn)?)
}

/// What an import may store.
#[derive(Debug, Clone, Copy)]
pub struct ImportLimits {
    pub max_file_bytes: u64,
    pub part_bytes: usize,
    pub part_concurrency: usize,
}

/// Runs syncs on a worker.
pub struct Importer {
    pub linking: Linking,
    pub storage: Storage,
    pub limits: ImportLimits,
    /// Tells the owner's live connections how a sync is going.
    pub events: JobEvents,
}

impl Importer {
    /// Runs a taken sync to its end.
    pub async fn run(
        &self,
        sync: AccountSyncRow,
        link: LinkedAccountRow,
    ) -> ServiceResult<AccountSyncRow> {
        self.announce(&sync).await;
        let ended = self.import_all(&sync, &link).await?;
        self.announce(&ended).await;
        Ok(ended)
    }

    /// A `sync` event on the owner's `/ws`: the sync's status and counts.
    async fn announce(&self, sync: &AccountSyncRow) {
        let event = LiveMessage::Sync {
            sync_id: sync.id,
            link_id: sync.link_id,
            status: sync.status,
            found: sync.found,
            imported: sync.imported,
            failed: sync.failed,
        };
        self.events.notify(sync.user_id, &event).await;
    }

    async fn import_all(
        &self,
        sync: &AccountSyncRow,
        link: &LinkedAccountRow,
    ) -> ServiceResult<AccountSyncRow> {
        let listed = self.list(link).await;
        let (token, clips, covered_until) = match listed {
            Ok(listed) => listed,
            Err(PlatformError(why)) => {
                tracing::warn!(sync_id = %sync.id, %why, "a sync could not list the platform's clips");
                let message = format!(
                    "{} refused or could not be reached; link the account again if this persists",
                    link.provider.name()
                );
                return self
                    .end(sync.id, SyncStatus::Failed, Some(message), None)
                    .await;
            }
        };
        let mut progress = Progress {
            found: clips.len() as i32,
            ..Progress::default()
        };
        for clip in clips {
            match self.import(link, &token, &clip).await {
                Ok(()) => progress.imported += 1,
                Err(PlatformError(why)) => {
                    tracing::warn!(sync_id = %sync.id, clip = %clip.id, %why, "a clip failed to import");
                    self.record_failure(link.id, &clip, why).await?;
                    progress.failed += 1;
                }
            }
            let reported = self.report(sync.id, progress).await?;
            self.announce(&reported).await;
        }
        let synced = Some((link.id, covered_until));
        self.end(sync.id, SyncStatus::Success, None, synced).await
    }

    /// A token, the clips to import (new since the last sync, not already in the library,
    /// and earlier failures), and up to when the platform was covered.
    async fn list(
        &self,
        link: &LinkedAccountRow,
    ) -> Result<(String, Vec<PlatformClip>, DateTime<Utc>), PlatformError> {
        let token = self.linking.access_token(link).await?;
        let client = crate::client_of(&self.linking.config, link.provider)
            .ok_or(PlatformError("not configured".into()))?;
        let Listing {
            mut clips,
            covered_until,
        } = platforms::twitch_clips(
            &self.linking.http,
            client,
            &token,
            &link.external_id,
            link.last_synced_at,
        )
        .await?;
        let (user, link_id) = (link.user_id, link.id);
        let (have, failed) = self
            .linking
            .db
            .run(move |conn| {
                let have: Vec<Option<String>> = clips::table
                    .filter(clips::user_id.eq(user))
                    .filter(clips::source.eq(ClipSource::Twitch))
                    .select(clips::external_id)
                    .load(conn)?;
                let failed: Vec<ImportFailureRow> = import_failures::table
                    .filter(import_failures::link_id.eq(link_id))
                    .select(ImportFailureRow::as_select())
                    .load(conn)?;
                Ok((have, failed))
            })
            .await?;
        clips.extend(failed.into_iter().map(|f| PlatformClip {
            id: f.external_id,
            title: f.title,
        }));
        clips.sort_by(|a, b| a.id.cmp(&b.id));
        clips.dedup_by(|a, b| a.id == b.id);
        clips.retain(|clip| !have.iter().flatten().any(|id| *id == clip.id));
        Ok((token, clips, covered_until))
    }

    /// Streams one platform clip into storage and makes it a library clip.
    async fn import(
        &self,
        link: &LinkedAccountRow,
        token: &str,
        clip: &PlatformClip,
    ) -> Result<(), PlatformError> {
        let client = crate::client_of(&self.linking.config, link.provider)
            .ok_or(PlatformError("not configured".into()))?;
        let url = platforms::twitch_download_url(
            &self.linking.http,
            client,
            token,
            &link.external_id,
            &clip.id,
        )
        .await?;
        let id = Uuid::now_v7();
        let key = clip_key(link.user_id, id);
        let (size, container) = self.store(&url, &key, &clip.title).await?;
        let stored = StoredInput {
            storage_key: key.clone(),
            label: clip.label(),
            container: container.to_owned(),
            size_bytes: size,
            library: Library::Added(id),
        };
        let row = ClipRow::pending(
            id,
            link.user_id,
            ClipSource::Twitch,
            Some(clip.id.clone()),
            &stored,
        );
        let (link_id, external) = (link.id, clip.id.clone());
        let inserted = self
            .linking
            .db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let inserted = library::insert::imported(conn, &row)?;
                    diesel::delete(import_failures::table.find((link_id, external)))
                        .execute(conn)?;
                    Ok(inserted)
                })
            })
            .await?;
        if !inserted {
            // Imported meanwhile by a sync of another worker: this copy goes.
            let _ = self.storage.delete(&[key]).await;
        }
        Ok(())
    }

    /// Downloads `url` into `key`, within the size limit and only if it is video.
    async fn store(
        &self,
        url: &str,
        key: &str,
        title: &str,
    ) -> Result<(u64, &'static str), PlatformError> {
        let mut response = self
            .linking
            .http
            .get(url)
            .send()
            .await?
            .error_for_status()?;
        let mut writer = self.storage.writer(
            key.to_owned(),
            self.limits.part_bytes,
            self.limits.part_concurrency,
        );
        let mut head = Vec::with_capacity(sniff::SNIFF_LEN);
        let streamed = async {
            while let Some(chunk) = response.chunk().await? {
                if writer.written() + chunk.len() as u64 > self.limits.max_file_bytes {
                    return Err(PlatformError(format!(
                        "{title} is larger than the per-file limit"
                    )));
                }
                let wanted = sniff::SNIFF_LEN.saturating_sub(head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..wanted]);
                writer.write(&chunk).await?;
            }
            sniff::container(&head).ok_or(PlatformError(format!("{title} is not a video file")))
        };
        match streamed.await {
            Ok(container) => Ok((writer.finish().await?, container.name())),
            Err(err) => {
                writer.abort().await;
                Err(err)
            }
        }
    }

    async fn record_failure(
        &self,
        link_id: Uuid,
        clip: &PlatformClip,
        why: String,
    ) -> ServiceResult<()> {
        let row = ImportFailureRow {
            link_id,
            external_id: clip.id.clone(),
            title: clip.title.clone(),
            attempts: 1,
            last_error: why,
            updated_at: Utc::now(),
        };
        self.linking
            .db
            .run(move |conn| {
                diesel::insert_into(import_failures::table)
                    .values(&row)
                    .on_conflict((import_failures::link_id, import_failures::external_id))
                    .do_update()
                    .set((
                        import_failures::attempts.eq(import_failures::attempts + 1),
                        import_failures::last_error.eq(&row.last_error),
                        import_failures::updated_at.eq(row.updated_at),
                    ))
                    .execute(conn)?;
                Ok(())
            })
            .await
    }

    async fn report(&self, id: Uuid, progress: Progress) -> ServiceResult<AccountSyncRow> {
        self.linking
            .db
            .run(move |conn| {
                Ok(diesel::update(account_syncs::table.find(id))
                    .set((
                        account_syncs::found.eq(progress.found),
                        account_syncs::imported.eq(progress.imported),
                        account_syncs::failed.eq(progress.failed),
                    ))
                    .returning(AccountSyncRow::as_returning())
                    .get_result(conn)?)
            })
            .await
    }

    /// Ends the sync; a successful one moves its link's "synced until" to what its listing
    /// covered.
    async fn end(
        &self,
        id: Uuid,
        status: SyncStatus,
        error: Option<String>,
        synced: Option<(Uuid, chrono::DateTime<Utc>)>,
    ) -> ServiceResult<AccountSyncRow> {
        self.linking
            .db
            .run(move |conn| {
                conn.transaction(|conn| {
                    if let Some((link, since)) = synced {
                        diesel::update(linked_accounts::table.find(link))
                            .set(linked_accounts::last_synced_at.eq(since))
                            .execute(conn)?;
                    }
                    Ok(diesel::update(account_syncs::table.find(id))
                        .set((
                            account_syncs::status.eq(status),
                            account_syncs::error.eq(error),
                            account_syncs::finished_at.eq(Utc::now()),
                            account_syncs::held_until.eq(None::<chrono::DateTime<Utc>>),
                        ))
                        .returning(AccountSyncRow::as_returning())
                        .get_result(conn)?)
                })
            })
            .await
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    found: i32,
    imported: i32,
    failed: i32,
}
