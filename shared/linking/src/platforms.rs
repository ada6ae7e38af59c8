//! Who a token belongs to, on each platform.

use chrono::{DateTime, Utc};
use domain::providers::ProviderId;
use serde::Deserialize;
use settings::OAuthClientConfig;

use crate::oauth::PlatformError;

/// A platform account: its stable id, and the name its owner knows it by.
#[derive(Debug, Clone)]
pub struct Identity {
    pub external_id: String,
    pub display_name: String,
}

/// Asks the platform whose `access_token` this is.
pub async fn identify(
    http: &reqwest::Client,
    provider: ProviderId,
    client: &OAuthClientConfig,
    access_token: &str,
) -> Result<Identity, PlatformError> {
    match provider {
        ProviderId::Twitch => twitch_user(http, client, access_token).await,
        ProviderId::Youtube => youtube_channel(http, client, access_token).await,
        ProviderId::Tiktok => tiktok_user(http, client, access_token).await,
        ProviderId::Steam => Err(PlatformError("Steam links through OpenID".into())),
    }
}

/// A Helix GET: the token, and our client id.
fn helix(
    http: &reqwest::Client,
    client: &OAuthClientConfig,
    access_token: &str,
    path: &str,
) -> reqwest::RequestBuilder {
    http.get(format!("{}/{path}", client.api_url))
        .bearer_auth(access_token)
        .header("Client-Id", &client.client_id)
}

/// Sends a platform request and reads its JSON answer; an error status is an error.
async fn read<T: serde::de::DeserializeOwned>(
    request: reqwest::RequestBuilder,
) -> Result<T, PlatformError> {
    Ok(request.send().await?.error_for_status()?.json().await?)
}

/// Helix `GET /users`: with no query, the token's own user.
async fn twitch_user(
    http: &reqwest::Client,
    client: &OAuthClientConfig,
    access_token: &str,
) -> Result<Identity, PlatformError> {
    #[derive(Deserialize)]
    struct Users {
        data: Vec<User>,
    }
    #[derive(Deserialize)]
    struct User {
        id: String,
        login: String,
        display_name: Option<String>,
    }
    let users: Users = read(helix(http, client, access_token, "users")).await?;
    let user = users
        .data
        .into_iter()
        .next()
        .ok_or(PlatformError("no user".into()))?;
    Ok(Identity {
        display_name: user.display_name.unwrap_or(user.login),
        external_id: user.id,
    })
}

/// YouTube Data API `channels.list?mine=true`: the token's own channel.
async fn youtube_channel(
    http: &reqwest::Client,
    client: &OAuthClientConfig,
    access_token: &str,
) -> Result<Identity, PlatformError> {
    #[derive(Deserialize)]
    struct Channels {
        #[serde(default)]
        items: Vec<Channel>,
    }
    #[derive(Deserialize)]
    struct Channel {
        id: String,
        snippet: Snippet,
    }
    #[derive(Deserialize)]
    struct Snippet {
        title: String,
    }
    let request = http
        .get(format!("{}/youtube/v3/channels", client.api_url))
        .query(&[("part", "snippet"), ("mine", "true")])
        .bearer_auth(access_token);
    let channels: Channels = read(request).await?;
    let channel = channels.items.into_iter().next().ok_or(PlatformError(
        "the Google account has no YouTube channel".into(),
    ))?;
    Ok(Identity {
        external_id: channel.id,
        display_name: channel.snippet.title,
    })
}

/// TikTok `GET /v2/user/info/`: the token's own user.
async fn tiktok_user(
    http: &reqwest::Client,
    client: &OAuthClientConfig,
    access_token: &str,
) -> Result<Identity, PlatformError> {
    #[derive(Deserialize)]
    struct Answer {
        data: Data,
    }
    #[derive(Deserialize)]
    struct Data {
        user: User,
    }
    #[derive(Deserialize)]
    struct User {
        open_id: String,
        display_name: Option<String>,
    }
    let request = http
        .get(format!("{}/v2/user/info/", client.api_url))
        .query(&[("fields", "open_id,display_name")])
        .bearer_auth(access_token);
    let answer: Answer = read(request).await?;
    let user = answer.data.user;
    Ok(Identity {
        display_name: user.display_name.unwrap_or_else(|| "TikTok user".into()),
        external_id: user.open_id,
    })
}

/// A clip on the platform.
#[derive(Debug, Clone, Deserialize)]
pub struct PlatformClip {
    pub id: String,
    pub title: String,
}

impl PlatformClip {
    /// The library's name for it: its title without control characters, at most 128 of
    /// them, or its id when the title is blank.
    pub fn label(&self) -> String {
        let label: String = self
            .title
            .chars()
            .filter(|c| !c.is_control())
            .take(128)
            .collect();
        if label.trim().is_empty() {
            format!("Twitch clip {}", self.id)
        } else {
            label
        }
    }
}

/// Most clips one sync lists; the next sync carries on from where this one stopped.
const MAX_LISTED: usize = 1000;
/// Helix answers at most this span per request: without `ended_at`, one week from
/// `started_at`.
const HELIX_WINDOW: chrono::Duration = chrono::Duration::days(7);

/// What one sync lists, and up to when the platform was covered: the next sync starts
/// there (before `now` when the listing stopped at `MAX_LISTED`).
#[derive(Debug)]
pub struct Listing {
    pub clips: Vec<PlatformClip>,
    pub covered_until: DateTime<Utc>,
}

/// The windows from `since` to `now`, each at most Helix's span.
fn windows(since: DateTime<Utc>, now: DateTime<Utc>) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut windows = Vec::new();
    let mut start = since;
    while start < now {
        let end = (start + HELIX_WINDOW).min(now);
        windows.push((start, end));
        start = end;
    }
    windows
}

/// Helix `GET /clips` of the broadcaster created since `since`, window by window up to
/// now; with no `since` (a first sync), the channel's clips of all time.
pub async fn twitch_clips(
    http: &reqwest::Client,
    client: &OAuthClientConfig,
    access_token: &str,
    broadcaster: &str,
    since: Option<DateTime<Utc>>,
) -> Result<Listing, PlatformError> {
    let now = Utc::now();
    let Some(since) = since else {
        let clips = clips_page_by_page(http, client, access_token, broadcaster, None).await?;
        return Ok(Listing {
            clips,
            covered_until: now,
        });
    };
    let mut clips = Vec::new();
    for (at, (start, end)) in windows(since, now).into_iter().enumerate() {
        let window = Some((start, end));
        let listed = clips_page_by_page(http, client, access_token, broadcaster, window).await?;
        clips.extend(listed);
        if clips.len() >= MAX_LISTED {
            // A window cut short is listed again next time (its clips already imported are
            // skipped); the first one counts as whole, so that every sync moves on.
            let covered_until = if at == 0 { end } else { start };
            return Ok(Listing {
                clips,
                covered_until,
            });
        }
    }
    Ok(Listing {
        clips,
        covered_until: now,
    })
}

/// One window's clips (or all time's, without one), following the cursor up to the cap.
async fn clips_page_by_page(
    http: &reqwest::Client,
    client: &OAuthClientConfig,
    access_token: &str,
    broadcaster: &str,
    window: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> Result<Vec<PlatformClip>, PlatformError> {
    #[derive(Deserialize)]
    struct Page {
        data: Vec<PlatformClip>,
        #[serde(default)]
        pagination: Pagination,
    }
    #[derive(Deserialize, Default)]
    struct Pagination {
        cursor: Option<String>,
    }
    let stamp = |at: DateTime<Utc>| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut clips = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![
            ("broadcaster_id", broadcaster.to_owned()),
            ("first", "100".into()),
        ];
        if let Some((start, end)) = window {
            query.push(("started_at", stamp(start)));
            query.push(("ended_at", stamp(end)));
        }
        if let Some(after) = cursor.take() {
            query.push(("after", after));
        }
        let page: Page = read(helix(http, client, access_token, "clips").query(&query)).await?;
        let more = !page.data.is_empty();
        clips.extend(page.data);
        match page.pagination.cursor {
            Some(next) if more && clips.len() < MAX_LISTED => cursor = Some(next),
            _ => return Ok(clips),
        }
    }
}

/// Helix `GET /clips/downloads`: a short-lived link to the clip's landscape file (the
/// token's user must be the broadcaster, or one of their editors).
pub async fn twitch_download_url(
    http: &reqwest::Client,
    client: &OAuthClientConfig,
    access_token: &str,
    broadcaster: &str,
    clip: &str,
) -> Result<String, PlatformError> {
    #[derive(Deserialize)]
    struct Downloads {
        data: Vec<Download>,
    }
    #[derive(Deserialize)]
    struct Download {
        landscape_download_url: Option<String>,
    }
    let query = [
        ("editor_id", broadcaster),
        ("broadcaster_id", broadcaster),
        ("clip_id", clip),
    ];
    let request = helix(http, client, access_token, "clips/downloads").query(&query);
    let downloads: Downloads = read(request).await?;
    downloads
        .data
        .into_iter()
        .find_map(|d| d.landscape_download_url)
        .ok_or(PlatformError(
            "Twitch offers no download of this clip".into(),
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_gap_is_walked_in_windows_helix_answers_whole() {
        let now = Utc::now();
        let since = now - chrono::Duration::days(20);
        let walked = windows(since, now);
        assert_eq!(walked.len(), 3);
        assert_eq!(walked[0].0, since);
        assert_eq!(walked.last().unwrap().1, now);
        for pair in walked.windows(2) {
            assert_eq!(pair[0].1, pair[1].0, "no gap, no overlap");
        }
        assert!(walked
            .iter()
            .all(|(start, end)| *end - *start <= HELIX_WINDOW));
        assert!(windows(now, now).is_empty());
    }
}
