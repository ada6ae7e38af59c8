//! Who a token belongs to, on each platform.

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

/// Most clips one sync lists; the next sync carries on from where this one stopped.
const MAX_LISTED: usize = 1000;

/// Helix `GET /clips` of the broadcaster, newest window first, created since `since`.
pub async fn twitch_clips(
    http: &reqwest::Client,
    client: &OAuthClientConfig,
    access_token: &str,
    broadcaster: &str,
    since: Option<chrono::DateTime<chrono::Utc>>,
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
    let mut clips = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![
            ("broadcaster_id", broadcaster.to_owned()),
            ("first", "100".into()),
        ];
        if let Some(since) = since {
            query.push((
                "started_at",
                since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ));
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
