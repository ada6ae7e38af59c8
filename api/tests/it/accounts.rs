//! The Accounts API: the platforms users can link (the OAuth dance is in `linking.rs`).

use serde_json::Value;

use crate::helpers::spawn_app_with;

const CLIENTS: [(&str, &str); 4] = [
    ("TWITCH_CLIENT_ID", "twitch-id"),
    ("TWITCH_CLIENT_SECRET", "twitch-secret"),
    ("YOUTUBE_CLIENT_ID", "google-id"),
    ("YOUTUBE_CLIENT_SECRET", "google-secret"),
];

fn ids(body: &Value) -> Vec<&str> {
    body["providers"]
        .as_array()
        .expect("a providers list")
        .iter()
        .map(|p| p["id"].as_str().expect("an id"))
        .collect()
}

#[tokio::test]
async fn providers_lists_every_configured_platform_in_order() {
    let app = spawn_app_with(&CLIENTS).await;
    let body = app.public_json("/api/v2/accounts/providers").await;
    // Steam needs no client; TikTok is listed in ACCOUNT_PROVIDERS but cannot link yet.
    assert_eq!(ids(&body), ["steam", "twitch", "youtube"]);
    assert_eq!(body["providers"][0]["description"], "Steam Library");
    let twitch = &body["providers"][1];
    assert_eq!(twitch["name"], "Twitch");
    assert_eq!(twitch["description"], "Twitch clips and highlights");
    assert!(twitch["icon"].as_str().is_some_and(|icon| !icon.is_empty()));
    assert_eq!(
        (twitch["can_import"].as_bool(), twitch["can_post"].as_bool()),
        (Some(true), Some(false))
    );
    let youtube = &body["providers"][2];
    assert_eq!(
        (
            youtube["can_import"].as_bool(),
            youtube["can_post"].as_bool()
        ),
        (Some(false), Some(true))
    );
}

#[tokio::test]
async fn providers_follows_the_configuration() {
    let ordered = [&CLIENTS[..], &[("ACCOUNT_PROVIDERS", "youtube, twitch")]].concat();
    let app = spawn_app_with(&ordered).await;
    let body = app.public_json("/api/v2/accounts/providers").await;
    assert_eq!(ids(&body), ["youtube", "twitch"]);

    let unconfigured =
        spawn_app_with(&[("TWITCH_CLIENT_ID", "only-an-id"), ("STEAM_OPENID_URL", "")]).await;
    let body = unconfigured.public_json("/api/v2/accounts/providers").await;
    assert_eq!(
        body["providers"],
        serde_json::json!([]),
        "a client without its secret is not offered, nor Steam without its endpoint"
    );

    let none = spawn_app_with(&[&CLIENTS[..], &[("ACCOUNT_PROVIDERS", "")]].concat()).await;
    let body = none.public_json("/api/v2/accounts/providers").await;
    assert_eq!(body["providers"], serde_json::json!([]));
}
