//! Letting a new job in, by one rule whoever makes it (a player's form through the API, the
//! weekly run): the plan's quotas (jobs waiting or running, stored bytes, an unverified
//! account's allowance) and its entitlements on the job's options (forced watermark, how
//! long outputs are kept). Checked from what needs no file, before any byte is stored.

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;
use diesel::dsl::count_star;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use uuid::Uuid;

use db::schema::{clips, direct_uploads, job_inputs, job_outputs, jobs, users};
use domain::clips::ClipStatus;
use domain::error::{ErrorCode, ServiceError, ServiceResult};
use domain::jobs::{JobOptions, JobStatus, Style};
use domain::title::Title;
use settings::PlanConfig;

/// What a user has open and stored, against the plan's quotas.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// Jobs waiting or running.
    pub open_jobs: i64,
    /// Uploaded clips not yet purged, library clips, direct uploads under way (their
    /// declared size), and outputs not yet expired.
    pub stored_bytes: u64,
    /// Jobs ever created while the account's address is unverified (for its allowance);
    /// `None` once verified.
    pub unverified_jobs: Option<i64>,
}

/// Who asks for a new job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester {
    /// The player, through the API: every quota holds.
    Player,
    /// The weekly run, on the player's standing choice: not refused for the jobs the player
    /// has running at that moment (they did not ask for it then), but for storage and the
    /// unverified allowance like any job.
    WeeklyRun,
}

impl Usage {
    /// Refuses a new job past the plan's quotas, or past `unverified_allowance` jobs while
    /// the account's address is unverified; otherwise the bytes it may still store.
    pub fn admit(
        &self,
        plan: &PlanConfig,
        unverified_allowance: i64,
        requester: Requester,
    ) -> ServiceResult<u64> {
        if self
            .unverified_jobs
            .is_some_and(|made| made >= unverified_allowance)
        {
            return Err(ServiceError::new(
                ErrorCode::EmailNotVerified,
                format!(
                    "Email not verified: confirm your address with the link we mailed to make more than {unverified_allowance} montages"
                ),
            )
            .with_data(serde_json::json!({ "allowance": unverified_allowance })));
        }
        if requester == Requester::Player && self.open_jobs >= plan.open_jobs {
            return Err(ServiceError::new(
                ErrorCode::QuotaExceeded,
                format!(
                    "You have {} jobs waiting or running; your plan allows {} at a time",
                    self.open_jobs, plan.open_jobs
                ),
            )
            .with_data(serde_json::json!({ "quota": "open_jobs", "limit": plan.open_jobs })));
        }
        let left = self.storage_left(plan);
        if left == 0 {
            return Err(ServiceError::new(
                ErrorCode::QuotaExceeded,
                "Your plan's storage is full: delete finished jobs to make room",
            )
            .with_data(
                serde_json::json!({ "quota": "storage", "limit_bytes": plan.storage_bytes }),
            ));
        }
        Ok(left)
    }

    /// The bytes the plan lets this user store on top of what they have.
    pub fn storage_left(&self, plan: &PlanConfig) -> u64 {
        plan.storage_bytes.saturating_sub(self.stored_bytes)
    }
}

/// The styles' title typefaces, read once: a title is let in only when its style's face
/// has a glyph for every character, so no montage shows empty boxes.
#[derive(Clone)]
pub struct TitleFonts {
    faces: Arc<Vec<(Style, Vec<u8>)>>,
}

impl TitleFonts {
    /// Reads each style's typeface from `dir`.
    pub fn load(dir: &Path) -> ServiceResult<Self> {
        let faces = Style::ALL
            .iter()
            .map(|&style| {
                let path = dir.join(planning::styles::preset(style).title_font);
                let bytes = std::fs::read(&path).map_err(|err| {
                    ServiceError::internal(format!(
                        "cannot read the typeface {}: {err}",
                        path.display()
                    ))
                })?;
                ttf_parser::Face::parse(&bytes, 0).map_err(|err| {
                    ServiceError::internal(format!(
                        "{} is not a TrueType font: {err}",
                        path.display()
                    ))
                })?;
                Ok((style, bytes))
            })
            .collect::<ServiceResult<_>>()?;
        Ok(Self {
            faces: Arc::new(faces),
        })
    }

    /// Refuses a `title` the `style`'s typeface cannot draw, naming the first character it
    /// lacks.
    pub fn require(&self, style: Style, title: &Title) -> ServiceResult<()> {
        let (_, bytes) = self
            .faces
            .iter()
            .find(|(face_style, _)| *face_style == style)
            .expect("a face per style");
        let face = ttf_parser::Face::parse(bytes, 0).expect("checked when loaded");
        let missing = title
            .as_str()
            .chars()
            .find(|c| !c.is_whitespace() && face.glyph_index(*c).is_none());
        match missing {
            None => Ok(()),
            Some(c) => Err(ServiceError::invalid_field(
                "title",
                format!(
                    "The {style} style's typeface has no glyph for {c:?} (U+{:04X}); titles may use Latin, Greek and Cyrillic letters, digits and punctuation",
                    u32::from(c)
                ),
            )),
        }
    }
}

/// The plan's entitlements on a job's options: its forced watermark, and how long its
/// outputs are kept.
pub fn entitle(options: &mut JobOptions, plan: &PlanConfig) {
    options.watermark |= plan.forced_watermark;
    options.output_retention = plan.output_retention;
}

/// What `user_id` has open and stored, read inside the caller's transaction.
pub fn usage_in(conn: &mut PgConnection, user_id: Uuid) -> ServiceResult<Usage> {
    let open_jobs: i64 = jobs::table
        .filter(jobs::user_id.eq(user_id))
        .filter(jobs::status.eq_any([
            JobStatus::Pending,
            JobStatus::Processing,
            JobStatus::Retrying,
        ]))
        .select(count_star())
        .first(conn)?;
    let stored_bytes = stored_bytes(conn, user_id)?;
    let verified_at: Option<chrono::DateTime<Utc>> = users::table
        .find(user_id)
        .select(users::email_verified_at)
        .first(conn)
        .optional()?
        .ok_or_else(ServiceError::account_gone)?;
    // Counting every job a busy account made is only needed before it verifies.
    let unverified_jobs = match verified_at {
        Some(_) => None,
        None => Some(
            jobs::table
                .filter(jobs::user_id.eq(user_id))
                .select(count_star())
                .first(conn)?,
        ),
    };
    Ok(Usage {
        open_jobs,
        stored_bytes,
        unverified_jobs,
    })
}

/// The bytes `user` has stored: job inputs, library clips, direct uploads under way, outputs.
fn stored_bytes(conn: &mut PgConnection, user: Uuid) -> QueryResult<u64> {
    use diesel::{
        dsl::sql,
        sql_types::{BigInt, Nullable},
    };
    // SUM of BIGINT is NUMERIC in PostgreSQL; cast it back.
    let total = |column: &str| sql::<Nullable<BigInt>>(&format!("SUM({column})::int8"));
    // A library clip counts once, as the clip, however many jobs use it.
    let inputs: Option<i64> = job_inputs::table
        .inner_join(jobs::table)
        .filter(jobs::user_id.eq(user))
        .filter(jobs::inputs_purged_at.is_null())
        .filter(job_inputs::from_library.eq(false))
        .select(total("job_inputs.size_bytes"))
        .first(conn)?;
    // A completed upload counts as its clip.
    let uploading: Option<i64> = direct_uploads::table
        .filter(direct_uploads::user_id.eq(user))
        .filter(direct_uploads::completed_at.is_null())
        .select(total("direct_uploads.size_bytes"))
        .first(conn)?;
    let library: Option<i64> = clips::table
        .filter(clips::user_id.eq(user))
        .filter(clips::status.ne(ClipStatus::Rejected))
        .select(total("clips.size_bytes"))
        .first(conn)?;
    let outputs: Option<i64> = job_outputs::table
        .inner_join(jobs::table)
        .filter(jobs::user_id.eq(user))
        .filter(jobs::outputs_expired_at.is_null())
        .select(total("job_outputs.size_bytes"))
        .first(conn)?;
    Ok([inputs, library, uploading, outputs]
        .into_iter()
        .map(|bytes| bytes.unwrap_or(0).max(0) as u64)
        .sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_title_is_let_in_only_when_its_typeface_draws_it() {
        let fonts = TitleFonts::load(Path::new("/usr/share/fonts/truetype/dejavu")).unwrap();
        let title = |raw: &str| Title::parse("title", raw).unwrap();
        for style in Style::ALL {
            fonts
                .require(*style, &title("Ace — 1v5, Ελλάδα, Москва!"))
                .unwrap();
            let refused = fonts.require(*style, &title("最高のプレイ")).unwrap_err();
            assert!(refused.message.contains("U+6700"), "{}", refused.message);
        }
    }
}
