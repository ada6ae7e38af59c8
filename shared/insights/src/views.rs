//! Views, counted once per viewer, job and day. A viewer is known only by a keyed hash of
//! their address and browser (or the id the owner's client gives) under that day's random
//! salt; salts are deleted after two days, so no stored hash leads back to anyone.

use std::sync::LazyLock;

use chrono::{Duration, NaiveDate, Utc};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use uuid::Uuid;

use db::schema::{montage_views, view_salts};
use domain::error::ServiceResult;
use domain::identity::AuthUser;
use domain::showcase::ViewSource;

use crate::Insights;

/// Who is watching, as far as the request tells.
#[derive(Debug, Clone, Default)]
pub struct Viewer {
    /// The client's address (as the rate limiter resolved it).
    pub address: String,
    pub user_agent: String,
    /// The owner's client's own id for its viewer, when it reports views for someone.
    pub id: Option<String>,
}

impl Viewer {
    /// What tells viewers apart: the owner's client's id, or the address and a coarse
    /// browser family. The full User-Agent would let one address rotating it count as many.
    fn material(&self) -> String {
        match &self.id {
            Some(id) => format!("id\0{id}"),
            None => format!(
                "client\0{}\0{}",
                self.address,
                browser_family(&self.user_agent)
            ),
        }
    }

    /// A crawler or link previewer (Discord, WhatsApp, Slack…), by the isbot list, whose
    /// patterns match whole words: a phone whose name holds "bot" (CUBOT) is a viewer.
    pub fn is_crawler(&self) -> bool {
        static CRAWLERS: LazyLock<isbot::Bots> = LazyLock::new(isbot::Bots::default);
        self.user_agent.trim().is_empty() || CRAWLERS.is_bot(&self.user_agent)
    }
}

/// The browser family and whether it is a phone's: coarse on purpose.
fn browser_family(user_agent: &str) -> &'static str {
    let agent = user_agent.to_ascii_lowercase();
    let mobile = agent.contains("mobile") || agent.contains("android");
    let family = [
        ("edg", "edge"),
        ("opr/", "opera"),
        ("firefox", "firefox"),
        ("fxios", "firefox"),
        ("crios", "chrome"),
        ("chrome", "chrome"),
        ("safari", "safari"),
    ]
    .iter()
    .find(|(mark, _)| agent.contains(mark))
    .map_or("other", |(_, family)| family);
    match (family, mobile) {
        ("edge", true) => "edge-mobile",
        ("opera", true) => "opera-mobile",
        ("firefox", true) => "firefox-mobile",
        ("chrome", true) => "chrome-mobile",
        ("safari", true) => "safari-mobile",
        ("other", true) => "other-mobile",
        (family, _) => family,
    }
}

impl Insights {
    /// Counts a view of the caller's own job, from the owner's client; `true` when it was
    /// the viewer's first today.
    pub async fn track_view(
        &self,
        owner: AuthUser,
        job_id: Uuid,
        viewer: Viewer,
    ) -> ServiceResult<bool> {
        self.jobs.get(owner, job_id).await?;
        self.count_view(job_id, viewer, ViewSource::Client).await
    }

    /// Counts a view of `job_id`; `true` when it was the viewer's first today.
    pub async fn count_view(
        &self,
        job_id: Uuid,
        viewer: Viewer,
        source: ViewSource,
    ) -> ServiceResult<bool> {
        self.db
            .run(move |conn| {
                let today = Utc::now().date_naive();
                let salt = salt_of(conn, today)?;
                let mut mac = Hmac::<Sha256>::new_from_slice(&salt).expect("any key length");
                mac.update(job_id.as_bytes());
                mac.update(viewer.material().as_bytes());
                let hash = mac.finalize().into_bytes().to_vec();
                let counted = diesel::insert_into(montage_views::table)
                    .values((
                        montage_views::job_id.eq(job_id),
                        montage_views::day.eq(today),
                        montage_views::viewer.eq(hash),
                        montage_views::source.eq(source),
                    ))
                    .on_conflict_do_nothing()
                    .execute(conn)?;
                Ok(counted == 1)
            })
            .await
    }
}

impl Insights {
    /// Every view a montage has had.
    pub async fn views_of(&self, job_id: Uuid) -> ServiceResult<i64> {
        self.db
            .run(move |conn| {
                Ok(montage_views::table
                    .filter(montage_views::job_id.eq(job_id))
                    .count()
                    .get_result(conn)?)
            })
            .await
    }
}

/// The day's salt, made by whoever needs it first; making one deletes those older than
/// yesterday's. Every other view of the day only reads it.
fn salt_of(conn: &mut PgConnection, day: NaiveDate) -> ServiceResult<Vec<u8>> {
    let existing = view_salts::table
        .find(day)
        .select(view_salts::salt)
        .first(conn)
        .optional()?;
    if let Some(salt) = existing {
        return Ok(salt);
    }
    let mut fresh = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut fresh);
    let made = diesel::insert_into(view_salts::table)
        .values((view_salts::day.eq(day), view_salts::salt.eq(fresh.to_vec())))
        .on_conflict_do_nothing()
        .execute(conn)?;
    if made == 1 {
        diesel::delete(view_salts::table.filter(view_salts::day.lt(day - Duration::days(1))))
            .execute(conn)?;
    }
    // A concurrent first view may have made it: theirs is the day's.
    Ok(view_salts::table
        .find(day)
        .select(view_salts::salt)
        .first(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewer(user_agent: &str) -> Viewer {
        Viewer {
            address: "203.0.113.7".into(),
            user_agent: user_agent.into(),
            id: None,
        }
    }

    #[test]
    fn crawlers_and_previewers_are_not_viewers_but_phones_named_bot_are() {
        for crawler in [
            "WhatsApp/2.23.20.0 A",
            "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
            "Twitterbot/1.0",
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
            "TelegramBot (like TwitterBot)",
            "",
        ] {
            assert!(viewer(crawler).is_crawler(), "{crawler:?}");
        }
        for phone in [
            "Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
        ] {
            assert!(!viewer(phone).is_crawler(), "{phone:?}");
        }
    }

    #[test]
    fn one_address_rotating_its_user_agent_is_one_viewer_per_family() {
        let chrome = |version: u32| {
            viewer(&format!("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{version}.0 Safari/537.36"))
        };
        assert_eq!(chrome(120).material(), chrome(121).material());
        let firefox =
            viewer("Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0");
        assert_ne!(chrome(120).material(), firefox.material());
    }
}
