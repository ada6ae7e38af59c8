//! The scheduled run: each opted-in user's best clips of the week become a montage job,
//! once per user and week however many workers run it, catching up on weeks missed.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use diesel::dsl::{exists, not};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use serde::Deserialize;
use uuid::Uuid;

use db::models::{ClipRow, WeeklyMontageRow};
use db::schema::{clips, job_inputs, jobs, users, weekly_montages, weekly_runs, weekly_settings};
use db::Db;
use domain::clips::{ClipStatus, ANALYSIS_VERSION};
use domain::error::ServiceResult;
use domain::jobs::{JobOptions, Library, OutputFormat, StoredInput, Style};
use domain::music::{Music, TrackId};
use domain::plans::PlanId;
use domain::showcase::{Visibility, WeeklyOutcome};
use engine::admission::{self, entitle, Requester};
use planning::montage::highlight_scores;
use settings::{BillingConfig, ShowcaseConfig};

use crate::schedule::{Week, WeeklySchedule};

/// Users looked at per pass; a full batch asks for another pass at once.
const BATCH: i64 = 20;
/// Clips of one week read at most (their analyses are a few kilobytes each).
const MOST_CANDIDATES: i64 = 200;
/// A clip's score is the mean of its best windows over about this many seconds.
const BEST_WINDOWS: usize = 6;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub built: usize,
    pub too_little: usize,
    pub over_quota: usize,
    /// Users or weeks remain: run again at once.
    pub more: bool,
}

#[derive(Clone)]
pub struct WeeklyRun {
    db: Db,
    config: ShowcaseConfig,
    plans: BillingConfig,
    /// Jobs an account may make before it confirms its address.
    unverified_allowance: i64,
}

/// A library clip the week's montage may use, with its stored analysis.
struct Candidate {
    input: StoredInput,
    loudness_db: Vec<f64>,
    motion: Vec<f64>,
    created_at: DateTime<Utc>,
}

/// The fields of a stored analysis the run reads.
#[derive(Deserialize)]
struct StoredScores {
    version: u32,
    loudness_db: Vec<f64>,
    motion: Vec<f64>,
}

/// The weekly row a user's week ends with, and the job to go with it if built.
enum Decision {
    Built(JobOptions, Vec<StoredInput>),
    TooLittle(usize),
    /// Enough clips, but the plan's quotas refused the job.
    OverQuota(usize),
}

impl Decision {
    /// The row's outcome and clip count.
    fn outcome(&self) -> (WeeklyOutcome, usize) {
        match self {
            Self::Built(_, inputs) => (WeeklyOutcome::Built, inputs.len()),
            Self::TooLittle(count) => (WeeklyOutcome::TooLittle, *count),
            Self::OverQuota(count) => (WeeklyOutcome::OverQuota, *count),
        }
    }
}

impl WeeklyRun {
    pub fn new(
        db: Db,
        config: ShowcaseConfig,
        plans: BillingConfig,
        unverified_allowance: i64,
    ) -> Self {
        Self {
            db,
            config,
            plans,
            unverified_allowance,
        }
    }

    /// Looks at up to a batch of users of the oldest week not yet done, at `now`.
    pub async fn pass(&self, now: DateTime<Utc>) -> ServiceResult<Pass> {
        let weeks = WeeklySchedule::from(&self.config).recent(now, self.config.catch_up_weeks);
        let run = self.clone();
        self.db
            .run(move |conn| {
                let ends: Vec<DateTime<Utc>> = weeks.iter().map(|w| w.end).collect();
                let done: HashSet<DateTime<Utc>> = weekly_runs::table
                    .filter(weekly_runs::week_end.eq_any(&ends))
                    .select(weekly_runs::week_end)
                    .load(conn)?
                    .into_iter()
                    .collect();
                let Some(week) = weeks.into_iter().find(|w| !done.contains(&w.end)) else {
                    return Ok(Pass::default());
                };
                let waiting = users_waiting(conn, week)?;
                if waiting.is_empty() {
                    diesel::insert_into(weekly_runs::table)
                        .values(weekly_runs::week_end.eq(week.end))
                        .on_conflict_do_nothing()
                        .execute(conn)?;
                    return Ok(Pass {
                        more: true,
                        ..Pass::default()
                    });
                }
                let mut pass = Pass {
                    more: true,
                    ..Pass::default()
                };
                for (user_id, plan) in waiting {
                    match run.settle(conn, user_id, plan, week)? {
                        Some(WeeklyOutcome::Built) => pass.built += 1,
                        Some(WeeklyOutcome::TooLittle) => pass.too_little += 1,
                        Some(WeeklyOutcome::OverQuota) => pass.over_quota += 1,
                        None => {}
                    }
                }
                Ok(pass)
            })
            .await
    }

    /// Decides one user's week and records it; `None` when another worker got there first.
    fn settle(
        &self,
        conn: &mut PgConnection,
        user_id: Uuid,
        plan: PlanId,
        week: Week,
    ) -> ServiceResult<Option<WeeklyOutcome>> {
        let decision = self.decide(conn, user_id, plan, week)?;
        conn.transaction(|conn| {
            let decision = self.admit(conn, user_id, plan, decision)?;
            let (outcome, clip_count) = decision.outcome();
            let id = Uuid::now_v7();
            // The week's row first: a worker that finds it taken leaves the week alone.
            let claimed = diesel::insert_into(weekly_montages::table)
                .values(WeeklyMontageRow {
                    id,
                    user_id,
                    week_start: week.start,
                    week_end: week.end,
                    outcome,
                    job_id: None,
                    clip_count: clip_count as i32,
                    visibility: Visibility::Private,
                    featured_at: None,
                    created_at: Utc::now(),
                })
                .on_conflict_do_nothing()
                .execute(conn)?;
            if claimed == 0 {
                return Ok(None);
            }
            if let Decision::Built(options, inputs) = decision {
                let job_id = Uuid::now_v7();
                engine::lifecycle::insert_job(conn, user_id, job_id, options, inputs, None)?;
                diesel::update(weekly_montages::table.find(id))
                    .set(weekly_montages::job_id.eq(job_id))
                    .execute(conn)?;
            }
            Ok(Some(outcome))
        })
    }

    /// The week's job, unless the plan's quotas refuse it by the rule every job is admitted
    /// by (storage, an unverified account's allowance).
    fn admit(
        &self,
        conn: &mut PgConnection,
        user_id: Uuid,
        plan: PlanId,
        decision: Decision,
    ) -> ServiceResult<Decision> {
        let Decision::Built(_, inputs) = &decision else {
            return Ok(decision);
        };
        let usage = admission::usage_in(conn, user_id)?;
        let plan = self.plans.plan(plan);
        match usage.admit(plan, self.unverified_allowance, Requester::WeeklyRun) {
            Ok(_) => Ok(decision),
            Err(refusal) => {
                tracing::info!(%user_id, reason = %refusal, "the week's montage is over the plan's quotas");
                Ok(Decision::OverQuota(inputs.len()))
            }
        }
    }

    /// The montage the user's week makes, from the best of its analysed clips.
    fn decide(
        &self,
        conn: &mut PgConnection,
        user_id: Uuid,
        plan: PlanId,
        week: Week,
    ) -> ServiceResult<Decision> {
        let chosen = best_clips(candidates(conn, user_id, week)?, self.config.max_clips);
        if chosen.len() < self.config.min_clips {
            return Ok(Decision::TooLittle(chosen.len()));
        }
        let plan = self.plans.plan(plan);
        let (style, formats, music) = preferences(conn, user_id)?;
        let mut options = JobOptions {
            target_duration: self.config.target_seconds.min(plan.max_duration),
            style,
            formats,
            hud_remove: false,
            watermark: false,
            music: music.map(Music::Track),
            facecam: None,
            fps: None,
            title: None,
            callback_url: None,
            output_retention: None,
        };
        entitle(&mut options, plan);
        Ok(Decision::Built(
            options,
            chosen.into_iter().map(|c| c.input).collect(),
        ))
    }
}

/// Up to a batch of opted-in users with no row for `week` yet who did something that week
/// (added a library clip, made a job): the others have nothing to look at, and get no row.
fn users_waiting(conn: &mut PgConnection, week: Week) -> ServiceResult<Vec<(Uuid, PlanId)>> {
    let clips_that_week = clips::table.filter(
        clips::user_id
            .eq(users::id)
            .and(clips::created_at.ge(week.start))
            .and(clips::created_at.lt(week.end)),
    );
    let jobs_that_week = jobs::table.filter(
        jobs::user_id
            .eq(users::id)
            .and(jobs::created_at.ge(week.start))
            .and(jobs::created_at.lt(week.end)),
    );
    let recorded = weekly_montages::table.filter(
        weekly_montages::user_id
            .eq(users::id)
            .and(weekly_montages::week_start.eq(week.start)),
    );
    let opted_out = weekly_settings::table.filter(
        weekly_settings::user_id
            .eq(users::id)
            .and(weekly_settings::enabled.eq(false)),
    );
    Ok(users::table
        .filter(exists(clips_that_week).or(exists(jobs_that_week)))
        .filter(not(exists(recorded)))
        .filter(not(exists(opted_out)))
        .order(users::id)
        .limit(BATCH)
        .select((users::id, users::plan))
        .load(conn)?)
}

/// The user's ready, analysed library clips added during `week` or used by a job made then.
fn candidates(conn: &mut PgConnection, user_id: Uuid, week: Week) -> ServiceResult<Vec<Candidate>> {
    let used_that_week = job_inputs::table
        .inner_join(jobs::table)
        .filter(jobs::user_id.eq(user_id))
        .filter(
            jobs::created_at
                .ge(week.start)
                .and(jobs::created_at.lt(week.end)),
        )
        .filter(job_inputs::clip_id.is_not_null())
        .select(job_inputs::clip_id.assume_not_null());
    let rows: Vec<ClipRow> = clips::table
        .filter(clips::user_id.eq(user_id))
        .filter(clips::status.eq(ClipStatus::Ready))
        .filter(
            clips::created_at
                .ge(week.start)
                .and(clips::created_at.lt(week.end))
                .or(clips::id.eq_any(used_that_week)),
        )
        .order((clips::created_at, clips::id))
        .limit(MOST_CANDIDATES)
        .select(ClipRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().filter_map(Candidate::of).collect())
}

impl Candidate {
    /// A clip with a stored analysis of the current version.
    fn of(clip: ClipRow) -> Option<Self> {
        let scores: StoredScores = serde_json::from_value(clip.analysis?).ok()?;
        (scores.version == ANALYSIS_VERSION && !scores.motion.is_empty()).then(|| Self {
            input: StoredInput {
                storage_key: clip.storage_key,
                label: clip.label,
                container: clip.container,
                size_bytes: clip.size_bytes.max(1) as u64,
                library: Library::Existing(clip.id),
            },
            loudness_db: scores.loudness_db,
            motion: scores.motion,
            created_at: clip.created_at,
        })
    }
}

/// The `most` clips with the best moments (each clip's best windows, scored together with
/// the week's other clips), in the order they were made.
fn best_clips(candidates: Vec<Candidate>, most: usize) -> Vec<Candidate> {
    let loudness: Vec<Vec<f64>> = candidates.iter().map(|c| c.loudness_db.clone()).collect();
    let motion: Vec<Vec<f64>> = candidates.iter().map(|c| c.motion.clone()).collect();
    let scores = highlight_scores(&loudness, &motion);
    let mut ranked: Vec<(f64, Candidate)> = scores
        .into_iter()
        .map(|mut windows| {
            windows.sort_by(|a, b| b.total_cmp(a));
            windows.truncate(BEST_WINDOWS);
            windows.iter().sum::<f64>() / windows.len().max(1) as f64
        })
        .zip(candidates)
        .collect();
    ranked.sort_by(|(a, x), (b, y)| b.total_cmp(a).then(x.created_at.cmp(&y.created_at)));
    let mut chosen: Vec<Candidate> = ranked.into_iter().take(most).map(|(_, c)| c).collect();
    chosen.sort_by_key(|c| c.created_at);
    chosen
}

/// The style and formats the user's weekly montage uses: the style they chose for it, or
/// the one their jobs of the last 90 days used most; the formats of their latest job.
fn preferences(
    conn: &mut PgConnection,
    user_id: Uuid,
) -> ServiceResult<(Style, Vec<OutputFormat>, Option<TrackId>)> {
    let (chosen, music): (Option<Style>, Option<String>) = weekly_settings::table
        .find(user_id)
        .select((weekly_settings::style, weekly_settings::music_id))
        .first(conn)
        .optional()?
        .unwrap_or_default();
    // Only ids that passed `TrackId::parse` are stored.
    let music = music.and_then(|id| TrackId::parse("music_id", &id).ok());
    let recent = || {
        jobs::table
            .filter(jobs::user_id.eq(user_id))
            .filter(jobs::created_at.gt(Utc::now() - Duration::days(90)))
    };
    let uses: Vec<(Style, i64)> = recent()
        .group_by(jobs::style)
        .select((jobs::style, diesel::dsl::count_star()))
        .load(conn)?;
    // Ties go to the default style, then to the list's order.
    let most_used = uses
        .iter()
        .max_by_key(|(style, count)| (*count, *style == Style::Gaming, *style))
        .map(|(style, _)| *style);
    let style = chosen.or(most_used).unwrap_or(Style::Gaming);
    let formats = recent()
        .order(jobs::created_at.desc())
        .select(jobs::formats)
        .first::<Vec<OutputFormat>>(conn)
        .optional()?
        .unwrap_or_else(|| OutputFormat::ALL.to_vec());
    Ok((style, formats, music))
}
