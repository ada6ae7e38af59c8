//! Interests, and recommendations that follow from them: styles with settings, each with
//! its reason, scored from the player's own montages, their interests, and the views that
//! similar players' (and everyone's) montages drew; and featured weekly montages that match.
//! Deterministic: the same data gives the same answer.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use diesel::sql_types::{Date, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::{pg::PgConnection, prelude::*};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use db::models::JobRow;
use db::schema::{jobs, user_interests};
use domain::error::ServiceResult;
use domain::identity::AuthUser;
use domain::jobs::{JobStatus, OutputFormat, Style, DEFAULT_TARGET_DURATION};
use domain::showcase::{Interest, InterestKind};
use planning::styles::preset;

use crate::Insights;

#[derive(Debug, Serialize, ToSchema)]
pub struct InterestList {
    /// Games first, then styles, each alphabetically.
    pub interests: Vec<String>,
    pub games: Vec<String>,
    pub styles: Vec<Style>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Recommendations {
    pub styles: Vec<StyleRecommendation>,
    /// Featured weekly montages: those matching the interests, or the latest without any.
    pub featured_montages: Vec<FeaturedMontage>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StyleRecommendation {
    pub style: Style,
    pub settings: RecommendedSettings,
    /// Higher is stronger; comparable within one answer only.
    pub score: f64,
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecommendedSettings {
    pub target_duration: u32,
    pub formats: Vec<OutputFormat>,
    pub hud_remove: bool,
}

#[derive(Debug, Serialize, ToSchema, QueryableByName)]
pub struct FeaturedMontage {
    #[diesel(sql_type = SqlUuid)]
    pub montage_id: Uuid,
    #[diesel(sql_type = Nullable<Text>)]
    pub owner: Option<String>,
    #[diesel(sql_type = Text)]
    pub style: Style,
    #[diesel(sql_type = Timestamptz)]
    pub week_start: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub featured_at: DateTime<Utc>,
    #[serde(skip)]
    #[diesel(sql_type = SqlUuid)]
    pub owner_id: Uuid,
    /// Why it is recommended; empty in the SQL row, set afterwards.
    #[diesel(sql_type = Text)]
    pub reason: String,
}

#[derive(QueryableByName)]
struct StyleViews {
    #[diesel(sql_type = Text)]
    style: Style,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    views: i64,
}

/// Views per style in the last 30 days, of the jobs `scope` (an SQL condition on `j`) keeps.
fn views_by_style(scope: &str) -> String {
    format!(
        "SELECT j.style, count(*) AS views FROM montage_views v JOIN jobs j ON j.id = v.job_id
         WHERE v.day > $2 - 30 AND {scope} GROUP BY j.style"
    )
}
const OWN: &str = "j.user_id = $1";
const SIMILAR: &str = "j.user_id <> $1 AND j.user_id IN (
    SELECT i.user_id FROM user_interests i WHERE i.kind = 'game' AND i.interest IN (
        SELECT m.interest FROM user_interests m WHERE m.user_id = $1 AND m.kind = 'game'))";
const EVERYONE: &str = "$1 IS NOT NULL";
const FEATURED: &str = "SELECT w.id AS montage_id, coalesce(u.display_name, u.username) AS owner,
        j.style, w.week_start, w.featured_at, w.user_id AS owner_id, '' AS reason
    FROM weekly_montages w JOIN jobs j ON j.id = w.job_id JOIN users u ON u.id = w.user_id
    WHERE w.featured_at IS NOT NULL AND w.visibility = 'public' AND j.status = 'SUCCESS'
        AND j.outputs_expired_at IS NULL
    ORDER BY w.featured_at DESC, w.id LIMIT 200";

/// A small preference among styles for players nothing is known of yet (and to break ties):
/// punchy cuts suit most gameplay.
const DEFAULT_PRIOR: [(Style, f64); 4] = [
    (Style::Gaming, 0.04),
    (Style::Energetic, 0.03),
    (Style::Cinematic, 0.02),
    (Style::Chill, 0.01),
];

/// What is known of one style for one player.
#[derive(Debug, Default, Clone, Copy)]
struct Signals {
    followed: bool,
    own_views: i64,
    own_made: i64,
    similar_views: i64,
    everyone_views: i64,
}

impl Insights {
    /// Replaces the caller's interests.
    pub async fn set_interests(
        &self,
        user: AuthUser,
        interests: Vec<Interest>,
    ) -> ServiceResult<InterestList> {
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    diesel::delete(
                        user_interests::table.filter(user_interests::user_id.eq(user.id)),
                    )
                    .execute(conn)?;
                    let rows: Vec<_> = interests
                        .iter()
                        .map(|i| {
                            (
                                user_interests::user_id.eq(user.id),
                                user_interests::interest.eq(&i.name),
                                user_interests::kind.eq(i.kind),
                            )
                        })
                        .collect();
                    diesel::insert_into(user_interests::table)
                        .values(rows)
                        .execute(conn)?;
                    Ok(())
                })
            })
            .await?;
        self.interests(user).await
    }

    pub async fn interests(&self, user: AuthUser) -> ServiceResult<InterestList> {
        let rows: Vec<(String, InterestKind)> = self
            .db
            .run(move |conn| {
                Ok(user_interests::table
                    .filter(user_interests::user_id.eq(user.id))
                    .order((user_interests::kind, user_interests::interest))
                    .select((user_interests::interest, user_interests::kind))
                    .load(conn)?)
            })
            .await?;
        let games: Vec<String> = rows
            .iter()
            .filter(|(_, kind)| *kind == InterestKind::Game)
            .map(|(name, _)| name.clone())
            .collect();
        let styles: Vec<Style> = rows
            .iter()
            .filter_map(|(name, _)| name.parse().ok())
            .collect();
        Ok(InterestList {
            interests: rows.into_iter().map(|(name, _)| name).collect(),
            games,
            styles,
        })
    }

    /// Up to `top_n` styles and `top_n` featured montages for the caller.
    pub async fn recommendations(
        &self,
        user: AuthUser,
        top_n: usize,
    ) -> ServiceResult<Recommendations> {
        let interests = self.interests(user).await?;
        let max_duration = self
            .billing
            .plan(self.billing.plan_of(user).await?)
            .max_duration;
        let followed: BTreeSet<Style> = interests.styles.iter().copied().collect();
        let (signals, latest, featured) = self
            .db
            .run(move |conn| {
                let signals = style_signals(conn, user, &followed)?;
                let latest = latest_by_style(conn, user)?;
                Ok((signals, latest, featured_with_games(conn)?))
            })
            .await?;
        let styles = rank(&signals, &latest, max_duration, top_n);
        let featured_montages = matching(featured.0, &featured.1, &interests, top_n);
        Ok(Recommendations {
            styles,
            featured_montages,
        })
    }
}

/// Each style's signals for `user`: followed, views (theirs, similar players', everyone's)
/// and montages made.
fn style_signals(
    conn: &mut PgConnection,
    user: AuthUser,
    followed: &BTreeSet<Style>,
) -> QueryResult<BTreeMap<Style, Signals>> {
    let today = Utc::now().date_naive();
    let mut signals: BTreeMap<Style, Signals> = Style::ALL
        .iter()
        .map(|&s| {
            (
                s,
                Signals {
                    followed: followed.contains(&s),
                    ..Signals::default()
                },
            )
        })
        .collect();
    for (scope, pick) in [
        (
            OWN,
            (|s: &mut Signals| &mut s.own_views) as fn(&mut Signals) -> &mut i64,
        ),
        (SIMILAR, |s: &mut Signals| &mut s.similar_views),
        (EVERYONE, |s: &mut Signals| &mut s.everyone_views),
    ] {
        let rows: Vec<StyleViews> = diesel::sql_query(views_by_style(scope))
            .bind::<SqlUuid, _>(user.id)
            .bind::<Date, _>(today)
            .load(conn)?;
        for row in rows {
            *pick(signals.entry(row.style).or_default()) = row.views;
        }
    }
    let made: Vec<(Style, i64)> = jobs::table
        .filter(jobs::user_id.eq(user.id))
        .filter(jobs::status.eq(JobStatus::Success))
        .group_by(jobs::style)
        .select((jobs::style, diesel::dsl::count_star()))
        .load(conn)?;
    for (style, count) in made {
        signals.entry(style).or_default().own_made = count;
    }
    Ok(signals)
}

/// The latest successful job of each style, for its settings.
fn latest_by_style(
    conn: &mut PgConnection,
    user: AuthUser,
) -> QueryResult<BTreeMap<Style, JobRow>> {
    Ok(jobs::table
        .filter(jobs::user_id.eq(user.id))
        .filter(jobs::status.eq(JobStatus::Success))
        .distinct_on(jobs::style)
        .order((jobs::style, jobs::created_at.desc()))
        .select(JobRow::as_select())
        .load(conn)?
        .into_iter()
        .map(|job| (job.style, job))
        .collect())
}

/// The games each player follows, by player.
type GamesOf = Vec<(Uuid, String)>;

/// The featured montages, and the games their owners follow.
fn featured_with_games(conn: &mut PgConnection) -> QueryResult<(Vec<FeaturedMontage>, GamesOf)> {
    let featured: Vec<FeaturedMontage> = diesel::sql_query(FEATURED).load(conn)?;
    let owners: Vec<Uuid> = featured.iter().map(|f| f.owner_id).collect();
    let owner_games: GamesOf = user_interests::table
        .filter(user_interests::user_id.eq_any(owners))
        .filter(user_interests::kind.eq(InterestKind::Game))
        .select((user_interests::user_id, user_interests::interest))
        .load(conn)?;
    Ok((featured, owner_games))
}

/// The `top_n` styles by score, each with its reason.
fn rank(
    signals: &BTreeMap<Style, Signals>,
    latest: &BTreeMap<Style, JobRow>,
    max_duration: u32,
    top_n: usize,
) -> Vec<StyleRecommendation> {
    let totals = signals.values().fold(Signals::default(), |sum, s| Signals {
        followed: false,
        own_views: sum.own_views + s.own_views,
        own_made: sum.own_made + s.own_made,
        similar_views: sum.similar_views + s.similar_views,
        everyone_views: sum.everyone_views + s.everyone_views,
    });
    let mut styles: Vec<StyleRecommendation> = signals
        .iter()
        .map(|(&style, s)| recommend(style, *s, totals, latest.get(&style), max_duration))
        .collect();
    styles.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.style.as_str().cmp(b.style.as_str()))
    });
    styles.truncate(top_n);
    styles
}

/// One style's recommendation: its score is a weighted sum of its share of each signal,
/// and its reason names the signal that weighed most.
fn recommend(
    style: Style,
    s: Signals,
    totals: Signals,
    latest: Option<&JobRow>,
    max_duration: u32,
) -> StyleRecommendation {
    let parts = weighted_signals(style, s, totals);
    let prior = DEFAULT_PRIOR
        .iter()
        .find(|(s, _)| *s == style)
        .map_or(0.0, |(_, p)| *p);
    let score = parts.iter().map(|(weight, _)| weight).sum::<f64>() + prior;
    let mut reason = parts
        .iter()
        .filter(|(weight, _)| *weight > 0.0)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map_or_else(
            || format!("A good start: {}", preset(style).description),
            |(_, reason)| reason.clone(),
        );
    let settings = match latest {
        Some(job) => {
            reason.push_str(&format!("; settings as in your latest {style} montage"));
            RecommendedSettings {
                target_duration: (job.target_duration as u32).min(max_duration),
                formats: job.formats.clone(),
                hud_remove: job.hud_remove,
            }
        }
        None => RecommendedSettings {
            target_duration: DEFAULT_TARGET_DURATION.min(max_duration),
            formats: OutputFormat::ALL.to_vec(),
            hud_remove: false,
        },
    };
    StyleRecommendation {
        style,
        settings,
        score: (score * 1000.0).round() / 1000.0,
        reason,
    }
}

/// Each signal's weight (its share of all styles' signal, weighted) and what it says.
fn weighted_signals(style: Style, s: Signals, totals: Signals) -> [(f64, String); 5] {
    let share = |value: i64, total: i64| {
        if total > 0 {
            value as f64 / total as f64
        } else {
            0.0
        }
    };
    [
        (
            if s.followed { 3.0 } else { 0.0 },
            format!("You follow {style} montages"),
        ),
        (
            2.0 * share(s.own_views, totals.own_views),
            format!("Your {style} montages drew {} views in the last 30 days", s.own_views),
        ),
        (
            share(s.own_made, totals.own_made),
            format!("You made {} {style} montages", s.own_made),
        ),
        (
            1.5 * share(s.similar_views, totals.similar_views),
            format!(
                "Players who like your games drew {} views with {style} montages in the last 30 days",
                s.similar_views
            ),
        ),
        (
            0.5 * share(s.everyone_views, totals.everyone_views),
            format!(
                "{style} montages drew {} views across all players in the last 30 days",
                s.everyone_views
            ),
        ),
    ]
}

/// The featured montages by players who like one of the caller's games, or in a style they
/// follow; all of them, newest first, for a caller without interests.
fn matching(
    featured: Vec<FeaturedMontage>,
    owner_games: &[(Uuid, String)],
    interests: &InterestList,
    top_n: usize,
) -> Vec<FeaturedMontage> {
    featured
        .into_iter()
        .filter_map(|mut montage| {
            let shared_game = owner_games
                .iter()
                .find(|(owner, game)| *owner == montage.owner_id && interests.games.contains(game));
            montage.reason = if let Some((_, game)) = shared_game {
                format!("Featured, by a player who also likes {game}")
            } else if interests.styles.contains(&montage.style) {
                format!("Featured, in {}, a style you follow", montage.style)
            } else if interests.interests.is_empty() {
                "Featured by the editors".to_owned()
            } else {
                return None;
            };
            Some(montage)
        })
        .take(top_n)
        .collect()
}
