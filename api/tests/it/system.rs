//! Health and the OpenAPI document.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_each_dependency_and_needs_a_live_worker() {
    let mut app = spawn_app().await;
    let response = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(response.status(), 503, "no worker yet");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["database"], "connected");
    assert_eq!(body["redis"], "connected");
    assert_eq!(body["storage"], "accessible");
    assert_eq!(body["worker"], "disconnected");

    app.start_worker().await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let response = app.client.get(app.url("/health")).send().await.unwrap();
        if response.status() == 200 {
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["status"], "healthy");
            assert_eq!(body["worker"], "connected");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "worker never reported healthy"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn every_documented_route_is_served() {
    let app = spawn_app().await;
    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    // The routes and the document come from one table (`api::routes::table`), so the
    // document lists what the app serves; a route added outside the table would be neither.
    assert!(
        documented.len() >= 24 && documented.contains(&("post".into(), "/api/v2/jobs".into())),
        "the document lists the app's routes: {documented:?}"
    );
    let unrouted = |status: u16, body: &Value| {
        status == 405 || (status == 404 && body["error"]["message"] == "No such route")
    };
    // The check below can tell an unrouted path from a routed one.
    let response = app
        .client
        .get(app.url("/api/v2/nowhere"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    assert!(unrouted(status, &response.json().await.unwrap()));

    // Each documented route is served (not the router's 404/405).
    for (method, path) in &documented {
        let concrete = path
            .replace("{job_id}", &uuid::Uuid::nil().to_string())
            .replace("{style_id}", "chill")
            .replace("{asset}", "init.js");
        let request = app
            .client
            .request(method.to_uppercase().parse().unwrap(), app.url(&concrete));
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(
            !unrouted(status, &body),
            "{method} {path} is documented but not routed ({status})"
        );
    }
    for schema in ["ErrorEnvelope", "ErrorCode"] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "{schema} documented"
        );
    }
    let docs = app.client.get(app.url("/docs")).send().await.unwrap();
    let policy = docs.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    let page = docs.text().await.unwrap();
    assert!(page.contains("/docs/swagger-ui-bundle.js"), "{page}");
    assert!(
        !page.contains("http"),
        "no script or style from elsewhere: {page}"
    );
    let init = app
        .client
        .get(app.url("/docs/init.js"))
        .send()
        .await
        .unwrap();
    assert!(init.text().await.unwrap().contains("/openapi.json"));
}

/// Each operation's documented `x-policy`, as (method, concrete path, policy).
async fn documented_policies(app: &crate::helpers::TestApp) -> Vec<(String, String, Value)> {
    let doc: Value = app.public_json("/openapi.json").await;
    let mut policies = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let policy = operation["x-policy"].clone();
            assert!(policy.is_object(), "{method} {path} documents its policy");
            let concrete = path
                .replace("{style_id}", "chill")
                .replace("{asset}", "init.js")
                .replace("{role}", "moderator");
            // Every other parameter is an id: a well-formed one that names nothing.
            let concrete = with_nil_ids(&concrete);
            policies.push((method.to_uppercase(), concrete, policy));
        }
    }
    policies
}

/// `path` with each remaining parameter replaced by the nil UUID.
fn with_nil_ids(path: &str) -> String {
    path.split('/')
        .map(|part| {
            if part.starts_with('{') {
                uuid::Uuid::nil().to_string()
            } else {
                part.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_route_admits_only_the_callers_its_policy_names() {
    let app = spawn_app().await;
    let policies = documented_policies(&app).await;
    let signed_in: Vec<_> = policies
        .iter()
        .filter(|(_, _, policy)| policy["access"] == "signed_in")
        .collect();
    assert!(signed_in.len() >= 40, "{signed_in:?}");
    for (method, path, _) in &signed_in {
        let url = app.url(path);
        let anonymous = app.client.request(method.parse().unwrap(), &url);
        let response = anonymous.send().await.unwrap();
        assert_eq!(response.status(), 401, "{method} {path} without a token");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["error"]["code"], "AUTHENTICATION_REQUIRED",
            "{method} {path}"
        );
    }

    // A player tries every route that needs a permission their roles do not give.
    let player = app.user().await;
    let guarded: Vec<_> = policies
        .iter()
        .filter(|(_, _, policy)| policy["permission"].is_object())
        .collect();
    assert!(guarded.len() >= 12, "{guarded:?}");
    for (method, path, policy) in guarded {
        let request = app
            .client
            .request(method.parse().unwrap(), app.url(path))
            .bearer_auth(&player.access_token)
            // Even a well-formed body gets no further than the permission check.
            .json(&serde_json::json!({"role": "admin", "featured": true}));
        let response = request.send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            (status.as_u16(), &body["error"]["code"]),
            (403, &Value::from("INSUFFICIENT_PERMISSIONS")),
            "{method} {path} needs {}",
            policy["permission"]
        );
    }
}
