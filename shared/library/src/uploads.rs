//! Direct uploads: a large clip goes from the client straight to storage, in parts, through
//! presigned URLs; the API only starts, reports and completes the upload. Completing it
//! checks what arrived (every part, the declared size, a video container) and makes it a
//! library clip, which a worker then examines like any other.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use db::models::{ClipRow, DirectUploadRow};
use db::schema::{clips, direct_uploads, users};
use db::{Db, PgConn};
use domain::clips::{clip_key, ClipSource};
use domain::error::{ErrorCode, ServiceError, ServiceResult};
use domain::identity::AuthUser;
use domain::jobs::{Library, StoredInput};
use domain::sniff;
use settings::PlanConfig;
use storage::{Storage, StoredPart};

/// S3 allows this many parts per upload.
const MAX_PARTS: u64 = 10_000;
/// How long a completion holds an upload against a second one; past it (a crashed API
/// instance), another may take over.
const COMPLETION_HOLD: Duration = Duration::from_secs(300);

/// What a direct upload may be.
#[derive(Debug, Clone, Copy)]
pub struct UploadRules {
    pub max_file_bytes: u64,
    /// The smallest part size (S3 wants 5 MiB or more, but for the last part).
    pub part_bytes: u64,
    /// How long an unfinished upload is kept before it is aborted.
    pub ttl: Duration,
}

impl From<&settings::Limits> for UploadRules {
    fn from(limits: &settings::Limits) -> Self {
        Self {
            max_file_bytes: limits.max_file_bytes,
            part_bytes: limits.upload_part_bytes as u64,
            ttl: limits.direct_upload_ttl,
        }
    }
}

/// One part the client still has to send, and where.
#[derive(Debug, Clone)]
pub struct PartTarget {
    pub number: i32,
    pub size: u64,
    pub url: String,
}

/// A direct upload as its owner sees it: the parts stored, and those still to send.
#[derive(Debug, Clone)]
pub struct UploadState {
    pub upload: DirectUploadRow,
    pub stored: Vec<StoredPart>,
    pub missing: Vec<PartTarget>,
}

#[derive(Clone)]
pub struct DirectUploads {
    db: Db,
    storage: Storage,
    rules: UploadRules,
}

impl DirectUploads {
    pub fn new(db: Db, storage: Storage, rules: UploadRules) -> Self {
        Self { db, storage, rules }
    }

    /// Starts an upload of `size` bytes named `label`; `quota_left` is what the owner's plan
    /// may still store, and `plan` caps how many uploads they may have open.
    pub async fn start(
        &self,
        user: AuthUser,
        label: String,
        size: u64,
        quota_left: u64,
        plan: &PlanConfig,
    ) -> ServiceResult<UploadState> {
        self.admit(size, quota_left)?;
        let cap = plan.open_uploads;
        // Refused cheaply before storage is asked for anything; `record` decides.
        self.db
            .run(move |conn| open_uploads_below(conn, user.id, cap))
            .await?;
        let part_bytes = self.rules.part_bytes.max(size.div_ceil(MAX_PARTS));
        let clip_id = Uuid::now_v7();
        let storage_key = clip_key(user.id, clip_id);
        let s3_upload_id = self
            .storage
            .start_multipart(&storage_key, "video/*")
            .await?;
        let now = Utc::now();
        let row = DirectUploadRow {
            id: Uuid::now_v7(),
            user_id: user.id,
            clip_id,
            storage_key,
            s3_upload_id,
            label,
            size_bytes: size as i64,
            part_bytes: part_bytes as i64,
            created_at: now,
            expires_at: now
                + chrono::Duration::from_std(self.rules.ttl).unwrap_or(chrono::Duration::MAX),
            completing_until: None,
            completed_at: None,
        };
        if let Err(err) = self.record(&row, cap).await {
            let _ = self
                .storage
                .abort_multipart(&row.storage_key, &row.s3_upload_id)
                .await;
            return Err(err);
        }
        self.state_of(row, Vec::new()).await
    }

    /// Records a started upload, if its owner has fewer than `cap` open: one at a time per
    /// owner (their row is locked), so racing starts cannot all pass the count.
    async fn record(&self, row: &DirectUploadRow, cap: i64) -> ServiceResult<()> {
        let insert = row.clone();
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    users::table
                        .find(insert.user_id)
                        .select(users::id)
                        .for_no_key_update()
                        .first::<Uuid>(conn)?;
                    open_uploads_below(conn, insert.user_id, cap)?;
                    diesel::insert_into(direct_uploads::table)
                        .values(&insert)
                        .execute(conn)?;
                    Ok(())
                })
            })
            .await
    }

    fn admit(&self, size: u64, quota_left: u64) -> ServiceResult<()> {
        if size == 0 {
            return Err(ServiceError::invalid_field(
                "size",
                "size must be at least 1 byte",
            ));
        }
        if size > self.rules.max_file_bytes {
            return Err(ServiceError::too_large(
                format!(
                    "The clip is larger than the {} MiB per-file limit",
                    self.rules.max_file_bytes >> 20
                ),
                self.rules.max_file_bytes,
            ));
        }
        if size > quota_left {
            return Err(ServiceError::new(
                ErrorCode::QuotaExceeded,
                format!(
                    "The clip would exceed your plan's storage: {} MiB left",
                    quota_left >> 20
                ),
            )
            .with_data(serde_json::json!({ "quota": "storage", "left_bytes": quota_left })));
        }
        Ok(())
    }

    /// An upload of the caller's, with the parts stored so far and links for the rest.
    pub async fn status(&self, user: AuthUser, id: Uuid) -> ServiceResult<UploadState> {
        let row = self.open(user, id).await?;
        let stored = self.stored_parts(&row).await?;
        self.state_of(row, stored).await
    }

    /// An upload of the caller's not yet completed.
    async fn open(&self, user: AuthUser, id: Uuid) -> ServiceResult<DirectUploadRow> {
        let row = self.owned(user, id).await?;
        match row.completed_at {
            Some(_) => Err(ServiceError::not_found("Upload")),
            None => Ok(row),
        }
    }

    /// An upload of the caller's, completed ones included.
    async fn owned(&self, user: AuthUser, id: Uuid) -> ServiceResult<DirectUploadRow> {
        self.db
            .run(move |conn| {
                direct_uploads::table
                    .find(id)
                    .filter(direct_uploads::user_id.eq(user.id))
                    .select(DirectUploadRow::as_select())
                    .first(conn)
                    .optional()?
                    .ok_or_else(|| ServiceError::not_found("Upload"))
            })
            .await
    }

    /// The parts in storage; an upload storage no longer knows is not found.
    async fn stored_parts(&self, row: &DirectUploadRow) -> ServiceResult<Vec<StoredPart>> {
        self.storage
            .stored_parts(&row.storage_key, &row.s3_upload_id)
            .await
            .map_err(|err| match err {
                storage::StoreError::NotFound(_) => ServiceError::not_found("Upload"),
                other => other.into(),
            })
    }

    async fn state_of(
        &self,
        upload: DirectUploadRow,
        stored: Vec<StoredPart>,
    ) -> ServiceResult<UploadState> {
        let mut missing = Vec::new();
        for (number, size) in part_sizes(&upload) {
            if !stored
                .iter()
                .any(|part| part.number == number && part.size == size)
            {
                let url = self
                    .storage
                    .presign_part(&upload.storage_key, &upload.s3_upload_id, number, size)
                    .await?;
                missing.push(PartTarget { number, size, url });
            }
        }
        Ok(UploadState {
            upload,
            stored,
            missing,
        })
    }

    /// Joins the parts into a library clip once each has arrived whole. The result must
    /// be a video container; if not, it is deleted. The clip is PENDING until a worker
    /// has examined it. One completion at a time: a second one meanwhile is a conflict, and
    /// one after it answers the same clip.
    pub async fn complete(&self, user: AuthUser, id: Uuid) -> ServiceResult<ClipRow> {
        let row = self.owned(user, id).await?;
        if row.completed_at.is_some() {
            return self.completed_clip(&row).await;
        }
        self.claim_completion(id).await?;
        let completed = self.join(&row).await;
        if completed.is_err() {
            // Free to try again (a row already gone needs nothing).
            self.db
                .run(move |conn| {
                    diesel::update(direct_uploads::table.find(id))
                        .set(direct_uploads::completing_until.eq(None::<DateTime<Utc>>))
                        .execute(conn)?;
                    Ok(())
                })
                .await?;
        }
        completed
    }

    /// The clip a completed upload became (gone if its owner deleted it since).
    async fn completed_clip(&self, row: &DirectUploadRow) -> ServiceResult<ClipRow> {
        let (clip, user) = (row.clip_id, row.user_id);
        self.db
            .run(move |conn| {
                clips::table
                    .find(clip)
                    .filter(clips::user_id.eq(user))
                    .select(ClipRow::as_select())
                    .first(conn)
                    .optional()?
                    .ok_or_else(|| ServiceError::not_found("Upload"))
            })
            .await
    }

    /// Marks the upload as being completed, unless another completion holds it.
    async fn claim_completion(&self, id: Uuid) -> ServiceResult<()> {
        let hold = chrono::Duration::from_std(COMPLETION_HOLD).unwrap_or_default();
        let claimed = self
            .db
            .run(move |conn| {
                let now = Utc::now();
                Ok(diesel::update(
                    direct_uploads::table
                        .find(id)
                        .filter(direct_uploads::completed_at.is_null())
                        .filter(
                            direct_uploads::completing_until
                                .is_null()
                                .or(direct_uploads::completing_until.lt(now)),
                        ),
                )
                .set(direct_uploads::completing_until.eq(now + hold))
                .execute(conn)?)
            })
            .await?;
        if claimed == 0 {
            return Err(ServiceError::conflict(
                "This upload is already being completed; ask for its clip in a moment",
            ));
        }
        Ok(())
    }

    /// The completion itself: every part checked, joined, sniffed, and recorded as a clip.
    async fn join(&self, row: &DirectUploadRow) -> ServiceResult<ClipRow> {
        let stored = self.stored_parts(row).await?;
        check_parts(row, &stored)?;
        self.storage
            .complete_multipart(&row.storage_key, &row.s3_upload_id, &stored)
            .await
            .map_err(|err| match err {
                storage::StoreError::NotFound(_) => ServiceError::not_found("Upload"),
                other => other.into(),
            })?;
        let head = self
            .storage
            .head_bytes(&row.storage_key, sniff::SNIFF_LEN)
            .await?;
        let Some(container) = sniff::container(&head) else {
            self.forget(row).await?;
            self.storage
                .delete(std::slice::from_ref(&row.storage_key))
                .await?;
            return Err(ServiceError::new(
                ErrorCode::UnsupportedMediaType,
                format!(
                    "{} is not a video file this service can read ({})",
                    row.label,
                    domain::sniff::ACCEPTED
                ),
            )
            .with_data(serde_json::json!({ "field": "file", "file": row.label })));
        };
        let stored = StoredInput {
            storage_key: row.storage_key.clone(),
            label: row.label.clone(),
            container: container.name().to_owned(),
            size_bytes: row.size_bytes as u64,
            library: Library::Added(row.clip_id),
        };
        let clip = ClipRow::pending(row.clip_id, row.user_id, ClipSource::Upload, None, &stored);
        let id = row.id;
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    // Kept until it expires, so a repeated completion answers this clip.
                    diesel::update(direct_uploads::table.find(id))
                        .set(direct_uploads::completed_at.eq(Utc::now()))
                        .execute(conn)?;
                    let mut added = crate::insert::clips(conn, std::slice::from_ref(&clip))?;
                    Ok(added.pop().expect("one row inserted, one returned"))
                })
            })
            .await
    }

    /// Abandons an upload of the caller's and whatever parts it stored.
    pub async fn cancel(&self, user: AuthUser, id: Uuid) -> ServiceResult<()> {
        let row = self.open(user, id).await?;
        self.storage
            .abort_multipart(&row.storage_key, &row.s3_upload_id)
            .await?;
        self.forget(&row).await
    }

    async fn forget(&self, row: &DirectUploadRow) -> ServiceResult<()> {
        let id = row.id;
        self.db
            .run(move |conn| {
                diesel::delete(direct_uploads::table.find(id)).execute(conn)?;
                Ok(())
            })
            .await
    }

    /// Aborts every upload of `user`'s (their account is going).
    pub async fn abort_all(&self, user: Uuid) -> ServiceResult<()> {
        let theirs: Vec<DirectUploadRow> = self
            .db
            .run(move |conn| {
                Ok(direct_uploads::table
                    .filter(direct_uploads::user_id.eq(user))
                    .select(DirectUploadRow::as_select())
                    .load(conn)?)
            })
            .await?;
        for row in &theirs {
            self.abandon(row).await?;
        }
        Ok(())
    }

    /// Aborts up to `limit` uploads past their time; answers how many.
    pub async fn abort_expired(&self, limit: i64) -> ServiceResult<usize> {
        let expired: Vec<DirectUploadRow> = self
            .db
            .run(move |conn| {
                Ok(direct_uploads::table
                    .filter(direct_uploads::expires_at.lt(Utc::now()))
                    .order(direct_uploads::expires_at.asc())
                    .limit(limit)
                    .select(DirectUploadRow::as_select())
                    .load(conn)?)
            })
            .await?;
        for row in &expired {
            self.abandon(row).await?;
        }
        Ok(expired.len())
    }

    /// Forgets an upload, aborting it in storage first unless it was completed.
    async fn abandon(&self, row: &DirectUploadRow) -> ServiceResult<()> {
        if row.completed_at.is_none() {
            self.storage
                .abort_multipart(&row.storage_key, &row.s3_upload_id)
                .await?;
        }
        self.forget(row).await
    }
}

/// Refuses a new upload when `user` already has `cap` open (403 `QUOTA_EXCEEDED`).
fn open_uploads_below(conn: &mut PgConn, user: Uuid, cap: i64) -> ServiceResult<()> {
    let open: i64 = direct_uploads::table
        .filter(direct_uploads::user_id.eq(user))
        .filter(direct_uploads::completed_at.is_null())
        .filter(direct_uploads::expires_at.gt(Utc::now()))
        .count()
        .get_result(conn)?;
    if open >= cap {
        return Err(ServiceError::new(
            ErrorCode::QuotaExceeded,
            format!("You have {open} uploads open, your plan's most: complete or cancel one first"),
        )
        .with_data(serde_json::json!({ "quota": "open_uploads", "limit": cap })));
    }
    Ok(())
}

/// Each part's number and exact size: all `part_bytes` long but the last.
fn part_sizes(upload: &DirectUploadRow) -> impl Iterator<Item = (i32, u64)> {
    let (size, part) = (upload.size_bytes as u64, upload.part_bytes as u64);
    let count = size.div_ceil(part);
    (1..=count).map(move |n| (n as i32, part.min(size - (n - 1) * part)))
}

/// Every part there, each of its exact size, and nothing else: what was declared arrived.
fn check_parts(upload: &DirectUploadRow, stored: &[StoredPart]) -> ServiceResult<()> {
    let expected: Vec<(i32, u64)> = part_sizes(upload).collect();
    let missing: Vec<i32> = expected
        .iter()
        .filter(|(number, _)| !stored.iter().any(|p| p.number == *number))
        .map(|(number, _)| *number)
        .collect();
    if !missing.is_empty() {
        return Err(ServiceError::conflict(format!(
            "{} of {} parts are still missing",
            missing.len(),
            expected.len()
        ))
        .with_data(serde_json::json!({ "missing_parts": missing })));
    }
    for part in stored {
        let wanted = expected.iter().find(|(number, _)| *number == part.number);
        if wanted.map(|(_, size)| *size) != Some(part.size) {
            return Err(ServiceError::invalid_field(
                "parts",
                format!(
                    "Part {} holds {} bytes; the upload declared {}",
                    part.number,
                    part.size,
                    wanted.map_or("no such part".to_owned(), |(_, size)| format!(
                        "{size} bytes for it"
                    ))
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(size: i64, part_bytes: i64) -> DirectUploadRow {
        DirectUploadRow {
            id: Uuid::nil(),
            user_id: Uuid::nil(),
            clip_id: Uuid::nil(),
            storage_key: String::new(),
            s3_upload_id: String::new(),
            label: "clip".into(),
            size_bytes: size,
            part_bytes,
            created_at: Utc::now(),
            expires_at: Utc::now(),
            completing_until: None,
            completed_at: None,
        }
    }

    fn part(number: i32, size: u64) -> StoredPart {
        StoredPart {
            number,
            etag: Some(format!("e{number}")),
            size,
        }
    }

    #[test]
    fn parts_are_full_but_the_last() {
        let sizes: Vec<_> = part_sizes(&upload(25, 10)).collect();
        assert_eq!(sizes, [(1, 10), (2, 10), (3, 5)]);
        let sizes: Vec<_> = part_sizes(&upload(20, 10)).collect();
        assert_eq!(sizes, [(1, 10), (2, 10)]);
    }

    #[test]
    fn completion_needs_every_part_at_its_declared_size() {
        let upload = upload(25, 10);
        assert!(check_parts(&upload, &[part(1, 10), part(2, 10), part(3, 5)]).is_ok());
        let missing = check_parts(&upload, &[part(1, 10), part(3, 5)]).unwrap_err();
        assert_eq!(missing.code, ErrorCode::Conflict);
        assert_eq!(
            missing.data.unwrap()["missing_parts"],
            serde_json::json!([2])
        );
        let short = check_parts(&upload, &[part(1, 10), part(2, 9), part(3, 5)]).unwrap_err();
        assert_eq!(short.code, ErrorCode::ValidationError);
        let extra = check_parts(&upload, &[part(1, 10), part(2, 10), part(3, 5), part(4, 1)]);
        assert_eq!(extra.unwrap_err().code, ErrorCode::ValidationError);
    }
}
