//! The style catalogue.

use serde_json::Value;

use crate::helpers::{assert_error, spawn_app};

#[tokio::test]
async fn styles_are_listed_and_described() {
    let app = spawn_app().await;
    let list: Value = app.public_json("/api/v2/styles").await;
    assert_eq!(
        list,
        serde_json::json!({ "presets": ["cinematic", "gaming", "energetic", "chill"] })
    );
    let mut longest = Vec::new();
    for id in ["cinematic", "gaming", "energetic", "chill"] {
        let preset: Value = app.public_json(&format!("/api/v2/styles/{id}")).await;
        assert_eq!(preset["id"], id);
        assert!(preset["transition"]["kind"].is_string());
        assert!(preset["grade"]["saturation"].is_number());
        longest.push(preset["segment_seconds"][1].as_f64().unwrap());
    }
    assert_eq!(longest, vec![5.0, 3.0, 2.0, 8.0]);
    let cinematic: Value = app.public_json("/api/v2/styles/cinematic").await;
    assert_eq!(
        cinematic["transition"],
        serde_json::json!({ "kind": "dissolve", "seconds": 0.5 })
    );
    assert_error(
        app.client
            .get(app.url("/api/v2/styles/vaporwave"))
            .send()
            .await
            .unwrap(),
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
}
