//! The Accounts API: the platforms users can link.

use serde_json::Value;

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn providers_lists_every_configured_platform_in_order() {
    let app = spawn_app().await;
    let body = app.public_json("/api/v2/accounts/providers").await;
    let ids: Vec<&str> = body["providers"]
        .as_array()
        .expect("a providers list")
        .iter()
        .map(|p| p["id"].as_str().expect("an id"))
        .collect();
    assert_eq!(ids, ["steam", "twitch", "youtube", "tiktok"]);
    let steam = &body["providers"][0];
    assert_eq!(steam["name"], "Steam");
    assert_eq!(steam["description"], "Steam Library");
    assert!(steam["icon"].as_str().is_some_and(|icon| !icon.is_empty()));
}

#[tokio::test]
async fn providers_follows_the_configuration() {
    let app = spawn_app_with(&[("ACCOUNT_PROVIDERS", "twitch, steam")]).await;
    let body = app.public_json("/api/v2/accounts/providers").await;
    let ids: Vec<Value> = body["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].clone())
        .collect();
    assert_eq!(ids, ["twitch", "steam"]);

    let none = spawn_app_with(&[("ACCOUNT_PROVIDERS", "")]).await;
    let body = none.public_json("/api/v2/accounts/providers").await;
    assert_eq!(body["providers"], serde_json::json!([]));
}
