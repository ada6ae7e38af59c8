//! Errors outside handlers still use the envelope; every response has a request id.

use crate::helpers::{assert_error, spawn_app};

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_in_the_envelope() {
    let app = spawn_app().await;
    assert_error(
        app.client
            .get(app.url("/no/such/route"))
            .send()
            .await
            .unwrap(),
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
    let wrong_method = app
        .client
        .delete(app.url("/api/auth/login"))
        .send()
        .await
        .unwrap();
    assert_error(wrong_method, 405, "METHOD_NOT_ALLOWED").await;
    let oversized = app
        .client
        .post(app.url("/api/auth/login"))
        .header("content-type", "application/json")
        .body(format!("{{\"email\":\"{}\"}}", "a".repeat(64 * 1024)))
        .send()
        .await
        .unwrap();
    assert_error(oversized, 413, "PAYLOAD_TOO_LARGE").await;
}

#[tokio::test]
async fn request_ids_are_kept_when_valid_and_made_otherwise() {
    let app = spawn_app().await;
    let kept = app
        .client
        .get(app.url("/openapi.json"))
        .header("x-request-id", "trace-123_abc")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "trace-123_abc");
    let replaced = app
        .client
        .get(app.url("/openapi.json"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let generated = replaced.headers()["x-request-id"].to_str().unwrap();
    assert_ne!(generated, "bad id with spaces");
    assert!(uuid::Uuid::parse_str(generated).is_ok());
}
