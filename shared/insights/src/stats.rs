//! A user's numbers, counted exactly by the database: jobs, minutes rendered, views, posts,
//! storage, and the plan's limits against what is used of them.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use diesel::sql_types::{BigInt, Date, Uuid as SqlUuid};
use diesel::{pg::PgConnection, prelude::*};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use db::schema::{job_outputs, jobs, social_posts};
use domain::error::ServiceResult;
use domain::identity::AuthUser;
use domain::jobs::JobStatus;
use domain::plans::PlanId;
use domain::providers::{PostStatus, ProviderId};

use crate::Insights;

#[derive(Debug, Serialize, ToSchema)]
pub struct UserStats {
    /// Jobs by status; every status is listed.
    pub jobs: BTreeMap<String, i64>,
    /// Minutes of montage rendered by successful jobs (each job once, whatever its formats).
    pub minutes_rendered: f64,
    pub views: ViewStats,
    /// Posts by platform, then by status.
    pub posts: BTreeMap<String, BTreeMap<String, i64>>,
    pub storage: StorageStats,
    pub plan: PlanUsage,
}

#[derive(Debug, Default, Serialize, ToSchema, QueryableByName)]
pub struct ViewCounts {
    /// Views in the last 7 days, today included.
    #[diesel(sql_type = BigInt)]
    pub last_7_days: i64,
    #[diesel(sql_type = BigInt)]
    pub last_30_days: i64,
    #[diesel(sql_type = BigInt)]
    pub total: i64,
}

#[derive(Debug, Serialize, ToSchema, QueryableByName)]
pub struct MontageViews {
    #[diesel(sql_type = SqlUuid)]
    pub job_id: Uuid,
    #[diesel(embed)]
    #[serde(flatten)]
    pub views: ViewCounts,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ViewStats {
    /// Over all montages. A viewer counts once per montage and day.
    #[serde(flatten)]
    pub all: ViewCounts,
    /// Each montage with at least one view, most viewed first.
    pub montages: Vec<MontageViews>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StorageStats {
    pub used_bytes: u64,
    pub quota_bytes: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlanUsage {
    pub id: PlanId,
    pub name: String,
    pub limits: PlanQuotas,
    pub usage: QuotaUsage,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlanQuotas {
    /// Longest montage, seconds.
    pub max_duration: u32,
    pub open_jobs: i64,
    pub active_jobs: i32,
    pub storage_bytes: u64,
    pub posts_per_day: i64,
    /// Days outputs are kept after their job ends; none: kept.
    pub output_retention_days: Option<u64>,
    pub watermark: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QuotaUsage {
    pub open_jobs: i64,
    pub stored_bytes: u64,
    /// Posts made in the last 24 hours.
    pub posts_last_day: i64,
}

const VIEWS_PER_MONTAGE: &str = "SELECT v.job_id,
        count(*) FILTER (WHERE v.day > $2 - 7) AS last_7_days,
        count(*) FILTER (WHERE v.day > $2 - 30) AS last_30_days,
        count(*) AS total
    FROM montage_views v JOIN jobs j ON j.id = v.job_id
    WHERE j.user_id = $1
    GROUP BY v.job_id ORDER BY total DESC, v.job_id";

impl Insights {
    pub async fn user_stats(&self, user: AuthUser) -> ServiceResult<UserStats> {
        let usage = self.jobs.usage(user).await?;
        let plan_id = self.billing.plan_of(user).await?;
        let plan = self.billing.plan(plan_id).clone();
        let (jobs, minutes_rendered, montages, posts, posts_last_day) = self
            .db
            .run(move |conn| {
                let montages: Vec<MontageViews> = diesel::sql_query(VIEWS_PER_MONTAGE)
                    .bind::<SqlUuid, _>(user.id)
                    .bind::<Date, _>(Utc::now().date_naive())
                    .load(conn)?;
                let recent_posts: i64 = social_posts::table
                    .filter(social_posts::user_id.eq(user.id))
                    .filter(social_posts::created_at.gt(Utc::now() - Duration::hours(24)))
                    .count()
                    .get_result(conn)?;
                Ok((
                    jobs_by_status(conn, user)?,
                    minutes_rendered(conn, user)?,
                    montages,
                    posts_by_platform(conn, user)?,
                    recent_posts,
                ))
            })
            .await?;
        let all = ViewCounts {
            last_7_days: montages.iter().map(|m| m.views.last_7_days).sum(),
            last_30_days: montages.iter().map(|m| m.views.last_30_days).sum(),
            total: montages.iter().map(|m| m.views.total).sum(),
        };
        Ok(UserStats {
            jobs,
            minutes_rendered,
            views: ViewStats { all, montages },
            posts,
            storage: StorageStats {
                used_bytes: usage.stored_bytes,
                quota_bytes: plan.storage_bytes,
            },
            plan: PlanUsage {
                id: plan_id,
                name: plan.name.clone(),
                limits: PlanQuotas {
                    max_duration: plan.max_duration,
                    open_jobs: plan.open_jobs,
                    active_jobs: plan.active_jobs,
                    storage_bytes: plan.storage_bytes,
                    posts_per_day: plan.posts_per_day,
                    output_retention_days: plan.output_retention.map(|d| d.as_secs() / 86_400),
                    watermark: plan.forced_watermark,
                },
                usage: QuotaUsage {
                    open_jobs: usage.open_jobs,
                    stored_bytes: usage.stored_bytes,
                    posts_last_day,
                },
            },
        })
    }
}

/// How many of the user's jobs are in each status (every status listed, 0 included).
fn jobs_by_status(conn: &mut PgConnection, user: AuthUser) -> QueryResult<BTreeMap<String, i64>> {
    let by_status: Vec<(JobStatus, i64)> = jobs::table
        .filter(jobs::user_id.eq(user.id))
        .group_by(jobs::status)
        .select((jobs::status, diesel::dsl::count_star()))
        .load(conn)?;
    let mut jobs: BTreeMap<String, i64> =
        JobStatus::ALL.iter().map(|s| (s.to_string(), 0)).collect();
    jobs.extend(by_status.into_iter().map(|(s, n)| (s.to_string(), n)));
    Ok(jobs)
}

/// Minutes of montage rendered: each successful job counts its longest output.
fn minutes_rendered(conn: &mut PgConnection, user: AuthUser) -> QueryResult<f64> {
    let durations: Vec<(Uuid, f64)> = job_outputs::table
        .inner_join(jobs::table)
        .filter(jobs::user_id.eq(user.id))
        .filter(jobs::status.eq(JobStatus::Success))
        .select((job_outputs::job_id, job_outputs::duration_seconds))
        .load(conn)?;
    let mut longest: BTreeMap<Uuid, f64> = BTreeMap::new();
    for (job, seconds) in durations {
        let entry = longest.entry(job).or_default();
        *entry = entry.max(seconds);
    }
    Ok((longest.values().sum::<f64>() / 60.0 * 100.0).round() / 100.0)
}

/// The user's posts per platform and status (every status listed per platform posted to).
fn posts_by_platform(
    conn: &mut PgConnection,
    user: AuthUser,
) -> QueryResult<BTreeMap<String, BTreeMap<String, i64>>> {
    let counted: Vec<(ProviderId, PostStatus, i64)> = social_posts::table
        .filter(social_posts::user_id.eq(user.id))
        .group_by((social_posts::platform, social_posts::status))
        .select((
            social_posts::platform,
            social_posts::status,
            diesel::dsl::count_star(),
        ))
        .load(conn)?;
    let mut by_platform: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for (platform, status, count) in counted {
        by_platform
            .entry(platform.to_string())
            .or_insert_with(|| PostStatus::ALL.iter().map(|s| (s.to_string(), 0)).collect())
            .insert(status.to_string(), count);
    }
    Ok(by_platform)
}
